//go:build !race

package loadgen_test

// raceEnabled reports whether the race detector is on.
const raceEnabled = false

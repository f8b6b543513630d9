// Package e2e holds Herald's end-to-end browser tests: a headless Chromium
// (see internal/browsertest) subscribes with EventSource and publishes with
// fetch against in-process hubs and against the herald binary, which the
// tests build once. The package has no code of its own; run its tests with
//
//	go test ./e2e/
//
// They are skipped when Chromium is not installed, unless CI=true.
package e2e

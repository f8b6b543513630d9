package boltstore

import "encoding/binary"

// seqKey returns the 8-byte big-endian key of seq, so that keys sort in Seq
// order. The value stored under it is the update's record
// (internal/record).
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

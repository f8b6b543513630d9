package natsstore

// Exported for the external tests.
var (
	AppendRecord = appendRecord
	DecodeRecord = decodeRecord
	IDToken      = idToken
)

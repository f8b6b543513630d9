package natsstore

// IDToken is exported for the external tests.
var IDToken = idToken

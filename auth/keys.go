package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParsePublicKeyPEM returns the public keys of the PEM blocks in data:
// "PUBLIC KEY" (PKIX: RSA, ECDSA or Ed25519), "RSA PUBLIC KEY" (PKCS #1) or
// "CERTIFICATE" (the certificate's key; the certificate itself is not
// checked). A file may hold several keys, for rotation. Blocks of other
// types, private keys included, are an error: a verifier needs only the
// public half.
func ParsePublicKeyPEM(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("auth: PEM block %q is not a public key", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: PEM block %q: %w", b.Type, err)
		}
		switch k.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("auth: PEM block %q: unsupported key type %T", b.Type, k)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no PEM public key found")
	}
	return keys, nil
}

// ParsePrivateKeyPEM returns the private key of the first PEM block in
// data: "PRIVATE KEY" (PKCS #8: RSA, ECDSA or Ed25519), "RSA PRIVATE KEY"
// (PKCS #1) or "EC PRIVATE KEY" (SEC 1). It is what [SignToken] takes for
// the asymmetric algorithms.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("auth: no PEM block found")
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("auth: PEM block %q is not a private key", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: PEM block %q: %w", b.Type, err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("auth: unsupported private key type %T", k)
}

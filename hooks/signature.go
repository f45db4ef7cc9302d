package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names and the signature scheme of the hook protocol.
const (
	// HeaderTimestamp carries the signing time in Unix seconds.
	HeaderTimestamp = "X-Sidecar-Timestamp"
	// HeaderSignature carries "v1=" and the lowercase hex HMAC-SHA256 of
	// "<timestamp>." followed by the raw body, keyed with the secret.
	HeaderSignature = "X-Sidecar-Signature"
	// SignatureVersion prefixes the signature so that the scheme can
	// change without ambiguity.
	SignatureVersion = "v1"
	// MaxClockSkew is how far a timestamp may be from the receiver's
	// clock, either way, before the call is refused as a replay.
	MaxClockSkew = 300 * time.Second
)

// Errors of VerifySignature.
var (
	// ErrBadSignature means the signature header is missing, malformed, or
	// matches none of the secrets.
	ErrBadSignature = errors.New("bad hook signature")
	// ErrStaleTimestamp means the timestamp header is missing, malformed,
	// or too far from the receiver's clock.
	ErrStaleTimestamp = errors.New("stale hook timestamp")
)

// Sign returns the X-Sidecar-Signature value for body signed at the Unix
// time ts: "v1=" and the lowercase hex HMAC-SHA256 of "<ts>.<body>".
func Sign(secret []byte, ts int64, body []byte) string {
	return SignatureVersion + "=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	var buf [20]byte
	h.Write(strconv.AppendInt(buf[:0], ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks a signed body the way the Django helper does:
// the timestamp must be an integer within MaxClockSkew of now, and the
// signature must match one of secrets (several allow rotation). The
// comparison takes constant time. It exists so that Go code can receive
// hook-style calls too, and so that both sides are tested against one
// definition.
func VerifySignature(secrets [][]byte, timestamp, signature string, body []byte, now time.Time) error {
	ts, err := parseTimestamp(timestamp)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStaleTimestamp, err)
	}
	skew := now.Unix() - ts
	if skew < 0 {
		skew = -skew
	}
	if skew > int64(MaxClockSkew/time.Second) {
		return fmt.Errorf("%w: %d s from this clock, more than %d s", ErrStaleTimestamp, skew, int64(MaxClockSkew/time.Second))
	}
	hexSig, ok := strings.CutPrefix(signature, SignatureVersion+"=")
	if !ok {
		return fmt.Errorf("%w: want %s=<hex>", ErrBadSignature, SignatureVersion)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size || strings.ToLower(hexSig) != hexSig {
		return fmt.Errorf("%w: want %d lowercase hex digits", ErrBadSignature, 2*sha256.Size)
	}
	for _, s := range secrets {
		if hmac.Equal(got, mac(s, ts, body)) {
			return nil
		}
	}
	return fmt.Errorf("%w: no secret matches", ErrBadSignature)
}

// parseTimestamp reads decimal Unix seconds, with no sign or spaces.
func parseTimestamp(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("missing timestamp")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("timestamp %q is not whole Unix seconds", s)
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return ts, nil
}

package auth

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Errors of django.core.signing. Wrapped errors say more; match with
// errors.Is.
var (
	// ErrBadSignature means no configured key produced the signature, or
	// the value has no separator (Django's BadSignature).
	ErrBadSignature = errors.New("bad signature")
	// ErrSignatureExpired means the signature is valid but older than
	// max_age (Django's SignatureExpired).
	ErrSignatureExpired = errors.New("signature expired")
	// ErrBadPayload means the signature is valid but the signed text does
	// not decode (timestamp, base64, zlib or JSON).
	ErrBadPayload = errors.New("bad signed payload")
)

// maxSignedObjectBytes bounds what a compressed signed object may inflate
// to. Session cookies are a few kilobytes; this stops a zlib bomb signed
// with a leaked key from taking memory.
const maxSignedObjectBytes = 256 << 10

// Default salts of Django's signer classes ("<module>.<ClassName>").
const (
	defaultSignerSalt          = "django.core.signing.Signer"
	defaultTimestampSignerSalt = "django.core.signing.TimestampSigner"
)

// SaltedHMAC is django.utils.crypto.salted_hmac: the HMAC key is
// H(keySalt || secret), a plain hash with no separator, and the same H is
// used for the HMAC of value.
func SaltedHMAC(newHash func() hash.Hash, keySalt, value, secret string) []byte {
	key := deriveKey(newHash, keySalt, secret)
	m := hmac.New(newHash, key)
	m.Write([]byte(value))
	return m.Sum(nil)
}

func deriveKey(newHash func() hash.Hash, keySalt, secret string) []byte {
	h := newHash()
	h.Write([]byte(keySalt))
	h.Write([]byte(secret))
	return h.Sum(nil)
}

// b64Encode is Django's b64_encode: URL-safe alphabet, no padding.
func b64Encode(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}

// b64Decode accepts only what b64Encode produces: no padding, no unused
// bits set. Go's decoder would skip CR and LF, so the alphabet is checked
// first. Python's decoder is laxer, but only for text Django never writes.
func b64Decode(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if !isB64URLChar(s[i]) {
			return nil, fmt.Errorf("base64: invalid character at offset %d", i)
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

func isB64URLChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62Encode writes n most significant digit first; "0" for zero and a
// leading '-' for negative numbers, as Django does.
func base62Encode(n int64) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-(n + 1)) + 1 // safe for math.MinInt64
	}
	var buf [12]byte
	i := len(buf)
	for u > 0 {
		i--
		buf[i] = base62Alphabet[u%62]
		u /= 62
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

// base62Decode reverses base62Encode. Like Django it accepts leading zeros
// and reads a lone "-" as 0; unlike Python it refuses values beyond int64.
func base62Decode(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("base62: empty")
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var u uint64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base62Alphabet, s[i])
		if d < 0 {
			return 0, fmt.Errorf("base62: invalid digit at offset %d", i)
		}
		if u > (math.MaxUint64-uint64(d))/62 {
			return 0, errors.New("base62: overflow")
		}
		u = u*62 + uint64(d)
	}
	if neg {
		switch {
		case u == 0:
			return 0, nil
		case u > 1<<63:
			return 0, errors.New("base62: overflow")
		}
		return -int64(u-1) - 1, nil // u-1 fits in int64, also for MinInt64
	}
	if u > math.MaxInt64 {
		return 0, errors.New("base62: overflow")
	}
	return int64(u), nil
}

// Signer is django.core.signing.Signer with SHA-256: it appends
// sep + b64(HMAC-SHA256(SHA256(salt+"signer"+key), value)) and verifies with
// the key, then each fallback key. Build it with NewSigner; it is safe for
// concurrent use.
type Signer struct {
	sep  string
	salt string
	keys [][]byte // derived HMAC keys: the primary key first, then fallbacks
}

// NewSigner returns a signer for key, verifying also with fallbacks. An
// empty salt means "django.core.signing.Signer" and an empty sep means ":".
// Like Django it refuses a separator made only of [A-z0-9-_=], which could
// occur inside a signature.
func NewSigner(key string, fallbacks []string, salt, sep string) (*Signer, error) {
	if salt == "" {
		salt = defaultSignerSalt
	}
	return newSigner(key, fallbacks, salt, sep)
}

func newSigner(key string, fallbacks []string, salt, sep string) (*Signer, error) {
	if sep == "" {
		sep = ":"
	}
	if unsafeSeparator(sep) {
		return nil, fmt.Errorf("unsafe signer separator %q (cannot be empty or consist of only A-z0-9-_=)", sep)
	}
	s := &Signer{sep: sep, salt: salt}
	for _, k := range append([]string{key}, fallbacks...) {
		s.keys = append(s.keys, deriveKey(sha256.New, salt+"signer", k))
	}
	return s, nil
}

func unsafeSeparator(sep string) bool {
	for i := 0; i < len(sep); i++ {
		c := sep[i]
		if !(c >= 'A' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '=') {
			return false
		}
	}
	return true
}

func (s *Signer) signatureWith(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	var sum [sha256.Size]byte
	return b64Encode(m.Sum(sum[:0]))
}

// Signature returns the signature of value under the primary key.
func (s *Signer) Signature(value string) string {
	return s.signatureWith(s.keys[0], value)
}

// Sign returns value, the separator and the signature.
func (s *Signer) Sign(value string) string {
	return value + s.sep + s.Signature(value)
}

// Unsign splits signed on its last separator and returns the value if any
// key produced the signature. Signatures are compared in constant time.
func (s *Signer) Unsign(signed string) (string, error) {
	i := strings.LastIndex(signed, s.sep)
	if i < 0 {
		return "", fmt.Errorf("no separator found: %w", ErrBadSignature)
	}
	value, sig := signed[:i], signed[i+len(s.sep):]
	for _, k := range s.keys {
		if subtle.ConstantTimeCompare([]byte(sig), []byte(s.signatureWith(k, value))) == 1 {
			return value, nil
		}
	}
	return "", ErrBadSignature
}

// TimestampSigner is django.core.signing.TimestampSigner: it signs
// value:base62(unix time) so that Unsign can enforce a maximum age. Build
// it with NewTimestampSigner; it is safe for concurrent use.
type TimestampSigner struct {
	Signer
	inflaters *sync.Pool // zlib readers, reused: each holds ~40 KB of tables
}

// NewTimestampSigner returns a timestamp signer with separator ":". An
// empty salt means "django.core.signing.TimestampSigner".
func NewTimestampSigner(key string, fallbacks []string, salt string) (*TimestampSigner, error) {
	if salt == "" {
		salt = defaultTimestampSignerSalt
	}
	s, err := newSigner(key, fallbacks, salt, ":")
	if err != nil {
		return nil, err
	}
	return &TimestampSigner{Signer: *s, inflaters: &sync.Pool{}}, nil
}

// Sign signs value with the timestamp now (whole seconds).
func (s *TimestampSigner) Sign(value string, now time.Time) string {
	return s.Signer.Sign(value + s.sep + base62Encode(now.Unix()))
}

// Unsign verifies signed and returns the value and its signing time. With
// a non-negative maxAge it fails with ErrSignatureExpired when
// now - timestamp > maxAge: an age equal to maxAge is still valid and a
// timestamp in the future is accepted, as in Django. A negative maxAge
// skips the check (Django's max_age=None).
func (s *TimestampSigner) Unsign(signed string, maxAge time.Duration, now time.Time) (string, time.Time, error) {
	v, err := s.Signer.Unsign(signed)
	if err != nil {
		return "", time.Time{}, err
	}
	i := strings.LastIndex(v, s.sep)
	if i < 0 {
		return "", time.Time{}, fmt.Errorf("no timestamp: %w", ErrBadPayload)
	}
	ts, err := base62Decode(v[i+len(s.sep):])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("timestamp: %w: %w", ErrBadPayload, err)
	}
	signedAt := time.Unix(ts, 0)
	if maxAge >= 0 && now.Sub(signedAt) > maxAge {
		return "", signedAt, fmt.Errorf("signed %s ago, max age %s: %w", now.Sub(signedAt).Truncate(time.Second), maxAge, ErrSignatureExpired)
	}
	return v[:i], signedAt, nil
}

// DumpsJSON is django.core.signing.dumps for an already serialized JSON
// value: base64 of the text, or '.' and base64 of its zlib stream when
// compress is set and that is more than one byte shorter. Django accepts the
// result; with compression the bytes may differ from Python's zlib output.
func (s *TimestampSigner) DumpsJSON(jsonText []byte, compress bool, now time.Time) string {
	payload := b64Encode(jsonText)
	if compress {
		var z bytes.Buffer
		w, _ := zlib.NewWriterLevel(&z, 6) // level 6 is valid, so no error
		w.Write(jsonText)
		w.Close()
		if z.Len() < len(jsonText)-1 {
			payload = "." + b64Encode(z.Bytes())
		}
	}
	return s.Sign(payload, now)
}

// LoadsJSON is django.core.signing.loads up to the JSON text: it verifies
// signed (see Unsign for maxAge), base64-decodes it, inflates it when it
// starts with '.', and returns the JSON text, re-encoded from latin-1 to
// UTF-8 as Django's JSONSerializer reads it, with the signing time.
func (s *TimestampSigner) LoadsJSON(signed string, maxAge time.Duration, now time.Time) ([]byte, time.Time, error) {
	v, signedAt, err := s.Unsign(signed, maxAge, now)
	if err != nil {
		return nil, signedAt, err
	}
	compressed := strings.HasPrefix(v, ".")
	if compressed {
		v = v[1:]
	}
	data, err := b64Decode(v)
	if err != nil {
		return nil, signedAt, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if compressed {
		if data, err = s.inflate(data); err != nil {
			return nil, signedAt, fmt.Errorf("%w: %w", ErrBadPayload, err)
		}
	}
	data = latin1ToUTF8(data)
	if !json.Valid(data) {
		return nil, signedAt, fmt.Errorf("%w: not JSON", ErrBadPayload)
	}
	return data, signedAt, nil
}

func (s *TimestampSigner) inflate(data []byte) ([]byte, error) {
	src := bytes.NewReader(data)
	var r io.ReadCloser
	if pooled, ok := s.inflaters.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(src, nil); err != nil {
			s.inflaters.Put(pooled)
			return nil, fmt.Errorf("zlib: %w", err)
		}
		r = pooled
	} else {
		var err error
		if r, err = zlib.NewReader(src); err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
	}
	defer s.inflaters.Put(r)
	out, err := io.ReadAll(io.LimitReader(r, maxSignedObjectBytes+1))
	if err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	if len(out) > maxSignedObjectBytes {
		return nil, fmt.Errorf("zlib: inflates to more than %d bytes", maxSignedObjectBytes)
	}
	return out, nil
}

// latin1ToUTF8 maps each byte to the code point of the same value, as
// Python's bytes.decode("latin-1") does. ASCII input is returned as is.
func latin1ToUTF8(b []byte) []byte {
	n := 0
	for _, c := range b {
		if c >= utf8.RuneSelf {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}

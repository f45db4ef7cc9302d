package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// sessionsSaltPrefix starts the salt of stored session data: Django uses
// "django.contrib.sessions." + the store class's __qualname__.
const sessionsSaltPrefix = "django.contrib.sessions."

// maxSessionData bounds the session_data text read from a row. Logged-in
// sessions are a few hundred bytes; applications may keep more, but a
// megabyte is far past any session a socket should be judged by.
const maxSessionData = 1 << 20

// sessionDataCodec reads the session_data column of the db and cached_db
// engines as SessionBase.decode does: signing.loads with the store's salt,
// no max age (expire_date decides), SECRET_KEY then each fallback; and,
// as Django 3.2 still does, the pre-3.1 format base64(hex HMAC-SHA1 ":"
// JSON). Django >= 4.0 no longer reads that format, but such a session
// always carries a SHA-1 _auth_user_hash, which the user check refuses
// under every version, so reading it changes no verdict, only the reason.
type sessionDataCodec struct {
	signer    *TimestampSigner
	legacyKey []byte // SHA1("django.contrib.sessions" + class __name__ + SECRET_KEY)
}

func newSessionDataCodec(secret string, fallbacks []string, storeClass string) (*sessionDataCodec, error) {
	signer, err := NewTimestampSigner(secret, fallbacks, sessionsSaltPrefix+storeClass)
	if err != nil {
		return nil, err
	}
	name := storeClass
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:] // __name__ of a nested class
	}
	return &sessionDataCodec{
		signer:    signer,
		legacyKey: deriveKey(sha1.New, "django.contrib.sessions"+name, secret),
	}, nil
}

// decode returns the session's JSON object text. Django turns any failure
// into an empty session (anonymous); the Failure says which.
func (c *sessionDataCodec) decode(data string) ([]byte, error) {
	if len(data) > maxSessionData {
		return nil, refuse(ReasonSessionMalformed, "session_data too long")
	}
	text, _, err := c.signer.LoadsJSON(data, -1, time.Time{})
	if err == nil {
		return text, nil
	}
	if legacy, ok := c.legacyDecode(data); ok {
		return legacy, nil
	}
	if errors.Is(err, ErrBadSignature) {
		return nil, refuse(ReasonSessionBadSignature, "session_data is not signed by any secret key")
	}
	return nil, refuse(ReasonSessionMalformed, "session_data does not decode")
}

// legacyDecode reads the pre-3.1 format, verified with SECRET_KEY only
// (Django 3.2 has no fallbacks).
func (c *sessionDataCodec) legacyDecode(data string) ([]byte, bool) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, false
	}
	mac, serialized, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, false
	}
	m := hmac.New(sha1.New, c.legacyKey)
	m.Write([]byte(serialized))
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(mac), []byte(want)) {
		return nil, false
	}
	text := latin1ToUTF8([]byte(serialized))
	if !json.Valid(text) {
		return nil, false
	}
	return text, true
}

// sessionIdentityFromJSON reads the logged-in user out of a session's JSON
// object text (see sessionIdentity).
func sessionIdentityFromJSON(text []byte, backends []string) (*Identity, error) {
	var session map[string]json.RawMessage
	if err := json.Unmarshal(text, &session); err != nil || session == nil {
		return nil, refuse(ReasonSessionMalformed, "session is not a JSON object")
	}
	return sessionIdentity(session, backends)
}

package auth

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// With a database configured, every identity is checked against the user
// table through the Authenticator: signed cookies, tokens at the
// handshake, tokens refreshed in a frame, and re-checks.
func TestAuthenticatorChecksUsers(t *testing.T) {
	path := writeSQLite(t, `INSERT INTO auth_user (id, password, is_superuser, username, is_active) VALUES
		(42, '`+dbVecPassword+`', 0, 'alice', 1), (43, '`+dbVecPassword+`', 0, 'bob', 0)`)
	sum := md5.Sum([]byte(dbVecPassword))
	hashPassword := strings.ToUpper(hex.EncodeToString(sum[:]))
	a := dbVecAuthenticator(t, path, func(c *Config) {
		c.SessionEngine = EngineSignedCookies
		c.SimpleJWT.CheckRevokeToken = true
	})
	now := time.Unix(dbVecNow, 0)
	ctx := context.Background()

	cookies, _ := NewTimestampSigner(dbVecSecret, nil, SignedCookiesSalt)
	cookie := func(user, hash string) Handshake {
		v := cookies.DumpsJSON([]byte(`{"_auth_user_id":"`+user+`","_auth_user_backend":"`+DefaultAuthBackend+`","_auth_user_hash":"`+hash+`"}`), true, now)
		return Handshake{Cookie: "sessionid=" + v}
	}
	token := func(user any, hash string) string {
		claims := jwt.MapClaims{"token_type": "access", "exp": dbVecNow + 300, "iat": dbVecNow, "jti": "j1", "user_id": user}
		if hash != "" {
			claims["hash_password"] = hash
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(dbVecSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	for name, tc := range map[string]struct {
		h      Handshake
		reason string
	}{
		"cookie, alice":            {cookie("42", dbVecAuthHash), ""},
		"cookie, stale hash":       {cookie("42", strings.Repeat("a", 64)), ReasonSessionHashMismatch},
		"cookie, inactive bob":     {cookie("43", dbVecAuthHash), ReasonUserInactive},
		"cookie, unknown user":     {cookie("44", dbVecAuthHash), ReasonUserNotFound},
		"token, alice":             {Handshake{Query: "token=" + token(42, hashPassword)}, ""},
		"token, string user id":    {Handshake{Query: "token=" + token("42", hashPassword)}, ""},
		"token, old hash_password": {Handshake{Query: "token=" + token(42, "0123")}, ReasonJWTPasswordChanged},
		"token, inactive bob":      {Handshake{Authorization: "Bearer " + token(43, hashPassword)}, ReasonUserInactive},
		"token, unknown user":      {Handshake{Query: "token=" + token(44, hashPassword)}, ReasonUserNotFound},
	} {
		id, err := a.Authenticate(ctx, tc.h, now)
		if tc.reason == "" && (err != nil || id.UserID != "42") || tc.reason != "" && !isReason(err, tc.reason) {
			t.Errorf("%s: got %+v, %v; want %q", name, id, err, tc.reason)
		}
	}
	// A refused token does not hide a valid cookie, as at any handshake.
	h := cookie("42", dbVecAuthHash)
	h.Query = "token=" + token(43, hashPassword)
	if id, err := a.Authenticate(ctx, h, now); err != nil || id.Method != MethodSession {
		t.Errorf("inactive token next to a valid cookie: %+v, %v", id, err)
	}
	// A token refreshed in a frame is checked too.
	if _, err := a.AuthenticateToken(ctx, token(43, hashPassword), now); !isReason(err, ReasonUserInactive) {
		t.Errorf("refresh with an inactive user's token: %v", err)
	}
	id, err := a.AuthenticateToken(ctx, token(42, hashPassword), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Revalidate(ctx, id, now.Add(time.Minute)); err != nil {
		t.Errorf("re-check of a good token: %v", err)
	}
	f := &Failure{}
	if err := a.Revalidate(ctx, &Identity{UserID: "44", Method: MethodJWT, Expires: now.Add(time.Hour)}, now); !isReason(err, ReasonUserNotFound) {
		t.Errorf("re-check of a token for an unknown user: %v", err)
	} else if ok := asFailure(err, &f); !ok || f.Source != SourceRecheck {
		t.Errorf("re-check refusal source: %+v", f)
	}
}

func asFailure(err error, target **Failure) bool {
	f, ok := err.(*Failure)
	if ok {
		*target = f
	}
	return ok
}

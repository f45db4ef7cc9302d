package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests run the real Django signed_cookies engine, simplejwt and
// django.http.parse_cookie through compat/python/auth/mint.py: they mint
// credentials at test time, ask the libraries for their verdicts, and
// check that this package reaches the same verdicts.

const compatSecret = "compat-secret-key-9b7e3c1d5f2a4e6b8c0d1f3a5b7c9e1d"

// compatNow is the pinned clock of the Python side and of the Go checks.
const compatNow = 1767225600

type mintRequest struct {
	SecretKey          string           `json:"secret_key"`
	SecretKeyFallbacks []string         `json:"secret_key_fallbacks,omitempty"`
	SessionCookieAge   int              `json:"session_cookie_age"`
	SimpleJWT          map[string]any   `json:"simple_jwt,omitempty"`
	Ops                []map[string]any `json:"ops"`
}

type mintResponse struct {
	Versions          map[string]string `json:"versions"`
	SupportsFallbacks bool              `json:"supports_fallbacks"`
	Results           []json.RawMessage `json:"results"`
}

func runMint(t *testing.T, req mintRequest) mintResponse {
	t.Helper()
	testenv.RequirePython(t, "django", "rest_framework", "rest_framework_simplejwt", "jwt")
	if req.SessionCookieAge == 0 {
		req.SessionCookieAge = DefaultSessionCookieAge
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := filepath.Join(testenv.RepoRoot(), "compat", "python", "auth", "mint.py")
	out := testenv.RunPython(ctx, t, nil, in, script)
	var resp mintResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("mint.py output: %v\n%s", err, out)
	}
	if len(resp.Results) != len(req.Ops) {
		t.Fatalf("mint.py returned %d results for %d ops", len(resp.Results), len(req.Ops))
	}
	return resp
}

func values(t *testing.T, resp mintResponse) []string {
	t.Helper()
	vs := make([]string, len(resp.Results))
	for i, r := range resp.Results {
		var v struct{ Value string }
		if err := json.Unmarshal(r, &v); err != nil || v.Value == "" {
			t.Fatalf("result %d: %s", i, r)
		}
		vs[i] = v.Value
	}
	return vs
}

// flip changes the character at i to another base64url character.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestDjangoSignedCookieSessionsCompat(t *testing.T) {
	const backend = "django.contrib.auth.backends.ModelBackend"
	login := func(id string) map[string]any {
		return map[string]any{"_auth_user_id": id, "_auth_user_backend": backend, "_auth_user_hash": strings.Repeat("ab", 32)}
	}
	big := login("42")
	big["cart"] = strings.Repeat("item,", 300)
	big["note"] = "café ☕"
	age := int64(DefaultSessionCookieAge)
	mints := []struct {
		name string
		op   map[string]any
	}{
		{"logged in", map[string]any{"op": "mint_session", "at": compatNow - 3600, "data": login("42")}},
		{"age == cookie age", map[string]any{"op": "mint_session", "at": compatNow - age, "data": login("42")}},
		{"age == cookie age + 1", map[string]any{"op": "mint_session", "at": compatNow - age - 1, "data": login("42")}},
		{"signed in the future", map[string]any{"op": "mint_session", "at": compatNow + 600, "data": login("42")}},
		{"uuid user", map[string]any{"op": "mint_session", "at": compatNow, "data": login("6f1c5a2e-0000-4000-8000-000000000042")}},
		{"big session", map[string]any{"op": "mint_session", "at": compatNow, "data": big}},
		{"uncompressed", map[string]any{"op": "mint_session", "at": compatNow, "data": login("42"), "compress": false}},
		{"anonymous", map[string]any{"op": "mint_session", "at": compatNow, "data": map[string]any{"k": "v"}}},
		{"unknown backend", map[string]any{"op": "mint_session", "at": compatNow, "data": map[string]any{"_auth_user_id": "42", "_auth_user_backend": "x.Y", "_auth_user_hash": "h"}}},
		{"no auth hash", map[string]any{"op": "mint_session", "at": compatNow, "data": map[string]any{"_auth_user_id": "42", "_auth_user_backend": backend}}},
		{"wrong secret", map[string]any{"op": "mint_session", "at": compatNow, "data": login("42"), "key": "not-the-secret-key"}},
		{"db engine salt", map[string]any{"op": "mint_session", "at": compatNow, "data": login("42"), "salt": "django.contrib.sessions.SessionStore"}},
	}
	req := mintRequest{SecretKey: compatSecret}
	for _, m := range mints {
		req.Ops = append(req.Ops, m.op)
	}
	minted := values(t, runMint(t, req))
	byName := map[string]string{}
	for i, m := range mints {
		byName[m.name] = minted[i]
	}

	goSigner, err := NewTimestampSigner(compatSecret, nil, SignedCookiesSalt)
	if err != nil {
		t.Fatal(err)
	}
	loginJSON, _ := json.Marshal(login("7"))
	good := byName["logged in"]
	payloadEnd := strings.IndexByte(good, ':')
	cases := []struct {
		name, value, reason, user string
	}{
		{"logged in", good, "", "42"},
		{"age == cookie age", byName["age == cookie age"], "", "42"},
		{"age == cookie age + 1", byName["age == cookie age + 1"], ReasonSessionExpired, ""},
		{"signed in the future", byName["signed in the future"], "", "42"},
		{"uuid user", byName["uuid user"], "", "6f1c5a2e-0000-4000-8000-000000000042"},
		{"big session", byName["big session"], "", "42"},
		{"uncompressed", byName["uncompressed"], "", "42"},
		{"anonymous", byName["anonymous"], ReasonSessionNoUser, ""},
		{"unknown backend", byName["unknown backend"], ReasonSessionUnknownBackend, ""},
		{"no auth hash", byName["no auth hash"], ReasonSessionNoUser, ""},
		{"wrong secret", byName["wrong secret"], ReasonSessionBadSignature, ""},
		{"db engine salt", byName["db engine salt"], ReasonSessionBadSignature, ""},
		{"tampered payload", flip(good, payloadEnd/2), ReasonSessionBadSignature, ""},
		{"tampered signature", flip(good, len(good)-3), ReasonSessionBadSignature, ""},
		{"tampered timestamp", flip(good, payloadEnd+2), ReasonSessionBadSignature, ""},
		{"truncated", good[:len(good)-1], ReasonSessionBadSignature, ""},
		{"too short", "abcdefg", ReasonSessionMalformed, ""},
		{"signed by Go, compressed", goSigner.DumpsJSON(append(loginJSON, strings.Repeat(" ", 200)...), true, time.Unix(compatNow, 0)), "", "7"},
		{"signed by Go, plain", goSigner.DumpsJSON(loginJSON, false, time.Unix(compatNow, 0)), "", "7"},
	}
	check := mintRequest{SecretKey: compatSecret}
	for _, c := range cases {
		check.Ops = append(check.Ops, map[string]any{"op": "check_session", "at": compatNow, "value": c.value})
	}
	resp := runMint(t, check)
	t.Logf("Python stack: %v", resp.Versions)

	e := testSessions(t, func(c *Config) { c.SecretKey = compatSecret })
	for i, c := range cases {
		var py struct{ Session map[string]any }
		if err := json.Unmarshal(resp.Results[i], &py); err != nil {
			t.Fatal(err)
		}
		id, err := e.identify(context.Background(), c.value, time.Unix(compatNow, 0))
		if got := reasonOf(err); got != c.reason {
			t.Errorf("%s: Go reason %q (%v), want %q", c.name, got, err, c.reason)
		}
		// Django loads an empty session exactly when the cookie does not
		// verify or decode; the user checks come after loading.
		refusedBySigning := c.reason == ReasonSessionBadSignature || c.reason == ReasonSessionExpired || c.reason == ReasonSessionMalformed
		if (len(py.Session) == 0) != refusedBySigning {
			t.Errorf("%s: Django loaded %v, Go reason %q", c.name, py.Session, c.reason)
		}
		if c.reason == "" {
			if id == nil || id.UserID != c.user || py.Session["_auth_user_id"] != c.user {
				t.Errorf("%s: Go %+v, Django %v, want user %s", c.name, id, py.Session["_auth_user_id"], c.user)
			}
		}
	}
}

func TestDjangoSignedCookieFallbackKeysCompat(t *testing.T) {
	const oldKey = "compat-OLD-secret-key-rotated-out-0000000000000000"
	minted := runMint(t, mintRequest{SecretKey: oldKey, Ops: []map[string]any{{
		"op": "mint_session", "at": compatNow,
		"data": map[string]any{"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": "h"},
	}}})
	cookie := values(t, minted)[0]
	resp := runMint(t, mintRequest{SecretKey: compatSecret, SecretKeyFallbacks: []string{oldKey},
		Ops: []map[string]any{{"op": "check_session", "at": compatNow, "value": cookie}}})
	var py struct{ Session map[string]any }
	if err := json.Unmarshal(resp.Results[0], &py); err != nil {
		t.Fatal(err)
	}
	djangoAccepts := len(py.Session) > 0
	if djangoAccepts != resp.SupportsFallbacks {
		t.Errorf("Django %s: fallback cookie accepted = %v", resp.Versions["django"], djangoAccepts)
	}
	withFallback := testSessions(t, func(c *Config) { c.SecretKey, c.SecretKeyFallbacks = compatSecret, []string{oldKey} })
	without := testSessions(t, func(c *Config) { c.SecretKey = compatSecret })
	now := time.Unix(compatNow, 0)
	if id, err := withFallback.identify(context.Background(), cookie, now); err != nil || id.UserID != "42" {
		t.Errorf("Go with secret_key_fallbacks: %+v, %v", id, err)
	}
	if _, err := without.identify(context.Background(), cookie, now); reasonOf(err) != ReasonSessionBadSignature {
		t.Errorf("Go without fallbacks: %v", err)
	}
	if !resp.SupportsFallbacks {
		t.Logf("Django %s has no SECRET_KEY_FALLBACKS; the Go side matches Django >= 4.1", resp.Versions["django"])
	}
}

// jwtCase is one token with the Go verdict and what simplejwt says.
type jwtCase struct {
	name   string
	token  string
	reason string // Go's refusal reason, "" to accept
	user   string
	// pyOK is simplejwt's verdict. It differs from Go's only for the
	// documented cases where PyJWT 2.6 / simplejwt 5.2 is laxer.
	pyOK bool
}

func TestDjangoSimpleJWTCompat(t *testing.T) {
	access := func(at int64, claims map[string]any) map[string]any {
		return map[string]any{"op": "mint_token", "class": "access", "at": at, "claims": claims}
	}
	uid := func(v any) map[string]any { return map[string]any{"user_id": v} }
	mints := []struct {
		name string
		op   map[string]any
	}{
		{"int user", access(compatNow-60, uid(42))},
		{"string user", access(compatNow-60, uid("42"))},
		{"expired", access(compatNow-600, uid(42))},
		{"exp == now", access(compatNow-300, uid(42))},
		{"exp == now+1", access(compatNow-299, uid(42))},
		{"refresh", map[string]any{"op": "mint_token", "class": "refresh", "at": compatNow - 60, "claims": uid(42)}},
		{"sliding", map[string]any{"op": "mint_token", "class": "sliding", "at": compatNow - 60, "claims": uid(42)}},
		{"wrong key", map[string]any{"op": "mint_token", "at": compatNow - 60, "claims": uid(42), "key": "not-the-secret-key"}},
		{"HS512", map[string]any{"op": "mint_token", "at": compatNow - 60, "claims": uid(42), "algorithm": "HS512"}},
		{"alg none", map[string]any{"op": "mint_token", "at": compatNow - 60, "claims": uid(42), "algorithm": "none"}},
		{"no jti", map[string]any{"op": "mint_token", "at": compatNow - 60, "claims": uid(42), "drop": []string{"jti"}}},
		{"no user", map[string]any{"op": "mint_token", "at": compatNow - 60}},
		{"no exp", map[string]any{"op": "mint_token", "at": compatNow - 60, "claims": uid(42), "drop": []string{"exp"}}},
		{"iat in future", access(compatNow-60, map[string]any{"user_id": 42, "iat": compatNow + 60})},
		{"nbf in future", access(compatNow-60, map[string]any{"user_id": 42, "nbf": compatNow + 60})},
		{"exp float", access(compatNow-60, map[string]any{"user_id": 42, "exp": compatNow + 30.5})},
		{"exp string", access(compatNow-60, map[string]any{"user_id": 42, "exp": fmt.Sprint(compatNow + 60)})},
		{"user bool", access(compatNow-60, uid(true))},
		{"user uuid", access(compatNow-60, uid("6f1c5a2e-0000-4000-8000-000000000042"))},
		{"extra claims", access(compatNow-60, map[string]any{"user_id": 42, "role": "admin", "aud": "x"})},
	}
	req := mintRequest{SecretKey: compatSecret}
	for _, m := range mints {
		req.Ops = append(req.Ops, m.op)
	}
	minted := values(t, runMint(t, req))
	tok := map[string]string{}
	for i, m := range mints {
		tok[m.name] = minted[i]
	}
	good := tok["string user"]
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64Encode([]byte(`{"token_type":"access","exp":1767225840,"iat":1767225540,"jti":"x","user_id":"1"}`)) + "." + parts[2]
	sig := parts[2]
	cases := []jwtCase{
		{"int user", tok["int user"], "", "42", true},
		{"string user", good, "", "42", true},
		{"expired", tok["expired"], ReasonJWTExpired, "", false},
		{"exp == now", tok["exp == now"], ReasonJWTExpired, "", false},
		{"exp == now+1", tok["exp == now+1"], "", "42", true},
		{"refresh as access", tok["refresh"], ReasonJWTWrongTokenType, "", false},
		{"sliding as access", tok["sliding"], ReasonJWTWrongTokenType, "", false},
		{"wrong key", tok["wrong key"], ReasonJWTBadSignature, "", false},
		{"HS512 while HS256 configured", tok["HS512"], ReasonJWTAlgNotAllowed, "", false},
		{"alg none", tok["alg none"], ReasonJWTAlgNotAllowed, "", false},
		{"no jti", tok["no jti"], ReasonJWTBadClaims, "", false},
		{"no user", tok["no user"], ReasonJWTNoUser, "", false},
		{"no exp", tok["no exp"], ReasonJWTBadClaims, "", false},
		{"iat in future", tok["iat in future"], ReasonJWTNotYetValid, "", false},
		{"nbf in future", tok["nbf in future"], ReasonJWTNotYetValid, "", false},
		{"exp float", tok["exp float"], "", "42", true},
		{"user uuid", tok["user uuid"], "", "6f1c5a2e-0000-4000-8000-000000000042", true},
		{"extra claims", tok["extra claims"], "", "42", true},
		{"tampered payload", tampered, ReasonJWTBadSignature, "", false},
		{"signature stripped", parts[0] + "." + parts[1] + ".", ReasonJWTBadSignature, "", false},
		{"signature truncated", good[:len(good)-3], ReasonJWTBadSignature, "", false},
		{"two segments", parts[0] + "." + parts[1], ReasonJWTMalformed, "", false},
		// simplejwt crashes (HTTP 500) on a string exp; Go refuses it.
		{"exp string", tok["exp string"], ReasonJWTBadClaims, "", false},
		// Documented divergences: the library is laxer, Go is not.
		{"user bool", tok["user bool"], ReasonJWTNoUser, "", true},
		{"junk in signature", parts[0] + "." + parts[1] + "." + sig[:10] + "!!!!" + sig[10:], ReasonJWTMalformed, "", pyJWTIsLax},
	}
	// These depend on the random jti: only some signatures can show them.
	if strings.ContainsAny(sig, "-_") {
		std := strings.NewReplacer("-", "+", "_", "/").Replace(sig)
		cases = append(cases, jwtCase{"standard base64 alphabet", parts[0] + "." + parts[1] + "." + std, ReasonJWTMalformed, "", pyJWTIsLax})
	}
	if last := sig[len(sig)-1]; b64Flip(last) != last {
		cases = append(cases, jwtCase{"unused signature bits set", parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string(b64Flip(last)), ReasonJWTMalformed, "", true})
	}
	checkJWTCases(t, mintRequest{SecretKey: compatSecret}, testJWT(t, func(j *SimpleJWTConfig) { j.SigningKey = compatSecret }), cases)
}

// pyJWTIsLax is true for PyJWT before 2.13, which drops characters outside
// the base64url alphabet; the Debian 12 stack has 2.6.
const pyJWTIsLax = true

func checkJWTCases(t *testing.T, base mintRequest, v *simpleJWT, cases []jwtCase) {
	t.Helper()
	base.Ops = nil
	for _, c := range cases {
		base.Ops = append(base.Ops, map[string]any{"op": "check_token", "at": compatNow, "value": c.token})
	}
	resp := runMint(t, base)
	t.Logf("Python stack: %v", resp.Versions)
	for i, c := range cases {
		var py struct {
			OK     bool `json:"ok"`
			UserID any  `json:"user_id"`
			Error  string
		}
		if err := json.Unmarshal(resp.Results[i], &py); err != nil {
			t.Fatal(err)
		}
		id, err := v.identify(c.token, time.Unix(compatNow, 0))
		if got := reasonOf(err); got != c.reason {
			t.Errorf("%s: Go reason %q (%v), want %q", c.name, got, err, c.reason)
		}
		if py.OK != c.pyOK {
			t.Errorf("%s: simplejwt %s ok=%v (%s), expected ok=%v", c.name, resp.Versions["simplejwt"], py.OK, py.Error, c.pyOK)
		}
		if c.reason == "" {
			if id == nil || id.UserID != c.user || fmt.Sprint(py.UserID) != c.user {
				t.Errorf("%s: Go %+v, simplejwt user %v, want %s", c.name, id, py.UserID, c.user)
			}
		}
	}
}

func TestDjangoSimpleJWTSettingsCompat(t *testing.T) {
	t.Run("leeway", func(t *testing.T) {
		base := mintRequest{SecretKey: compatSecret, SimpleJWT: map[string]any{"LEEWAY": 30}}
		exp := func(at int64, e int64) map[string]any {
			return map[string]any{"op": "mint_token", "at": at, "claims": map[string]any{"user_id": 5, "exp": e}}
		}
		iat := func(i int64) map[string]any {
			return map[string]any{"op": "mint_token", "at": compatNow - 60, "claims": map[string]any{"user_id": 5, "iat": i}}
		}
		req := base
		req.Ops = []map[string]any{exp(compatNow-600, compatNow-29), exp(compatNow-600, compatNow-30), iat(compatNow + 30), iat(compatNow + 31)}
		toks := values(t, runMint(t, req))
		cases := []jwtCase{
			{"exp now-29", toks[0], "", "5", true},
			{"exp now-30", toks[1], ReasonJWTExpired, "", false},
			{"iat now+30", toks[2], "", "5", true},
			{"iat now+31", toks[3], ReasonJWTNotYetValid, "", false},
		}
		checkJWTCases(t, base, testJWT(t, func(j *SimpleJWTConfig) { j.Leeway, j.SigningKey = 30, compatSecret }), cases)
	})
	t.Run("HS512 and own signing key", func(t *testing.T) {
		base := mintRequest{SecretKey: compatSecret, SimpleJWT: map[string]any{"ALGORITHM": "HS512", "SIGNING_KEY": "jwt-only-key"}}
		req := base
		req.Ops = []map[string]any{
			{"op": "mint_token", "at": compatNow - 60, "claims": map[string]any{"user_id": 5}},
			{"op": "mint_token", "at": compatNow - 60, "claims": map[string]any{"user_id": 5}, "algorithm": "HS256", "key": "jwt-only-key"},
			{"op": "mint_token", "at": compatNow - 60, "claims": map[string]any{"user_id": 5}, "algorithm": "HS512", "key": compatSecret},
		}
		toks := values(t, runMint(t, req))
		cases := []jwtCase{
			{"HS512 with SIGNING_KEY", toks[0], "", "5", true},
			{"HS256 token", toks[1], ReasonJWTAlgNotAllowed, "", false},
			{"signed with SECRET_KEY", toks[2], ReasonJWTBadSignature, "", false},
		}
		checkJWTCases(t, base, testJWT(t, func(j *SimpleJWTConfig) { j.Algorithm, j.SigningKey = "HS512", "jwt-only-key" }), cases)
	})
}

func TestDjangoAuthorizationHeaderCompat(t *testing.T) {
	minted := values(t, runMint(t, mintRequest{SecretKey: compatSecret, Ops: []map[string]any{
		{"op": "mint_token", "at": compatNow - 60, "claims": map[string]any{"user_id": 42}},
	}}))
	tok := minted[0]
	headers := []string{
		"Bearer " + tok, "bearer " + tok, "  Bearer    " + tok + "  ", "Bearer\t" + tok, "Bearer\x0b" + tok,
		"Bearer", "Bearer " + tok + " extra", "Token " + tok, "JWT " + tok, "", "   ", "Bearer junk",
		"Bearer\u00a0" + tok,
	}
	req := mintRequest{SecretKey: compatSecret}
	for _, h := range headers {
		req.Ops = append(req.Ops, map[string]any{"op": "check_header", "at": compatNow, "authorization": h})
	}
	resp := runMint(t, req)
	a := testAuthenticator(t, nil, func(c *Config) { c.SecretKey = compatSecret })
	for i, h := range headers {
		var py struct {
			Result string
			UserID any `json:"user_id"`
		}
		if err := json.Unmarshal(resp.Results[i], &py); err != nil {
			t.Fatal(err)
		}
		id, err := a.Authenticate(context.Background(), Handshake{Authorization: h}, time.Unix(compatNow, 0))
		goResult := "none"
		switch {
		case err != nil:
			goResult = "error"
		case id != nil:
			goResult = "ok"
		}
		if goResult != py.Result {
			t.Errorf("Authorization %q: Go %s (%v), simplejwt %s", h, goResult, err, py.Result)
		}
		if goResult == "ok" && id.UserID != fmt.Sprint(py.UserID) {
			t.Errorf("Authorization %q: Go user %s, simplejwt %v", h, id.UserID, py.UserID)
		}
	}
}

func TestDjangoParseCookieCompat(t *testing.T) {
	headers := []string{
		"", "sessionid=abc", "a=1; a=2", "a=b=c", "justvalue; a=1", "=; ; a=1;;", "  a  =  1  ",
		"\x1ca=1\xa0; \x85b=\t2\x0b", `a="quoted"`, `a="\101\102"`, `a="x\"y"`, `a="\\012"`, `a="\400"`,
		`a="\12"`, `a="x\"`, "a=\"\\\n\"", `a="unterminated`, `a="`, `a=""`, "caf\xe9=\xe9t\xe9", `a="\351"`,
		"sessionid=first; sessionid=second", `a="\"\"\\"`, "a=\"\\\\\\101\"",
	}
	// Random headers over the characters that matter to the parser.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab=; \t\"\\\\01237\n\xa0\x85\xe9\x1c"
	for range 300 {
		n := rng.IntN(24)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		headers = append(headers, string(b))
	}
	req := mintRequest{SecretKey: compatSecret}
	for _, h := range headers {
		// The ASGI header bytes reach parse_cookie decoded as latin-1.
		req.Ops = append(req.Ops, map[string]any{"op": "parse_cookie", "header": latin1String(h)})
	}
	resp := runMint(t, req)
	for i, h := range headers {
		var py struct{ Cookies map[string]string }
		if err := json.Unmarshal(resp.Results[i], &py); err != nil {
			t.Fatal(err)
		}
		if got := ParseCookie(h); !maps.Equal(got, py.Cookies) {
			t.Errorf("ParseCookie(%q) = %q, Django %q", h, got, py.Cookies)
		}
	}
}

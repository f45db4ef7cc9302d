package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"hash"
	"reflect"
	"strings"
	"testing"
	"time"
)

// signJWT builds an HS* token from literal header and payload JSON, the way
// PyJWT lays it out.
func signJWT(alg, key, header, payload string) string {
	var h func() hash.Hash
	switch alg {
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		h = sha256.New
	}
	si := b64Encode([]byte(header)) + "." + b64Encode([]byte(payload))
	m := hmac.New(h, []byte(key))
	m.Write([]byte(si))
	return si + "." + b64Encode(m.Sum(nil))
}

const hs256Header = `{"alg":"HS256","typ":"JWT"}`

// accessPayload is what simplejwt writes for user 42 at vecNow-60, with
// overrides; a nil override removes the claim.
func accessPayload(overrides map[string]any) string {
	p := map[string]any{
		"token_type": "access", "exp": vecNow + 240, "iat": vecNow - 60,
		"jti": "0123456789abcdef0123456789abcdef", "user_id": "42",
	}
	for k, v := range overrides {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func testJWT(t testing.TB, mutate func(*SimpleJWTConfig)) *simpleJWT {
	t.Helper()
	cfg := Config{SecretKey: vecSecret, DisableSessions: true}
	if mutate != nil {
		mutate(&cfg.SimpleJWT)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	v, err := newSimpleJWT(&cfg.SimpleJWT)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// reasonOf returns the Failure reason of err, "" for nil, or "?" for an
// error of another type.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	var f *Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	return "?"
}

func TestSimpleJWTVerdicts(t *testing.T) {
	v := testJWT(t, nil)
	now := time.Unix(vecNow, 0)
	good := signJWT("HS256", vecSecret, hs256Header, accessPayload(nil))
	h, p, s := func() (string, string, string) {
		parts := strings.Split(good, ".")
		return parts[0], parts[1], parts[2]
	}()
	// A signature whose unused low bits are set decodes to the same bytes.
	lastBits := s[:len(s)-1] + string(b64Flip(s[len(s)-1]))
	cases := []struct {
		name, token, reason, user string
	}{
		{"valid, user_id string", good, "", "42"},
		{"valid, user_id int", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"user_id": 42})), "", "42"},
		{"user_id integral float", signJWT("HS256", vecSecret, hs256Header, `{"token_type":"access","exp":1767225840,"jti":"j","user_id":42.0}`), "", "42"},
		{"user_id exponent", signJWT("HS256", vecSecret, hs256Header, `{"token_type":"access","exp":1767225840,"jti":"j","user_id":4.2e1}`), "", "42"},
		{"user_id uuid", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"user_id": "6f1c5a2e-0000-4000-8000-000000000042"})), "", "6f1c5a2e-0000-4000-8000-000000000042"},
		{"user_id fraction", signJWT("HS256", vecSecret, hs256Header, `{"token_type":"access","exp":1767225840,"jti":"j","user_id":42.5}`), ReasonJWTNoUser, ""},
		{"user_id bool", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"user_id": true})), ReasonJWTNoUser, ""},
		{"user_id object", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"user_id": map[string]any{"id": 42}})), ReasonJWTNoUser, ""},
		{"user_id empty", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"user_id": ""})), ReasonJWTNoUser, ""},
		{"user_id null", signJWT("HS256", vecSecret, hs256Header, `{"token_type":"access","exp":1767225840,"jti":"j","user_id":null}`), ReasonJWTNoUser, ""},
		{"missing user_id", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"user_id": nil})), ReasonJWTNoUser, ""},
		{"exp == now", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": vecNow})), ReasonJWTExpired, ""},
		{"exp == now+1", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": vecNow + 1})), "", "42"},
		{"exp float", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": vecNow + 240.5})), "", "42"},
		{"exp float just past", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": vecNow + 0.5})), ReasonJWTExpired, ""},
		{"exp string", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": "1767225840"})), ReasonJWTBadClaims, ""},
		{"exp bool", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": true})), ReasonJWTBadClaims, ""},
		{"exp huge", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": 1e300})), ReasonJWTBadClaims, ""},
		{"missing exp", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": nil})), ReasonJWTBadClaims, ""},
		{"missing iat", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"iat": nil})), "", "42"},
		{"iat in future", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"iat": vecNow + 60})), ReasonJWTNotYetValid, ""},
		{"iat == now", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"iat": vecNow})), "", "42"},
		{"iat string", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"iat": "1"})), ReasonJWTBadClaims, ""},
		{"nbf in future", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"nbf": vecNow + 60})), ReasonJWTNotYetValid, ""},
		{"nbf past", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"nbf": vecNow - 60})), "", "42"},
		{"missing jti", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"jti": nil})), ReasonJWTBadClaims, ""},
		{"jti number", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"jti": 7})), ReasonJWTBadClaims, ""},
		{"sub number", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"sub": 7})), ReasonJWTBadClaims, ""},
		{"missing token_type", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"token_type": nil})), ReasonJWTWrongTokenType, ""},
		{"refresh token", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"token_type": "refresh"})), ReasonJWTWrongTokenType, ""},
		{"sliding token", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"token_type": "sliding"})), ReasonJWTWrongTokenType, ""},
		{"aud and iss not configured", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"aud": "x", "iss": "y"})), "", "42"},
		{"extra claims", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"role": "admin"})), "", "42"},
		{"no typ header", signJWT("HS256", vecSecret, `{"alg":"HS256"}`, accessPayload(nil)), "", "42"},
		{"kid not string", signJWT("HS256", vecSecret, `{"alg":"HS256","typ":"JWT","kid":5}`, accessPayload(nil)), ReasonJWTMalformed, ""},
		{"kid string", signJWT("HS256", vecSecret, `{"alg":"HS256","typ":"JWT","kid":"k1"}`, accessPayload(nil)), "", "42"},
		{"crit", signJWT("HS256", vecSecret, `{"alg":"HS256","typ":"JWT","crit":["exp"]}`, accessPayload(nil)), ReasonJWTMalformed, ""},
		{"wrong key", signJWT("HS256", "attacker-guess-not-the-real-secret-key-000000000000", hs256Header, accessPayload(nil)), ReasonJWTBadSignature, ""},
		{"tampered payload", h + "." + b64Encode([]byte(accessPayload(map[string]any{"user_id": "1"}))) + "." + s, ReasonJWTBadSignature, ""},
		{"signature stripped", h + "." + p + ".", ReasonJWTBadSignature, ""},
		{"alg none", b64Encode([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + p + ".", ReasonJWTAlgNotAllowed, ""},
		{"alg None", b64Encode([]byte(`{"alg":"None"}`)) + "." + p + ".", ReasonJWTAlgNotAllowed, ""},
		{"alg missing", signJWT("HS256", vecSecret, `{"typ":"JWT"}`, accessPayload(nil)), ReasonJWTAlgNotAllowed, ""},
		{"alg unknown", signJWT("HS256", vecSecret, `{"alg":"XS256"}`, accessPayload(nil)), ReasonJWTAlgNotAllowed, ""},
		{"HS512 with the same key", signJWT("HS512", vecSecret, `{"alg":"HS512","typ":"JWT"}`, accessPayload(nil)), ReasonJWTAlgNotAllowed, ""},
		{"RS256 header", signJWT("HS256", vecSecret, `{"alg":"RS256","typ":"JWT"}`, accessPayload(nil)), ReasonJWTAlgNotAllowed, ""},
		{"signature padded", good + "=", ReasonJWTMalformed, ""},
		{"junk in signature", h + "." + p + "." + s[:10] + "!" + s[10:], ReasonJWTMalformed, ""},
		{"four junk chars", h + "." + p + "." + s[:10] + "!!!!" + s[10:], ReasonJWTMalformed, ""},
		{"standard alphabet", h + "." + p + "." + strings.NewReplacer("-", "+", "_", "/").Replace(s) + "+/", ReasonJWTMalformed, ""},
		{"newline in signature", h + "." + p + "." + s[:10] + "\n" + s[10:], ReasonJWTMalformed, ""},
		{"unused signature bits set", h + "." + p + "." + lastBits, ReasonJWTMalformed, ""},
		{"two segments", h + "." + p, ReasonJWTMalformed, ""},
		{"four segments", good + ".x", ReasonJWTMalformed, ""},
		{"space inside", h + "." + p + ". " + s, ReasonJWTMalformed, ""},
		{"empty", "", ReasonJWTMalformed, ""},
		{"too long", signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"pad": strings.Repeat("x", maxTokenBytes)})), ReasonJWTMalformed, ""},
		{"payload array", signJWT("HS256", vecSecret, hs256Header, `[1,2]`), ReasonJWTMalformed, ""},
		{"payload null", signJWT("HS256", vecSecret, hs256Header, `null`), ReasonJWTMalformed, ""},
		{"payload trailing data", signJWT("HS256", vecSecret, hs256Header, accessPayload(nil)+" x"), ReasonJWTMalformed, ""},
		{"header not JSON", signJWT("HS256", vecSecret, `{"alg":`, accessPayload(nil)), ReasonJWTMalformed, ""},
		{"literal null", "null", ReasonJWTMalformed, ""},
	}
	for _, c := range cases {
		id, err := v.identify(c.token, now)
		if got := reasonOf(err); got != c.reason {
			t.Errorf("%s: reason %q (%v), want %q", c.name, got, err, c.reason)
			continue
		}
		if c.reason == "" {
			if id == nil || id.UserID != c.user || id.Method != MethodJWT {
				t.Errorf("%s: identity %+v, want user %q", c.name, id, c.user)
			}
		} else if id != nil {
			t.Errorf("%s: refused with an identity", c.name)
		}
	}
}

// b64Flip sets the lowest bit of a base64url character's value.
func b64Flip(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)|1]
}

func TestSimpleJWTIdentityFields(t *testing.T) {
	v := testJWT(t, nil)
	tok := signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"exp": vecNow + 240.9}))
	id, err := v.identify(tok, time.Unix(vecNow, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{UserID: "42", Method: MethodJWT, Expires: time.Unix(vecNow+240, 0), TokenID: "0123456789abcdef0123456789abcdef"}
	if !reflect.DeepEqual(*id, want) {
		t.Errorf("identity %+v, want %+v", *id, want)
	}
}

func TestSimpleJWTLeeway(t *testing.T) {
	v := testJWT(t, func(j *SimpleJWTConfig) { j.Leeway = 30 })
	now := time.Unix(vecNow, 0)
	cases := []struct {
		claims map[string]any
		reason string
	}{
		{map[string]any{"exp": vecNow - 10}, ""},
		{map[string]any{"exp": vecNow - 29}, ""},
		{map[string]any{"exp": vecNow - 30}, ReasonJWTExpired},
		{map[string]any{"exp": vecNow - 31}, ReasonJWTExpired},
		{map[string]any{"iat": vecNow + 20}, ""},
		{map[string]any{"iat": vecNow + 30}, ""},
		{map[string]any{"iat": vecNow + 31}, ReasonJWTNotYetValid},
		{map[string]any{"nbf": vecNow + 31}, ReasonJWTNotYetValid},
	}
	for _, c := range cases {
		_, err := v.identify(signJWT("HS256", vecSecret, hs256Header, accessPayload(c.claims)), now)
		if got := reasonOf(err); got != c.reason {
			t.Errorf("leeway 30, %v: %q (%v), want %q", c.claims, got, err, c.reason)
		}
	}
}

func TestSimpleJWTAlgorithmsAndKeys(t *testing.T) {
	now := time.Unix(vecNow, 0)
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		v := testJWT(t, func(j *SimpleJWTConfig) { j.Algorithm = alg; j.SigningKey = "separate-signing-key" })
		header := `{"alg":"` + alg + `","typ":"JWT"}`
		if _, err := v.identify(signJWT(alg, "separate-signing-key", header, accessPayload(nil)), now); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
		if _, err := v.identify(signJWT(alg, vecSecret, header, accessPayload(nil)), now); reasonOf(err) != ReasonJWTBadSignature {
			t.Errorf("%s signed with SECRET_KEY instead of SIGNING_KEY: %v", alg, err)
		}
		for _, other := range []string{"HS256", "HS384", "HS512"} {
			if other == alg {
				continue
			}
			tok := signJWT(other, "separate-signing-key", `{"alg":"`+other+`"}`, accessPayload(nil))
			if _, err := v.identify(tok, now); reasonOf(err) != ReasonJWTAlgNotAllowed {
				t.Errorf("%s configured, %s token: %v", alg, other, err)
			}
		}
	}
}

func TestSimpleJWTCustomClaimNames(t *testing.T) {
	v := testJWT(t, func(j *SimpleJWTConfig) {
		j.UserIDClaim, j.TokenTypeClaim, j.JTIClaim = "uid", "kind", "id"
	})
	now := time.Unix(vecNow, 0)
	ok := signJWT("HS256", vecSecret, hs256Header, `{"kind":"access","exp":1767225840,"id":"x","uid":7}`)
	if id, err := v.identify(ok, now); err != nil || id.UserID != "7" || id.TokenID != "x" {
		t.Errorf("custom claims: %+v, %v", id, err)
	}
	stock := signJWT("HS256", vecSecret, hs256Header, accessPayload(nil))
	if _, err := v.identify(stock, now); err == nil {
		t.Error("a token with the default claim names passed custom names")
	}
}

func TestSplitAuthorization(t *testing.T) {
	cases := map[string][]string{
		"Bearer abc":          {"Bearer", "abc"},
		"  Bearer    abc  ":   {"Bearer", "abc"},
		"Bearer\tabc":         {"Bearer", "abc"},
		"Bearer\x0babc\x0c":   {"Bearer", "abc"},
		"":                    nil,
		"Bearer\u00a0abc":     {"Bearer\u00a0abc"}, // not ASCII whitespace
		"Bearer abc\r\nextra": {"Bearer", "abc", "extra"},
	}
	for in, want := range cases {
		got := splitAuthorization(in)
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("splitAuthorization(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzJWT checks that no token makes the validator panic, and that whatever
// it accepts really is a signed, unexpired access token naming a user. The
// header and payload arguments are signed with the key, so the fuzzer
// reaches the claim checks, not only the signature check.
func FuzzJWT(f *testing.F) {
	good := signJWT("HS256", vecSecret, hs256Header, accessPayload(nil))
	f.Add(good, []byte(hs256Header), []byte(accessPayload(nil)))
	f.Add("a.b.c", []byte(`{"alg":"none"}`), []byte(accessPayload(map[string]any{"user_id": 42})))
	f.Add(good+"=", []byte(`{"alg":"HS256","kid":5}`), []byte(accessPayload(map[string]any{"exp": vecNow + 0.5})))
	f.Add("", []byte(`{"alg":"HS256","crit":[]}`), []byte(`{"token_type":"access","exp":1e300,"jti":"","user_id":4.2e1}`))
	f.Add("..", []byte(`{"alg":"HS256"}`), []byte(`{"token_type":"refresh","exp":1767225840,"jti":"j","user_id":"42"}`))
	f.Add("x.y.z", []byte(hs256Header), []byte(`{"token_type":"access","exp":1767225840,"iat":"1","jti":"j","user_id":[1]}`))
	v := testJWT(f, nil)
	now := time.Unix(vecNow, 0)
	f.Fuzz(func(t *testing.T, raw string, header, payload []byte) {
		check := func(token string) {
			id, err := v.identify(token, now)
			if err != nil {
				if id != nil {
					t.Fatalf("refused with an identity")
				}
				if reasonOf(err) == "?" {
					t.Fatalf("error is not a *Failure: %v", err)
				}
				// Messages hold no '.', so a dotted token inside one was quoted.
				if strings.Contains(token, ".") && strings.Contains(err.Error(), token) {
					t.Fatalf("error text contains the token")
				}
				return
			}
			// Independent check of what was accepted.
			parts := strings.Split(token, ".")
			if len(parts) != 3 || signJWT("HS256", vecSecret, decodeOrEmpty(parts[0]), decodeOrEmpty(parts[1])) != token {
				t.Fatalf("accepted a token that is not HS256-signed with the key: %q", token)
			}
			var claims map[string]any
			if err := json.Unmarshal([]byte(decodeOrEmpty(parts[1])), &claims); err != nil {
				t.Fatalf("accepted a payload that is not a JSON object: %v", err)
			}
			exp, isNum := claims["exp"].(float64)
			if claims["token_type"] != "access" || !isNum || exp < vecNow+1 || id.UserID == "" {
				t.Fatalf("accepted %v as %+v", claims, id)
			}
			if !id.Expires.After(now) {
				t.Fatalf("accepted an expired token: %+v", id)
			}
		}
		check(raw)
		check(signJWT("HS256", vecSecret, string(header), string(payload)))
	})
}

func decodeOrEmpty(seg string) string {
	b, err := b64Decode(seg)
	if err != nil {
		return ""
	}
	return string(b)
}

package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests have the real cryptography package make RSA and EC key
// pairs, the real simplejwt (PyJWT for PS* where simplejwt 5.2 refuses
// them) sign tokens with them, and the real AccessToken judge every token
// under the same SIMPLE_JWT settings as the Go verifier, on both Python
// stacks.

const (
	compatAudience = "sidecar-tests"
	compatIssuer   = "https://id.example.com"
)

// mintOn runs compat/python/auth/mint.py in one Python stack.
func mintOn(t *testing.T, st testenv.PyStack, req mintRequest) mintResponse {
	t.Helper()
	if req.SessionCookieAge == 0 {
		req.SessionCookieAge = DefaultSessionCookieAge
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := st.Run(ctx, t, in, filepath.Join(testenv.RepoRoot(), "compat", "python", "auth", "mint.py"))
	var resp mintResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("mint.py output: %v\n%s", err, out)
	}
	if len(resp.Results) != len(req.Ops) {
		t.Fatalf("mint.py returned %d results for %d ops", len(resp.Results), len(req.Ops))
	}
	return resp
}

type pyKeyPair struct {
	Private     string `json:"private"`
	Public      string `json:"public"`
	PublicPKCS1 string `json:"public_pkcs1"`
}

func TestDjangoSimpleJWTAsymmetricCompat(t *testing.T) {
	for _, st := range testenv.PythonStacks(t, "django", "rest_framework_simplejwt", "jwt", "cryptography") {
		t.Run(st.Name, func(t *testing.T) { asymmetricCompat(t, st) })
	}
}

func asymmetricCompat(t *testing.T, st testenv.PyStack) {
	// Two key pairs per kind: one that Django signs with, one it does not.
	kinds := []struct{ name, curve string }{{"rsa", ""}, {"ec", "P-256"}, {"ec", "P-384"}, {"ec", "P-521"}}
	var ops []map[string]any
	for _, k := range kinds {
		for range 2 {
			op := map[string]any{"op": "keypair", "kind": k.name}
			if k.curve != "" {
				op["curve"] = k.curve
			}
			ops = append(ops, op)
		}
	}
	resp := mintOn(t, st, mintRequest{SecretKey: compatSecret, Ops: ops})
	pairs := map[string][2]pyKeyPair{}
	for i, k := range kinds {
		var a, b pyKeyPair
		if json.Unmarshal(resp.Results[2*i], &a) != nil || json.Unmarshal(resp.Results[2*i+1], &b) != nil || a.Public == "" {
			t.Fatalf("keypair %v: %s", k, resp.Results[2*i])
		}
		pairs[k.name+k.curve] = [2]pyKeyPair{a, b}
	}
	// simplejwt 5.2 refuses PS* in its settings; later releases accept it.
	psInSimpleJWT := !strings.HasPrefix(resp.Versions["simplejwt"], "5.2")
	t.Logf("%s stack: %v, PS* in simplejwt: %v", st.Name, resp.Versions, psInSimpleJWT)

	algs := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
	keysFor := func(alg string) (key, other pyKeyPair) {
		kp := pairs["rsa"]
		if alg[:2] == "ES" {
			kp = pairs["ec"+ecCurve(alg).Params().Name]
		}
		return kp[0], kp[1]
	}
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"user_id": 7, "aud": compatAudience, "iss": compatIssuer}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	names := []string{"valid", "other key", "refresh", "no aud", "aud list", "wrong aud", "wrong iss", "expired", "alg none", "HS256 with SECRET_KEY"}
	// One Python run signs the tokens of every algorithm.
	var mintOps []map[string]any
	for _, alg := range algs {
		key, other := keysFor(alg)
		mint := func(class string, priv string, extra map[string]any) map[string]any {
			return map[string]any{"op": "mint_token", "at": compatNow - 60, "class": class, "algorithm": alg,
				"key": priv, "claims": claims(extra), "pyjwt": alg[:2] == "PS" && !psInSimpleJWT}
		}
		expired := mint("access", key.Private, nil)
		expired["at"] = compatNow - 600
		mintOps = append(mintOps,
			mint("access", key.Private, nil),
			mint("access", other.Private, nil),
			mint("refresh", key.Private, nil),
			mint("access", key.Private, map[string]any{"aud": nil}),
			mint("access", key.Private, map[string]any{"aud": []string{"other", compatAudience}}),
			mint("access", key.Private, map[string]any{"aud": "other"}),
			mint("access", key.Private, map[string]any{"iss": "https://evil.example.com"}),
			expired,
			map[string]any{"op": "mint_token", "at": compatNow - 60, "algorithm": "none", "claims": claims(nil)},
			map[string]any{"op": "mint_token", "at": compatNow - 60, "algorithm": "HS256", "claims": claims(nil)},
		)
	}
	allMinted := values(t, mintOn(t, st, mintRequest{SecretKey: compatSecret, Ops: mintOps}))

	for i, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			key, _ := keysFor(alg)
			ps := alg[:2] == "PS"
			minted := allMinted[i*len(names) : (i+1)*len(names)]
			tok := map[string]string{}
			for i, n := range names {
				tok[n] = minted[i]
			}
			good := strings.Split(tok["valid"], ".")
			// PyJWT will not make these (it refuses PEM text as an HMAC
			// key), which is the point: an attacker makes them by hand.
			confusedHS := signJWT("HS256", key.Public, `{"alg":"HS256","typ":"JWT"}`, decodeOrEmpty(good[1]))
			confusedAlg := good[0] + "." + good[1] + "." + strings.Split(signJWT("HS256", key.Public, decodeOrEmpty(good[0]), decodeOrEmpty(good[1])), ".")[2]

			cases := []jwtCase{
				{"valid", tok["valid"], "", "7", true},
				{"signed with another key", tok["other key"], ReasonJWTBadSignature, "", false},
				{"refresh as access", tok["refresh"], ReasonJWTWrongTokenType, "", false},
				{"no aud", tok["no aud"], ReasonJWTBadClaims, "", false},
				{"aud list naming the audience", tok["aud list"], "", "7", true},
				{"other aud", tok["wrong aud"], ReasonJWTBadClaims, "", false},
				{"other iss", tok["wrong iss"], ReasonJWTBadClaims, "", false},
				{"expired", tok["expired"], ReasonJWTExpired, "", false},
				{"alg none", tok["alg none"], ReasonJWTAlgNotAllowed, "", false},
				{"HS256 with SECRET_KEY", tok["HS256 with SECRET_KEY"], ReasonJWTAlgNotAllowed, "", false},
				{"HS256 keyed with the public PEM", confusedHS, ReasonJWTAlgNotAllowed, "", false},
				{"HMAC with the public PEM under " + alg, confusedAlg, ReasonJWTBadSignature, "", false},
			}
			pub := key.Public
			if alg == "RS384" || alg == "PS384" {
				pub = key.PublicPKCS1 // the same key in PKCS #1 form
			}
			v := testJWT(t, func(j *SimpleJWTConfig) {
				j.Algorithm, j.VerifyingKey, j.Audience, j.Issuer = alg, pub, compatAudience, compatIssuer
			})
			if ps && !psInSimpleJWT {
				// Only the Go verdicts can be checked, on tokens PyJWT signed.
				for _, c := range cases {
					id, err := v.identify(c.token, time.Unix(compatNow, 0))
					if got := reasonOf(err); got != c.reason || c.reason == "" && (id == nil || id.UserID != c.user) {
						t.Errorf("%s: Go %q %+v (%v), want %q", c.name, got, id, err, c.reason)
					}
				}
				return
			}
			settings := map[string]any{"ALGORITHM": alg, "SIGNING_KEY": key.Private, "VERIFYING_KEY": key.Public,
				"AUDIENCE": compatAudience, "ISSUER": compatIssuer}
			checkJWTCasesOn(t, st, mintRequest{SecretKey: compatSecret, SimpleJWT: settings}, v, cases)
		})
	}
}

// TestDjangoSimpleJWTAudienceIssuerHS256Compat: AUDIENCE and ISSUER with
// the default HS256, and no check at all when they are not configured.
func TestDjangoSimpleJWTAudienceIssuerHS256Compat(t *testing.T) {
	for _, st := range testenv.PythonStacks(t, "django", "rest_framework_simplejwt", "jwt") {
		t.Run(st.Name, func(t *testing.T) {
			mint := func(c map[string]any) map[string]any {
				return map[string]any{"op": "mint_token", "at": compatNow - 60, "claims": c}
			}
			minted := values(t, mintOn(t, st, mintRequest{SecretKey: compatSecret, Ops: []map[string]any{
				mint(map[string]any{"user_id": 3, "aud": compatAudience, "iss": compatIssuer}),
				mint(map[string]any{"user_id": 3, "aud": []any{compatAudience, 5}, "iss": compatIssuer}),
				mint(map[string]any{"user_id": 3, "aud": "", "iss": compatIssuer}),
				mint(map[string]any{"user_id": 3, "aud": compatAudience}),
				mint(map[string]any{"user_id": 3}),
			}}))
			// PyJWT 2.15 will not sign a number as iss; an attacker would.
			issNumber := signJWT("HS256", compatSecret, hs256Header, fmt.Sprintf(
				`{"token_type":"access","exp":%d,"iat":%d,"jti":"0123456789abcdef0123456789abcdef","user_id":3,"aud":%q,"iss":5}`,
				compatNow+240, compatNow-60, compatAudience))
			configured := []jwtCase{
				{"both", minted[0], "", "3", true},
				{"aud list with a number", minted[1], ReasonJWTBadClaims, "", false},
				{"empty aud", minted[2], ReasonJWTBadClaims, "", false},
				{"no iss", minted[3], ReasonJWTBadClaims, "", false},
				{"iss number", issNumber, ReasonJWTBadClaims, "", false},
				{"neither", minted[4], ReasonJWTBadClaims, "", false},
			}
			v := testJWT(t, func(j *SimpleJWTConfig) {
				j.SigningKey, j.Audience, j.Issuer = compatSecret, compatAudience, compatIssuer
			})
			checkJWTCasesOn(t, st, mintRequest{SecretKey: compatSecret, SimpleJWT: map[string]any{"AUDIENCE": compatAudience, "ISSUER": compatIssuer}}, v, configured)
			unconfigured := []jwtCase{
				{"both", minted[0], "", "3", true},
				{"aud list with a number", minted[1], "", "3", true},
				{"iss number", issNumber, "", "3", true},
				{"neither", minted[4], "", "3", true},
			}
			checkJWTCasesOn(t, st, mintRequest{SecretKey: compatSecret}, testJWT(t, func(j *SimpleJWTConfig) { j.SigningKey = compatSecret }), unconfigured)
		})
	}
}

// checkJWTCasesOn is checkJWTCases on a given Python stack.
func checkJWTCasesOn(t *testing.T, st testenv.PyStack, base mintRequest, v *simpleJWT, cases []jwtCase) {
	t.Helper()
	base.Ops = nil
	for _, c := range cases {
		base.Ops = append(base.Ops, map[string]any{"op": "check_token", "at": compatNow, "value": c.token})
	}
	resp := mintOn(t, st, base)
	for i, c := range cases {
		var py struct {
			OK     bool `json:"ok"`
			UserID any  `json:"user_id"`
			Error  string
			Detail string
		}
		if err := json.Unmarshal(resp.Results[i], &py); err != nil {
			t.Fatal(err)
		}
		id, err := v.identify(c.token, time.Unix(compatNow, 0))
		if got := reasonOf(err); got != c.reason {
			t.Errorf("%s: Go reason %q (%v), want %q", c.name, got, err, c.reason)
		}
		if py.OK != c.pyOK {
			t.Errorf("%s: simplejwt %s ok=%v (%s %s), expected ok=%v", c.name, resp.Versions["simplejwt"], py.OK, py.Error, py.Detail, c.pyOK)
		}
		if c.reason == "" && (id == nil || id.UserID != c.user || fmt.Sprint(py.UserID) != c.user) {
			t.Errorf("%s: Go %+v, simplejwt user %v, want %s", c.name, id, py.UserID, c.user)
		}
	}
}

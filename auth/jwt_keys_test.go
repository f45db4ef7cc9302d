package auth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys holds key pairs generated once per test binary.
type testKeys struct {
	once            sync.Once
	rsa, rsaOther   *rsa.PrivateKey
	ec, ecOther     map[string]*ecdsa.PrivateKey // by algorithm
	rsaPEM, rsaPKCS string
	ecPEM           map[string]string
}

var keysForTests testKeys

func (k *testKeys) get(t testing.TB) *testKeys {
	t.Helper()
	k.once.Do(func() {
		gen := func(bits int) *rsa.PrivateKey {
			p, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			return p
		}
		k.rsa, k.rsaOther = gen(2048), gen(2048)
		k.rsaPEM = publicPEM(&k.rsa.PublicKey)
		k.rsaPKCS = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
		k.ec, k.ecOther, k.ecPEM = map[string]*ecdsa.PrivateKey{}, map[string]*ecdsa.PrivateKey{}, map[string]string{}
		for _, alg := range []string{"ES256", "ES384", "ES512"} {
			for _, m := range []map[string]*ecdsa.PrivateKey{k.ec, k.ecOther} {
				p, err := ecdsa.GenerateKey(ecCurve(alg), rand.Reader)
				if err != nil {
					panic(err)
				}
				m[alg] = p
			}
			k.ecPEM[alg] = publicPEM(&k.ec[alg].PublicKey)
		}
	})
	return k
}

func publicPEM(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// signWith signs literal header and payload JSON with a private key, as
// PyJWT lays tokens out.
func signWith(t testing.TB, alg string, priv any, header, payload string) string {
	t.Helper()
	si := b64Encode([]byte(header)) + "." + b64Encode([]byte(payload))
	sig, err := jwt.GetSigningMethod(alg).Sign(si, priv)
	if err != nil {
		t.Fatal(err)
	}
	return si + "." + b64Encode(sig)
}

// asymmetric returns, for alg, the signing key, another key of the same
// kind and the verifying PEM.
func (k *testKeys) asymmetric(alg string) (priv, other any, pubPEM string) {
	if jwtKeyFamily(alg) == keyRSA {
		return k.rsa, k.rsaOther, k.rsaPEM
	}
	return k.ec[alg], k.ecOther[alg], k.ecPEM[alg]
}

func TestSimpleJWTAsymmetricAlgorithms(t *testing.T) {
	k := keysForTests.get(t)
	now := time.Unix(vecNow, 0)
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"} {
		priv, other, pub := k.asymmetric(alg)
		v := testJWT(t, func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = alg, pub })
		header := `{"alg":"` + alg + `","typ":"JWT"}`
		good := signWith(t, alg, priv, header, accessPayload(nil))
		parts := strings.Split(good, ".")
		cases := []struct {
			name, token, reason string
		}{
			{"signed with the key", good, ""},
			{"signed with another key", signWith(t, alg, other, header, accessPayload(nil)), ReasonJWTBadSignature},
			{"payload changed", parts[0] + "." + b64Encode([]byte(accessPayload(map[string]any{"user_id": "1"}))) + "." + parts[2], ReasonJWTBadSignature},
			{"signature cut", parts[0] + "." + parts[1] + "." + b64Encode([]byte(decodeOrEmpty(parts[2])[3:])), ReasonJWTBadSignature},
			{"no signature", parts[0] + "." + parts[1] + ".", ReasonJWTBadSignature},
			// The algorithm confusion attack: an HMAC keyed with the public
			// key, under the HS256 header or under the configured one.
			{"HS256 keyed with the public PEM", signJWT("HS256", pub, hs256Header, accessPayload(nil)), ReasonJWTAlgNotAllowed},
			{"HMAC keyed with the public PEM under the configured alg", parts[0] + "." + parts[1] + "." +
				strings.Split(signJWT("HS256", pub, header, accessPayload(nil)), ".")[2], ReasonJWTBadSignature},
			{"alg none", b64Encode([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", ReasonJWTAlgNotAllowed},
			{"refresh token", signWith(t, alg, priv, header, accessPayload(map[string]any{"token_type": "refresh"})), ReasonJWTWrongTokenType},
			{"expired", signWith(t, alg, priv, header, accessPayload(map[string]any{"exp": vecNow})), ReasonJWTExpired},
		}
		// Another algorithm of the same key family, signed with the same key.
		sibling := map[string]string{"RS": "PS", "PS": "RS", "ES": "ES"}[alg[:2]] + alg[2:]
		if alg[:2] == "ES" {
			sibling = map[string]string{"ES256": "ES384", "ES384": "ES512", "ES512": "ES256"}[alg]
			cases = append(cases, struct{ name, token, reason string }{"another curve's alg", signWith(t, sibling, k.ec[sibling], `{"alg":"`+sibling+`"}`, accessPayload(nil)), ReasonJWTAlgNotAllowed})
		} else {
			cases = append(cases, struct{ name, token, reason string }{"sibling alg, same key", signWith(t, sibling, priv, `{"alg":"`+sibling+`"}`, accessPayload(nil)), ReasonJWTAlgNotAllowed})
		}
		for _, c := range cases {
			id, err := v.identify(c.token, now)
			if got := reasonOf(err); got != c.reason {
				t.Errorf("%s, %s: reason %q (%v), want %q", alg, c.name, got, err, c.reason)
			}
			if c.reason == "" && (id == nil || id.UserID != "42") {
				t.Errorf("%s, %s: identity %+v", alg, c.name, id)
			}
		}
	}
}

func TestSimpleJWTAudienceAndIssuer(t *testing.T) {
	now := time.Unix(vecNow, 0)
	v := testJWT(t, func(j *SimpleJWTConfig) { j.Audience, j.Issuer = "sidecar", "https://id.example.com" })
	tok := func(claims map[string]any) string {
		c := map[string]any{"aud": "sidecar", "iss": "https://id.example.com"}
		for k, x := range claims {
			c[k] = x
		}
		return signJWT("HS256", vecSecret, hs256Header, accessPayload(c))
	}
	raw := func(extra string) string {
		return signJWT("HS256", vecSecret, hs256Header, `{"token_type":"access","exp":1767225840,"jti":"j","user_id":42,"iss":"https://id.example.com",`+extra+`}`)
	}
	cases := []struct {
		name, token, reason string
	}{
		{"both match", tok(nil), ""},
		{"aud list containing it", tok(map[string]any{"aud": []string{"other", "sidecar"}}), ""},
		{"aud escaped", raw(`"aud":"side\u0063ar"`), ""},
		{"aud other", tok(map[string]any{"aud": "other"}), ReasonJWTBadClaims},
		{"aud list without it", tok(map[string]any{"aud": []string{"other"}}), ReasonJWTBadClaims},
		{"aud list with a number", tok(map[string]any{"aud": []any{"sidecar", 1}}), ReasonJWTBadClaims},
		{"aud missing", tok(map[string]any{"aud": nil}), ReasonJWTBadClaims},
		{"aud empty", tok(map[string]any{"aud": ""}), ReasonJWTBadClaims},
		{"aud empty list", tok(map[string]any{"aud": []string{}}), ReasonJWTBadClaims},
		{"aud null", raw(`"aud":null`), ReasonJWTBadClaims},
		{"aud number", raw(`"aud":1`), ReasonJWTBadClaims},
		{"aud true", raw(`"aud":true`), ReasonJWTBadClaims},
		{"aud object", raw(`"aud":{"sidecar":1}`), ReasonJWTBadClaims},
		{"aud case differs", tok(map[string]any{"aud": "Sidecar"}), ReasonJWTBadClaims},
		{"iss other", tok(map[string]any{"iss": "https://evil.example.com"}), ReasonJWTBadClaims},
		{"iss missing", tok(map[string]any{"iss": nil}), ReasonJWTBadClaims},
		{"iss number", tok(map[string]any{"iss": 1}), ReasonJWTBadClaims},
		{"iss list", tok(map[string]any{"iss": []string{"https://id.example.com"}}), ReasonJWTBadClaims},
		{"expired first", tok(map[string]any{"exp": vecNow, "aud": "other"}), ReasonJWTExpired},
	}
	for _, c := range cases {
		_, err := v.identify(c.token, now)
		if got := reasonOf(err); got != c.reason {
			t.Errorf("%s: reason %q (%v), want %q", c.name, got, err, c.reason)
		}
	}
	// Not configured: aud and iss are not looked at.
	plain := testJWT(t, nil)
	if _, err := plain.identify(tok(map[string]any{"aud": 1, "iss": 2}), now); err != nil {
		t.Errorf("unconfigured audience and issuer: %v", err)
	}
}

func TestVerifyingKeyConfig(t *testing.T) {
	k := keysForTests.get(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "jwt.pub")
	if err := os.WriteFile(keyFile, []byte(k.rsaPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.rsa)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	small := publicPEM(&rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 511), E: 65537})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jwt"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec["ES256"].PublicKey, k.ec["ES256"])
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))
	cases := []struct {
		name   string
		mutate func(*SimpleJWTConfig)
		errs   []string // none: valid
	}{
		{"RS256 SPKI", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "RS256", k.rsaPEM }, nil},
		{"PS512 PKCS1", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "PS512", k.rsaPKCS }, nil},
		{"RS256 from a file", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKeyFile = "RS256", keyFile }, nil},
		{"ES256 certificate", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "ES256", cert }, nil},
		{"ES384 with text around the PEM", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "ES384", "key:\n"+k.ecPEM["ES384"]+"\n" }, nil},
		{"RS256 without key", func(j *SimpleJWTConfig) { j.Algorithm = "RS256" }, []string{"needs simple_jwt.verifying_key"}},
		{"both key and file", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey, j.VerifyingKeyFile = "RS256", k.rsaPEM, keyFile }, []string{"both set"}},
		{"missing file", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKeyFile = "RS256", filepath.Join(dir, "nope") }, []string{"verifying_key_file", "no such file"}},
		{"private key", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "RS256", privPEM }, []string{"private key", "-pubout"}},
		{"EC key for RS256", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "RS256", k.ecPEM["ES256"] }, []string{"RS256 needs an RSA key"}},
		{"RSA key for ES256", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "ES256", k.rsaPEM }, []string{"ES256 needs an EC key"}},
		{"P-384 key for ES256", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "ES256", k.ecPEM["ES384"] }, []string{"ES256 needs a key on P-256, this one is on P-384"}},
		{"512-bit RSA", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "RS256", small }, []string{"512-bit RSA key is too small"}},
		{"OpenSSH key", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "RS256", "ssh-rsa AAAAB3NzaC1yc2E user@host" }, []string{"ssh-keygen -e -m PKCS8"}},
		{"garbage", func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "ES256", "not a key" }, []string{"no PEM block"}},
		{"bad PEM body", func(j *SimpleJWTConfig) {
			j.Algorithm, j.VerifyingKey = "ES256", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
		}, []string{"public key does not parse"}},
		{"HS256 with a verifying key", func(j *SimpleJWTConfig) { j.VerifyingKey = k.rsaPEM }, []string{"verifying_key is set but simple_jwt.algorithm is HS256"}},
		{"HS256 keyed with a PEM", func(j *SimpleJWTConfig) { j.SigningKey = k.rsaPEM }, []string{"looks like a PEM or SSH key"}},
		{"jwk_url", func(j *SimpleJWTConfig) {
			j.Algorithm, j.VerifyingKey, j.JWKURL = "RS256", k.rsaPEM, "https://id.example.com/.well-known/jwks.json"
		}, []string{"jwk_url is not supported"}},
		{"EdDSA", func(j *SimpleJWTConfig) { j.Algorithm = "EdDSA" }, []string{`"EdDSA" is not supported`}},
	}
	for _, c := range cases {
		cfg := Config{SecretKey: vecSecret, DisableSessions: true}
		c.mutate(&cfg.SimpleJWT)
		cfg.SetDefaults()
		err := cfg.Validate()
		if len(c.errs) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if _, err := New(cfg, nil); err != nil {
				t.Errorf("%s: New: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, want := range c.errs {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, want)
			}
		}
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted the config", c.name)
		}
	}
}

func TestVerifyingKeyFromFileVerifies(t *testing.T) {
	k := keysForTests.get(t)
	keyFile := filepath.Join(t.TempDir(), "jwt.pub")
	if err := os.WriteFile(keyFile, []byte(k.ecPEM["ES512"]), 0o600); err != nil {
		t.Fatal(err)
	}
	v := testJWT(t, func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKeyFile = "ES512", keyFile })
	tok := signWith(t, "ES512", k.ec["ES512"], `{"alg":"ES512","typ":"JWT"}`, accessPayload(nil))
	if id, err := v.identify(tok, time.Unix(vecNow, 0)); err != nil || id.UserID != "42" {
		t.Errorf("ES512 from a key file: %+v, %v", id, err)
	}
}

func TestHSKeysAreNotPEM(t *testing.T) {
	for _, k := range []string{"-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----", "ssh-ed25519 AAAA", "ecdsa-sha2-nistp256 AAAA"} {
		if !looksLikeKeyFile(k) {
			t.Errorf("%q not recognised as a key file", k)
		}
	}
	if looksLikeKeyFile("django-insecure-#s3cret&key-----") {
		t.Error("an ordinary secret key taken for a key file")
	}
}

// FuzzJWTAsymmetric checks the ES256 path: no token makes the verifier
// panic, and whatever it accepts carries alg ES256 and an ECDSA signature
// that the public key verifies, whatever the header and payload say.
func FuzzJWTAsymmetric(f *testing.F) {
	k := keysForTests.get(f)
	priv, pub := k.ec["ES256"], k.ecPEM["ES256"]
	header := `{"alg":"ES256","typ":"JWT"}`
	f.Add(signWith(f, "ES256", priv, header, accessPayload(nil)), []byte(header), []byte(accessPayload(nil)))
	f.Add(signJWT("HS256", pub, hs256Header, accessPayload(nil)), []byte(`{"alg":"HS256"}`), []byte(accessPayload(map[string]any{"user_id": 1})))
	f.Add("a.b.c", []byte(`{"alg":"ES256","kid":1}`), []byte(`{"token_type":"refresh"}`))
	f.Add("", []byte(`{"alg":"none"}`), []byte(`[]`))
	v := testJWT(f, func(j *SimpleJWTConfig) { j.Algorithm, j.VerifyingKey = "ES256", pub })
	now := time.Unix(vecNow, 0)
	f.Fuzz(func(t *testing.T, raw string, header, payload []byte) {
		check := func(token string) {
			id, err := v.identify(token, now)
			if err != nil {
				if id != nil {
					t.Fatalf("refused with an identity: %v", err)
				}
				return
			}
			parts := strings.Split(token, ".")
			var h struct{ Alg string }
			if json.Unmarshal([]byte(decodeOrEmpty(parts[0])), &h) != nil || h.Alg != "ES256" {
				t.Fatalf("accepted header %q", decodeOrEmpty(parts[0]))
			}
			sig := []byte(decodeOrEmpty(parts[2]))
			digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			if len(sig) != 64 || !ecdsa.Verify(&priv.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
				t.Fatalf("accepted a signature the key does not verify: %q", token)
			}
			if id.UserID == "" || !id.Expires.After(now) {
				t.Fatalf("accepted %+v", id)
			}
		}
		check(raw)
		if len(header) < 512 && len(payload) < 2048 {
			check(signWith(t, "ES256", priv, string(header), string(payload)))
		}
	})
}

package auth

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SecretKey = "s"
	c.SetDefaults()
	on := true
	want := Config{
		SecretKey:              "s",
		SessionEngine:          "django.contrib.sessions.backends.db",
		SessionCookieName:      "sessionid",
		SessionCookieAge:       1209600,
		AuthenticationBackends: []string{"django.contrib.auth.backends.ModelBackend"},
		TokenQueryParam:        "token",
		RecheckCacheTTL:        DefaultRecheckCacheTTL,
		SimpleJWT: SimpleJWTConfig{
			Algorithm: "HS256", SigningKey: "s", UserIDClaim: "user_id",
			TokenTypeClaim: "token_type", JTIClaim: "jti", AuthHeaderTypes: []string{"Bearer"},
			UserIDField: "id", CheckUserIsActive: &on, RevokeTokenClaim: "hash_password",
		},
		UseTZ: &on,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{SecretKey: "s", SessionEngine: EngineSignedCookies}
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		errs   []string // substrings; none means valid
	}{
		{"signed cookies", nil, nil},
		{"Django's default engine", func(c *Config) { c.SessionEngine = "" },
			[]string{`session_engine "django.contrib.sessions.backends.db" reads Django's django_session table: configure database`, "disable_sessions"}},
		{"cache engine without its cache", func(c *Config) { c.SessionEngine = EngineCache },
			[]string{"session_cache.backend is required", "session_cache.location is required"}},
		{"cache engine", func(c *Config) {
			c.SessionEngine = EngineCache
			c.SessionCache = SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{"redis://127.0.0.1:6379/1"}}
		}, nil},
		{"file engine", func(c *Config) { c.SessionEngine = "django.contrib.sessions.backends.file" },
			[]string{`"django.contrib.sessions.backends.file" is not supported`, "session_callback"}},
		{"file engine through the callback", func(c *Config) {
			c.SessionEngine = "django.contrib.sessions.backends.file"
			c.SessionCallback = SessionCallbackConfig{URL: "http://127.0.0.1:8000/sidecar/session/", HookSecret: "0123456789abcdef"}
		}, nil},
		{"callback without a secret", func(c *Config) { c.SessionCallback.URL = "http://127.0.0.1:8000/s/" },
			[]string{"session_callback.hook_secret is required"}},
		{"negative recheck_cache_ttl", func(c *Config) { c.RecheckCacheTTL = -1 }, []string{"recheck_cache_ttl must not be negative"}},
		{"db engine with sessions disabled", func(c *Config) { c.SessionEngine = EngineDB; c.DisableSessions = true }, nil},
		{"no secret key", func(c *Config) { c.SecretKey = "" }, []string{"secret_key is required", "simple_jwt.signing_key is empty"}},
		{"no secret key, own signing key, sessions off", func(c *Config) {
			c.SecretKey, c.SimpleJWT.SigningKey, c.DisableSessions = "", "jwt-key", true
		}, nil},
		{"everything off needs no key", func(c *Config) { c.SecretKey, c.DisableSessions, c.DisableJWT = "", true, true }, nil},
		{"RS256 without a key", func(c *Config) { c.SimpleJWT.Algorithm = "RS256" }, []string{`simple_jwt.algorithm RS256 needs simple_jwt.verifying_key`}},
		{"EdDSA", func(c *Config) { c.SimpleJWT.Algorithm = "EdDSA" }, []string{`simple_jwt.algorithm "EdDSA" is not supported`, "PS512"}},
		{"jwk_url", func(c *Config) { c.SimpleJWT.JWKURL = "https://id.example.com/jwks" }, []string{"simple_jwt.jwk_url is not supported", "verifying_key"}},
		{"bad allowed host", func(c *Config) { c.AllowedHosts = []string{"example.com", "[::1"} }, []string{`allowed_hosts[1] "[::1"`}},
		{"none", func(c *Config) { c.SimpleJWT.Algorithm = "none" }, []string{`"none" is not supported`}},
		{"RS256 with JWT off", func(c *Config) { c.SimpleJWT.Algorithm = "RS256"; c.DisableJWT = true }, nil},
		{"negative leeway", func(c *Config) { c.SimpleJWT.Leeway = -1 }, []string{"leeway must not be negative"}},
		{"negative age", func(c *Config) { c.SessionCookieAge = -5 }, []string{"session_cookie_age must be a positive"}},
		{"bad cookie name", func(c *Config) { c.SessionCookieName = "a b" }, []string{"session_cookie_name"}},
		{"empty fallback", func(c *Config) { c.SecretKeyFallbacks = []string{"old", ""} }, []string{"secret_key_fallbacks[1] is empty"}},
		{"header type with space", func(c *Config) { c.SimpleJWT.AuthHeaderTypes = []string{"Bearer", "J WT"} }, []string{"auth_header_types[1]"}},
		{"query param with &", func(c *Config) { c.TokenQueryParam = "a&b" }, []string{"token_query_param"}},
		{"subprotocol with comma", func(c *Config) { c.TokenSubprotocol = "a,b" }, []string{"token_subprotocol"}},
	}
	for _, tc := range cases {
		c := base()
		if tc.mutate != nil {
			tc.mutate(&c)
		}
		c.SetDefaults()
		err := c.Validate()
		if len(tc.errs) == 0 {
			if err != nil {
				t.Errorf("%s: unexpected error %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, want := range tc.errs {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, want)
			}
		}
	}
}

func TestConfigYAMLKeys(t *testing.T) {
	src := `
secret_key: s3cret
secret_key_fallbacks: [old1]
session_engine: django.contrib.sessions.backends.signed_cookies
session_cookie_name: sid
session_cookie_age: 28800
authentication_backends: [a.B]
simple_jwt:
  algorithm: HS512
  signing_key: jk
  leeway: 5
  user_id_claim: uid
  token_type_claim: tt
  jti_claim: id
  auth_header_types: [Bearer, JWT]
token_query_param: access
token_subprotocol: bearer
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SimpleJWT.SigningKey != "jk" || c.SessionCookieAge != 28800 || c.SimpleJWT.AuthHeaderTypes[1] != "JWT" ||
		c.TokenSubprotocol != "bearer" || c.SecretKeyFallbacks[0] != "old1" || c.SimpleJWT.Leeway != 5 {
		t.Errorf("decoded %+v", c)
	}
}

func TestConfigRedacted(t *testing.T) {
	c := Config{SecretKey: "s3cret", SecretKeyFallbacks: []string{"old"}, SimpleJWT: SimpleJWTConfig{SigningKey: "jk"}}
	r := c.Redacted()
	out, _ := yaml.Marshal(r)
	for _, secret := range []string{"s3cret", "old", "jk"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted config shows %q:\n%s", secret, out)
		}
	}
	if c.SecretKeyFallbacks[0] != "old" || c.SecretKey != "s3cret" {
		t.Error("Redacted changed the original")
	}
}

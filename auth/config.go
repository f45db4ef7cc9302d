package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Session engines, named as in Django's SESSION_ENGINE setting.
const (
	// EngineSignedCookies keeps the whole session in a signed cookie; it is
	// the only engine the sidecar can verify with SECRET_KEY alone.
	EngineSignedCookies = "django.contrib.sessions.backends.signed_cookies"
	// EngineDB is Django's default engine (sessions in the django_session table).
	EngineDB = "django.contrib.sessions.backends.db"
	// EngineCache keeps sessions only in a cache; the sidecar reads them
	// from Redis (see SessionCacheConfig).
	EngineCache = "django.contrib.sessions.backends.cache"
	// EngineCachedDB reads through a cache to the django_session table;
	// the sidecar reads the table (see DatabaseConfig).
	EngineCachedDB = "django.contrib.sessions.backends.cached_db"
)

// SupportedSessionEngines lists the SESSION_ENGINE values that the sidecar
// can verify: cache needs session_cache, db and cached_db need database.
// The others (file, custom) need the session callback.
func SupportedSessionEngines() []string {
	return []string{EngineSignedCookies, EngineCache, EngineDB, EngineCachedDB}
}

// Defaults, as in Django and djangorestframework-simplejwt.
const (
	DefaultSessionEngine     = EngineDB
	DefaultSessionCookieName = "sessionid"
	DefaultSessionCookieAge  = 1209600 // two weeks, in seconds
	DefaultAuthBackend       = "django.contrib.auth.backends.ModelBackend"
	DefaultJWTAlgorithm      = "HS256"
	DefaultUserIDClaim       = "user_id"
	DefaultTokenTypeClaim    = "token_type"
	DefaultJTIClaim          = "jti"
	DefaultAuthHeaderType    = "Bearer"
	DefaultTokenQueryParam   = "token"
	DefaultRecheckCacheTTL   = 2 * time.Second
)

// Config is the auth section of the sidecar's configuration. Its keys are
// Django's setting names in snake case, so values can be copied from
// settings.py.
//
// SecretKey is required unless both sessions and JWTs are disabled: Django
// signs session cookies with it, and simplejwt signs tokens with it unless
// SIMPLE_JWT["SIGNING_KEY"] says otherwise.
type Config struct {
	// SecretKey is Django's SECRET_KEY.
	SecretKey string `yaml:"secret_key"`
	// SecretKeyFallbacks is SECRET_KEY_FALLBACKS (Django >= 4.1): older keys
	// still accepted when verifying session cookies, never used to sign.
	SecretKeyFallbacks []string `yaml:"secret_key_fallbacks"`

	// SessionEngine is SESSION_ENGINE. Default
	// "django.contrib.sessions.backends.db", like Django; only the engines in
	// SupportedSessionEngines are accepted, so a project on another engine
	// must say so or set DisableSessions.
	SessionEngine string `yaml:"session_engine"`
	// SessionCookieName is SESSION_COOKIE_NAME. Default "sessionid".
	SessionCookieName string `yaml:"session_cookie_name"`
	// SessionCookieAge is SESSION_COOKIE_AGE in seconds. Default 1209600.
	SessionCookieAge int `yaml:"session_cookie_age"`
	// AuthenticationBackends is AUTHENTICATION_BACKENDS: a session whose
	// _auth_user_backend is not listed is anonymous, as in Channels.
	// Default ["django.contrib.auth.backends.ModelBackend"].
	AuthenticationBackends []string `yaml:"authentication_backends"`
	// DisableSessions turns session cookies off (JWT only). Default false.
	DisableSessions bool `yaml:"disable_sessions"`
	// SessionCache is the cache that holds sessions for the cache engine:
	// Django's CACHES[SESSION_CACHE_ALIAS].
	SessionCache SessionCacheConfig `yaml:"session_cache"`
	// SessionCallback, when its url is set, asks a Django view about
	// every session cookie instead of reading the session here (file
	// sessions, custom engines or backends); session_engine may then
	// name any engine.
	SessionCallback SessionCallbackConfig `yaml:"session_callback"`
	// RecheckCacheTTL is how long the answer of a re-check before a
	// critical frame is reused for the same session before the session
	// store is read again. Default 2s.
	RecheckCacheTTL time.Duration `yaml:"recheck_cache_ttl"`

	// UseTZ is USE_TZ. Default true (Django's default since 5.0 and in
	// every project made by startproject).
	UseTZ *bool `yaml:"use_tz"`
	// TimeZone is TIME_ZONE; required when use_tz is false and a database
	// is configured. Default "".
	TimeZone string `yaml:"time_zone"`
	// Database is read-only access to Django's database, for the db and
	// cached_db session engines and for user checks on every identity.
	// Default: none.
	Database DatabaseConfig `yaml:"database"`

	// SimpleJWT mirrors the SIMPLE_JWT settings dict.
	SimpleJWT SimpleJWTConfig `yaml:"simple_jwt"`
	// DisableJWT turns access tokens off (session cookies only). Default false.
	DisableJWT bool `yaml:"disable_jwt"`
	// TokenQueryParam is the query parameter that carries an access token on
	// a WebSocket URL (browsers cannot set Authorization). Default "token".
	TokenQueryParam string `yaml:"token_query_param"`
	// TokenSubprotocol, when set, is a marker in Sec-WebSocket-Protocol: the
	// offered protocol right after it is an access token. Default "" (off).
	TokenSubprotocol string `yaml:"token_subprotocol"`

	// AllowedHosts is ALLOWED_HOSTS. When websocket.allowed_origins is
	// empty and this list is not, a handshake's Origin is checked as
	// Channels' AllowedHostsOriginValidator checks it: entries without a
	// scheme match the Origin's host on any scheme and port, ".example.com"
	// matches every subdomain, "*" accepts every Origin and none. Prefer
	// websocket.allowed_origins, which lists exact origins. Default empty
	// (the Origin must name the request's own host).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Debug is DEBUG. It only matters for Origin checks: with debug true
	// and allowed_hosts empty, Channels accepts the Origins of localhost,
	// 127.0.0.1 and [::1], and so does the sidecar. Default false.
	Debug bool `yaml:"debug"`
}

// SimpleJWTConfig mirrors djangorestframework-simplejwt's SIMPLE_JWT dict.
type SimpleJWTConfig struct {
	// Algorithm is ALGORITHM, the only algorithm accepted: HS256, HS384,
	// HS512, RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384 or
	// PS512. Default "HS256".
	Algorithm string `yaml:"algorithm"`
	// SigningKey is SIGNING_KEY, used as raw HMAC key bytes by HS*.
	// Default: the secret_key. The RS*, ES* and PS* algorithms never need
	// it: the sidecar only verifies.
	SigningKey string `yaml:"signing_key"`
	// VerifyingKey is VERIFYING_KEY: the PEM public key (or certificate)
	// that verifies RS*, ES* and PS* tokens. Required for them, refused
	// with HS*.
	VerifyingKey string `yaml:"verifying_key"`
	// VerifyingKeyFile is a file holding VerifyingKey, instead of the PEM
	// text itself.
	VerifyingKeyFile string `yaml:"verifying_key_file"`
	// Audience is AUDIENCE: when set, a token's aud (a string or a list of
	// strings) must contain it. Default "" (aud is not checked).
	Audience string `yaml:"audience"`
	// Issuer is ISSUER: when set, a token's iss must equal it. Default ""
	// (iss is not checked).
	Issuer string `yaml:"issuer"`
	// JWKURL is JWK_URL, which the sidecar does not support (it never
	// fetches keys): setting it is an error.
	JWKURL string `yaml:"jwk_url"`
	// Leeway is LEEWAY in whole seconds. Default 0.
	Leeway int `yaml:"leeway"`
	// UserIDClaim is USER_ID_CLAIM. Default "user_id".
	UserIDClaim string `yaml:"user_id_claim"`
	// TokenTypeClaim is TOKEN_TYPE_CLAIM. Default "token_type".
	TokenTypeClaim string `yaml:"token_type_claim"`
	// JTIClaim is JTI_CLAIM. Default "jti".
	JTIClaim string `yaml:"jti_claim"`
	// AuthHeaderTypes is AUTH_HEADER_TYPES, matched case-sensitively.
	// Default ["Bearer"].
	AuthHeaderTypes []string `yaml:"auth_header_types"`

	// The keys below apply when a database is configured: then, as
	// simplejwt's JWTAuthentication does, a token's user must exist.

	// UserIDField is the user table column that USER_ID_FIELD names.
	// Default "id".
	UserIDField string `yaml:"user_id_field"`
	// CheckUserIsActive is CHECK_USER_IS_ACTIVE. Default true.
	CheckUserIsActive *bool `yaml:"check_user_is_active"`
	// CheckRevokeToken is CHECK_REVOKE_TOKEN: the token's revoke claim must
	// equal the MD5 of the user's current password hash. Default false.
	CheckRevokeToken bool `yaml:"check_revoke_token"`
	// RevokeTokenClaim is REVOKE_TOKEN_CLAIM. Default "hash_password".
	RevokeTokenClaim string `yaml:"revoke_token_claim"`
	// StatelessUser skips the user table for tokens, as
	// JWTStatelessUserAuthentication does. Default false.
	StatelessUser bool `yaml:"stateless_user"`
}

// SetDefaults fills zero values with Django's and simplejwt's defaults.
func (c *Config) SetDefaults() {
	if c.SessionEngine == "" {
		c.SessionEngine = DefaultSessionEngine
	}
	if c.SessionCookieName == "" {
		c.SessionCookieName = DefaultSessionCookieName
	}
	if c.SessionCookieAge == 0 {
		c.SessionCookieAge = DefaultSessionCookieAge
	}
	if len(c.AuthenticationBackends) == 0 {
		c.AuthenticationBackends = []string{DefaultAuthBackend}
	}
	if c.RecheckCacheTTL == 0 {
		c.RecheckCacheTTL = DefaultRecheckCacheTTL
	}
	if c.SessionEngine == EngineCache {
		c.SessionCache.SetDefaults()
	}
	if c.SessionCallback.enabled() {
		c.SessionCallback.SetDefaults()
	}
	if c.TokenQueryParam == "" {
		c.TokenQueryParam = DefaultTokenQueryParam
	}
	j := &c.SimpleJWT
	if j.Algorithm == "" {
		j.Algorithm = DefaultJWTAlgorithm
	}
	if j.SigningKey == "" {
		j.SigningKey = c.SecretKey
	}
	if j.UserIDClaim == "" {
		j.UserIDClaim = DefaultUserIDClaim
	}
	if j.TokenTypeClaim == "" {
		j.TokenTypeClaim = DefaultTokenTypeClaim
	}
	if j.JTIClaim == "" {
		j.JTIClaim = DefaultJTIClaim
	}
	if len(j.AuthHeaderTypes) == 0 {
		j.AuthHeaderTypes = []string{DefaultAuthHeaderType}
	}
	j.setUserDefaults()
	c.setStoreDefaults()
}

// Validate reports every setting that cannot work, joined in one error. It
// expects SetDefaults to have run.
func (c *Config) Validate() error {
	var errs []error
	if !c.DisableSessions {
		if c.SecretKey == "" {
			errs = append(errs, errors.New("secret_key is required for session cookies (or set disable_sessions: true)"))
		}
		for i, k := range c.SecretKeyFallbacks {
			if k == "" {
				errs = append(errs, fmt.Errorf("secret_key_fallbacks[%d] is empty", i))
			}
		}
		switch {
		case c.SessionCallback.enabled():
			if err := c.SessionCallback.Validate(); err != nil {
				errs = append(errs, err)
			}
		case !isSupportedEngine(c.SessionEngine):
			errs = append(errs, fmt.Errorf("session_engine %q is not supported (supported: %s); set session_engine to match Django's SESSION_ENGINE, configure session_callback to let Django check the cookie, or disable_sessions: true to accept JWTs only",
				c.SessionEngine, strings.Join(SupportedSessionEngines(), ", ")))
		case c.SessionEngine == EngineCache:
			if err := c.SessionCache.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
		if c.RecheckCacheTTL < 0 {
			errs = append(errs, fmt.Errorf("recheck_cache_ttl must not be negative, got %s", c.RecheckCacheTTL))
		}
		if err := checkCookieName(c.SessionCookieName); err != nil {
			errs = append(errs, err)
		}
		if c.SessionCookieAge <= 0 {
			errs = append(errs, fmt.Errorf("session_cookie_age must be a positive number of seconds, got %d", c.SessionCookieAge))
		}
		for i, b := range c.AuthenticationBackends {
			if b == "" {
				errs = append(errs, fmt.Errorf("authentication_backends[%d] is empty", i))
			}
		}
	}
	if !c.DisableJWT {
		errs = append(errs, c.SimpleJWT.validate()...)
		if strings.ContainsAny(c.TokenQueryParam, "&=#? ") {
			errs = append(errs, fmt.Errorf("token_query_param %q must not contain '&', '=', '#', '?' or spaces", c.TokenQueryParam))
		}
		if strings.ContainsAny(c.TokenSubprotocol, ", \t") {
			errs = append(errs, fmt.Errorf("token_subprotocol %q must be a single protocol token", c.TokenSubprotocol))
		}
	}
	if err := c.validateAllowedHosts(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateStores()...)
	return errors.Join(errs...)
}

func (j *SimpleJWTConfig) validate() []error {
	var errs []error
	errs = append(errs, j.validateKeys()...)
	if j.Leeway < 0 {
		errs = append(errs, fmt.Errorf("simple_jwt.leeway must not be negative, got %d", j.Leeway))
	}
	for _, c := range [...]struct{ name, value string }{
		{"user_id_claim", j.UserIDClaim}, {"token_type_claim", j.TokenTypeClaim}, {"jti_claim", j.JTIClaim},
	} {
		if c.value == "" {
			errs = append(errs, fmt.Errorf("simple_jwt.%s is empty", c.name))
		}
	}
	for i, t := range j.AuthHeaderTypes {
		if t == "" || strings.ContainsAny(t, " \t\r\n\v\f") {
			errs = append(errs, fmt.Errorf("simple_jwt.auth_header_types[%d] %q must be one non-empty word", i, t))
		}
	}
	return errs
}

// Redacted returns a copy with every key replaced by a marker, for
// printing the effective configuration.
func (c Config) Redacted() Config {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "[redacted]"
	}
	c.SecretKey = mask(c.SecretKey)
	if c.SecretKeyFallbacks != nil {
		fb := make([]string, len(c.SecretKeyFallbacks))
		for i, k := range c.SecretKeyFallbacks {
			fb[i] = mask(k)
		}
		c.SecretKeyFallbacks = fb
	}
	c.SimpleJWT.SigningKey = mask(c.SimpleJWT.SigningKey)
	c.SessionCache = c.SessionCache.redacted()
	c.SessionCallback = c.SessionCallback.redacted()
	c.Database = c.Database.redacted()
	c.AuthenticationBackends = append([]string(nil), c.AuthenticationBackends...)
	c.SimpleJWT.AuthHeaderTypes = append([]string(nil), c.SimpleJWT.AuthHeaderTypes...)
	return c
}

func isSupportedEngine(e string) bool {
	for _, s := range SupportedSessionEngines() {
		if e == s {
			return true
		}
	}
	return false
}

// checkCookieName refuses names the Cookie header parser could never
// return, which would silently disable session auth.
func checkCookieName(name string) error {
	if name == "" {
		return errors.New("session_cookie_name is empty")
	}
	if strings.ContainsAny(name, ";= \t\r\n\v\f") {
		return fmt.Errorf("session_cookie_name %q must not contain ';', '=' or whitespace", name)
	}
	return nil
}

package auth

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// SessionAuthHashSalt is the key salt of AbstractBaseUser.get_session_auth_hash.
const SessionAuthHashSalt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"

// Defaults of the simplejwt user checks.
const (
	DefaultUserIDField      = "id"
	DefaultRevokeTokenClaim = "hash_password"
)

// setUserDefaults fills the defaults of the keys that apply with a
// database.
func (j *SimpleJWTConfig) setUserDefaults() {
	if j.UserIDField == "" {
		j.UserIDField = DefaultUserIDField
	}
	if j.CheckUserIsActive == nil {
		on := true
		j.CheckUserIsActive = &on
	}
	if j.RevokeTokenClaim == "" {
		j.RevokeTokenClaim = DefaultRevokeTokenClaim
	}
}

// validateUserChecks reports user check settings that cannot work; it runs
// only when a database is configured.
func (j *SimpleJWTConfig) validateUserChecks() []error {
	if j.StatelessUser {
		return nil
	}
	var errs []error
	if !validSQLName(j.UserIDField, false) {
		errs = append(errs, fmt.Errorf("simple_jwt.user_id_field %q is not a column name (letters, digits, '_', '$')", j.UserIDField))
	}
	return errs
}

// userChecker looks an identity's user up in the user table and applies
// what Django applies after decoding a credential.
//
// For a session it is channels.auth.get_user: the user must exist, be
// active (unless its backend is one of Django's AllowAllUsers backends),
// and _auth_user_hash must equal HMAC-SHA256 of the user's password hash
// under SECRET_KEY. Channels accepts neither SECRET_KEY_FALLBACKS hashes
// nor Django 3.2's legacy SHA-1 hashes, although Django's HTTP get_user
// does; a WebSocket follows Channels. Channels then flushes the session
// (deleting the row); the sidecar only reads, so the row stays until
// Django sees it.
//
// For an access token it is simplejwt's JWTAuthentication.get_user: the
// user must exist, be active when CHECK_USER_IS_ACTIVE, and, with
// CHECK_REVOKE_TOKEN, the revoke claim must be the upper-case hex MD5 of
// the password hash. StatelessUser skips all of it.
//
// User rows are cached for user_cache_ttl at handshakes and for at most
// recheck_cache_ttl at re-checks. A nil *userChecker checks nothing.
type userChecker struct {
	rows           userRows
	log            *slog.Logger
	hashKey        []byte // SHA256(SessionAuthHashSalt + SECRET_KEY)
	pkColumn       string
	jwtColumn      string
	jwtStateless   bool
	jwtCheckActive bool
	jwtCheckRevoke bool
	revokeClaim    string
	ttl            time.Duration
	recheckTTL     time.Duration
	cache          *rowCache[userKey, userFacts]
}

type userKey struct{ column, value string }

// userFacts is what the checks need from a user row. Only digests of the
// password hash are kept.
type userFacts struct {
	found    bool
	active   bool
	fields   map[string]any // user_fields, shared read-only
	authHash string         // Django's get_session_auth_hash, hex
	md5      string         // simplejwt's get_md5_hash_password, upper-case hex; "" if the password is NULL
}

func newUserChecker(cfg *Config, rows userRows, log *slog.Logger) *userChecker {
	d := &cfg.Database
	j := &cfg.SimpleJWT
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &userChecker{
		rows:           rows,
		log:            log,
		hashKey:        deriveKey(sha256.New, SessionAuthHashSalt, cfg.SecretKey),
		pkColumn:       d.UserPKColumn,
		jwtColumn:      j.UserIDField,
		jwtStateless:   j.StatelessUser,
		jwtCheckActive: j.CheckUserIsActive == nil || *j.CheckUserIsActive,
		jwtCheckRevoke: j.CheckRevokeToken,
		revokeClaim:    j.RevokeTokenClaim,
		ttl:            d.UserCacheTTL,
		recheckTTL:     cfg.RecheckCacheTTL,
		cache:          newRowCache[userKey, userFacts](d.CacheSize),
	}
	if u.recheckTTL > u.ttl {
		// A re-check never trusts a row older than a handshake would.
		u.recheckTTL = u.ttl
	}
	return u
}

// lookupColumns are the user table columns that users are looked up by.
func (u *userChecker) lookupColumns() []string {
	if u.jwtStateless || u.jwtColumn == u.pkColumn {
		return []string{u.pkColumn}
	}
	return []string{u.pkColumn, u.jwtColumn}
}

// checkSession applies Channels' user checks to a session identity at a
// handshake.
func (u *userChecker) checkSession(ctx context.Context, id *Identity, now time.Time) error {
	if u == nil {
		return nil
	}
	f, err := u.session(ctx, id, u.ttl, now)
	if err == nil {
		id.Attrs = f.fields
	}
	return err
}

// recheckSession is checkSession before a critical frame.
func (u *userChecker) recheckSession(ctx context.Context, id *Identity, now time.Time) error {
	if u == nil {
		return nil
	}
	_, err := u.session(ctx, id, u.recheckTTL, now)
	return err
}

func (u *userChecker) session(ctx context.Context, id *Identity, maxAge time.Duration, now time.Time) (userFacts, error) {
	f, err := u.lookup(ctx, u.pkColumn, id.UserID, maxAge, now)
	if err != nil {
		return f, err
	}
	if !f.found {
		return f, refuse(ReasonUserNotFound, "no user with the session's _auth_user_id")
	}
	if !f.active && !allowsInactiveUsers(id.Backend) {
		return f, refuse(ReasonUserInactive, "the user is not active")
	}
	if id.SessionAuthHash == "" || !hmac.Equal([]byte(id.SessionAuthHash), []byte(f.authHash)) {
		return f, refuse(ReasonSessionHashMismatch, "_auth_user_hash does not match the user's password")
	}
	return f, nil
}

// checkJWT applies JWTAuthentication's user checks to a token identity at
// a handshake or an in-band refresh; token is the verified token, read
// for the revoke claim.
func (u *userChecker) checkJWT(ctx context.Context, id *Identity, token string, now time.Time) error {
	if u == nil || u.jwtStateless {
		return nil
	}
	if u.jwtCheckRevoke {
		id.revokeClaim = tokenStringClaim(token, u.revokeClaim)
	}
	f, err := u.jwt(ctx, id, u.ttl, now)
	if err == nil {
		id.Attrs = f.fields
	}
	return err
}

// recheckJWT is checkJWT before a critical frame.
func (u *userChecker) recheckJWT(ctx context.Context, id *Identity, now time.Time) error {
	if u == nil || u.jwtStateless {
		return nil
	}
	_, err := u.jwt(ctx, id, u.recheckTTL, now)
	return err
}

func (u *userChecker) jwt(ctx context.Context, id *Identity, maxAge time.Duration, now time.Time) (userFacts, error) {
	f, err := u.lookup(ctx, u.jwtColumn, id.UserID, maxAge, now)
	if err != nil {
		return f, err
	}
	if !f.found {
		return f, refuse(ReasonUserNotFound, "no user with the token's user id")
	}
	if u.jwtCheckActive && !f.active {
		return f, refuse(ReasonUserInactive, "the user is not active")
	}
	if u.jwtCheckRevoke {
		c := id.revokeClaim
		if c == nil || f.md5 == "" || !hmac.Equal([]byte(*c), []byte(f.md5)) {
			return f, refuse(ReasonJWTPasswordChanged, u.revokeClaim+" does not match the user's password")
		}
	}
	return f, nil
}

// lookup returns the facts of the user whose column equals value, from
// the cache when an entry is younger than maxAge.
func (u *userChecker) lookup(ctx context.Context, column, value string, maxAge time.Duration, now time.Time) (userFacts, error) {
	key := userKey{column, value}
	if f, ok := u.cache.get(key, maxAge, now); ok {
		return f, nil
	}
	rec, err := u.rows.user(ctx, column, value)
	if err != nil {
		u.log.Warn("user lookup failed", "err", err)
		return userFacts{}, refuseErr(ReasonUserStoreUnavailable, errors.New("the user table could not be read"))
	}
	f := u.facts(rec)
	if u.ttl > 0 {
		u.cache.put(key, f, now)
	}
	return f, nil
}

func (u *userChecker) facts(rec userRecord) userFacts {
	if !rec.found {
		return userFacts{}
	}
	f := userFacts{found: true, active: rec.active, fields: rec.fields}
	// Django's salted_hmac reads a NULL password as the text "None";
	// simplejwt's .encode() fails on it, which refuses the token.
	pw := rec.password
	if rec.passwordNull {
		pw = "None"
	} else {
		sum := md5.Sum([]byte(pw))
		f.md5 = strings.ToUpper(hex.EncodeToString(sum[:]))
	}
	m := hmac.New(sha256.New, u.hashKey)
	m.Write([]byte(pw))
	f.authHash = hex.EncodeToString(m.Sum(nil))
	return f
}

// allowsInactiveUsers reports the backends whose user_can_authenticate
// accepts inactive users.
func allowsInactiveUsers(backend string) bool {
	switch backend {
	case "django.contrib.auth.backends.AllowAllUsersModelBackend",
		"django.contrib.auth.backends.AllowAllUsersRemoteUserBackend":
		return true
	}
	return false
}

// tokenStringClaim reads one string claim from an already verified
// token's payload; nil when absent or not a string, which the revoke check
// refuses as simplejwt does (None != the hash).
func tokenStringClaim(token, claim string) *string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := b64Decode(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	s, ok := jsonString(claims[claim])
	if !ok {
		return nil
	}
	return &s
}

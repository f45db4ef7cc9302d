package auth

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time_zone must load in minimal images without /usr/share/zoneinfo
)

// Database engines, as the last part of Django's DATABASES ENGINE.
const (
	DatabasePostgreSQL = "postgresql"
	DatabaseSQLite     = "sqlite3"
)

// Defaults of the database section.
const (
	DefaultSessionTable       = "django_session"
	DefaultSessionStoreClass  = "SessionStore"
	DefaultUserTable          = "auth_user"
	DefaultUserPKColumn       = "id"
	DefaultUserPasswordColumn = "password"
	DefaultUserIsActiveColumn = "is_active"
	DefaultDBMaxOpenConns     = 4
	DefaultDBQueryTimeout     = 2 * time.Second
	DefaultUserCacheTTL       = 5 * time.Second
	DefaultDBCacheSize        = 10000
)

// DatabaseConfig gives the sidecar read-only access to Django's database:
// the django_session table for the db and cached_db session engines, and
// the user table for the checks that Channels' get_user and simplejwt's
// JWTAuthentication make (user exists, is active, password unchanged).
// Connection keys mirror a DATABASES entry (ENGINE, NAME, HOST, PORT, USER,
// PASSWORD, OPTIONS, TIME_ZONE); a DSN may replace them.
//
// The section is off while Engine is empty; then session_engine db and
// cached_db cannot be used, and identities are not checked against users.
type DatabaseConfig struct {
	// Engine is "postgresql" or "sqlite3"; Django's full names
	// ("django.db.backends.postgresql", "django.db.backends.sqlite3") and
	// "sqlite" are accepted too. Default "" (no database).
	Engine string `yaml:"engine"`
	// DSN is a complete connection string: for PostgreSQL a postgres:// URL
	// or a "key=value ..." string as libpq reads it; for SQLite a file path.
	// Use either DSN or Name/Host/Port/User/Password/Options.
	DSN string `yaml:"dsn"`
	// Name is NAME: the database name for PostgreSQL, the file path for
	// SQLite.
	Name string `yaml:"name"`
	// Host is HOST: a host name, an IP address, or a unix socket folder
	// (a path starting with "/"). Default: the driver's default (the usual
	// unix socket folders, then localhost), as with Django's empty HOST.
	Host string `yaml:"host"`
	// Port is PORT. Default 5432.
	Port int `yaml:"port"`
	// User is USER.
	User string `yaml:"user"`
	// Password is PASSWORD. It is never printed.
	Password string `yaml:"password"`
	// Options are extra PostgreSQL connection parameters, like OPTIONS
	// (for example sslmode: verify-full, sslrootcert: /path/ca.pem).
	Options map[string]string `yaml:"options"`
	// TimeZone is the database's TIME_ZONE: with use_tz, the zone of the
	// naive datetimes an SQLite database holds. Default: UTC with use_tz,
	// the top-level time_zone without it.
	TimeZone string `yaml:"time_zone"`

	// SessionTable is the table of the session model. Default
	// "django_session".
	SessionTable string `yaml:"session_table"`
	// SessionStoreClass is the __qualname__ of the SessionStore class that
	// writes the rows: session data is signed with the salt
	// "django.contrib.sessions." + this. Default "SessionStore" (Django's
	// db and cached_db engines); a project's subclass changes it.
	SessionStoreClass string `yaml:"session_store_class"`
	// UserTable is the table of AUTH_USER_MODEL. Default "auth_user".
	UserTable string `yaml:"user_table"`
	// UserPKColumn is the primary key column of the user table, which
	// _auth_user_id names. Default "id".
	UserPKColumn string `yaml:"user_pk_column"`
	// UserPasswordColumn holds the password hash that the session auth
	// hash and simplejwt's hash_password claim are made from. Default
	// "password".
	UserPasswordColumn string `yaml:"user_password_column"`
	// UserIsActiveColumn is the is_active column. Default "is_active".
	UserIsActiveColumn string `yaml:"user_is_active_column"`
	// UserFields are more user table columns to read with each user, for
	// routes' templates ({user.username}) and the staff auth level
	// (is_staff, is_superuser). Default none; Django's auth_user has
	// username, email, first_name, last_name, is_staff and is_superuser.
	UserFields []string `yaml:"user_fields"`

	// MaxOpenConns bounds the connection pool. Default 4.
	MaxOpenConns int `yaml:"max_open_conns"`
	// QueryTimeout bounds one query, on top of the caller's deadline.
	// Default 2s.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// UserCacheTTL is how long a user row read at a handshake may be reused
	// by later handshakes. Default 5s; a negative value turns the cache
	// off. A re-check before a critical frame reuses a row (user or
	// session) for at most the top-level recheck_cache_ttl (default 2s):
	// a logout, password change or deactivation in Django closes a socket
	// at its first critical frame at most that long after the change.
	UserCacheTTL time.Duration `yaml:"user_cache_ttl"`
	// CacheSize bounds each cache (users, session rows) in entries; the
	// least recently used entries go first. Default 10000.
	CacheSize int `yaml:"cache_size"`
}

// enabled reports whether a database is configured.
func (d *DatabaseConfig) enabled() bool { return d.Engine != "" }

// setDefaults fills the zero values of a configured database, and leaves
// an unconfigured one untouched so that it prints as absent.
func (d *DatabaseConfig) setDefaults() {
	if !d.enabled() {
		return
	}
	d.Engine = normalizeDBEngine(d.Engine)
	for _, f := range [...]struct {
		p   *string
		def string
	}{
		{&d.SessionTable, DefaultSessionTable},
		{&d.SessionStoreClass, DefaultSessionStoreClass},
		{&d.UserTable, DefaultUserTable},
		{&d.UserPKColumn, DefaultUserPKColumn},
		{&d.UserPasswordColumn, DefaultUserPasswordColumn},
		{&d.UserIsActiveColumn, DefaultUserIsActiveColumn},
	} {
		if *f.p == "" {
			*f.p = f.def
		}
	}
	if d.MaxOpenConns == 0 {
		d.MaxOpenConns = DefaultDBMaxOpenConns
	}
	if d.QueryTimeout == 0 {
		d.QueryTimeout = DefaultDBQueryTimeout
	}
	if d.UserCacheTTL == 0 {
		d.UserCacheTTL = DefaultUserCacheTTL
	}
	if d.CacheSize == 0 {
		d.CacheSize = DefaultDBCacheSize
	}
}

// normalizeDBEngine maps Django's ENGINE names and common short forms to
// DatabasePostgreSQL or DatabaseSQLite; anything else is returned as is.
func normalizeDBEngine(e string) string {
	switch strings.TrimPrefix(e, "django.db.backends.") {
	case "postgresql", "postgresql_psycopg2", "postgres":
		return DatabasePostgreSQL
	case "sqlite3", "sqlite":
		return DatabaseSQLite
	}
	return e
}

// validate reports every database setting that cannot work.
func (d *DatabaseConfig) validate() []error {
	if !d.enabled() {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("database."+format, args...)) }
	switch d.Engine {
	case DatabasePostgreSQL:
		if d.DSN == "" && d.Name == "" {
			add("name (or dsn) is required for postgresql")
		}
		if d.Port < 0 || d.Port > 65535 {
			add("port %d is out of range", d.Port)
		}
		for k := range d.Options {
			if !validOptionKey(k) {
				add("options key %q is not a connection parameter name", k)
			}
		}
	case DatabaseSQLite:
		if d.DSN == "" && d.Name == "" {
			add("name (the database file) is required for sqlite3")
		}
		if d.Host != "" || d.Port != 0 || d.User != "" || d.Password != "" || len(d.Options) > 0 {
			add("host, port, user, password and options do not apply to sqlite3")
		}
	default:
		add("engine %q is not supported (supported: %s, %s)", d.Engine, DatabasePostgreSQL, DatabaseSQLite)
	}
	if d.DSN != "" && (d.Name != "" || d.Host != "" || d.Port != 0 || d.User != "" || d.Password != "" || len(d.Options) > 0) {
		add("dsn replaces name, host, port, user, password and options: set one or the other")
	}
	for _, id := range [...]struct{ key, value string }{
		{"session_table", d.SessionTable}, {"user_table", d.UserTable},
	} {
		if !validSQLName(id.value, true) {
			add("%s %q is not a table name (letters, digits, '_', '$', optionally schema.table)", id.key, id.value)
		}
	}
	for _, id := range [...]struct{ key, value string }{
		{"user_pk_column", d.UserPKColumn}, {"user_password_column", d.UserPasswordColumn},
		{"user_is_active_column", d.UserIsActiveColumn},
	} {
		if !validSQLName(id.value, false) {
			add("%s %q is not a column name (letters, digits, '_', '$')", id.key, id.value)
		}
	}
	for i, f := range d.UserFields {
		if !validSQLName(f, false) {
			add("user_fields[%d] %q is not a column name (letters, digits, '_', '$')", i, f)
		}
	}
	if !validPythonQualname(d.SessionStoreClass) {
		add("session_store_class %q is not a Python class __qualname__", d.SessionStoreClass)
	}
	if d.TimeZone != "" {
		if _, err := time.LoadLocation(d.TimeZone); err != nil {
			add("time_zone %q: %v", d.TimeZone, err)
		}
	}
	if d.MaxOpenConns < 1 {
		add("max_open_conns must be at least 1, got %d", d.MaxOpenConns)
	}
	if d.QueryTimeout < 0 {
		add("query_timeout must not be negative, got %s", d.QueryTimeout)
	}
	if d.CacheSize < 1 {
		add("cache_size must be at least 1, got %d", d.CacheSize)
	}
	return errs
}

var (
	sqlNamePart     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
	pythonIdent     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	connOptionToken = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

// validSQLName accepts identifiers that are safe to quote into a query:
// one name, or schema.name when qualified is allowed.
func validSQLName(s string, qualified bool) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 2 || len(parts) == 2 && !qualified {
		return false
	}
	for _, p := range parts {
		if !sqlNamePart.MatchString(p) {
			return false
		}
	}
	return true
}

// validPythonQualname accepts dotted Python identifiers (a nested class's
// __qualname__ has dots).
func validPythonQualname(s string) bool {
	for _, p := range strings.Split(s, ".") {
		if !pythonIdent.MatchString(p) {
			return false
		}
	}
	return true
}

func validOptionKey(k string) bool { return connOptionToken.MatchString(k) }

// validateTimeSettings checks use_tz and time_zone, which matter where a
// database stores naive datetimes (SQLite).
func (c *Config) validateTimeSettings() []error {
	var errs []error
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			errs = append(errs, fmt.Errorf("time_zone %q: %w", c.TimeZone, err))
		}
	}
	if c.Database.enabled() && !c.useTZ() {
		if c.TimeZone == "" {
			errs = append(errs, errors.New("time_zone is required when use_tz is false: Django then stores datetimes as local time in TIME_ZONE"))
		}
		if c.Database.TimeZone != "" && c.Database.TimeZone != c.TimeZone {
			errs = append(errs, errors.New("database.time_zone must be empty or equal time_zone when use_tz is false (Django refuses other values)"))
		}
	}
	return errs
}

// validateDatabaseUse checks that the session engine has the store it
// reads.
func (c *Config) validateDatabaseUse() []error {
	if c.DisableSessions || c.Database.enabled() || c.SessionCallback.enabled() {
		return nil
	}
	switch c.SessionEngine {
	case EngineDB, EngineCachedDB:
		return []error{fmt.Errorf("session_engine %q reads Django's django_session table: configure database (engine and name or dsn), or set disable_sessions: true to accept JWTs only", c.SessionEngine)}
	}
	return nil
}

// useTZ is USE_TZ, true unless set to false.
func (c *Config) useTZ() bool { return c.UseTZ == nil || *c.UseTZ }

// naiveLocation is where the naive datetimes of the database live: UTC or
// the database's TIME_ZONE with USE_TZ, TIME_ZONE without it. Validate has
// checked the names.
func (c *Config) naiveLocation() *time.Location {
	name := c.Database.TimeZone
	if !c.useTZ() {
		name = c.TimeZone
	}
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// redacted returns a copy with the password and any password in the DSN
// masked.
func (d DatabaseConfig) redacted() DatabaseConfig {
	if d.Password != "" {
		d.Password = "[redacted]"
	}
	d.DSN = redactDSN(d.DSN)
	if d.Options != nil {
		opts := make(map[string]string, len(d.Options))
		for k, v := range d.Options {
			if strings.Contains(k, "password") {
				v = "[redacted]"
			}
			opts[k] = v
		}
		d.Options = opts
	}
	return d
}

// redactDSN masks the password of a postgres:// URL (user info or
// password= parameter) or of a key=value string.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "[redacted]"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "redacted")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	if strings.Contains(dsn, "password") {
		return "[redacted]"
	}
	return dsn
}

// postgresConnString builds a libpq key=value string from the DATABASES
// style keys, quoting every value.
func (d *DatabaseConfig) postgresConnString() string {
	if d.DSN != "" {
		return d.DSN
	}
	params := map[string]string{"dbname": d.Name}
	if d.Host != "" {
		params["host"] = d.Host
	}
	if d.Port != 0 {
		params["port"] = strconv.Itoa(d.Port)
	}
	if d.User != "" {
		params["user"] = d.User
	}
	if d.Password != "" {
		params["password"] = d.Password
	}
	for k, v := range d.Options {
		params[k] = v
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(params[k]))
		b.WriteByte('\'')
	}
	return b.String()
}

// setStoreDefaults fills the defaults of the database and time settings.
func (c *Config) setStoreDefaults() {
	if c.UseTZ == nil {
		useTZ := true
		c.UseTZ = &useTZ
	}
	c.Database.setDefaults()
	if c.SessionEngine == EngineCachedDB && c.sessionCacheConfigured() {
		c.SessionCache.SetDefaults()
	}
}

// sessionCacheConfigured reports whether session_cache names a cache, which
// cached_db then reads before its table.
func (c *Config) sessionCacheConfigured() bool {
	return c.SessionCache.Backend != "" || len(c.SessionCache.Location) > 0
}

// validateStores reports every database, time zone and user check setting
// that cannot work.
func (c *Config) validateStores() []error {
	var errs []error
	errs = append(errs, c.Database.validate()...)
	errs = append(errs, c.validateTimeSettings()...)
	errs = append(errs, c.validateDatabaseUse()...)
	if !c.DisableSessions && !c.SessionCallback.enabled() && c.SessionEngine == EngineCachedDB && c.sessionCacheConfigured() {
		if err := c.SessionCache.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Database.enabled() && !c.DisableJWT {
		errs = append(errs, c.SimpleJWT.validateUserChecks()...)
	}
	return errs
}

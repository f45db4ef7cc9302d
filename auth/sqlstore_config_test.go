package auth

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDatabaseConfigFromYAML(t *testing.T) {
	var c Config
	src := `
secret_key: s
session_engine: django.contrib.sessions.backends.cached_db
use_tz: false
time_zone: Europe/Paris
database:
  engine: django.db.backends.postgresql
  name: app
  host: /var/run/postgresql
  user: sidecar
  password: "it's secret"
  options: {sslmode: verify-full}
  user_cache_ttl: 10s
simple_jwt:
  check_revoke_token: true
`
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := c.Database
	if d.Engine != DatabasePostgreSQL || d.SessionTable != "django_session" || d.UserTable != "auth_user" ||
		d.UserPKColumn != "id" || d.UserCacheTTL != 10*time.Second || d.CacheSize != DefaultDBCacheSize ||
		d.QueryTimeout != DefaultDBQueryTimeout || d.SessionStoreClass != "SessionStore" {
		t.Errorf("database defaults: %+v", d)
	}
	if c.useTZ() || c.naiveLocation().String() != "Europe/Paris" {
		t.Errorf("use_tz %v, naive location %s", c.useTZ(), c.naiveLocation())
	}
	want := `dbname='app' host='/var/run/postgresql' password='it\'s secret' sslmode='verify-full' user='sidecar'`
	if got := d.postgresConnString(); got != want {
		t.Errorf("conn string\n got %s\nwant %s", got, want)
	}
	r := c.Redacted()
	if r.Database.Password != "[redacted]" || c.Database.Password != "it's secret" {
		t.Errorf("redacted %q, original %q", r.Database.Password, c.Database.Password)
	}
}

func TestDatabaseConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{SecretKey: "s", SessionEngine: EngineDB, Database: DatabaseConfig{Engine: "sqlite3", Name: "/tmp/db.sqlite3"}}
	}
	off := false
	cases := []struct {
		name   string
		mutate func(*Config)
		errs   []string
	}{
		{"sqlite", nil, nil},
		{"db engine without a database", func(c *Config) { c.Database = DatabaseConfig{} }, []string{"configure database"}},
		{"cached_db without a database", func(c *Config) { c.Database, c.SessionEngine = DatabaseConfig{}, EngineCachedDB }, []string{"configure database"}},
		{"JWT only needs no database", func(c *Config) { c.Database, c.DisableSessions = DatabaseConfig{}, true }, nil},
		{"unknown engine", func(c *Config) { c.Database.Engine = "mysql" }, []string{`database.engine "mysql" is not supported`}},
		{"sqlite without a file", func(c *Config) { c.Database.Name = "" }, []string{"database.name (the database file) is required"}},
		{"sqlite with a host", func(c *Config) { c.Database.Host = "db" }, []string{"do not apply to sqlite3"}},
		{"postgres without a name", func(c *Config) { c.Database = DatabaseConfig{Engine: "postgresql"} }, []string{"database.name (or dsn) is required"}},
		{"dsn and name", func(c *Config) { c.Database = DatabaseConfig{Engine: "postgresql", DSN: "postgres://h/db", Name: "db"} }, []string{"dsn replaces"}},
		{"bad port", func(c *Config) { c.Database = DatabaseConfig{Engine: "postgresql", Name: "db", Port: 70000} }, []string{"port 70000"}},
		{"bad option key", func(c *Config) {
			c.Database = DatabaseConfig{Engine: "postgresql", Name: "db", Options: map[string]string{"ssl mode": "x"}}
		}, []string{`options key "ssl mode"`}},
		{"schema-qualified table", func(c *Config) { c.Database.UserTable = "accounts.users" }, nil},
		{"injected table", func(c *Config) { c.Database.UserTable = `auth_user"; DROP TABLE x; --` }, []string{"database.user_table"}},
		{"qualified column", func(c *Config) { c.Database.UserPKColumn = "a.b" }, []string{"database.user_pk_column"}},
		{"bad user_id_field", func(c *Config) { c.SimpleJWT.UserIDField = "id;" }, []string{"simple_jwt.user_id_field"}},
		{"bad user_id_field, stateless", func(c *Config) { c.SimpleJWT.UserIDField = "id;"; c.SimpleJWT.StatelessUser = true }, nil},
		{"bad store class", func(c *Config) { c.Database.SessionStoreClass = "my-store" }, []string{"session_store_class"}},
		{"nested store class", func(c *Config) { c.Database.SessionStoreClass = "Outer.Store" }, nil},
		{"use_tz false needs time_zone", func(c *Config) { c.UseTZ = &off }, []string{"time_zone is required when use_tz is false"}},
		{"use_tz false, other database zone", func(c *Config) {
			c.UseTZ, c.TimeZone, c.Database.TimeZone = &off, "Asia/Tokyo", "UTC"
		}, []string{"database.time_zone must be empty or equal time_zone"}},
		{"unknown zone", func(c *Config) { c.TimeZone = "Mars/Base" }, []string{`time_zone "Mars/Base"`}},
		{"unknown database zone", func(c *Config) { c.Database.TimeZone = "Mars/Base" }, []string{`database.time_zone "Mars/Base"`}},
		{"cached_db reading its cache", func(c *Config) {
			c.SessionEngine, c.SessionCache = EngineCachedDB, SessionCacheConfig{Backend: CacheBackendDjango, Location: CacheLocation{"redis://127.0.0.1:6379/1"}}
		}, nil},
		{"cached_db with a cache that cannot be read", func(c *Config) {
			c.SessionEngine, c.SessionCache = EngineCachedDB, SessionCacheConfig{Backend: "django.core.cache.backends.memcached.PyMemcacheCache"}
		}, []string{"session_cache.backend", "session_cache.location is required"}},
		{"negative pool", func(c *Config) { c.Database.MaxOpenConns = -1 }, []string{"max_open_conns"}},
		{"negative cache size", func(c *Config) { c.Database.CacheSize = -1 }, []string{"cache_size"}},
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

func TestDatabaseConfigUnsetStaysEmpty(t *testing.T) {
	c := Config{SecretKey: "s", SessionEngine: EngineSignedCookies}
	c.SetDefaults()
	if !reflect.DeepEqual(c.Database, DatabaseConfig{}) {
		t.Errorf("an unconfigured database got defaults: %+v", c.Database)
	}
}

func TestRedactDSN(t *testing.T) {
	cases := map[string]string{
		"postgres://u:hunter2@db:5432/app?sslmode=require": "postgres://u:redacted@db:5432/app?sslmode=require",
		"postgres://u@db/app?password=hunter2":             "postgres://u@db/app?password=redacted",
		"host=db password=hunter2 dbname=app":              "[redacted]",
		"host=db dbname=app":                               "host=db dbname=app",
		"/var/lib/app/db.sqlite3":                          "/var/lib/app/db.sqlite3",
	}
	for in, want := range cases {
		if got := redactDSN(in); got != want || strings.Contains(got, "hunter2") {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sessionRecord is one django_session row, or its absence.
type sessionRecord struct {
	found bool
	data  string
	// expires is expire_date as an instant.
	expires time.Time
	// naive is set when the database holds expire_date as a wall clock
	// without a zone (SQLite); wall is that clock, its fields read as UTC.
	// Django compares such values as text, wall clock against wall clock,
	// and so does expiredAt.
	naive bool
	wall  time.Time
	loc   *time.Location
}

// expiredAt reports whether Django's expire_date > now filter would drop
// the row at now.
func (r *sessionRecord) expiredAt(now time.Time) bool {
	if !r.naive {
		return !r.expires.After(now)
	}
	loc := r.loc
	if loc == nil {
		loc = time.UTC
	}
	return !r.wall.After(wallClock(now.In(loc)))
}

// userRecord is the part of a user row that the checks read, or its
// absence.
type userRecord struct {
	found        bool
	password     string
	passwordNull bool
	active       bool
	fields       map[string]any // the configured user_fields
}

// sessionRows reads stored sessions by key.
type sessionRows interface {
	session(ctx context.Context, key string) (sessionRecord, error)
}

// userRows reads users by the value of one column.
type userRows interface {
	user(ctx context.Context, column, value string) (userRecord, error)
}

// sqlStore reads django_session and the user table of a PostgreSQL or
// SQLite database, read-only, through database/sql.
type sqlStore struct {
	db           *sql.DB
	engine       string
	timeout      time.Duration
	naive        *time.Location
	sessionQuery string
	userQueries  map[string]string // by lookup column
	userFields   []string
}

// openSQLStore prepares the connection pool for cfg.Database; it does not
// connect, so a database that is down at start-up only fails handshakes.
// lookupColumns are the user table columns that users are looked up by.
func openSQLStore(cfg *Config, lookupColumns ...string) (*sqlStore, error) {
	d := &cfg.Database
	s := &sqlStore{engine: d.Engine, timeout: d.QueryTimeout, naive: cfg.naiveLocation(), userQueries: map[string]string{}}
	var err error
	switch d.Engine {
	case DatabasePostgreSQL:
		s.db, err = openPostgres(d)
	case DatabaseSQLite:
		s.db, err = openSQLite(d)
	default:
		err = fmt.Errorf("database engine %q is not supported", d.Engine)
	}
	if err != nil {
		return nil, err
	}
	s.db.SetMaxOpenConns(d.MaxOpenConns)
	s.db.SetMaxIdleConns(d.MaxOpenConns)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	s.db.SetConnMaxLifetime(30 * time.Minute)

	s.sessionQuery = fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s = %s",
		quoteSQLName("session_data"), quoteSQLName("expire_date"), quoteSQLName(d.SessionTable),
		quoteSQLName("session_key"), s.placeholder())
	s.userFields = append([]string(nil), d.UserFields...)
	extra := ""
	for _, f := range d.UserFields {
		extra += ", " + quoteSQLName(f)
	}
	for _, col := range lookupColumns {
		s.userQueries[col] = fmt.Sprintf("SELECT %s, %s%s FROM %s WHERE %s = %s",
			quoteSQLName(d.UserPasswordColumn), quoteSQLName(d.UserIsActiveColumn), extra, quoteSQLName(d.UserTable),
			quoteSQLName(col), s.placeholder())
	}
	return s, nil
}

func openPostgres(d *DatabaseConfig) (*sql.DB, error) {
	pc, err := pgx.ParseConfig(d.postgresConnString())
	if err != nil {
		// pgx's message can quote the connection string, password included.
		return nil, errors.New("database: the postgresql connection settings do not parse")
	}
	// The sidecar only reads; a read-only transaction default makes any
	// write through this pool fail even with a privileged role.
	pc.RuntimeParams["default_transaction_read_only"] = "on"
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = "channels-sidecar"
	}
	return stdlib.OpenDB(*pc), nil
}

func openSQLite(d *DatabaseConfig) (*sql.DB, error) {
	name := d.DSN
	if name == "" {
		name = d.Name
	}
	if !strings.HasPrefix(name, "file:") {
		// A file: URI lets SQLite open the file read-only, and fail rather
		// than create an empty database when the path is wrong.
		name = "file:" + (&url.URL{Path: name}).EscapedPath() + "?mode=ro"
	}
	sep := "?"
	if strings.Contains(name, "?") {
		sep = "&"
	}
	// Django writes with a rollback journal: wait for its write locks
	// rather than fail at once.
	name += sep + fmt.Sprintf("_pragma=busy_timeout(%d)", d.QueryTimeout.Milliseconds())
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("database: open sqlite3: %w", err)
	}
	return db, nil
}

// quoteSQLName quotes a validated name, and each part of schema.name, with
// double quotes, which both PostgreSQL and SQLite read as an identifier.
func quoteSQLName(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, ".")
}

func (s *sqlStore) placeholder() string {
	if s.engine == DatabasePostgreSQL {
		return "$1"
	}
	return "?"
}

// close releases the pool.
func (s *sqlStore) close() error { return s.db.Close() }

// session reads the row of key. A missing row is not an error.
func (s *sqlStore) session(ctx context.Context, key string) (sessionRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.sessionQuery, key)
	if err != nil {
		if badInput(err) {
			return sessionRecord{}, nil
		}
		return sessionRecord{}, fmt.Errorf("read session: %w", err)
	}
	defer rows.Close()
	aware := false
	if types, err := rows.ColumnTypes(); err == nil && len(types) == 2 {
		aware = strings.EqualFold(types[1].DatabaseTypeName(), "TIMESTAMPTZ")
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return sessionRecord{}, fmt.Errorf("read session: %w", err)
		}
		return sessionRecord{}, nil
	}
	var data sql.NullString
	var expire any
	if err := rows.Scan(&data, &expire); err != nil {
		return sessionRecord{}, fmt.Errorf("read session: %w", err)
	}
	rec := sessionRecord{found: true, data: data.String, loc: s.naive}
	if err := rec.setExpiry(expire, aware); err != nil {
		return sessionRecord{}, fmt.Errorf("read session: expire_date: %w", err)
	}
	return rec, nil
}

// user reads the password and is_active of the user whose column equals
// value. The value is passed as text and converted by the database, as
// Django's field to_python would ("42" and "042" find user 42); a value
// the column type cannot take finds nobody.
func (s *sqlStore) user(ctx context.Context, column, value string) (userRecord, error) {
	q, ok := s.userQueries[column]
	if !ok {
		return userRecord{}, fmt.Errorf("read user: no query for column %q", column)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var password sql.NullString
	var active sql.NullBool
	extra := make([]any, len(s.userFields))
	dest := append([]any{&password, &active}, make([]any, len(s.userFields))...)
	for i := range extra {
		dest[2+i] = &extra[i]
	}
	err := s.db.QueryRowContext(ctx, q, value).Scan(dest...)
	switch {
	case errors.Is(err, sql.ErrNoRows), err != nil && badInput(err):
		return userRecord{}, nil
	case err != nil:
		return userRecord{}, fmt.Errorf("read user: %w", err)
	}
	// A NULL is_active is falsy in Python, so the user is inactive.
	rec := userRecord{found: true, password: password.String, passwordNull: !password.Valid, active: active.Valid && active.Bool}
	if len(s.userFields) > 0 {
		rec.fields = make(map[string]any, len(s.userFields))
		for i, f := range s.userFields {
			rec.fields[f] = userFieldValue(f, extra[i])
		}
	}
	return rec, nil
}

// userFieldValue turns a driver value into a JSON value. SQLite stores
// booleans as 0 and 1: an is_* column becomes a bool, as Django reads it.
func userFieldValue(name string, v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case int64:
		if strings.HasPrefix(name, "is_") {
			return x != 0
		}
	}
	return v
}

// badInput reports a PostgreSQL data exception (class 22): a key with a
// NUL byte, or a user id that the column type cannot parse. Such a value
// cannot name a row.
func badInput(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22")
}

// naiveLayouts are the text forms of a naive datetime in SQLite as Django
// writes it (str(datetime): microseconds only when non-zero), and the ISO
// form with a T.
var naiveLayouts = []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"}

// setExpiry reads expire_date as the driver returns it: an instant from a
// time-zone aware PostgreSQL column, otherwise a naive wall clock (a
// time.Time whose fields are the wall clock, or text).
func (r *sessionRecord) setExpiry(v any, aware bool) error {
	switch t := v.(type) {
	case time.Time:
		if aware {
			r.expires = t
			return nil
		}
		r.setWall(wallClock(t))
		return nil
	case []byte:
		return r.setExpiryText(string(t))
	case string:
		return r.setExpiryText(t)
	case nil:
		return errors.New("NULL")
	}
	return fmt.Errorf("unexpected type %T", v)
}

func (r *sessionRecord) setExpiryText(s string) error {
	s = strings.TrimSpace(s)
	for _, layout := range naiveLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			r.setWall(t)
			return nil
		}
	}
	// Text with an offset is an instant whatever the settings.
	for _, layout := range [...]string{"2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			r.expires = t
			return nil
		}
	}
	return errors.New("not a datetime")
}

func (r *sessionRecord) setWall(w time.Time) {
	r.naive, r.wall = true, w
	loc := r.loc
	if loc == nil {
		loc = time.UTC
	}
	r.expires = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
}

// wallClock returns t's wall clock fields as a UTC time, so that two wall
// clocks compare as Django compares naive datetimes.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

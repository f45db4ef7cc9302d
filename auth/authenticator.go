package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Handshake holds the parts of a WebSocket opening request that can carry
// a credential.
type Handshake struct {
	// Cookie is the value of the first Cookie header (Channels reads only
	// that one), as raw bytes.
	Cookie string
	// Query is the raw, still URL-encoded query string, without the '?'.
	Query string
	// Authorization is the value of the Authorization header.
	Authorization string
	// Protocols are the offered Sec-WebSocket-Protocol values, split on
	// commas.
	Protocols []string
	// Remote is the client's address, for the log of refused credentials.
	Remote string
}

// Authenticator turns handshakes into identities. It is safe for
// concurrent use; the only state it keeps is the session engines' short,
// bounded memory of recent answers.
type Authenticator struct {
	log         *slog.Logger
	jwt         *simpleJWT    // nil when JWTs are disabled
	sessions    sessionEngine // nil when sessions are disabled
	db          *sqlStore     // nil without a database
	users       *userChecker  // nil without a database: users are not checked
	cookieName  string
	queryParam  string
	headerTypes []string
	subprotocol string
	leeway      time.Duration
	originHosts []string // Config.OriginHosts
}

// New validates cfg (after filling its defaults) and builds an
// Authenticator. A nil log discards log records.
func New(cfg Config, log *slog.Logger) (*Authenticator, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		log:         log,
		cookieName:  cfg.SessionCookieName,
		queryParam:  cfg.TokenQueryParam,
		headerTypes: append([]string(nil), cfg.SimpleJWT.AuthHeaderTypes...),
		subprotocol: cfg.TokenSubprotocol,
		leeway:      time.Duration(cfg.SimpleJWT.Leeway) * time.Second,
		originHosts: cfg.OriginHosts(),
	}
	if !cfg.DisableJWT {
		j, err := newSimpleJWT(&cfg.SimpleJWT)
		if err != nil {
			return nil, fmt.Errorf("auth config: %w", err)
		}
		a.jwt = j
	}
	if cfg.Database.enabled() {
		users := newUserChecker(&cfg, nil, log)
		db, err := openSQLStore(&cfg, users.lookupColumns()...)
		if err != nil {
			return nil, fmt.Errorf("auth config: %w", err)
		}
		users.rows = db
		a.db, a.users = db, users
	}
	if !cfg.DisableSessions {
		e, err := newSessionEngine(&cfg, a.db)
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("auth config: %w", err)
		}
		a.sessions = e
	}
	return a, nil
}

// Close releases what the session engine holds (Redis connections, idle
// HTTP connections to the session callback) and the database connections.
// The Authenticator must not be used afterwards.
func (a *Authenticator) Close() error {
	var errs []error
	if c, ok := a.sessions.(interface{ close() error }); ok {
		errs = append(errs, c.close())
	}
	if a.db != nil {
		errs = append(errs, a.db.close())
	}
	return errors.Join(errs...)
}

// TokenSubprotocol returns the configured subprotocol marker, or "" when
// tokens are not read from Sec-WebSocket-Protocol. When a handshake was
// authenticated that way, the server must select this marker in its
// response, never the token: browsers fail a connection whose offered
// protocols were all ignored.
func (a *Authenticator) TokenSubprotocol() string {
	if a.jwt == nil {
		return ""
	}
	return a.subprotocol
}

// AllowedHosts returns Django's ALLOWED_HOSTS as Origin checks should use
// it (see Config.OriginHosts), or nil when it is not set.
func (a *Authenticator) AllowedHosts() []string {
	if a == nil {
		return nil
	}
	return append([]string(nil), a.originHosts...)
}

// Authenticate checks the credentials of h at time now, in this order: an
// access token in the query parameter, in the Authorization header, in the
// subprotocol list (when configured), then the session cookie. The first
// credential that proves a user wins. A refused credential does not stop
// the search, because browsers keep sending stale tokens next to a valid
// cookie; if nothing proves a user, the first refusal is returned as a
// *Failure. With no credential at all it returns (nil, nil): anonymous.
// Every refused credential is logged once, at INFO, with its source,
// reason and h.Remote, never with its value.
func (a *Authenticator) Authenticate(ctx context.Context, h Handshake, now time.Time) (*Identity, error) {
	var first *Failure
	try := func(source string, id *Identity, err error) *Identity {
		if err == nil {
			return id
		}
		var f *Failure
		if !errors.As(err, &f) { // engines return *Failure; this is a safety net
			reason := ReasonJWTMalformed
			if source == SourceCookie {
				reason = ReasonSessionMalformed
			}
			f = &Failure{Reason: reason, Err: err}
		}
		f.Source = source
		a.log.Info("credential refused", "source", source, "reason", f.Reason, "remote", h.Remote, "detail", f.Err)
		if first == nil {
			first = f
		}
		return nil
	}
	if a.jwt != nil {
		for _, src := range [...]struct {
			name    string
			extract func() (string, bool, error)
		}{
			{SourceQuery, func() (string, bool, error) { return a.queryToken(h.Query) }},
			{SourceHeader, func() (string, bool, error) { return a.headerToken(h.Authorization) }},
			{SourceSubprotocol, func() (string, bool, error) { return a.protocolToken(h.Protocols) }},
		} {
			tok, found, err := src.extract()
			if err == nil && !found {
				continue
			}
			var id *Identity
			if err == nil {
				id, err = a.jwt.identify(tok, now)
			}
			if err == nil {
				err = a.users.checkJWT(ctx, id, tok, now)
			}
			if id = try(src.name, id, err); id != nil {
				return id, nil
			}
		}
	}
	if a.sessions != nil && h.Cookie != "" {
		if v, ok := cookieValue(h.Cookie, a.cookieName); ok && v != "" {
			id, err := a.sessions.identify(ctx, v, now)
			if err == nil {
				err = a.users.checkSession(ctx, id, now)
			}
			if id = try(SourceCookie, id, err); id != nil {
				return id, nil
			}
		}
	}
	if first != nil {
		return nil, first
	}
	return nil, nil
}

// queryToken finds the token parameter in a raw query string, splitting on
// '&' and URL-decoding as Django's QueryDict does. It must appear once; an
// empty value counts as no token.
func (a *Authenticator) queryToken(rawQuery string) (string, bool, error) {
	var value string
	count := 0
	for rest := rawQuery; rest != ""; {
		pair := rest
		if i := strings.IndexByte(rest, '&'); i >= 0 {
			pair, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if k != a.queryParam {
			uk, err := url.QueryUnescape(k)
			if err != nil || uk != a.queryParam {
				continue
			}
		}
		count++
		value = v
	}
	if count == 0 {
		return "", false, nil
	}
	if count > 1 {
		return "", false, refuse(ReasonJWTRepeatedQueryParam, fmt.Sprintf("%q appears %d times", a.queryParam, count))
	}
	tok, err := url.QueryUnescape(value)
	if err != nil {
		return "", false, refuse(ReasonJWTMalformed, "query parameter is not URL-encoded correctly")
	}
	return tok, tok != "", nil
}

// headerToken reads "Authorization: <type> <token>" as simplejwt's
// JWTAuthentication.get_raw_token does: a first word that is not one of the
// configured types means the header is not ours.
func (a *Authenticator) headerToken(h string) (string, bool, error) {
	parts := splitAuthorization(h)
	if len(parts) == 0 || !a.isHeaderType(parts[0]) {
		return "", false, nil
	}
	if len(parts) != 2 {
		return "", false, refuse(ReasonJWTBadAuthorizationHeader, "authorization header must contain two space-delimited values")
	}
	return parts[1], true, nil
}

func (a *Authenticator) isHeaderType(t string) bool {
	for _, h := range a.headerTypes {
		if t == h {
			return true
		}
	}
	return false
}

// protocolToken returns the offered protocol right after the marker.
func (a *Authenticator) protocolToken(protocols []string) (string, bool, error) {
	if a.subprotocol == "" {
		return "", false, nil
	}
	for i, p := range protocols {
		if strings.TrimSpace(p) != a.subprotocol {
			continue
		}
		if i+1 >= len(protocols) {
			return "", false, refuse(ReasonJWTMalformed, "subprotocol marker without a token after it")
		}
		return strings.TrimSpace(protocols[i+1]), true, nil
	}
	return "", false, nil
}

package auth

import (
	"context"
	"fmt"
	"time"
)

// sessionEngine turns the value of the session cookie into an identity, as
// the matching Django SESSION_ENGINE would. A refusal is a *Failure.
type sessionEngine interface {
	identify(ctx context.Context, cookieValue string, now time.Time) (*Identity, error)
	// revalidate checks that a session identity from identify still
	// holds at now: not expired, still stored and unchanged where the
	// engine stores sessions. A refusal is a *Failure.
	revalidate(ctx context.Context, id *Identity, now time.Time) error
}

// newSessionEngine builds the engine named by cfg.SessionEngine, or the
// Django callback when one is configured; db is nil without a database.
func newSessionEngine(cfg *Config, db *sqlStore) (sessionEngine, error) {
	if cfg.SessionCallback.enabled() {
		return newCallbackSessions(cfg)
	}
	switch cfg.SessionEngine {
	case EngineSignedCookies:
		return newSignedCookieSessions(cfg)
	case EngineCache:
		return newCacheSessions(cfg)
	case EngineDB, EngineCachedDB:
		if db == nil {
			return nil, fmt.Errorf("session_engine %q needs database", cfg.SessionEngine)
		}
		return newDBSessions(cfg, db)
	}
	return nil, fmt.Errorf("session_engine %q is not supported", cfg.SessionEngine)
}

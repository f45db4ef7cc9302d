package auth

import (
	"fmt"
	"time"
)

// sessionEngine turns the value of the session cookie into an identity, as
// the matching Django SESSION_ENGINE would. A refusal is a *Failure.
type sessionEngine interface {
	identify(cookieValue string, now time.Time) (*Identity, error)
}

// newSessionEngine builds the engine named by cfg.SessionEngine.
func newSessionEngine(cfg *Config) (sessionEngine, error) {
	switch cfg.SessionEngine {
	case EngineSignedCookies:
		return newSignedCookieSessions(cfg)
	}
	return nil, fmt.Errorf("session_engine %q is not supported", cfg.SessionEngine)
}

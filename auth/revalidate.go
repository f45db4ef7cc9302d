package auth

import (
	"context"
	"time"
)

// Revalidate checks that an identity proven at the handshake still holds
// at now, before a socket acts on a critical frame: an access token must
// not have expired; a session must be unexpired and, for engines that
// store sessions, still stored and unchanged. A refusal is a *Failure
// whose Reason says why. An anonymous identity has nothing to lose and
// always passes.
func (a *Authenticator) Revalidate(ctx context.Context, id *Identity, now time.Time) error {
	if id.Anonymous() {
		return nil
	}
	switch id.Method {
	case MethodJWT:
		// simplejwt: exp must be strictly after now minus the leeway.
		if !id.Expires.IsZero() && !id.Expires.After(now.Add(-a.leeway)) {
			return &Failure{Reason: ReasonJWTExpired, Source: SourceRecheck}
		}
		return recheckSource(a.users.recheckJWT(ctx, id, now))
	case MethodSession:
		if a.sessions == nil {
			return &Failure{Reason: ReasonSessionNoUser, Source: SourceRecheck}
		}
		if err := a.sessions.revalidate(ctx, id, now); err != nil {
			if f, ok := err.(*Failure); ok {
				f.Source = SourceRecheck
			}
			return err
		}
		return recheckSource(a.users.recheckSession(ctx, id, now))
	}
	return nil
}

// AuthenticateToken checks an access token offered after the handshake,
// in a frame, so that a client can refresh its credential and keep its
// socket. It applies the same rules as a token at the handshake.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string, now time.Time) (*Identity, error) {
	if a.jwt == nil {
		return nil, &Failure{Reason: ReasonJWTMalformed, Source: SourceFrame}
	}
	id, err := a.jwt.identify(token, now)
	if err == nil {
		err = a.users.checkJWT(ctx, id, token, now)
	}
	if err != nil {
		if f, ok := err.(*Failure); ok {
			f.Source = SourceFrame
		}
		return nil, err
	}
	return id, nil
}

// recheckSource marks a refusal as coming from a re-check.
func recheckSource(err error) error {
	if f, ok := err.(*Failure); ok {
		f.Source = SourceRecheck
	}
	return err
}

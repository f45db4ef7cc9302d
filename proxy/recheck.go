package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/channels-sidecar/channels-sidecar/auth"
)

// recheck re-validates the socket's identity before a critical frame. On
// failure the socket is closed with 4001 and the reason, and the frame is
// not acted on.
func (c *conn) recheck() bool {
	if c.srv.auth == nil {
		return true
	}
	ident := c.identity.Load()
	if ident.Anonymous() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.srv.auth.Revalidate(ctx, ident, time.Now())
	if err == nil {
		return true
	}
	reason := failureReason(err)
	c.srv.metrics.AuthFailures.WithLabelValues(reason).Inc()
	c.log.Info("identity no longer valid, closing", "reason", reason)
	c.close(closeAuthExpired, reason)
	return false
}

// refreshToken swaps in a new access token sent in a frame. A bad token, or
// one for another user, gets an error frame; the socket keeps its old
// identity until that expires.
func (c *conn) refreshToken(rc *RefreshTokenConfig, frame map[string]any) bool {
	tok, _ := frame[rc.Field].(string)
	if tok == "" || c.srv.auth == nil {
		c.errorFrame("invalid_token", "the frame carries no access token in "+rc.Field)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := c.srv.auth.AuthenticateToken(ctx, tok, time.Now())
	if err != nil {
		reason := failureReason(err)
		c.srv.metrics.AuthFailures.WithLabelValues(reason).Inc()
		c.errorFrame("invalid_token", "the new token was refused: "+reason)
		return false
	}
	// A refresh renews a user's credential; it does not log a socket in
	// (the per-user group and the route's groups were chosen at connect).
	old := c.identity.Load()
	if old.Anonymous() || old.UserID != id.UserID {
		c.srv.metrics.AuthFailures.WithLabelValues("refresh_other_user").Inc()
		c.errorFrame("invalid_token", "the new token is for another user")
		return false
	}
	c.identity.Store(id)
	return true
}

func failureReason(err error) string {
	var f *auth.Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	return "invalid"
}

// Package auth turns a WebSocket handshake into an identity exactly as
// Django would: a Django session cookie or a djangorestframework-simplejwt
// access token, verified with the project's SECRET_KEY.
package auth

import "time"

// Identity is who a socket belongs to.
type Identity struct {
	// Attrs are the user's auth.database.user_fields (username,
	// is_staff, ...), read at the handshake; nil without a database.
	// Shared: treat as read-only.
	Attrs map[string]any
	// UserID is the user's primary key as text, as Django stores it in
	// the session ("42") or simplejwt writes it (42 or "42").
	UserID string
	// Method says how the identity was proven: "session" or "jwt".
	Method string
	// Expires is when the credential stops being valid; zero if unknown.
	Expires time.Time
	// Backend is the session's _auth_user_backend; empty for a JWT.
	Backend string
	// SessionAuthHash is the session's _auth_user_hash, which a user lookup
	// can compare with the user's current password hash (Django's
	// get_session_auth_hash); empty for a JWT.
	SessionAuthHash string
	// TokenID is the access token's jti; empty for a session.
	TokenID string

	// sessionKey is the session cookie's value, kept for engines that
	// re-read their store on a re-check. It is a credential: unexported,
	// so that it is never printed as part of an identity.
	sessionKey string
	// revokeClaim is the access token's revoke claim (simplejwt's
	// hash_password), kept when check_revoke_token needs it on a re-check;
	// nil when absent or not a string.
	revokeClaim *string
}

// Methods of an Identity.
const (
	MethodSession = "session"
	MethodJWT     = "jwt"
)

// Anonymous reports whether the identity carries no user.
func (id *Identity) Anonymous() bool { return id == nil || id.UserID == "" }

package auth

import "errors"

// Reason codes of a refused credential. They are stable, so metrics labels
// and log queries can rely on them.
const (
	// ReasonJWTMalformed: not three base64url segments of JSON objects, too
	// long, or a header field of the wrong type.
	ReasonJWTMalformed = "jwt_malformed"
	// ReasonJWTAlgNotAllowed: the header's alg is not the configured one
	// (including "none").
	ReasonJWTAlgNotAllowed = "jwt_alg_not_allowed"
	// ReasonJWTBadSignature: the signature does not verify with the key.
	ReasonJWTBadSignature = "jwt_bad_signature"
	// ReasonJWTExpired: exp is at or before now minus the leeway.
	ReasonJWTExpired = "jwt_expired"
	// ReasonJWTNotYetValid: iat or nbf is after now plus the leeway.
	ReasonJWTNotYetValid = "jwt_not_yet_valid"
	// ReasonJWTBadClaims: exp or jti missing, or a registered claim of the
	// wrong JSON type.
	ReasonJWTBadClaims = "jwt_bad_claims"
	// ReasonJWTWrongTokenType: token_type is missing or not "access"
	// (a refresh or sliding token).
	ReasonJWTWrongTokenType = "jwt_wrong_token_type"
	// ReasonJWTNoUser: the user id claim is missing or not a usable id.
	ReasonJWTNoUser = "jwt_no_user"
	// ReasonJWTBadAuthorizationHeader: "Bearer" followed by other than
	// exactly one value.
	ReasonJWTBadAuthorizationHeader = "jwt_bad_authorization_header"
	// ReasonJWTRepeatedQueryParam: the token query parameter appears more
	// than once.
	ReasonJWTRepeatedQueryParam = "jwt_repeated_query_param"

	// ReasonSessionMalformed: the cookie verifies but does not decode, or
	// is too short or too long to be a session.
	ReasonSessionMalformed = "session_malformed"
	// ReasonSessionBadSignature: no configured key signed the cookie.
	ReasonSessionBadSignature = "session_bad_signature"
	// ReasonSessionExpired: signed more than session_cookie_age ago.
	ReasonSessionExpired = "session_expired"
	// ReasonSessionNoUser: a valid session without a usable logged-in user
	// (_auth_user_id, _auth_user_backend or _auth_user_hash missing).
	ReasonSessionNoUser = "session_no_user"
	// ReasonSessionUnknownBackend: _auth_user_backend is not one of
	// authentication_backends.
	ReasonSessionUnknownBackend = "session_unknown_backend"
	// ReasonSessionNotFound: the session store has no such session
	// (logged out, expired, evicted, or never created).
	ReasonSessionNotFound = "session_not_found"
	// ReasonSessionChanged: on a re-check, the stored session names
	// another user, backend or auth hash than when the socket connected.
	ReasonSessionChanged = "session_changed"
	// ReasonSessionStoreUnavailable: the session store could not be read
	// (down or timed out); the credential is refused, never accepted on
	// error.
	ReasonSessionStoreUnavailable = "session_store_unavailable"
	// ReasonCallbackUnavailable: the Django session callback did not give
	// a usable answer (down, timed out, busy, refused our signature, or
	// answered something else than 200, 401 or 403).
	ReasonCallbackUnavailable = "callback_unavailable"
	// ReasonCallbackRefused: the Django session callback answered 403:
	// Django knows the session but refuses the socket.
	ReasonCallbackRefused = "callback_refused"
	// ReasonSessionHashMismatch: _auth_user_hash does not match the user's
	// current password hash (password changed, or the user's other
	// sessions invalidated).
	ReasonSessionHashMismatch = "session_hash_mismatch"
	// ReasonUserNotFound: the identity's user is not in the user table.
	ReasonUserNotFound = "user_not_found"
	// ReasonUserInactive: the user's is_active is false.
	ReasonUserInactive = "user_inactive"
	// ReasonJWTPasswordChanged: with check_revoke_token, the token's
	// revoke claim is not the MD5 of the user's current password hash.
	ReasonJWTPasswordChanged = "jwt_password_changed"
	// ReasonUserStoreUnavailable: the user table could not be read; the
	// credential is refused, never accepted on error.
	ReasonUserStoreUnavailable = "user_store_unavailable"
)

// Reasons returns every reason code, for pre-registering metric labels.
func Reasons() []string {
	return []string{
		ReasonJWTMalformed, ReasonJWTAlgNotAllowed, ReasonJWTBadSignature, ReasonJWTExpired,
		ReasonJWTNotYetValid, ReasonJWTBadClaims, ReasonJWTWrongTokenType, ReasonJWTNoUser,
		ReasonJWTBadAuthorizationHeader, ReasonJWTRepeatedQueryParam,
		ReasonSessionMalformed, ReasonSessionBadSignature, ReasonSessionExpired,
		ReasonSessionNoUser, ReasonSessionUnknownBackend,
		ReasonSessionNotFound, ReasonSessionChanged, ReasonSessionStoreUnavailable,
		ReasonCallbackUnavailable, ReasonCallbackRefused,
		ReasonSessionHashMismatch, ReasonUserNotFound, ReasonUserInactive, ReasonJWTPasswordChanged,
		ReasonUserStoreUnavailable,
	}
}

// Where a credential came from.
const (
	SourceQuery       = "query"       // the token query parameter
	SourceHeader      = "header"      // Authorization: <type> <token>
	SourceSubprotocol = "subprotocol" // Sec-WebSocket-Protocol: <marker>, <token>
	SourceCookie      = "cookie"      // the session cookie
	SourceRecheck     = "recheck"     // Revalidate, before a critical frame
	SourceFrame       = "frame"       // a token refreshed in a frame
)

// Failure is the error for a credential that was offered and refused. Its
// text never contains the credential.
type Failure struct {
	// Reason is one of the Reason* codes.
	Reason string
	// Source is one of the Source* values.
	Source string
	// Err is a short description for logs; it never holds credential bytes.
	Err error
}

// Error describes the refusal.
func (f *Failure) Error() string {
	s := "auth: " + f.Source + " credential refused: " + f.Reason
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

// Unwrap returns the detail error.
func (f *Failure) Unwrap() error { return f.Err }

// refuse builds a Failure without a source; the authenticator adds it.
func refuse(reason, detail string) *Failure {
	return &Failure{Reason: reason, Err: errors.New(detail)}
}

// refuseErr is refuse with a wrapped error whose text is known to hold no
// credential bytes.
func refuseErr(reason string, err error) *Failure {
	return &Failure{Reason: reason, Err: err}
}

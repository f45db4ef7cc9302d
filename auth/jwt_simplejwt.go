package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenBytes bounds an access token. simplejwt tokens are a few hundred
// bytes; custom claims rarely pass 2 KB.
const maxTokenBytes = 8 << 10

// accessTokenType is the token_type of rest_framework_simplejwt's
// AccessToken, the only class in the default AUTH_TOKEN_CLASSES.
const accessTokenType = "access"

// simpleJWT validates djangorestframework-simplejwt access tokens as
// AccessToken(token) plus JWTStatelessUserAuthentication would: PyJWT's
// decode with the configured algorithm, key, leeway, audience and issuer,
// then simplejwt's own exp, jti and token_type checks, then the user id
// claim. Where PyJWT 2.6 is laxer than later releases (non-string kid,
// unknown crit, non-alphabet base64), this follows the stricter releases.
type simpleJWT struct {
	alg       string
	key       any // []byte for HS*, *rsa.PublicKey or *ecdsa.PublicKey
	leeway    int64
	userClaim string
	typeClaim string
	jtiClaim  string
	audience  string // "" when not checked
	issuer    string // "" when not checked
	parser    *jwt.Parser
}

func newSimpleJWT(c *SimpleJWTConfig) (*simpleJWT, error) {
	key, err := c.verifyingKey()
	if err != nil {
		return nil, err
	}
	return &simpleJWT{
		alg:       c.Algorithm,
		key:       key,
		leeway:    int64(c.Leeway),
		userClaim: c.UserIDClaim,
		typeClaim: c.TokenTypeClaim,
		jtiClaim:  c.JTIClaim,
		audience:  c.Audience,
		issuer:    c.Issuer,
		parser: jwt.NewParser(
			// Exactly one algorithm: "none", another HS* and an HS* token
			// keyed with the public key of an RS* setup are all refused.
			jwt.WithValidMethods([]string{c.Algorithm}),
			jwt.WithoutClaimsValidation(), // claims are checked below, with simplejwt's rules
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// identify validates token at now and returns its identity. A refusal is a
// *Failure.
func (v *simpleJWT) identify(token string, now time.Time) (*Identity, error) {
	if err := checkCompactForm(token); err != nil {
		return nil, refuseErr(ReasonJWTMalformed, err)
	}
	claims := &claimSet{}
	parsed, err := v.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return nil, v.classify(parsed, err)
	}
	if err := checkHeader(parsed.Header); err != nil {
		return nil, refuseErr(ReasonJWTMalformed, err)
	}
	if !claims.ok {
		return nil, refuse(ReasonJWTMalformed, "payload is not a JSON object")
	}
	return v.checkClaims(claims.m, now)
}

// checkCompactForm accepts exactly three dot-separated segments of the
// unpadded base64url alphabet. Go's base64 decoder skips CR and LF, and
// PyJWT (before 2.13) skipped any foreign byte; both would let a changed
// token through.
func checkCompactForm(token string) error {
	if token == "" {
		return errors.New("empty token")
	}
	if len(token) > maxTokenBytes {
		return errors.New("token too long")
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			dots++
			continue
		}
		if !isB64URLChar(c) {
			return errors.New("character outside the base64url alphabet")
		}
	}
	if dots != 2 {
		return errors.New("not three segments")
	}
	return nil
}

// classify maps a parser error to a reason without repeating the library's
// text, which may quote decoded token bytes.
func (v *simpleJWT) classify(parsed *jwt.Token, err error) *Failure {
	if parsed != nil && parsed.Header != nil {
		if alg, _ := parsed.Header["alg"].(string); alg != v.alg {
			return refuse(ReasonJWTAlgNotAllowed, "alg is not "+v.alg)
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(ReasonJWTMalformed, "header or payload does not decode")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(ReasonJWTBadSignature, "signature does not verify")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return refuse(ReasonJWTAlgNotAllowed, "alg missing or unknown")
	}
	return refuse(ReasonJWTMalformed, "token does not parse")
}

// checkHeader applies the header rules of PyJWT >= 2.12: a kid must be a
// string and no crit extension is understood.
func checkHeader(h map[string]any) error {
	if kid, ok := h["kid"]; ok {
		if _, isString := kid.(string); !isString {
			return errors.New("kid is not a string")
		}
	}
	if _, ok := h["crit"]; ok {
		return errors.New("crit header extensions are not supported")
	}
	return nil
}

func (v *simpleJWT) checkClaims(c map[string]json.RawMessage, now time.Time) (*Identity, error) {
	unix := now.Unix()
	// PyJWT: iat, then nbf, then exp, each only if present.
	for _, name := range [...]string{"iat", "nbf"} {
		raw, ok := c[name]
		if !ok {
			continue
		}
		t, err := numericDate(raw)
		if err != nil {
			return nil, refuse(ReasonJWTBadClaims, name+": "+err.Error())
		}
		if t > unix+v.leeway {
			return nil, refuse(ReasonJWTNotYetValid, name+" is in the future")
		}
	}
	// simplejwt requires exp; PyJWT and simplejwt both call exp == now
	// expired.
	raw, ok := c["exp"]
	if !ok {
		return nil, refuse(ReasonJWTBadClaims, "no exp claim")
	}
	exp, err := numericDate(raw)
	if err != nil {
		return nil, refuse(ReasonJWTBadClaims, "exp: "+err.Error())
	}
	if exp <= unix-v.leeway {
		return nil, refuse(ReasonJWTExpired, "exp has passed")
	}
	// PyJWT checks iss, then aud, only when ISSUER and AUDIENCE are set.
	if v.issuer != "" {
		if iss, ok := jsonString(c["iss"]); !ok || iss != v.issuer {
			return nil, refuse(ReasonJWTBadClaims, "iss is not the configured issuer")
		}
	}
	if v.audience != "" {
		if err := checkAudience(c["aud"], v.audience); err != nil {
			return nil, refuseErr(ReasonJWTBadClaims, err)
		}
	}
	// PyJWT >= 2.10: sub and jti, when present, are strings.
	if raw, ok := c["sub"]; ok {
		if _, isString := jsonString(raw); !isString {
			return nil, refuse(ReasonJWTBadClaims, "sub is not a string")
		}
	}
	jti, ok := jsonString(c[v.jtiClaim])
	if !ok {
		return nil, refuse(ReasonJWTBadClaims, "no string "+v.jtiClaim+" claim")
	}
	if tt, _ := jsonString(c[v.typeClaim]); tt != accessTokenType {
		return nil, refuse(ReasonJWTWrongTokenType, v.typeClaim+" is not "+accessTokenType)
	}
	rawUser, ok := c[v.userClaim]
	if !ok {
		return nil, refuse(ReasonJWTNoUser, "no "+v.userClaim+" claim")
	}
	userID, err := userIDFromJSON(rawUser)
	if err != nil {
		return nil, refuse(ReasonJWTNoUser, v.userClaim+": "+err.Error())
	}
	return &Identity{
		UserID:  userID,
		Method:  MethodJWT,
		Expires: time.Unix(exp, 0),
		TokenID: jti,
	}, nil
}

// checkAudience applies PyJWT's audience rule: aud must be present and
// not empty (Python truthiness), a string or a list of strings, and name
// the configured audience.
func checkAudience(raw json.RawMessage, want string) error {
	missing := errors.New("no aud claim")
	badType := errors.New("aud is neither a string nor a list of strings")
	var aud any
	if len(raw) == 0 || json.Unmarshal(raw, &aud) != nil {
		return missing
	}
	var names []any
	switch a := aud.(type) {
	case string:
		if a == "" {
			return missing
		}
		names = []any{a}
	case []any:
		if len(a) == 0 {
			return missing
		}
		names = a
	case bool:
		if !a {
			return missing
		}
		return badType
	case float64:
		if a == 0 {
			return missing
		}
		return badType
	case map[string]any:
		if len(a) == 0 {
			return missing
		}
		return badType
	default: // null
		return missing
	}
	found := false
	for _, n := range names {
		s, ok := n.(string)
		if !ok {
			return badType
		}
		found = found || s == want
	}
	if !found {
		return errors.New("aud does not name the configured audience")
	}
	return nil
}

// claimSet receives the payload from the parser. Decoding through
// json.Unmarshal (rather than the parser's streaming decoder) refuses
// trailing bytes after the object, as Python's json.loads does.
type claimSet struct {
	m  map[string]json.RawMessage
	ok bool
}

// UnmarshalJSON keeps every claim as raw JSON so types can be checked.
func (c *claimSet) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return errors.New("payload is not a JSON object")
	}
	if err := json.Unmarshal(b, &c.m); err != nil {
		return err
	}
	c.ok = true
	return nil
}

// The jwt.Claims methods are unused: claims validation is off in the parser.

// GetExpirationTime is required by jwt.Claims; validation happens elsewhere.
func (c *claimSet) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuedAt is required by jwt.Claims; validation happens elsewhere.
func (c *claimSet) GetIssuedAt() (*jwt.NumericDate, error) { return nil, nil }

// GetNotBefore is required by jwt.Claims; validation happens elsewhere.
func (c *claimSet) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer is required by jwt.Claims; validation happens elsewhere.
func (c *claimSet) GetIssuer() (string, error) { return "", nil }

// GetSubject is required by jwt.Claims; validation happens elsewhere.
func (c *claimSet) GetSubject() (string, error) { return "", nil }

// GetAudience is required by jwt.Claims; validation happens elsewhere.
func (c *claimSet) GetAudience() (jwt.ClaimStrings, error) { return nil, nil }

// splitAuthorization splits a header value on runs of ASCII whitespace, as
// Python's bytes.split() does.
func splitAuthorization(h string) []string {
	return strings.FieldsFunc(h, func(r rune) bool {
		switch r {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			return true
		}
		return false
	})
}

package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Reasons of a handshake refused for its Origin header. They label
// sidecar_handshakes_rejected_total and the handshake log, like the
// credential reasons in failure.go.
const (
	// ReasonOriginMissing: no Origin header, and the policy needs one.
	ReasonOriginMissing = "origin_missing"
	// ReasonOriginMultiple: more than one Origin header. Channels keeps the
	// last one; no browser sends two, so the sidecar refuses the request.
	ReasonOriginMultiple = "origin_multiple"
	// ReasonOriginMalformed: an Origin with bytes outside printable ASCII,
	// or one that Python's urlparse cannot parse (Channels would fail the
	// connection with an exception).
	ReasonOriginMalformed = "origin_malformed"
	// ReasonOriginNotAllowed: an Origin that the policy does not accept.
	ReasonOriginNotAllowed = "origin_not_allowed"
)

// OriginReasons returns every Origin reason code.
func OriginReasons() []string {
	return []string{ReasonOriginMissing, ReasonOriginMultiple, ReasonOriginMalformed, ReasonOriginNotAllowed}
}

// Modes of an OriginPolicy, in order of precedence.
const (
	// OriginModeAllowedOrigins accepts exactly the listed serialized
	// origins (scheme://host[:port]); a missing Origin is refused.
	OriginModeAllowedOrigins = "allowed_origins"
	// OriginModeAllowedHosts applies Channels' AllowedHostsOriginValidator
	// to Django's ALLOWED_HOSTS.
	OriginModeAllowedHosts = "allowed_hosts"
	// OriginModeSameHost accepts an Origin whose host and port are the
	// request's Host, and a request without Origin (a non-browser client,
	// which cannot carry a victim's cookie).
	OriginModeSameHost = "same_host"
)

// DebugAllowedHosts returns the hosts that Channels'
// AllowedHostsOriginValidator uses when DEBUG is true and ALLOWED_HOSTS is
// empty.
func DebugAllowedHosts() []string { return []string{"localhost", "127.0.0.1", "[::1]"} }

// OriginPolicy decides whether a WebSocket handshake's Origin is acceptable,
// the sidecar's defence against cross-site WebSocket hijacking. It is
// immutable and safe for concurrent use.
type OriginPolicy struct {
	mode     string
	exact    map[string]bool // serialized origins, OriginModeAllowedOrigins
	patterns []hostPattern   // ALLOWED_HOSTS in order, OriginModeAllowedHosts
	anyHost  bool            // "*" is among the patterns
	warnings []string
}

// NewOriginPolicy builds the policy. Precedence: a non-empty
// allowedOrigins list (exact scheme://host[:port] matches) wins; otherwise
// a non-empty allowedHosts list (Django's ALLOWED_HOSTS, already completed
// with DebugAllowedHosts where DEBUG asks for it) is applied with Channels'
// OriginValidator rules; otherwise the Origin must name the request's own
// host. An entry that can never be checked is an error that names it.
func NewOriginPolicy(allowedOrigins, allowedHosts []string) (*OriginPolicy, error) {
	if len(allowedOrigins) > 0 {
		p := &OriginPolicy{mode: OriginModeAllowedOrigins, exact: make(map[string]bool, len(allowedOrigins))}
		var errs []error
		for i, o := range allowedOrigins {
			norm, err := parseAllowedOrigin(o)
			if err != nil {
				errs = append(errs, fmt.Errorf("allowed_origins[%d] %q: %w", i, o, err))
				continue
			}
			p.exact[norm] = true
		}
		if len(allowedHosts) > 0 {
			p.warnings = append(p.warnings, "allowed_hosts is not used for Origin checks because allowed_origins is set")
		}
		return p, errors.Join(errs...)
	}
	if len(allowedHosts) > 0 {
		patterns, err := compileAllowedHosts(allowedHosts)
		if err != nil {
			return nil, err
		}
		p := &OriginPolicy{mode: OriginModeAllowedHosts, patterns: patterns}
		for _, pt := range patterns {
			p.anyHost = p.anyHost || pt.any
		}
		p.warnings = hostWarnings(patterns)
		return p, nil
	}
	return &OriginPolicy{mode: OriginModeSameHost}, nil
}

// Mode returns which rule the policy applies: one of the OriginMode*
// constants.
func (p *OriginPolicy) Mode() string { return p.mode }

// Warnings describes settings that admit more than their author may
// expect, or entries that never match, for logging at startup.
func (p *OriginPolicy) Warnings() []string { return append([]string(nil), p.warnings...) }

// Allow checks the values of every Origin header of a handshake (in the
// order received) against the policy; host is the request's Host header.
// It returns true, or false with one of the ReasonOrigin* codes.
func (p *OriginPolicy) Allow(originHeaderValues []string, host string) (bool, string) {
	switch len(originHeaderValues) {
	case 0:
		switch {
		case p.mode == OriginModeSameHost, p.mode == OriginModeAllowedHosts && p.anyHost:
			return true, ""
		}
		return false, ReasonOriginMissing
	case 1:
	default:
		return false, ReasonOriginMultiple
	}
	v := originHeaderValues[0]
	// Browsers send ASCII serializations. Python would strip tabs and
	// decode other bytes as Latin-1; refusing them is simpler and stricter.
	if !printableASCII(v) {
		return false, ReasonOriginMalformed
	}
	switch p.mode {
	case OriginModeAllowedOrigins:
		if o, ok := parseOrigin(v); ok && p.exact[o.String()] {
			return true, ""
		}
		return false, ReasonOriginNotAllowed
	case OriginModeAllowedHosts:
		return p.matchHosts(v)
	}
	o, ok := parseOrigin(v)
	if !ok {
		return false, ReasonOriginNotAllowed
	}
	h, ok := parseHostHeader(host, o.scheme)
	if !ok || h != o.hostPort() {
		return false, ReasonOriginNotAllowed
	}
	return true, ""
}

// printableASCII reports whether s holds only bytes 0x21 to 0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// parseAllowedOrigin checks one allowed_origins entry and returns its
// serialized form.
func parseAllowedOrigin(s string) (string, error) {
	switch s {
	case "*":
		return "", errors.New(`"*" is not an origin; to accept any Origin leave allowed_origins empty and set auth.allowed_hosts: ["*"] (not recommended)`)
	case "null":
		return "", errors.New(`"null" is the origin of sandboxed frames and local files, any site can produce it`)
	}
	if !printableASCII(s) {
		return "", errors.New("must be printable ASCII without spaces (write internationalized hosts in punycode)")
	}
	o, ok := parseOrigin(strings.TrimSuffix(s, "/"))
	if !ok {
		return "", errors.New("want scheme://host[:port], for example https://app.example.com (no path, no wildcard; Django-style host patterns go in auth.allowed_hosts)")
	}
	return o.String(), nil
}

// OriginHosts returns the ALLOWED_HOSTS list that Origin checks use:
// allowed_hosts, or DebugAllowedHosts when it is empty and debug is true,
// as Channels' AllowedHostsOriginValidator decides. It is nil when neither
// applies.
func (c *Config) OriginHosts() []string {
	if len(c.AllowedHosts) > 0 {
		return append([]string(nil), c.AllowedHosts...)
	}
	if c.Debug {
		return DebugAllowedHosts()
	}
	return nil
}

// validateAllowedHosts reports allowed_hosts entries on which Channels
// would fail every handshake.
func (c *Config) validateAllowedHosts() error {
	_, err := compileAllowedHosts(c.AllowedHosts)
	return err
}

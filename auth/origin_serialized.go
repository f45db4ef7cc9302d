package auth

import (
	"net/netip"
	"strconv"
	"strings"
)

// This file reads origins in the form browsers send them (RFC 6454
// serialization: scheme://host[:port], lowercase, nothing else), for the
// exact allowed_origins list and the same-host default.

// origin is a serialized origin taken apart. Its port is empty when absent
// or the scheme's default, so equal origins have equal fields.
type origin struct {
	scheme, host, port string
}

// String returns the canonical serialization.
func (o origin) String() string { return o.scheme + "://" + o.hostPort() }

func (o origin) hostPort() string {
	if o.port == "" {
		return o.host
	}
	return o.host + ":" + o.port
}

// parseOrigin reads a serialized origin, case-insensitively. Anything
// else (a path, user info, "null", an empty host) is refused.
func parseOrigin(s string) (origin, bool) {
	s = strings.ToLower(s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !validScheme(scheme) {
		return origin{}, false
	}
	host, port, ok := splitHostPort(rest, scheme)
	if !ok {
		return origin{}, false
	}
	return origin{scheme: scheme, host: host, port: port}, true
}

// parseHostHeader returns the host[:port] of a Host header in the form of
// origin.hostPort, the default port of scheme dropped.
func parseHostHeader(h, scheme string) (string, bool) {
	host, port, ok := splitHostPort(strings.ToLower(h), scheme)
	if !ok {
		return "", false
	}
	return origin{host: host, port: port}.hostPort(), true
}

// validScheme is RFC 3986's ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
// lowercase.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isLowerAlnum(s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// splitHostPort reads host[:port] (lowercase), where host is a name, an
// IPv4 address or a bracketed IPv6 address without zone. A port equal to
// the scheme's default is dropped, and leading zeros are removed.
func splitHostPort(s, scheme string) (host, port string, ok bool) {
	var hasPort bool
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", "", false
		}
		host = "[" + a.String() + "]"
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' {
				return "", "", false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(s, ":")
		if !validHostName(host) {
			return "", "", false
		}
	}
	if !hasPort {
		return host, "", true
	}
	n, ok := parsePort(port)
	if !ok {
		return "", "", false
	}
	if n == defaultPort(scheme) {
		return host, "", true
	}
	return host, strconv.Itoa(n), true
}

// validHostName accepts the characters of an ASCII (punycode) host name
// or IPv4 address.
func validHostName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !isLowerAlnum(c) && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

// parsePort reads 1 to 5 decimal digits up to 65535.
func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= 65535
}

// defaultPort is the port a scheme implies, as Channels assumes it: 80
// for http and ws, 443 for https and wss, -1 (none) otherwise.
func defaultPort(scheme string) int {
	switch scheme {
	case "http", "ws":
		return 80
	case "https", "wss":
		return 443
	}
	return -1
}

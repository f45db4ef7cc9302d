package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file reproduces channels.security.websocket.OriginValidator, which
// AllowedHostsOriginValidator applies to ALLOWED_HOSTS, including the
// parts of Python's urllib.parse (3.11) that decide its verdicts. Inputs
// are printable ASCII: the policy refuses anything else before.

// hostPattern is one compiled ALLOWED_HOSTS entry.
type hostPattern struct {
	raw        string
	any        bool   // "*": every Origin, even none
	schemeless bool   // compare host names only, ignoring scheme and port
	host       string // lowercase host (or ".suffix"); "" never matches
	scheme     string // with a scheme: it must be equal
	port       int    // with a scheme: the port, defaulted; -1 for none
}

func compileAllowedHosts(hosts []string) ([]hostPattern, error) {
	var errs []error
	out := make([]hostPattern, 0, len(hosts))
	for i, h := range hosts {
		p, err := compileHostPattern(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed_hosts[%d] %q: %w", i, h, err))
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// compileHostPattern does ahead of time what match_allowed_origin does per
// handshake. Entries on which Channels would raise for every Origin are
// errors here.
func compileHostPattern(raw string) (hostPattern, error) {
	if raw == "*" {
		return hostPattern{raw: raw, any: true}, nil
	}
	if raw == "" || !printableASCII(raw) {
		return hostPattern{}, errors.New("must be non-empty printable ASCII without spaces (write internationalized hosts in punycode)")
	}
	u, err := pySplit(strings.ToLower(raw))
	if err != nil {
		return hostPattern{}, err
	}
	if u.scheme == "" {
		// urlparse("//" + pattern).hostname or pattern
		v, err := pySplit("//" + raw)
		if err != nil {
			return hostPattern{}, err
		}
		host, ok := v.hostname()
		if !ok {
			host = raw
		}
		return hostPattern{raw: raw, schemeless: true, host: strings.ToLower(host)}, nil
	}
	port, err := u.defaultedPort()
	if err != nil {
		return hostPattern{}, err
	}
	host, _ := u.hostname()
	return hostPattern{raw: raw, scheme: u.scheme, host: strings.ToLower(host), port: port}, nil
}

// neverMatches reports entries that Channels accepts but that no Origin
// can satisfy, such as "*.example.com" or "example.com:8443" (which
// urlparse reads as the scheme "example.com").
func (p hostPattern) neverMatches() bool {
	if p.any {
		return false
	}
	return p.host == "" || strings.Contains(p.host, "*")
}

func hostWarnings(patterns []hostPattern) []string {
	var w []string
	schemeless := false
	for _, p := range patterns {
		switch {
		case p.any:
			w = append(w, `allowed_hosts contains "*": every Origin is accepted, and so is a handshake without one (Channels' behaviour); set websocket.allowed_origins to protect cookie-authenticated sockets from cross-site WebSocket hijacking`)
		case p.neverMatches():
			w = append(w, fmt.Sprintf("allowed_hosts entry %q never matches an Origin in Channels (wildcards are written .example.com; ports only with a scheme, as in https://example.com:8443)", p.raw))
		case strings.HasPrefix(p.host, "."):
			w = append(w, fmt.Sprintf("allowed_hosts entry %q accepts every subdomain of %s as an Origin", p.raw, p.host[1:]))
		}
		schemeless = schemeless || p.schemeless && !p.neverMatches()
	}
	if schemeless {
		w = append(w, "allowed_hosts entries without a scheme accept an Origin on any scheme and port (http, https, browser extensions); websocket.allowed_origins lists exact origins")
	}
	return w
}

// matchHosts is OriginValidator.validate_origin for one Origin value. A
// value on which Channels raises (the connection fails) is refused as
// malformed.
func (p *OriginPolicy) matchHosts(v string) (bool, string) {
	u, err := pySplit(v)
	if err != nil {
		return false, ReasonOriginMalformed
	}
	host, hasHost := u.hostname()
	port, portErr, portDone := 0, error(nil), false
	for _, pt := range p.patterns {
		switch {
		case pt.any:
			return true, ""
		case !hasHost:
			continue
		case pt.schemeless:
			if isSameDomain(host, pt.host) {
				return true, ""
			}
			continue
		}
		// Python computes the Origin's port (and may raise) before comparing.
		if !portDone {
			port, portErr = u.defaultedPort()
			portDone = true
		}
		if portErr != nil {
			return false, ReasonOriginMalformed
		}
		if pt.scheme == u.scheme && pt.port == port && isSameDomain(host, pt.host) {
			return true, ""
		}
	}
	return false, ReasonOriginNotAllowed
}

// isSameDomain is django.utils.http.is_same_domain with a lowercase
// pattern: ".example.com" matches example.com and its subdomains,
// anything else matches exactly.
func isSameDomain(host, pattern string) bool {
	if pattern == "" {
		return false
	}
	if pattern[0] == '.' && (strings.HasSuffix(host, pattern) || host == pattern[1:]) {
		return true
	}
	return host == pattern
}

// pyURL holds the parts of urllib.parse.urlsplit's result that Channels
// reads.
type pyURL struct {
	scheme, netloc string
}

// pySplit is urlsplit for printable ASCII: the scheme (lowercased) when
// the text before the first ':' is one, and the netloc after "//" up to
// '/', '?' or '#'. It fails where Python raises ValueError: unbalanced or
// misplaced brackets, or a bracketed host that is not an IPv6 address.
func pySplit(s string) (pyURL, error) {
	var u pyURL
	if i := strings.IndexByte(s, ':'); i > 0 && isASCIILetter(s[0]) {
		ok := true
		for j := 0; j < i && ok; j++ {
			c := s[j]
			ok = isASCIILetter(c) || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
		}
		if ok {
			u.scheme, s = strings.ToLower(s[:i]), s[i+1:]
		}
	}
	if !strings.HasPrefix(s, "//") {
		return u, nil
	}
	s = s[2:]
	if end := strings.IndexAny(s, "/?#"); end >= 0 {
		s = s[:end]
	}
	u.netloc = s
	open, closed := strings.Contains(s, "["), strings.Contains(s, "]")
	if open != closed {
		return u, errors.New("invalid IPv6 URL")
	}
	if open {
		if err := checkBracketedNetloc(s); err != nil {
			return u, err
		}
	}
	return u, nil
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// checkBracketedNetloc is urllib.parse._check_bracketed_netloc.
func checkBracketedNetloc(netloc string) error {
	hostPort := netloc[strings.LastIndexByte(netloc, '@')+1:]
	before, bracketed, found := strings.Cut(hostPort, "[")
	var host string
	if found {
		if before != "" {
			return errors.New("invalid IPv6 URL: data before '['")
		}
		var rest string
		host, rest, _ = strings.Cut(bracketed, "]")
		if rest != "" && rest[0] != ':' {
			return errors.New("invalid IPv6 URL: data after ']'")
		}
	} else {
		host, _, _ = strings.Cut(hostPort, ":")
	}
	return checkBracketedHost(host)
}

// checkBracketedHost is urllib.parse._check_bracketed_host: an IPvFuture
// literal (v<hex>.<anything>) or an IPv6 address, optionally with a zone.
func checkBracketedHost(h string) error {
	if strings.HasPrefix(h, "v") {
		hex, rest, ok := strings.Cut(h[1:], ".")
		if !ok || hex == "" || rest == "" || strings.Trim(hex, "0123456789abcdefABCDEF") != "" {
			return errors.New("invalid IPvFuture address")
		}
		return nil
	}
	a, err := netip.ParseAddr(h)
	if err != nil || !a.Is6() || strings.Contains(a.Zone(), "%") {
		return errors.New("invalid IPv6 address in brackets")
	}
	return nil
}

// hostinfo is the _hostinfo property: host and port text after the last
// '@', inside brackets when there are some.
func (u pyURL) hostinfo() (host, port string) {
	hostPort := u.netloc[strings.LastIndexByte(u.netloc, '@')+1:]
	if _, bracketed, found := strings.Cut(hostPort, "["); found {
		var rest string
		host, rest, _ = strings.Cut(bracketed, "]")
		_, port, _ = strings.Cut(rest, ":")
		return host, port
	}
	host, port, _ = strings.Cut(hostPort, ":")
	return host, port
}

// hostname is the hostname property: lowercased up to a '%' zone, absent
// when empty.
func (u pyURL) hostname() (string, bool) {
	h, _ := u.hostinfo()
	if h == "" {
		return "", false
	}
	if i := strings.IndexByte(h, '%'); i >= 0 {
		return strings.ToLower(h[:i]) + h[i:], true
	}
	return strings.ToLower(h), true
}

// defaultedPort is OriginValidator.get_origin_port: the port property
// (digits only, 0 to 65535, else Python raises), or the scheme's default,
// or -1 for None.
func (u pyURL) defaultedPort() (int, error) {
	_, p := u.hostinfo()
	if p == "" {
		return defaultPort(u.scheme), nil
	}
	if strings.Trim(p, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not an integer", p)
	}
	p = strings.TrimLeft(p, "0")
	if p == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || len(p) > 5 || n > 65535 {
		return 0, errors.New("port out of range 0-65535")
	}
	return n, nil
}

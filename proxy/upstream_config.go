package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// UpstreamConfig says where and how plain HTTP requests (everything that is
// not a WebSocket route) are forwarded to the Django application.
type UpstreamConfig struct {
	// URL is the upstream's base URL, scheme://host[:port], for example
	// "http://127.0.0.1:8000". Only http and https are accepted, without a
	// path, query or user info: the client's path is forwarded unchanged.
	// Empty means there is no upstream: every request that reaches the
	// passthrough is answered 502 with the body "no upstream configured".
	URL string `yaml:"url"`
	// Timeout bounds one whole exchange with the upstream: connecting,
	// sending the request body, and receiving the complete response
	// including its body. A response still streaming when it expires is
	// cut off. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConns is the most connections open to the upstream at once.
	// Requests beyond it wait for a free connection until Timeout.
	// Default 512.
	MaxConns int `yaml:"max_conns"`
	// MaxBodySize is the largest request body and the largest response
	// body forwarded, in bytes. A larger request is answered 413; a larger
	// response is answered 502 when its length is announced and is cut off
	// otherwise. Default 64 MiB.
	MaxBodySize int64 `yaml:"max_body_size"`
	// IdleConnTimeout closes pooled upstream connections idle for longer.
	// It must stay below the upstream's own keep-alive timeout (gunicorn
	// closes after 2s, uvicorn after 5s), or a request may be sent on a
	// connection the upstream is closing. Default 1s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// TrustedProxies lists the CIDRs (or single IPs) of load balancers in
	// front of the sidecar. When the peer is one of them, its
	// X-Forwarded-For is kept and the peer address appended, and its
	// X-Forwarded-Proto, X-Forwarded-Host, Forwarded and X-Real-Ip are
	// kept. From any other peer those headers are dropped and rewritten
	// from the connection itself. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// SetDefaults fills the zero fields with their documented defaults.
func (c *UpstreamConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxConns == 0 {
		c.MaxConns = 512
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = 64 << 20
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = time.Second
	}
}

// Validate reports the first invalid field with a message naming it.
func (c *UpstreamConfig) Validate() error {
	if c.URL != "" {
		if _, err := c.ptTarget(); err != nil {
			return fmt.Errorf("upstream.url: %w", err)
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("upstream.timeout: must not be negative, got %s", c.Timeout)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("upstream.max_conns: must not be negative, got %d", c.MaxConns)
	}
	if c.MaxBodySize < 0 {
		return fmt.Errorf("upstream.max_body_size: must not be negative, got %d", c.MaxBodySize)
	}
	if c.IdleConnTimeout < 0 {
		return fmt.Errorf("upstream.idle_conn_timeout: must not be negative, got %s", c.IdleConnTimeout)
	}
	if _, err := c.ptTrusted(); err != nil {
		return fmt.Errorf("upstream.trusted_proxies: %w", err)
	}
	return nil
}

// ptUpstreamTarget is the parsed form of UpstreamConfig.URL.
type ptUpstreamTarget struct {
	addr  string // host:port to dial
	host  string // Host header for requests that arrive without one
	isTLS bool
}

// ptTarget parses URL into the address the client dials.
func (c *UpstreamConfig) ptTarget() (ptUpstreamTarget, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return ptUpstreamTarget{}, fmt.Errorf("%q is not a URL: %w", c.URL, err)
	}
	var t ptUpstreamTarget
	switch strings.ToLower(u.Scheme) {
	case "http":
	case "https":
		t.isTLS = true
	case "":
		return t, fmt.Errorf("%q has no scheme: write it as http://host:port", c.URL)
	default:
		return t, fmt.Errorf("%q: scheme %q is not supported, use http or https", c.URL, u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return t, fmt.Errorf("%q has no host: write it as %s://host:port", c.URL, u.Scheme)
	}
	if u.User != nil {
		return t, fmt.Errorf("%q: user info is not supported", c.URL)
	}
	if u.Path != "" && u.Path != "/" {
		return t, fmt.Errorf("%q: a path prefix is not supported, the client's path is forwarded unchanged", c.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return t, fmt.Errorf("%q: a query or fragment is not supported", c.URL)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return t, fmt.Errorf("%q has no host name", c.URL)
	}
	if port == "" {
		port = "80"
		if t.isTLS {
			port = "443"
		}
	}
	t.addr = net.JoinHostPort(host, port)
	t.host = u.Host
	return t, nil
}

// ptTrusted parses TrustedProxies; a bare IP means that single address.
func (c *UpstreamConfig) ptTrusted() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for i, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("[%d]: empty entry", i)
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %q is not a CIDR: %w", i, s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %q is neither a CIDR nor an IP: %w", i, s, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("[%d]: %q: zoned IPv6 addresses are not supported", i, s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

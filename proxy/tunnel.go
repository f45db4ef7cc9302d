package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// TunnelConfig passes WebSocket paths that no route declares to a Daphne
// (or any ASGI server) upstream, bytes untouched, so a site can move its
// consumers to the sidecar one route at a time.
type TunnelConfig struct {
	// URL of the Daphne server, e.g. http://127.0.0.1:8001. Empty: no
	// tunnel; an undeclared WebSocket path gets 404.
	URL string `yaml:"url"`
	// Prefix limits the tunnel to paths under it. Default /ws/.
	Prefix string `yaml:"prefix"`
	// DialTimeout bounds connecting to the upstream. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// SetDefaults fills unset fields.
func (c *TunnelConfig) SetDefaults() {
	if c.Prefix == "" {
		c.Prefix = "/ws/"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
}

// Validate checks the URL.
func (c *TunnelConfig) Validate() error {
	if c.URL == "" {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "ws") {
		return &FieldError{Field: "url", Err: fmt.Errorf("want http://host:port of the Daphne server, not %q", c.URL)}
	}
	if u.Path != "" && u.Path != "/" {
		return &FieldError{Field: "url", Err: fmt.Errorf("must not have a path: requests keep theirs")}
	}
	return nil
}

// tunnel relays undeclared WebSocket handshakes and their frames.
type tunnel struct {
	cfg  TunnelConfig
	addr string
}

func newTunnel(cfg TunnelConfig) *tunnel {
	if cfg.URL == "" {
		return nil
	}
	u, _ := url.Parse(cfg.URL)
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &tunnel{cfg: cfg, addr: addr}
}

// serveTunnel dials the upstream, replays the handshake request, then copies
// bytes both ways until either side closes. The upstream's own 101 (or
// refusal) reaches the client as it was sent.
func (s *Server) serveTunnel(ctx *fasthttp.RequestCtx) {
	t := s.tunnel
	up, err := net.DialTimeout("tcp", t.addr, t.cfg.DialTimeout)
	if err != nil {
		s.metrics.HandshakesRejected.WithLabelValues("tunnel_unavailable").Inc()
		s.log.Warn("tunnel upstream unreachable", "addr", t.addr, "err", err)
		ctx.Error("bad gateway: the WebSocket upstream is unreachable\n", fasthttp.StatusBadGateway)
		return
	}
	var req bytes.Buffer
	req.Write(ctx.Request.Header.Header())
	req.Write(ctx.Request.Body())
	// X-Forwarded-For for the upstream's logs; the client's own header
	// is not trusted.
	head := req.Bytes()
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		ip := ctx.RemoteIP().String()
		head = append(append(append([]byte{}, head[:i]...), "\r\nX-Forwarded-For: "+ip...), head[i:]...)
	}
	ctx.HijackSetNoResponse(true)
	label := "tunnel"
	s.metrics.ConnectionsOpen.WithLabelValues(label).Inc()
	s.metrics.Connections.WithLabelValues(label).Inc()
	ctx.Hijack(func(client net.Conn) {
		defer s.metrics.ConnectionsOpen.WithLabelValues(label).Dec()
		defer up.Close()
		defer client.Close() // KeepHijackedConns: fasthttp leaves it open
		if _, err := up.Write(head); err != nil {
			return
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(client, up)
			closeWrite(client)
		}()
		_, _ = io.Copy(up, client)
		closeWrite(up)
		wg.Wait()
	})
}

// closeWrite half-closes a connection so the other side sees EOF.
func closeWrite(c net.Conn) {
	type halfCloser interface{ CloseWrite() error }
	if hc, ok := c.(halfCloser); ok {
		_ = hc.CloseWrite()
		return
	}
	_ = c.Close()
}

// takes reports whether a WebSocket path with no route goes to the
// tunnel.
func (t *tunnel) takes(path string) bool { return t != nil && strings.HasPrefix(path, t.cfg.Prefix) }

package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// wsConn is what a connection needs from the WebSocket library, so that
// the library can be swapped.
type wsConn interface {
	NextReader() (messageType int, r io.Reader, err error)
	WriteMessage(messageType int, data []byte) error
	WritePreparedMessage(pm *websocket.PreparedMessage) error
	WriteControl(messageType int, data []byte, deadline time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	SetReadLimit(limit int64)
	SetPongHandler(h func(appData string) error)
	EnableWriteCompression(enable bool)
	SetCompressionLevel(level int) error
	NetConn() net.Conn
	Close() error
}

var _ wsConn = (*websocket.Conn)(nil)

// Close codes the sidecar sends.
const (
	closeNormal    = websocket.CloseNormalClosure
	closeGoingAway = websocket.CloseGoingAway
	closeInternal  = websocket.CloseInternalServerErr
	closeTooBig    = websocket.CloseMessageTooBig
	closeTryAgain  = websocket.CloseTryAgainLater
)

// outFrame is one text frame waiting in a send queue. A frame fanned out
// to many sockets carries a prepared message, framed (and deflated) once
// for all of them.
type outFrame struct {
	data []byte
	pm   *websocket.PreparedMessage
	ping bool // a ping control frame, not data
}

// conn is one accepted WebSocket: its route, identity, layer channel and
// bounded send queue. The handshake goroutine runs the read loop; one more
// goroutine writes.
type conn struct {
	id     uint64
	srv    *Server
	route  *route
	label  string
	ws     wsConn
	params map[string]any
	path   string
	// presenceGroup is the presence group joined, or "".
	presenceGroup string
	identity      atomic.Pointer[auth.Identity] // replaced by an in-band token refresh
	channel       string
	groups        []string   // groups to join
	groupMu       sync.Mutex // guards joined after attach
	joined        []string   // groups joined
	compress      bool
	log           *slog.Logger

	framesOut prometheus.Counter

	sendQueue // see send_queue.go

	done      chan struct{}
	closeOnce sync.Once
	closeCode int
	closeText string
	flush     bool
}

// attach registers the connection and joins its groups before the
// handshake is answered, as a Channels consumer joins in connect() before
// accept(): a client that sees the socket open is already subscribed, and
// events that arrive before the upgrade completes wait in the send queue.
func (c *conn) attach() error {
	c.srv.hub.setTarget(c.channel, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.groupMu.Lock()
	var err error
	for _, g := range c.groups {
		if err = c.srv.hub.join(ctx, c, g); err != nil {
			c.srv.metrics.LayerErrors.WithLabelValues("group_add").Inc()
			break
		}
		c.joined = append(c.joined, g)
	}
	c.groupMu.Unlock()
	if err != nil {
		c.detach()
	}
	return err
}

// detach undoes attach.
func (c *conn) detach() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.groupMu.Lock()
	defer c.groupMu.Unlock()
	for _, g := range c.joined {
		if err := c.srv.hub.leave(ctx, c, g); err != nil {
			c.srv.metrics.LayerErrors.WithLabelValues("group_discard").Inc()
			c.log.Warn("leaving group failed", "group", g, "err", err)
		}
	}
	c.joined = nil
	c.srv.hub.dropTarget(c.channel, c)
}

// deliver is a direct send() to this socket's own channel.
func (c *conn) deliver(msg bridge.Message) { c.deliverEvent(msg, nil) }

// run serves an attached connection until it closes.
func (c *conn) run() {
	s := c.srv
	cfg := &s.cfg.WebSocket
	// The library's limit counts bytes on the wire; readFrame bounds the
	// message after decompression, against inflate bombs.
	c.ws.SetReadLimit(cfg.ReadLimit)
	if c.compress {
		_ = c.ws.SetCompressionLevel(cfg.Compression.Level)
	}
	deadline := cfg.PingInterval + cfg.PongTimeout
	_ = c.ws.SetReadDeadline(time.Now().Add(deadline))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(deadline))
	})

	s.metrics.ConnectionsOpen.WithLabelValues(c.label).Inc()
	s.metrics.Connections.WithLabelValues(c.label).Inc()
	c.startWriting()
	defer func() {
		c.onDisconnect()
		c.leavePresence()
		c.detach()
		c.close(closeNormal, "")
		<-c.finished
		lingerClose(c.ws.NetConn())
		_ = c.ws.Close()
		s.metrics.ConnectionsOpen.WithLabelValues(c.label).Dec()
		c.log.Debug("websocket closed")
	}()

	c.log.Debug("websocket accepted", "groups", c.groups)
	c.joinPresence()
	c.onConnect()

	framesIn := s.metrics.FramesIn.WithLabelValues(c.label)
	var buf bytes.Buffer
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) && !errors.Is(err, websocket.ErrCloseSent) {
				c.log.Debug("websocket read ended", "err", err)
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(deadline))
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage {
			continue
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, cfg.ReadLimit+1))
		if err != nil {
			c.log.Debug("websocket read ended", "err", err)
			return
		}
		if n > cfg.ReadLimit {
			s.metrics.FrameErrors.WithLabelValues("too_big").Inc()
			c.close(closeTooBig, "message too big")
			return
		}
		framesIn.Inc()
		if c.allowFrame(c.route.limit) {
			c.onFrame(buf.Bytes())
		}
		if buf.Cap() > 4*int(minBufferKeep) {
			buf = bytes.Buffer{} // do not keep a large buffer for an idle socket
		}
	}
}

const minBufferKeep = 4 << 10

// lingerClose reads and discards what the client still sends (the rest of
// a refused frame, its close reply) for a moment before the socket is
// closed: closing with unread bytes makes the kernel answer with a reset,
// and the client could lose the close frame with its code and reason.
func lingerClose(nc net.Conn) {
	_ = nc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	_, _ = io.CopyN(io.Discard, nc, 1<<20)
}

// closed reports whether the connection is closing.
func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// sendJSON queues a frame for this socket alone, encoded as JSON.
func (c *conn) sendJSON(v any) {
	b, err := json.Marshal(jsonSafe(v))
	if err != nil {
		c.srv.metrics.EventsDropped.WithLabelValues("unencodable").Inc()
		return
	}
	c.sendBytes(b)
}

// sendBytes queues a frame built for this socket alone.
func (c *conn) sendBytes(b []byte) { c.send(outFrame{data: b}) }

// close starts closing the connection with a close frame. Safe to call from
// any goroutine, more than once.
func (c *conn) close(code int, reason string) { c.closeWith(code, reason, true) }

// closeWith closes, flushing the queued frames first only if flush is set:
// a slow client's backlog is dropped, not waited for.
func (c *conn) closeWith(code int, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText, c.flush = code, reason, flush
		close(c.done)
		c.kick() // someone must write the close frame
	})
}

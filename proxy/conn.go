package proxy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/auth"
)

// wsConn is what a connection needs from the WebSocket library, so that
// the library can be swapped.
type wsConn interface {
	ReadMessage() (messageType int, p []byte, err error)
	WriteMessage(messageType int, data []byte) error
	WriteControl(messageType int, data []byte, deadline time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	SetReadLimit(limit int64)
	SetPongHandler(h func(appData string) error)
	EnableWriteCompression(enable bool)
	Close() error
}

var _ wsConn = (*websocket.Conn)(nil)

// Close codes the sidecar sends.
const (
	closeNormal       = websocket.CloseNormalClosure
	closeGoingAway    = websocket.CloseGoingAway
	closeInternal     = websocket.CloseInternalServerErr
	closeTryAgain     = websocket.CloseTryAgainLater
	closePolicy       = websocket.ClosePolicyViolation
	minCompressedSize = 64 // smaller frames are not worth deflating
)

// conn is one accepted WebSocket: its route, identity, layer channel and
// bounded send queue. The handshake goroutine runs the read loop; one more
// goroutine writes.
type conn struct {
	id       uint64
	srv      *Server
	route    *route
	label    string
	ws       wsConn
	params   map[string]any
	ident    *auth.Identity
	channel  string
	groups   []string
	compress bool
	log      *slog.Logger

	out       chan []byte
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
	c.srv.hub.add(c)
	if err := c.joinGroups(); err != nil {
		c.detach()
		return err
	}
	return nil
}

// detach undoes attach.
func (c *conn) detach() {
	c.srv.hub.remove(c)
	c.leaveGroups()
}

// run serves an attached connection until it closes.
func (c *conn) run() {
	s := c.srv
	cfg := &s.cfg.WebSocket
	c.ws.SetReadLimit(cfg.ReadLimit)
	deadline := cfg.PingInterval + cfg.PongTimeout
	_ = c.ws.SetReadDeadline(time.Now().Add(deadline))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(deadline))
	})

	s.metrics.ConnectionsOpen.WithLabelValues(c.label).Inc()
	s.metrics.Connections.WithLabelValues(c.label).Inc()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	defer func() {
		c.detach()
		c.close(closeNormal, "")
		wg.Wait()
		_ = c.ws.Close()
		s.metrics.ConnectionsOpen.WithLabelValues(c.label).Dec()
		c.log.Debug("websocket closed")
	}()

	c.log.Debug("websocket accepted", "groups", c.groups)
	c.onConnect()

	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) && !isClosedErr(err) {
				c.log.Debug("websocket read ended", "err", err)
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(deadline))
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage {
			continue
		}
		s.metrics.FramesIn.WithLabelValues(c.label).Inc()
		c.onFrame(data)
	}
}

func isClosedErr(err error) bool { return errors.Is(err, websocket.ErrCloseSent) }

func (c *conn) joinGroups() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, g := range c.groups {
		if err := c.srv.layer.GroupAdd(ctx, g, c.channel); err != nil {
			c.srv.metrics.LayerErrors.WithLabelValues("group_add").Inc()
			return err
		}
	}
	return nil
}

func (c *conn) leaveGroups() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, g := range c.groups {
		if err := c.srv.layer.GroupDiscard(ctx, g, c.channel); err != nil {
			c.srv.metrics.LayerErrors.WithLabelValues("group_discard").Inc()
			c.log.Warn("leaving group failed", "group", g, "err", err)
		}
	}
}

// send queues a frame without blocking. A client whose queue is full is
// too slow to keep up and is disconnected, so it cannot grow memory.
func (c *conn) send(frame []byte) {
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case c.out <- frame:
		c.srv.metrics.FramesOut.WithLabelValues(c.label).Inc()
	default:
		c.srv.metrics.SlowClients.Inc()
		c.log.Warn("send queue full, disconnecting slow client")
		c.closeWith(closeTryAgain, "too slow", false)
	}
}

// close starts closing the connection with a close frame. Safe to call from
// any goroutine, more than once.
func (c *conn) close(code int, reason string) { c.closeWith(code, reason, true) }

// closeWith closes, flushing the queued frames first only if flush is set:
// a slow client's backlog is dropped, not waited for.
func (c *conn) closeWith(code int, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText, c.flush = code, reason, flush
		close(c.done)
	})
}

func (c *conn) writeLoop() {
	cfg := &c.srv.cfg.WebSocket
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case frame := <-c.out:
			if c.compress {
				c.ws.EnableWriteCompression(len(frame) >= minCompressedSize)
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				c.close(closeInternal, "")
				_ = c.ws.Close()
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				c.close(closeInternal, "")
				_ = c.ws.Close()
				return
			}
		case <-c.done:
			// Flush what is already queued, then say goodbye.
			for c.flush {
				select {
				case frame := <-c.out:
					_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
					if c.ws.WriteMessage(websocket.TextMessage, frame) != nil {
						_ = c.ws.Close()
						return
					}
					continue
				default:
				}
				break
			}
			msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			// Unblock the read loop if the client does not answer the close.
			_ = c.ws.SetReadDeadline(time.Now().Add(2 * time.Second))
			return
		}
	}
}

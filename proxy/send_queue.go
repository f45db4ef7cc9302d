package proxy

import (
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// sendQueue holds a socket's outgoing frames. An idle socket holds no
// buffer and no goroutine: a writer goroutine is started when frames
// arrive and ends when the queue is empty, which keeps memory per idle
// socket small.
type sendQueue struct {
	qmu      sync.Mutex
	queue    []outFrame
	pending  int  // frames queued or being written; bounded by send_queue
	writing  bool // a drain goroutine owns the socket's writes
	running  bool // the socket is upgraded: drains may start
	finished chan struct{}
}

// send queues a frame without blocking. A client whose queue is full is
// too slow to keep up and is disconnected, so it cannot grow memory.
func (c *conn) send(f outFrame) {
	if c.closed() {
		return
	}
	c.qmu.Lock()
	if c.pending >= c.srv.cfg.WebSocket.SendQueue {
		c.qmu.Unlock()
		c.srv.metrics.SlowClients.Inc()
		c.log.Warn("send queue full, disconnecting slow client")
		c.closeWith(closeTryAgain, "too slow", false)
		return
	}
	c.queue = append(c.queue, f)
	c.pending++
	start := c.running && !c.writing
	if start {
		c.writing = true
	}
	c.qmu.Unlock()
	c.framesOut.Inc()
	if start {
		go c.drain()
	}
}

// sendPing queues a ping. Pings do not count against the queue bound.
func (c *conn) sendPing() {
	if c.closed() {
		return
	}
	c.qmu.Lock()
	c.queue = append(c.queue, outFrame{ping: true})
	start := c.running && !c.writing
	if start {
		c.writing = true
	}
	c.qmu.Unlock()
	if start {
		go c.drain()
	}
}

// startWriting marks the socket upgraded and writes what arrived before.
func (c *conn) startWriting() {
	c.qmu.Lock()
	c.running = true
	c.qmu.Unlock()
	c.kick()
}

// kick starts a drain if there is work and none runs.
func (c *conn) kick() {
	c.qmu.Lock()
	start := c.running && !c.writing && (len(c.queue) > 0 || c.closed())
	if start {
		c.writing = true
	}
	c.qmu.Unlock()
	if start {
		go c.drain()
	}
}

// drain writes queued frames until the queue is empty. Once the socket is
// closing it writes the close frame (after the backlog, unless the client
// was too slow to deserve it) and signals finished.
func (c *conn) drain() {
	timeout := c.srv.cfg.WebSocket.WriteTimeout
	for {
		c.qmu.Lock()
		batch := c.queue
		c.queue = nil
		closing := c.closed()
		if closing && !c.flush {
			c.pending = 0
			batch = nil
		}
		if len(batch) == 0 {
			if !closing {
				c.writing = false
			}
			c.qmu.Unlock()
			if closing {
				c.finish()
			}
			return
		}
		c.qmu.Unlock()
		for i, f := range batch {
			if err := c.write(f, timeout); err != nil {
				c.qmu.Lock()
				c.pending, c.queue = 0, nil
				c.qmu.Unlock()
				c.closeWith(closeInternal, "", false)
				_ = c.ws.Close()
				c.finish()
				return
			}
			if !f.ping {
				c.qmu.Lock()
				c.pending--
				c.qmu.Unlock()
			}
			batch[i] = outFrame{} // let the frame go
		}
	}
}

// finish says goodbye with a close frame; it runs once, from the last
// drain.
func (c *conn) finish() {
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	// Unblock the read loop if the client does not answer the close.
	_ = c.ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	close(c.finished)
}

func (c *conn) write(f outFrame, timeout time.Duration) error {
	if f.ping {
		return c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(timeout))
	}
	if c.compress {
		c.ws.EnableWriteCompression(len(f.data) >= c.srv.cfg.WebSocket.Compression.MinSize)
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(timeout))
	if f.pm != nil {
		return c.ws.WritePreparedMessage(f.pm)
	}
	return c.ws.WriteMessage(websocket.TextMessage, f.data)
}

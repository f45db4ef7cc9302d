package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/metrics"
)

// benchSidecar is a server with the in-memory layer on an in-memory
// listener, so that thousands of sockets need no file descriptors.
type benchSidecar struct {
	srv   *Server
	layer bridge.Layer
	ln    *fasthttputil.InmemoryListener
	stop  context.CancelFunc
}

func startBenchSidecar(tb testing.TB, compress bool) *benchSidecar {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := NewHub(nil)
	layer, err := bridge.New(bridge.Config{Backend: "memory"}, hub.Deliver, log)
	if err != nil {
		tb.Fatal(err)
	}
	on := compress
	cfg := Config{
		WebSocket: WebSocketConfig{Compression: CompressionConfig{Enabled: &on}, SendQueue: 64},
		Routes:    []RouteConfig{{Path: "/ws/bench/", Auth: AuthNone, Groups: []string{"bench"}}},
	}
	srv, err := NewServer(cfg, Deps{Layer: layer, Hub: hub, Metrics: metrics.New(), Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln := fasthttputil.NewInmemoryListener()
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = layer.Run(ctx) }()
	bs := &benchSidecar{srv: srv, layer: layer, ln: ln, stop: cancel}
	tb.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
		cancel()
		_ = ln.Close()
	})
	return bs
}

// connectClients opens n sockets; each calls got once per frame received.
func (bs *benchSidecar) connectClients(tb testing.TB, n int, compress bool, got func()) {
	tb.Helper()
	d := websocket.Dialer{
		NetDial:           func(string, string) (net.Conn, error) { return bs.ln.Dial() },
		EnableCompression: compress,
		HandshakeTimeout:  30 * time.Second,
	}
	for i := 0; i < n; i++ {
		c, _, err := d.Dial("ws://bench/ws/bench/", nil)
		if err != nil {
			tb.Fatalf("client %d: %v", i, err)
		}
		go func() {
			defer c.Close()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				got()
			}
		}()
	}
}

// BenchmarkFanout publishes one 200-byte event to a group of n local
// sockets per iteration and waits until every socket has read it: the time
// per op is publish-to-last-receive for the whole group, and ns/frame is
// that divided by n.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, compress := range []bool{false, true} {
			b.Run(fmt.Sprintf("sockets=%d/compress=%v", n, compress), func(b *testing.B) {
				bs := startBenchSidecar(b, compress)
				var wg sync.WaitGroup
				bs.connectClients(b, n, compress, wg.Done)
				msg := bridge.Message{"type": "chat.message", "text": strings.Repeat("lorem ipsum ", 16), "user_id": int64(42)}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					wg.Add(n)
					if err := bs.layer.GroupSend(ctx, "bench", msg); err != nil {
						b.Fatal(err)
					}
					wg.Wait()
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/frame")
			})
		}
	}
}

// BenchmarkHubDeliver measures the server side of a fan-out alone: one
// event through the hub into n send queues, without sockets.
func BenchmarkHubDeliver(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			layer := newCountingLayer()
			s := testServer(b, layer, RouteConfig{Path: "/ws/r/", Auth: AuthNone})
			conns := make([]*conn, n)
			for i := range conns {
				c := testConn(s, s.routes[0])
				c.groups = []string{"g"}
				if err := c.attach(); err != nil {
					b.Fatal(err)
				}
				conns[i] = c
			}
			var ch string
			for k := range layer.members["g"] {
				ch = k
			}
			msg := bridge.Message{"type": "chat.message", "text": strings.Repeat("lorem ipsum ", 16), "user_id": int64(42)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.hub.Deliver(ch, msg)
				for _, c := range conns {
					takeQueued(c)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/frame")
		})
	}
}

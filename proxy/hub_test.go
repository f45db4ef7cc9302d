package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/metrics"
)

// countingLayer records group membership calls; a unit-test stand-in.
type countingLayer struct {
	mu       sync.Mutex
	n        int
	adds     int
	discards int
	members  map[string]map[string]bool
	closed   []string
}

func newCountingLayer() *countingLayer {
	return &countingLayer{members: map[string]map[string]bool{}}
}

func (l *countingLayer) NewChannel() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return fmt.Sprintf("specific.test!%d", l.n)
}
func (l *countingLayer) Send(context.Context, string, bridge.Message) error { return nil }
func (l *countingLayer) GroupAdd(_ context.Context, g, ch string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.adds++
	if l.members[g] == nil {
		l.members[g] = map[string]bool{}
	}
	l.members[g][ch] = true
	return nil
}
func (l *countingLayer) GroupDiscard(_ context.Context, g, ch string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.discards++
	delete(l.members[g], ch)
	if len(l.members[g]) == 0 {
		delete(l.members, g)
	}
	return nil
}
func (l *countingLayer) GroupSend(context.Context, string, bridge.Message) error { return nil }
func (l *countingLayer) Run(context.Context) error                               { return nil }
func (l *countingLayer) Ready(context.Context) error                             { return nil }
func (l *countingLayer) Close() error                                            { return nil }
func (l *countingLayer) CloseChannel(ch string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = append(l.closed, ch)
}

func testServer(t testing.TB, layer bridge.Layer, routes ...RouteConfig) *Server {
	t.Helper()
	hub := NewHub(nil)
	hub.SetLayer(layer)
	s, err := NewServer(Config{Routes: routes}, Deps{
		Layer: layer, Hub: hub, Metrics: metrics.New(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testConn builds an attached-style connection with no socket: frames
// accumulate in its queue, up to the server's send_queue.
func testConn(s *Server, r *route) *conn {
	id := s.nextID.Add(1)
	return &conn{
		id: id, srv: s, route: r, label: r.cfg.Path, params: map[string]any{},
		channel: s.layer.NewChannel(), sendQueue: sendQueue{finished: make(chan struct{})}, done: make(chan struct{}),
		framesOut: s.metrics.FramesOut.WithLabelValues(r.cfg.Path), log: s.log,
	}
}

// takeQueued empties a socket-less connection's queue and returns it.
func takeQueued(c *conn) []outFrame {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	q := c.queue
	c.queue, c.pending = nil, 0
	return q
}

func TestHubJoinsEachGroupOncePerProcess(t *testing.T) {
	layer := newCountingLayer()
	s := testServer(t, layer, RouteConfig{Path: "/ws/r/", Auth: AuthNone})
	r := s.routes[0]
	ctx := context.Background()
	a, b := testConn(s, r), testConn(s, r)
	for _, c := range []*conn{a, b} {
		c.groups = []string{"room"}
		if err := c.attach(); err != nil {
			t.Fatal(err)
		}
	}
	if layer.adds != 1 || len(layer.members["room"]) != 1 {
		t.Fatalf("adds=%d members=%v, want one layer membership for two sockets", layer.adds, layer.members)
	}
	var groupChannel string
	for ch := range layer.members["room"] {
		groupChannel = ch
	}
	s.hub.Deliver(groupChannel, bridge.Message{"type": "chat", "text": "hi"})
	fa, fb := takeQueued(a)[0], takeQueued(b)[0]
	if string(fa.data) != `{"text":"hi","type":"chat"}` {
		t.Fatalf("frame %s", fa.data)
	}
	if fa.pm == nil || fa.pm != fb.pm {
		t.Fatal("the fan-out did not share one prepared frame")
	}
	a.detach()
	if layer.discards != 0 {
		t.Fatal("left the group while a socket remains")
	}
	b.detach()
	if layer.discards != 1 || len(layer.members) != 0 || s.hub.Groups() != 0 {
		t.Fatalf("discards=%d members=%v groups=%d", layer.discards, layer.members, s.hub.Groups())
	}
	_ = ctx
}

func TestHubPerSocketFramesAreNotShared(t *testing.T) {
	layer := newCountingLayer()
	s := testServer(t, layer, RouteConfig{
		Path: "/ws/r/", Auth: AuthNone, Groups: []string{"g"},
		Events: map[string]EventConfig{"chat": {Frame: map[string]any{"type": "chat", "me": "{channel}"}}},
	})
	r := s.routes[0]
	a, b := testConn(s, r), testConn(s, r)
	for _, c := range []*conn{a, b} {
		c.groups = []string{"g"}
		if err := c.attach(); err != nil {
			t.Fatal(err)
		}
	}
	var ch string
	for k := range layer.members["g"] {
		ch = k
	}
	s.hub.Deliver(ch, bridge.Message{"type": "chat"})
	fa, fb := takeQueued(a)[0], takeQueued(b)[0]
	if string(fa.data) == string(fb.data) {
		t.Fatalf("per-socket template rendered once: %s", fa.data)
	}
}

func TestHubConcurrentJoinLeaveStaysConsistent(t *testing.T) {
	layer := newCountingLayer()
	s := testServer(t, layer, RouteConfig{Path: "/ws/r/", Auth: AuthNone})
	r := s.routes[0]
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				c := testConn(s, r)
				c.groups = []string{fmt.Sprintf("g%d", i%3), "shared"}
				if err := c.attach(); err != nil {
					t.Error(err)
					return
				}
				c.detach()
			}
		}(w)
	}
	wg.Wait()
	if len(layer.members) != 0 || s.hub.Groups() != 0 || s.hub.Len() != 0 {
		t.Fatalf("left behind: layer=%v groups=%d conns=%d", layer.members, s.hub.Groups(), s.hub.Len())
	}
	if layer.adds != layer.discards {
		t.Fatalf("adds=%d discards=%d", layer.adds, layer.discards)
	}
}

func TestSlowClientIsDisconnectedNotBuffered(t *testing.T) {
	layer := newCountingLayer()
	s := testServer(t, layer, RouteConfig{Path: "/ws/r/", Auth: AuthNone})
	s.cfg.WebSocket.SendQueue = 2
	c := testConn(s, s.routes[0])
	for i := 0; i < 5; i++ {
		c.deliver(bridge.Message{"type": "x", "i": int64(i)})
	}
	select {
	case <-c.done:
	default:
		t.Fatal("a client with a full queue was not closed")
	}
	if n := len(takeQueued(c)); n != 2 || c.flush {
		t.Fatalf("queue %d flush %v: the backlog must stay bounded and be dropped", n, c.flush)
	}
}

func TestSkipSelf(t *testing.T) {
	layer := newCountingLayer()
	s := testServer(t, layer, RouteConfig{
		Path: "/ws/r/", Auth: AuthNone,
		Events: map[string]EventConfig{"typing_indicator": {Frame: map[string]any{"type": "typing", "user_id": "{event.user_id}"}, SkipSelf: true}},
	})
	c := testConn(s, s.routes[0])
	c.identity.Store(&auth.Identity{UserID: "5"})
	c.deliver(bridge.Message{"type": "typing_indicator", "user_id": int64(5)})
	c.deliver(bridge.Message{"type": "typing_indicator", "user_id": int64(6)})
	got := takeQueued(c)
	if len(got) != 1 || string(got[0].data) != `{"type":"typing","user_id":6}` {
		t.Fatalf("got %d frames: %v", len(got), got)
	}
}

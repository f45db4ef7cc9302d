package bridge

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder is a Handler that collects deliveries.
type recorder struct {
	mu   sync.Mutex
	got  []delivery
	wake chan struct{}
}

type delivery struct {
	channel string
	msg     Message
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) handle(ch string, msg Message) {
	r.mu.Lock()
	r.got = append(r.got, delivery{ch, msg})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until n deliveries arrived and returns them.
func (r *recorder) waitFor(t testing.TB, n int, timeout time.Duration) []delivery {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			out := append([]delivery(nil), r.got...)
			r.mu.Unlock()
			return out
		}
		have := len(r.got)
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d", have, n)
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// runLayer starts l.Run and stops it when the test ends.
func runLayer(t testing.TB, l Layer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
		_ = l.Close()
	})
}

func newMemory(t *testing.T, cfg Config, h Handler) *MemoryLayer {
	t.Helper()
	l, err := NewMemoryLayer(cfg, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMemorySendAndGroups(t *testing.T) {
	rec := newRecorder()
	l := newMemory(t, Config{}, rec.handle)
	runLayer(t, l)
	ctx := context.Background()
	a, b, c := l.NewChannel(), l.NewChannel(), l.NewChannel()
	if a == b {
		t.Fatal("NewChannel repeated a name")
	}
	if err := l.Send(ctx, a, sampleMessage()); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 1, 5*time.Second)
	if got[0].channel != a || !equalValues(map[string]any(got[0].msg), map[string]any(sampleDecoded())) {
		t.Fatalf("delivery %+v", got[0])
	}
	for _, ch := range []string{a, b, c} {
		if err := l.GroupAdd(ctx, "room", ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupDiscard(ctx, "room", c); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupSend(ctx, "room", Message{"type": "g"}); err != nil {
		t.Fatal(err)
	}
	got = rec.waitFor(t, 3, 5*time.Second)
	seen := map[string]bool{}
	for _, d := range got[1:] {
		seen[d.channel] = true
		if d.msg["type"] != "g" {
			t.Fatalf("group delivery %+v", d)
		}
	}
	if !seen[a] || !seen[b] || seen[c] {
		t.Fatalf("group deliveries went to %v", seen)
	}
	if err := l.GroupSend(ctx, "empty", Message{"type": "g"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, "worker.tasks", Message{"type": "t"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if rec.count() != 3 {
		t.Fatalf("unexpected deliveries: %d", rec.count())
	}
	st := l.Stats()
	if st.Sent != 1 || st.GroupSent != 2 || st.Delivered != 3 || st.DroppedUnknown != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMemoryCapacity(t *testing.T) {
	rec := newRecorder()
	l := newMemory(t, Config{Capacity: 2, ChannelCapacity: []ChannelCapacity{{Pattern: "specific.*!1", Capacity: 1}}}, rec.handle)
	ctx := context.Background()
	one, two := l.NewChannel(), l.NewChannel() // ...!1 and ...!2
	for i := range 2 {
		if err := l.Send(ctx, two, Message{"type": "x", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Send(ctx, two, Message{"type": "x"}); !errors.Is(err, ErrChannelFull) {
		t.Fatalf("third send: %v", err)
	}
	if err := l.Send(ctx, one, Message{"type": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, one, Message{"type": "x"}); !errors.Is(err, ErrChannelFull) {
		t.Fatalf("override capacity: %v", err)
	}
	_ = l.GroupAdd(ctx, "g", one)
	_ = l.GroupAdd(ctx, "g", two)
	if err := l.GroupSend(ctx, "g", Message{"type": "x"}); err != nil {
		t.Fatalf("group_send to full channels must not fail: %v", err)
	}
	if st := l.Stats(); st.OverCapacity != 4 {
		t.Fatalf("over capacity = %d, want 4", st.OverCapacity)
	}
	// Draining frees the capacity again, in order.
	runLayer(t, l)
	got := rec.waitFor(t, 3, 5*time.Second)
	if got[0].msg["i"] != int64(0) || got[1].msg["i"] != int64(1) {
		t.Fatalf("order: %+v", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Send(ctx, two, Message{"type": "again"}) != nil {
		if time.Now().After(deadline) {
			t.Fatal("capacity was not released after delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMemoryExpiry(t *testing.T) {
	rec := newRecorder()
	l := newMemory(t, Config{Expiry: 5}, rec.handle)
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ch := l.NewChannel()
	_ = l.Send(context.Background(), ch, Message{"type": "old"})
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	_ = l.Send(context.Background(), ch, Message{"type": "new"})
	runLayer(t, l)
	got := rec.waitFor(t, 1, 5*time.Second)
	if got[0].msg["type"] != "new" {
		t.Fatalf("delivered %+v", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().DroppedExpired != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", l.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMemoryBadInput(t *testing.T) {
	l := newMemory(t, Config{}, func(string, Message) {})
	ctx := context.Background()
	ch := l.NewChannel()
	if err := l.Send(ctx, "bad name", Message{"type": "x"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad channel: %v", err)
	}
	if err := l.Send(ctx, ch, Message{"type": make(chan int)}); err == nil {
		t.Error("unsupported value accepted")
	}
	if err := l.GroupAdd(ctx, "a!b", ch); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad group: %v", err)
	}
	if err := l.GroupSend(ctx, "g", Message{asgiChannelKey: "x"}); err == nil {
		t.Error("reserved key accepted")
	}
	if _, err := NewMemoryLayer(Config{}, nil, nil); err == nil {
		t.Error("nil handler accepted")
	}
	if _, err := NewMemoryLayer(Config{Capacity: -3}, func(string, Message) {}, nil); err == nil {
		t.Error("bad config accepted")
	}
}

func TestMemoryRunTwiceAndPanics(t *testing.T) {
	rec := newRecorder()
	calls := 0
	l := newMemory(t, Config{}, func(ch string, m Message) {
		calls++
		if m["type"] == "boom" {
			panic("handler bug")
		}
		rec.handle(ch, m)
	})
	runLayer(t, l)
	time.Sleep(20 * time.Millisecond)
	if err := l.Run(context.Background()); err == nil {
		t.Fatal("second Run started")
	}
	ch := l.NewChannel()
	_ = l.Send(context.Background(), ch, Message{"type": "boom"})
	_ = l.Send(context.Background(), ch, Message{"type": "after"})
	got := rec.waitFor(t, 1, 5*time.Second)
	if got[0].msg["type"] != "after" {
		t.Fatalf("delivery after a panic: %+v", got)
	}
}

func TestNewSelectsBackend(t *testing.T) {
	h := func(string, Message) {}
	l, err := New(Config{}, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.(*MemoryLayer); !ok {
		t.Fatalf("default backend is %T", l)
	}
	l, err = New(Config{Backend: "redis", Hosts: HostList{"redis://127.0.0.1:1/0"}}, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.(*RedisLayer); !ok {
		t.Fatalf("redis backend is %T", l)
	}
	if err := l.Ready(context.Background()); err == nil {
		t.Fatal("Ready succeeded without a Redis server")
	}
	_ = l.Close()
	if l, err := New(Config{Backend: "nope"}, h, nil); err == nil || l != nil {
		t.Fatalf("bad backend: %v, %v", l, err)
	}
	if _, ok := l.(StatsSource); !ok {
		t.Fatal("layers must expose Stats")
	}
}

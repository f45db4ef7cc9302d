package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// newRedisTestLayer makes a Redis layer on r with cfg and handler h.
func newRedisTestLayer(t testing.TB, r *testenv.Redis, cfg Config, h Handler) *RedisLayer {
	t.Helper()
	cfg.Backend = BackendRedis
	cfg.Hosts = HostList{r.URL()}
	l, err := NewRedisLayer(cfg, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// rawClient is a plain client for checking what the layer wrote.
func rawClient(t testing.TB, r *testenv.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func nopHandler(string, Message) {}

func TestRedisSendKeysAndDelivery(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	a := newRedisTestLayer(t, r, Config{}, nopHandler)
	b := newRedisTestLayer(t, r, Config{}, rec.handle)
	ch := b.NewChannel()
	if !strings.HasPrefix(ch, "specific.") || len(ch) >= 100 || validateChannelName(ch) != nil {
		t.Fatalf("channel name %q", ch)
	}
	before := float64(time.Now().Unix())
	if err := a.Send(ctx, ch, sampleMessage()); err != nil {
		t.Fatal(err)
	}
	// The message waits in B's process key, as channels_redis lays it out.
	rc := rawClient(t, r)
	key := "asgi" + b.ProcessName()
	zs, err := rc.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil || len(zs) != 1 {
		t.Fatalf("process key %q: %v %v", key, zs, err)
	}
	if zs[0].Score < before || zs[0].Score > before+5 {
		t.Fatalf("score %f is not Unix seconds", zs[0].Score)
	}
	if ttl := rc.TTL(ctx, key).Val(); ttl <= 0 || ttl > 60*time.Second {
		t.Fatalf("TTL %v", ttl)
	}
	_, chans, err := a.codec.DecodeMember([]byte(zs[0].Member.(string)))
	if err != nil || len(chans) != 1 || chans[0] != ch {
		t.Fatalf("stored member: %q %v", chans, err)
	}

	runLayer(t, b)
	got := rec.waitFor(t, 1, 5*time.Second)
	if got[0].channel != ch || !equalValues(map[string]any(got[0].msg), map[string]any(sampleDecoded())) {
		t.Fatalf("delivered %+v", got[0])
	}

	// A plain channel name has its own key and no __asgi_channel__.
	if err := a.Send(ctx, "worker.tasks", Message{"type": "task"}); err != nil {
		t.Fatal(err)
	}
	m, err := rc.ZRange(ctx, "asgiworker.tasks", 0, -1).Result()
	if err != nil || len(m) != 1 {
		t.Fatalf("plain key: %v %v", m, err)
	}
	if _, chans, err := a.codec.DecodeMember([]byte(m[0])); err != nil || chans != nil {
		t.Fatalf("plain member: %q %v", chans, err)
	}
	if st := a.Stats(); st.Sent != 2 {
		t.Fatalf("sender stats %+v", st)
	}
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRedisGroups(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	recA, recB := newRecorder(), newRecorder()
	a := newRedisTestLayer(t, r, Config{Prefix: "pfx"}, recA.handle)
	b := newRedisTestLayer(t, r, Config{Prefix: "pfx"}, recB.handle)
	runLayer(t, a)
	runLayer(t, b)
	a1, a2, b1 := a.NewChannel(), a.NewChannel(), b.NewChannel()
	for _, ch := range []string{a1, a2} {
		if err := a.GroupAdd(ctx, "room", ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.GroupAdd(ctx, "room", b1); err != nil {
		t.Fatal(err)
	}
	rc := rawClient(t, r)
	if ttl := rc.TTL(ctx, "pfx:group:room").Val(); ttl <= 86000*time.Second {
		t.Fatalf("group TTL %v", ttl)
	}
	if n := rc.ZCard(ctx, "pfx:group:room").Val(); n != 3 {
		t.Fatalf("group has %d members", n)
	}
	if err := b.GroupSend(ctx, "room", Message{"type": "hello", "n": 1}); err != nil {
		t.Fatal(err)
	}
	gotA := recA.waitFor(t, 2, 5*time.Second)
	gotB := recB.waitFor(t, 1, 5*time.Second)
	if gotA[0].channel == gotA[1].channel || gotB[0].channel != b1 || gotB[0].msg["n"] != int64(1) {
		t.Fatalf("deliveries A %+v B %+v", gotA, gotB)
	}
	// One stored message per process key, not per channel.
	if st := b.Stats(); st.GroupSent != 2 {
		t.Fatalf("group_send wrote %d keys, want 2", st.GroupSent)
	}
	if err := a.GroupDiscard(ctx, "room", a2); err != nil {
		t.Fatal(err)
	}
	if a.members.has("room", a2) || !a.members.has("room", a1) {
		t.Fatal("local memberships not tracked")
	}
	if err := b.GroupSend(ctx, "room", Message{"type": "second"}); err != nil {
		t.Fatal(err)
	}
	gotA = recA.waitFor(t, 3, 5*time.Second)
	recB.waitFor(t, 2, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	if recA.count() != 3 || gotA[2].channel != a1 {
		t.Fatalf("after discard A got %+v", gotA)
	}
	if err := a.GroupSend(ctx, "nobody", Message{"type": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := a.GroupAdd(ctx, "bad group!", a1); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad group name: %v", err)
	}
}

func TestRedisCapacity(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	cfg := Config{Capacity: 2, ChannelCapacity: []ChannelCapacity{{Pattern: "big.*", Capacity: 5}}}
	a := newRedisTestLayer(t, r, cfg, nopHandler)
	b := newRedisTestLayer(t, r, cfg, rec.handle)
	for i := range 2 {
		if err := a.Send(ctx, "cap.plain", Message{"type": "x", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send(ctx, "cap.plain", Message{"type": "x"}); !errors.Is(err, ErrChannelFull) {
		t.Fatalf("third send: %v", err)
	}
	for i := range 5 {
		if err := a.Send(ctx, "big.plain", Message{"type": "x", "i": i}); err != nil {
			t.Fatalf("override capacity, send %d: %v", i, err)
		}
	}
	if err := a.Send(ctx, "big.plain", Message{"type": "x"}); !errors.Is(err, ErrChannelFull) {
		t.Fatalf("sixth send: %v", err)
	}
	ch := b.NewChannel()
	runLayer(t, b)
	for _, m := range []string{"cap.plain", ch} {
		if err := a.GroupAdd(ctx, "g", m); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.GroupSend(ctx, "g", Message{"type": "fan"}); err != nil {
		t.Fatalf("group_send to a full key must not fail: %v", err)
	}
	rec.waitFor(t, 1, 5*time.Second)
	if n := rawClient(t, r).ZCard(ctx, "asgicap.plain").Val(); n != 2 {
		t.Fatalf("full key has %d members", n)
	}
	if st := a.Stats(); st.OverCapacity != 3 || st.GroupSent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRedisBadMembersDoNotStopRun(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	b := newRedisTestLayer(t, r, Config{}, rec.handle)
	other := newRedisTestLayer(t, r, Config{}, nopHandler)
	ch := b.NewChannel()
	key := "asgi" + b.ProcessName()
	rc := rawClient(t, r)
	noTarget, _ := b.codec.AppendMember(nil, Message{"type": "lost"}, "")
	foreign, _ := b.codec.AppendGroupMember(nil, Message{"type": "x"}, []string{other.NewChannel()})
	good, _ := b.codec.AppendMember(nil, Message{"type": "good"}, ch)
	now := float64(time.Now().Unix())
	for i, m := range [][]byte{
		[]byte("short"),
		append(make([]byte, 12), 0x81, 0x01, 0x02), // int map key
		noTarget, foreign, good,
	} {
		if err := rc.ZAdd(ctx, key, redis.Z{Score: now + float64(i), Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	runLayer(t, b)
	got := rec.waitFor(t, 1, 5*time.Second)
	if got[0].msg["type"] != "good" {
		t.Fatalf("delivered %+v", got)
	}
	st := b.Stats()
	if st.Received != 5 || st.DecodeErrors != 2 || st.DroppedUnknown != 2 || st.Delivered != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRedisBatchDrainKeepsOrder(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	b := newRedisTestLayer(t, r, Config{ReceiveBatch: 7, Capacity: 1000}, rec.handle)
	a := newRedisTestLayer(t, r, Config{Capacity: 1000}, nopHandler)
	ch := b.NewChannel()
	const n = 250
	for i := range n {
		if err := a.Send(ctx, ch, Message{"type": "seq", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	runLayer(t, b)
	got := rec.waitFor(t, n, 10*time.Second)
	// Scores are microsecond timestamps; equal scores may swap, so check
	// that every message arrived once and nearly in order.
	seen := make(map[int64]bool)
	for i, d := range got {
		v := d.msg["i"].(int64)
		if seen[v] {
			t.Fatalf("message %d delivered twice", v)
		}
		seen[v] = true
		if diff := v - int64(i); diff > 5 || diff < -5 {
			t.Fatalf("message %d delivered at position %d", v, i)
		}
	}
}

// TestRedisRestart restarts Redis under a running layer: Run survives,
// Ready reports the outage, and memberships come back by themselves.
func TestRedisRestart(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	b := newRedisTestLayer(t, r, Config{}, rec.handle)
	a := newRedisTestLayer(t, r, Config{}, nopHandler)
	ch := b.NewChannel()
	if err := b.GroupAdd(ctx, "lobby", ch); err != nil {
		t.Fatal(err)
	}
	runLayer(t, b)
	if err := a.GroupSend(ctx, "lobby", Message{"type": "before"}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 1, 5*time.Second)

	r.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for b.Ready(ctx) == nil || b.Stats().Hosts[0].Up {
		if time.Now().After(deadline) {
			t.Fatalf("Ready (%v) or the receive loop did not report the outage", b.Ready(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.Ready(ctx); !strings.Contains(err.Error(), r.Addr()) {
		t.Fatalf("Ready does not name the host that is down: %v", err)
	}
	r.Restart()
	waitGroupDelivery(t, rec, 2, func() error { return a.GroupSend(ctx, "lobby", Message{"type": "after"}) })
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready after restart: %v", err)
	}
	if st := b.Stats(); st.GroupRefreshes == 0 || st.BackendErrors == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRedisQuickRestartRestoresGroups restarts Redis between two receive
// calls, so the loop may see no error at all: the new server's run_id
// still triggers the restore.
func TestRedisQuickRestartRestoresGroups(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	b := newRedisTestLayer(t, r, Config{}, rec.handle)
	a := newRedisTestLayer(t, r, Config{}, nopHandler)
	ch := b.NewChannel()
	if err := b.GroupAdd(ctx, "lobby", ch); err != nil {
		t.Fatal(err)
	}
	runLayer(t, b)
	r.Restart()
	waitGroupDelivery(t, rec, 1, func() error { return a.GroupSend(ctx, "lobby", Message{"type": "after"}) })
}

// waitGroupDelivery repeats send until rec has n deliveries, for at most
// 10 s.
func waitGroupDelivery(t *testing.T, rec *recorder, n int, send func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for rec.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery within 10 s (have %d of %d)", rec.count(), n)
		}
		_ = send()
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRedisGroupRefresh(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	b := newRedisTestLayer(t, r, Config{GroupExpiry: 3, GroupRefresh: 1}, nopHandler)
	ch, gone := b.NewChannel(), b.NewChannel()
	for _, c := range []string{ch, gone} {
		if err := b.GroupAdd(ctx, "short", c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.GroupDiscard(ctx, "short", gone); err != nil {
		t.Fatal(err)
	}
	runLayer(t, b)
	rc := rawClient(t, r)
	first := rc.ZScore(ctx, "asgi:group:short", ch).Val()
	time.Sleep(4500 * time.Millisecond) // longer than group_expiry
	members, err := rc.ZRangeWithScores(ctx, "asgi:group:short", 0, -1).Result()
	if err != nil || len(members) != 1 || members[0].Member != ch || members[0].Score <= first {
		t.Fatalf("after refreshes the group holds %v (%v); first score %f", members, err, first)
	}
	if st := b.Stats(); st.GroupRefreshes < 2 {
		t.Fatalf("refreshes %d", st.GroupRefreshes)
	}
}

func TestRedisSendErrors(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	a := newRedisTestLayer(t, r, Config{}, nopHandler)
	if err := a.Send(ctx, "bad name", Message{"type": "x"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
	if err := a.Send(ctx, "ok", Message{"type": func() {}}); err == nil {
		t.Error("unsupported value accepted")
	}
	if err := a.GroupSend(ctx, "g", nil); err == nil {
		t.Error("nil message accepted")
	}
	runLayer(t, a)
	time.Sleep(50 * time.Millisecond)
	if err := a.Run(ctx); err == nil {
		t.Error("a second Run started")
	}
	r.Stop()
	err := a.Send(ctx, "ok", Message{"type": "x"})
	if err == nil || errors.Is(err, ErrChannelFull) {
		t.Errorf("send with Redis down: %v", err)
	}
	if _, err := NewRedisLayer(Config{Hosts: HostList{"redis://a", "redis://:secretpw@b:0"}}, nopHandler, nil); err == nil ||
		!strings.Contains(err.Error(), "hosts[1]") || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("bad second host: %v", err)
	}
}

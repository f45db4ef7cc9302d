package ratelimit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// newClient connects to a test server the way New does: through the
// bridge's host parsing.
func newClient(t testing.TB, r *testenv.Redis) *redis.Client {
	t.Helper()
	spec, err := bridge.ParseHost(bridge.HostFromURL(r.URL()))
	if err != nil {
		t.Fatal(err)
	}
	c := spec.NewClient(nil)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisExactAtBoundary(t *testing.T) {
	srv := testenv.StartRedis(t)
	l := NewRedis(newClient(t, srv), DefaultPrefix)
	for i, r := range allowN(t, l, "user:7:chat", 5, time.Minute, 5) {
		if !r.Allowed || r.Remaining != 4-i || r.RetryAfter != 0 {
			t.Fatalf("hit %d: %+v, want allowed with %d remaining", i, r, 4-i)
		}
	}
	for range 3 {
		r := allowN(t, l, "user:7:chat", 5, time.Minute, 1)[0]
		if r.Allowed || r.Remaining != 0 || r.RetryAfter <= 0 || r.RetryAfter > time.Minute {
			t.Fatalf("hit past the limit: %+v", r)
		}
	}
	if r := allowN(t, l, "user:8:chat", 5, time.Minute, 1)[0]; !r.Allowed || r.Remaining != 4 {
		t.Fatalf("other key: %+v", r)
	}
}

func TestRedisKeyLayoutAndExpiry(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := newClient(t, srv)
	l := NewRedis(c, "test:rl:")
	ctx := context.Background()
	const w = 300 * time.Millisecond
	allowN(t, l, "u1", 3, w, 2)
	// Only accepted hits are logged, with Redis' time in microseconds.
	allowN(t, l, "u1", 2, w, 1)
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "test:rl:u1" {
		t.Fatalf("keys %q, want [test:rl:u1]", keys)
	}
	if typ := c.Type(ctx, "test:rl:u1").Val(); typ != "zset" {
		t.Fatalf("type %s, want zset", typ)
	}
	entries, err := c.ZRangeWithScores(ctx, "test:rl:u1", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d hits logged, want 2", len(entries))
	}
	for _, e := range entries {
		at := time.UnixMicro(int64(e.Score))
		if d := now.Sub(at); d < 0 || d > w {
			t.Fatalf("hit logged at %s, Redis time %s", at, now)
		}
	}
	if ttl := c.PTTL(ctx, "test:rl:u1").Val(); ttl <= 0 || ttl > w {
		t.Fatalf("PTTL %s, want within the window", ttl)
	}
	waitFor(t, "key to expire", func() bool { return c.Exists(ctx, "test:rl:u1").Val() == 0 })
}

// TestRedisWindowRolls checks that the window rolls hit by hit rather
// than resetting: once RetryAfter has passed, the first hit has left the
// window and one hit is allowed, while the later hits still count.
func TestRedisWindowRolls(t *testing.T) {
	srv := testenv.StartRedis(t)
	l := NewRedis(newClient(t, srv), DefaultPrefix)
	const w = 600 * time.Millisecond
	conclusive := false
	for attempt := 0; attempt < 5 && !conclusive; attempt++ {
		key := "roll" + strings.Repeat("x", attempt)
		allowN(t, l, key, 3, w, 1)
		time.Sleep(w / 2)
		before2 := time.Now()
		rs := allowN(t, l, key, 3, w, 3)
		if !rs[0].Allowed || !rs[1].Allowed || rs[2].Allowed {
			t.Fatalf("filling the window: %+v", rs)
		}
		retry := rs[2].RetryAfter
		if retry <= 0 || retry > w {
			t.Fatalf("retry after %s, want within (0, %s]", retry, w)
		}
		// Sleeping RetryAfter lets at least that much Redis time pass, so
		// the first hit has left whatever the machine's speed (the margin
		// covers the wall clock being slewed against the monotonic one).
		time.Sleep(retry + 5*time.Millisecond)
		r := allowN(t, l, key, 3, w, 1)[0]
		if !r.Allowed {
			t.Fatalf("denied after waiting RetryAfter (%s): %+v", retry, r)
		}
		// If less than a window passed since the second and third hits
		// were made, they must still count: exactly one slot was free.
		if time.Since(before2) < w {
			conclusive = true
			if r.Remaining != 0 {
				t.Fatalf("after the first hit left: remaining %d, want 0 (the two later hits still count)", r.Remaining)
			}
			if d := allowN(t, l, key, 3, w, 1)[0]; d.Allowed {
				t.Fatalf("allowed a 4th hit while three are in the window: %+v", d)
			}
		}
	}
	if !conclusive {
		t.Log("machine too slow to observe a half window; only the filling and the roll were checked")
	}
}

func TestRedisTwoProcessesShareBudget(t *testing.T) {
	srv := testenv.StartRedis(t)
	a := NewRedis(newClient(t, srv), DefaultPrefix)
	b := NewRedis(newClient(t, srv), DefaultPrefix)
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if r := allowN(t, l, "shared", 10, time.Minute, 1)[0]; !r.Allowed || r.Remaining != 9-i {
			t.Fatalf("hit %d: %+v", i, r)
		}
	}
	for _, l := range []*Redis{a, b} {
		if r := allowN(t, l, "shared", 10, time.Minute, 1)[0]; r.Allowed {
			t.Fatal("a process got more than the shared budget")
		}
	}
	// A different prefix is a different namespace.
	c := NewRedis(newClient(t, srv), "other:")
	if r := allowN(t, c, "shared", 10, time.Minute, 1)[0]; !r.Allowed {
		t.Fatal("prefixes do not separate keys")
	}
}

func TestRedisAtomicUnderConcurrency(t *testing.T) {
	srv := testenv.StartRedis(t)
	limiters := []*Redis{NewRedis(newClient(t, srv), DefaultPrefix), NewRedis(newClient(t, srv), DefaultPrefix)}
	const limit = 37
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 10 {
				r, err := limiters[g%2].Allow(context.Background(), "hot", limit, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != limit {
		t.Fatalf("%d hits allowed by 160 concurrent calls, want exactly %d", n, limit)
	}
}

func TestRedisUnreachable(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := newClient(t, srv)
	l := NewRedis(c, DefaultPrefix)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.Allow(ctx, "k", 1, time.Second); err == nil {
		t.Fatal("no error with Redis stopped")
	}
}

// waitFor polls cond until it holds, failing after a generous deadline
// that only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

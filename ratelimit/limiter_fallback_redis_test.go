package ratelimit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// process is one sidecar's limiter, built from configuration as main
// would, with its hooks counted.
type process struct {
	Service
	fellBack, recovered atomic.Int32
}

func newProcess(t *testing.T, srv *testenv.Redis) *process {
	t.Helper()
	cfg := Config{Host: bridge.HostFromURL(srv.URL()), ProbeInterval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := &process{}
	s, err := New(cfg, slog.New(slog.DiscardHandler), Hooks{
		OnFallback: func(error) { p.fellBack.Add(1) },
		OnRecover:  func() { p.recovered.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p.Service = s
	return p
}

func (p *process) stats() FallbackStats {
	return p.Service.(interface{ Stats() FallbackStats }).Stats()
}

// sharedBudget alternates hits between processes and returns how many
// were allowed.
func sharedBudget(t *testing.T, key string, limit, hits int, procs ...*process) int {
	t.Helper()
	n := 0
	for i := range hits {
		r, err := procs[i%len(procs)].Allow(context.Background(), key, limit, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			n++
		}
	}
	return n
}

func TestFallbackThroughRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := newProcess(t, srv), newProcess(t, srv)

	if n := sharedBudget(t, "before", 4, 10, a, b); n != 4 {
		t.Fatalf("with Redis up two processes got %d hits, want the shared 4", n)
	}

	srv.Stop()
	// Each process keeps limiting on its own.
	for _, p := range []*process{a, b} {
		if n := sharedBudget(t, "during", 3, 6, p); n != 3 {
			t.Fatalf("with Redis down a process allowed %d of 6 hits, want 3", n)
		}
		st := p.stats()
		if !st.Degraded || st.Fallbacks != 1 || st.LocalDecisions < 6 || p.fellBack.Load() != 1 {
			t.Fatalf("stats %+v, OnFallback %d", st, p.fellBack.Load())
		}
	}

	srv.Restart()
	for _, p := range []*process{a, b} {
		waitFor(t, "the limiter to return to Redis", func() bool {
			if _, err := p.Allow(context.Background(), "probe", MaxLimit, time.Minute); err != nil {
				t.Fatal(err)
			}
			return !p.stats().Degraded
		})
		if p.recovered.Load() != 1 {
			t.Fatalf("OnRecover called %d times", p.recovered.Load())
		}
	}
	if n := sharedBudget(t, "after", 4, 10, a, b); n != 4 {
		t.Fatalf("after Redis came back two processes got %d hits, want the shared 4", n)
	}
}

func TestLocalBackendFromConfig(t *testing.T) {
	cfg := Config{Backend: BackendLocal}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, nil, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(interface{ Stats() FallbackStats }); ok {
		t.Fatal("local backend has fallback stats")
	}
	rs := allowN(t, s, "k", 2, time.Minute, 3)
	if !rs[0].Allowed || !rs[1].Allowed || rs[2].Allowed {
		t.Fatalf("%+v", rs)
	}
}

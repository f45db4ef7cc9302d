package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakePrimary stands in for the Redis limiter: it fails while err is set
// and otherwise allows everything with Remaining 99.
type fakePrimary struct {
	mu      sync.Mutex
	err     error
	calls   int
	release chan struct{} // if set, calls wait for it
}

func (p *fakePrimary) Allow(ctx context.Context, _ string, _ int, _ time.Duration) (Result, error) {
	p.mu.Lock()
	p.calls++
	err, release := p.err, p.release
	p.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Allowed: true, Remaining: 99}, nil
}

func (p *fakePrimary) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *fakePrimary) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func TestFallbackSwitchesAndRecovers(t *testing.T) {
	c := newFakeClock()
	p := &fakePrimary{}
	var fellBack, recovered int
	var fellErr error
	f := NewFallback(p, newLocalWithClock(0, c.now), FallbackOptions{
		ProbeInterval: time.Second,
		OnFallback:    func(err error) { fellBack++; fellErr = err },
		OnRecover:     func() { recovered++ },
	})
	f.now = c.now

	if r := allowN(t, f, "k", 2, time.Minute, 1)[0]; r.Remaining != 99 {
		t.Fatalf("healthy primary not used: %+v", r)
	}
	down := errors.New("connection refused")
	p.set(down)
	// The failing call is decided locally, and so are the next ones
	// without asking the primary until the probe interval has passed.
	rs := allowN(t, f, "k", 2, time.Minute, 3)
	if !rs[0].Allowed || rs[0].Remaining != 1 || !rs[1].Allowed || rs[2].Allowed {
		t.Fatalf("local decisions: %+v, want allow, allow, deny", rs)
	}
	if n := p.callCount(); n != 2 {
		t.Fatalf("primary asked %d times, want 2 (one healthy, one failing)", n)
	}
	if fellBack != 1 || !errors.Is(fellErr, down) {
		t.Fatalf("OnFallback called %d times with %v", fellBack, fellErr)
	}
	st := f.Stats()
	if !st.Degraded || st.Fallbacks != 1 || st.LocalDecisions != 3 {
		t.Fatalf("stats %+v", st)
	}

	// A probe after the interval that fails again stays local and does
	// not count a second fallback.
	c.add(time.Second)
	allowN(t, f, "k", 2, time.Minute, 2)
	if n := p.callCount(); n != 3 {
		t.Fatalf("primary asked %d times, want 3 (one probe)", n)
	}
	if fellBack != 1 {
		t.Fatalf("OnFallback called %d times during one outage", fellBack)
	}

	p.set(nil)
	allowN(t, f, "k", 2, time.Minute, 1) // before the next probe: local
	if n := p.callCount(); n != 3 {
		t.Fatalf("primary asked before the probe interval: %d", n)
	}
	c.add(time.Second)
	if r := allowN(t, f, "k", 2, time.Minute, 1)[0]; r.Remaining != 99 {
		t.Fatalf("probe after recovery not decided by the primary: %+v", r)
	}
	if recovered != 1 {
		t.Fatalf("OnRecover called %d times", recovered)
	}
	allowN(t, f, "k", 2, time.Minute, 3)
	if n := p.callCount(); n != 7 {
		t.Fatalf("primary asked %d times, want 7 after recovery", n)
	}
	st = f.Stats()
	if st.Degraded || st.Fallbacks != 1 || st.Recoveries != 1 || st.LocalDecisions != 6 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFallbackOnTimeout(t *testing.T) {
	p := &fakePrimary{release: make(chan struct{})} // never answers
	f := NewFallback(p, NewLocal(0), FallbackOptions{Timeout: 20 * time.Millisecond, ProbeInterval: time.Hour})
	r, err := f.Allow(context.Background(), "k", 1, time.Minute)
	if err != nil || !r.Allowed || r.Remaining != 0 {
		t.Fatalf("timed-out primary: %+v, %v; want a local decision", r, err)
	}
	if !f.Stats().Degraded {
		t.Fatal("not degraded after a timeout")
	}
}

func TestFallbackCallerCancelIsNotAnOutage(t *testing.T) {
	p := &fakePrimary{release: make(chan struct{})}
	f := NewFallback(p, NewLocal(0), FallbackOptions{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for p.callCount() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := f.Allow(ctx, "k", 1, time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st := f.Stats(); st.Degraded || st.Fallbacks != 0 {
		t.Fatalf("caller's cancel counted as an outage: %+v", st)
	}
}

func TestFallbackInvalidArgumentsNotForwarded(t *testing.T) {
	p := &fakePrimary{}
	f := NewFallback(p, NewLocal(0), FallbackOptions{})
	if _, err := f.Allow(context.Background(), "", 1, time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
	if p.callCount() != 0 || f.Stats().Degraded {
		t.Fatal("invalid arguments reached the primary or degraded the limiter")
	}
}

func TestFallbackOneProbeAtATime(t *testing.T) {
	p := &fakePrimary{err: errors.New("down")}
	f := NewFallback(p, NewLocal(0), FallbackOptions{ProbeInterval: time.Nanosecond, Timeout: time.Second})
	allowN(t, f, "k", 1000, time.Minute, 1) // degrade
	release := make(chan struct{})
	p.mu.Lock()
	p.release = release
	p.mu.Unlock()
	var wg sync.WaitGroup
	var done atomic.Int32
	for range 20 {
		wg.Go(func() {
			if _, err := f.Allow(context.Background(), "k", 1000, time.Minute); err != nil {
				t.Error(err)
			}
			done.Add(1)
		})
	}
	// 19 calls finish locally while one probe is held by the primary.
	deadline := time.Now().Add(10 * time.Second)
	for done.Load() < 19 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := p.callCount(); n != 2 {
		t.Errorf("primary asked %d times, want 2 (the first failure and one probe)", n)
	}
	close(release)
	wg.Wait()
	if done.Load() != 20 {
		t.Fatalf("%d calls finished", done.Load())
	}
}

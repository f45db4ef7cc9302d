package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// FallbackOptions tune a Fallback limiter.
type FallbackOptions struct {
	// Timeout bounds one call to the primary limiter, so that an
	// unreachable Redis delays a frame by at most this much. Default
	// DefaultTimeout.
	Timeout time.Duration
	// ProbeInterval is how long the limiter stays on its local limiter
	// after a failure before it tries the primary again. Default
	// DefaultProbeInterval.
	ProbeInterval time.Duration
	// OnFallback, if set, is called once each time the limiter switches
	// to local decisions, with the error that made it switch. Metrics
	// count fallbacks here.
	OnFallback func(err error)
	// OnRecover, if set, is called once each time the primary answers
	// again after a fallback.
	OnRecover func()
	// Logger receives a warning on fallback and a note on recovery.
	// Default slog.Default().
	Logger *slog.Logger
}

// FallbackStats are a Fallback limiter's counters since it was made.
type FallbackStats struct {
	// Degraded reports whether decisions are local right now.
	Degraded bool
	// Fallbacks counts switches from the primary to local decisions.
	Fallbacks uint64
	// Recoveries counts switches back to the primary.
	Recoveries uint64
	// LocalDecisions counts hits decided by the local limiter.
	LocalDecisions uint64
}

// Fallback is a Limiter that asks a shared primary limiter (Redis) and,
// when the primary fails, decides with a Local limiter until the primary
// answers again. While degraded, limits hold per process rather than
// across processes: with N processes a user may get up to N times the
// limit. One call every ProbeInterval tries the primary again, the others
// stay local meanwhile, so that a dead Redis is not asked by every frame.
// Local state is not carried over in either direction: each side counts
// only the hits it decided.
type Fallback struct {
	primary Limiter
	local   *Local
	opts    FallbackOptions
	now     func() time.Time

	mu        sync.Mutex
	degraded  bool
	probing   bool
	nextProbe time.Time

	fallbacks      atomic.Uint64
	recoveries     atomic.Uint64
	localDecisions atomic.Uint64
}

// NewFallback returns a limiter that asks primary first and local while
// primary fails.
func NewFallback(primary Limiter, local *Local, opts FallbackOptions) *Fallback {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Fallback{primary: primary, local: local, opts: opts, now: time.Now}
}

// Allow decides one hit with the primary limiter, or with the local one
// while the primary is failing. It returns an error only for invalid
// arguments (ErrInvalidArgument) or when ctx itself ends.
func (f *Fallback) Allow(ctx context.Context, key string, limit int, window time.Duration) (Result, error) {
	if err := checkArgs(key, limit, window); err != nil {
		return Result{}, err
	}
	if !f.usePrimary() {
		return f.allowLocal(ctx, key, limit, window)
	}
	pctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	res, err := f.primary.Allow(pctx, key, limit, window)
	cancel()
	if err == nil {
		f.primaryUp()
		return res, nil
	}
	if ctx.Err() != nil {
		// The caller gave up; that says nothing about Redis.
		f.endProbe()
		return Result{}, ctx.Err()
	}
	if errors.Is(err, ErrInvalidArgument) {
		f.endProbe()
		return Result{}, err
	}
	f.primaryDown(err)
	return f.allowLocal(ctx, key, limit, window)
}

// Stats returns the counters.
func (f *Fallback) Stats() FallbackStats {
	f.mu.Lock()
	degraded := f.degraded
	f.mu.Unlock()
	return FallbackStats{
		Degraded:       degraded,
		Fallbacks:      f.fallbacks.Load(),
		Recoveries:     f.recoveries.Load(),
		LocalDecisions: f.localDecisions.Load(),
	}
}

func (f *Fallback) allowLocal(ctx context.Context, key string, limit int, window time.Duration) (Result, error) {
	f.localDecisions.Add(1)
	return f.local.Allow(ctx, key, limit, window)
}

// usePrimary reports whether this call should go to the primary: always
// while it is healthy, and for one probing call per ProbeInterval while it
// is not.
func (f *Fallback) usePrimary() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.degraded {
		return true
	}
	if f.probing || f.now().Before(f.nextProbe) {
		return false
	}
	f.probing = true
	return true
}

func (f *Fallback) endProbe() {
	f.mu.Lock()
	f.probing = false
	f.mu.Unlock()
}

func (f *Fallback) primaryUp() {
	f.mu.Lock()
	f.probing = false
	recovered := f.degraded
	f.degraded = false
	f.mu.Unlock()
	if !recovered {
		return
	}
	f.recoveries.Add(1)
	f.opts.Logger.Info("rate limiter: shared limiter answers again; limits are shared across processes again")
	if f.opts.OnRecover != nil {
		f.opts.OnRecover()
	}
}

func (f *Fallback) primaryDown(err error) {
	f.mu.Lock()
	f.probing = false
	f.nextProbe = f.now().Add(f.opts.ProbeInterval)
	fell := !f.degraded
	f.degraded = true
	f.mu.Unlock()
	if !fell {
		return
	}
	f.fallbacks.Add(1)
	f.opts.Logger.Warn("rate limiter: shared limiter failed; limiting per process until it answers",
		"err", err, "probe_interval", f.opts.ProbeInterval)
	if f.opts.OnFallback != nil {
		f.opts.OnFallback(err)
	}
}

package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func allowN(t *testing.T, l Limiter, key string, limit int, window time.Duration, n int) []Result {
	t.Helper()
	out := make([]Result, n)
	for i := range out {
		r, err := l.Allow(context.Background(), key, limit, window)
		if err != nil {
			t.Fatalf("Allow %d: %v", i, err)
		}
		out[i] = r
	}
	return out
}

func TestLocalExactAtBoundary(t *testing.T) {
	c := newFakeClock()
	l := newLocalWithClock(0, c.now)
	for i, r := range allowN(t, l, "u1", 5, time.Minute, 5) {
		if !r.Allowed || r.Remaining != 4-i || r.RetryAfter != 0 {
			t.Fatalf("hit %d: %+v, want allowed with %d remaining", i, r, 4-i)
		}
	}
	r := allowN(t, l, "u1", 5, time.Minute, 1)[0]
	if r.Allowed || r.Remaining != 0 || r.RetryAfter != time.Minute {
		t.Fatalf("6th hit: %+v, want denied, retry after 1m", r)
	}
	// Other keys have their own budget.
	if r := allowN(t, l, "u2", 5, time.Minute, 1)[0]; !r.Allowed {
		t.Fatalf("other key denied: %+v", r)
	}
}

func TestLocalWindowRolls(t *testing.T) {
	c := newFakeClock()
	l := newLocalWithClock(0, c.now)
	const w = 60 * time.Second
	allowN(t, l, "k", 3, w, 1) // t=0
	c.add(20 * time.Second)
	allowN(t, l, "k", 3, w, 2) // t=20s twice
	c.add(10 * time.Second)    // t=30s
	r := allowN(t, l, "k", 3, w, 1)[0]
	if r.Allowed || r.RetryAfter != 30*time.Second {
		t.Fatalf("at 30s: %+v, want denied with 30s to wait for the hit at 0", r)
	}
	c.add(30*time.Second - time.Nanosecond)
	if r := allowN(t, l, "k", 3, w, 1)[0]; r.Allowed || r.RetryAfter != time.Nanosecond {
		t.Fatalf("1ns before the first hit leaves: %+v", r)
	}
	c.add(time.Nanosecond) // t=60s: the hit at 0 is exactly one window old, so out
	if r := allowN(t, l, "k", 3, w, 1)[0]; !r.Allowed || r.Remaining != 0 {
		t.Fatalf("at 60s: %+v, want allowed with 0 remaining (two hits at 20s still count)", r)
	}
	// A fixed window would reset everything here; a rolling one still
	// counts the hits at 20s until 80s.
	c.add(10 * time.Second) // t=70s
	if r := allowN(t, l, "k", 3, w, 1)[0]; r.Allowed || r.RetryAfter != 10*time.Second {
		t.Fatalf("at 70s: %+v, want denied for 10s", r)
	}
	c.add(10 * time.Second) // t=80s: the hits at 20s are out
	if r := allowN(t, l, "k", 3, w, 1)[0]; !r.Allowed || r.Remaining != 1 {
		t.Fatalf("at 80s: %+v, want allowed with 1 remaining", r)
	}
}

func TestLocalDeniedHitsDoNotExtendLockout(t *testing.T) {
	c := newFakeClock()
	l := newLocalWithClock(0, c.now)
	allowN(t, l, "k", 2, time.Second, 2)
	for range 50 {
		c.add(10 * time.Millisecond)
		if r := allowN(t, l, "k", 2, time.Second, 1)[0]; r.Allowed {
			t.Fatal("allowed while two hits are in the window")
		}
	}
	c.add(500 * time.Millisecond) // 1s after the two hits
	if r := allowN(t, l, "k", 2, time.Second, 1)[0]; !r.Allowed || r.Remaining != 1 {
		t.Fatalf("after the window: %+v", r)
	}
}

func TestLocalLoweredLimit(t *testing.T) {
	c := newFakeClock()
	l := newLocalWithClock(0, c.now)
	for range 4 {
		allowN(t, l, "k", 4, time.Minute, 1)
		c.add(time.Second)
	}
	// Hits at 0,1,2,3 s; now 4 s. With limit 2, a hit is allowed when at
	// most one remains, i.e. once the hit at 2 s has left: at 62 s.
	r := allowN(t, l, "k", 2, time.Minute, 1)[0]
	if r.Allowed || r.RetryAfter != 58*time.Second {
		t.Fatalf("lowered limit: %+v, want denied for 58s", r)
	}
}

func TestLocalEvictsIdleKeys(t *testing.T) {
	c := newFakeClock()
	l := newLocalWithClock(1000, c.now)
	for i := range 100 {
		allowN(t, l, fmt.Sprint("idle", i), 10, time.Second, 1)
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	c.add(time.Second)
	allowN(t, l, "fresh", 10, time.Second, 1)
	if n := l.Len(); n != 1 {
		t.Fatalf("Len after the window = %d, want 1 (idle keys dropped)", n)
	}
}

func TestLocalBoundedKeys(t *testing.T) {
	c := newFakeClock()
	l := newLocalWithClock(10, c.now)
	for i := range 1000 {
		allowN(t, l, fmt.Sprint("k", i), 1, time.Hour, 1)
		if n := l.Len(); n > 10 {
			t.Fatalf("Len = %d after %d keys, want at most 10", n, i+1)
		}
	}
	// The most recent keys are kept with their budget used up.
	if r := allowN(t, l, "k999", 1, time.Hour, 1)[0]; r.Allowed {
		t.Fatal("most recent key lost its count")
	}
	// The oldest were forgotten and start afresh.
	if r := allowN(t, l, "k0", 1, time.Hour, 1)[0]; !r.Allowed {
		t.Fatal("evicted key still counted")
	}
}

func TestInvalidArguments(t *testing.T) {
	l := NewLocal(0)
	long := string(make([]byte, MaxKeyLen+1))
	for _, tc := range []struct {
		key    string
		limit  int
		window time.Duration
	}{
		{"", 1, time.Second},
		{long, 1, time.Second},
		{"k", 0, time.Second},
		{"k", -3, time.Second},
		{"k", MaxLimit + 1, time.Second},
		{"k", 1, 0},
		{"k", 1, time.Microsecond},
		{"k", 1, MaxWindow + 1},
	} {
		_, err := l.Allow(context.Background(), tc.key, tc.limit, tc.window)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Allow(len %d, %d, %s) = %v, want ErrInvalidArgument", len(tc.key), tc.limit, tc.window, err)
		}
	}
}

// FuzzLocalNeverExceedsLimit drives one key with arbitrary steps of time
// and checks, against a reference list of allowed hits, that no window
// ever holds more than limit hits and that no hit is denied while there is
// room.
func FuzzLocalNeverExceedsLimit(f *testing.F) {
	f.Add(uint8(3), []byte{0, 0, 0, 0, 10, 200, 0, 0, 255, 1})
	f.Add(uint8(1), []byte{1, 2, 3, 4, 5})
	f.Add(uint8(10), make([]byte, 40))
	f.Fuzz(func(t *testing.T, limit uint8, steps []byte) {
		lim := int(limit%20) + 1
		const w = 100 * time.Millisecond
		c := newFakeClock()
		l := newLocalWithClock(0, c.now)
		var allowed []time.Time
		for i, s := range steps {
			c.add(time.Duration(s) * time.Millisecond)
			inWindow := 0
			for _, h := range allowed {
				if c.t.Sub(h) < w {
					inWindow++
				}
			}
			r, err := l.Allow(context.Background(), "k", lim, w)
			if err != nil {
				t.Fatal(err)
			}
			if r.Allowed != (inWindow < lim) {
				t.Fatalf("step %d: allowed=%v with %d of %d in window", i, r.Allowed, inWindow, lim)
			}
			if r.Allowed {
				allowed = append(allowed, c.t)
				if r.Remaining != lim-inWindow-1 {
					t.Fatalf("step %d: remaining %d, want %d", i, r.Remaining, lim-inWindow-1)
				}
			} else if r.RetryAfter <= 0 || r.RetryAfter > w {
				t.Fatalf("step %d: retry after %s", i, r.RetryAfter)
			}
		}
	})
}

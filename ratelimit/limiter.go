package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limits on Allow's arguments, which keep one key's memory bounded.
const (
	// MaxLimit is the largest limit Allow accepts: the log of one key
	// holds at most this many hits.
	MaxLimit = 10000
	// MaxKeyLen is the longest key Allow accepts, in bytes.
	MaxKeyLen = 1024
	// MinWindow is the shortest window Allow accepts; Redis expires keys
	// with millisecond precision.
	MinWindow = time.Millisecond
	// MaxWindow is the longest window Allow accepts.
	MaxWindow = 7 * 24 * time.Hour
)

// ErrInvalidArgument wraps every error about Allow's arguments, so that a
// caller can tell a bad route configuration from an unreachable Redis.
var ErrInvalidArgument = errors.New("invalid rate limit argument")

// Result is the decision about one hit.
type Result struct {
	// Allowed reports whether the hit was accepted and counted.
	Allowed bool
	// Remaining is how many more hits the key may make in the current
	// window after this one; 0 when the hit was denied.
	Remaining int
	// RetryAfter is, for a denied hit, how long until the oldest counted
	// hit leaves the window and one more hit will be allowed; 0 for an
	// allowed hit.
	RetryAfter time.Duration
}

// Limiter decides whether a key may make one more hit: it allows the hit
// iff fewer than limit hits were allowed for key in the last window, and
// then counts it.
type Limiter interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration) (Result, error)
}

// checkArgs validates Allow's arguments the same way for every limiter.
func checkArgs(key string, limit int, window time.Duration) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidArgument)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes is longer than %d", ErrInvalidArgument, len(key), MaxKeyLen)
	case limit < 1 || limit > MaxLimit:
		return fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalidArgument, limit, MaxLimit)
	case window < MinWindow || window > MaxWindow:
		return fmt.Errorf("%w: window %s is not between %s and %s", ErrInvalidArgument, window, MinWindow, MaxWindow)
	}
	return nil
}

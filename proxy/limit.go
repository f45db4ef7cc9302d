package proxy

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// limitRule is a compiled LimitConfig.
type limitRule struct {
	limit  int
	window time.Duration
	key    string
	frame  *template
}

var defaultLimitFrame = map[string]any{
	"type": "error", "error": "rate_limit_exceeded",
	"message":     "Rate limit exceeded. Maximum {limit} messages per minute.",
	"retry_after": "{retry_after}",
}

func compileLimit(lc *LimitConfig, defaultKey string) (*limitRule, error) {
	n, w, err := parseRate(lc.Rate)
	if err != nil {
		return nil, err
	}
	frame := lc.Frame
	if frame == nil {
		frame = defaultLimitFrame
	}
	t, err := compileTemplate(frame)
	if err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	key := lc.Key
	if key == "" {
		key = defaultKey
	}
	return &limitRule{limit: n, window: w, key: key, frame: t}, nil
}

// parseRate reads "30/m", "120/min", "5/s", "1000/h" or "100/90s".
func parseRate(s string) (int, time.Duration, error) {
	count, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("rate %q: want <count>/<window>, such as 30/m", s)
	}
	switch per {
	case "s", "sec", "second":
		return n, time.Second, nil
	case "m", "min", "minute":
		return n, time.Minute, nil
	case "h", "hour":
		return n, time.Hour, nil
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("rate %q: the window must be s, m, h or a duration such as 90s", s)
	}
	return n, d, nil
}

// allowFrame counts one frame against a limit and reports whether it may
// be acted on; a refused frame gets the limit's frame. Anonymous sockets
// are limited per socket, users across all their sockets.
func (c *conn) allowFrame(lr *limitRule) bool {
	if lr == nil || c.srv.limiter == nil {
		return true
	}
	who := "conn:" + c.channel
	if id := c.identity.Load(); !id.Anonymous() {
		who = "user:" + id.UserID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := c.srv.limiter.Allow(ctx, who+":"+lr.key, lr.limit, lr.window)
	if err != nil {
		// A broken limiter must not silence a socket; it is logged.
		c.log.Warn("rate limit check failed", "err", err)
		return true
	}
	if res.Allowed {
		return true
	}
	c.srv.metrics.RateLimited.WithLabelValues(c.label).Inc()
	retry := int64(math.Ceil(res.RetryAfter.Seconds()))
	sc := func(name string) (any, bool) {
		switch name {
		case "limit":
			return int64(lr.limit), true
		case "window":
			return int64(lr.window / time.Second), true
		case "retry_after":
			return retry, true
		}
		return c.scope(nil, nil)(name)
	}
	c.sendJSON(lr.frame.render(sc))
	return false
}

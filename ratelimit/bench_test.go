package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// BenchmarkRedisAllow measures one decision through a real redis-server:
// one hot key at the Kibray status limit (120/min, mostly denied once
// full), and many users each under their limit.
func BenchmarkRedisAllow(b *testing.B) {
	srv := testenv.StartRedis(b)
	l := NewRedis(newClient(b, srv), DefaultPrefix)
	ctx := context.Background()
	b.Run("hot_key", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Allow(ctx, "hot", 120, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("many_keys_parallel", func(b *testing.B) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				key := "user:" + strconv.FormatInt(next.Add(1)%10000, 10)
				if _, err := l.Allow(ctx, key, 120, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkFallbackAllow is the redis backend as New builds it, with
// Redis up: the cost over BenchmarkRedisAllow is the timeout context.
func BenchmarkFallbackAllow(b *testing.B) {
	srv := testenv.StartRedis(b)
	f := NewFallback(NewRedis(newClient(b, srv), DefaultPrefix), NewLocal(0), FallbackOptions{})
	ctx := context.Background()
	for b.Loop() {
		if _, err := f.Allow(ctx, "hot", 120, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalAllow measures an in-process decision, for one key and for
// many keys with eviction at work.
func BenchmarkLocalAllow(b *testing.B) {
	ctx := context.Background()
	b.Run("hot_key", func(b *testing.B) {
		l := NewLocal(0)
		for b.Loop() {
			if _, err := l.Allow(ctx, "hot", 120, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("many_keys_evicting", func(b *testing.B) {
		l := NewLocal(1000)
		keys := make([]string, 10000)
		for i := range keys {
			keys[i] = "user:" + strconv.Itoa(i)
		}
		i := 0
		for b.Loop() {
			if _, err := l.Allow(ctx, keys[i%len(keys)], 120, time.Minute); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

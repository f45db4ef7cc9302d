package ratelimit

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/redis/go-redis/v9"
)

// Service is a Limiter that owns resources (a Redis client) to release.
type Service interface {
	Limiter
	io.Closer
}

// Hooks are called as the redis backend falls back and recovers; see
// FallbackOptions. Either may be nil.
type Hooks struct {
	OnFallback func(err error)
	OnRecover  func()
}

// New builds the limiter cfg describes: a Fallback over Redis and a Local
// limiter for the redis backend, a Local limiter for the local backend.
// cfg must have passed SetDefaults and Validate. It does not contact
// Redis: an unreachable Redis only makes the first hits local. The redis
// backend's Service also has a Stats() FallbackStats method.
func New(cfg Config, logger *slog.Logger, hooks Hooks) (Service, error) {
	local := NewLocal(cfg.LocalMaxKeys)
	switch cfg.Backend {
	case BackendLocal:
		return localService{local}, nil
	case BackendRedis:
	default:
		return nil, fmt.Errorf("rate limit backend %q unknown", cfg.Backend)
	}
	spec, err := bridge.ParseHost(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("rate limit host: %w", err)
	}
	client := spec.NewClient(nil)
	fb := NewFallback(NewRedis(client, cfg.Prefix), local, FallbackOptions{
		Timeout:       cfg.Timeout,
		ProbeInterval: cfg.ProbeInterval,
		OnFallback:    hooks.OnFallback,
		OnRecover:     hooks.OnRecover,
		Logger:        logger,
	})
	return &redisService{Fallback: fb, client: client}, nil
}

type localService struct{ *Local }

func (localService) Close() error { return nil }

// redisService is a Fallback that owns its Redis client.
type redisService struct {
	*Fallback
	client *redis.Client
}

func (s *redisService) Close() error { return s.client.Close() }

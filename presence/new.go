package presence

import (
	"fmt"
	"log/slog"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// Open builds presence from cfg, with its own Redis client for cfg.Host,
// which Close releases. cfg must have passed SetDefaults and Validate. It
// does not contact Redis.
func Open(cfg Config, logger *slog.Logger) (*Presence, error) {
	spec, err := bridge.ParseHost(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("presence host: %w", err)
	}
	client := spec.NewClient(nil)
	p, err := New(client, cfg, logger)
	if err != nil {
		client.Close()
		return nil, err
	}
	p.owned = client
	return p, nil
}

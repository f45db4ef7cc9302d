// Command channels-sidecar serves a Django app's WebSockets: it takes the
// /ws/* paths, authenticates sockets as Django would, speaks the
// channels_redis protocol with Django, and proxies every other request to
// Django.
//
// Usage:
//
//	channels-sidecar [--config FILE]          serve (no file: the embedded demo)
//	channels-sidecar check --config FILE      validate and print the effective config
//	channels-sidecar version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/config"
	"github.com/channels-sidecar/channels-sidecar/hooks"
	"github.com/channels-sidecar/channels-sidecar/metrics"
	"github.com/channels-sidecar/channels-sidecar/presence"
	"github.com/channels-sidecar/channels-sidecar/proxy"
	"github.com/channels-sidecar/channels-sidecar/ratelimit"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "check" || args[0] == "version" || args[0] == "serve") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("channels-sidecar "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("SIDECAR_CONFIG"), "YAML config file (default: the embedded demo config; env SIDECAR_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "channels-sidecar", version)
		return 0
	case "check":
		cfg, err := config.Load(*configPath, os.LookupEnv)
		if err != nil {
			fmt.Fprintln(stderr, "invalid config:", err)
			return 1
		}
		out, err := config.Effective(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "printing config:", err)
			return 1
		}
		fmt.Fprintf(stdout, "# %s is valid; effective configuration with defaults:\n%s", name(*configPath), out)
		return 0
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, "invalid config:", err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	if err := serve(cfg, log); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}

func name(path string) string {
	if path == "" {
		return "the embedded default config"
	}
	return path
}

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve wires the packages together and runs until SIGINT or SIGTERM.
func serve(cfg *config.Config, log *slog.Logger) error {
	m := metrics.New()
	hub := proxy.NewHub(func() { m.EventsDropped.WithLabelValues("no_connection").Inc() })
	layerCfg := cfg.ChannelLayer
	layerCfg.Observer = metrics.NewLayerObserver(m)
	layer, err := bridge.New(layerCfg, hub.Deliver, log.With("component", "layer"))
	if err != nil {
		return fmt.Errorf("channel layer: %w", err)
	}
	hub.SetLayer(layer)
	if src, ok := layer.(bridge.StatsSource); ok {
		metrics.RegisterLayerStats(m, src)
	}
	var authn proxy.Authenticator
	if cfg.AuthUsed() {
		a, err := auth.New(cfg.Auth, log.With("component", "auth"))
		if err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		defer a.Close()
		authn = a
	}
	var hookClient proxy.HookCaller
	if cfg.Hooks.Enabled() {
		hc, err := hooks.New(cfg.Hooks, log.With("component", "hooks"))
		if err != nil {
			return fmt.Errorf("hooks: %w", err)
		}
		defer hc.Close()
		hookClient = hc
	}
	var limiter ratelimit.Limiter
	if cfg.LimitsUsed() {
		rl, err := ratelimit.New(cfg.RateLimit, log.With("component", "ratelimit"), ratelimit.Hooks{
			OnFallback: func(error) { m.RateLimitFallbacks.Inc() },
		})
		if err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
		defer rl.Close()
		limiter = rl
	}
	var tracker *presence.Presence
	if cfg.PresenceUsed() {
		tracker, err = presence.Open(cfg.Presence, log.With("component", "presence"))
		if err != nil {
			return fmt.Errorf("presence: %w", err)
		}
		defer tracker.Close()
	}
	var subprotocols []string
	if cfg.Auth.TokenSubprotocol != "" {
		subprotocols = []string{cfg.Auth.TokenSubprotocol}
	}
	endpoints := metrics.NewEndpoints(cfg.Metrics, m, map[string]metrics.ReadyCheck{"channel_layer": layer.Ready})
	deps := proxy.Deps{
		Layer: layer, Hub: hub, Auth: authn, Metrics: m, Endpoints: endpoints, Log: log,
		Subprotocols: subprotocols, Hooks: hookClient, Limiter: limiter,
		AllowedHosts: cfg.Auth.OriginHosts(),
	}
	if tracker != nil {
		deps.Presence = tracker
	}
	srv, err := proxy.NewServer(cfg.Config, deps)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := layer.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("channel layer stopped", "err", err)
			stop()
		}
	}()
	if tracker != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = tracker.Run(ctx, presence.Hooks{OnLeft: srv.PresenceLeft})
		}()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("channels-sidecar listening", "url", "http://"+ln.Addr().String()+"/", "version", version,
		"layer", cfg.ChannelLayer.Backend, "routes", len(cfg.Routes), "upstream", cfg.Upstream.URL)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stop()
		wg.Wait()
		return fmt.Errorf("server: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	wg.Wait()
	return layer.Close()
}

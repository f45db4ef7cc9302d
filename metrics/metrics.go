// Package metrics holds the sidecar's Prometheus collectors and serves
// /metrics, /healthz and /readyz.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Config sets where the operational endpoints live.
type Config struct {
	// Path of the Prometheus endpoint. Default /metrics.
	Path string `yaml:"path"`
	// HealthPath answers 200 while the process runs. Default /healthz.
	HealthPath string `yaml:"health_path"`
	// ReadyPath answers 200 only while the channel layer is reachable.
	// Default /readyz.
	ReadyPath string `yaml:"ready_path"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Path == "" {
		c.Path = "/metrics"
	}
	if c.HealthPath == "" {
		c.HealthPath = "/healthz"
	}
	if c.ReadyPath == "" {
		c.ReadyPath = "/readyz"
	}
}

// Metrics is the set of collectors, registered on a registry of its own
// so that two sidecars in one test process do not collide.
type Metrics struct {
	Registry *prometheus.Registry

	// ConnectionsOpen counts open WebSocket connections by route pattern.
	ConnectionsOpen *prometheus.GaugeVec
	// Connections counts accepted WebSocket connections by route pattern.
	Connections *prometheus.CounterVec
	// HandshakesRejected counts refused upgrades by reason.
	HandshakesRejected *prometheus.CounterVec
	// AuthFailures counts refused credentials by reason.
	AuthFailures *prometheus.CounterVec
	// FramesIn counts frames received from clients by route pattern.
	FramesIn *prometheus.CounterVec
	// FramesOut counts frames written to clients by route pattern.
	FramesOut *prometheus.CounterVec
	// FrameErrors counts inbound frames answered with an error frame, by
	// reason.
	FrameErrors *prometheus.CounterVec
	// EventsDropped counts group events not turned into frames, by reason.
	EventsDropped *prometheus.CounterVec
	// SlowClients counts sockets closed because their send queue filled.
	SlowClients prometheus.Counter
	// LayerReceived counts channel-layer events handed to sockets: an event
	// for a group of n local sockets counts n.
	LayerReceived prometheus.Counter
	// LayerErrors counts failed channel-layer operations by operation.
	LayerErrors *prometheus.CounterVec
	// UpstreamResponses counts proxied HTTP responses by status class.
	UpstreamResponses *prometheus.CounterVec
	// HookFailures counts failed calls to Django hooks by kind.
	HookFailures *prometheus.CounterVec
	// RateLimited counts inbound frames refused by a rate limit, by route.
	RateLimited *prometheus.CounterVec
	// RateLimitFallbacks counts limit checks answered locally because
	// Redis was unreachable.
	RateLimitFallbacks prometheus.Counter
}

// New builds the collectors, with Go runtime and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		ConnectionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sidecar_connections_open", Help: "Open WebSocket connections by route.",
		}, []string{"route"}),
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_connections_total", Help: "Accepted WebSocket connections by route.",
		}, []string{"route"}),
		HandshakesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_handshakes_rejected_total", Help: "Refused WebSocket handshakes by reason.",
		}, []string{"reason"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_auth_failures_total", Help: "Refused credentials by reason.",
		}, []string{"reason"}),
		FramesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_frames_in_total", Help: "Frames received from clients by route.",
		}, []string{"route"}),
		FramesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_frames_out_total", Help: "Frames queued to clients by route.",
		}, []string{"route"}),
		FrameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_frame_errors_total", Help: "Inbound frames answered with an error frame, by reason.",
		}, []string{"reason"}),
		EventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_events_dropped_total", Help: "Group events not turned into frames, by reason.",
		}, []string{"reason"}),
		SlowClients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidecar_slow_clients_disconnected_total", Help: "Sockets closed because their send queue was full.",
		}),
		LayerReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidecar_layer_messages_received_total", Help: "Channel layer events handed to sockets, one per socket that gets the event.",
		}),
		LayerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_layer_errors_total", Help: "Failed channel layer operations by operation.",
		}, []string{"op"}),
		UpstreamResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_upstream_responses_total", Help: "Proxied HTTP responses by status class.",
		}, []string{"class"}),
		HookFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_hook_failures_total", Help: "Failed calls to Django hooks by kind.",
		}, []string{"kind"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_rate_limited_total", Help: "Inbound frames refused by a rate limit, by route.",
		}, []string{"route"}),
		RateLimitFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidecar_rate_limit_fallbacks_total", Help: "Rate limit checks answered by the local limiter because Redis was unreachable.",
		}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.ConnectionsOpen, m.Connections, m.HandshakesRejected, m.AuthFailures,
		m.FramesIn, m.FramesOut, m.FrameErrors, m.EventsDropped, m.SlowClients,
		m.LayerReceived, m.LayerErrors, m.UpstreamResponses, m.HookFailures, m.RateLimited, m.RateLimitFallbacks,
	)
	return m
}

// StatusClass turns an HTTP status into a low-cardinality label: "2xx".
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return string(rune('0'+status/100)) + "xx"
}

package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// LayerObserver feeds the channel layer's live measurements (lag, queue
// depth) into Prometheus. It implements bridge.Observer.
type LayerObserver struct {
	lag   prometheus.Histogram
	depth *prometheus.GaugeVec
}

var _ bridge.Observer = (*LayerObserver)(nil)

// NewLayerObserver registers the layer's histogram and gauges on m.
func NewLayerObserver(m *Metrics) *LayerObserver {
	o := &LayerObserver{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sidecar_layer_lag_seconds",
			Help:    "Publish-to-receive delay of channel layer messages (publisher's clock to ours).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sidecar_layer_queue_depth",
			Help: "Messages waiting in this process's channel layer key, by Redis host (ring index).",
		}, []string{"host"}),
	}
	m.Registry.MustRegister(o.lag, o.depth)
	return o
}

// ObserveLag records one message's delay.
func (o *LayerObserver) ObserveLag(seconds float64) { o.lag.Observe(seconds) }

// SetQueueDepth records the backlog on one host.
func (o *LayerObserver) SetQueueDepth(host int, n int) {
	o.depth.WithLabelValues(strconv.Itoa(host)).Set(float64(n))
}

// layerStats exports a layer's cumulative counters at scrape time.
type layerStats struct {
	src   bridge.StatsSource
	descs map[string]*prometheus.Desc
	up    *prometheus.Desc
}

var layerCounters = []struct {
	name, help string
	get        func(bridge.Stats) uint64
}{
	{"sidecar_layer_sent_total", "Messages written by send().", func(s bridge.Stats) uint64 { return s.Sent }},
	{"sidecar_layer_group_sent_total", "Channel keys written by group_send().", func(s bridge.Stats) uint64 { return s.GroupSent }},
	{"sidecar_layer_received_total", "Messages taken from the backend.", func(s bridge.Stats) uint64 { return s.Received }},
	{"sidecar_layer_decode_errors_total", "Received messages that could not be decoded (bad msgpack, wrong key, expired token); dropped.", func(s bridge.Stats) uint64 { return s.DecodeErrors }},
	{"sidecar_layer_dropped_unknown_total", "Deliveries dropped because they named no channel of this process.", func(s bridge.Stats) uint64 { return s.DroppedUnknown }},
	{"sidecar_layer_dropped_expired_total", "Messages dropped because they waited longer than expiry.", func(s bridge.Stats) uint64 { return s.DroppedExpired }},
	{"sidecar_layer_over_capacity_total", "Sends refused and group_send keys skipped because the channel was full.", func(s bridge.Stats) uint64 { return s.OverCapacity }},
	{"sidecar_layer_backend_errors_total", "Failed receive attempts (backend unreachable).", func(s bridge.Stats) uint64 { return s.BackendErrors }},
	{"sidecar_layer_group_refreshes_total", "Re-additions of group memberships (periodic, and after a backend restart).", func(s bridge.Stats) uint64 { return s.GroupRefreshes }},
}

// RegisterLayerStats exports src's counters on m.
func RegisterLayerStats(m *Metrics, src bridge.StatsSource) {
	ls := &layerStats{src: src, descs: map[string]*prometheus.Desc{},
		up: prometheus.NewDesc("sidecar_layer_host_up", "Whether the receive loop reaches the Redis host (ring index).", []string{"host"}, nil)}
	for _, c := range layerCounters {
		ls.descs[c.name] = prometheus.NewDesc(c.name, c.help, nil, nil)
	}
	m.Registry.MustRegister(ls)
}

func (ls *layerStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range ls.descs {
		ch <- d
	}
	ch <- ls.up
}

func (ls *layerStats) Collect(ch chan<- prometheus.Metric) {
	s := ls.src.Stats()
	for _, c := range layerCounters {
		ch <- prometheus.MustNewConstMetric(ls.descs[c.name], prometheus.CounterValue, float64(c.get(s)))
	}
	for i, h := range s.Hosts {
		v := 0.0
		if h.Up {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(ls.up, prometheus.GaugeValue, v, strconv.Itoa(i))
	}
}

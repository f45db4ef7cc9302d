package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// ReadyCheck reports whether a dependency is usable.
type ReadyCheck func(ctx context.Context) error

// Endpoints serves the operational paths of Config.
type Endpoints struct {
	cfg     Config
	prom    fasthttp.RequestHandler
	checks  map[string]ReadyCheck
	timeout time.Duration
}

// NewEndpoints serves m's registry and the named readiness checks.
func NewEndpoints(cfg Config, m *Metrics, checks map[string]ReadyCheck) *Endpoints {
	cfg.SetDefaults()
	return &Endpoints{
		cfg:     cfg,
		prom:    fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})),
		checks:  checks,
		timeout: 2 * time.Second,
	}
}

// Serve answers the request and reports true if its path is one of the
// operational paths.
func (e *Endpoints) Serve(ctx *fasthttp.RequestCtx) bool {
	switch string(ctx.Path()) {
	case e.cfg.Path:
		e.prom(ctx)
	case e.cfg.HealthPath:
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case e.cfg.ReadyPath:
		e.ready(ctx)
	default:
		return false
	}
	return true
}

func (e *Endpoints) ready(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	ctx.SetContentType("text/plain; charset=utf-8")
	ok := true
	for name, check := range e.checks {
		if err := check(c); err != nil {
			ok = false
			ctx.WriteString(name + ": " + err.Error() + "\n")
		} else {
			ctx.WriteString(name + ": ok\n")
		}
	}
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
}

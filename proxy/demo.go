package proxy

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

//go:embed demo.html
var demoPage []byte

// serveDemo serves the demo chat page, which connects to the first route.
func (s *Server) serveDemo(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(demoPage)
}

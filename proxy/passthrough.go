package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// ptReadBufferSize bounds the upstream's response header block. fasthttp's
// 4 KiB default is too small for a Django page that sets several cookies
// and a long Content-Security-Policy.
const ptReadBufferSize = 16 << 10

// Passthrough is the reverse proxy for every request that is not a
// WebSocket route: it forwards the request to the Django upstream and
// streams the answer back.
//
// The request is forwarded with its method, path and raw query as the
// client sent them, every end-to-end header (Cookie headers byte for byte),
// and the client's Host. Hop-by-hop headers (Connection and the headers it
// names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade) and
// Expect, which the server has already answered, are dropped.
// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host are set as
// UpstreamConfig.TrustedProxies describes. The response comes back with
// its status, reason phrase and headers, every Set-Cookie kept as a
// separate header; Date is the sidecar's own.
//
// Bodies are streamed both ways. For the request side that needs the
// fasthttp.Server to set StreamRequestBody, and DisablePreParseMultipartForm
// so that uploads are not parsed and re-encoded on the way; without them
// the server buffers whole request bodies up to its MaxRequestBodySize.
//
// When the upstream cannot be reached the client gets 502, when it does not
// answer within UpstreamConfig.Timeout 504, both with a short plain-text
// body, and the failure is logged as a warning.
type Passthrough struct {
	// OnResult, when set before the first request, is called once per
	// request with the status code sent to the client: the upstream's, or
	// the 4xx/5xx the passthrough answered itself. It runs on the request's
	// goroutine and must be quick.
	OnResult func(status int)

	cfg     UpstreamConfig
	log     *slog.Logger
	target  ptUpstreamTarget
	trusted []netip.Prefix
	client  *fasthttp.HostClient // nil when no upstream is configured
	closed  atomic.Bool
}

// NewPassthrough checks cfg (after filling its defaults) and returns a
// passthrough to the upstream it names. A nil log discards log records.
func NewPassthrough(cfg UpstreamConfig, log *slog.Logger) (*Passthrough, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("passthrough: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trusted, err := cfg.ptTrusted()
	if err != nil {
		return nil, fmt.Errorf("passthrough: upstream.trusted_proxies: %w", err)
	}
	p := &Passthrough{cfg: cfg, log: log, trusted: trusted}
	if cfg.URL == "" {
		return p, nil
	}
	if p.target, err = cfg.ptTarget(); err != nil {
		return nil, fmt.Errorf("passthrough: upstream.url: %w", err)
	}
	p.client = &fasthttp.HostClient{
		Addr:                     p.target.addr,
		IsTLS:                    p.target.isTLS,
		NoDefaultUserAgentHeader: true,
		MaxConns:                 cfg.MaxConns,
		// Waiting for a free connection is bounded by the request's own
		// timeout, so a burst queues instead of failing at once.
		MaxConnWaitTimeout:  cfg.Timeout,
		MaxIdleConnDuration: cfg.IdleConnTimeout,
		ReadBufferSize:      ptReadBufferSize,
		// The path goes to Django exactly as the client wrote it.
		DisablePathNormalizing: true,
		StreamResponseBody:     true,
		// Request and response bodies may hold credentials.
		SecureErrorLogMessage: true,
	}
	return p, nil
}

// Close drops the idle upstream connections. Requests still running finish;
// requests that arrive afterwards are answered 503.
func (p *Passthrough) Close() {
	p.closed.Store(true)
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
}

var (
	ptErrRequestTooLarge  = errors.New("request body larger than upstream.max_body_size")
	ptErrResponseTooLarge = errors.New("response body larger than upstream.max_body_size")
)

// ServeHTTP forwards one request to the upstream and streams its response
// into ctx. It implements fasthttp.RequestHandler.
func (p *Passthrough) ServeHTTP(ctx *fasthttp.RequestCtx) {
	if p.client == nil {
		p.ptFail(ctx, fasthttp.StatusBadGateway, "no upstream configured", nil)
		return
	}
	if p.closed.Load() {
		p.ptFail(ctx, fasthttp.StatusServiceUnavailable, "shutting down", nil)
		return
	}
	if cl := ctx.Request.Header.ContentLength(); int64(cl) > p.cfg.MaxBodySize {
		p.ptFail(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large", nil)
		// The body is never read, so the connection cannot carry another
		// request. Set after ptFail, which resets the response.
		ctx.SetConnectionClose()
		return
	}

	req := fasthttp.AcquireRequest()
	body := p.ptBuildRequest(ctx, req)
	resp := fasthttp.AcquireResponse()
	// An absent Content-Type must stay absent, not become text/plain.
	resp.Header.SetNoDefaultContentType(true)
	err := p.client.DoTimeout(req, resp, p.cfg.Timeout)
	fasthttp.ReleaseRequest(req)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		p.ptFailExchange(ctx, body, err)
		if body != nil && !body.done {
			// What is left of the request body is unread; draining it
			// could take long, so the client connection is not reused.
			ctx.SetConnectionClose()
		}
		return
	}
	p.ptRespond(ctx, resp)
}

// ptFailExchange answers a request whose exchange with the upstream failed,
// telling the client's faults (body too large or broken off) from the
// upstream's.
func (p *Passthrough) ptFailExchange(ctx *fasthttp.RequestCtx, body *ptRequestBody, err error) {
	switch {
	case body != nil && body.tooLarge:
		p.ptFail(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large", nil)
	case body != nil && body.readErr != nil:
		p.log.Debug("client request body broke off",
			"method", string(ctx.Method()), "path", string(ctx.Path()), "error", body.readErr)
		p.ptFail(ctx, fasthttp.StatusBadRequest, "request body incomplete", nil)
	case ptIsTimeout(err):
		p.ptFail(ctx, fasthttp.StatusGatewayTimeout, "upstream did not answer in time", err)
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		p.ptFail(ctx, fasthttp.StatusServiceUnavailable, "too many upstream connections", err)
	default:
		p.ptFail(ctx, fasthttp.StatusBadGateway, "upstream unreachable", err)
	}
}

// ptFail answers the client with a short plain-text error and, when err is
// set, logs the upstream failure. The query is not logged: it may carry a
// token.
func (p *Passthrough) ptFail(ctx *fasthttp.RequestCtx, status int, msg string, err error) {
	if err != nil {
		p.log.Warn("upstream request failed",
			"upstream", p.target.addr,
			"method", string(ctx.Method()),
			"path", string(ctx.Path()),
			"status", status,
			"error", err)
	}
	ctx.Error(fmt.Sprintf("%d %s: %s\n", status, fasthttp.StatusMessage(status), msg), status)
	if p.OnResult != nil {
		p.OnResult(status)
	}
}

// ptBuildRequest fills req from the client's request. It returns the
// wrapper of a streamed request body, or nil when the body was in memory.
func (p *Passthrough) ptBuildRequest(ctx *fasthttp.RequestCtx, req *fasthttp.Request) *ptRequestBody {
	src := &ctx.Request.Header
	// Raw mode writes exactly the headers added below, so a Cookie header
	// is not parsed and re-encoded (fasthttp drops cookie values holding
	// quotes or backslashes, which Django's own cookies can contain).
	req.Header.DisableSpecialHeader()
	req.Header.SetMethodBytes(src.Method())
	req.SetRequestURIBytes(ptRequestURI(ctx))
	req.UseHostHeader = true
	if p.target.isTLS {
		req.URI().SetScheme("https")
	}

	if src.IsHead() {
		// Some upstreams, Django 3.2's runserver among them, send a body
		// after a HEAD response anyway; a connection that carried a HEAD is
		// not reused, so those bytes are never read as the next response.
		req.SetConnectionClose()
		req.Header.Add(fasthttp.HeaderConnection, "close")
	}

	host := src.Host()
	if len(host) == 0 {
		host = []byte(p.target.host)
	}
	req.Header.AddBytesKV([]byte(fasthttp.HeaderHost), host)

	peerTrusted := p.ptPeerTrusted(ctx)
	connTokens := ptConnectionTokens(src.All())
	var priorXFF, parsedCookie []byte
	hasProto, hasFwdHost := false, false
	for k, v := range src.All() {
		switch {
		case ptIsHopByHop(k) || ptHeaderListed(connTokens, k):
			continue
		case ptEqualFold(k, fasthttp.HeaderHost), ptEqualFold(k, fasthttp.HeaderContentLength),
			ptEqualFold(k, fasthttp.HeaderExpect):
			// Host is set above, the body framing by fasthttp below, and
			// the server has already answered any Expect: 100-continue.
			continue
		case ptEqualFold(k, fasthttp.HeaderCookie):
			parsedCookie = append(parsedCookie[:0], v...)
			continue
		case ptIsForwarding(k):
			if !peerTrusted {
				continue
			}
			if ptEqualFold(k, fasthttp.HeaderXForwardedFor) {
				priorXFF = ptAppendList(priorXFF, v)
				continue
			}
			hasProto = hasProto || ptEqualFold(k, fasthttp.HeaderXForwardedProto)
			hasFwdHost = hasFwdHost || ptEqualFold(k, fasthttp.HeaderXForwardedHost)
		}
		req.Header.AddBytesKV(k, v)
	}

	// Cookie headers go out as the client wrote them; the parsed form is
	// only used when the request has no raw header block.
	var rawCookie []byte
	rawSeen := false
	for k, v := range src.AllInOrder() {
		rawSeen = true
		if ptEqualFold(k, fasthttp.HeaderCookie) {
			rawCookie = ptAppendCookie(rawCookie, v)
		}
	}
	if !rawSeen {
		rawCookie = parsedCookie
	}
	if len(rawCookie) > 0 && !ptHeaderListed(connTokens, []byte(fasthttp.HeaderCookie)) {
		req.Header.AddBytesKV([]byte(fasthttp.HeaderCookie), rawCookie)
	}

	if peer, ok := ptPeerAddr(ctx); ok {
		req.Header.AddBytesKV([]byte(fasthttp.HeaderXForwardedFor), ptAppendList(priorXFF, []byte(peer.String())))
	} else if len(priorXFF) > 0 {
		req.Header.AddBytesKV([]byte(fasthttp.HeaderXForwardedFor), priorXFF)
	}
	if !hasProto {
		proto := "http"
		if ctx.IsTLS() {
			proto = "https"
		}
		req.Header.Add(fasthttp.HeaderXForwardedProto, proto)
	}
	if !hasFwdHost && len(src.Host()) > 0 {
		req.Header.AddBytesKV([]byte(fasthttp.HeaderXForwardedHost), src.Host())
	}

	if stream := ctx.RequestBodyStream(); stream != nil {
		cl := src.ContentLength()
		b := &ptRequestBody{src: stream, left: p.cfg.MaxBodySize, want: int64(max(cl, -1))}
		req.SetBodyStream(b, cl)
		return b
	}
	if body := ctx.Request.Body(); len(body) > 0 || !ptNoBodyMethod(src) {
		req.SetBodyRaw(body)
	}
	return nil
}

// ptRespond copies the upstream's status and headers into ctx and hands
// the response body to the server as a stream. It owns resp from here on.
func (p *Passthrough) ptRespond(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) {
	cl := resp.Header.ContentLength()
	if int64(cl) > p.cfg.MaxBodySize {
		fasthttp.ReleaseResponse(resp)
		p.ptFail(ctx, fasthttp.StatusBadGateway, "upstream response too large",
			fmt.Errorf("%w: content-length %d", ptErrResponseTooLarge, cl))
		return
	}
	status := resp.StatusCode()
	out := &ctx.Response
	out.SetStatusCode(status)
	out.Header.SetStatusMessage(resp.Header.StatusMessage())
	connTokens := ptConnectionTokens(resp.Header.All())
	hasType := false
	for k, v := range resp.Header.All() {
		switch {
		case ptIsHopByHop(k) || ptHeaderListed(connTokens, k),
			ptEqualFold(k, fasthttp.HeaderContentLength):
			continue
		case ptEqualFold(k, fasthttp.HeaderContentType):
			hasType = true
		}
		// Add keeps every Set-Cookie as its own header, same name or not.
		out.Header.AddBytesKV(k, v)
	}
	if !hasType {
		out.Header.SetNoDefaultContentType(true)
	}
	if p.OnResult != nil {
		p.OnResult(status)
	}

	stream := resp.BodyStream()
	if stream == nil {
		// HEAD, 204, 304: the upstream's length is metadata only.
		if cl >= 0 {
			out.Header.SetContentLength(cl)
		}
		fasthttp.ReleaseResponse(resp)
		return
	}
	if cl < 0 {
		cl = -1 // chunked to the client whether the upstream chunked or closed
	}
	out.SetBodyStream(&ptResponseBody{
		p:    p,
		resp: resp,
		src:  stream,
		path: string(ctx.Path()),
	}, cl)
}

// ptRequestBody feeds the client's streamed body to the upstream and stops
// it at the size limit.
type ptRequestBody struct {
	src      io.Reader
	left     int64 // bytes still allowed
	want     int64 // announced length, or -1 for chunked
	read     int64
	tooLarge bool
	done     bool
	readErr  error // why reading from the client failed
}

// Read implements io.Reader.
func (b *ptRequestBody) Read(buf []byte) (int, error) {
	n, err := b.src.Read(buf)
	b.read += int64(n)
	b.left -= int64(n)
	if b.left < 0 {
		b.tooLarge = true
		return 0, ptErrRequestTooLarge
	}
	switch {
	case err == io.EOF && b.want >= 0 && b.read < b.want:
		// fasthttp ends a request stream quietly when the client closes early.
		b.readErr = fmt.Errorf("client sent %d of %d body bytes: %w", b.read, b.want, io.ErrUnexpectedEOF)
		err = b.readErr
	case err == io.EOF:
		b.done = true
	case err != nil:
		b.readErr = err
	}
	return n, err
}

// ptResponseBody is the upstream's response body as the server writes it to
// the client. Closing it releases the upstream connection.
type ptResponseBody struct {
	p      *Passthrough
	resp   *fasthttp.Response
	src    io.Reader
	path   string
	n      int64
	err    error // why reading from the upstream failed
	closed bool
}

// Read implements io.Reader.
func (b *ptResponseBody) Read(buf []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(buf)
	b.n += int64(n)
	if b.n > b.p.cfg.MaxBodySize {
		b.err = fmt.Errorf("%w: more than %d bytes", ptErrResponseTooLarge, b.p.cfg.MaxBodySize)
		return 0, b.err
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// CloseWithError implements fasthttp.ReadCloserWithError; the server calls
// it once the body is written, with the error that stopped the write.
func (b *ptResponseBody) CloseWithError(werr error) error {
	if b.closed {
		return nil
	}
	b.closed = true
	cause := b.err
	if cause == nil {
		cause = werr
	}
	if rc, ok := b.src.(fasthttp.ReadCloserWithError); ok {
		// A non-nil cause keeps a half-read connection out of the pool.
		_ = rc.CloseWithError(cause)
	}
	fasthttp.ReleaseResponse(b.resp)
	b.resp, b.src = nil, nil
	switch {
	case b.err != nil:
		b.p.log.Warn("upstream response cut off",
			"upstream", b.p.target.addr, "path", b.path, "bytes", b.n, "error", b.err)
	case werr != nil:
		// The client went away; nothing is wrong upstream.
		b.p.log.Debug("client stopped reading the response",
			"path", b.path, "bytes", b.n, "error", werr)
	}
	return nil
}

// ptRequestURI is the request target sent upstream: the client's own bytes
// in origin form, or path and query taken out of an absolute-form target.
func ptRequestURI(ctx *fasthttp.RequestCtx) []byte {
	raw := ctx.Request.Header.RequestURI()
	if len(raw) > 0 && (raw[0] == '/' || (len(raw) == 1 && raw[0] == '*')) {
		return raw
	}
	u := ctx.URI()
	out := append([]byte(nil), u.PathOriginal()...)
	if len(out) == 0 {
		out = append(out, '/')
	}
	if q := u.QueryString(); len(q) > 0 {
		out = append(out, '?')
		out = append(out, q...)
	}
	return out
}

// ptPeerAddr is the address of the connection's other end.
func ptPeerAddr(ctx *fasthttp.RequestCtx) (netip.Addr, bool) {
	tcp, ok := ctx.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(tcp.IP)
	if !ok || !a.IsValid() || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// ptPeerTrusted reports whether the peer is a configured trusted proxy.
func (p *Passthrough) ptPeerTrusted(ctx *fasthttp.RequestCtx) bool {
	if len(p.trusted) == 0 {
		return false
	}
	a, ok := ptPeerAddr(ctx)
	if !ok {
		return false
	}
	for _, pfx := range p.trusted {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// ptIsTimeout reports whether err is a deadline, fasthttp's or the network's.
func ptIsTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// ptNoBodyMethod reports methods whose requests carry no body unless one
// was sent, so no Content-Length: 0 is invented for them.
func ptNoBodyMethod(h *fasthttp.RequestHeader) bool {
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsDelete() || h.IsTrace()
}

// ptIsHopByHop reports the headers that describe one connection and must
// not be forwarded (RFC 9110 section 7.6.1). "Proxy" itself is dropped as
// well: CGI-style servers turn it into HTTP_PROXY.
func ptIsHopByHop(k []byte) bool {
	switch {
	case ptEqualFold(k, fasthttp.HeaderConnection),
		ptEqualFold(k, fasthttp.HeaderKeepAlive),
		ptEqualFold(k, fasthttp.HeaderTE),
		ptEqualFold(k, fasthttp.HeaderTrailer),
		ptEqualFold(k, fasthttp.HeaderTransferEncoding),
		ptEqualFold(k, fasthttp.HeaderUpgrade),
		ptEqualFold(k, "Proxy"):
		return true
	}
	return len(k) > len("Proxy-") && ptEqualFold(k[:len("Proxy-")], "Proxy-")
}

// ptIsForwarding reports the headers that claim who the client is and how
// it connected; only a trusted proxy may set them.
func ptIsForwarding(k []byte) bool {
	return ptEqualFold(k, fasthttp.HeaderForwarded) || ptEqualFold(k, "X-Real-Ip") ||
		(len(k) > len("X-Forwarded-") && ptEqualFold(k[:len("X-Forwarded-")], "X-Forwarded-"))
}

// ptConnectionTokens collects the header names listed in Connection, which
// are hop-by-hop for this connection.
func ptConnectionTokens(all iter.Seq2[[]byte, []byte]) [][]byte {
	var out [][]byte
	for k, v := range all {
		if !ptEqualFold(k, fasthttp.HeaderConnection) {
			continue
		}
		for tok := range bytes.SplitSeq(v, []byte(",")) {
			if tok = bytes.TrimSpace(tok); len(tok) > 0 {
				out = append(out, append([]byte(nil), tok...))
			}
		}
	}
	return out
}

// ptHeaderListed reports whether k is one of the Connection tokens.
func ptHeaderListed(tokens [][]byte, k []byte) bool {
	for _, t := range tokens {
		if bytes.EqualFold(t, k) {
			return true
		}
	}
	return false
}

// ptEqualFold compares a header name case-insensitively with an ASCII name.
func ptEqualFold(k []byte, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := range len(k) {
		a, b := k[i], name[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// ptAppendList appends v to a comma-separated header list.
func ptAppendList(list, v []byte) []byte {
	if len(list) > 0 {
		list = append(list, ',', ' ')
	}
	return append(list, v...)
}

// ptAppendCookie joins Cookie headers the way RFC 6265 section 5.4 writes
// one: pairs separated by "; ".
func ptAppendCookie(list, v []byte) []byte {
	if len(list) > 0 {
		list = append(list, ';', ' ')
	}
	return append(list, v...)
}

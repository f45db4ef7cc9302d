package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// Timing of a scenario run. They are hang guards and settling pauses for
// a loaded two-core machine, not performance checks.
const (
	kibrayWaitTimeout      = 15 * time.Second
	kibrayHandshakeTimeout = 10 * time.Second
	kibrayCloseTimeout     = 5 * time.Second
	kibrayDefaultSettle    = 300 * time.Millisecond
	// kibrayAfterClose lets the server finish its disconnect handlers
	// (user_left, presence) before the next scenario resets the data.
	kibrayAfterClose  = 300 * time.Millisecond
	kibrayHTTPTimeout = 30 * time.Second
)

// Transcript entries that are not frames.
const (
	kibrayOpen        = "<open>"
	kibrayClientClose = "<client close>"
)

// kibrayTarget is a server under test: where the WebSocket routes are,
// and where Django's test API (fixtures, credentials, publishers) is.
type kibrayTarget struct {
	// Name appears in failure reports ("daphne", "sidecar").
	Name string
	// WS is the base WebSocket URL, ws://host:port.
	WS string
	// Django is the base URL of Django's HTTP views, http://host:port.
	Django string
}

// kibrayRun is what one run of a scenario recorded.
type kibrayRun struct {
	// Raw holds each client's entries as received: frames as decoded
	// JSON, and strings such as "<open>", "<refused 403>", "<closed 4001>".
	Raw map[string][]any
	// Normalized is Raw with timestamps and ids replaced.
	Normalized map[string][]any
	// Refs are the fixture ids and captures of the run.
	Refs *kibrayRefs
	// Problem says why the script stopped before its end (a wait that
	// timed out, a send on a socket that is not open), or is empty. The
	// transcripts hold what was recorded until then.
	Problem string
}

// kibrayClient is one client's socket and its recorded entries.
type kibrayClient struct {
	spec    *kibrayClientSpec
	mu      sync.Mutex
	entries []any
	changed chan struct{} // closed and replaced whenever entries grows
	conn    *websocket.Conn
	closing bool
	refused bool
	done    chan struct{} // closed when the reader stops
	cursor  int           // entries consumed by waits
}

func newKibrayClient(spec *kibrayClientSpec) *kibrayClient {
	return &kibrayClient{spec: spec, changed: make(chan struct{})}
}

// record appends an entry and wakes waiters.
func (c *kibrayClient) record(e any) {
	c.mu.Lock()
	c.entries = append(c.entries, e)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// snapshot returns the entries so far and the channel that is closed on
// the next change.
func (c *kibrayClient) snapshot() ([]any, chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.entries...), c.changed
}

// kibrayNeverEnds is the ended channel of a client with no socket.
var kibrayNeverEnds = make(chan struct{})

// ended returns a channel closed once the socket can record nothing
// more: the reader stopped, or the handshake was refused.
func (c *kibrayClient) ended() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	if c.refused {
		closed := make(chan struct{})
		close(closed)
		return closed
	}
	return kibrayNeverEnds
}

// read records every message until the socket ends. A close the client
// started itself is not recorded.
func (c *kibrayClient) read() {
	defer close(c.done)
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			c.mu.Lock()
			closing := c.closing
			c.mu.Unlock()
			if closing {
				return
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.record(fmt.Sprintf("<closed %d>", ce.Code))
			} else {
				c.record("<closed 1006>")
			}
			return
		}
		if kind != websocket.TextMessage {
			c.record(fmt.Sprintf("<binary %q>", data))
			continue
		}
		v, err := decodeKibrayJSON(data)
		if err != nil {
			c.record(fmt.Sprintf("<text %q>", data))
			continue
		}
		c.record(v)
	}
}

// kibrayRunner runs one scenario against one target.
type kibrayRunner struct {
	t       *testing.T
	target  kibrayTarget
	sc      *kibrayScenario
	http    *http.Client
	refs    *kibrayRefs
	clients map[string]*kibrayClient
}

// runKibrayScenario resets the target's data, creates the scenario's
// fixtures, runs its steps, and returns every client's transcript, raw
// and normalized. A step that cannot complete (a wait that times out, a
// send on a socket that is not open) stops the script and is reported in
// Problem, so that the caller can show it next to the transcripts; a
// failure of Django's test API fails the test.
func runKibrayScenario(t *testing.T, target kibrayTarget, sc *kibrayScenario) *kibrayRun {
	t.Helper()
	r := &kibrayRunner{
		t:       t,
		target:  target,
		sc:      sc,
		http:    &http.Client{Timeout: kibrayHTTPTimeout},
		refs:    newKibrayRefs(),
		clients: map[string]*kibrayClient{},
	}
	for i := range sc.Clients {
		r.clients[sc.Clients[i].Name] = newKibrayClient(&sc.Clients[i])
	}
	defer r.closeAll()

	r.post("/internal/kibray/reset/", map[string]any{})
	var ids map[string]map[string]int64
	fixtures := sc.Fixtures
	if len(fixtures) == 0 {
		fixtures = json.RawMessage("{}")
	}
	r.postRaw("/internal/kibray/fixtures/", fixtures, &ids)
	for kind, byName := range ids {
		for name, id := range byName {
			r.refs.add(strings.TrimSuffix(kind, "s"), name, id)
		}
	}
	problem := ""
	for i := range sc.Steps {
		if err := r.step(i, &sc.Steps[i]); err != nil {
			problem = fmt.Sprintf("step %d: %v", i+1, err)
			break
		}
	}
	settle := kibrayDefaultSettle
	if sc.SettleMS > 0 {
		settle = time.Duration(sc.SettleMS) * time.Millisecond
	}
	time.Sleep(settle)
	r.closeAll()
	time.Sleep(kibrayAfterClose)

	raw := map[string][]any{}
	order := make([]string, 0, len(sc.Clients))
	for _, spec := range sc.Clients {
		entries, _ := r.clients[spec.Name].snapshot()
		raw[spec.Name] = entries
		order = append(order, spec.Name)
	}
	return &kibrayRun{Raw: raw, Normalized: normalizeKibrayTranscripts(order, raw, r.refs), Refs: r.refs, Problem: problem}
}

// fail stops the scenario with the transcripts recorded so far.
func (r *kibrayRunner) fail(format string, args ...any) {
	r.t.Helper()
	var sb strings.Builder
	for _, spec := range r.sc.Clients {
		entries, _ := r.clients[spec.Name].snapshot()
		fmt.Fprintf(&sb, "  %s:\n%s", spec.Name, indentKibrayEntries(entries))
	}
	r.t.Fatalf("%s on %s: %s\ntranscripts so far:\n%s", r.sc.Name, r.target.Name, fmt.Sprintf(format, args...), sb.String())
}

// step runs one step; an error stops the script.
func (r *kibrayRunner) step(i int, st *kibrayStep) error {
	r.t.Helper()
	switch st.kind() {
	case "connect":
		r.connect(r.clients[st.Connect])
	case "send":
		return r.send(i, st)
	case "wait":
		return r.wait(st)
	case "publish":
		body := r.resolved(i, st.Publish)
		var out map[string]any
		r.postValue("/internal/kibray/publish/", body, &out)
		if st.Name != "" {
			id, ok := out["notification_id"].(json.Number)
			n, err := id.Int64()
			if !ok || err != nil {
				r.fail("step %d: publish named %q created no notification: %v", i+1, st.Name, out)
			}
			r.refs.add(kibrayKindNotification, st.Name, n)
		}
	case "django":
		var out map[string]any
		r.postValue("/internal/kibray/op/", r.resolved(i, st.Django), &out)
	case "sleep":
		time.Sleep(time.Duration(st.SleepMS) * time.Millisecond)
	case "close":
		r.closeClient(r.clients[st.Close], true)
	}
	return nil
}

func (r *kibrayRunner) resolved(i int, raw json.RawMessage) any {
	r.t.Helper()
	v, err := r.refs.resolveRaw(raw)
	if err != nil {
		r.fail("step %d: %v", i+1, err)
	}
	return v
}

// connect mints the client's credentials with Django and opens its
// socket, recording "<open>" or "<refused STATUS>".
func (r *kibrayRunner) connect(c *kibrayClient) {
	r.t.Helper()
	spec := c.spec
	path, err := r.refs.resolveText(spec.Path)
	if err != nil {
		r.fail("client %s: %v", spec.Name, err)
	}
	header := http.Header{}
	// A browser on the same origin as the page sends its own host.
	header.Set("Origin", "http://"+strings.TrimPrefix(r.target.WS, "ws://"))
	var tokens []string
	for _, part := range spec.authParts() {
		switch part {
		case "cookie":
			var out struct{ Name, Value string }
			r.postValue("/internal/kibray/credentials/", map[string]any{"user": spec.User, "kind": "cookie"}, &out)
			header.Add("Cookie", out.Name+"="+out.Value)
		case "token", "bearer", "expired_token":
			req := map[string]any{"user": spec.User, "kind": "token"}
			if spec.TokenLifetime != nil {
				req["lifetime"] = *spec.TokenLifetime
			}
			if part == "expired_token" {
				req["lifetime"] = -60
			}
			var out struct{ Value string }
			r.postValue("/internal/kibray/credentials/", req, &out)
			if part == "bearer" {
				header.Set("Authorization", "Bearer "+out.Value)
			} else {
				tokens = append(tokens, out.Value)
			}
		case "garbage_token":
			tokens = append(tokens, "eyJhbGciOiJIUzI1NiJ9.not-a-token.c2lnbmF0dXJl")
		}
	}
	for _, tok := range tokens {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "token=" + url.QueryEscape(tok)
	}
	dialer := websocket.Dialer{HandshakeTimeout: kibrayHandshakeTimeout}
	conn, resp, err := dialer.Dial(r.target.WS+path, header)
	if err != nil {
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.mu.Lock()
			c.refused = true
			c.mu.Unlock()
			c.record(fmt.Sprintf("<refused %d>", resp.StatusCode))
			c.cursor++
			return
		}
		r.fail("client %s: dial %s: %v", spec.Name, spec.Path, err)
	}
	c.mu.Lock()
	c.conn = conn
	c.done = make(chan struct{})
	c.mu.Unlock()
	c.record(kibrayOpen)
	c.cursor++
	go c.read()
}

func (r *kibrayRunner) send(i int, st *kibrayStep) error {
	r.t.Helper()
	c := r.clients[st.Send]
	if c.conn == nil {
		return fmt.Errorf("client %s has no open socket", st.Send)
	}
	var data []byte
	if st.Text != nil {
		data = []byte(*st.Text)
	} else {
		v := r.resolved(i, st.Frame)
		var err error
		if data, err = json.Marshal(v); err != nil {
			r.fail("step %d: %v", i+1, err)
		}
	}
	kind := websocket.TextMessage
	if st.Binary {
		kind = websocket.BinaryMessage
	}
	n := st.Repeat
	if n <= 0 {
		n = 1
	}
	for j := 0; j < n; j++ {
		_ = c.conn.SetWriteDeadline(time.Now().Add(kibrayWaitTimeout))
		if err := c.conn.WriteMessage(kind, data); err != nil {
			return fmt.Errorf("client %s: write %d of %d: %w", st.Send, j+1, n, err)
		}
	}
	return nil
}

// wait blocks until the client has Count entries more than at its last
// wait, then takes the captures from the last of them. It gives up when
// the timeout passes, or at once when the socket has ended and can record
// nothing more.
func (r *kibrayRunner) wait(st *kibrayStep) error {
	r.t.Helper()
	c := r.clients[st.Wait]
	want := c.cursor + st.Count
	timeout := kibrayWaitTimeout
	if st.TimeoutMS > 0 {
		timeout = time.Duration(st.TimeoutMS) * time.Millisecond
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		entries, changed := c.snapshot()
		if len(entries) >= want {
			c.cursor = want
			last := entries[want-1]
			for name, field := range st.Capture {
				frame, ok := last.(map[string]any)
				if !ok || frame[field] == nil {
					return fmt.Errorf("client %s: cannot capture %q from %s", st.Wait, field, kibrayJSON(last))
				}
				r.refs.captures[name] = frame[field]
			}
			return nil
		}
		ended := c.ended()
		select {
		case <-changed:
		case <-ended:
			if entries, _ := c.snapshot(); len(entries) < want {
				return fmt.Errorf("client %s has %d entries and its socket is closed, want %d", st.Wait, len(entries), want)
			}
		case <-deadline.C:
			return fmt.Errorf("client %s has %d entries after %s, want %d", st.Wait, len(entries), timeout, want)
		}
	}
}

// closeClient closes a socket with 1000 and waits for its reader.
func (r *kibrayRunner) closeClient(c *kibrayClient, record bool) {
	if c.conn == nil {
		return
	}
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.mu.Unlock()
	if !already {
		_ = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
	select {
	case <-c.done:
	case <-time.After(kibrayCloseTimeout):
	}
	_ = c.conn.Close()
	<-c.done
	if record && !already {
		c.record(kibrayClientClose)
		c.cursor++
	}
}

func (r *kibrayRunner) closeAll() {
	for _, spec := range r.sc.Clients {
		r.closeClient(r.clients[spec.Name], false)
	}
}

// post sends a JSON body to Django's test API and decodes the answer.
func (r *kibrayRunner) post(path string, body any) {
	r.t.Helper()
	var out map[string]any
	r.postValue(path, body, &out)
}

func (r *kibrayRunner) postValue(path string, body any, out any) {
	r.t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		r.fail("encode %s body: %v", path, err)
	}
	r.postRaw(path, data, out)
}

func (r *kibrayRunner) postRaw(path string, body []byte, out any) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kibrayHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.target.Django+path, bytes.NewReader(body))
	if err != nil {
		r.fail("%s: %v", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		r.fail("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.fail("POST %s: HTTP %d: %s", path, resp.StatusCode, data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		r.fail("POST %s: answer %q: %v", path, data, err)
	}
}

// kibrayWSBase turns host:port into the base WebSocket URL.
func kibrayWSBase(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return addr
	}
	return "ws://" + addr
}

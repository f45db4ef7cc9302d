package compat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// kibrayScenarioDir holds the scripted client sessions, one JSON file per
// scenario, relative to the module root.
const kibrayScenarioDir = "compat/kibray/scenarios"

// kibrayScenario is one scripted session against the Kibray routes: the
// data Django creates first, the WebSocket clients, the steps, and the
// transcript each client must end up with. compat/kibray/README.md
// describes the format.
type kibrayScenario struct {
	// Name is the file name without .json.
	Name string `json:"-"`
	// Description says what the scenario proves.
	Description string `json:"description"`
	// Fixtures is sent as it is to Django's /internal/kibray/fixtures/.
	Fixtures json.RawMessage `json:"fixtures"`
	// Clients are the sockets, opened by "connect" steps.
	Clients []kibrayClientSpec `json:"clients"`
	// Steps run in order.
	Steps []kibrayStep `json:"steps"`
	// SettleMS is how long to wait after the last step before the
	// remaining sockets are closed, so that late frames are recorded;
	// 300 when zero.
	SettleMS int `json:"settle_ms"`
	// Expect is the normalized transcript of every client.
	Expect map[string][]json.RawMessage `json:"expect"`
}

// kibrayClientSpec is one WebSocket client.
type kibrayClientSpec struct {
	// Name identifies the client in steps and transcripts.
	Name string `json:"name"`
	// User is the username whose credentials the client carries; empty
	// for an anonymous client.
	User string `json:"user"`
	// Path is the request path with its query, with {kind:name}
	// references (see kibrayRefs).
	Path string `json:"path"`
	// Auth lists the credentials joined by "+": cookie, token (?token=),
	// bearer (Authorization header), expired_token, garbage_token; none
	// or empty for no credential.
	Auth string `json:"auth"`
	// TokenLifetime is the access token's lifetime in seconds (Django's
	// SIMPLE_JWT default when absent).
	TokenLifetime *float64 `json:"token_lifetime"`
}

// kibrayStep is one step; exactly one of Connect, Send, Wait, Publish,
// Django, SleepMS and Close is set.
type kibrayStep struct {
	// Connect opens the named client's socket.
	Connect string `json:"connect,omitempty"`
	// Send writes Frame (JSON, with references), or Text as it is, to the
	// named client's socket, Repeat times (once when zero), as a binary
	// message when Binary is set.
	Send   string          `json:"send,omitempty"`
	Frame  json.RawMessage `json:"frame,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Binary bool            `json:"binary,omitempty"`
	Repeat int             `json:"repeat,omitempty"`
	// Wait blocks until the named client recorded Count more entries
	// since its previous wait (frames and server closes), then copies
	// fields of the last frame into captures named by Capture's keys.
	Wait      string            `json:"wait,omitempty"`
	Count     int               `json:"count,omitempty"`
	Capture   map[string]string `json:"capture,omitempty"`
	TimeoutMS int               `json:"timeout_ms,omitempty"`
	// Publish is sent (with references) to /internal/kibray/publish/;
	// Name registers a created notification under that name.
	Publish json.RawMessage `json:"publish,omitempty"`
	Name    string          `json:"name,omitempty"`
	// Django is sent (with references) to /internal/kibray/op/.
	Django json.RawMessage `json:"django,omitempty"`
	// SleepMS pauses the script.
	SleepMS int `json:"sleep_ms,omitempty"`
	// Close closes the named client's socket with 1000.
	Close string `json:"close,omitempty"`
}

// kind names the step's action, or "" when it has none or several.
func (s *kibrayStep) kind() string {
	var kinds []string
	if s.Connect != "" {
		kinds = append(kinds, "connect")
	}
	if s.Send != "" {
		kinds = append(kinds, "send")
	}
	if s.Wait != "" {
		kinds = append(kinds, "wait")
	}
	if len(s.Publish) > 0 {
		kinds = append(kinds, "publish")
	}
	if len(s.Django) > 0 {
		kinds = append(kinds, "django")
	}
	if s.SleepMS > 0 {
		kinds = append(kinds, "sleep")
	}
	if s.Close != "" {
		kinds = append(kinds, "close")
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// target names the client a step acts on, if any.
func (s *kibrayStep) target() string {
	for _, n := range []string{s.Connect, s.Send, s.Wait, s.Close} {
		if n != "" {
			return n
		}
	}
	return ""
}

// kibrayAuthParts are the credential kinds a client's Auth may combine.
var kibrayAuthParts = map[string]bool{
	"cookie": true, "token": true, "bearer": true, "expired_token": true, "garbage_token": true,
}

// authParts splits Auth into its credential kinds.
func (c *kibrayClientSpec) authParts() []string {
	if c.Auth == "" || c.Auth == "none" {
		return nil
	}
	return strings.Split(c.Auth, "+")
}

// validate checks the scenario's internal consistency, so that a typo in
// a file fails with its name rather than as a confusing transcript.
func (sc *kibrayScenario) validate() error {
	if sc.Description == "" {
		return fmt.Errorf("no description")
	}
	clients := map[string]*kibrayClientSpec{}
	for i := range sc.Clients {
		c := &sc.Clients[i]
		if c.Name == "" || clients[c.Name] != nil {
			return fmt.Errorf("client %d: empty or repeated name %q", i, c.Name)
		}
		clients[c.Name] = c
		if !strings.HasPrefix(c.Path, "/ws/") {
			return fmt.Errorf("client %s: path %q does not start with /ws/", c.Name, c.Path)
		}
		for _, p := range c.authParts() {
			if !kibrayAuthParts[p] {
				return fmt.Errorf("client %s: unknown credential %q in auth %q", c.Name, p, c.Auth)
			}
		}
		if len(c.authParts()) > 0 && c.User == "" && c.Auth != "garbage_token" {
			return fmt.Errorf("client %s: auth %q needs a user", c.Name, c.Auth)
		}
	}
	connected := map[string]bool{}
	for i := range sc.Steps {
		st := &sc.Steps[i]
		kind := st.kind()
		if kind == "" {
			return fmt.Errorf("step %d: want exactly one action", i+1)
		}
		if name := st.target(); name != "" && clients[name] == nil {
			return fmt.Errorf("step %d: unknown client %q", i+1, name)
		}
		switch kind {
		case "connect":
			if connected[st.Connect] {
				return fmt.Errorf("step %d: client %s connects twice", i+1, st.Connect)
			}
			connected[st.Connect] = true
		case "send":
			if (len(st.Frame) > 0) == (st.Text != nil) {
				return fmt.Errorf("step %d: send wants exactly one of frame and text", i+1)
			}
			if !connected[st.Send] {
				return fmt.Errorf("step %d: client %s sends before it connects", i+1, st.Send)
			}
		case "wait":
			if st.Count <= 0 {
				return fmt.Errorf("step %d: wait needs a positive count", i+1)
			}
		}
	}
	for name := range clients {
		if _, ok := sc.Expect[name]; !ok {
			return fmt.Errorf("no expected transcript for client %s", name)
		}
	}
	for name := range sc.Expect {
		if clients[name] == nil {
			return fmt.Errorf("expected transcript for unknown client %s", name)
		}
	}
	if _, err := sc.expected(); err != nil {
		return err
	}
	return nil
}

// expected returns the expected transcripts with {"$repeat": n,
// "entry": x} items expanded and numbers in canonical form.
func (sc *kibrayScenario) expected() (map[string][]any, error) {
	out := make(map[string][]any, len(sc.Expect))
	for name, items := range sc.Expect {
		list := []any{}
		for i, raw := range items {
			v, err := decodeKibrayJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("expect[%s][%d]: %w", name, i, err)
			}
			if m, ok := v.(map[string]any); ok {
				if n, ok := m["$repeat"]; ok {
					count, err := n.(json.Number).Int64()
					if err != nil || count < 1 || len(m) != 2 || m["entry"] == nil {
						return nil, fmt.Errorf(`expect[%s][%d]: want {"$repeat": n, "entry": ...}`, name, i)
					}
					for j := int64(0); j < count; j++ {
						list = append(list, m["entry"])
					}
					continue
				}
			}
			list = append(list, v)
		}
		out[name] = canonicalKibrayNumbers(list).([]any)
	}
	return out, nil
}

// decodeKibrayJSON decodes one JSON value, keeping numbers as
// json.Number.
func decodeKibrayJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// loadKibrayScenarios reads and validates every scenario file, in name
// order.
func loadKibrayScenarios(t testing.TB) []*kibrayScenario {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), kibrayScenarioDir)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files in %s: %v", dir, err)
	}
	sort.Strings(files)
	var out []*kibrayScenario
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := &kibrayScenario{Name: strings.TrimSuffix(filepath.Base(f), ".json")}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := sc.validate(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, sc)
	}
	return out
}

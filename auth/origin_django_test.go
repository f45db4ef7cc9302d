package auth

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests run the real channels.security.websocket validators, as ASGI
// apps, through compat/python/auth/mint.py on both Python stacks, and check
// that OriginPolicy in allowed_hosts mode reaches the same verdicts. Where
// the sidecar is deliberately stricter, Channels' verdict may be
// "accepted" or an exception and the sidecar's a refusal, never the
// reverse.

// differentialOrigins are Origin values for the live comparison: the
// browser forms and the odd ones that exercise urlparse.
var differentialOrigins = append(append([]string(nil), channelsOrigins...),
	"HTTPS://EXAMPLE.COM", "https://example.com:", "https://example.com:0443", "https://example.com:+443",
	"https://example.com:abc", "https://example.com:-1", "https://example.com:65535", "https://example.com:65536",
	"https://example.com?x", "https://example.com#f", "//example.com", "example.com", "https:example.com",
	"https://a@b@example.com", "https://example.com@evil.net", "https://evil.net@example.com",
	"http://[::1]", "http://[::1", "http://::1]", "http://evil[::1]", "http://[::1]evil", "http://[1.2.3.4]",
	"http://[v1.x]", "http://[vz.x]", "http://[fe80::1%25eth0]", "http://[fe80::1%eth0]", "http://[::ffff:1.2.3.4]",
	"http://localhost", "http://LOCALHOST:8000", "http://127.0.0.1", "ws://sub.example.org", "wss://example.com:443",
	"https://x.example.org", "https://example.org", "https://xexample.org", "chrome-extension://abcdef",
	"localhost:8000", "example.com:8443", "1https://example.com", "h+t-t.p://example.com",
)

// differentialHosts are ALLOWED_HOSTS lists for the live comparison. An
// empty list is not among them: the sidecar reads it as "not set".
var differentialHosts = [][]string{
	{"example.com"}, {".example.com"}, {"*"}, {"https://example.com"}, {"http://example.com:8000"},
	{"https://.example.com"}, {"EXAMPLE.COM"}, {"example.com:8443"}, {"*.example.com"},
	{"localhost", "127.0.0.1", "[::1]"}, {"[::1]:8000", "127.0.0.1:8000"}, {"localhost:8000"},
	{"example.com", "https://example.com"}, {"https://example.com", "example.com"},
	{"wss://example.com", "ws://.example.org"}, {".example.org", "https://example.com:443"},
	{"chrome-extension://abcdef"}, {"example.com/path"}, {"user@example.com"}, {"[v1.x]"},
	{"http://example.com:0"}, {"[fe80::1%eth0]"}, {"https://*.example.com"}, {"*", "example.com"},
}

type originRun struct {
	Hosts   []string   `json:"allowed_hosts"`
	Debug   *bool      `json:"debug,omitempty"`
	Origins [][]string `json:"origins"`
}

func runOriginChecks(t *testing.T, st testenv.PyStack, runs []originRun) [][]string {
	t.Helper()
	req := map[string]any{"secret_key": compatSecret}
	var ops []map[string]any
	for _, r := range runs {
		op := map[string]any{"op": "check_origin", "allowed_hosts": r.Hosts, "origins": r.Origins}
		if r.Debug != nil {
			op["debug"] = *r.Debug
		}
		ops = append(ops, op)
	}
	req["ops"] = ops
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := st.Run(ctx, t, in, filepath.Join(testenv.RepoRoot(), "compat", "python", "auth", "mint.py"))
	var resp struct {
		Versions map[string]string `json:"versions"`
		Results  []struct {
			Results []string `json:"results"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("mint.py output: %v\n%s", err, out)
	}
	if len(resp.Results) != len(runs) {
		t.Fatalf("%d results for %d runs", len(resp.Results), len(runs))
	}
	verdicts := make([][]string, len(runs))
	for i, r := range resp.Results {
		if len(r.Results) != len(runs[i].Origins) {
			t.Fatalf("run %d: %d verdicts for %d origins", i, len(r.Results), len(runs[i].Origins))
		}
		verdicts[i] = r.Results
	}
	t.Logf("%s stack: %v", st.Name, resp.Versions)
	return verdicts
}

// compareVerdict checks one Go verdict against Channels'. stricter names
// the Origin values the sidecar refuses on purpose where Channels does not.
func compareVerdict(t *testing.T, what string, values []string, py string, ok bool, reason string) {
	t.Helper()
	stricter := len(values) > 1 // Channels takes the last header; the sidecar refuses
	for _, v := range values {
		stricter = stricter || !printableASCII(v)
	}
	switch {
	case py == "accepted" && !ok && !stricter:
		t.Errorf("%s, Origin %q: refused (%s), Channels accepts", what, values, reason)
	case py == "denied" && ok:
		t.Errorf("%s, Origin %q: accepted, Channels denies", what, values)
	case strings.HasPrefix(py, "exception") && (ok || reason != ReasonOriginMalformed && !stricter):
		t.Errorf("%s, Origin %q: %v %q, Channels fails with %s", what, values, ok, reason, py)
	case py != "accepted" && py != "denied" && !strings.HasPrefix(py, "exception"):
		t.Errorf("%s, Origin %q: unexpected Channels verdict %q", what, values, py)
	}
}

func TestOriginValidatorCompat(t *testing.T) {
	var origins [][]string
	for _, o := range differentialOrigins {
		origins = append(origins, originHeader(o))
	}
	// Stricter on purpose: a second Origin header, and bytes outside
	// printable ASCII (Python strips tabs and decodes Latin-1).
	origins = append(origins,
		[]string{"https://evil.net", "https://example.com"}, []string{"https://example.com", "https://evil.net"},
		[]string{"https://exa\tmple.com"}, []string{"https://ex\u00e4mple.com"}, []string{" https://example.com"},
	)
	var runs []originRun
	for _, h := range differentialHosts {
		runs = append(runs, originRun{Hosts: h, Origins: origins})
	}
	// The literal table in origin_test.go came from this library; check
	// that it still holds.
	var table [][]string
	for _, o := range channelsOrigins {
		table = append(table, originHeader(o))
	}
	for _, row := range channelsVerdicts {
		runs = append(runs, originRun{Hosts: row.hosts, Origins: table})
	}
	for _, st := range testenv.PythonStacks(t, "django", "channels") {
		t.Run(st.Name, func(t *testing.T) {
			verdicts := runOriginChecks(t, st, runs)
			for i, h := range differentialHosts {
				p := mustPolicy(t, nil, h)
				for j, values := range origins {
					ok, reason := p.Allow(values, "example.com")
					compareVerdict(t, strings.Join(h, ","), values, verdicts[i][j], ok, reason)
				}
			}
			for i, row := range channelsVerdicts {
				for j, py := range verdicts[len(differentialHosts)+i] {
					letter := byte('E')
					switch py {
					case "accepted":
						letter = 'A'
					case "denied":
						letter = 'D'
					}
					if letter != row.verdicts[j] {
						t.Errorf("%v, Origin %q: Channels now says %q, the table %c", row.hosts, channelsOrigins[j], py, row.verdicts[j])
					}
				}
			}
		})
	}
}

func TestAllowedHostsOriginValidatorDebugCompat(t *testing.T) {
	values := [][]string{nil, {"http://localhost:8000"}, {"http://127.0.0.1"}, {"http://[::1]:3000"}, {"https://example.com"}, {"https://x.example.org"}}
	on, off := true, false
	runs := []originRun{
		{Hosts: []string{}, Debug: &on, Origins: values},
		{Hosts: []string{"example.com"}, Debug: &on, Origins: values},
		{Hosts: []string{"example.com", ".example.org"}, Debug: &off, Origins: values},
	}
	for _, st := range testenv.PythonStacks(t, "django", "channels") {
		t.Run(st.Name, func(t *testing.T) {
			verdicts := runOriginChecks(t, st, runs)
			for i, r := range runs {
				cfg := Config{AllowedHosts: r.Hosts, Debug: *r.Debug}
				p := mustPolicy(t, nil, cfg.OriginHosts())
				for j, v := range values {
					ok, reason := p.Allow(v, "example.com")
					compareVerdict(t, "debug="+map[bool]string{true: "on", false: "off"}[*r.Debug]+" "+strings.Join(r.Hosts, ","), v, verdicts[i][j], ok, reason)
				}
			}
		})
	}
}

package auth

import (
	"slices"
	"strings"
	"testing"
)

// channelsOrigins and channelsVerdicts are a table that Channels 4.0's
// OriginValidator produced (Django 3.2, Python 3.11): for each pattern list,
// one letter per Origin: A accepted, D denied, E exception (the connection
// fails). A missing Origin is the first column.
var channelsOrigins = []string{
	"<none>", "https://example.com", "http://example.com", "https://example.com:443",
	"https://example.com:8443", "http://example.com:8000", "ws://example.com",
	"https://sub.example.com", "https://a.b.example.com", "https://evilexample.com",
	"https://example.com.evil.net", "https://EXAMPLE.com", "https://example.com.",
	"https://example.com/some/path", "chrome-extension://example.com", "null", "", "file://",
	"http://localhost:3000", "http://127.0.0.1:8000", "http://[::1]:8000",
	"https://user@example.com", "https://example.com:99999",
}

var channelsVerdicts = []struct {
	hosts    []string
	verdicts string
}{
	{[]string{"example.com"}, "DAAAAAADDDDADAADDDDDDAA"},
	{[]string{".example.com"}, "DAAAAAAAADDADAADDDDDDAA"},
	{[]string{"*"}, "AAAAAAAAAAAAAAAAAAAAAAA"},
	{[]string{"https://example.com"}, "DADADDDDDDDADADDDDDDDAE"},
	{[]string{"http://example.com:8000"}, "DDDDDADDDDDDDDDDDDDDDDE"},
	{[]string{"https://.example.com"}, "DADADDDAADDADADDDDDDDAE"},
	{[]string{"EXAMPLE.COM"}, "DAAAAAADDDDADAADDDDDDAA"},
	{[]string{"example.com:8443"}, "DDDDDDDDDDDDDDDDDDDDDDE"},
	{[]string{"*.example.com"}, "DDDDDDDDDDDDDDDDDDDDDDD"},
	{[]string{"localhost", "127.0.0.1", "[::1]"}, "DDDDDDDDDDDDDDDDDDAAADD"},
}

func originHeader(o string) []string {
	if o == "<none>" {
		return nil
	}
	return []string{o}
}

func mustPolicy(t testing.TB, origins, hosts []string) *OriginPolicy {
	t.Helper()
	p, err := NewOriginPolicy(origins, hosts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOriginAllowedHostsMatchesChannels: the allowed_hosts mode gives
// Channels' verdicts, an exception becoming a refusal as malformed.
func TestOriginAllowedHostsMatchesChannels(t *testing.T) {
	for _, row := range channelsVerdicts {
		p := mustPolicy(t, nil, row.hosts)
		if p.Mode() != OriginModeAllowedHosts {
			t.Fatalf("%v: mode %s", row.hosts, p.Mode())
		}
		for i, o := range channelsOrigins {
			ok, reason := p.Allow(originHeader(o), "example.com")
			want := row.verdicts[i]
			switch {
			case want == 'A' && (!ok || reason != ""):
				t.Errorf("%v, Origin %q: refused (%s), Channels accepts", row.hosts, o, reason)
			case want == 'D' && ok:
				t.Errorf("%v, Origin %q: accepted, Channels denies", row.hosts, o)
			case want == 'D' && o == "<none>" && reason != ReasonOriginMissing:
				t.Errorf("%v, no Origin: reason %q", row.hosts, reason)
			case want == 'D' && o != "<none>" && reason != ReasonOriginNotAllowed:
				t.Errorf("%v, Origin %q: reason %q, want %s", row.hosts, o, reason, ReasonOriginNotAllowed)
			case want == 'E' && (ok || reason != ReasonOriginMalformed):
				t.Errorf("%v, Origin %q: %v %q, want refused as malformed", row.hosts, o, ok, reason)
			}
		}
	}
}

func TestOriginAllowedHostsDetails(t *testing.T) {
	cases := []struct {
		hosts  []string
		origin string
		reason string // "" accepted
	}{
		// Order matters as in Python's any(): a match before a pattern
		// that raises wins; a raise before a match fails.
		{[]string{"example.com", "https://example.com"}, "https://example.com:99999", ""},
		{[]string{"https://example.com", "example.com"}, "https://example.com:99999", ReasonOriginMalformed},
		{[]string{"https://example.com"}, "https://example.com:+443", ReasonOriginMalformed},
		{[]string{"https://example.com"}, "https://example.com:0443", ""},
		{[]string{"https://example.com"}, "https://example.com:", ""},
		{[]string{"https://example.com"}, "HTTPS://EXAMPLE.COM", ""},
		{[]string{"http://example.com:0"}, "http://example.com:0", ""},
		{[]string{"example.com"}, "https://example.com:abc", ""}, // port ignored without a scheme
		{[]string{"example.com"}, "https://evil.net@example.com", ""},
		{[]string{"example.com"}, "https://example.com@evil.net", ReasonOriginNotAllowed},
		{[]string{"example.com"}, "https://example.com?x#y", ""},
		{[]string{"example.com"}, "//example.com", ""}, // no scheme, but a netloc
		{[]string{"example.com"}, "example.com", ReasonOriginNotAllowed},
		{[]string{"[::1]"}, "http://[::1]", ""},
		{[]string{"[::1]"}, "http://[0:0::1]", ReasonOriginNotAllowed},
		{[]string{"[::1]"}, "http://evil[::1]", ReasonOriginMalformed},
		{[]string{"[::1]"}, "http://[::1]evil", ReasonOriginMalformed},
		{[]string{"[::1]"}, "http://[::1", ReasonOriginMalformed},
		{[]string{"[::1]"}, "http://::1]", ReasonOriginMalformed},
		{[]string{"[::1]"}, "http://[1.2.3.4]", ReasonOriginMalformed},
		{[]string{"[::1]"}, "http://[v1.x]", ReasonOriginNotAllowed},
		{[]string{"[::1]"}, "http://[vz.x]", ReasonOriginMalformed},
		{[]string{"[::1]:8000"}, "http://[::1]:3000", ""},
		{[]string{"127.0.0.1:8000"}, "http://127.0.0.1:3000", ""}, // not a scheme: starts with a digit
		{[]string{"localhost:8000"}, "http://localhost:8000", ReasonOriginNotAllowed},
		{[]string{"example.com/path"}, "https://example.com", ""},
		{[]string{"user@example.com"}, "https://example.com", ""},
		{[]string{".example.com"}, "https://example.com", ""},
		{[]string{".Example.COM"}, "https://A.EXAMPLE.com", ""},
		{[]string{"https://.example.com:8443"}, "https://a.example.com:8443", ""},
		{[]string{"https://.example.com:8443"}, "https://a.example.com", ReasonOriginNotAllowed},
		{[]string{"wss://example.com"}, "wss://example.com:443", ""},
		{[]string{"chrome-extension://abcdef"}, "chrome-extension://abcdef", ""},
		{[]string{"chrome-extension://abcdef"}, "chrome-extension://abcdef:1", ReasonOriginNotAllowed},
		// Stricter than Channels: bytes that Python strips or decodes as
		// Latin-1 are refused.
		{[]string{"example.com"}, "https://exa\tmple.com", ReasonOriginMalformed},
		{[]string{"example.com"}, "https://example.com ", ReasonOriginMalformed},
		{[]string{"*"}, "https://ex\xe4mple.com", ReasonOriginMalformed},
		{[]string{"*"}, "anything at all", ReasonOriginMalformed},
		// Python parses the Origin before looking at any pattern, so even
		// "*" fails on an unparsable one.
		{[]string{"*"}, "http://[::1", ReasonOriginMalformed},
	}
	for _, c := range cases {
		p := mustPolicy(t, nil, c.hosts)
		ok, reason := p.Allow([]string{c.origin}, "example.com")
		if ok != (c.reason == "") || reason != c.reason {
			t.Errorf("%v, Origin %q: %v %q, want reason %q", c.hosts, c.origin, ok, reason, c.reason)
		}
	}
}

func TestOriginMultipleHeadersRefused(t *testing.T) {
	for _, p := range []*OriginPolicy{
		mustPolicy(t, []string{"https://example.com"}, nil),
		mustPolicy(t, nil, []string{"*"}),
		mustPolicy(t, nil, []string{"example.com"}),
		mustPolicy(t, nil, nil),
	} {
		for _, values := range [][]string{
			{"https://example.com", "https://example.com"},
			{"https://evil.net", "https://example.com"},
			{"https://example.com", ""},
		} {
			if ok, reason := p.Allow(values, "example.com"); ok || reason != ReasonOriginMultiple {
				t.Errorf("%s, %q: %v %q", p.Mode(), values, ok, reason)
			}
		}
	}
}

func TestOriginExactList(t *testing.T) {
	p := mustPolicy(t, []string{"https://app.example.com", "HTTP://Localhost:3000/", "https://example.com:443", "http://[::1]:8000", "chrome-extension://abcdef"}, []string{"*"})
	if p.Mode() != OriginModeAllowedOrigins {
		t.Fatalf("mode %s", p.Mode())
	}
	if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], "allowed_hosts is not used") {
		t.Errorf("warnings %q", w)
	}
	cases := []struct {
		values []string
		reason string
	}{
		{[]string{"https://app.example.com"}, ""},
		{[]string{"https://APP.example.com"}, ""},
		{[]string{"https://app.example.com:443"}, ""},
		{[]string{"http://localhost:3000"}, ""},
		{[]string{"https://example.com"}, ""},
		{[]string{"http://[0:0::1]:8000"}, ""},
		{[]string{"chrome-extension://abcdef"}, ""},
		{nil, ReasonOriginMissing},
		{[]string{"http://app.example.com"}, ReasonOriginNotAllowed},
		{[]string{"https://app.example.com:8443"}, ReasonOriginNotAllowed},
		{[]string{"https://sub.app.example.com"}, ReasonOriginNotAllowed},
		{[]string{"https://evil.net"}, ReasonOriginNotAllowed},
		{[]string{"https://app.example.com/"}, ReasonOriginNotAllowed},
		{[]string{"https://app.example.com/path"}, ReasonOriginNotAllowed},
		{[]string{"https://user@app.example.com"}, ReasonOriginNotAllowed},
		{[]string{"https://app.example.com."}, ReasonOriginNotAllowed},
		{[]string{"https://app.example.com:99999"}, ReasonOriginNotAllowed},
		{[]string{"http://localhost:3000:3000"}, ReasonOriginNotAllowed},
		{[]string{"null"}, ReasonOriginNotAllowed},
		{[]string{""}, ReasonOriginNotAllowed},
		{[]string{"app.example.com"}, ReasonOriginNotAllowed},
		{[]string{"https://app.example.com\x00"}, ReasonOriginMalformed},
		{[]string{"https://app.example.com", "https://app.example.com"}, ReasonOriginMultiple},
	}
	for _, c := range cases {
		ok, reason := p.Allow(c.values, "app.example.com")
		if ok != (c.reason == "") || reason != c.reason {
			t.Errorf("%q: %v %q, want reason %q", c.values, ok, reason, c.reason)
		}
	}
}

func TestOriginExactListErrors(t *testing.T) {
	for _, bad := range []string{
		"*", "null", "", "app.example.com", ".example.com", "https://*.example.com", "https://app.example.com/path",
		"https://app.example.com:99999", "https://user@app.example.com", "https://", "https://app example.com",
		"https://[::1", "https://[1.2.3.4]", "https://ex\xe4mple.com", "//app.example.com",
	} {
		_, err := NewOriginPolicy([]string{"https://ok.example.com", bad}, nil)
		if err == nil {
			t.Errorf("allowed_origins %q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "allowed_origins[1]") {
			t.Errorf("%q: error %q does not name the entry", bad, err)
		}
	}
}

func TestOriginAllowedHostsErrors(t *testing.T) {
	for _, bad := range []string{"", "[::1", "::1]", "evil[::1]", "[1.2.3.4]", "https://example.com:99999", "https://example.com:8o", "ex ample.com", "exämple.com"} {
		_, err := NewOriginPolicy(nil, []string{"example.com", bad})
		if err == nil {
			t.Errorf("allowed_hosts %q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "allowed_hosts[1]") {
			t.Errorf("%q: error %q does not name the entry", bad, err)
		}
	}
}

func TestOriginAllowedHostsWarnings(t *testing.T) {
	p := mustPolicy(t, nil, []string{"*", ".example.com", "*.example.org", "example.net:8443", "https://app.example.com"})
	w := strings.Join(p.Warnings(), "\n")
	for _, want := range []string{`contains "*"`, `".example.com" accepts every subdomain of example.com`,
		`"*.example.org" never matches`, `"example.net:8443" never matches`, "any scheme and port"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if w := mustPolicy(t, nil, []string{"https://app.example.com"}).Warnings(); len(w) != 0 {
		t.Errorf("an exact scheme pattern warns: %q", w)
	}
	if w := mustPolicy(t, nil, nil).Warnings(); len(w) != 0 {
		t.Errorf("same-host mode warns: %q", w)
	}
}

func TestOriginSameHost(t *testing.T) {
	p := mustPolicy(t, nil, nil)
	if p.Mode() != OriginModeSameHost {
		t.Fatalf("mode %s", p.Mode())
	}
	cases := []struct {
		origin, host string
		reason       string
	}{
		{"<none>", "example.com", ""},
		{"https://example.com", "example.com", ""},
		{"https://example.com", "EXAMPLE.com:443", ""},
		{"http://127.0.0.1:8080", "127.0.0.1:8080", ""},
		{"http://[::1]:8080", "[::1]:8080", ""},
		{"https://example.com", "example.com:80", ReasonOriginNotAllowed},
		{"http://127.0.0.1:8081", "127.0.0.1:8080", ReasonOriginNotAllowed},
		{"https://evil.net", "example.com", ReasonOriginNotAllowed},
		{"https://example.com.evil.net", "example.com", ReasonOriginNotAllowed},
		{"null", "example.com", ReasonOriginNotAllowed},
		{"https://example.com", "", ReasonOriginNotAllowed},
		{"https://example.com/", "example.com", ReasonOriginNotAllowed},
	}
	for _, c := range cases {
		ok, reason := p.Allow(originHeader(c.origin), c.host)
		if ok != (c.reason == "") || reason != c.reason {
			t.Errorf("Origin %q, Host %q: %v %q, want reason %q", c.origin, c.host, ok, reason, c.reason)
		}
	}
}

func TestOriginReasonsDistinct(t *testing.T) {
	all := append(OriginReasons(), Reasons()...)
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r] {
			t.Errorf("reason %s twice", r)
		}
		seen[r] = true
	}
	if !slices.Contains(DebugAllowedHosts(), "[::1]") || len(DebugAllowedHosts()) != 3 {
		t.Errorf("debug hosts %q", DebugAllowedHosts())
	}
}

// FuzzOriginPolicy feeds arbitrary Origin values to each mode: nothing
// panics, and whatever is accepted really names an allowed origin.
func FuzzOriginPolicy(f *testing.F) {
	for _, o := range channelsOrigins {
		f.Add(o, "example.com")
	}
	for _, o := range []string{"http://[::1", "http://evil[::1]", "https://example.com:+1", "http://[v1.x]:80", "https://a@b@example.com", "HTTPS://EXAMPLE.COM:0443", "\x00", "https://exa\tmple.com"} {
		f.Add(o, "example.com:443")
	}
	exact := mustPolicy(f, []string{"https://example.com", "http://[::1]:8000"}, nil)
	hosts := mustPolicy(f, nil, []string{"example.com", "https://.example.org:8443", "[::1]"})
	same := mustPolicy(f, nil, nil)
	f.Fuzz(func(t *testing.T, origin, host string) {
		if ok, _ := exact.Allow([]string{origin}, host); ok {
			o, parsed := parseOrigin(origin)
			if !parsed || (o.String() != "https://example.com" && o.String() != "http://[::1]:8000") {
				t.Fatalf("exact list accepted %q", origin)
			}
		}
		if ok, _ := hosts.Allow([]string{origin}, host); ok {
			u, err := pySplit(origin)
			h, _ := u.hostname()
			if err != nil || !(h == "example.com" || h == "::1" || h == "example.org" || strings.HasSuffix(h, ".example.org")) ||
				!strings.Contains(strings.ToLower(origin), h) {
				t.Fatalf("allowed hosts accepted %q (host %q)", origin, h)
			}
		}
		if ok, _ := same.Allow([]string{origin}, host); ok {
			o, parsed := parseOrigin(origin)
			if !parsed || !strings.Contains(strings.ToLower(host), strings.Trim(o.host, "[]")) && !strings.HasPrefix(o.host, "[") {
				t.Fatalf("same host %q accepted %q", host, origin)
			}
		}
		for _, p := range []*OriginPolicy{exact, hosts, same} {
			if ok, reason := p.Allow([]string{origin, origin}, host); ok || reason != ReasonOriginMultiple {
				t.Fatalf("two Origin headers: %v %q", ok, reason)
			}
		}
	})
}

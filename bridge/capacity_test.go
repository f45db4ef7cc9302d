package bridge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// globCases are fnmatch patterns with names they must and must not match.
var globCases = []struct {
	pattern string
	names   map[string]bool
}{
	{"http.request", map[string]bool{"http.request": true, "http.request2": false, "xhttp.request": false, "httpxrequest": false}},
	{"http.response!*", map[string]bool{"http.response!abc": true, "http.response!": true, "http.response": false}},
	{"websocket.send!?", map[string]bool{"websocket.send!x": true, "websocket.send!xy": false}},
	{"*", map[string]bool{"": true, "anything!at.all": true, "a\nb": true}},
	{"a*b*c", map[string]bool{"abc": true, "aXXbYYc": true, "aXXbYY": false}},
	{"[abc]x", map[string]bool{"ax": true, "cx": true, "dx": false}},
	{"[!abc]x", map[string]bool{"ax": false, "dx": true}},
	{"[a-c]", map[string]bool{"b": true, "d": false, "-": false}},
	{"[a-]", map[string]bool{"a": true, "-": true, "b": false}},
	{"[-a]", map[string]bool{"a": true, "-": true}},
	{"[]a]", map[string]bool{"]": true, "a": true, "b": false}},
	{"[!]a]", map[string]bool{"]": false, "b": true}},
	{"[z-a]", map[string]bool{"z": false, "a": false, "m": false}},
	{"[!z-a]", map[string]bool{"z": true, "q": true}},
	{"[z-ab]", map[string]bool{"b": true, "z": false}},
	{"[a-c-e]", map[string]bool{"b": true, "-": true, "e": true, "d": false}},
	{"[abc", map[string]bool{"[abc": true, "a": false}},
	{"a.b", map[string]bool{"a.b": true, "axb": false}},
	{"(x)+$^", map[string]bool{"(x)+$^": true, "x": false}},
	{`back\slash`, map[string]bool{`back\slash`: true}},
	{"[\\]", map[string]bool{`\`: true}},
	{"é*", map[string]bool{"éa": true, "ea": false}},
}

func TestGlobMatching(t *testing.T) {
	for _, tc := range globCases {
		re, err := compileGlob(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		for name, want := range tc.names {
			if got := re.MatchString(name); got != want {
				t.Errorf("pattern %q on %q: %v, want %v (regexp %s)", tc.pattern, name, got, want, re)
			}
		}
	}
}

func TestCapacitiesFirstMatchWins(t *testing.T) {
	c, err := newCapacities(100, []ChannelCapacity{
		{Pattern: "http.request", Capacity: 200},
		{Pattern: "http.response!*", Capacity: 10},
		{Pattern: "http.*", Capacity: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{
		"http.request": 200, "http.request2": 5, "http.response!abc": 10, "http.response!": 10, "other": 100,
	} {
		if got := c.forChannel(name); got != want {
			t.Errorf("capacity(%q) = %d, want %d", name, got, want)
		}
	}
}

// TestGlobMatchesPython checks every case against Python's own
// fnmatch.translate + re.match, so the table above cannot drift from it.
func TestGlobMatchesPython(t *testing.T) {
	testenv.RequirePython(t)
	type pair struct {
		Pattern string `json:"p"`
		Name    string `json:"n"`
	}
	var pairs []pair
	for _, tc := range globCases {
		for name := range tc.names {
			pairs = append(pairs, pair{tc.pattern, name})
		}
	}
	in, _ := json.Marshal(pairs)
	const script = `
import fnmatch, json, re, sys
pairs = json.load(sys.stdin)
print(json.dumps([bool(re.match(fnmatch.translate(p["p"]), p["n"])) for p in pairs]))
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := testenv.RunPython(ctx, t, nil, in, "-c", script)
	var got []bool
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(pairs) {
		t.Fatalf("python output %q: %v", out, err)
	}
	for i, p := range pairs {
		re, _ := compileGlob(p.Pattern)
		if re.MatchString(p.Name) != got[i] {
			t.Errorf("pattern %q on %q: Go %v, Python %v", p.Pattern, strings.ReplaceAll(p.Name, "\n", `\n`), !got[i], got[i])
		}
	}
}

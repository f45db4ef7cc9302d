package auth

import (
	"maps"
	"testing"
	"unicode/utf8"
)

func TestParseCookieLikeDjango(t *testing.T) {
	cases := []struct {
		header string
		want   map[string]string
	}{
		{"", map[string]string{}},
		{"sessionid=abc", map[string]string{"sessionid": "abc"}},
		{"a=1; b=2", map[string]string{"a": "1", "b": "2"}},
		// A later duplicate wins (Go's net/http keeps the first).
		{"sessionid=first; sessionid=second", map[string]string{"sessionid": "second"}},
		// Split on the first '=' only; values keep later ones.
		{"a=b=c", map[string]string{"a": "b=c"}},
		// No '=': the empty name.
		{"justvalue; a=1", map[string]string{"": "justvalue", "a": "1"}},
		{"=; ; a=1;;", map[string]string{"a": "1"}},
		{"  a  =  1  ", map[string]string{"a": "1"}},
		// Python's strip() also removes \x1c-\x1f, \x85 and \xa0.
		{"\x1ca=1\xa0; \x85b=\t2\x0b", map[string]string{"a": "1", "b": "2"}},
		// Names are case-sensitive.
		{"SessionID=x; sessionid=y", map[string]string{"SessionID": "x", "sessionid": "y"}},
		// Python's cookie unquoting.
		{`a="quoted"`, map[string]string{"a": "quoted"}},
		{`a="\101\102"`, map[string]string{"a": "AB"}},
		{`a="x\"y"`, map[string]string{"a": `x"y`}},
		{`a="\\012"`, map[string]string{"a": `\012`}},
		{`a="\400"`, map[string]string{"a": "400"}},
		{`a="\12"`, map[string]string{"a": "12"}},
		{`a="x\"`, map[string]string{"a": `x\`}},
		{"a=\"\\\n\"", map[string]string{"a": "\\\n"}},
		{`a="unterminated`, map[string]string{"a": `"unterminated`}},
		{`a="`, map[string]string{"a": `"`}},
		{`a=""`, map[string]string{"a": ""}},
		// Latin-1 bytes become their code points, returned as UTF-8.
		{"caf\xe9=\xe9t\xe9", map[string]string{"café": "été"}},
		{`a="\351"`, map[string]string{"a": "é"}},
	}
	for _, c := range cases {
		got := ParseCookie(c.header)
		if !maps.Equal(got, c.want) {
			t.Errorf("ParseCookie(%q) = %q, want %q", c.header, got, c.want)
		}
	}
}

func TestCookieValueAgreesWithParseCookie(t *testing.T) {
	h := "a=1; sessionid=one; caf\xe9=2; sessionid=\"two\""
	if v, ok := cookieValue(h, "sessionid"); !ok || v != "two" {
		t.Errorf("cookieValue = %q, %v", v, ok)
	}
	if v, ok := cookieValue(h, "café"); !ok || v != "2" {
		t.Errorf("latin-1 name: %q, %v", v, ok)
	}
	if _, ok := cookieValue(h, "missing"); ok {
		t.Error("found a missing cookie")
	}
}

// FuzzParseCookie checks that any header parses without panicking, that
// names and values come back as UTF-8, and that the single-cookie lookup
// used for sessions agrees with the full parse.
func FuzzParseCookie(f *testing.F) {
	for _, s := range []string{
		"", "sessionid=abc", "a=1; a=2", `a="\101\"\\"`, "=;;=", "caf\xe9=\xff",
		"sessionid=.eJxVjMsOwiAQRf-FtSG8yoBL934DGRiQqoGktCvjv2uTLnR7zzn3xQJuaw3byEuYiZ2ZUez0O0ZMj9x2Qndst85Tb:1vb5Ae:oSuQLv2E",
		"a=\"\\\n\"", "\x1c \xa0\x85", `"=";"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		m := ParseCookie(header)
		for k, v := range m {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("non-UTF-8 result %q=%q", k, v)
			}
			got, ok := cookieValue(header, k)
			if !ok || got != v {
				t.Fatalf("cookieValue(%q) = %q, %v; ParseCookie has %q", k, got, ok, v)
			}
		}
	})
}

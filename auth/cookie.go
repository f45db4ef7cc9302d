package auth

import (
	"strings"
	"unicode/utf8"
)

// ParseCookie parses a Cookie header value exactly as Django's
// django.http.parse_cookie does on the latin-1 text that Channels'
// CookieMiddleware hands it: split on ';', split each chunk on its first '='
// (a chunk without one has the empty name), strip Python whitespace from
// name and value, drop chunks where both are empty, unquote double-quoted
// values with Python's http.cookies rules, and let a later duplicate name
// overwrite an earlier one (Go's net/http keeps the first).
//
// The header is read as latin-1, one character per byte; names and values
// are returned as UTF-8. Channels reads only the first Cookie header, so
// callers should pass that one.
func ParseCookie(header string) map[string]string {
	m := make(map[string]string)
	eachCookie(header, func(name, value string) {
		m[latin1String(name)] = latin1String(unquoteCookie(value))
	})
	return m
}

// cookieValue returns what ParseCookie(header)[name] would, without building
// the map.
func cookieValue(header, name string) (string, bool) {
	var raw string
	found := false
	eachCookie(header, func(n, v string) {
		if n == name || latin1String(n) == name {
			raw, found = v, true
		}
	})
	if !found {
		return "", false
	}
	return latin1String(unquoteCookie(raw)), true
}

// eachCookie calls fn with the raw (latin-1, still quoted) name and value of
// every chunk that parse_cookie keeps, in header order.
func eachCookie(header string, fn func(name, value string)) {
	for len(header) > 0 {
		chunk := header
		if i := strings.IndexByte(header, ';'); i >= 0 {
			chunk, header = header[:i], header[i+1:]
		} else {
			header = ""
		}
		var name, value string
		if i := strings.IndexByte(chunk, '='); i >= 0 {
			name, value = chunk[:i], chunk[i+1:]
		} else {
			value = chunk
		}
		name, value = pyStrip(name), pyStrip(value)
		if name != "" || value != "" {
			fn(name, value)
		}
	}
}

// isPySpace reports whether the latin-1 character c is whitespace for
// Python's str.strip().
func isPySpace(c byte) bool {
	switch {
	case c >= 0x09 && c <= 0x0d, c >= 0x1c && c <= 0x20, c == 0x85, c == 0xa0:
		return true
	}
	return false
}

func pyStrip(s string) string {
	i, j := 0, len(s)
	for i < j && isPySpace(s[i]) {
		i++
	}
	for j > i && isPySpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// unquoteCookie is Python's http.cookies._unquote: a value wrapped in
// double quotes loses them, "\ooo" (first digit 0-3) becomes that byte, and
// a backslash before any other character except a newline keeps only that
// character. Anything else is returned unchanged.
func unquoteCookie(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		if s[i+1] == '\n' {
			// Python's '.' does not match a newline: the backslash stays.
			b.WriteByte(c)
			continue
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// latin1String returns s decoded as latin-1 and encoded as UTF-8; ASCII
// text comes back unchanged without copying.
func latin1String(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return string(latin1ToUTF8([]byte(s)))
		}
	}
	return s
}

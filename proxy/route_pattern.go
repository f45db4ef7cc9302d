package proxy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// converter is one typed path parameter kind, as in Django's path
// converters: it says what the parameter matches and what JSON type its
// value takes in templates.
type converter struct {
	re      string
	convert func(string) (any, error)
}

func keepString(s string) (any, error) { return s, nil }

func toInt(s string) (any, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("integer out of range: %w", err)
	}
	return n, nil
}

// converters mirrors django.urls.converters.
var converters = map[string]converter{
	"str":  {re: `[^/]+`, convert: keepString},
	"int":  {re: `[0-9]+`, convert: toInt},
	"slug": {re: `[-a-zA-Z0-9_]+`, convert: keepString},
	"uuid": {re: `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`, convert: keepString},
	"path": {re: `.+`, convert: keepString},
}

var paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pathPattern matches request paths such as /ws/chat/project/{project_id:int}/
// and extracts typed parameters.
type pathPattern struct {
	source string
	re     *regexp.Regexp
	names  []string
	convs  []converter
}

// compilePathPattern parses a route path. Parameters are written {name} or
// {name:type} with type one of str (the default), int, slug, uuid, path.
func compilePathPattern(src string) (*pathPattern, error) {
	if !strings.HasPrefix(src, "/") {
		return nil, fmt.Errorf("path %q must start with /", src)
	}
	p := &pathPattern{source: src}
	var b strings.Builder
	b.WriteString("^")
	seen := map[string]bool{}
	rest := src
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("path %q has an unmatched }", src)
			}
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		if strings.IndexByte(rest[:i], '}') >= 0 {
			return nil, fmt.Errorf("path %q has an unmatched }", src)
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("path %q has an unclosed {", src)
		}
		spec := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		name, kind, hasKind := strings.Cut(spec, ":")
		if !hasKind {
			kind = "str"
		}
		if !paramNameRE.MatchString(name) {
			return nil, fmt.Errorf("path %q: bad parameter name %q", src, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("path %q: parameter %q appears twice", src, name)
		}
		seen[name] = true
		conv, ok := converters[kind]
		if !ok {
			return nil, fmt.Errorf("path %q: unknown parameter type %q (want str, int, slug, uuid or path)", src, kind)
		}
		b.WriteString("(" + conv.re + ")")
		p.names = append(p.names, name)
		p.convs = append(p.convs, conv)
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", src, err)
	}
	p.re = re
	return p, nil
}

// match reports whether path matches and returns the typed parameters.
func (p *pathPattern) match(path string) (map[string]any, bool) {
	m := p.re.FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	params := make(map[string]any, len(p.names))
	for i, name := range p.names {
		v, err := p.convs[i].convert(m[i+1])
		if err != nil {
			return nil, false
		}
		params[name] = v
	}
	return params, true
}

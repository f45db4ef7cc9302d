package proxy

import (
	"reflect"
	"testing"
)

func TestPathPatternMatch(t *testing.T) {
	cases := []struct {
		pattern string
		path    string
		ok      bool
		params  map[string]any
	}{
		{"/ws/room/{name}/", "/ws/room/lobby/", true, map[string]any{"name": "lobby"}},
		{"/ws/room/{name}/", "/ws/room/lob/by/", false, nil},
		{"/ws/room/{name}/", "/ws/room//", false, nil},
		{"/ws/chat/project/{project_id:int}/", "/ws/chat/project/42/", true, map[string]any{"project_id": int64(42)}},
		{"/ws/chat/project/{project_id:int}/", "/ws/chat/project/4x/", false, nil},
		{"/ws/chat/project/{project_id:int}/", "/ws/chat/project/99999999999999999999999/", false, nil},
		{"/ws/p/{s:slug}/", "/ws/p/a-b_c/", true, map[string]any{"s": "a-b_c"}},
		{"/ws/p/{s:slug}/", "/ws/p/a.b/", false, nil},
		{"/ws/u/{id:uuid}/", "/ws/u/123e4567-e89b-12d3-a456-426614174000/", true, map[string]any{"id": "123e4567-e89b-12d3-a456-426614174000"}},
		{"/ws/f/{rest:path}", "/ws/f/a/b/c", true, map[string]any{"rest": "a/b/c"}},
		{"/ws/a.b/", "/ws/aXb/", false, nil},
		{"/ws/status/", "/ws/status/", true, map[string]any{}},
	}
	for _, c := range cases {
		p, err := compilePathPattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		params, ok := p.match(c.path)
		if ok != c.ok {
			t.Errorf("%s on %s: match=%v want %v", c.pattern, c.path, ok, c.ok)
			continue
		}
		if ok && !reflect.DeepEqual(params, c.params) {
			t.Errorf("%s on %s: params %#v want %#v", c.pattern, c.path, params, c.params)
		}
	}
}

func TestPathPatternErrors(t *testing.T) {
	for _, bad := range []string{"ws/x/", "/ws/{x", "/ws/x}/", "/ws/{x:float}/", "/ws/{1x}/", "/ws/{a}/{a}/", "/ws/{}/"} {
		if _, err := compilePathPattern(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

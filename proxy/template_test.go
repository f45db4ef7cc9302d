package proxy

import (
	"reflect"
	"testing"
)

func mapScope(m map[string]any) Scope {
	return func(name string) (any, bool) { v, ok := m[name]; return v, ok }
}

func TestTemplateKeepsTypes(t *testing.T) {
	sc := mapScope(map[string]any{"id": int64(7), "name": "ann", "flag": true, "msg.list": []any{int64(1), "x"}})
	tpl, err := compileTemplate(map[string]any{
		"type":   "user_joined",
		"id":     "{id}",
		"label":  "user {name} #{id}",
		"flag":   "{flag}",
		"list":   "{msg.list}",
		"absent": "{nothing}",
		"text":   "a {{literal}} brace",
		"nested": []any{"{id}", 3.5, nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := tpl.render(sc)
	want := map[string]any{
		"type": "user_joined", "id": int64(7), "label": "user ann #7", "flag": true,
		"list": []any{int64(1), "x"}, "absent": nil, "text": "a {literal} brace",
		"nested": []any{int64(7), 3.5, nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestTemplatePythonStr(t *testing.T) {
	tpl, _ := compileString("g_{a}_{b}_{c}")
	got := tpl.renderString(mapScope(map[string]any{"a": true, "b": nil, "c": 1.5}))
	if got != "g_True_None_1.5" {
		t.Fatalf("got %q", got)
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, bad := range []string{"{", "a}", "{a b}", "{.x}", "{x.}"} {
		if _, err := compileString(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCompileRouteRejectsUnknownPlaceholder(t *testing.T) {
	rc := &RouteConfig{Path: "/ws/room/{name}/", Groups: []string{"room_{nme}"}}
	if _, err := compileRoute(rc); err == nil {
		t.Fatal("no error for unknown placeholder")
	}
	rc = &RouteConfig{Path: "/ws/room/{name}/", Groups: []string{"room {name}"}}
	if _, err := compileRoute(rc); err != nil {
		t.Fatalf("templated group names are checked when rendered, got %v", err)
	}
	rc = &RouteConfig{Path: "/ws/room/", Groups: []string{"bad name"}}
	if _, err := compileRoute(rc); err == nil {
		t.Fatal("no error for invalid literal group")
	}
}

func TestDecodeFrameNumbers(t *testing.T) {
	m, err := decodeFrame([]byte(`{"i":1,"f":1.0,"e":1e3,"big":18446744073709551615,"neg":-5,"n":null,"l":[2,2.5]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"i": int64(1), "f": 1.0, "e": 1000.0, "big": uint64(18446744073709551615),
		"neg": int64(-5), "n": nil, "l": []any{int64(2), 2.5}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v", m)
	}
	for _, bad := range []string{`nope`, `[1]`, `"s"`, `{"a":1} {"b":2}`, `{"a":1}x`, ``} {
		if _, err := decodeFrame([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{`{"type":"x","n":1}`, `[]`, `{"a":{"b":[1,2.5,null,true]}}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeFrame(data)
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
	})
}

func TestJSONSafeDoesNotMutate(t *testing.T) {
	inner := map[string]any{"b": []byte("x")}
	in := map[string]any{"a": inner, "l": []any{[]byte("y")}}
	out := jsonSafe(in).(map[string]any)
	if _, ok := inner["b"].([]byte); !ok {
		t.Fatal("input was mutated")
	}
	if out["a"].(map[string]any)["b"] != "x" || out["l"].([]any)[0] != "y" {
		t.Fatalf("bytes not converted: %#v", out)
	}
	same := map[string]any{"s": "x"}
	if reflect.ValueOf(jsonSafe(same)).UnsafePointer() != reflect.ValueOf(same).UnsafePointer() {
		t.Fatal("copied a map that needed no change")
	}
}

func TestTemplateDefaults(t *testing.T) {
	tpl, err := compileTemplate(map[string]any{
		"n": "{event.count|0}", "s": "{event.status|'pending'}", "z": "{event.none|null}",
		"f": "{event.ratio|0.5}", "b": "{event.flag|false}", "txt": "x-{event.kind|plain}",
		"present": "{event.here|7}",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := tpl.render(mapScope(map[string]any{"event.here": nil}))
	want := map[string]any{"n": int64(0), "s": "pending", "z": nil, "f": 0.5, "b": false, "txt": "x-plain", "present": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

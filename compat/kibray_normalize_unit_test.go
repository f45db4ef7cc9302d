package compat

import (
	"encoding/json"
	"strings"
	"testing"
)

func kibrayTestRefs() *kibrayRefs {
	refs := newKibrayRefs()
	refs.add(kibrayKindUser, "alice", 7)
	refs.add(kibrayKindUser, "bob", 8)
	refs.add(kibrayKindProject, "p1", 3)
	refs.add(kibrayKindChannel, "general", 11)
	refs.add(kibrayKindNotification, "n1", 40)
	refs.add(kibrayKindMessage, "m0", 90)
	return refs
}

func mustKibrayJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeKibrayJSON([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

// TestKibrayNormalize covers each replacement the normalizer makes and
// each value it must leave alone.
func TestKibrayNormalize(t *testing.T) {
	raw := map[string][]any{
		"a": {
			"<open>",
			mustKibrayJSON(t, `{"type":"message","message_id":501,"user_id":7,"timestamp":"2026-04-20T09:15:02.481133","attachments":[]}`),
			mustKibrayJSON(t, `{"type":"read_receipt","message_id":501,"user_id":8,"timestamp":"2026-04-20T09:15:03+00:00"}`),
			mustKibrayJSON(t, `{"type":"message","message_id":502,"user_id":9,"timestamp":"2026-04-20T09:15:04.000000+00:00"}`),
			mustKibrayJSON(t, `{"type":"connection_established","project_id":"3","channel_id":11,"online_users":[{"user_id":8,"last_seen":"2026-04-20T09:15:02Z"}]}`),
			mustKibrayJSON(t, `{"type":"notification","id":40,"count":1500.0,"task_id":42,"uuid":"6F9619FF-8B86-D011-B42D-00C04FC964FF","date":"2026-03-31"}`),
			"<closed 4001>",
		},
		"b": {
			mustKibrayJSON(t, `{"message_id":502,"read":90,"message":"2026-04-20T09:15:04 is text","notification":{"id":41}}`),
			mustKibrayJSON(t, `{"message_id":"0502","user_id":"7","ids":[501,7]}`),
			mustKibrayJSON(t, `{"uuid":"6f9619ff-8b86-d011-b42d-00c04fc964ff","other":"00000000-0000-0000-0000-000000000001"}`),
		},
	}
	got := normalizeKibrayTranscripts([]string{"a", "b"}, raw, kibrayTestRefs())
	want := map[string][]any{
		"a": {
			"<open>",
			mustKibrayJSON(t, `{"type":"message","message_id":"<id:1>","user_id":"<user:alice>","timestamp":"<ts>","attachments":[]}`),
			mustKibrayJSON(t, `{"type":"read_receipt","message_id":"<id:1>","user_id":"<user:bob>","timestamp":"<ts>"}`),
			// An id that no fixture has stays a number.
			mustKibrayJSON(t, `{"type":"message","message_id":"<id:2>","user_id":9,"timestamp":"<ts>"}`),
			mustKibrayJSON(t, `{"type":"connection_established","project_id":"<project:p1 as text>","channel_id":"<channel:general>","online_users":[{"user_id":"<user:bob>","last_seen":"<ts>"}]}`),
			mustKibrayJSON(t, `{"type":"notification","id":"<notification:n1>","count":1500,"task_id":42,"uuid":"<uuid:1>","date":"2026-03-31"}`),
			"<closed 4001>",
		},
		"b": {
			mustKibrayJSON(t, `{"message_id":"<id:2>","read":90,"message":"2026-04-20T09:15:04 is text","notification":{"id":"<id:3>"}}`),
			mustKibrayJSON(t, `{"message_id":"<id:2 as text>","user_id":"<user:alice as text>","ids":[501,7]}`),
			mustKibrayJSON(t, `{"uuid":"<uuid:1>","other":"<uuid:2>"}`),
		},
	}
	wantSet := map[string][]any{}
	for k, v := range want {
		wantSet[k] = canonicalKibrayNumbers(v).([]any)
	}
	if d := diffKibrayTranscripts("want", wantSet, "got", got); d != "" {
		t.Fatal(d)
	}
}

// TestKibrayNormalizeKeepsDifferences: transcripts that differ in
// anything but timestamps and the values of generated ids still differ
// after normalization.
func TestKibrayNormalizeKeepsDifferences(t *testing.T) {
	refs := kibrayTestRefs()
	base := `{"type":"message","message_id":501,"user_id":7,"timestamp":"2026-04-20T09:15:02","is_typing":true}`
	same := []string{
		`{"type":"message","message_id":777,"user_id":7,"timestamp":"2026-04-21T10:00:00.5+00:00","is_typing":true}`,
		`{"timestamp":"2026-04-20T09:15:02Z","is_typing":true,"user_id":7.0,"message_id":12,"type":"message"}`,
	}
	different := []string{
		`{"type":"message","message_id":501,"user_id":8,"timestamp":"2026-04-20T09:15:02","is_typing":true}`,
		`{"type":"message","message_id":"501","user_id":7,"timestamp":"2026-04-20T09:15:02","is_typing":true}`,
		`{"type":"message","message_id":501,"user_id":"7","timestamp":"2026-04-20T09:15:02","is_typing":true}`,
		`{"type":"message","message_id":501,"user_id":7,"timestamp":"yesterday","is_typing":true}`,
		`{"type":"message","message_id":501,"user_id":7,"timestamp":"2026-04-20T09:15:02","is_typing":"true"}`,
		`{"type":"message","message_id":501,"user_id":7,"timestamp":"2026-04-20T09:15:02"}`,
		`{"type":"message","message_id":501,"user_id":7,"timestamp":"2026-04-20T09:15:02","is_typing":true,"extra":null}`,
	}
	norm := func(s string) map[string][]any {
		return normalizeKibrayTranscripts([]string{"c"}, map[string][]any{"c": {mustKibrayJSON(t, s)}}, refs)
	}
	for _, s := range same {
		if d := diffKibrayTranscripts("base", norm(base), "other", norm(s)); d != "" {
			t.Errorf("should normalize to the same transcript:\n%s", d)
		}
	}
	for _, s := range different {
		if d := diffKibrayTranscripts("base", norm(base), "other", norm(s)); d == "" {
			t.Errorf("normalization hid a real difference: %s", s)
		}
	}
	// Two distinct generated ids stay distinct, and their equality
	// pattern across frames is kept.
	pair := func(a, b string) map[string][]any {
		return normalizeKibrayTranscripts([]string{"c"}, map[string][]any{"c": {
			mustKibrayJSON(t, `{"message_id":`+a+`}`), mustKibrayJSON(t, `{"message_id":`+b+`}`),
		}}, refs)
	}
	if diffKibrayTranscripts("x", pair("1", "1"), "y", pair("5", "6")) == "" {
		t.Error("equal ids and different ids normalize alike")
	}
	if d := diffKibrayTranscripts("x", pair("1", "2"), "y", pair("5", "6")); d != "" {
		t.Errorf("fresh ids: %s", d)
	}
}

// TestKibrayRefs covers references in paths and in frames.
func TestKibrayRefs(t *testing.T) {
	refs := kibrayTestRefs()
	refs.captures["m1"] = json.Number("501")
	refs.captures["label"] = "hello"
	path, err := refs.resolveText("/ws/chat/project/{project:p1}/?u={user:bob}&c={capture:label}")
	if err != nil || path != "/ws/chat/project/3/?u=8&c=hello" {
		t.Fatalf("got %q, %v", path, err)
	}
	v, err := refs.resolveRaw(json.RawMessage(`{"message_id":"{capture:m1}","to":["{user:alice}"],"text":"for {user:alice}","n":1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"message_id":501,"n":1.5,"text":"for 7","to":[7]}` {
		t.Fatalf("got %s", b)
	}
	for _, bad := range []string{`"{user:zoe}"`, `"{capture:nothing}"`, `{"a":["x {project:p9}"]}`} {
		if _, err := refs.resolveRaw(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
	if _, err := refs.resolveText("/ws/{channel:none}/"); err == nil {
		t.Error("unknown channel in a path: want an error")
	}
}

// TestKibrayRouteOf: every route is recognised in Kibray's order, with
// references and queries in paths.
func TestKibrayRouteOf(t *testing.T) {
	cases := map[string]string{
		"/ws/chat/project/{project:p1}/?lang=es":    "chat_project",
		"/ws/chat/general/":                         "chat_channel",
		"/ws/chat/{channel:c1}/":                    "chat_channel",
		"/ws/chat/direct/{user:bob}/":               "chat_direct",
		"/ws/notifications/":                        "notifications",
		"/ws/dashboard/project/5/":                  "dashboard_project",
		"/ws/dashboard/admin/":                      "dashboard_admin",
		"/ws/daily-plan/2025-99-99/":                "daily_plan",
		"/ws/quality/inspection/012/":               "quality_inspection",
		"/ws/tasks/{project:p1}/":                   "tasks",
		"/ws/status/":                               "status",
		"/ws/notifications":                         "",
		"/ws/chat/direct/":                          "chat_channel",
		"/ws/daily-plan/20-04-2026/":                "",
		"/ws/chat/caf\u00e9/":                       "",
		"/ws/tasks/{project:p1}/extra/":             "",
		"/ws/dashboard/project/{project:p1}/?x=/ws": "dashboard_project",
	}
	for path, want := range cases {
		if got := kibrayRouteOf(path); got != want {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
}

// FuzzKibrayNormalize feeds arbitrary frames (as a server could send
// them) through decoding and normalization: nothing panics, the result
// encodes, and normalizing is idempotent.
func FuzzKibrayNormalize(f *testing.F) {
	for _, seed := range []string{
		`{"type":"message","message_id":501,"user_id":7,"timestamp":"2026-04-20T09:15:02.481133"}`,
		`{"id":"0040","online_users":[{"user_id":"8","last_seen":"2026-04-20T09:15:02Z"}]}`,
		`[1, 2.50, -0, 1e400, "6f9619ff-8b86-d011-b42d-00c04fc964ff"]`,
		`{"message_id":99999999999999999999999,"x":{"message_id":-1}}`,
		`"plain"`, `null`, `{"user_id":1e2}`,
	} {
		f.Add([]byte(seed))
	}
	refs := kibrayTestRefs()
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeKibrayJSON(data)
		if err != nil {
			return
		}
		once := normalizeKibrayTranscripts([]string{"c"}, map[string][]any{"c": {v}}, refs)
		out := kibrayJSON(once["c"])
		if strings.HasPrefix(out, "<unencodable") {
			t.Fatalf("normalized value does not encode: %s", out)
		}
		again, err := decodeKibrayJSON([]byte(out))
		if err != nil {
			t.Fatalf("normalized JSON does not decode: %s: %v", out, err)
		}
		twice := normalizeKibrayTranscripts([]string{"c"}, map[string][]any{"c": again.([]any)}, refs)
		if kibrayJSON(twice["c"]) != out {
			t.Fatalf("not idempotent:\n%s\n%s", out, kibrayJSON(twice["c"]))
		}
	})
}

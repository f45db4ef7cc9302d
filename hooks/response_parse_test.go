package hooks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseResponseEveryKey(t *testing.T) {
	src := `{
		"allow": true,
		"reply": [{"type": "ack", "message_id": 12}, {"type": "note", "ratio": 0.5}],
		"event": {"message_id": 9007199254740993, "message": "clean &lt;b&gt;", "tags": [1, 2.5]},
		"group_send": [{"group": "chat_project_7", "event": {"type": "chat_message", "id": 3}}],
		"join": ["project_7.presence"],
		"leave": ["lobby-1"],
		"error": {"error": "not_member", "message": "join the project first"},
		"close": {"code": 4003, "reason": "forbidden"}
	}`
	r, err := parseResponse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if r.Allow == nil || !*r.Allow || r.Denied() {
		t.Fatalf("allow: %v", r.Allow)
	}
	wantReply := []map[string]any{{"type": "ack", "message_id": int64(12)}, {"type": "note", "ratio": 0.5}}
	if !reflect.DeepEqual(r.Reply, wantReply) {
		t.Fatalf("reply: %#v", r.Reply)
	}
	// An integer past 2^53 stays exact, as Python sent it.
	wantEvent := map[string]any{"message_id": int64(9007199254740993), "message": "clean &lt;b&gt;", "tags": []any{int64(1), 2.5}}
	if !reflect.DeepEqual(r.Event, wantEvent) {
		t.Fatalf("event: %#v", r.Event)
	}
	wantGS := []GroupSend{{Group: "chat_project_7", Event: map[string]any{"type": "chat_message", "id": int64(3)}}}
	if !reflect.DeepEqual(r.GroupSend, wantGS) {
		t.Fatalf("group_send: %#v", r.GroupSend)
	}
	if !reflect.DeepEqual(r.Join, []string{"project_7.presence"}) || !reflect.DeepEqual(r.Leave, []string{"lobby-1"}) {
		t.Fatalf("join %v leave %v", r.Join, r.Leave)
	}
	if *r.Error != (ErrorFrame{Error: "not_member", Message: "join the project first"}) {
		t.Fatalf("error: %+v", r.Error)
	}
	if *r.Close != (Close{Code: 4003, Reason: "forbidden"}) {
		t.Fatalf("close: %+v", r.Close)
	}

	// A clone is equal and shares nothing mutable.
	c := r.clone()
	if !reflect.DeepEqual(c, r) {
		t.Fatalf("clone differs:\n%#v\n%#v", c, r)
	}
	c.Event["tags"].([]any)[0] = "changed"
	c.Reply[0]["type"] = "changed"
	*c.Allow = false
	c.Join[0] = "changed"
	if r.Event["tags"].([]any)[0] != int64(1) || r.Reply[0]["type"] != "ack" || !*r.Allow || r.Join[0] != "project_7.presence" {
		t.Fatal("changing the clone changed the original")
	}
}

func TestParseResponseSmallAnswers(t *testing.T) {
	cases := []struct {
		src  string
		want Response
	}{
		{`{}`, Response{}},
		{` {"allow": false} `, Response{Allow: new(false)}},
		{`{"allow": null, "reply": null, "event": null, "group_send": null, "join": null, "leave": null, "error": null, "close": null}`, Response{}},
		{`{"reply": []}`, Response{Reply: []map[string]any{}}},
		{`{"error": {"error": "slow_down"}}`, Response{Error: &ErrorFrame{Error: "slow_down"}}},
		{`{"error": {"error": "x", "message": null}}`, Response{Error: &ErrorFrame{Error: "x"}}},
		{`{"close": {"code": 1000}}`, Response{Close: &Close{Code: 1000}}},
		{`{"close": {"code": 3000, "reason": null}}`, Response{Close: &Close{Code: 3000}}},
		{`{"close": {"code": 4999, "reason": "` + strings.Repeat("r", 123) + `"}}`, Response{Close: &Close{Code: 4999, Reason: strings.Repeat("r", 123)}}},
		{`{"event": {"big": 1e400, "neg": -12, "huge": 18446744073709551615}}`, Response{Event: map[string]any{"big": json.Number("1e400"), "neg": int64(-12), "huge": uint64(18446744073709551615)}}},
	}
	for _, tc := range cases {
		r, err := parseResponse([]byte(tc.src))
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(*r, tc.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.src, *r, tc.want)
		}
	}
}

func TestParseResponseMalformed(t *testing.T) {
	longGroup := strings.Repeat("g", 100)
	cases := []struct{ src, want string }{
		{``, "not valid JSON"},
		{`{"allow": true`, "not valid JSON"},
		{`{} {}`, "data after"},
		{`{}x`, "data after"},
		{`[]`, "must be a JSON object, not an array"},
		{`null`, "not null"},
		{`"allow"`, "not a string"},
		{`{"allowed": true}`, `unknown key "allowed"`},
		{`{"Allow": null}`, `unknown key "Allow"`},
		{`{"allow": "true"}`, `"allow" must be true or false, not a string`},
		{`{"allow": 1}`, `"allow" must be true or false, not a number`},
		{`{"reply": {"type": "x"}}`, `"reply" must be an array`},
		{`{"reply": [{"type": "x"}, "text"]}`, `"reply[1]" must be a JSON object, not a string`},
		{`{"reply": [[]]}`, `"reply[0]" must be a JSON object, not an array`},
		{`{"event": [1]}`, `"event" must be a JSON object`},
		{`{"event": "x"}`, `"event" must be a JSON object`},
		{`{"group_send": {"group": "g"}}`, `"group_send" must be an array`},
		{`{"group_send": [1]}`, `"group_send[0]" must be a JSON object`},
		{`{"group_send": [{"group": "g", "event": {"type": "t"}, "extra": 1}]}`, `unknown key "extra"`},
		{`{"group_send": [{"event": {"type": "t"}}]}`, `"group_send[0].group" must be a group name string, not null`},
		{`{"group_send": [{"group": "bad group", "event": {"type": "t"}}]}`, `not a valid group name`},
		{`{"group_send": [{"group": "` + longGroup + `", "event": {"type": "t"}}]}`, `not a valid group name`},
		{`{"group_send": [{"group": "g"}]}`, `"group_send[0].event" must be a JSON object, not null`},
		{`{"group_send": [{"group": "g", "event": {}}]}`, `needs a non-empty string "type"`},
		{`{"group_send": [{"group": "g", "event": {"type": 3}}]}`, `needs a non-empty string "type"`},
		{`{"group_send": [{"group": "g", "event": {"type": ""}}]}`, `needs a non-empty string "type"`},
		{`{"join": "room"}`, `"join" must be an array of group names`},
		{`{"join": [7]}`, `"join[0]" must be a group name string, not a number`},
		{`{"leave": ["ok", "not ok"]}`, `"leave[1]": "not ok" is not a valid group name`},
		{`{"leave": [""]}`, `not a valid group name`},
		{`{"join": ["caf\u00e9"]}`, `not a valid group name`},
		{`{"error": "denied"}`, `"error" must be a JSON object`},
		{`{"error": {"message": "m"}}`, `"error.error" must be a non-empty string`},
		{`{"error": {"error": ""}}`, `"error.error" must be a non-empty string`},
		{`{"error": {"error": "x", "message": 5}}`, `"error.message" must be a string`},
		{`{"error": {"error": "x", "code": 5}}`, `unknown key "code"`},
		{`{"close": 4003}`, `"close" must be a JSON object`},
		{`{"close": {"reason": "x"}}`, `"close.code" must be an integer, not null`},
		{`{"close": {"code": "4003"}}`, `"close.code" must be an integer, not a string`},
		{`{"close": {"code": 4003.5}}`, `"close.code" must be an integer`},
		{`{"close": {"code": 4e3}}`, `"close.code" must be an integer`},
		{`{"close": {"code": 1001}}`, `1000 or 3000-4999`},
		{`{"close": {"code": 1006}}`, `1000 or 3000-4999`},
		{`{"close": {"code": 2999}}`, `1000 or 3000-4999`},
		{`{"close": {"code": 5000}}`, `1000 or 3000-4999`},
		{`{"close": {"code": -4003}}`, `1000 or 3000-4999`},
		{`{"close": {"code": 99999999999999999999}}`, `must be an integer`},
		{`{"close": {"code": 4000, "reason": 1}}`, `"close.reason" must be a string`},
		{`{"close": {"code": 4000, "reason": "` + strings.Repeat("r", 124) + `"}}`, `124 bytes`},
		{`{"close": {"code": 4000, "why": "x"}}`, `unknown key "why"`},
	}
	for _, tc := range cases {
		r, err := parseResponse([]byte(tc.src))
		if err == nil {
			t.Errorf("%s: parsed as %#v, want an error", tc.src, r)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.src, err, tc.want)
		}
	}
}

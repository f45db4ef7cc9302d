package hooks

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// FuzzParseResponse feeds arbitrary answers to the parser: it must never
// panic, and whatever it accepts must hold up to every promise the
// route engine relies on.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"allow": false}`, `{"allow": true, "reply": [{"type": "x", "n": 1}]}`,
		`{"event": {"message_id": 5, "message": "hi", "f": 1.5, "big": 1e400}}`,
		`{"group_send": [{"group": "chat_1", "event": {"type": "chat.message", "x": [1, {"y": null}]}}]}`,
		`{"join": ["a", "b.c-d_e"], "leave": ["z"]}`,
		`{"error": {"error": "code", "message": "text"}}`,
		`{"close": {"code": 4003, "reason": "nope"}}`, `{"close": {"code": 1000}}`,
		`[]`, `null`, `{"allow": "yes"}`, `{"close": {"code": 1e3}}`, `{"a":1}{}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseResponse(data)
		if err != nil {
			if r != nil {
				t.Fatal("an error came with a response")
			}
			return
		}
		for _, g := range append(append([]string(nil), r.Join...), r.Leave...) {
			if !bridge.ValidGroupName(g) {
				t.Fatalf("accepted group name %q", g)
			}
		}
		for _, gs := range r.GroupSend {
			if !bridge.ValidGroupName(gs.Group) {
				t.Fatalf("accepted group name %q", gs.Group)
			}
			if typ, _ := gs.Event["type"].(string); typ == "" {
				t.Fatalf("accepted an event without a type: %v", gs.Event)
			}
		}
		if r.Close != nil && r.Close.Code != 1000 && (r.Close.Code < 3000 || r.Close.Code > 4999) {
			t.Fatalf("accepted close code %d", r.Close.Code)
		}
		if r.Close != nil && len(r.Close.Reason) > maxCloseReason {
			t.Fatalf("accepted a %d-byte reason", len(r.Close.Reason))
		}
		if r.Error != nil && r.Error.Error == "" {
			t.Fatal("accepted an empty error code")
		}
		for _, fr := range r.Reply {
			if fr == nil {
				t.Fatal("accepted a null frame")
			}
		}
		// Whatever was accepted can be sent on as JSON, and cloned.
		if _, err := json.Marshal(r.Reply); err != nil {
			t.Fatalf("reply does not encode: %v", err)
		}
		if _, err := json.Marshal(r.Event); err != nil {
			t.Fatalf("event does not encode: %v", err)
		}
		_ = r.clone()
	})
}

// FuzzVerifySignature checks that arbitrary headers never panic the
// verifier and never pass without the right MAC.
func FuzzVerifySignature(f *testing.F) {
	now := time.Unix(1700000000, 0)
	body := []byte(`{"event":"connect"}`)
	f.Add("1700000000", Sign([]byte(testSecret), now.Unix(), body))
	f.Add("1700000000", "v1=")
	f.Add("-5", "v1=zz")
	f.Add("99999999999999999999999", "v1=00")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, ts, sig string) {
		err := VerifySignature([][]byte{[]byte(testSecret)}, ts, sig, body, now)
		if err == nil && sig != Sign([]byte(testSecret), 1700000000, body) {
			t.Fatalf("accepted ts %q sig %q", ts, sig)
		}
	})
}

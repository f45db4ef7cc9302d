package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/hooks"
	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// kibrayHookFixtures is the data the hook view tests work on.
const kibrayHookFixtures = `{
  "users": [{"username": "alice"}, {"username": "bob"}, {"username": "carol"},
            {"username": "dave", "is_staff": true}, {"username": "ivan", "is_active": false}],
  "projects": [{"name": "p1", "title": "Tower A", "members": ["alice", "bob", "ivan"],
                "budget_total": "1000.00", "total_expenses": "250.25", "contract_value": "1500.00",
                "percent_complete": "40.00", "planned_percent": "50.00", "status_date": "2026-03-31"}],
  "channels": [{"name": "general", "project": "p1", "title": "General", "slug": "general", "is_default": true},
               {"name": "design", "project": "p1", "title": "Design"}],
  "notifications": [{"name": "n1", "user": "alice", "title": "one"}, {"name": "n2", "user": "alice", "title": "two"}]
}`

// kibrayHooks calls the kibray app's hook views with the sidecar's own
// hook client, so that every answer also passes the client's strict
// parser.
type kibrayHooks struct {
	t      *testing.T
	client *hooks.Client
	ids    map[string]map[string]int64
}

// call sends one hook call for user (a username, "" for anonymous) and
// fails the test if the call fails.
func (h *kibrayHooks) call(path, event, user string, params map[string]any, handler string, frame map[string]any) *hooks.Response {
	h.t.Helper()
	resp, err := h.try(path, event, user, params, handler, frame)
	if err != nil {
		h.t.Fatalf("%s %s: %v", event, path, err)
	}
	return resp
}

func (h *kibrayHooks) try(path, event, user string, params map[string]any, handler string, frame map[string]any) (*hooks.Response, error) {
	req := hooks.Request{Event: event, Route: "/ws/kibray/", Path: "/ws/kibray/", Params: params,
		Channel: "specific.kibray!" + user, Handler: handler, Frame: frame}
	if user != "" {
		req.UserID = strconv.FormatInt(h.id("users", user), 10)
		req.Authenticated = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return h.client.Call(ctx, path, req)
}

func (h *kibrayHooks) id(kind, name string) int64 {
	h.t.Helper()
	id, ok := h.ids[kind][name]
	if !ok {
		h.t.Fatalf("no %s %s in the fixtures", kind, name)
	}
	return id
}

// group renders a group name with an id, as Django names it.
func kibrayGroup(prefix string, ids ...int64) string {
	s := prefix
	for i, id := range ids {
		if i > 0 {
			s += "_"
		}
		s += strconv.FormatInt(id, 10)
	}
	return s
}

// kibrayPostJSON posts body to a Django test API view and decodes the
// answer into out.
func kibrayPostJSON(t *testing.T, url string, body []byte, out any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", url, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("POST %s: %q: %v", url, data, err)
	}
}

// TestKibrayHookViews calls every hook view of the kibray app
// (/internal/ws/...) through the sidecar's hook client against a real
// Django on both Python stacks, for each event it serves, and checks the
// answers: verdicts and groups of authorize, frames of connect, the
// group_send events of receive handlers (and their "event" form with
// ?mode=event), error frames, and the 4001/4003 closes.
func TestKibrayHookViews(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		// No Redis: the hook views return group_sends, they never send.
		env := kibrayDjangoEnv(st, "", filepath.Join(t.TempDir(), "kibray-hooks.sqlite3"))
		django := testenv.StartDjango(t, env...)
		client, err := hooks.New(hooks.Config{BaseURL: django, Secret: kibrayHookSecret}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(client.Close)
		h := &kibrayHooks{t: t, client: client}
		kibrayPostJSON(t, django+"/internal/kibray/fixtures/", []byte(kibrayHookFixtures), &h.ids)
		testKibrayHookViews(t, h, django)
	})
}

func testKibrayHookViews(t *testing.T, h *kibrayHooks, django string) {
	alice, bob := h.id("users", "alice"), h.id("users", "bob")
	p1 := h.id("projects", "p1")
	general := h.id("channels", "general")
	project := map[string]any{"project_id": p1}

	t.Run("chat project", func(t *testing.T) {
		const path = "/internal/ws/chat/project/"
		r := h.call(path, "authorize", "alice", project, "", nil)
		wantAllow(t, r, true, kibrayGroup("chat_project_", p1))
		for _, user := range []string{"carol", "ivan", ""} {
			wantAllow(t, h.call(path, "authorize", user, project, "", nil), false)
		}
		wantAllow(t, h.call(path, "authorize", "alice", map[string]any{"project_id": 987654}, "", nil), false)

		r = h.call(path, "connect", "alice", project, "", nil)
		if len(r.Reply) != 1 || r.Reply[0]["type"] != "user_joined" || r.Reply[0]["user_id"] != alice || r.Reply[0]["username"] != "alice" {
			t.Errorf("connect reply: %v", r.Reply)
		}
		wantSend(t, r, kibrayGroup("chat_project_", p1), "user_joined", map[string]any{"user_id": alice, "username": "alice"})

		r = h.call(path, "receive", "alice", project, "message", map[string]any{"type": "message", "message": "<b>hi</b>", "attachments": []any{"a.pdf"}})
		ev := wantSend(t, r, kibrayGroup("chat_project_", p1), "chat_message",
			map[string]any{"message": "&lt;b&gt;hi&lt;/b&gt;", "user_id": alice, "username": "alice", "attachments": []any{"a.pdf"}})
		msgID, ok := ev["message_id"].(int64)
		if !ok || msgID <= 0 {
			t.Fatalf("message_id %v (%T)", ev["message_id"], ev["message_id"])
		}

		r = h.call(path+"?mode=event", "receive", "bob", project, "chat_message", map[string]any{"type": "chat_message", "message": "as event"})
		if len(r.GroupSend) != 0 || r.Event["message"] != "as event" || r.Event["username"] != "bob" || r.Event["type"] != nil {
			t.Errorf("?mode=event: event %v, group_send %v", r.Event, r.GroupSend)
		}
		if id, ok := r.Event["message_id"].(int64); !ok || id <= msgID {
			t.Errorf("?mode=event: message_id %v after %d", r.Event["message_id"], msgID)
		}

		wantError(t, h.call(path, "receive", "alice", project, "message", map[string]any{"type": "message", "message": ""}), "invalid_message")
		wantError(t, h.call(path, "receive", "alice", project, "dance", map[string]any{"type": "dance"}), "unknown_type")
		wantError(t, h.call(path, "receive", "bob", project, "read_receipt", map[string]any{"message_id": "x"}), "invalid_message_id")

		r = h.call(path, "receive", "bob", project, "read_receipt", map[string]any{"type": "read_receipt", "message_id": msgID})
		wantSend(t, r, kibrayGroup("chat_project_", p1), "read_receipt", map[string]any{"message_id": msgID, "user_id": bob})
		r = h.call(path, "receive", "bob", project, "typing", map[string]any{"type": "typing", "is_typing": false})
		wantSend(t, r, kibrayGroup("chat_project_", p1), "typing_indicator", map[string]any{"user_id": bob, "username": "bob", "is_typing": false})

		r = h.call(path, "disconnect", "bob", project, "", nil)
		wantSend(t, r, kibrayGroup("chat_project_", p1), "user_left", map[string]any{"user_id": bob, "username": "bob"})

		// An inactive user's socket closes with 4001 on its next frame.
		wantClose(t, h.call(path, "receive", "ivan", project, "message", map[string]any{"message": "x"}), 4001)

		// Revoked access: writes close with 4003; typing still goes out.
		kibrayOp(t, django, map[string]any{"op": "revoke_access", "project": p1, "user": "bob"})
		wantClose(t, h.call(path, "receive", "bob", project, "message", map[string]any{"message": "x"}), 4003)
		wantClose(t, h.call(path, "receive", "bob", project, "read_receipt", map[string]any{"message_id": msgID}), 4003)
		wantSend(t, h.call(path, "receive", "bob", project, "typing", map[string]any{}), kibrayGroup("chat_project_", p1),
			"typing_indicator", map[string]any{"is_typing": true})
		kibrayOp(t, django, map[string]any{"op": "grant_access", "project": p1, "user": "bob"})
	})

	t.Run("chat channel", func(t *testing.T) {
		const path = "/internal/ws/chat/channel/"
		for _, id := range []any{"general", strconv.FormatInt(general, 10), general} {
			wantAllow(t, h.call(path, "authorize", "alice", map[string]any{"channel_id": id}, "", nil), true, kibrayGroup("chat_channel_", general))
		}
		wantAllow(t, h.call(path, "authorize", "alice", map[string]any{"channel_id": "nope"}, "", nil), false)
		wantAllow(t, h.call(path, "authorize", "carol", map[string]any{"channel_id": "general"}, "", nil), false)
		r := h.call(path, "connect", "alice", map[string]any{"channel_id": "general"}, "", nil)
		if len(r.Reply) != 1 || r.Reply[0]["type"] != "connection_established" || r.Reply[0]["channel_id"] != general || r.Reply[0]["project_id"] != p1 {
			t.Errorf("connect reply: %v", r.Reply)
		}
		r = h.call(path, "receive", "alice", map[string]any{"channel_id": "general"}, "chat_message",
			map[string]any{"type": "chat_message", "message": map[string]any{"type": "chat_message", "message": "wrapped"}})
		wantSend(t, r, kibrayGroup("chat_channel_", general), "chat_message", map[string]any{"message": "wrapped"})
	})

	t.Run("chat direct", func(t *testing.T) {
		const path = "/internal/ws/chat/direct/"
		low, high := alice, bob
		if low > high {
			low, high = high, low
		}
		wantAllow(t, h.call(path, "authorize", "alice", map[string]any{"user_id": bob}, "", nil), true, kibrayGroup("direct_chat_", low, high))
		wantAllow(t, h.call(path, "authorize", "alice", map[string]any{"user_id": alice}, "", nil), false)
		wantAllow(t, h.call(path, "authorize", "alice", map[string]any{"user_id": h.id("users", "ivan")}, "", nil), false)
		r := h.call(path, "receive", "alice", map[string]any{"user_id": bob}, "message", map[string]any{"message": "hey"})
		wantSend(t, r, kibrayGroup("direct_chat_", low, high), "direct_message", map[string]any{"message": "hey", "from_user_id": alice, "from_username": "alice"})
	})

	t.Run("notifications", func(t *testing.T) {
		const path = "/internal/ws/notifications/"
		wantAllow(t, h.call(path, "authorize", "alice", nil, "", nil), true, kibrayGroup("notifications_", alice))
		wantAllow(t, h.call(path, "authorize", "", nil, "", nil), false)
		r := h.call(path, "connect", "alice", nil, "", nil)
		if !reflect.DeepEqual(r.Reply, []map[string]any{{"type": "unread_count", "count": int64(2)}}) {
			t.Errorf("connect reply: %v", r.Reply)
		}
		r = h.call(path, "receive", "alice", nil, "mark_read", map[string]any{"notification_id": h.id("notifications", "n1")})
		wantSend(t, r, kibrayGroup("notifications_", alice), "unread_count", map[string]any{"count": int64(1)})
		r = h.call(path, "receive", "alice", nil, "mark_all_read", nil)
		wantSend(t, r, kibrayGroup("notifications_", alice), "unread_count", map[string]any{"count": int64(0)})
		wantError(t, h.call(path, "receive", "alice", nil, "dismiss", map[string]any{}), "invalid_notification_id")
	})

	t.Run("dashboards", func(t *testing.T) {
		r := h.call("/internal/ws/dashboard/project/", "authorize", "alice", project, "", nil)
		wantAllow(t, r, true, kibrayGroup("dashboard_project_", p1))
		wantAllow(t, h.call("/internal/ws/dashboard/project/", "authorize", "carol", project, "", nil), false)
		r = h.call("/internal/ws/dashboard/project/", "connect", "alice", project, "", nil)
		want := map[string]any{
			"type": "dashboard_data", "project_name": "Tower A", "budget_total": 1000.0, "total_expenses": 250.25,
			"budget_remaining": 749.75, "profit": 1249.75,
			"earned_value": map[string]any{"as_of": "2026-03-31", "percent_complete": 40.0, "planned_value": 500.0,
				"earned_value": 400.0, "actual_cost": 250.25, "schedule_variance": -100.0, "cost_variance": 149.75},
		}
		if len(r.Reply) != 1 || !reflect.DeepEqual(r.Reply[0], want) {
			t.Errorf("snapshot:\n got %#v\nwant %#v", r.Reply, want)
		}
		wantAllow(t, h.call("/internal/ws/dashboard/admin/", "authorize", "dave", nil, "", nil), true, "dashboard_admin")
		wantAllow(t, h.call("/internal/ws/dashboard/admin/", "authorize", "alice", nil, "", nil), false)
		wantAllow(t, h.call("/internal/ws/daily-plan/", "authorize", "alice", map[string]any{"date": "2026-04-20"}, "", nil), true, "daily_plan_2026-04-20")
		wantAllow(t, h.call("/internal/ws/daily-plan/", "authorize", "", map[string]any{"date": "2026-04-20"}, "", nil), false)
		wantAllow(t, h.call("/internal/ws/quality/inspection/", "authorize", "bob", map[string]any{"inspection_id": 12}, "", nil), true, "quality_inspection_12")
	})

	t.Run("tasks", func(t *testing.T) {
		const path = "/internal/ws/tasks/"
		wantAllow(t, h.call(path, "authorize", "dave", project, "", nil), true, kibrayGroup("tasks_project_", p1))
		wantAllow(t, h.call(path, "authorize", "carol", project, "", nil), false)
		r := h.call(path, "connect", "alice", project, "", nil)
		if len(r.Reply) != 1 || r.Reply[0]["project_id"] != strconv.FormatInt(p1, 10) || r.Reply[0]["message"] != "Connected to task updates" {
			t.Errorf("connect reply: %v", r.Reply)
		}
		r = h.call(path, "receive", "alice", project, "subscribe_task", map[string]any{"action": "subscribe_task", "task_id": "T-1"})
		if len(r.Reply) != 1 || r.Reply[0]["type"] != "task_subscribed" || r.Reply[0]["task_id"] != "T-1" {
			t.Errorf("subscribe_task reply: %v", r.Reply)
		}
		wantError(t, h.call(path, "receive", "alice", project, "dance", map[string]any{}), "unknown_type")
		if ok := h.call("/internal/ws/authorize/project/", "authorize", "bob", project, "", nil); ok.Allow == nil || !*ok.Allow {
			t.Errorf("authorize/project for a member: %+v", ok)
		}
	})

	t.Run("status", func(t *testing.T) {
		const path = "/internal/ws/status/"
		wantAllow(t, h.call(path, "authorize", "bob", nil, "", nil), true, "user_status")
		wantAllow(t, h.call(path, "authorize", "ivan", nil, "", nil), false)
		first := h.call(path, "connect", "bob", nil, "", nil)
		wantSend(t, first, "user_status", "user_status_changed", map[string]any{"user_id": bob, "status": "online"})
		if len(first.Reply) != 1 || first.Reply[0]["type"] != "connection_established" {
			t.Errorf("connect reply: %v", first.Reply)
		}
		second := h.call(path, "connect", "bob", nil, "", nil)
		if len(second.GroupSend) != 0 {
			t.Errorf("a second tab announced the user again: %v", second.GroupSend)
		}
		if r := h.call(path, "disconnect", "bob", nil, "", nil); len(r.GroupSend) != 0 {
			t.Errorf("closing one of two tabs announced: %v", r.GroupSend)
		}
		r := h.call(path, "disconnect", "bob", nil, "", nil)
		wantSend(t, r, "user_status", "user_status_changed", map[string]any{"user_id": bob, "status": "offline"})
		r = h.call(path, "receive", "bob", nil, "heartbeat", map[string]any{"action": "heartbeat"})
		if len(r.Reply) != 1 || r.Reply[0]["type"] != "heartbeat_ack" {
			t.Errorf("heartbeat reply: %v", r.Reply)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		wrong, err := hooks.New(hooks.Config{BaseURL: django, Secret: "a-secret-django-does-not-know"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer wrong.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = wrong.Call(ctx, "/internal/ws/status/", hooks.Request{Event: "authorize", UserID: strconv.FormatInt(alice, 10), Authenticated: true})
		var he *hooks.Error
		if !errors.As(err, &he) || he.Kind != hooks.KindStatus || he.Status != http.StatusForbidden {
			t.Fatalf("want HTTP 403, got %v", err)
		}
	})
}

func kibrayOp(t *testing.T, django string, op map[string]any) {
	t.Helper()
	body, _ := json.Marshal(op)
	var out map[string]any
	kibrayPostJSON(t, django+"/internal/kibray/op/", body, &out)
}

// wantAllow checks an authorize verdict and, when allowed, the joined
// groups.
func wantAllow(t *testing.T, r *hooks.Response, allow bool, join ...string) {
	t.Helper()
	if r.Allow == nil || *r.Allow != allow {
		t.Errorf("allow: got %v, want %v (%+v)", r.Allow, allow, r)
		return
	}
	if allow && !reflect.DeepEqual(r.Join, join) {
		t.Errorf("join: got %q, want %q", r.Join, join)
	}
}

// wantSend checks that the answer's only group_send goes to group with an
// event of the given type that has the given fields and a timestamp when
// the type carries one, and returns the event.
func wantSend(t *testing.T, r *hooks.Response, group, kind string, fields map[string]any) map[string]any {
	t.Helper()
	if r.Error != nil || r.Close != nil || len(r.GroupSend) != 1 {
		t.Fatalf("want one group_send, got %+v", r)
	}
	gs := r.GroupSend[0]
	if gs.Group != group || gs.Event["type"] != kind {
		t.Fatalf("group_send to %q of %v, want %q of type %s", gs.Group, gs.Event, group, kind)
	}
	for k, v := range fields {
		if !reflect.DeepEqual(gs.Event[k], v) {
			t.Errorf("%s event %s: got %#v, want %#v", kind, k, gs.Event[k], v)
		}
	}
	return gs.Event
}

func wantError(t *testing.T, r *hooks.Response, code string) {
	t.Helper()
	if r.Error == nil || r.Error.Error != code || len(r.GroupSend) != 0 {
		t.Errorf("want error %s only, got %+v", code, r)
	}
}

func wantClose(t *testing.T, r *hooks.Response, code int) {
	t.Helper()
	if r.Close == nil || r.Close.Code != code || len(r.GroupSend) != 0 {
		t.Errorf("want close %d only, got %+v", code, r)
	}
}

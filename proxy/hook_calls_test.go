package proxy

import (
	"context"
	"testing"

	"github.com/channels-sidecar/channels-sidecar/hooks"
)

// fakeHooks answers every hook call with one answer; a unit-test stand-in.
type fakeHooks struct{ resp hooks.Response }

func (f *fakeHooks) Call(context.Context, string, hooks.Request) (*hooks.Response, error) {
	r := f.resp
	return &r, nil
}

func (f *fakeHooks) Authorize(ctx context.Context, path string, req hooks.Request) (*hooks.Response, error) {
	return f.Call(ctx, path, req)
}

func TestAuthorizeJoinsDjangosGroups(t *testing.T) {
	allow := true
	s := testServer(t, newCountingLayer(), RouteConfig{Path: "/ws/c/{id}/", Auth: AuthNone, Authorize: &AuthorizeConfig{Hook: "/authz/"}})
	s.hooks = &fakeHooks{resp: hooks.Response{Allow: &allow, Join: []string{"chat_channel_7", "bad name"}}}
	c := testConn(s, s.routes[0])
	if status, reason := s.authorize(s.routes[0], c); status != 0 {
		t.Fatalf("refused: %d %s", status, reason)
	}
	if len(c.groups) != 1 || c.groups[0] != "chat_channel_7" {
		t.Fatalf("groups %v, want Django's valid group only", c.groups)
	}
	deny := false
	s.hooks = &fakeHooks{resp: hooks.Response{Allow: &deny}}
	if status, _ := s.authorize(s.routes[0], testConn(s, s.routes[0])); status != 403 {
		t.Fatalf("a refusal gave %d, want 403", status)
	}
}

package compat

import (
	"regexp"
	"strings"
)

// kibrayRoute is one of Kibray's ten WebSocket routes, in its order.
type kibrayRoute struct {
	name    string
	pattern *regexp.Regexp
}

// kibrayRoutes mirrors compat/django/kibray/routing.py; the first match
// wins, as in Channels' URLRouter.
var kibrayRoutes = []kibrayRoute{
	{"chat_project", regexp.MustCompile(`^/ws/chat/project/[0-9]+/$`)},
	{"chat_channel", regexp.MustCompile(`^/ws/chat/[0-9A-Za-z_-]+/$`)},
	{"chat_direct", regexp.MustCompile(`^/ws/chat/direct/[0-9]+/$`)},
	{"notifications", regexp.MustCompile(`^/ws/notifications/$`)},
	{"dashboard_project", regexp.MustCompile(`^/ws/dashboard/project/[0-9]+/$`)},
	{"dashboard_admin", regexp.MustCompile(`^/ws/dashboard/admin/$`)},
	{"daily_plan", regexp.MustCompile(`^/ws/daily-plan/[0-9]{4}-[0-9]{2}-[0-9]{2}/$`)},
	{"quality_inspection", regexp.MustCompile(`^/ws/quality/inspection/[0-9]+/$`)},
	{"tasks", regexp.MustCompile(`^/ws/tasks/[0-9]+/$`)},
	{"status", regexp.MustCompile(`^/ws/status/$`)},
}

// kibrayRoutePlaceholder stands in for references in a client's path, so
// that a path can be classified before its ids are known.
var kibrayRoutePlaceholder = regexp.MustCompile(`\{[a-z]+:[A-Za-z0-9_.-]+\}`)

// kibrayRouteOf names the route a client path (references allowed, query
// ignored) reaches, or "".
func kibrayRouteOf(path string) string {
	path, _, _ = strings.Cut(path, "?")
	path = kibrayRoutePlaceholder.ReplaceAllString(path, "1")
	for _, r := range kibrayRoutes {
		if r.pattern.MatchString(path) {
			return r.name
		}
	}
	return ""
}

package compat

import (
	"net/http"
	"strings"
	"testing"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const tunnelConfig = `
channel_layer:
  backend: redis
  hosts: ["${SIDECAR_REDIS_URL}"]
tunnel:
  url: http://${DAPHNE_ADDR}
routes:
  - path: /ws/sidecar/{name}/
    auth: none
    groups: ["room_{name}"]
`

// TestDaphneTunnel: a WebSocket path the sidecar does not declare goes to
// Daphne untouched, so a site can move consumers one route at a time; the
// declared route and the tunnelled one share the same group.
func TestDaphneTunnel(t *testing.T) {
	st := testenv.PythonStacks(t)[0]
	rd := testenv.StartRedis(t)
	daphne := testenv.StartDaphne(t, append(st.Env, "REDIS_URL="+rd.URL())...)
	s := startSidecar(t, writeConfig(t, tunnelConfig), "SIDECAR_REDIS_URL="+rd.URL(), "DAPHNE_ADDR="+daphne)

	viaTunnel := s.dial(t, "/ws/room/moving/", nil) // served by Daphne's RoomConsumer
	native := s.dial(t, "/ws/sidecar/moving/", nil) // served by the sidecar
	writeJSON(t, viaTunnel, map[string]any{"text": "from the daphne consumer", "n": 1})
	for _, c := range []*struct {
		name string
		got  map[string]any
	}{{"tunnelled", readJSON(t, viaTunnel)}, {"native", readJSON(t, native)}} {
		if c.got["type"] != "room.message" || c.got["text"] != "from the daphne consumer" {
			t.Fatalf("%s socket got %v", c.name, c.got)
		}
	}
	if st := s.dialStatus(t, "/elsewhere/", nil); st != http.StatusNotFound {
		t.Fatalf("a path outside the tunnel prefix: %d, want 404", st)
	}
	_, body, _ := httpGet(t, s.url("/metrics"))
	if !strings.Contains(body, `sidecar_connections_total{route="tunnel"} 1`) {
		t.Fatalf("tunnel not counted:\n%s", grepLines(body, "sidecar_connections"))
	}
}

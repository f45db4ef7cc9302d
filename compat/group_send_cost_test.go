package compat

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// TestGroupSendCostIsFlat checks that a Django group_send costs the same
// Redis work whether 1 or 1,000 sidecar sockets are in the group: the
// sidecar joins the group once per process and fans out locally. With
// SIDECAR_BENCH=1 it also measures 10 and 10,000 sockets; the figures are
// logged for docs/benchmarks.md.
func TestGroupSendCostIsFlat(t *testing.T) {
	st := testenv.PythonStacks(t)[0]
	sizes := []int{1, 100, 1000}
	if os.Getenv("SIDECAR_BENCH") == "1" {
		sizes = []int{1, 10, 100, 1000, 10000}
	}
	const sends = 20
	rd := testenv.StartRedis(t)
	s := startSidecar(t, interopConfig(t, ""), "SIDECAR_REDIS_URL="+rd.URL(), "GORACE=halt_on_error=1")
	rc := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rc.Close()
	ctx := context.Background()

	var sockets []*websocket.Conn
	defer func() {
		for _, c := range sockets {
			_ = c.Close()
		}
	}()
	for _, n := range sizes {
		for len(sockets) < n {
			c, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/room/cost/"), http.Header{})
			if err != nil {
				t.Fatalf("socket %d: %v", len(sockets), err)
			}
			sockets = append(sockets, c)
		}
		if members, err := rc.ZCard(ctx, "asgi:group:room_cost").Result(); err != nil || members != 1 {
			t.Fatalf("%d sockets: the group has %d members (%v), want 1 per sidecar process", n, members, err)
		}
		if err := rc.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(len(sockets))
		errs := make(chan error, len(sockets))
		for _, c := range sockets {
			go func(c *websocket.Conn) {
				defer wg.Done()
				_ = c.SetReadDeadline(time.Now().Add(120 * time.Second))
				for i := 0; i < sends; i++ {
					if _, _, err := c.ReadMessage(); err != nil {
						errs <- err
						return
					}
				}
			}(c)
		}
		pctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		start := time.Now()
		out, err := python(pctx, st, []string{"REDIS_URL=" + rd.URL()}, "e2e/channels_peer.py",
			"group_send", "room_cost", `{"type":"room.message","text":"cost probe"}`, strconv.Itoa(sends)).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("python group_send: %v\n%s", err, out)
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		for err := range errs {
			t.Fatalf("%d sockets: a socket missed frames: %v", n, err)
		}
		stats := commandStats(t, rc)
		if stats["eval"] != sends {
			t.Fatalf("%d sockets: %d EVALs for %d group_sends, want one per group_send", n, stats["eval"], sends)
		}
		if stats["zrange"] != sends {
			t.Fatalf("%d sockets: %d ZRANGEs for %d group_sends", n, stats["zrange"], sends)
		}
		t.Logf("sockets=%d group_sends=%d redis_commands=%d per_group_send=%.1f (%s) publish_to_all_received=%s",
			n, sends, stats["total"], float64(stats["total"])/sends, fmtStats(stats), elapsed)
	}
}

// commandStats reads INFO commandstats as command -> calls, plus "total".
func commandStats(t *testing.T, rc *redis.Client) map[string]int {
	t.Helper()
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "config" || name == "info" {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.Atoi(v)
				out[name] = n
				out["total"] += n
			}
		}
	}
	return out
}

func fmtStats(m map[string]int) string {
	var parts []string
	for _, k := range []string{"eval", "zrange", "zremrangebyscore", "multi", "exec", "bzpopmin", "zpopmin", "evalsha", "expire", "zadd"} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	return strings.Join(parts, " ")
}

package bridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests run the real channels_redis (both Python stacks) with a
// hosts list of two Redis servers against the Go layer with the same
// list, and check that every message crosses whichever host it lands on.

// forEachCoreStack runs f as a subtest per Python stack.
func forEachCoreStack(t *testing.T, f func(t *testing.T, stack testenv.PyStack)) {
	t.Helper()
	for _, stack := range testenv.PythonStacks(t, "channels_redis", "redis", "msgpack") {
		t.Run(stack.Name+"/channels_redis-"+stack.Versions["channels_redis"], func(t *testing.T) { f(t, stack) })
	}
}

// startRing starts n Redis servers and returns them with their URLs.
func startRing(t *testing.T, n int) ([]*testenv.Redis, []string) {
	t.Helper()
	var rs []*testenv.Redis
	var urls []string
	for range n {
		r := testenv.StartRedis(t)
		rs = append(rs, r)
		urls = append(urls, r.URL())
	}
	return rs, urls
}

func hostList(urls []string) HostList {
	l := make(HostList, len(urls))
	for i, u := range urls {
		l[i] = HostFromURL(u)
	}
	return l
}

// newRingLayer makes a Go layer on hosts whose process key lives on host
// (the hash of its process name), so tests can place it.
func newRingLayer(t *testing.T, hosts HostList, cfg Config, h Handler, host int) *RedisLayer {
	t.Helper()
	cfg.Backend = BackendRedis
	cfg.Hosts = hosts
	l, err := NewRedisLayer(cfg, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	for consistentHash(l.names.processName, len(hosts)) != host {
		l.names = newChannelNamer()
	}
	l.processKey = l.cfg.Prefix + l.names.processName
	return l
}

// pyClientPrefix returns a Python client_prefix whose process key lives on
// host of n.
func pyClientPrefix(host, n int) string {
	for {
		if id := newClientID(); consistentHash("specific."+id+"!", n) == host {
			return id
		}
	}
}

// pollFor polls cond every 20 ms until it holds, failing the test after
// timeout.
func pollFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupOn returns a group name that lives on host of n.
func groupOn(host, n int, base string) string {
	for i := 0; ; i++ {
		if g := base + strconv.Itoa(i); consistentHash(g, n) == host {
			return g
		}
	}
}

// TestInteropRingPythonGroupSendToGo: Python group_send to groups on both
// hosts reaches Go channels of two Go processes whose process keys live
// on different hosts.
func TestInteropRingPythonGroupSendToGo(t *testing.T) {
	forEachCoreStack(t, func(t *testing.T, stack testenv.PyStack) {
		for _, ks := range keySets {
			t.Run(ks.name, func(t *testing.T) {
				ctx := context.Background()
				rs, urls := startRing(t, 2)
				py := newStackPeer(t, stack, urls, ks.keys)
				groups := []string{groupOn(0, 2, "lobby"), groupOn(1, 2, "lobby")}
				var recs []*recorder
				var layers []*RedisLayer
				want := make([]map[string]bool, 2)
				for h := range 2 {
					rec := newRecorder()
					l := newRingLayer(t, hostList(urls), Config{SymmetricEncryptionKeys: ks.keys}, rec.handle, h)
					want[h] = map[string]bool{}
					for _, g := range groups {
						ch := l.NewChannel()
						want[h][ch] = true
						if err := l.GroupAdd(ctx, g, ch); err != nil {
							t.Fatal(err)
						}
					}
					recs, layers = append(recs, rec), append(layers, l)
				}
				// Each group key lives on its own host only.
				for h, g := range groups {
					if n := rawClient(t, rs[h]).ZCard(ctx, "asgi:group:"+g).Val(); n != 2 {
						t.Fatalf("group %s has %d members on host %d", g, n, h)
					}
					if n := rawClient(t, rs[1-h]).Exists(ctx, "asgi:group:"+g).Val(); n != 0 {
						t.Fatalf("group %s also exists on host %d", g, 1-h)
					}
				}
				for _, l := range layers {
					runLayer(t, l)
				}
				for _, g := range groups {
					py.run("group_send", g, taggedJSON(t, interopMessage()))
				}
				for h, rec := range recs {
					for _, d := range rec.waitFor(t, 2, 15*time.Second) {
						if !want[h][d.channel] || !equalValues(map[string]any(d.msg), map[string]any(interopExpected())) {
							t.Fatalf("Go process %d received on %q:\n%#v", h, d.channel, d.msg)
						}
						delete(want[h], d.channel)
					}
					if st := layers[h].Stats(); st.Hosts[h].Received != 2 || st.Hosts[1-h].Received != 0 {
						t.Fatalf("Go process %d took messages from the wrong host: %+v", h, st.Hosts)
					}
				}
			})
		}
	})
}

// TestInteropRingGoGroupSendToPython: Go group_send reaches Python
// channels whose process keys live on both hosts.
func TestInteropRingGoGroupSendToPython(t *testing.T) {
	forEachCoreStack(t, func(t *testing.T, stack testenv.PyStack) {
		for _, ks := range keySets {
			t.Run(ks.name, func(t *testing.T) {
				ctx := context.Background()
				rs, urls := startRing(t, 2)
				py := newStackPeer(t, stack, urls, ks.keys)
				g := newRingLayer(t, hostList(urls), Config{SymmetricEncryptionKeys: ks.keys}, nopHandler, 0)
				group := groupOn(1, 2, "room")
				var rcvs []*pyReceiver
				for h := range 2 {
					rcvs = append(rcvs, py.with("--client-prefix", pyClientPrefix(h, 2)).start("receive-group", group, "1", "30"))
				}
				if n := rawClient(t, rs[1]).ZCard(ctx, "asgi:group:"+group).Val(); n != 2 {
					t.Fatalf("group has %d members on its host", n)
				}
				if err := g.GroupSend(ctx, group, interopMessage()); err != nil {
					t.Fatal(err)
				}
				for h, rcv := range rcvs {
					ch, msg := rcv.next(t)
					if ch != rcv.channel || !equalValues(map[string]any(msg), map[string]any(interopExpected())) {
						t.Fatalf("Python process on host %d received on %q:\n%#v", h, ch, msg)
					}
				}
				if st := g.Stats(); st.GroupSent != 2 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	})
}

// TestInteropRingSendBothWays: Python send() to a Go channel writes it on
// the host of the full name (channels_redis' bug), and Go still receives
// it; Go Send to a Python channel goes where Python listens even when
// the full name hashes elsewhere.
func TestInteropRingSendBothWays(t *testing.T) {
	forEachCoreStack(t, func(t *testing.T, stack testenv.PyStack) {
		for _, ks := range keySets {
			t.Run(ks.name, func(t *testing.T) {
				ctx := context.Background()
				rs, urls := startRing(t, 2)
				py := newStackPeer(t, stack, urls, ks.keys)
				rec := newRecorder()
				g := newRingLayer(t, hostList(urls), Config{SymmetricEncryptionKeys: ks.keys}, rec.handle, 0)
				goCh := g.NewChannel()
				for consistentHash(goCh, 2) != 1 {
					goCh = g.NewChannel()
				}
				if res := py.run("send", goCh, taggedJSON(t, interopMessage())); res["sent"] != true {
					t.Fatalf("python send: %v", res)
				}
				// The message sits on the "wrong" host, where channels_redis'
				// own receiver would never look.
				key := "asgi" + g.ProcessName()
				if n0, n1 := rawClient(t, rs[0]).ZCard(ctx, key).Val(), rawClient(t, rs[1]).ZCard(ctx, key).Val(); n0 != 0 || n1 != 1 {
					t.Fatalf("python's send landed %d on host 0 and %d on host 1", n0, n1)
				}
				runLayer(t, g)
				got := rec.waitFor(t, 1, 15*time.Second)
				if got[0].channel != goCh || !equalValues(map[string]any(got[0].msg), map[string]any(interopExpected())) {
					t.Fatalf("Go received on %q:\n%#v", got[0].channel, got[0].msg)
				}

				prefix := pyClientPrefix(1, 2)
				pyCh := ""
				for i := 0; pyCh == ""; i++ {
					if c := fmt.Sprintf("specific.%s!%032x", prefix, i); consistentHash(c, 2) == 0 {
						pyCh = c
					}
				}
				rcv := py.with("--client-prefix", prefix).start("receive", "1", "30", "--channel", pyCh)
				if err := g.Send(ctx, pyCh, interopMessage()); err != nil {
					t.Fatal(err)
				}
				ch, msg := rcv.next(t)
				if ch != pyCh || !equalValues(map[string]any(msg), map[string]any(interopExpected())) {
					t.Fatalf("Python received on %q:\n%#v", ch, msg)
				}
			})
		}
	})
}

// TestInteropRingRestart kills and restarts one host of two: the
// memberships it held come back and a Python group_send reaches the Go
// channel again within 5 s, while the other host is untouched.
func TestInteropRingRestart(t *testing.T) {
	ctx := context.Background()
	rs, urls := startRing(t, 2)
	testenv.RequirePython(t, pythonLayerModules...)
	py := newStackPeer(t, testenv.PyStack{Name: testenv.StackDebian12}, urls, nil)
	rec := newRecorder()
	g := newRingLayer(t, hostList(urls), Config{}, rec.handle, 0)
	groups := []string{groupOn(0, 2, "team"), groupOn(1, 2, "team")}
	ch := g.NewChannel()
	for _, grp := range groups {
		if err := g.GroupAdd(ctx, grp, ch); err != nil {
			t.Fatal(err)
		}
	}
	runLayer(t, g)
	for _, grp := range groups {
		py.run("group_send", grp, taggedJSON(t, Message{"type": "before"}))
	}
	rec.waitFor(t, 2, 15*time.Second)

	rs[1].Restart()
	deadline := time.Now().Add(5 * time.Second)
	for rec.count() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery through the restarted host within 5 s; stats %+v", g.Stats())
		}
		py.run("group_send", groups[1], taggedJSON(t, Message{"type": "after"}))
		time.Sleep(50 * time.Millisecond)
	}
	if sc := rawClient(t, rs[1]).ZScore(ctx, "asgi:group:"+groups[1], ch); sc.Err() != nil {
		t.Fatalf("membership not restored on the restarted host: %v", sc.Err())
	}
	if n := rawClient(t, rs[1]).Exists(ctx, "asgi:group:"+groups[0]).Val(); n != 0 {
		t.Fatal("a group of the other host was written to the restarted host")
	}
	py.run("group_send", groups[0], taggedJSON(t, Message{"type": "other host"}))
	rec.waitFor(t, 4, 15*time.Second)
	if err := g.Ready(ctx); err != nil {
		t.Fatalf("Ready after restart: %v", err)
	}
}

// TestInteropSentinel: a ring of a Sentinel-managed master and a plain
// host, written in YAML as Django's settings would be. The Go layer finds
// the master through Sentinel and interoperates with channels_redis
// configured with the same host mapping.
func TestInteropSentinel(t *testing.T) {
	forEachCoreStack(t, func(t *testing.T, stack testenv.PyStack) {
		ctx := context.Background()
		master := testenv.StartRedis(t)
		sentinel := testenv.StartSentinel(t, master, "mymaster")
		plain := testenv.StartRedis(t)
		hosts, err := decodeHosts(t, fmt.Sprintf("hosts:\n  - sentinels: [[\"127.0.0.1\", %d]]\n    master_name: mymaster\n    socket_timeout: 5\n  - %q\n",
			sentinel.Port, plain.URL()))
		if err != nil {
			t.Fatal(err)
		}
		pyHost := fmt.Sprintf(`{"sentinels": [["127.0.0.1", %d]], "master_name": "mymaster", "socket_timeout": 5}`, sentinel.Port)
		py := newStackPeer(t, stack, []string{pyHost, plain.URL()}, nil)
		rec := newRecorder()
		g := newRingLayer(t, hosts, Config{}, rec.handle, 0)
		group := groupOn(0, 2, "watch")
		ch := g.NewChannel()
		if err := g.GroupAdd(ctx, group, ch); err != nil {
			t.Fatal(err)
		}
		if n := rawClient(t, master).ZCard(ctx, "asgi:group:"+group).Val(); n != 1 {
			t.Fatalf("the group is not on the master found through Sentinel (%d members)", n)
		}
		runLayer(t, g)
		py.run("group_send", group, taggedJSON(t, interopMessage()))
		got := rec.waitFor(t, 1, 15*time.Second)
		if got[0].channel != ch || !equalValues(map[string]any(got[0].msg), map[string]any(interopExpected())) {
			t.Fatalf("Go received on %q:\n%#v", got[0].channel, got[0].msg)
		}

		rcv := py.with("--client-prefix", pyClientPrefix(0, 2)).start("receive-group", group, "1", "30")
		if err := g.GroupSend(ctx, group, Message{"type": "through.sentinel"}); err != nil {
			t.Fatal(err)
		}
		if _, m := rcv.next(t); m["type"] != "through.sentinel" {
			t.Fatalf("Python received %v", m)
		}
		if err := g.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		if name := g.Stats().Hosts[0].Name; name != fmt.Sprintf("sentinel://%s/mymaster/0", sentinel.Addr()) {
			t.Fatalf("host name %q", name)
		}
	})
}

// TestInteropSentinelFailover: after Sentinel promotes the replica, the
// Go layer follows the new master and Python's group_send through the
// same Sentinel reaches the Go channel again.
func TestInteropSentinelFailover(t *testing.T) {
	ctx := context.Background()
	testenv.RequirePython(t, pythonLayerModules...)
	master, replica := testenv.StartRedis(t), testenv.StartRedis(t)
	rc := rawClient(t, replica)
	if err := rc.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(master.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	sentinel := testenv.StartSentinel(t, master, "mymaster")
	sc := rawClient(t, &testenv.Redis{Port: sentinel.Port})
	hosts := HostList{map[string]any{"sentinels": []any{[]any{"127.0.0.1", sentinel.Port}}, "master_name": "mymaster"}}
	py := newStackPeer(t, testenv.PyStack{Name: testenv.StackDebian12},
		[]string{fmt.Sprintf(`{"sentinels": [["127.0.0.1", %d]], "master_name": "mymaster"}`, sentinel.Port)}, nil)
	rec := newRecorder()
	g := newRingLayer(t, hosts, Config{}, rec.handle, 0)
	ch := g.NewChannel()
	if err := g.GroupAdd(ctx, "failover", ch); err != nil {
		t.Fatal(err)
	}
	runLayer(t, g)
	py.run("group_send", "failover", taggedJSON(t, Message{"type": "before"}))
	rec.waitFor(t, 1, 15*time.Second)

	pollFor(t, "Sentinel to see the replica in sync", 30*time.Second, func() bool {
		reps, err := sc.Do(ctx, "SENTINEL", "REPLICAS", "mymaster").Slice()
		return err == nil && len(reps) == 1 && strings.Contains(rc.Info(ctx, "replication").Val(), "master_link_status:up")
	})
	if err := sc.Do(ctx, "SENTINEL", "FAILOVER", "mymaster").Err(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "Sentinel to name the replica as master", 30*time.Second, func() bool {
		addr, err := sc.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster").StringSlice()
		return err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(replica.Port)
	})
	deadline := time.Now().Add(20 * time.Second)
	for rec.count() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after the failover; stats %+v", g.Stats())
		}
		py.run("group_send", "failover", taggedJSON(t, Message{"type": "after"}))
		time.Sleep(100 * time.Millisecond)
	}
	if err := rc.ZScore(ctx, "asgi:group:failover", ch).Err(); err != nil {
		t.Fatalf("membership missing on the new master: %v", err)
	}
}

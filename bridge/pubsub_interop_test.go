package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests run the real channels_redis.pubsub.RedisPubSubChannelLayer of
// every Python stack (Debian 12's channels_redis 4.0 and the current 4.3)
// through compat/python/layer/pubsub_peer.py against real redis-servers.

// pubsubStackModules are the modules a stack needs for the pub/sub peer.
var pubsubStackModules = []string{"channels", "channels_redis", "redis", "msgpack"}

// pubsubPeer runs pubsub_peer.py in one stack with fixed layer options.
type pubsubPeer struct {
	t     *testing.T
	stack testenv.PyStack
	args  []string
}

func newPubSubPeer(t *testing.T, stack testenv.PyStack, servers []*testenv.Redis, keys []string) *pubsubPeer {
	t.Helper()
	args := []string{filepath.Join(testenv.RepoRoot(), "compat", "python", "layer", "pubsub_peer.py")}
	for _, r := range servers {
		args = append(args, "--host", r.URL())
	}
	for _, k := range keys {
		args = append(args, "--key", k)
	}
	return &pubsubPeer{t: t, stack: stack, args: args}
}

// run runs one command to completion and returns its output line.
func (p *pubsubPeer) run(cmd ...string) map[string]any {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := p.stack.Run(ctx, p.t, nil, append(append([]string(nil), p.args...), cmd...)...)
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		p.t.Fatalf("pubsub peer (%s) %v printed %q", p.stack.Name, cmd, out)
	}
	return res
}

// send runs send or group_send and checks that it succeeded.
func (p *pubsubPeer) send(cmd, target string, msg Message) {
	p.t.Helper()
	if res := p.run(cmd, target, taggedJSON(p.t, msg)); res["sent"] != true {
		p.t.Fatalf("python %s: %v", cmd, res)
	}
}

// start runs a receive command and returns once its channel (and group)
// subscriptions are in Redis.
func (p *pubsubPeer) start(cmd ...string) *pyReceiver {
	p.t.Helper()
	return startPyReceiver(p.t, p.stack, "pubsub peer ("+p.stack.Name+")", append(append([]string(nil), p.args...), cmd...))
}

// forEachPubSubStack runs f as a subtest per Python stack.
func forEachPubSubStack(t *testing.T, f func(t *testing.T, stack testenv.PyStack)) {
	t.Helper()
	for _, stack := range testenv.PythonStacks(t, pubsubStackModules...) {
		t.Run(stack.Name+"/channels_redis-"+stack.Versions["channels_redis"], func(t *testing.T) { f(t, stack) })
	}
}

// newInteropPubSub makes a running Go pub/sub layer on servers.
func newInteropPubSub(t *testing.T, cfg Config, h Handler, servers ...*testenv.Redis) *PubSubLayer {
	t.Helper()
	l := newPubSubTestLayer(t, cfg, h, servers...)
	runLayer(t, l)
	waitPubSubUp(t, l)
	return l
}

// checkInterop compares a received message with interopExpected.
func checkInterop(t *testing.T, who, gotCh, wantCh string, msg Message) {
	t.Helper()
	if gotCh != wantCh || !equalValues(map[string]any(msg), map[string]any(interopExpected())) {
		t.Fatalf("%s received on %q (want %q):\n%#v\nwant\n%#v", who, gotCh, wantCh, msg, interopExpected())
	}
}

// TestPubSubInteropPythonGroupSendToGo: Python group_send reaches every
// Go channel of the group once, with equal values and types.
func TestPubSubInteropPythonGroupSendToGo(t *testing.T) {
	forEachPubSubStack(t, func(t *testing.T, stack testenv.PyStack) {
		r := testenv.StartRedis(t)
		py := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil)
		rec := newRecorder()
		g := newInteropPubSub(t, Config{}, rec.handle, r)
		a, b := g.NewChannel(), g.NewChannel()
		for _, ch := range []string{a, b} {
			if err := g.GroupAdd(context.Background(), "room_lobby", ch); err != nil {
				t.Fatal(err)
			}
		}
		py.send("group_send", "room_lobby", interopMessage())
		got := rec.waitFor(t, 2, 10*time.Second)
		seen := map[string]int{}
		for _, d := range got {
			seen[d.channel]++
			checkInterop(t, "Go", d.channel, d.channel, d.msg)
		}
		if seen[a] != 1 || seen[b] != 1 {
			t.Fatalf("deliveries per channel: %v", seen)
		}
	})
}

// TestPubSubInteropGoGroupSendToPython: Go GroupSend reaches Python
// receive() on a channel that joined the group.
func TestPubSubInteropGoGroupSendToPython(t *testing.T) {
	forEachPubSubStack(t, func(t *testing.T, stack testenv.PyStack) {
		r := testenv.StartRedis(t)
		py := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil)
		g := newInteropPubSub(t, Config{}, nopHandler, r)
		rcv := py.start("receive-group", "room_lobby", "1", "20")
		if err := g.GroupSend(context.Background(), "room_lobby", interopMessage()); err != nil {
			t.Fatal(err)
		}
		ch, msg := rcv.next(t)
		checkInterop(t, "Python", ch, rcv.channel, msg)
	})
}

// TestPubSubInteropSendBothWays: Go Send to a Python channel and Python
// send to a Go channel.
func TestPubSubInteropSendBothWays(t *testing.T) {
	forEachPubSubStack(t, func(t *testing.T, stack testenv.PyStack) {
		r := testenv.StartRedis(t)
		py := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil)
		rec := newRecorder()
		g := newInteropPubSub(t, Config{}, rec.handle, r)

		rcv := py.start("receive", "1", "20")
		if !strings.HasPrefix(rcv.channel, "asgispecific.") {
			t.Fatalf("python channel %q", rcv.channel)
		}
		if err := g.Send(context.Background(), rcv.channel, interopMessage()); err != nil {
			t.Fatal(err)
		}
		ch, msg := rcv.next(t)
		checkInterop(t, "Python", ch, rcv.channel, msg)

		goCh := g.NewChannel()
		py.send("send", goCh, interopMessage())
		got := rec.waitFor(t, 1, 10*time.Second)
		checkInterop(t, "Go", got[0].channel, goCh, got[0].msg)
	})
}

// TestPubSubInteropGroupDiscard: a Go channel that left a group gets no
// more of its messages, and the last one leaving unsubscribes.
func TestPubSubInteropGroupDiscard(t *testing.T) {
	forEachPubSubStack(t, func(t *testing.T, stack testenv.PyStack) {
		r := testenv.StartRedis(t)
		rc := rawClient(t, r)
		ctx := context.Background()
		py := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil)
		rec := newRecorder()
		g := newInteropPubSub(t, Config{}, rec.handle, r)
		a, b := g.NewChannel(), g.NewChannel()
		for _, ch := range []string{a, b} {
			if err := g.GroupAdd(ctx, "room", ch); err != nil {
				t.Fatal(err)
			}
		}
		py.send("group_send", "room", Message{"type": "first"})
		rec.waitFor(t, 2, 10*time.Second)
		if err := g.GroupDiscard(ctx, "room", a); err != nil {
			t.Fatal(err)
		}
		py.send("group_send", "room", Message{"type": "second"})
		// Same host, same subscriber connection: when a's own message
		// arrives, a group message for a would have arrived before it.
		py.send("send", a, Message{"type": "sentinel"})
		got := rec.waitFor(t, 4, 10*time.Second)
		var kinds []string
		for _, d := range got[2:] {
			kinds = append(kinds, fmt.Sprintf("%s@%t", d.msg["type"], d.channel == a))
		}
		if strings.Join(kinds, ",") != "second@false,sentinel@true" {
			t.Fatalf("after a left: %v (type@to-a)", kinds)
		}
		if err := g.GroupDiscard(ctx, "room", b); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the group to be unsubscribed", func() bool { return numsub(t, rc, "asgi__group__room") == 0 })
		py.send("group_send", "room", Message{"type": "third"})
		py.send("send", b, Message{"type": "sentinel2"})
		got = rec.waitFor(t, 5, 10*time.Second)
		if len(got) != 5 || got[4].msg["type"] != "sentinel2" {
			t.Fatalf("after everyone left: %+v", got[4:])
		}
	})
}

// TestPubSubInteropRedisRestart: after Redis restarts (losing every
// subscription), the Go layer resubscribes and Python's group_send and
// send reach the Go channel again within 5 s.
func TestPubSubInteropRedisRestart(t *testing.T) {
	forEachPubSubStack(t, func(t *testing.T, stack testenv.PyStack) {
		r := testenv.StartRedis(t)
		ctx := context.Background()
		py := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil)
		rec := newRecorder()
		g := newInteropPubSub(t, Config{}, rec.handle, r)
		ch := g.NewChannel()
		if err := g.GroupAdd(ctx, "room_lobby", ch); err != nil {
			t.Fatal(err)
		}
		py.send("group_send", "room_lobby", Message{"type": "before"})
		rec.waitFor(t, 1, 10*time.Second)

		r.Restart()
		restarted := time.Now()
		for !rec.hasType("after") {
			if time.Since(restarted) > 5*time.Second {
				t.Fatalf("no group message within 5 s of the restart; Ready: %v", g.Ready(ctx))
			}
			py.send("group_send", "room_lobby", Message{"type": "after"})
		}
		py.send("send", ch, Message{"type": "direct"})
		waitUntil(t, "a direct message after the restart", func() bool { return rec.hasType("direct") })
		if err := g.Ready(ctx); err != nil {
			t.Fatalf("Ready after the restart: %v", err)
		}
		if g.Stats().BackendErrors == 0 {
			t.Fatal("the outage was not counted")
		}
	})
}

// TestPubSubInteropTwoHosts: with two hosts both sides pick the same host
// for every pub/sub name, so messages cross in both directions.
func TestPubSubInteropTwoHosts(t *testing.T) {
	forEachPubSubStack(t, func(t *testing.T, stack testenv.PyStack) {
		servers := []*testenv.Redis{testenv.StartRedis(t), testenv.StartRedis(t)}
		ctx := context.Background()
		py := newPubSubPeer(t, stack, servers, nil)
		rec := newRecorder()
		g := newInteropPubSub(t, Config{}, rec.handle, servers...)
		subscribers := func(host int, name string) int64 { return numsub(t, rawClient(t, servers[host]), name) }
		// One group on each host.
		groups := map[int]string{}
		for i := 0; len(groups) < 2; i++ {
			name := "room" + strconv.Itoa(i)
			groups[consistentHash("asgi__group__"+name, 2)] = name
		}
		ch := g.NewChannel()
		for idx := range 2 {
			group := groups[idx]
			if err := g.GroupAdd(ctx, group, ch); err != nil {
				t.Fatal(err)
			}
			if subscribers(idx, "asgi__group__"+group) != 1 || subscribers(1-idx, "asgi__group__"+group) != 0 {
				t.Fatalf("group %s not subscribed on host %d only", group, idx)
			}
			py.send("group_send", group, Message{"type": group})
			waitUntil(t, "python's group_send on host "+strconv.Itoa(idx), func() bool { return rec.hasType(group) })
			rcv := py.start("receive-group", group, "1", "20")
			if subscribers(idx, "asgi__group__"+group) != 2 {
				t.Fatalf("python subscribed group %s elsewhere than host %d", group, idx)
			}
			if err := g.GroupSend(ctx, group, Message{"type": "to-python"}); err != nil {
				t.Fatal(err)
			}
			if _, m := rcv.next(t); m["type"] != "to-python" {
				t.Fatalf("python got %v", m)
			}
		}
		// Direct sends hash the full channel name on both sides.
		py.send("send", ch, Message{"type": "direct"})
		waitUntil(t, "python's send to the Go channel", func() bool { return rec.hasType("direct") })
		for range 3 {
			rcv := py.start("receive", "1", "20")
			if err := g.Send(ctx, rcv.channel, Message{"type": "direct-py"}); err != nil {
				t.Fatal(err)
			}
			if _, m := rcv.next(t); m["type"] != "direct-py" {
				t.Fatalf("python got %v", m)
			}
		}
	})
}

// TestPubSubInteropSameBytes: for the same message both layers publish
// byte-identical payloads on the same pub/sub channel.
func TestPubSubInteropSameBytes(t *testing.T) {
	forEachPubSubStack(t, func(t *testing.T, stack testenv.PyStack) {
		r := testenv.StartRedis(t)
		ctx := context.Background()
		spy := rawClient(t, r).Subscribe(ctx, "asgi__group__bytes")
		defer spy.Close()
		if _, err := spy.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		py := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil)
		g := newPubSubTestLayer(t, Config{}, nopHandler, r)
		// One key: msgpack maps have no fixed order across languages.
		msg := Message{"payload": []any{"x", int64(-1), 1.5, nil, true, []byte{0}, map[string]any{"k": "ü"}}}
		py.send("group_send", "bytes", msg)
		if err := g.GroupSend(ctx, "bytes", msg); err != nil {
			t.Fatal(err)
		}
		var payloads []string
		for range 2 {
			m, err := spy.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			payloads = append(payloads, m.Payload)
		}
		if payloads[0] != payloads[1] {
			t.Fatalf("python published %x, Go %x", payloads[0], payloads[1])
		}
	})
}

// TestPubSubInteropConsistentHash: the Go hash equals channels_redis'
// _consistent_hash for many names and ring sizes.
func TestPubSubInteropConsistentHash(t *testing.T) {
	testenv.RequirePython(t, "channels_redis.utils")
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("asgi__group__room%d", i), fmt.Sprintf("asgispecific.%032x", i*7919), fmt.Sprintf("grüppe-%d", i))
	}
	in, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	const script = `
import json, sys
from channels_redis.utils import _consistent_hash
names = json.load(sys.stdin)
json.dump({str(n): [_consistent_hash(v, n) for v in names] for n in (1, 2, 3, 5, 7, 16, 186)}, sys.stdout)
`
	out := testenv.RunPython(context.Background(), t, nil, in, "-c", script)
	var want map[string][]int
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for ns, idx := range want {
		n, _ := strconv.Atoi(ns)
		for i, name := range names {
			if got := consistentHash(name, n); got != idx[i] {
				t.Fatalf("consistentHash(%q, %d) = %d, python says %d", name, n, got, idx[i])
			}
		}
	}
}

// TestPubSubInteropEncryption: with symmetric_encryption_keys (current
// stack only; older pub/sub layers ignore them) messages cross both ways,
// a key rotation works, and an unknown key is refused and counted.
func TestPubSubInteropEncryption(t *testing.T) {
	for _, stack := range testenv.PythonStacks(t, pubsubStackModules...) {
		if stack.Name != testenv.StackCurrent {
			continue // channels_redis 4.0's pub/sub layer ignores the keys
		}
		t.Run(stack.Name+"/channels_redis-"+stack.Versions["channels_redis"], func(t *testing.T) { pubsubEncryptionInterop(t, stack) })
	}
}

func pubsubEncryptionInterop(t *testing.T, stack testenv.PyStack) {
	r := testenv.StartRedis(t)
	if res := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil).run("version"); res["encryption"] != true {
		t.Fatalf("the %s stack's pub/sub layer has no encryption: %v", stack.Name, res)
	}
	ctx := context.Background()
	keys := []string{"correct-horse-battery-staple", "previous-secret"}
	py := newPubSubPeer(t, stack, []*testenv.Redis{r}, keys)
	rec := newRecorder()
	g := newInteropPubSub(t, Config{SymmetricEncryptionKeys: keys}, rec.handle, r)
	ch := g.NewChannel()
	if err := g.GroupAdd(ctx, "secret", ch); err != nil {
		t.Fatal(err)
	}
	py.send("group_send", "secret", interopMessage())
	got := rec.waitFor(t, 1, 10*time.Second)
	checkInterop(t, "Go", got[0].channel, ch, got[0].msg)

	rcv := py.start("receive-group", "secret2", "1", "20")
	if err := g.GroupSend(ctx, "secret2", interopMessage()); err != nil {
		t.Fatal(err)
	}
	pch, msg := rcv.next(t)
	checkInterop(t, "Python", pch, rcv.channel, msg)

	// Rotation: Go still encrypts with the old key, which Python
	// keeps second; Python decrypts it.
	old := newInteropPubSub(t, Config{SymmetricEncryptionKeys: []string{"previous-secret"}}, rec.handle, r)
	rcv = py.start("receive", "1", "20")
	if err := old.Send(ctx, rcv.channel, Message{"type": "old-key"}); err != nil {
		t.Fatal(err)
	}
	if _, m := rcv.next(t); m["type"] != "old-key" {
		t.Fatalf("python got %v", m)
	}
	// Python's new key is unknown to that layer: refused and counted.
	oldCh := old.NewChannel()
	py.send("send", oldCh, Message{"type": "new-key"})
	waitUntil(t, "the decode error", func() bool { return old.Stats().DecodeErrors == 1 })
	if rec.hasType("new-key") {
		t.Fatal("a message under an unknown key was delivered")
	}
	// A plain Python layer cannot talk to an encrypting Go layer.
	plain := newPubSubPeer(t, stack, []*testenv.Redis{r}, nil)
	plain.send("send", ch, Message{"type": "plain"})
	waitUntil(t, "the plain message to be refused", func() bool { return g.Stats().DecodeErrors == 1 })
	if rec.hasType("plain") {
		t.Fatal("a plain message was delivered to an encrypting layer")
	}
}

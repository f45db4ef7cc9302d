package bridge

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests run the real channels_redis 4.0 (Debian's python3-channels-redis)
// through compat/python/layer/peer.py against a real redis-server.

var pythonLayerModules = []string{"channels_redis.core", "msgpack", "cryptography"}

// interopMessage has every kind of value Django code sends.
func interopMessage() Message {
	return Message{
		"type":    "chat.message",
		"text":    "héllo wörld ✓ 😀 中文",
		"empty":   "",
		"long":    strings.Repeat("ü", 100),
		"zero":    0,
		"small":   7,
		"neg":     -1,
		"neg33":   -33,
		"u32":     4294967295,
		"maxi64":  int64(math.MaxInt64),
		"mini64":  int64(math.MinInt64),
		"maxu64":  uint64(math.MaxUint64),
		"pi":      math.Pi,
		"half":    1.5,
		"negzero": math.Copysign(0, -1),
		"inf":     math.Inf(1),
		"ninf":    math.Inf(-1),
		"tiny":    5e-324,
		"intlike": 2.0,
		"yes":     true,
		"no":      false,
		"none":    nil,
		"bytes":   []byte{0, 1, 0xff},
		"list":    []any{1, "two", 3.5, nil, true, []any{"nested", -2}},
		"nested":  map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": "d"}}}, "n": -5},
	}
}

// interopExpected is interopMessage with the types a receiver produces.
func interopExpected() Message {
	return Message{
		"type":    "chat.message",
		"text":    "héllo wörld ✓ 😀 中文",
		"empty":   "",
		"long":    strings.Repeat("ü", 100),
		"zero":    int64(0),
		"small":   int64(7),
		"neg":     int64(-1),
		"neg33":   int64(-33),
		"u32":     int64(4294967295),
		"maxi64":  int64(math.MaxInt64),
		"mini64":  int64(math.MinInt64),
		"maxu64":  uint64(math.MaxUint64),
		"pi":      math.Pi,
		"half":    1.5,
		"negzero": math.Copysign(0, -1),
		"inf":     math.Inf(1),
		"ninf":    math.Inf(-1),
		"tiny":    5e-324,
		"intlike": 2.0,
		"yes":     true,
		"no":      false,
		"none":    nil,
		"bytes":   []byte{0, 1, 0xff},
		"list":    []any{int64(1), "two", 3.5, nil, true, []any{"nested", int64(-2)}},
		"nested":  map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": "d"}}}, "n": int64(-5)},
	}
}

// toTagged renders a Go value in peer.py's tagged JSON form.
func toTagged(v any) any {
	switch x := v.(type) {
	case nil:
		return map[string]any{"nil": nil}
	case bool:
		return map[string]any{"bool": x}
	case int:
		return map[string]any{"int": strconv.Itoa(x)}
	case int64:
		return map[string]any{"int": strconv.FormatInt(x, 10)}
	case uint64:
		return map[string]any{"int": strconv.FormatUint(x, 10)}
	case float64:
		return map[string]any{"float": strconv.FormatFloat(x, 'g', -1, 64)}
	case string:
		return map[string]any{"str": x}
	case []byte:
		return map[string]any{"bin": hex.EncodeToString(x)}
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = toTagged(item)
		}
		return map[string]any{"array": out}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pairs := make([]any, 0, len(x))
		for _, k := range keys {
			pairs = append(pairs, []any{toTagged(k), toTagged(x[k])})
		}
		return map[string]any{"map": pairs}
	default:
		panic(fmt.Sprintf("toTagged: %T", v))
	}
}

// fromTagged parses peer.py's tagged JSON into Go values with the types a
// Go receiver would use, so Python's types are checked exactly.
func fromTagged(raw json.RawMessage) (any, error) {
	var t map[string]json.RawMessage
	if err := json.Unmarshal(raw, &t); err != nil || len(t) != 1 {
		return nil, fmt.Errorf("not a tagged value: %s", raw)
	}
	for kind, v := range t {
		var s string
		switch kind {
		case "nil":
			return nil, nil
		case "bool":
			var b bool
			err := json.Unmarshal(v, &b)
			return b, err
		case "int":
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, err
			}
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
			return strconv.ParseUint(s, 10, 64)
		case "float":
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, err
			}
			return strconv.ParseFloat(s, 64)
		case "str":
			err := json.Unmarshal(v, &s)
			return s, err
		case "bin":
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, err
			}
			return hex.DecodeString(s)
		case "array":
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, err
			}
			out := make([]any, len(items))
			for i, item := range items {
				var err error
				if out[i], err = fromTagged(item); err != nil {
					return nil, err
				}
			}
			return out, nil
		case "map":
			var pairs [][2]json.RawMessage
			if err := json.Unmarshal(v, &pairs); err != nil {
				return nil, err
			}
			out := make(map[string]any, len(pairs))
			for _, p := range pairs {
				k, err := fromTagged(p[0])
				if err != nil {
					return nil, err
				}
				ks, ok := k.(string)
				if !ok {
					return nil, fmt.Errorf("map key %T from Python", k)
				}
				if out[ks], err = fromTagged(p[1]); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
		return nil, fmt.Errorf("unknown tag %q", kind)
	}
	return nil, nil
}

func taggedJSON(t testing.TB, msg Message) string {
	t.Helper()
	b, err := json.Marshal(toTagged(map[string]any(msg)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pyPeer runs peer.py with layer options (hosts, keys, ...) in one Python
// stack; the zero stack is Debian 12's system packages.
type pyPeer struct {
	t     *testing.T
	stack testenv.PyStack
	args  []string
}

func newPyPeer(t *testing.T, r *testenv.Redis, keys []string, extra ...string) *pyPeer {
	t.Helper()
	testenv.RequirePython(t, pythonLayerModules...)
	return newStackPeer(t, testenv.PyStack{Name: testenv.StackDebian12}, []string{r.URL()}, keys, extra...)
}

// newStackPeer makes a peer on the given hosts (URLs or peer.py's JSON
// forms) in stack.
func newStackPeer(t *testing.T, stack testenv.PyStack, hosts, keys []string, extra ...string) *pyPeer {
	t.Helper()
	args := []string{filepath.Join(testenv.RepoRoot(), "compat", "python", "layer", "peer.py")}
	for _, h := range hosts {
		args = append(args, "--host", h)
	}
	for _, k := range keys {
		args = append(args, "--key", k)
	}
	return &pyPeer{t: t, stack: stack, args: append(args, extra...)}
}

// with returns a copy of the peer with more layer options.
func (p *pyPeer) with(extra ...string) *pyPeer {
	return &pyPeer{t: p.t, stack: p.stack, args: append(append([]string(nil), p.args...), extra...)}
}

// run runs one command to completion and returns its single output line.
func (p *pyPeer) run(cmd ...string) map[string]any {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := p.stack.Run(ctx, p.t, nil, append(append([]string(nil), p.args...), cmd...)...)
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		p.t.Fatalf("peer %v printed %q", cmd, out)
	}
	return res
}

// pyReceiver is a running `receive` or `receive-group` command.
type pyReceiver struct {
	channel string
	lines   chan string
	done    chan error
}

// start runs a receive command and waits for its ready line.
func (p *pyPeer) start(cmd ...string) *pyReceiver {
	p.t.Helper()
	return startPyReceiver(p.t, p.stack, "peer", append(append([]string(nil), p.args...), cmd...))
}

// startPyReceiver runs a Python peer's receive command, collects its
// output lines, and returns once it prints its {"ready": CHANNEL} line.
func startPyReceiver(t *testing.T, stack testenv.PyStack, label string, args []string) *pyReceiver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c := stack.Command(ctx, args...)
	var stderr strings.Builder
	c.Stderr = &stderr
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	rcv := &pyReceiver{lines: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			rcv.lines <- sc.Text()
		}
		close(rcv.lines)
		err := c.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		rcv.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-rcv.done
	})
	select {
	case line, ok := <-rcv.lines:
		var ready struct{ Ready string }
		if !ok || json.Unmarshal([]byte(line), &ready) != nil || ready.Ready == "" {
			t.Fatalf("%s did not get ready: %q %s", label, line, stderr.String())
		}
		rcv.channel = ready.Ready
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not get ready within 30 s", label)
	}
	return rcv
}

// next returns the next received message, decoded from tagged JSON.
func (rcv *pyReceiver) next(t *testing.T) (string, Message) {
	t.Helper()
	select {
	case line, ok := <-rcv.lines:
		if !ok {
			t.Fatalf("peer exited: %v", <-rcv.done)
		}
		var out struct {
			Channel string
			Message json.RawMessage
			Timeout bool
		}
		if err := json.Unmarshal([]byte(line), &out); err != nil || out.Timeout {
			t.Fatalf("peer printed %q", line)
		}
		v, err := fromTagged(out.Message)
		if err != nil {
			t.Fatalf("tagged message %s: %v", out.Message, err)
		}
		return out.Channel, Message(v.(map[string]any))
	case <-time.After(30 * time.Second):
		t.Fatal("no message from peer within 30 s")
	}
	return "", nil
}

// keySets are the encryption settings every interop test runs with.
var keySets = []struct {
	name string
	keys []string
}{
	{"plain", nil},
	{"encrypted", []string{"correct-horse-battery-staple", "previous-secret"}},
}

// TestInteropPythonGroupSendToGo: Python group_send reaches a Go channel
// that joined the group, with equal values and types.
func TestInteropPythonGroupSendToGo(t *testing.T) {
	for _, ks := range keySets {
		t.Run(ks.name, func(t *testing.T) {
			r := testenv.StartRedis(t)
			py := newPyPeer(t, r, ks.keys)
			rec := newRecorder()
			g := newRedisTestLayer(t, r, Config{SymmetricEncryptionKeys: ks.keys}, rec.handle)
			ch := g.NewChannel()
			if err := g.GroupAdd(context.Background(), "room_lobby", ch); err != nil {
				t.Fatal(err)
			}
			runLayer(t, g)
			py.run("group_send", "room_lobby", taggedJSON(t, interopMessage()))
			got := rec.waitFor(t, 1, 10*time.Second)
			if got[0].channel != ch || !equalValues(map[string]any(got[0].msg), map[string]any(interopExpected())) {
				t.Fatalf("Go received on %q:\n%#v\nwant\n%#v", got[0].channel, got[0].msg, interopExpected())
			}
		})
	}
}

// TestInteropGoGroupSendToPython: Go GroupSend reaches Python receive()
// for a Python channel in the group.
func TestInteropGoGroupSendToPython(t *testing.T) {
	for _, ks := range keySets {
		t.Run(ks.name, func(t *testing.T) {
			r := testenv.StartRedis(t)
			py := newPyPeer(t, r, ks.keys)
			g := newRedisTestLayer(t, r, Config{SymmetricEncryptionKeys: ks.keys}, nopHandler)
			rcv := py.start("receive-group", "room_lobby", "1", "20")
			if err := g.GroupSend(context.Background(), "room_lobby", interopMessage()); err != nil {
				t.Fatal(err)
			}
			ch, msg := rcv.next(t)
			if ch != rcv.channel || !equalValues(map[string]any(msg), map[string]any(interopExpected())) {
				t.Fatalf("Python received on %q:\n%#v\nwant\n%#v", ch, msg, interopExpected())
			}
		})
	}
}

// TestInteropSendBothWays: Go Send to a Python channel name and Python
// send to a Go channel name.
func TestInteropSendBothWays(t *testing.T) {
	for _, ks := range keySets {
		t.Run(ks.name, func(t *testing.T) {
			r := testenv.StartRedis(t)
			py := newPyPeer(t, r, ks.keys)
			rec := newRecorder()
			g := newRedisTestLayer(t, r, Config{SymmetricEncryptionKeys: ks.keys}, rec.handle)
			runLayer(t, g)

			rcv := py.start("receive", "1", "20")
			if err := g.Send(context.Background(), rcv.channel, interopMessage()); err != nil {
				t.Fatal(err)
			}
			ch, msg := rcv.next(t)
			if ch != rcv.channel || !equalValues(map[string]any(msg), map[string]any(interopExpected())) {
				t.Fatalf("Python received:\n%#v", msg)
			}

			goCh := g.NewChannel()
			if res := py.run("send", goCh, taggedJSON(t, interopMessage())); res["sent"] != true {
				t.Fatalf("python send: %v", res)
			}
			got := rec.waitFor(t, 1, 10*time.Second)
			if got[0].channel != goCh || !equalValues(map[string]any(got[0].msg), map[string]any(interopExpected())) {
				t.Fatalf("Go received on %q:\n%#v", got[0].channel, got[0].msg)
			}
		})
	}
}

// TestInteropCapacity: a key filled by one side is full for the other;
// send raises/returns ChannelFull and group_send skips the key.
func TestInteropCapacity(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	py := newPyPeer(t, r, nil, "--capacity", "2")
	rec := newRecorder()
	g := newRedisTestLayer(t, r, Config{Capacity: 2}, rec.handle)
	msg := taggedJSON(t, Message{"type": "fill"})

	for range 2 {
		if res := py.run("send", "cap.py", msg); res["sent"] != true {
			t.Fatalf("python send: %v", res)
		}
	}
	if err := g.Send(ctx, "cap.py", Message{"type": "x"}); !errors.Is(err, ErrChannelFull) {
		t.Fatalf("Go send to a key Python filled: %v", err)
	}
	for range 2 {
		if err := g.Send(ctx, "cap.go", Message{"type": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if res := py.run("send", "cap.go", msg); res["full"] != true {
		t.Fatalf("Python send to a key Go filled: %v", res)
	}

	// Go group_send skips the full key and still reaches Python.
	rcv := py.start("receive-group", "capgroup", "1", "20")
	if err := g.GroupAdd(ctx, "capgroup", "cap.go"); err != nil {
		t.Fatal(err)
	}
	if err := g.GroupSend(ctx, "capgroup", Message{"type": "fan"}); err != nil {
		t.Fatal(err)
	}
	if _, m := rcv.next(t); m["type"] != "fan" {
		t.Fatalf("python got %v", m)
	}
	if st := g.Stats(); st.OverCapacity != 2 {
		t.Fatalf("Go over-capacity count %d, want 2", st.OverCapacity)
	}

	// Python group_send skips the full key and still reaches Go.
	goCh := g.NewChannel()
	if err := g.GroupAdd(ctx, "capgroup2", goCh); err != nil {
		t.Fatal(err)
	}
	py.run("group_add", "capgroup2", "cap.py")
	runLayer(t, g)
	py.run("group_send", "capgroup2", taggedJSON(t, Message{"type": "fan2"}))
	if got := rec.waitFor(t, 1, 10*time.Second); got[0].msg["type"] != "fan2" {
		t.Fatalf("Go got %v", got)
	}
	rc := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rc.Close()
	for _, k := range []string{"asgicap.py", "asgicap.go"} {
		if n := rc.ZCard(ctx, k).Val(); n != 2 {
			t.Fatalf("%s holds %d messages, want 2", k, n)
		}
	}
}

// TestInteropKeyRotation: Go still on the old key, Python with [new, old]:
// Python decrypts Go's messages; Go refuses Python's (new key) and counts
// it, without stopping.
func TestInteropKeyRotation(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	py := newPyPeer(t, r, []string{"new-secret", "old-secret"})
	rec := newRecorder()
	g := newRedisTestLayer(t, r, Config{SymmetricEncryptionKeys: []string{"old-secret"}}, rec.handle)
	rcv := py.start("receive-group", "rot", "1", "20")
	if err := g.GroupSend(ctx, "rot", Message{"type": "from.go"}); err != nil {
		t.Fatal(err)
	}
	if _, m := rcv.next(t); m["type"] != "from.go" {
		t.Fatalf("python got %v", m)
	}
	ch := g.NewChannel()
	runLayer(t, g)
	py.run("send", ch, taggedJSON(t, Message{"type": "from.python"}))
	deadline := time.Now().Add(10 * time.Second)
	for g.Stats().DecodeErrors != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", g.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec.count() != 0 {
		t.Fatal("a message with an unknown key was delivered")
	}
}

// TestInteropRedisRestart: after Redis restarts, memberships are restored
// and a Python group_send reaches the Go channel again.
func TestInteropRedisRestart(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	py := newPyPeer(t, r, nil)
	rec := newRecorder()
	g := newRedisTestLayer(t, r, Config{}, rec.handle)
	ch := g.NewChannel()
	if err := g.GroupAdd(ctx, "room_lobby", ch); err != nil {
		t.Fatal(err)
	}
	runLayer(t, g)
	msg := taggedJSON(t, Message{"type": "ping"})
	py.run("group_send", "room_lobby", msg)
	rec.waitFor(t, 1, 10*time.Second)

	r.Restart()
	waitGroupDelivery(t, rec, 2, func() error {
		py.run("group_send", "room_lobby", msg)
		return nil
	})
	if err := g.Ready(ctx); err != nil {
		t.Fatalf("Ready after restart: %v", err)
	}
}

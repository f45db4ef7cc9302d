package bridge

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// Payloads published by channels_redis 4.0's pub/sub layer (pubsub.json).
const (
	pyPubSubDirectHex = "82a474797065a6646972656374a56279746573c40200ff" // {type: direct, bytes: 00ff}
	pyPubSubGroupHex  = "82a474797065ac636861742e6d657373616765a474657874a26869"
)

// ---- a miniature Redis pub/sub for unit tests ----

// fakeBroker is an in-memory Redis pub/sub server: one per fake host.
type fakeBroker struct {
	mu        sync.Mutex
	subs      map[string]map[*fakeSub]struct{}
	all       []*fakeSub
	published []fakePublished
	hold      bool // keep subscription confirmations until releaseHeld
	down      bool // refuse every command, as a dead server
	silent    bool // take PINGs without answering, as a half-open connection
}

type fakePublished struct {
	channel string
	payload []byte
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{subs: make(map[string]map[*fakeSub]struct{})}
}

// conns returns a publisher and a subscriber connection to the broker.
func (b *fakeBroker) conns() pubsubShardConns {
	s := &fakeSub{b: b, replies: make(chan any, 1000), wanted: make(map[string]bool)}
	b.mu.Lock()
	b.all = append(b.all, s)
	b.mu.Unlock()
	return pubsubShardConns{pub: &fakePublisher{b: b}, sub: s}
}

// setDown stops or starts the server. A stopped server forgets every
// subscription, as a restarted Redis does.
func (b *fakeBroker) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
	if down {
		clear(b.subs)
		for _, s := range b.all {
			s.mu.Lock()
			s.stale = true
			s.mu.Unlock()
		}
	}
}

// subscribers returns how many connections are subscribed to name.
func (b *fakeBroker) subscribers(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[name])
}

// names returns the subscribed names, sorted.
func (b *fakeBroker) names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for n, s := range b.subs {
		if len(s) > 0 {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (b *fakeBroker) publishedTo() []fakePublished {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]fakePublished(nil), b.published...)
}

func (b *fakeBroker) setHold(hold bool) {
	b.mu.Lock()
	b.hold = hold
	subs := append([]*fakeSub(nil), b.all...)
	b.mu.Unlock()
	if !hold {
		for _, s := range subs {
			s.releaseHeld()
		}
	}
}

var errFakeDown = errors.New("fake redis: connection refused")

type fakePublisher struct{ b *fakeBroker }

func (p *fakePublisher) Publish(ctx context.Context, channel string, message any) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "publish", channel, message)
	payload, ok := message.([]byte)
	if !ok {
		cmd.SetErr(fmt.Errorf("fake redis: payload is %T", message))
		return cmd
	}
	p.b.mu.Lock()
	if p.b.down {
		p.b.mu.Unlock()
		cmd.SetErr(errFakeDown)
		return cmd
	}
	payload = append([]byte(nil), payload...)
	p.b.published = append(p.b.published, fakePublished{channel, payload})
	var targets []*fakeSub
	for s := range p.b.subs[channel] {
		targets = append(targets, s)
	}
	p.b.mu.Unlock()
	for _, s := range targets {
		s.replies <- &redis.Message{Channel: channel, Payload: string(payload)}
	}
	cmd.SetVal(int64(len(targets)))
	return cmd
}

func (p *fakePublisher) Ping(ctx context.Context) *redis.StatusCmd {
	cmd := redis.NewStatusCmd(ctx, "ping")
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	if p.b.down {
		cmd.SetErr(errFakeDown)
	} else {
		cmd.SetVal("PONG")
	}
	return cmd
}

func (p *fakePublisher) Close() error { return nil }

// fakeSub is one subscriber connection. Like go-redis' PubSub it
// remembers the wanted channels, even when a command fails, and
// subscribes them again on the first command after an outage.
type fakeSub struct {
	b       *fakeBroker
	replies chan any
	mu      sync.Mutex
	held    []any
	cmds    []string
	wanted  map[string]bool
	stale   bool // the server went away since the last command
}

// reconnect resubscribes the wanted channels after an outage; it reports
// false while the server is down. b.mu must be held.
func (s *fakeSub) reconnectLocked() bool {
	if s.b.down {
		return false
	}
	s.mu.Lock()
	stale := s.stale
	s.stale = false
	var names []string
	for n := range s.wanted {
		names = append(names, n)
	}
	s.mu.Unlock()
	if !stale {
		return true
	}
	for _, n := range names {
		set := s.b.subs[n]
		if set == nil {
			set = make(map[*fakeSub]struct{})
			s.b.subs[n] = set
		}
		set[s] = struct{}{}
		s.replies <- &redis.Subscription{Kind: "subscribe", Channel: n}
	}
	return true
}

func (s *fakeSub) command(kind string, names []string) error {
	s.mu.Lock()
	for _, n := range names {
		if kind == "subscribe" {
			s.wanted[n] = true
		} else {
			delete(s.wanted, n)
		}
	}
	s.mu.Unlock()
	s.b.mu.Lock()
	if !s.reconnectLocked() {
		s.b.mu.Unlock()
		return errFakeDown
	}
	var out []any
	for _, n := range names {
		set := s.b.subs[n]
		if set == nil {
			set = make(map[*fakeSub]struct{})
			s.b.subs[n] = set
		}
		if kind == "subscribe" {
			set[s] = struct{}{}
		} else {
			delete(set, s)
		}
		out = append(out, &redis.Subscription{Kind: kind, Channel: n})
	}
	hold := s.b.hold
	s.b.mu.Unlock()
	s.mu.Lock()
	s.cmds = append(s.cmds, kind+" "+strings.Join(names, " "))
	if hold {
		s.held = append(s.held, out...)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	for _, r := range out {
		s.replies <- r
	}
	return nil
}

func (s *fakeSub) releaseHeld() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, r := range held {
		s.replies <- r
	}
}

func (s *fakeSub) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *fakeSub) Subscribe(_ context.Context, names ...string) error {
	return s.command("subscribe", names)
}

func (s *fakeSub) Unsubscribe(_ context.Context, names ...string) error {
	return s.command("unsubscribe", names)
}

// fakeTimeout is the net.Error a read deadline gives.
type fakeTimeout struct{}

func (fakeTimeout) Error() string   { return "i/o timeout" }
func (fakeTimeout) Timeout() bool   { return true }
func (fakeTimeout) Temporary() bool { return true }

func (s *fakeSub) ReceiveTimeout(ctx context.Context, timeout time.Duration) (any, error) {
	if timeout == 0 {
		timeout = time.Hour
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-s.replies:
		return r, nil
	case <-t.C:
		return nil, fakeTimeout{}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *fakeSub) Ping(_ context.Context, payload ...string) error {
	s.b.mu.Lock()
	up := s.reconnectLocked()
	silent := s.b.silent
	s.b.mu.Unlock()
	if !up {
		return errFakeDown
	}
	if silent {
		return nil
	}
	p := ""
	if len(payload) > 0 {
		p = payload[0]
	}
	s.replies <- &redis.Pong{Payload: p}
	return nil
}

func (s *fakeSub) Close() error { return nil }

// newFakePubSub makes a pub/sub layer over n fake hosts.
func newFakePubSub(t testing.TB, cfg Config, h Handler, brokers ...*fakeBroker) *PubSubLayer {
	t.Helper()
	cfg.Backend = BackendPubSub
	cfg.SetDefaults()
	conns := make([]pubsubShardConns, len(brokers))
	for i, b := range brokers {
		conns[i] = b.conns()
		conns[i].name = fmt.Sprintf("fake%d", i)
	}
	l, err := newPubSubLayer(cfg, h, nil, conns)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitPubSubUp waits until Run has connected to every host.
func waitPubSubUp(t testing.TB, l *PubSubLayer) {
	t.Helper()
	waitUntil(t, "every host up", func() bool {
		for _, h := range l.Stats().Hosts {
			if !h.Up {
				return false
			}
		}
		return l.Ready(context.Background()) == nil
	})
}

// hasType reports whether a message of that type was delivered.
func (r *recorder) hasType(typ string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.got {
		if d.msg["type"] == typ {
			return true
		}
	}
	return false
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- unit tests ----

func TestConsistentHashVectors(t *testing.T) {
	// From channels_redis' _consistent_hash (hash_vectors.json).
	cases := []struct {
		value string
		n     int
		want  int
	}{
		{"room1", 1, 0}, {"room1", 2, 1}, {"room1", 3, 1}, {"room1", 8, 5}, {"room1", 16, 10}, {"room1", 186, 118},
		{"chat_lobby", 5, 2}, {"chat_lobby", 186, 97},
		{"g8", 2, 0}, {"g8", 7, 3},
		{"a", 8, 7}, {"", 16, 0},
		{"asgi__group__room1", 2, 0}, {"asgi__group__room1", 4, 1}, {"asgi__group__room1", 186, 73},
		{"asgispecific.abc", 8, 0}, {"asgispecific.abc", 186, 11},
		{"specific.x!été", 5, 3}, {"specific.x!été", 186, 122},
		// crc32("k852") & 0xfff == 2048: float division gives 92 where
		// integer arithmetic would give 93.
		{"k852", 186, 92},
	}
	for _, c := range cases {
		if got := consistentHash(c.value, c.n); got != c.want {
			t.Errorf("consistentHash(%q, %d) = %d, want %d", c.value, c.n, got, c.want)
		}
	}
}

func TestPubSubNames(t *testing.T) {
	b := newFakeBroker()
	l := newFakePubSub(t, Config{}, nopHandler, b)
	runLayer(t, l)
	re := regexp.MustCompile(`^asgispecific\.[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`)
	seen := map[string]bool{}
	for range 50 {
		ch := l.NewChannel()
		if !re.MatchString(ch) || strings.Contains(ch, "!") || validateChannelName(ch) != nil || seen[ch] {
			t.Fatalf("channel name %q is not asgispecific.<uuid4 hex> or repeats", ch)
		}
		seen[ch] = true
	}
	if g := l.GroupChannel("room"); g != "asgi__group__room" {
		t.Fatalf("group channel %q", g)
	}
	p := newFakePubSub(t, Config{Prefix: "myapp"}, nopHandler, b)
	runLayer(t, p)
	if ch := p.NewChannel(); !strings.HasPrefix(ch, "myappspecific.") {
		t.Fatalf("prefixed channel %q", ch)
	}
	if g := p.GroupChannel("x"); g != "myapp__group__x" {
		t.Fatalf("prefixed group channel %q", g)
	}
}

func TestPubSubPayloadMatchesPython(t *testing.T) {
	b := newFakeBroker()
	l := newFakePubSub(t, Config{}, nopHandler, b)
	ctx := context.Background()
	// A one-key map has one byte order, so the bytes can be compared.
	if err := l.GroupSend(ctx, "room", Message{"type": "chat.message"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, "asgispecific.abc", Message{"bytes": []byte{0, 0xff}}); err != nil {
		t.Fatal(err)
	}
	got := b.publishedTo()
	if len(got) != 2 || got[0].channel != "asgi__group__room" || hex.EncodeToString(got[0].payload) != "81a474797065ac636861742e6d657373616765" ||
		got[1].channel != "asgispecific.abc" || hex.EncodeToString(got[1].payload) != "81a56279746573c40200ff" {
		t.Fatalf("published %q", got)
	}
	for _, c := range []struct {
		hex  string
		want Message
	}{
		{pyPubSubDirectHex, Message{"type": "direct", "bytes": []byte{0, 0xff}}},
		{pyPubSubGroupHex, Message{"type": "chat.message", "text": "hi"}},
	} {
		msg, err := l.decode(mustHex(t, c.hex))
		if err != nil || !equalValues(map[string]any(msg), map[string]any(c.want)) {
			t.Fatalf("decode %s: %#v %v", c.hex, msg, err)
		}
	}
	// Whatever Go encodes, Go decodes to the same values and types.
	s := l.writers.Get().(*pubsubScratch)
	payload, err := l.encode(s, sampleMessage())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := l.decode(payload)
	if err != nil || !equalValues(map[string]any(msg), map[string]any(sampleDecoded())) {
		t.Fatalf("round trip: %#v %v", msg, err)
	}
}

func TestPubSubEncryption(t *testing.T) {
	b := newFakeBroker()
	l := newFakePubSub(t, Config{SymmetricEncryptionKeys: []string{"new-key", "old-key"}}, nopHandler, b)
	if err := l.GroupSend(context.Background(), "room", Message{"type": "secret"}); err != nil {
		t.Fatal(err)
	}
	payload := b.publishedTo()[0].payload
	// No random prefix: the payload is the Fernet token itself.
	if !strings.HasPrefix(string(payload), "gAAAAA") {
		t.Fatalf("payload %q is not a bare Fernet token", payload)
	}
	mf, _ := newMultiFernet([]string{"new-key"})
	plain, err := mf.decrypt(nil, payload, 0, time.Time{})
	if err != nil || hex.EncodeToString(plain) != "81a474797065a6736563726574" {
		t.Fatalf("token holds %x (%v), want the plain msgpack", plain, err)
	}
	// Tokens are accepted at any age, and with the second key too.
	old, _ := newMultiFernet([]string{"old-key"})
	ancient, _ := old.appendEncryptAt(nil, nil, plain, 1, make([]byte, 16))
	msg, err := l.decode(ancient)
	if err != nil || msg["type"] != "secret" {
		t.Fatalf("old token with the old key: %v %v", msg, err)
	}
	if _, err := l.decode(mustHex(t, pyPubSubGroupHex)); err == nil {
		t.Fatal("a plain payload was accepted by an encrypting layer")
	}
	other, _ := newMultiFernet([]string{"someone-else"})
	foreign, _ := other.appendEncrypt(nil, nil, plain, time.Now())
	if _, err := l.decode(foreign); err == nil {
		t.Fatal("a token of an unknown key was accepted")
	}
}

func TestPubSubConfig(t *testing.T) {
	for name, want := range map[string]string{
		"channels.layers.InMemoryChannelLayer":          BackendMemory,
		"channels_redis.core.RedisChannelLayer":         BackendRedis,
		"channels_redis.pubsub.RedisPubSubChannelLayer": BackendPubSub,
		"pubsub": BackendPubSub,
	} {
		c := Config{Backend: name}
		c.SetDefaults()
		if c.Backend != want || c.Validate() != nil {
			t.Errorf("backend %q became %q (%v)", name, c.Backend, c.Validate())
		}
	}
	c := Config{Backend: "pubsub"}
	c.SetDefaults()
	if len(c.Hosts) != 1 || c.Hosts[0] != DefaultHost || c.SerializerFormat != "msgpack" {
		t.Fatalf("pubsub defaults: %+v", c)
	}
	c = Config{Backend: "pubsub", Hosts: HostList{"redis://a:6379", "redis://b:6379", "redis://c:6379"}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("several pubsub hosts: %v", err)
	}
	c = Config{Backend: "pubsub", SerializerFormat: "json"}
	c.SetDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "serializer_format") {
		t.Fatalf("json serializer: %v", err)
	}
	c = Config{Backend: "channels_redis.pubsub.Nope"}
	c.SetDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "backend") {
		t.Fatalf("unknown backend: %v", err)
	}
	l, err := New(Config{Backend: "channels_redis.pubsub.RedisPubSubChannelLayer", Hosts: HostList{"redis://127.0.0.1:1"}}, nopHandler, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.(*PubSubLayer); !ok {
		t.Fatalf("New made %T", l)
	}
	_ = l.Close()
	if _, err := NewPubSubLayer(Config{Hosts: HostList{"http://x"}}, nopHandler, nil); err == nil {
		t.Fatal("http:// host accepted")
	}
	if _, err := NewPubSubLayer(Config{SymmetricEncryptionKeys: []string{""}}, nopHandler, nil); err == nil {
		t.Fatal("empty key accepted")
	}
	if _, err := NewPubSubLayer(Config{}, nil, nil); err == nil {
		t.Fatal("nil handler accepted")
	}
}

func TestPubSubGroupsSubscribeOncePerProcess(t *testing.T) {
	b := newFakeBroker()
	rec := newRecorder()
	l := newFakePubSub(t, Config{}, rec.handle, b)
	runLayer(t, l)
	ctx := context.Background()
	a, c := l.NewChannel(), l.NewChannel()
	for _, ch := range []string{a, c} {
		if b.subscribers(ch) != 1 {
			t.Fatalf("%s not subscribed when NewChannel returned", ch)
		}
		for range 2 { // adding twice is one membership
			if err := l.GroupAdd(ctx, "room", ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := b.subscribers("asgi__group__room"); n != 1 {
		t.Fatalf("group subscribed %d times", n)
	}
	sub := l.shards[0].sub.(*fakeSub)
	subs := 0
	for _, cmd := range sub.commands() {
		if strings.Contains(cmd, "asgi__group__room") {
			subs++
		}
	}
	if subs != 1 {
		t.Fatalf("commands %q", sub.commands())
	}
	// One PUBLISH reaches both members once each, with one decoded message.
	if err := l.GroupSend(ctx, "room", Message{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 2, 5*time.Second)
	if chans := []string{got[0].channel, got[1].channel}; !(chans[0] == a && chans[1] == c || chans[0] == c && chans[1] == a) {
		t.Fatalf("delivered to %q", chans)
	}
	// The group is left only when its last local member leaves.
	if err := l.GroupDiscard(ctx, "room", a); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupDiscard(ctx, "room", a); err != nil {
		t.Fatalf("discarding a non-member: %v", err)
	}
	if err := l.GroupDiscard(ctx, "never", "asgispecific.x"); err != nil {
		t.Fatalf("discarding from an unknown group: %v", err)
	}
	if err := l.GroupSend(ctx, "room", Message{"type": "second"}); err != nil {
		t.Fatal(err)
	}
	got = rec.waitFor(t, 3, 5*time.Second)
	if got[2].channel != c || got[2].msg["type"] != "second" {
		t.Fatalf("after discard: %+v", got[2])
	}
	if b.subscribers("asgi__group__room") != 1 {
		t.Fatal("group left while a member remains")
	}
	if err := l.GroupDiscard(ctx, "room", c); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "group unsubscribe", func() bool { return b.subscribers("asgi__group__room") == 0 })
	if rec.count() != 3 {
		t.Fatalf("%d deliveries", rec.count())
	}
}

func TestPubSubCloseChannelReleasesSubscriptions(t *testing.T) {
	b := newFakeBroker()
	rec := newRecorder()
	l := newFakePubSub(t, Config{}, rec.handle, b)
	runLayer(t, l)
	ctx := context.Background()
	a, c := l.NewChannel(), l.NewChannel()
	for _, g := range []string{"g1", "g2"} {
		if err := l.GroupAdd(ctx, g, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupAdd(ctx, "g2", c); err != nil {
		t.Fatal(err)
	}
	l.CloseChannel(a)
	l.CloseChannel(a) // closing twice is harmless
	l.CloseChannel("asgispecific.unknown")
	want := []string{"asgi__group__g2", c}
	sort.Strings(want)
	waitUntil(t, "unsubscribes", func() bool { return fmt.Sprint(b.names()) == fmt.Sprint(want) })
	if err := l.GroupAdd(ctx, "g1", a); !errors.Is(err, errNotLocal) {
		t.Fatalf("group_add of a closed channel: %v", err)
	}
	// A message for the closed channel is dropped, not delivered.
	if err := l.GroupSend(ctx, "g2", Message{"type": "x"}); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0].channel != c {
		t.Fatalf("delivered %+v", got)
	}
}

func TestPubSubGroupAddWaitsForConfirmation(t *testing.T) {
	b := newFakeBroker()
	l := newFakePubSub(t, Config{}, nopHandler, b)
	runLayer(t, l)
	ch := l.NewChannel()
	b.setHold(true)
	done := make(chan error, 1)
	go func() { done <- l.GroupAdd(context.Background(), "slow", ch) }()
	select {
	case err := <-done:
		t.Fatalf("GroupAdd returned %v before Redis confirmed", err)
	case <-time.After(200 * time.Millisecond):
	}
	b.setHold(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GroupAdd did not return after the confirmation")
	}

	// A GroupAdd whose confirmation does not come in time fails and
	// leaves no membership behind.
	b.setHold(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := l.GroupAdd(ctx, "never", ch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GroupAdd without confirmation: %v", err)
	}
	l.mu.RLock()
	_, member := l.groups["asgi__group__never"]
	_, member2 := l.channels[ch]["asgi__group__never"]
	l.mu.RUnlock()
	if member || member2 {
		t.Fatal("failed GroupAdd left a membership")
	}
	b.setHold(false)
	waitUntil(t, "the abandoned group to be unsubscribed", func() bool { return b.subscribers("asgi__group__never") == 0 })
}

func TestPubSubBeforeRun(t *testing.T) {
	// Calls made before Run wait for the subscriptions Run makes.
	b := newFakeBroker()
	rec := newRecorder()
	l := newFakePubSub(t, Config{}, rec.handle, b)
	start := time.Now()
	ch := l.NewChannel()
	if d := time.Since(start); d < pubsubNewChannelWait-100*time.Millisecond || d > pubsubNewChannelWait+time.Second {
		t.Fatalf("NewChannel before Run returned after %v", d)
	}
	if err := l.Ready(context.Background()); err != nil {
		t.Fatalf("Ready before Run with a reachable host: %v", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.GroupAdd(short, "late", ch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GroupAdd without Run: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- l.GroupAdd(context.Background(), "early", ch) }()
	time.Sleep(100 * time.Millisecond)
	if len(b.names()) != 0 {
		t.Fatal("subscribed before Run")
	}
	runLayer(t, l)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(b.names()) != fmt.Sprint([]string{"asgi__group__early", ch}) {
		t.Fatalf("subscribed to %q", b.names())
	}
	if err := l.Send(context.Background(), ch, Message{"type": "self"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.waitFor(t, 1, 5*time.Second); got[0].channel != ch {
		t.Fatalf("delivered %+v", got)
	}
	waitPubSubUp(t, l)
}

func TestPubSubChurnKeepsSubscriptionState(t *testing.T) {
	// Joins and leaves that overlap their confirmations must end with
	// the subscription matching the membership.
	b := newFakeBroker()
	l := newFakePubSub(t, Config{}, nopHandler, b)
	runLayer(t, l)
	ctx := context.Background()
	chans := []string{l.NewChannel(), l.NewChannel(), l.NewChannel()}
	var wg sync.WaitGroup
	for i, ch := range chans {
		wg.Go(func() {
			for j := range 50 {
				if err := l.GroupAdd(ctx, "churn", ch); err != nil {
					t.Error(err)
					return
				}
				if (i+j)%2 == 0 {
					_ = l.GroupDiscard(ctx, "churn", ch)
				}
			}
		})
	}
	wg.Wait()
	for _, ch := range chans[:2] {
		_ = l.GroupDiscard(ctx, "churn", ch)
	}
	// chans[2] is still a member.
	waitUntil(t, "steady state", func() bool { return b.subscribers("asgi__group__churn") == 1 })
	if err := l.GroupDiscard(ctx, "churn", chans[2]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "unsubscribed", func() bool { return b.subscribers("asgi__group__churn") == 0 })
}

func TestPubSubDispatchErrors(t *testing.T) {
	b := newFakeBroker()
	rec := newRecorder()
	var panics int
	var mu sync.Mutex
	h := func(ch string, msg Message) {
		if msg["type"] == "boom" {
			mu.Lock()
			panics++
			mu.Unlock()
			panic("handler failure")
		}
		rec.handle(ch, msg)
	}
	l := newFakePubSub(t, Config{}, h, b)
	runLayer(t, l)
	ctx := context.Background()
	ch := l.NewChannel()
	if err := l.GroupAdd(ctx, "room", ch); err != nil {
		t.Fatal(err)
	}
	pub := l.shards[0].pub
	for _, bad := range [][]byte{{}, {0xc1}, mustHex(t, "81a1"), mustHex(t, "a474797065"), mustHex(t, "8101a161"), []byte("gAAAAAnot-a-token")} {
		if err := pub.Publish(ctx, "asgi__group__room", bad).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Send(ctx, ch, Message{"type": "boom"}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "asgi__group__nobody", mustHex(t, pyPubSubGroupHex)).Err(); err != nil {
		t.Fatal(err)
	}
	// The loop survives all of it.
	if err := l.GroupSend(ctx, "room", Message{"type": "ok"}); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 1, 5*time.Second)
	if got[0].msg["type"] != "ok" {
		t.Fatalf("delivered %+v", got)
	}
	st := l.Stats()
	mu.Lock()
	defer mu.Unlock()
	if st.DecodeErrors != 6 || panics != 1 || st.Received != 8 || st.Delivered != 2 || st.GroupSent != 1 || st.Sent != 1 {
		t.Fatalf("stats %+v, panics %d", st, panics)
	}
	if err := l.Send(ctx, "bad name", Message{"type": "x"}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad channel name: %v", err)
	}
	if err := l.GroupSend(ctx, "bad/group", Message{"type": "x"}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad group name: %v", err)
	}
	if err := l.GroupAdd(ctx, "room", "asgispecific.notmine"); !errors.Is(err, errNotLocal) {
		t.Fatalf("group_add of a foreign channel: %v", err)
	}
	if err := l.GroupSend(ctx, "room", nil); err == nil {
		t.Fatal("nil message accepted")
	}
	if err := l.Send(ctx, ch, Message{"type": func() {}}); err == nil {
		t.Fatal("unsupported value accepted")
	}
	if err := l.Run(ctx); err == nil {
		t.Fatal("a second Run started")
	}
}

func TestPubSubShardsByFullName(t *testing.T) {
	hosts := []*fakeBroker{newFakeBroker(), newFakeBroker()}
	rec := newRecorder()
	l := newFakePubSub(t, Config{}, rec.handle, hosts...)
	runLayer(t, l)
	ctx := context.Background()
	// Groups on either host, chosen by the hash of the full pub/sub name.
	groups := map[int]string{}
	for i := 0; len(groups) < 2; i++ {
		g := fmt.Sprintf("room%d", i)
		groups[consistentHash("asgi__group__"+g, 2)] = g
	}
	ch := l.NewChannel()
	own := consistentHash(ch, 2)
	if hosts[own].subscribers(ch) != 1 || hosts[1-own].subscribers(ch) != 0 {
		t.Fatalf("channel %s subscribed on the wrong host", ch)
	}
	for idx, g := range groups {
		if err := l.GroupAdd(ctx, g, ch); err != nil {
			t.Fatal(err)
		}
		if hosts[idx].subscribers("asgi__group__"+g) != 1 || hosts[1-idx].subscribers("asgi__group__"+g) != 0 {
			t.Fatalf("group %s subscribed on the wrong host", g)
		}
		if err := l.GroupSend(ctx, g, Message{"type": g}); err != nil {
			t.Fatal(err)
		}
		p := hosts[idx].publishedTo()
		if len(p) == 0 || p[len(p)-1].channel != "asgi__group__"+g {
			t.Fatalf("group_send %s not published on host %d", g, idx)
		}
	}
	if err := l.Send(ctx, ch, Message{"type": "direct"}); err != nil {
		t.Fatal(err)
	}
	if p := hosts[own].publishedTo(); p[len(p)-1].channel != ch {
		t.Fatal("send not published on the channel's host")
	}
	rec.waitFor(t, 3, 5*time.Second)
	// Each host counts what it delivered: one group message each, and
	// the direct message on the channel's host.
	waitUntil(t, "both hosts up", func() bool {
		st := l.Stats()
		return len(st.Hosts) == 2 && st.Hosts[0].Up && st.Hosts[1].Up
	})
	st := l.Stats()
	if st.Hosts[own].Received != 2 || st.Hosts[1-own].Received != 1 || st.Hosts[0].Name != "fake0" || st.Hosts[1].Name != "fake1" {
		t.Fatalf("host stats %+v", st.Hosts)
	}
}

func TestPubSubReadyFollowsConnection(t *testing.T) {
	b := newFakeBroker()
	rec := newRecorder()
	l := newFakePubSub(t, Config{}, rec.handle, b)
	runLayer(t, l)
	ctx := context.Background()
	waitPubSubUp(t, l)
	b.setDown(true)
	// The idle PING fails, and Ready says so.
	waitUntil(t, "subscriber down", func() bool {
		err := l.Ready(ctx)
		return err != nil && strings.Contains(err.Error(), "redis pubsub hosts[0]")
	})
	// NewChannel does not wait on a host known to be down.
	start := time.Now()
	ch := l.NewChannel()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("NewChannel took %v with the host down", d)
	}
	if err := l.GroupSend(ctx, "room", Message{"type": "x"}); err == nil {
		t.Fatal("group_send with the host down succeeded")
	}
	b.setDown(false)
	waitUntil(t, "ready again", func() bool { return l.Ready(ctx) == nil })
	// The channel made while down is subscribed once the host is back.
	waitUntil(t, "late subscription", func() bool { return b.subscribers(ch) == 1 })
	if err := l.Send(ctx, ch, Message{"type": "late"}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 1, 5*time.Second)
	if l.Stats().BackendErrors == 0 {
		t.Fatal("outage not counted")
	}
}

func TestPubSubSilentConnectionIsDown(t *testing.T) {
	// A connection that takes PINGs but never answers (half-open TCP)
	// is reported down after the pong timeout.
	b := newFakeBroker()
	l := newFakePubSub(t, Config{}, nopHandler, b)
	l.shards[0].idlePing = 50 * time.Millisecond
	l.shards[0].pongTimeout = 100 * time.Millisecond
	runLayer(t, l)
	ctx := context.Background()
	waitPubSubUp(t, l)
	b.mu.Lock()
	b.silent = true
	b.mu.Unlock()
	waitUntil(t, "down", func() bool { return l.Ready(ctx) != nil && !l.Stats().Hosts[0].Up })
	if l.Stats().Hosts[0].BackendErrors == 0 {
		t.Fatal("the silent connection was not counted")
	}
	b.mu.Lock()
	b.silent = false
	b.mu.Unlock()
	waitUntil(t, "up again", func() bool { return l.Ready(ctx) == nil && l.Stats().Hosts[0].Up })
}

// FuzzPubSubDecode feeds arbitrary payloads to a plain and an encrypting
// pub/sub layer. Decoding must never panic, and whatever decodes must
// encode and decode to the same message.
func FuzzPubSubDecode(f *testing.F) {
	plain := newFakePubSub(f, Config{}, nopHandler, newFakeBroker())
	enc := newFakePubSub(f, Config{SymmetricEncryptionKeys: []string{fuzzKey}}, nopHandler, newFakeBroker())
	f.Add(mustHex(f, pyPubSubDirectHex))
	f.Add(mustHex(f, pyPubSubGroupHex))
	for _, l := range []*PubSubLayer{plain, enc} {
		s := l.writers.Get().(*pubsubScratch)
		p, _ := l.encode(s, sampleMessage())
		f.Add(append([]byte(nil), p...))
	}
	f.Add([]byte("gAAAAA"))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, l := range []*PubSubLayer{plain, enc} {
			msg, err := l.decode(payload)
			if err != nil {
				continue
			}
			s := l.writers.Get().(*pubsubScratch)
			again, err := l.encode(s, msg)
			if err != nil {
				t.Fatalf("decoded message does not re-encode: %v", err)
			}
			msg2, err := l.decode(again)
			l.putWriter(s)
			if err != nil || !equalValues(map[string]any(msg), map[string]any(msg2)) {
				t.Fatalf("round trip changed the message: %v\n%#v\n%#v", err, msg, msg2)
			}
		}
	})
}

// ---- against a real redis-server ----

// newPubSubTestLayer makes a pub/sub layer on the given servers.
func newPubSubTestLayer(t testing.TB, cfg Config, h Handler, servers ...*testenv.Redis) *PubSubLayer {
	t.Helper()
	cfg.Hosts = nil
	for _, r := range servers {
		cfg.Hosts = append(cfg.Hosts, r.URL())
	}
	l, err := NewPubSubLayer(cfg, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// numsub returns PUBSUB NUMSUB of name on a server.
func numsub(t testing.TB, rc *redis.Client, name string) int64 {
	t.Helper()
	m, err := rc.PubSubNumSub(context.Background(), name).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m[name]
}

func TestPubSubRedisWire(t *testing.T) {
	r := testenv.StartRedis(t)
	rc := rawClient(t, r)
	ctx := context.Background()
	rec := newRecorder()
	l := newPubSubTestLayer(t, Config{}, rec.handle, r)
	runLayer(t, l)
	ch := l.NewChannel()
	// Subscribed by the time NewChannel returns.
	if numsub(t, rc, ch) != 1 {
		t.Fatalf("%s has no subscriber after NewChannel", ch)
	}
	if err := l.GroupAdd(ctx, "room", ch); err != nil {
		t.Fatal(err)
	}
	if numsub(t, rc, "asgi__group__room") != 1 {
		t.Fatal("group not subscribed after GroupAdd")
	}
	// A plain subscriber sees exactly what channels_redis would publish.
	spy := rc.Subscribe(ctx, "asgi__group__room", ch)
	defer spy.Close()
	for range 2 {
		if _, err := spy.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupSend(ctx, "room", Message{"type": "chat.message"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, ch, Message{"bytes": []byte{0, 0xff}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ name, hex string }{
		{"asgi__group__room", "81a474797065ac636861742e6d657373616765"},
		{ch, "81a56279746573c40200ff"},
	} {
		m, err := spy.ReceiveMessage(ctx)
		if err != nil || m.Channel != want.name || hex.EncodeToString([]byte(m.Payload)) != want.hex {
			t.Fatalf("spy got %v %v, want %s %s", m, err, want.name, want.hex)
		}
	}
	// A payload published by channels_redis 4.0 is delivered.
	if err := rc.Publish(ctx, "asgi__group__room", mustHex(t, pyPubSubGroupHex)).Err(); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 3, 5*time.Second)
	if !equalValues(map[string]any(got[2].msg), map[string]any(Message{"type": "chat.message", "text": "hi"})) {
		t.Fatalf("delivered %+v", got)
	}
	// Leaving and closing unsubscribe; nothing is stored in Redis.
	if err := l.GroupDiscard(ctx, "room", ch); err != nil {
		t.Fatal(err)
	}
	l.CloseChannel(ch)
	waitUntil(t, "unsubscribes", func() bool {
		return numsub(t, rc, "asgi__group__room") == 1 && numsub(t, rc, ch) == 1 // the spy's only
	})
	if keys := rc.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("the pub/sub layer stored keys %q", keys)
	}
}

func TestPubSubRedisRestart(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	l := newPubSubTestLayer(t, Config{}, rec.handle, r)
	sender := newPubSubTestLayer(t, Config{}, nopHandler, r)
	runLayer(t, l)
	ch := l.NewChannel()
	if err := l.GroupAdd(ctx, "room", ch); err != nil {
		t.Fatal(err)
	}
	waitPubSubUp(t, l)
	r.Stop()
	waitUntil(t, "not ready while Redis is down", func() bool { return l.Ready(ctx) != nil })
	r.Restart()
	// The empty server knows no subscriptions; the layer makes them again.
	waitGroupDelivery(t, rec, 1, func() error { return sender.GroupSend(ctx, "room", Message{"type": "after"}) })
	waitUntil(t, "ready after restart", func() bool { return l.Ready(ctx) == nil })
	if err := sender.Send(ctx, ch, Message{"type": "direct"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "direct delivery after restart", func() bool { return rec.hasType("direct") })
}

func TestPubSubRedisTwoHosts(t *testing.T) {
	r0, r1 := testenv.StartRedis(t), testenv.StartRedis(t)
	rcs := []*redis.Client{rawClient(t, r0), rawClient(t, r1)}
	ctx := context.Background()
	rec := newRecorder()
	l := newPubSubTestLayer(t, Config{}, rec.handle, r0, r1)
	sender := newPubSubTestLayer(t, Config{}, nopHandler, r0, r1)
	runLayer(t, l)
	ch := l.NewChannel()
	own := consistentHash(ch, 2)
	if numsub(t, rcs[own], ch) != 1 || numsub(t, rcs[1-own], ch) != 0 {
		t.Fatalf("channel subscribed on the wrong host")
	}
	n := 0
	for _, g := range []string{"room1", "chat_lobby", "g8", "user.42"} {
		idx := consistentHash("asgi__group__"+g, 2)
		if err := l.GroupAdd(ctx, g, ch); err != nil {
			t.Fatal(err)
		}
		if numsub(t, rcs[idx], "asgi__group__"+g) != 1 || numsub(t, rcs[1-idx], "asgi__group__"+g) != 0 {
			t.Fatalf("group %s subscribed on the wrong host", g)
		}
		if err := sender.GroupSend(ctx, g, Message{"type": g}); err != nil {
			t.Fatal(err)
		}
		n++
		if got := rec.waitFor(t, n, 5*time.Second); got[n-1].msg["type"] != g {
			t.Fatalf("delivered %+v", got[n-1])
		}
	}
}

package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pub/sub timing. The receive loop reads with a short timeout so that Run
// notices cancellation; an idle connection is probed with PING so that a
// dead one is replaced even when no message is due.
const (
	pubsubReadTimeout = time.Second
	pubsubIdlePing    = 3 * time.Second
	pubsubPongTimeout = 3 * time.Second
	// pubsubNewChannelWait bounds how long NewChannel waits for Redis to
	// confirm a channel's subscription.
	pubsubNewChannelWait = 2 * time.Second
	// pubsubBatchTimeout bounds the wait for the confirmations of one
	// batch of SUBSCRIBE/UNSUBSCRIBE commands on a live connection.
	pubsubBatchTimeout = 5 * time.Second
	pubsubPingPayload  = "channels-sidecar"
	pubsubGroupInfix   = "__group__"
	pubsubNamePrefix   = "specific."
)

// errNotLocal is wrapped by GroupAdd errors for channels that this layer
// did not create: pub/sub group membership only exists in-process.
var errNotLocal = errors.New("channel was not created by this layer")

// PubSubLayer is channels_redis.pubsub.RedisPubSubChannelLayer: messages go
// through Redis PUBLISH/SUBSCRIBE instead of sorted sets. Nothing is stored
// in Redis; group membership lives in each process, which subscribes to
// "<prefix>__group__<group>" while it has a local member. The protocol has
// no buffering: a message published while this process is not subscribed,
// for example while the connection to Redis is down, is lost.
//
// Payloads are msgpack, or a Fernet token of the msgpack when
// symmetric_encryption_keys is set (channels_redis >= 4.2.1 on the Django
// side), without the core layer's random prefix and without
// __asgi_channel__.
type PubSubLayer struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	shards  []*pubsubShard
	fernet  *multiFernet // nil without encryption
	writers sync.Pool    // *pubsubScratch
	readers sync.Pool    // *msgpackReader
	stats   counters
	running atomic.Bool

	mu       sync.RWMutex
	channels map[string]map[string]struct{} // local channel -> pub/sub names of its groups
	groups   map[string]map[string]struct{} // group pub/sub name -> local member channels
}

var (
	_ Layer         = (*PubSubLayer)(nil)
	_ ChannelCloser = (*PubSubLayer)(nil)
	_ StatsSource   = (*PubSubLayer)(nil)
)

// pubsubScratch holds the reusable buffers of one encode.
type pubsubScratch struct {
	mw    *msgpackWriter
	token []byte
}

// NewPubSubLayer returns the pub/sub layer for cfg.Hosts; connections are
// made when needed. Messages for its channels reach h once Run is running.
func NewPubSubLayer(cfg Config, h Handler, log *slog.Logger) (*PubSubLayer, error) {
	cfg.Backend = BackendPubSub
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	conns := make([]pubsubShardConns, len(cfg.Hosts))
	for i, host := range cfg.Hosts {
		spec, err := ParseHost(host)
		if err != nil {
			return nil, fmt.Errorf("bridge config: hosts[%d]: %w", i, err)
		}
		rdb := spec.NewClient(nil)
		// Subscribe without channels makes the PubSub without connecting.
		conns[i] = pubsubShardConns{name: spec.Name, pub: rdb, sub: rdb.Subscribe(context.Background())}
	}
	return newPubSubLayer(cfg, h, log, conns)
}

// pubsubShardConns are the two connections to one host: pub for PUBLISH
// and PING, sub for the subscriptions. name describes the host without
// secrets.
type pubsubShardConns struct {
	name string
	pub  pubsubPublisher
	sub  pubsubConn
}

// pubsubPublisher is the part of *redis.Client the layer publishes with.
type pubsubPublisher interface {
	Publish(ctx context.Context, channel string, message any) *redis.IntCmd
	Ping(ctx context.Context) *redis.StatusCmd
	Close() error
}

// pubsubConn is the part of *redis.PubSub the layer uses. go-redis
// redials a broken connection and resubscribes its channels by itself.
type pubsubConn interface {
	Subscribe(ctx context.Context, channels ...string) error
	Unsubscribe(ctx context.Context, channels ...string) error
	ReceiveTimeout(ctx context.Context, timeout time.Duration) (any, error)
	Ping(ctx context.Context, payload ...string) error
	Close() error
}

// newPubSubLayer builds the layer around one connection pair per host.
func newPubSubLayer(cfg Config, h Handler, log *slog.Logger, conns []pubsubShardConns) (*PubSubLayer, error) {
	if h == nil {
		return nil, errors.New("bridge: handler is nil")
	}
	if len(conns) == 0 {
		return nil, errors.New("bridge: the pubsub layer needs at least one host")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &PubSubLayer{
		cfg:      cfg,
		handler:  h,
		log:      log.With("component", "bridge", "backend", BackendPubSub),
		channels: make(map[string]map[string]struct{}),
		groups:   make(map[string]map[string]struct{}),
	}
	if len(cfg.SymmetricEncryptionKeys) > 0 {
		f, err := newMultiFernet(cfg.SymmetricEncryptionKeys)
		if err != nil {
			return nil, fmt.Errorf("bridge config: symmetric_encryption_keys: %w", err)
		}
		l.fernet = f
	}
	l.writers.New = func() any { return &pubsubScratch{mw: newMsgpackWriter()} }
	l.readers.New = func() any { return newMsgpackReader() }
	for i, c := range conns {
		l.shards = append(l.shards, newPubSubShard(l, i, c))
	}
	return l, nil
}

// consistentHash is channels_redis' _consistent_hash: range partitioning
// of the low 12 bits of the CRC-32 of value over n buckets. The float
// division matters: integer arithmetic differs for a few ring sizes.
func consistentHash(value string, n int) int {
	if n <= 1 {
		return 0
	}
	low := crc32.ChecksumIEEE([]byte(value)) & 0xfff
	return int(float64(low) / (4096 / float64(n)))
}

// shardFor returns the shard of a pub/sub channel name.
func (l *PubSubLayer) shardFor(name string) *pubsubShard {
	return l.shards[consistentHash(name, len(l.shards))]
}

// GroupChannel returns the Redis pub/sub channel of a group,
// "<prefix>__group__<group>".
func (l *PubSubLayer) GroupChannel(group string) string {
	return l.cfg.Prefix + pubsubGroupInfix + group
}

// NewChannel returns a new local channel, "<prefix>specific.<32 hex>" as
// channels_redis' new_channel() makes it, and subscribes to it. It waits
// up to two seconds for Redis to confirm the subscription (made by Run),
// so that the channel can receive when NewChannel returns; it does not
// wait when the connection is known to be down. Send to a local channel
// waits for the confirmation in any case.
func (l *PubSubLayer) NewChannel() string {
	name := l.cfg.Prefix + pubsubNamePrefix + newUUID4Hex()
	shard := l.shardFor(name)
	l.mu.Lock()
	l.channels[name] = make(map[string]struct{})
	ready := shard.acquire(name)
	l.mu.Unlock()
	if shard.status.Load() != shardDown {
		t := time.NewTimer(pubsubNewChannelWait)
		defer t.Stop()
		select {
		case <-ready:
		case <-t.C:
			l.log.Debug("subscription of a new channel not yet confirmed", "shard", shard.index)
		}
	}
	return name
}

// CloseChannel releases a channel made by NewChannel: it leaves its groups
// and is unsubscribed. Later messages for it are dropped. The hub calls it
// when the channel's socket closes; channels that are never closed keep
// their subscriptions.
func (l *PubSubLayer) CloseChannel(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	groups, ok := l.channels[channel]
	if !ok {
		return
	}
	delete(l.channels, channel)
	l.shardFor(channel).release(channel)
	for g := range groups {
		l.removeMemberLocked(g, channel)
	}
}

// Send publishes msg on the channel's pub/sub channel, on the host that
// the channel name hashes to. Nobody may be listening: the message is then
// lost, as in channels_redis. A local channel's subscription is awaited
// first, so a message to self is not published too early.
func (l *PubSubLayer) Send(ctx context.Context, channel string, msg Message) error {
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	shard := l.shardFor(channel)
	if ready := shard.readyChan(channel); ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("send to %q: subscription of the local channel not confirmed: %w", channel, ctx.Err())
		}
	}
	n, err := l.publish(ctx, shard, channel, msg)
	if err != nil {
		return fmt.Errorf("send to %q: %w", channel, err)
	}
	l.stats.sent.Add(1)
	if n == 0 {
		l.log.Debug("sent message had no subscriber", "channel", channel)
	}
	return nil
}

// GroupAdd adds a local channel to group and subscribes this process to
// the group's pub/sub channel if it is the first local member. It returns
// once Redis has confirmed the subscription, which Run makes, or with an
// error (and no membership) when ctx ends first.
func (l *PubSubLayer) GroupAdd(ctx context.Context, group, channel string) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_add: %w", err)
	}
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("group_add: %w", err)
	}
	name := l.GroupChannel(group)
	shard := l.shardFor(name)
	l.mu.Lock()
	groups, ok := l.channels[channel]
	if !ok {
		l.mu.Unlock()
		return fmt.Errorf("group_add %q: %q: %w", group, channel, errNotLocal)
	}
	members := l.groups[name]
	if members == nil {
		members = make(map[string]struct{})
		l.groups[name] = members
	}
	var ready <-chan struct{}
	_, already := members[channel]
	if already {
		ready = shard.readyChan(name)
	} else {
		members[channel] = struct{}{}
		groups[name] = struct{}{}
		ready = shard.acquire(name)
	}
	l.mu.Unlock()
	if ready == nil {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		if !already {
			l.mu.Lock()
			l.removeMemberLocked(name, channel)
			l.mu.Unlock()
		}
		return fmt.Errorf("group_add %q: subscription not confirmed by redis: %w", group, ctx.Err())
	}
}

// GroupDiscard removes a local channel from group and unsubscribes from
// the group's pub/sub channel when its last local member leaves. Removing
// a channel that is not a member does nothing (channels_redis >= 4.1).
func (l *PubSubLayer) GroupDiscard(_ context.Context, group, channel string) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_discard: %w", err)
	}
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("group_discard: %w", err)
	}
	l.mu.Lock()
	l.removeMemberLocked(l.GroupChannel(group), channel)
	l.mu.Unlock()
	return nil
}

// removeMemberLocked drops one membership; l.mu must be held.
func (l *PubSubLayer) removeMemberLocked(name, channel string) {
	members := l.groups[name]
	if _, ok := members[channel]; !ok {
		return
	}
	delete(members, channel)
	if len(members) == 0 {
		delete(l.groups, name)
	}
	if groups := l.channels[channel]; groups != nil {
		delete(groups, name)
	}
	l.shardFor(name).release(name)
}

// GroupSend publishes msg once on the group's pub/sub channel; every
// subscribed process passes it to its local members.
func (l *PubSubLayer) GroupSend(ctx context.Context, group string, msg Message) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_send: %w", err)
	}
	name := l.GroupChannel(group)
	if _, err := l.publish(ctx, l.shardFor(name), name, msg); err != nil {
		return fmt.Errorf("group_send %q: %w", group, err)
	}
	l.stats.groupSent.Add(1)
	return nil
}

// publish encodes msg and publishes it, returning the receiver count.
func (l *PubSubLayer) publish(ctx context.Context, shard *pubsubShard, name string, msg Message) (int64, error) {
	if msg == nil {
		return 0, errors.New("message is nil")
	}
	s := l.writers.Get().(*pubsubScratch)
	defer l.putWriter(s)
	payload, err := l.encode(s, msg)
	if err != nil {
		return 0, err
	}
	n, err := shard.pub.Publish(ctx, name, payload).Result()
	if err != nil {
		return 0, fmt.Errorf("redis publish: %w", err)
	}
	return n, nil
}

// encode returns the payload for msg in s's buffers: msgpack, or its
// Fernet token.
func (l *PubSubLayer) encode(s *pubsubScratch, msg Message) ([]byte, error) {
	s.mw.w.buf = s.mw.w.buf[:0]
	if err := s.mw.writeMessage(msg, 0); err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	if l.fernet == nil {
		return s.mw.w.buf, nil
	}
	var out []byte
	out, s.token = l.fernet.appendEncrypt(nil, s.token, s.mw.w.buf, time.Now())
	return out, nil
}

func (l *PubSubLayer) putWriter(s *pubsubScratch) {
	if cap(s.mw.w.buf) > maxScratch {
		s.mw.w.buf = nil
	}
	if cap(s.token) > maxScratch {
		s.token = nil
	}
	l.writers.Put(s)
}

// decode turns a received payload into a message. Fernet tokens are
// accepted at any age, as channels_redis' pub/sub layer decrypts without
// a TTL.
func (l *PubSubLayer) decode(payload []byte) (Message, error) {
	if l.fernet != nil {
		plain, err := l.fernet.decrypt(nil, payload, 0, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("decrypt: %w", err)
		}
		payload = plain
	}
	mr := l.readers.Get().(*msgpackReader)
	defer func() {
		if cap(mr.buf) > maxScratch {
			mr.buf = nil
		}
		mr.r.Reset(nil)
		l.readers.Put(mr)
	}()
	msg, err := mr.readMessage(payload)
	if err != nil {
		return nil, fmt.Errorf("decode msgpack: %w", err)
	}
	return msg, nil
}

// dispatch delivers one pub/sub message: to the channel of that name if it
// is local, else to every local member of the group of that name, as
// channels_redis does. The payload is decoded once for all members.
func (l *PubSubLayer) dispatch(name string, payload []byte) {
	l.stats.received.Add(1)
	var targets []string
	l.mu.RLock()
	if _, ok := l.channels[name]; ok {
		targets = []string{name}
	} else if members := l.groups[name]; len(members) > 0 {
		targets = make([]string, 0, len(members))
		for ch := range members {
			targets = append(targets, ch)
		}
	}
	l.mu.RUnlock()
	if len(targets) == 0 {
		l.stats.droppedUnknown.Add(1)
		l.log.Debug("dropping message for a channel or group without local members", "name", name)
		return
	}
	msg, err := l.decode(payload)
	if err != nil {
		l.stats.decodeErrors.Add(1)
		// The error says what is wrong; the payload is never logged.
		l.log.Warn("dropping message that cannot be decoded", "name", name, "bytes", len(payload), "err", err)
		return
	}
	for _, ch := range targets {
		l.deliver(ch, msg)
	}
}

// deliver calls the Handler, keeping a panic in it from ending the loop.
func (l *PubSubLayer) deliver(ch string, msg Message) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("handler panicked", "channel", ch, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	l.stats.delivered.Add(1)
	l.handler(ch, msg)
}

// Run keeps every host's subscriptions in step with the local channels and
// groups and delivers their messages, until ctx is cancelled; then it
// returns nil. Connections that break are redialled and resubscribed;
// Ready reports the outage meanwhile.
func (l *PubSubLayer) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("bridge: Run is already running")
	}
	defer l.running.Store(false)
	var wg sync.WaitGroup
	for _, s := range l.shards {
		s.wakeOps()
		wg.Go(func() { s.opLoop(ctx) })
		wg.Go(func() { s.readLoop(ctx) })
	}
	wg.Wait()
	return nil
}

// Ready returns nil when every host answers PING and, while Run is
// running, every subscriber connection is up.
func (l *PubSubLayer) Ready(ctx context.Context) error {
	var errs []error
	for _, s := range l.shards {
		if l.running.Load() {
			switch s.status.Load() {
			case shardUp:
			case shardDown:
				err := errors.New("connection lost")
				if p := s.lastErr.Load(); p != nil {
					err = *p
				}
				errs = append(errs, fmt.Errorf("redis pubsub hosts[%d]: %w", s.index, err))
				continue
			default:
				errs = append(errs, fmt.Errorf("redis pubsub hosts[%d]: not connected yet", s.index))
				continue
			}
		}
		if err := s.pub.Ping(ctx).Err(); err != nil {
			errs = append(errs, fmt.Errorf("redis hosts[%d] ping: %w", s.index, err))
		}
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the layer's counters. Sent counts Send
// calls, GroupSent GroupSend calls (one PUBLISH each), Received the
// pub/sub messages read and Delivered the Handler calls. Hosts has the
// per-host figures; there is no queue and no lag, since pub/sub messages
// carry no timestamp and wait nowhere.
func (l *PubSubLayer) Stats() Stats {
	st := l.stats.snapshot()
	st.Hosts = make([]HostStats, len(l.shards))
	for i, s := range l.shards {
		st.Hosts[i] = HostStats{
			Name:          s.name,
			Up:            s.status.Load() == shardUp,
			Received:      s.received.Load(),
			BackendErrors: s.backendErrors.Load(),
		}
	}
	return st
}

// Close closes every connection. Run must have returned.
func (l *PubSubLayer) Close() error {
	var errs []error
	for _, s := range l.shards {
		if err := s.sub.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, fmt.Errorf("close redis pubsub hosts[%d]: %w", s.index, err))
		}
		if err := s.pub.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, fmt.Errorf("close redis hosts[%d]: %w", s.index, err))
		}
	}
	return errors.Join(errs...)
}

// newUUID4Hex returns a random UUID version 4 as 32 lowercase hex digits,
// like Python's uuid.uuid4().hex.
func newUUID4Hex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// Connection states of a shard's subscriber.
const (
	shardUnknown int32 = iota // not connected since Run started
	shardUp
	shardDown
)

// pubsubShard is one host: its publisher, its subscriber connection and
// the subscriptions this process wants on it.
type pubsubShard struct {
	l     *PubSubLayer
	index int
	name  string
	pub   pubsubPublisher
	sub   pubsubConn
	// idlePing and pongTimeout are pubsubIdlePing and pubsubPongTimeout;
	// tests shorten them.
	idlePing, pongTimeout time.Duration

	status        atomic.Int32
	lastErr       atomic.Pointer[error]
	received      atomic.Uint64
	backendErrors atomic.Uint64
	wake          chan struct{} // asks opLoop to look at dirty
	reset         chan struct{} // tells opLoop the connection was lost

	mu        sync.Mutex
	subs      map[string]*pubsubSub
	dirty     map[string]struct{}
	expect    map[string]string // name -> confirmation kind awaited by opLoop
	batchDone chan struct{}     // closed when expect empties
}

// pubsubSub is one wanted subscription: a local channel (refs 1) or a
// group (refs = local members).
type pubsubSub struct {
	refs      int
	issued    bool          // SUBSCRIBE written; go-redis resubscribes it after a reconnect
	ready     chan struct{} // closed when Redis first confirmed the subscription
	confirmed bool
}

func newPubSubShard(l *PubSubLayer, index int, c pubsubShardConns) *pubsubShard {
	return &pubsubShard{
		l:           l,
		index:       index,
		name:        c.name,
		pub:         c.pub,
		sub:         c.sub,
		idlePing:    pubsubIdlePing,
		pongTimeout: pubsubPongTimeout,
		wake:        make(chan struct{}, 1),
		reset:       make(chan struct{}, 1),
		subs:        make(map[string]*pubsubSub),
		dirty:       make(map[string]struct{}),
	}
}

// acquire takes a reference on the subscription to name and returns the
// channel closed once Redis confirmed it.
func (s *pubsubShard) acquire(name string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.subs[name]
	if e == nil {
		e = &pubsubSub{ready: make(chan struct{})}
		s.subs[name] = e
	}
	e.refs++
	if e.refs == 1 {
		s.markDirtyLocked(name)
	}
	return e.ready
}

// release drops a reference; the last one unsubscribes.
func (s *pubsubShard) release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.subs[name]
	if e == nil || e.refs == 0 {
		return
	}
	e.refs--
	if e.refs == 0 {
		s.markDirtyLocked(name)
	}
}

// readyChan returns the confirmation channel of a wanted subscription, or
// nil when name is not wanted.
func (s *pubsubShard) readyChan(name string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.subs[name]; e != nil && e.refs > 0 {
		return e.ready
	}
	return nil
}

func (s *pubsubShard) markDirtyLocked(name string) {
	s.dirty[name] = struct{}{}
	s.wakeOps()
}

func (s *pubsubShard) wakeOps() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// opLoop is the only writer of SUBSCRIBE and UNSUBSCRIBE. It sends the
// pending changes as one batch and waits for Redis to confirm the batch
// before sending the next, so that a confirmation always refers to the
// latest command for its name.
func (s *pubsubShard) opLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for ctx.Err() == nil {
			subs, unsubs, done := s.takeBatch()
			if len(subs)+len(unsubs) == 0 {
				break
			}
			s.runBatch(ctx, subs, unsubs, done)
		}
	}
}

// takeBatch turns the dirty names into commands and records the
// confirmations to wait for.
func (s *pubsubShard) takeBatch() (subs, unsubs []string, done chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.dirty {
		e := s.subs[name]
		switch {
		case e == nil:
		case e.refs > 0 && !e.issued:
			e.issued = true
			subs = append(subs, name)
		case e.refs == 0:
			if e.issued {
				unsubs = append(unsubs, name)
			}
			delete(s.subs, name)
		}
	}
	clear(s.dirty)
	if len(subs)+len(unsubs) == 0 {
		return nil, nil, nil
	}
	s.expect = make(map[string]string, len(subs)+len(unsubs))
	for _, n := range subs {
		s.expect[n] = "subscribe"
	}
	for _, n := range unsubs {
		s.expect[n] = "unsubscribe"
	}
	s.batchDone = make(chan struct{})
	return subs, unsubs, s.batchDone
}

// runBatch writes one batch and waits for its confirmations, for the
// connection to be lost, or for pubsubBatchTimeout.
func (s *pubsubShard) runBatch(ctx context.Context, subs, unsubs []string, done chan struct{}) {
	defer s.clearExpect()
	// A reset from before this batch says nothing about it.
	select {
	case <-s.reset:
	default:
	}
	var err error
	if len(unsubs) > 0 {
		err = s.sub.Unsubscribe(ctx, unsubs...)
	}
	if len(subs) > 0 {
		err = errors.Join(err, s.sub.Subscribe(ctx, subs...))
	}
	if err != nil {
		// go-redis has recorded the change; the next connection it
		// makes subscribes exactly the wanted channels.
		if ctx.Err() == nil {
			s.l.stats.backendErrors.Add(1)
			s.backendErrors.Add(1)
			s.l.log.Warn("redis pubsub subscription change failed; retrying on reconnect", "shard", s.index,
				"subscribe", len(subs), "unsubscribe", len(unsubs), "err", err)
		}
		return
	}
	t := time.NewTimer(pubsubBatchTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-s.reset:
	case <-ctx.Done():
	case <-t.C:
		s.l.log.Warn("redis pubsub did not confirm subscription changes in time", "shard", s.index,
			"subscribe", len(subs), "unsubscribe", len(unsubs))
	}
}

func (s *pubsubShard) clearExpect() {
	s.mu.Lock()
	s.expect = nil
	s.batchDone = nil
	s.mu.Unlock()
}

// confirm records a SUBSCRIBE or UNSUBSCRIBE confirmation from Redis.
func (s *pubsubShard) confirm(kind, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == "subscribe" {
		if e := s.subs[name]; e != nil && e.issued && !e.confirmed {
			e.confirmed = true
			close(e.ready)
		}
	}
	if want, ok := s.expect[name]; ok && want == kind {
		delete(s.expect, name)
		if len(s.expect) == 0 && s.batchDone != nil {
			close(s.batchDone)
			s.batchDone = nil
		}
	}
}

// readLoop reads the subscriber connection: messages are dispatched,
// confirmations recorded, and silence is probed with PING. A connection
// error or a PING without answer marks the shard down; go-redis then
// redials and resubscribes on the next read.
func (s *pubsubShard) readLoop(ctx context.Context) {
	s.status.Store(shardUnknown)
	var pingAt time.Time // zero when no PING is outstanding
	lastRead := time.Now()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if pingAt.IsZero() && (s.status.Load() != shardUp || time.Since(lastRead) >= s.idlePing) {
			if err := s.sub.Ping(ctx, pubsubPingPayload); err != nil {
				s.markDown(ctx, err)
				backoff = s.sleep(ctx, backoff)
				continue
			}
			pingAt = time.Now()
		}
		var msg any
		var err error
		if pingAt.IsZero() {
			msg, err = s.sub.ReceiveTimeout(ctx, pubsubReadTimeout)
		} else {
			// Without a timeout argument go-redis treats the deadline as
			// a broken connection and redials.
			rctx, cancel := context.WithDeadline(ctx, pingAt.Add(s.pongTimeout))
			msg, err = s.sub.ReceiveTimeout(rctx, 0)
			cancel()
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if pingAt.IsZero() && isTimeout(err) {
				continue
			}
			pingAt = time.Time{}
			s.markDown(ctx, err)
			backoff = s.sleep(ctx, backoff)
			continue
		}
		backoff = 0
		pingAt = time.Time{}
		lastRead = time.Now()
		s.markUp()
		s.handle(msg)
	}
}

// handle processes one item read from the subscriber connection.
func (s *pubsubShard) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Message:
		s.received.Add(1)
		s.l.dispatch(m.Channel, []byte(m.Payload))
	case *redis.Subscription:
		s.confirm(m.Kind, m.Channel)
	case *redis.Pong:
	default:
		s.l.log.Debug("ignoring unexpected pubsub reply", "type", fmt.Sprintf("%T", msg))
	}
}

func (s *pubsubShard) markUp() {
	if s.status.Swap(shardUp) == shardDown {
		s.l.log.Info("redis pubsub connection restored; subscriptions renewed", "shard", s.index)
	}
	s.lastErr.Store(nil)
}

func (s *pubsubShard) markDown(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.l.stats.backendErrors.Add(1)
	s.backendErrors.Add(1)
	s.lastErr.Store(&err)
	if s.status.Swap(shardDown) != shardDown {
		s.l.log.Warn("redis pubsub connection lost; messages published meanwhile are lost", "shard", s.index, "err", err)
	}
	select {
	case s.reset <- struct{}{}:
	default:
	}
}

// sleep waits out the next backoff step and returns it.
func (s *pubsubShard) sleep(ctx context.Context, prev time.Duration) time.Duration {
	d := min(max(2*prev, backoffMin), backoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return d
}

// isTimeout reports whether err is a read timeout, which on a quiet
// connection is no failure.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Receive loop timing. BZPOPMIN's timeout bounds how long Run takes to
// notice cancellation; 1 s is the smallest whole-second timeout.
const (
	receiveTimeout = time.Second
	backoffMin     = 100 * time.Millisecond
	backoffMax     = 5 * time.Second
	refreshChunk   = 500 // memberships per pipeline when re-adding groups
	maxPooledBuf   = 64 << 10
)

// RedisLayer is the channels_redis core layer (RedisChannelLayer) on one
// Redis host. This process is one channels "process": its channels are
// specific.<client id>!<n> and share the process key
// <prefix>specific.<client id>!, which Run drains.
type RedisLayer struct {
	cfg        Config
	handler    Handler
	log        *slog.Logger
	rdb        redisClient
	codec      *Codec
	caps       *capacities
	names      channelNamer
	processKey string
	now        func() time.Time

	seq        atomic.Uint64
	stats      counters
	members    memberships
	groupMu    sync.RWMutex // orders refresh re-adds against GroupDiscard
	sendScript *redis.Script
	fanScript  *redis.Script
	bufs       sync.Pool // *[]byte

	running   atomic.Bool
	loopErr   atomic.Pointer[error]
	runID     atomic.Pointer[string]
	restoreCh chan struct{}
}

var _ Layer = (*RedisLayer)(nil)

// NewRedisLayer connects lazily to cfg.Hosts[0] and returns the layer.
// Messages for its channels reach h once Run is running.
func NewRedisLayer(cfg Config, h Handler, log *slog.Logger) (*RedisLayer, error) {
	cfg.Backend = BackendRedis
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	opts, err := redis.ParseURL(cfg.Hosts[0])
	if err != nil {
		return nil, fmt.Errorf("bridge config: hosts[0]: %w", err)
	}
	l, err := newRedisLayer(cfg, h, log, nil)
	if err != nil {
		return nil, err
	}
	opts.OnConnect = l.onConnect
	l.rdb = redis.NewClient(opts)
	return l, nil
}

// newRedisLayer builds the layer around rdb (which may be set later).
func newRedisLayer(cfg Config, h Handler, log *slog.Logger, rdb redisClient) (*RedisLayer, error) {
	if h == nil {
		return nil, errors.New("bridge: handler is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	codec, err := NewCodec(CodecOptions{
		SymmetricEncryptionKeys: cfg.SymmetricEncryptionKeys,
		Expiry:                  time.Duration(cfg.Expiry) * time.Second,
		RandomPrefixLength:      cfg.RandomPrefixLength,
	})
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	caps, err := newCapacities(cfg.Capacity, cfg.ChannelCapacity)
	if err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	names := newChannelNamer()
	l := &RedisLayer{
		cfg:        cfg,
		handler:    h,
		log:        log.With("component", "bridge", "backend", BackendRedis),
		rdb:        rdb,
		codec:      codec,
		caps:       caps,
		names:      names,
		processKey: cfg.Prefix + names.processName,
		now:        time.Now,
		sendScript: redis.NewScript(sendScriptSrc),
		fanScript:  redis.NewScript(groupSendScriptSrc),
		restoreCh:  make(chan struct{}, 1),
	}
	return l, nil
}

// ProcessName returns the non-local part shared by this layer's channels,
// "specific.<client id>!".
func (l *RedisLayer) ProcessName() string { return l.names.processName }

// NewChannel returns a new process-local channel name.
func (l *RedisLayer) NewChannel() string {
	return l.names.name(l.seq.Add(1))
}

// Send writes msg to a channel as channels_redis send() does: ErrChannelFull
// (wrapped) when the channel key is at capacity.
func (l *RedisLayer) Send(ctx context.Context, channel string, msg Message) error {
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	target := ""
	if strings.IndexByte(channel, '!') >= 0 {
		target = channel
	}
	buf := l.getBuf()
	defer l.putBuf(buf)
	member, err := l.codec.AppendMember((*buf)[:0], msg, target)
	*buf = member
	if err != nil {
		return fmt.Errorf("send to %q: %w", channel, err)
	}
	now := l.now()
	written, err := l.sendScript.Run(ctx, l.rdb, []string{l.cfg.Prefix + nonLocalName(channel)},
		l.trimBefore(now, l.cfg.Expiry), l.caps.forChannel(channel), score(now), member, l.cfg.Expiry).Int()
	if err != nil {
		return fmt.Errorf("send to %q: redis: %w", channel, err)
	}
	if written == 0 {
		l.stats.overCapacity.Add(1)
		return fmt.Errorf("send to %q: %w", channel, ErrChannelFull)
	}
	l.stats.sent.Add(1)
	return nil
}

// GroupAdd adds channel to group in Redis. Local channels are remembered
// and re-added every group_refresh seconds and after Redis restarts.
func (l *RedisLayer) GroupAdd(ctx context.Context, group, channel string) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_add: %w", err)
	}
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("group_add: %w", err)
	}
	l.groupMu.RLock()
	defer l.groupMu.RUnlock()
	key := l.groupKey(group)
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: score(l.now()), Member: channel})
		p.Expire(ctx, key, time.Duration(l.cfg.GroupExpiry)*time.Second)
		return nil
	})
	if err != nil {
		return fmt.Errorf("group_add %q: redis: %w", group, err)
	}
	if l.names.isLocal(channel) {
		l.members.add(group, channel)
	}
	return nil
}

// GroupDiscard removes channel from group. Call it for every local channel
// when its socket closes, or the membership lingers until group_expiry.
func (l *RedisLayer) GroupDiscard(ctx context.Context, group, channel string) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_discard: %w", err)
	}
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("group_discard: %w", err)
	}
	l.groupMu.RLock()
	defer l.groupMu.RUnlock()
	l.members.remove(group, channel)
	if err := l.rdb.ZRem(ctx, l.groupKey(group), channel).Err(); err != nil {
		return fmt.Errorf("group_discard %q: redis: %w", group, err)
	}
	return nil
}

// GroupSend sends msg to every member of group, one stored message per
// channel key, as channels_redis group_send() does. Full keys are skipped
// without an error and counted in Stats.OverCapacity.
func (l *RedisLayer) GroupSend(ctx context.Context, group string, msg Message) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_send: %w", err)
	}
	if msg == nil {
		return errors.New("group_send: message is nil")
	}
	now := l.now()
	key := l.groupKey(group)
	var rng *redis.StringSliceCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, key, "0", strconv.FormatInt(l.trimBefore(now, l.cfg.GroupExpiry), 10))
		rng = p.ZRange(ctx, key, 0, -1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("group_send %q: redis: %w", group, err)
	}
	keys, lists := l.bucket(rng.Val())
	if len(keys) == 0 {
		return nil
	}
	enc, err := l.codec.newGroupEncoder(msg)
	if err != nil {
		return fmt.Errorf("group_send %q: %w", group, err)
	}
	defer enc.release()
	args := make([]any, 0, 2*len(keys)+3)
	bufs := make([]*[]byte, 0, len(keys))
	defer func() {
		for _, b := range bufs {
			l.putBuf(b)
		}
	}()
	for _, chans := range lists {
		buf := l.getBuf()
		bufs = append(bufs, buf)
		*buf, err = enc.appendFor((*buf)[:0], chans)
		if err != nil {
			return fmt.Errorf("group_send %q: %w", group, err)
		}
		args = append(args, *buf)
	}
	for _, chans := range lists {
		args = append(args, l.caps.forChannel(chans[0]))
	}
	args = append(args, score(now), l.cfg.Expiry, l.trimBefore(now, l.cfg.Expiry))
	over, err := l.fanScript.Run(ctx, l.rdb, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("group_send %q: redis: %w", group, err)
	}
	l.stats.groupSent.Add(uint64(len(keys) - over))
	if over > 0 {
		l.stats.overCapacity.Add(uint64(over))
		l.log.Info("channels over capacity in group", "over", over, "keys", len(keys), "group", group)
	}
	return nil
}

// bucket groups member channel names by Redis key, in order of first
// appearance, as channels_redis does.
func (l *RedisLayer) bucket(members []string) (keys []string, lists [][]string) {
	index := make(map[string]int, len(members))
	for _, ch := range members {
		if !utf8.ValidString(ch) {
			// Python could not decode such a member either; skip it.
			l.log.Warn("skipping group member that is not valid UTF-8", "length", len(ch))
			continue
		}
		key := l.cfg.Prefix + nonLocalName(ch)
		i, ok := index[key]
		if !ok {
			i = len(keys)
			index[key] = i
			keys = append(keys, key)
			lists = append(lists, nil)
		}
		lists[i] = append(lists[i], ch)
	}
	return keys, lists
}

// Run drains the process key and calls the Handler for each local channel
// a message names, until ctx is cancelled; then it returns nil. Redis
// errors are retried with backoff and reported by Ready meanwhile. Run
// also re-adds memberships every group_refresh and after a reconnect.
func (l *RedisLayer) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("bridge: Run is already running")
	}
	defer l.running.Store(false)
	var wg sync.WaitGroup
	wg.Go(func() { l.maintain(ctx) })
	l.receiveLoop(ctx)
	wg.Wait()
	return nil
}

func (l *RedisLayer) receiveLoop(ctx context.Context) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		err := l.receiveOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.stats.backendErrors.Add(1)
			if l.loopErr.Swap(&err) == nil {
				l.log.Warn("redis receive failed; retrying", "err", err)
			}
			backoff = min(max(2*backoff, backoffMin), backoffMax)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if l.loopErr.Swap(nil) != nil {
			l.log.Info("redis receive recovered; restoring group memberships")
			l.requestRestore()
		}
	}
}

// receiveOnce blocks up to receiveTimeout for one message, then drains up
// to receive_batch more per round trip while the key keeps yielding full
// batches.
func (l *RedisLayer) receiveOnce(ctx context.Context) error {
	res, err := l.rdb.BZPopMin(ctx, receiveTimeout, l.processKey).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	l.handleMember(res.Member)
	batch := l.cfg.ReceiveBatch
	for ctx.Err() == nil {
		zs, err := l.rdb.ZPopMin(ctx, l.processKey, int64(batch)).Result()
		if err != nil {
			return err
		}
		for _, z := range zs {
			l.handleMember(z.Member)
		}
		if len(zs) < batch {
			return nil
		}
	}
	return nil
}

// handleMember decodes one popped member and delivers it. Nothing in it
// can stop the loop: bad members are logged and counted.
func (l *RedisLayer) handleMember(member any) {
	l.stats.received.Add(1)
	s, ok := member.(string)
	if !ok {
		l.stats.decodeErrors.Add(1)
		l.log.Warn("dropping message of unexpected type", "type", fmt.Sprintf("%T", member))
		return
	}
	msg, chans, err := l.codec.DecodeMember([]byte(s))
	if err != nil {
		l.stats.decodeErrors.Add(1)
		// The error says what is wrong; the payload is never logged.
		l.log.Warn("dropping message that cannot be decoded", "key", l.processKey, "bytes", len(s), "err", err)
		return
	}
	if len(chans) == 0 {
		l.stats.droppedUnknown.Add(1)
		l.log.Debug("dropping message without __asgi_channel__")
		return
	}
	for _, ch := range chans {
		if !l.names.isLocal(ch) {
			l.stats.droppedUnknown.Add(1)
			l.log.Debug("dropping message for a channel of another process", "channel", ch)
			continue
		}
		l.deliver(ch, msg)
	}
}

// deliver calls the Handler, keeping a panic in it from ending the loop.
func (l *RedisLayer) deliver(ch string, msg Message) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("handler panicked", "channel", ch, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	l.stats.delivered.Add(1)
	l.handler(ch, msg)
}

// maintain re-adds memberships every group_refresh and on restore requests.
func (l *RedisLayer) maintain(ctx context.Context) {
	t := time.NewTicker(time.Duration(l.cfg.GroupRefresh) * time.Second)
	defer t.Stop()
	for {
		reason := ""
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reason = "refresh"
		case <-l.restoreCh:
			reason = "restore"
		}
		if err := l.RestoreGroups(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("re-adding group memberships failed", "reason", reason, "err", err)
		}
	}
}

// requestRestore asks the maintenance goroutine to re-add memberships.
func (l *RedisLayer) requestRestore() {
	select {
	case l.restoreCh <- struct{}{}:
	default:
	}
}

// RestoreGroups re-adds every local membership now, with a fresh score and
// TTL. Run calls it periodically and after Redis comes back; it is exported
// for callers that know better (e.g. after a failover).
func (l *RedisLayer) RestoreGroups(ctx context.Context) error {
	all := l.members.snapshot()
	for start := 0; start < len(all); start += refreshChunk {
		if err := l.restoreChunk(ctx, all[start:min(start+refreshChunk, len(all))]); err != nil {
			return err
		}
	}
	l.stats.groupRefreshes.Add(1)
	return nil
}

func (l *RedisLayer) restoreChunk(ctx context.Context, chunk []membership) error {
	// The write lock keeps a concurrent GroupDiscard from being undone.
	l.groupMu.Lock()
	defer l.groupMu.Unlock()
	sc := score(l.now())
	expiry := time.Duration(l.cfg.GroupExpiry) * time.Second
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range chunk {
			if !l.members.has(m.group, m.channel) {
				continue
			}
			key := l.groupKey(m.group)
			p.ZAdd(ctx, key, redis.Z{Score: sc, Member: m.channel})
			p.Expire(ctx, key, expiry)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("re-add memberships: %w", err)
	}
	return nil
}

// onConnect runs on every new Redis connection. A changed server run_id
// means Redis restarted or failed over and lost our memberships.
func (l *RedisLayer) onConnect(ctx context.Context, cn *redis.Conn) error {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		// INFO may be forbidden by ACLs; the loop's error path still restores.
		return nil
	}
	l.noteRunID(parseRunID(info))
	return nil
}

func (l *RedisLayer) noteRunID(id string) {
	if id == "" {
		return
	}
	old := l.runID.Swap(&id)
	if old != nil && *old != id {
		l.log.Info("redis server changed (restart or failover); restoring group memberships")
		l.requestRestore()
	}
}

// Ready returns nil when Redis answers and the receive loop is healthy.
func (l *RedisLayer) Ready(ctx context.Context) error {
	if p := l.loopErr.Load(); p != nil {
		return fmt.Errorf("redis receive loop: %w", *p)
	}
	if err := l.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the layer's counters.
func (l *RedisLayer) Stats() Stats { return l.stats.snapshot() }

// Close closes the Redis connections. Run must have returned.
func (l *RedisLayer) Close() error {
	if err := l.rdb.Close(); err != nil {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

func (l *RedisLayer) groupKey(group string) string {
	return l.cfg.Prefix + ":group:" + group
}

// trimBefore is the cleanup bound int(now) - expiry that channels_redis
// passes to ZREMRANGEBYSCORE.
func (l *RedisLayer) trimBefore(now time.Time, expiry int) int64 {
	return now.Unix() - int64(expiry)
}

// score is the sorted-set score channels_redis uses: Unix seconds as a
// float.
func score(now time.Time) float64 {
	return float64(now.UnixMicro()) / 1e6
}

func (l *RedisLayer) getBuf() *[]byte {
	if b, ok := l.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 512)
	return &b
}

func (l *RedisLayer) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		l.bufs.Put(b)
	}
}

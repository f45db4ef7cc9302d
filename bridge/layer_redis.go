package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxPooledBuf is the largest member buffer kept for reuse.
const maxPooledBuf = 64 << 10

// RedisLayer is the channels_redis core layer (RedisChannelLayer) on a
// ring of one or more Redis hosts, sharded as channels_redis shards them.
// This process is one channels "process": its channels are
// specific.<client id>!<n> and share the process key
// <prefix>specific.<client id>!, which Run drains on every host.
type RedisLayer struct {
	cfg        Config
	handler    Handler
	log        *slog.Logger
	observer   Observer
	shards     []*redisShard
	codec      *Codec
	caps       *capacities
	names      channelNamer
	processKey string
	now        func() time.Time

	seq        atomic.Uint64
	sendRR     atomic.Uint64 // round robin over hosts for plain channel names
	stats      counters
	members    memberships
	groupMu    sync.RWMutex // orders refresh re-adds against GroupDiscard
	sendScript *redis.Script
	fanScript  *redis.Script
	bufs       sync.Pool // *[]byte

	running atomic.Bool
}

var (
	_ Layer       = (*RedisLayer)(nil)
	_ StatsSource = (*RedisLayer)(nil)
)

// NewRedisLayer returns the layer for cfg.Hosts; connections are made when
// needed. Messages for its channels reach h once Run is running.
func NewRedisLayer(cfg Config, h Handler, log *slog.Logger) (*RedisLayer, error) {
	cfg.Backend = BackendRedis
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	specs := make([]HostSpec, len(cfg.Hosts))
	for i, host := range cfg.Hosts {
		spec, err := ParseHost(host)
		if err != nil {
			return nil, fmt.Errorf("bridge config: hosts[%d]: %w", i, err)
		}
		specs[i] = spec
	}
	names := make([]string, len(specs))
	for i, spec := range specs {
		names[i] = spec.Name
	}
	l, err := newRedisLayer(cfg, h, log, names)
	if err != nil {
		return nil, err
	}
	for i, spec := range specs {
		s := l.shards[i]
		s.rdb = spec.NewClient(func(ctx context.Context, cn *redis.Conn) error {
			return l.onConnect(ctx, s, cn)
		})
	}
	return l, nil
}

// newRedisLayer builds the layer with one shard per host name; the
// shards' clients are set by the caller.
func newRedisLayer(cfg Config, h Handler, log *slog.Logger, hostNames []string) (*RedisLayer, error) {
	if h == nil {
		return nil, errors.New("bridge: handler is nil")
	}
	if len(hostNames) == 0 {
		return nil, errors.New("bridge: the redis layer needs at least one host")
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
		observer:   cfg.Observer,
		codec:      codec,
		caps:       caps,
		names:      names,
		processKey: cfg.Prefix + names.processName,
		now:        time.Now,
		sendScript: redis.NewScript(sendScriptSrc),
		fanScript:  redis.NewScript(groupSendScriptSrc),
	}
	for i, name := range hostNames {
		l.shards = append(l.shards, newRedisShard(i, name))
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

// shardOf returns the host of a group, or of a channel key's non-local
// name.
func (l *RedisLayer) shardOf(name string) *redisShard {
	return l.shards[consistentHash(name, len(l.shards))]
}

// sendShard picks the host for Send. A process-local name goes where its
// receiver listens and where group_send puts it: the hash of its
// non-local part. (channels_redis hashes the full name there, a known bug
// that loses messages; this layer's receive loops cover it by listening
// on every host.) A plain name takes the next host in turn, as
// channels_redis does.
func (l *RedisLayer) sendShard(channel string) *redisShard {
	if len(l.shards) == 1 {
		return l.shards[0]
	}
	if strings.IndexByte(channel, '!') >= 0 {
		return l.shardOf(nonLocalName(channel))
	}
	return l.shards[(l.sendRR.Add(1)-1)%uint64(len(l.shards))]
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
	s := l.sendShard(channel)
	written, err := l.sendScript.Run(ctx, s.rdb, []string{l.cfg.Prefix + nonLocalName(channel)},
		l.trimBefore(now, l.cfg.Expiry), l.caps.forChannel(channel), score(now), member, l.cfg.Expiry).Int()
	if err != nil {
		return fmt.Errorf("send to %q: redis %s: %w", channel, s.name, err)
	}
	if written == 0 {
		l.stats.overCapacity.Add(1)
		return fmt.Errorf("send to %q: %w", channel, ErrChannelFull)
	}
	l.stats.sent.Add(1)
	return nil
}

// GroupAdd adds channel to group on the group's host. Local channels are
// remembered and re-added every group_refresh seconds and after that host
// restarts.
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
	s := l.shardOf(group)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: score(l.now()), Member: channel})
		p.Expire(ctx, key, time.Duration(l.cfg.GroupExpiry)*time.Second)
		return nil
	})
	if err != nil {
		return fmt.Errorf("group_add %q: redis %s: %w", group, s.name, err)
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
	s := l.shardOf(group)
	if err := s.rdb.ZRem(ctx, l.groupKey(group), channel).Err(); err != nil {
		return fmt.Errorf("group_discard %q: redis %s: %w", group, s.name, err)
	}
	return nil
}

// GroupSend sends msg to every member of group, one stored message per
// channel key, as channels_redis group_send() does: the members are read
// on the group's host, and each key is written on the host of its
// non-local name, one script call per host. Full keys are skipped without
// an error and counted in Stats.OverCapacity.
func (l *RedisLayer) GroupSend(ctx context.Context, group string, msg Message) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_send: %w", err)
	}
	if msg == nil {
		return errors.New("group_send: message is nil")
	}
	now := l.now()
	key := l.groupKey(group)
	gs := l.shardOf(group)
	var rng *redis.StringSliceCmd
	_, err := gs.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, key, "0", strconv.FormatInt(l.trimBefore(now, l.cfg.GroupExpiry), 10))
		rng = p.ZRange(ctx, key, 0, -1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("group_send %q: redis %s: %w", group, gs.name, err)
	}
	plan, skipped := planFanout(l.cfg.Prefix, rng.Val(), len(l.shards))
	if skipped > 0 {
		// Python could not decode such members either.
		l.log.Warn("skipping group members that are not valid UTF-8", "group", group, "count", skipped)
	}
	if len(plan.keys) == 0 {
		return nil
	}
	enc, err := l.codec.newGroupEncoder(msg)
	if err != nil {
		return fmt.Errorf("group_send %q: %w", group, err)
	}
	defer enc.release()
	members := make([][]byte, len(plan.keys))
	bufs := make([]*[]byte, 0, len(plan.keys))
	defer func() {
		for _, b := range bufs {
			l.putBuf(b)
		}
	}()
	for i, chans := range plan.channels {
		buf := l.getBuf()
		bufs = append(bufs, buf)
		*buf, err = enc.appendFor((*buf)[:0], chans)
		if err != nil {
			return fmt.Errorf("group_send %q: %w", group, err)
		}
		members[i] = *buf
	}
	f := fanWrite{plan: &plan, members: members, score: score(now), trim: l.trimBefore(now, l.cfg.Expiry)}
	var hosts []int
	for h, idx := range plan.byHost {
		if len(idx) > 0 {
			hosts = append(hosts, h)
		}
	}
	over := make([]int, len(l.shards))
	errs := make([]error, len(l.shards))
	if len(hosts) == 1 {
		over[hosts[0]], errs[hosts[0]] = l.fanOutHost(ctx, l.shards[hosts[0]], &f)
	} else {
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Go(func() { over[h], errs[h] = l.fanOutHost(ctx, l.shards[h], &f) })
		}
		wg.Wait()
	}
	written, skippedFull := 0, 0
	for _, h := range hosts {
		if errs[h] == nil {
			written += len(plan.byHost[h]) - over[h]
			skippedFull += over[h]
		}
	}
	l.stats.groupSent.Add(uint64(written))
	if skippedFull > 0 {
		l.stats.overCapacity.Add(uint64(skippedFull))
		l.log.Info("channels over capacity in group", "over", skippedFull, "keys", len(plan.keys), "group", group)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("group_send %q: %w", group, err)
	}
	return nil
}

// fanWrite is the data of one group_send shared by the per-host writes.
type fanWrite struct {
	plan    *fanout
	members [][]byte
	score   float64
	trim    int64
}

// fanOutHost writes the keys of one host in one script call and returns
// how many were full.
func (l *RedisLayer) fanOutHost(ctx context.Context, s *redisShard, f *fanWrite) (int, error) {
	idx := f.plan.byHost[s.index]
	keys := make([]string, 0, len(idx))
	args := make([]any, 0, 2*len(idx)+3)
	for _, i := range idx {
		keys = append(keys, f.plan.keys[i])
		args = append(args, f.members[i])
	}
	for _, i := range idx {
		args = append(args, l.caps.forChannel(f.plan.channels[i][0]))
	}
	args = append(args, f.score, l.cfg.Expiry, f.trim)
	over, err := l.fanScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("redis %s: %w", s.name, err)
	}
	return over, nil
}

// Ready returns nil when every host answers and its receive loop is
// healthy; otherwise the error names each host that is down.
func (l *RedisLayer) Ready(ctx context.Context) error {
	errs := make([]error, len(l.shards))
	var wg sync.WaitGroup
	for i, s := range l.shards {
		wg.Go(func() {
			if p := s.loopErr.Load(); p != nil {
				errs[i] = fmt.Errorf("redis host %d (%s): receive loop: %w", i, s.name, *p)
				return
			}
			if err := s.rdb.Ping(ctx).Err(); err != nil {
				errs[i] = fmt.Errorf("redis host %d (%s): ping: %w", i, s.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Stats returns a snapshot of the layer's counters, with per-host figures
// in ring order. It resets Stats.LagMax.
func (l *RedisLayer) Stats() Stats {
	st := l.stats.snapshot()
	st.Hosts = make([]HostStats, len(l.shards))
	for i, s := range l.shards {
		st.Hosts[i] = s.stats()
	}
	return st
}

// Close closes the Redis connections. Run must have returned.
func (l *RedisLayer) Close() error {
	var errs []error
	for _, s := range l.shards {
		if err := s.rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close redis %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
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

package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryLayer is a channel layer inside one process, with the semantics of
// the Redis layer: groups, per-channel capacity (ErrChannelFull on Send,
// skipped on GroupSend), expiry, and delivery from Run's goroutine. Only
// channels made by NewChannel receive; messages for other names are
// dropped and counted, since nothing else can read them. Memberships do
// not expire: the Redis layer refreshes them, which has the same effect.
type MemoryLayer struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	codec   *Codec
	caps    *capacities
	names   channelNamer
	now     func() time.Time
	seq     atomic.Uint64
	stats   counters
	running atomic.Bool
	notify  chan struct{}

	mu      sync.Mutex
	pending map[string]int // queued messages per channel
	queue   []memoryEntry  // FIFO over all channels; bounded by the per-channel capacities
	groups  map[string]map[string]struct{}
}

type memoryEntry struct {
	channel string
	msg     Message
	at      time.Time
}

var _ Layer = (*MemoryLayer)(nil)

// NewMemoryLayer returns an in-process layer delivering to h.
func NewMemoryLayer(cfg Config, h Handler, log *slog.Logger) (*MemoryLayer, error) {
	cfg.Backend = BackendMemory
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	if h == nil {
		return nil, errors.New("bridge: handler is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Messages go through msgpack so that they are copied and typed exactly
	// as the Redis layer would deliver them; no encryption is needed.
	codec, err := NewCodec(CodecOptions{RandomPrefixLength: 1})
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	caps, err := newCapacities(cfg.Capacity, cfg.ChannelCapacity)
	if err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	return &MemoryLayer{
		cfg:     cfg,
		handler: h,
		log:     log.With("component", "bridge", "backend", BackendMemory),
		codec:   codec,
		caps:    caps,
		names:   newChannelNamer(),
		now:     time.Now,
		notify:  make(chan struct{}, 1),
		pending: make(map[string]int),
		groups:  make(map[string]map[string]struct{}),
	}, nil
}

// NewChannel returns a new local channel name.
func (l *MemoryLayer) NewChannel() string {
	return l.names.name(l.seq.Add(1))
}

// normalize copies msg through the codec, giving the receiver the same
// value types as the Redis layer and catching unsupported values.
func (l *MemoryLayer) normalize(msg Message) (Message, error) {
	member, err := l.codec.AppendMember(nil, msg, "")
	if err != nil {
		return nil, err
	}
	out, _, err := l.codec.DecodeMember(member)
	return out, err
}

// Send queues msg for a local channel; ErrChannelFull (wrapped) when the
// channel already holds its capacity.
func (l *MemoryLayer) Send(ctx context.Context, channel string, msg Message) error {
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	copied, err := l.normalize(msg)
	if err != nil {
		return fmt.Errorf("send to %q: %w", channel, err)
	}
	if !l.names.isLocal(channel) {
		l.stats.droppedUnknown.Add(1)
		return nil
	}
	l.mu.Lock()
	ok := l.enqueueLocked(channel, copied, l.now())
	l.mu.Unlock()
	if !ok {
		l.stats.overCapacity.Add(1)
		return fmt.Errorf("send to %q: %w", channel, ErrChannelFull)
	}
	l.stats.sent.Add(1)
	l.wake()
	return nil
}

// enqueueLocked appends one entry unless the channel is full.
func (l *MemoryLayer) enqueueLocked(channel string, msg Message, at time.Time) bool {
	if l.pending[channel] >= l.caps.forChannel(channel) {
		return false
	}
	l.pending[channel]++
	l.queue = append(l.queue, memoryEntry{channel: channel, msg: msg, at: at})
	return true
}

func (l *MemoryLayer) wake() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// GroupAdd adds channel to group.
func (l *MemoryLayer) GroupAdd(ctx context.Context, group, channel string) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_add: %w", err)
	}
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("group_add: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	chans := l.groups[group]
	if chans == nil {
		chans = make(map[string]struct{})
		l.groups[group] = chans
	}
	chans[channel] = struct{}{}
	return nil
}

// GroupDiscard removes channel from group.
func (l *MemoryLayer) GroupDiscard(ctx context.Context, group, channel string) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_discard: %w", err)
	}
	if err := validateChannelName(channel); err != nil {
		return fmt.Errorf("group_discard: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if chans := l.groups[group]; chans != nil {
		delete(chans, channel)
		if len(chans) == 0 {
			delete(l.groups, group)
		}
	}
	return nil
}

// GroupSend queues msg for every member of group; full channels are
// skipped and counted in Stats.OverCapacity.
func (l *MemoryLayer) GroupSend(ctx context.Context, group string, msg Message) error {
	if err := validateGroupName(group); err != nil {
		return fmt.Errorf("group_send: %w", err)
	}
	copied, err := l.normalize(msg)
	if err != nil {
		return fmt.Errorf("group_send %q: %w", group, err)
	}
	now := l.now()
	var sent, over, unknown uint64
	l.mu.Lock()
	for ch := range l.groups[group] {
		switch {
		case !l.names.isLocal(ch):
			unknown++
		case l.enqueueLocked(ch, copied, now):
			sent++
		default:
			over++
		}
	}
	l.mu.Unlock()
	l.stats.groupSent.Add(sent)
	l.stats.overCapacity.Add(over)
	l.stats.droppedUnknown.Add(unknown)
	if sent > 0 {
		l.wake()
	}
	return nil
}

// Run delivers queued messages to the Handler until ctx is cancelled, then
// returns nil. Messages that waited longer than expiry are dropped.
func (l *MemoryLayer) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("bridge: Run is already running")
	}
	defer l.running.Store(false)
	var batch []memoryEntry
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.notify:
		}
		l.mu.Lock()
		batch, l.queue = l.queue, batch[:0]
		for _, e := range batch {
			if l.pending[e.channel]--; l.pending[e.channel] <= 0 {
				delete(l.pending, e.channel)
			}
		}
		l.mu.Unlock()
		expiry := time.Duration(l.cfg.Expiry) * time.Second
		now := l.now()
		for i := range batch {
			e := &batch[i]
			l.stats.received.Add(1)
			lag := max(now.Sub(e.at).Seconds(), 0)
			l.stats.observeLag(lag)
			if l.cfg.Observer != nil {
				l.cfg.Observer.ObserveLag(lag)
			}
			if now.Sub(e.at) > expiry {
				l.stats.droppedExpired.Add(1)
			} else {
				l.deliver(e.channel, e.msg)
			}
			*e = memoryEntry{} // release the message for the GC
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// deliver calls the Handler, keeping a panic in it from ending Run.
func (l *MemoryLayer) deliver(ch string, msg Message) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("handler panicked", "channel", ch, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	l.stats.delivered.Add(1)
	l.handler(ch, msg)
}

// Ready always succeeds: there is no backend to lose.
func (l *MemoryLayer) Ready(ctx context.Context) error { return nil }

// Stats returns a snapshot of the layer's counters.
func (l *MemoryLayer) Stats() Stats { return l.stats.snapshot() }

// Close does nothing; it exists to satisfy Layer.
func (l *MemoryLayer) Close() error { return nil }

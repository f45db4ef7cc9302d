package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client is the part of a go-redis client that presence uses; a
// *redis.Client (see bridge.HostSpec.NewClient) is one.
type Client interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
	HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd
}

// Tracker is what a route needs from presence: announce a connection,
// withdraw it, and list who is online.
type Tracker interface {
	// Join records a connection of userID in group. firstForUser reports
	// that it is the user's only live connection in group, across every
	// process: announce the user as online.
	Join(ctx context.Context, group, userID, connID string, info map[string]any) (firstForUser bool, err error)
	// Leave withdraws a connection. lastForUser reports that it was the
	// user's last live connection in group: announce the user as offline.
	Leave(ctx context.Context, group, userID, connID string) (lastForUser bool, err error)
	// Online lists the users online in group.
	Online(ctx context.Context, group string) ([]Member, error)
}

// Member is one user online in a group.
type Member struct {
	UserID string
	// Info is the object given by the user's most recent Join in the
	// group (for instance username), as decoded from JSON.
	Info map[string]any
}

// Left is a user whose last connection in Group expired (Sweep) or was
// withdrawn (Drain).
type Left struct {
	Group  string
	UserID string
	// Info is the user's last info in the group, for the offline event.
	Info map[string]any
}

// Joined is a user whose connection Heartbeat had to add back to Redis
// and who had no other live connection in Group: after a Redis restart,
// or after Sweep removed this process's connections while it stalled, so
// that an offline event may already have gone out.
type Joined struct {
	Group  string
	UserID string
	Info   map[string]any
}

const (
	// heartbeatChunk is how many connections one refresh script handles;
	// it keeps each script short and within Lua's unpack limit.
	heartbeatChunk = 1000
	// sweepBatch is how many expired connections one sweep script removes.
	sweepBatch = 1000
	// keepTTLs is how many TTLs the keys live after their last write.
	keepTTLs = 3
)

// Presence is a Tracker in Redis, shared by every process that uses the
// same Redis and prefix. It remembers this process's connections so that
// Heartbeat can refresh them, and add them back after Redis lost them.
type Presence struct {
	client   Client
	prefix   string
	conns    string // the conns key
	ttl      time.Duration
	interval time.Duration
	maxInfo  int
	instance string
	log      *slog.Logger
	owned    *redis.Client // closed by Close when Open made it

	// readd is held for reading by Join and Leave, and for writing while
	// Heartbeat adds lost connections back, so that a connection that
	// leaves meanwhile is not added back behind Leave's back.
	readd sync.RWMutex
	mu    sync.Mutex
	local map[string]*localConn // by member
}

// localConn is one connection of this process.
type localConn struct {
	group, userID, member, info string
}

// New returns presence over client. cfg must have passed SetDefaults and
// Validate; its Host is not used. logger may be nil.
func New(client Client, cfg Config, logger *slog.Logger) (*Presence, error) {
	if logger == nil {
		logger = slog.Default()
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("presence instance id: %w", err)
	}
	return &Presence{
		client:   client,
		prefix:   cfg.Prefix,
		conns:    cfg.Prefix + "conns",
		ttl:      cfg.TTL,
		interval: cfg.HeartbeatInterval,
		maxInfo:  cfg.MaxInfoBytes,
		instance: hex.EncodeToString(id[:]),
		log:      logger,
		local:    make(map[string]*localConn),
	}, nil
}

// Join records a connection of userID in group with info (JSON-encodable,
// at most max_info_bytes once encoded), which replaces the user's info in
// the group. Joining the same connection again refreshes it and reports
// false. The connection is remembered even when Redis fails, so that a
// later Heartbeat adds it (reporting the user as Joined then if it is the
// first): call Leave for every Join, whatever Join returned.
func (p *Presence) Join(ctx context.Context, group, userID, connID string, info map[string]any) (bool, error) {
	if err := checkIDs(group, userID, connID); err != nil {
		return false, err
	}
	raw, err := json.Marshal(info)
	if err != nil {
		return false, fmt.Errorf("presence info of user %q: %w", userID, err)
	}
	if len(raw) > p.maxInfo {
		return false, fmt.Errorf("presence info of user %q is %d bytes of JSON, more than max_info_bytes %d", userID, len(raw), p.maxInfo)
	}
	m := encodeMember(group, userID, p.instance+"/"+connID)
	p.readd.RLock()
	defer p.readd.RUnlock()
	p.mu.Lock()
	p.local[m] = &localConn{group: group, userID: userID, member: m, info: string(raw)}
	p.mu.Unlock()
	first, err := joinScript.Run(ctx, p.client, []string{p.conns}, p.joinArgs(m, string(raw))...).Int()
	if err != nil {
		return false, fmt.Errorf("presence join %q: %w", group, err)
	}
	return first == 1, nil
}

// Leave withdraws a connection that Join recorded; an unknown one reports
// false. The connection is forgotten even when Redis fails: it then
// expires, and Sweep reports the user if it was their last.
func (p *Presence) Leave(ctx context.Context, group, userID, connID string) (bool, error) {
	if err := checkIDs(group, userID, connID); err != nil {
		return false, err
	}
	m := encodeMember(group, userID, p.instance+"/"+connID)
	p.readd.RLock()
	defer p.readd.RUnlock()
	p.mu.Lock()
	_, ok := p.local[m]
	delete(p.local, m)
	p.mu.Unlock()
	if !ok {
		return false, nil
	}
	last, err := leaveScript.Run(ctx, p.client, []string{p.conns}, p.prefix, m).Int()
	if err != nil {
		return false, fmt.Errorf("presence leave %q: %w", group, err)
	}
	return last == 1, nil
}

// Online lists the users online in group, sorted by user id, each once
// however many connections they have.
func (p *Presence) Online(ctx context.Context, group string) ([]Member, error) {
	all, err := p.client.HGetAll(ctx, p.prefix+"info:"+group).Result()
	if err != nil {
		return nil, fmt.Errorf("presence online %q: %w", group, err)
	}
	out := make([]Member, 0, len(all))
	for user, raw := range all {
		info, err := decodeInfo(raw)
		if err != nil {
			return nil, fmt.Errorf("presence online %q: info of user %q: %w", group, user, err)
		}
		out = append(out, Member{UserID: user, Info: info})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// Heartbeat pushes back the expiry of every connection of this process in
// one pipeline (one script per 1000 connections). Connections Redis no
// longer has are added back, and the users among them who had no other
// live connection in their group are returned, so that the caller can
// announce them online again.
func (p *Presence) Heartbeat(ctx context.Context) ([]Joined, error) {
	p.mu.Lock()
	snapshot := make([]string, 0, len(p.local))
	for m := range p.local {
		snapshot = append(snapshot, m)
	}
	p.mu.Unlock()
	if len(snapshot) == 0 {
		return nil, nil
	}
	var calls [][]any
	for chunk := range slices.Chunk(snapshot, heartbeatChunk) {
		args := make([]any, 0, len(chunk)+3)
		args = append(args, p.prefix, p.ttl.Milliseconds(), p.keepMillis())
		for _, m := range chunk {
			args = append(args, m)
		}
		calls = append(calls, args)
	}
	cmds, err := p.runScripts(ctx, refreshScript, calls)
	if err != nil {
		return nil, fmt.Errorf("presence heartbeat: %w", err)
	}
	var missing []string
	for i, cmd := range cmds {
		idx, err := cmd.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("presence heartbeat: %w", err)
		}
		base := i * heartbeatChunk
		for _, j := range idx {
			k := base + int(j) - 1
			if j < 1 || j > heartbeatChunk || k >= len(snapshot) {
				return nil, fmt.Errorf("presence heartbeat: script returned position %d for a chunk of %d", j, heartbeatChunk)
			}
			missing = append(missing, snapshot[k])
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return p.addBack(ctx, missing)
}

// addBack joins again the connections a heartbeat found missing, unless
// they left meanwhile.
func (p *Presence) addBack(ctx context.Context, members []string) ([]Joined, error) {
	p.readd.Lock()
	defer p.readd.Unlock()
	var conns []*localConn
	p.mu.Lock()
	for _, m := range members {
		if c, ok := p.local[m]; ok {
			conns = append(conns, c)
		}
	}
	p.mu.Unlock()
	if len(conns) == 0 {
		return nil, nil
	}
	calls := make([][]any, len(conns))
	for i, c := range conns {
		calls[i] = p.joinArgs(c.member, c.info)
	}
	cmds, err := p.runScripts(ctx, joinScript, calls)
	if err != nil {
		return nil, fmt.Errorf("presence heartbeat: adding %d lost connections back: %w", len(conns), err)
	}
	var joined []Joined
	for i, cmd := range cmds {
		if first, _ := cmd.Int(); first == 1 {
			info, err := decodeInfo(conns[i].info)
			if err != nil {
				return nil, err
			}
			joined = append(joined, Joined{Group: conns[i].group, UserID: conns[i].userID, Info: info})
		}
	}
	p.log.Info("presence: added lost connections back to Redis", "connections", len(conns), "users_online_again", len(joined))
	return joined, nil
}

// Sweep removes every expired connection, whichever process made it, and
// returns the users whose last connection in a group went. Any number of
// processes may sweep at once: each expired connection is removed, and
// reported, by exactly one of them.
func (p *Presence) Sweep(ctx context.Context) ([]Left, error) {
	var left []Left
	for {
		vals, err := sweepScript.Run(ctx, p.client, []string{p.conns}, p.prefix, sweepBatch).Slice()
		if err != nil {
			return left, fmt.Errorf("presence sweep: %w", err)
		}
		if len(vals) == 0 || (len(vals)-1)%3 != 0 {
			return left, fmt.Errorf("presence sweep: %d values returned", len(vals))
		}
		removed, _ := vals[0].(int64)
		for i := 1; i+2 < len(vals); i += 3 {
			g, _ := vals[i].(string)
			u, _ := vals[i+1].(string)
			raw, _ := vals[i+2].(string)
			info, err := decodeInfo(raw)
			if err != nil {
				p.log.Warn("presence: unreadable info of a swept user", "group", g, "user", u, "err", err)
			}
			left = append(left, Left{Group: g, UserID: u, Info: info})
		}
		if removed < sweepBatch {
			return left, nil
		}
	}
}

// Drain withdraws every connection of this process, as on shutdown, in
// one pipeline, and returns the users whose last connection in a group
// went.
func (p *Presence) Drain(ctx context.Context) ([]Left, error) {
	p.readd.Lock()
	defer p.readd.Unlock()
	p.mu.Lock()
	conns := make([]*localConn, 0, len(p.local))
	for _, c := range p.local {
		conns = append(conns, c)
	}
	clear(p.local)
	p.mu.Unlock()
	if len(conns) == 0 {
		return nil, nil
	}
	calls := make([][]any, len(conns))
	for i, c := range conns {
		calls[i] = []any{p.prefix, c.member}
	}
	cmds, err := p.runScripts(ctx, leaveScript, calls)
	if err != nil {
		return nil, fmt.Errorf("presence drain: %w", err)
	}
	var left []Left
	for i, cmd := range cmds {
		if last, _ := cmd.Int(); last == 1 {
			info, _ := decodeInfo(conns[i].info)
			left = append(left, Left{Group: conns[i].group, UserID: conns[i].userID, Info: info})
		}
	}
	return left, nil
}

// Connections returns the number of connections this process holds.
func (p *Presence) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.local)
}

// Hooks receive what Run finds. Either may be nil.
type Hooks struct {
	// OnLeft gets the users that Sweep found gone: announce them offline.
	OnLeft func(context.Context, []Left)
	// OnJoined gets the users that Heartbeat added back: announce them
	// online.
	OnJoined func(context.Context, []Joined)
}

// Run sweeps once, then heartbeats and sweeps every heartbeat interval
// until ctx ends. Failures are logged and retried at the next tick.
func (p *Presence) Run(ctx context.Context, hooks Hooks) error {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	p.sweepOnce(ctx, hooks)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		hctx, cancel := context.WithTimeout(ctx, p.interval)
		joined, err := p.Heartbeat(hctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			p.log.Warn("presence heartbeat failed", "connections", p.Connections(), "err", err)
		}
		if len(joined) > 0 && hooks.OnJoined != nil {
			hooks.OnJoined(ctx, joined)
		}
		p.sweepOnce(ctx, hooks)
	}
}

func (p *Presence) sweepOnce(ctx context.Context, hooks Hooks) {
	sctx, cancel := context.WithTimeout(ctx, p.interval)
	left, err := p.Sweep(sctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		p.log.Warn("presence sweep failed", "err", err)
	}
	// Users removed before a failure are reported all the same: Redis no
	// longer has them, so nobody else will.
	if len(left) > 0 && hooks.OnLeft != nil {
		hooks.OnLeft(ctx, left)
	}
}

// Close releases the Redis client if Open made it. It does not withdraw
// this process's connections (see Drain).
func (p *Presence) Close() error {
	if p.owned != nil {
		return p.owned.Close()
	}
	return nil
}

func (p *Presence) joinArgs(member, info string) []any {
	return []any{p.prefix, p.ttl.Milliseconds(), p.keepMillis(), member, info}
}

func (p *Presence) keepMillis() int64 { return keepTTLs * p.ttl.Milliseconds() }

// runScripts runs one script once per argument list in one pipeline, by
// hash; if Redis has lost the script (a restart), it loads it and tries
// once more. The error is the first failed call's.
func (p *Presence) runScripts(ctx context.Context, s *redis.Script, calls [][]any) ([]*redis.Cmd, error) {
	keys := []string{p.conns}
	for attempt := 0; ; attempt++ {
		pipe := p.client.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, args := range calls {
			cmds[i] = s.EvalSha(ctx, pipe, keys, args...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil || attempt > 0 || !slices.ContainsFunc(cmds, func(c *redis.Cmd) bool { return redis.HasErrorPrefix(c.Err(), "NOSCRIPT") }) {
			return cmds, err
		}
		if err := s.Load(ctx, p.client).Err(); err != nil {
			return nil, fmt.Errorf("load script: %w", err)
		}
	}
}

// decodeInfo reads back the JSON object stored by Join.
func decodeInfo(raw string) (map[string]any, error) {
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		return nil, errors.New("not a JSON object")
	}
	return info, nil
}

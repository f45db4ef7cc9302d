package presence

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
	"github.com/redis/go-redis/v9"
)

var bg = context.Background()

// openProcess is one sidecar process's presence, built from
// configuration as main would.
func openProcess(t testing.TB, srv *testenv.Redis, ttl time.Duration) *Presence {
	t.Helper()
	cfg := Config{Host: bridge.HostFromURL(srv.URL()), TTL: ttl}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// inspect is a plain client for looking at the keys.
func inspect(t testing.TB, srv *testenv.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

func join(t *testing.T, p *Presence, group, user, conn string, info map[string]any) bool {
	t.Helper()
	first, err := p.Join(bg, group, user, conn, info)
	if err != nil {
		t.Fatalf("Join(%s, %s, %s): %v", group, user, conn, err)
	}
	return first
}

func leave(t *testing.T, p *Presence, group, user, conn string) bool {
	t.Helper()
	last, err := p.Leave(bg, group, user, conn)
	if err != nil {
		t.Fatalf("Leave(%s, %s, %s): %v", group, user, conn, err)
	}
	return last
}

func online(t *testing.T, p *Presence, group string) []Member {
	t.Helper()
	m, err := p.Online(bg, group)
	if err != nil {
		t.Fatalf("Online(%s): %v", group, err)
	}
	return m
}

func userIDs(ms []Member) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.UserID)
	}
	return out
}

func TestTwoTabsOneUser(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := openProcess(t, srv, time.Minute)
	if !join(t, p, "user_status", "3", "tab1", map[string]any{"username": "jdoe"}) {
		t.Fatal("first tab not reported first")
	}
	if join(t, p, "user_status", "3", "tab2", map[string]any{"username": "jdoe"}) {
		t.Fatal("second tab reported first")
	}
	if join(t, p, "user_status", "3", "tab2", map[string]any{"username": "jdoe"}) {
		t.Fatal("joining the same tab again reported first")
	}
	if got := userIDs(online(t, p, "user_status")); !reflect.DeepEqual(got, []string{"3"}) {
		t.Fatalf("online %v", got)
	}
	if leave(t, p, "user_status", "3", "tab1") {
		t.Fatal("closing one of two tabs reported last")
	}
	if got := userIDs(online(t, p, "user_status")); !reflect.DeepEqual(got, []string{"3"}) {
		t.Fatalf("online after one tab closed: %v", got)
	}
	if !leave(t, p, "user_status", "3", "tab2") {
		t.Fatal("closing the last tab not reported last")
	}
	if leave(t, p, "user_status", "3", "tab2") {
		t.Fatal("leaving twice reported last twice")
	}
	if got := online(t, p, "user_status"); len(got) != 0 {
		t.Fatalf("online after both tabs closed: %v", got)
	}
	if keys := inspect(t, srv).Keys(bg, "*").Val(); len(keys) != 0 {
		t.Fatalf("keys left behind: %q", keys)
	}
}

func TestKeyLayout(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := openProcess(t, srv, time.Minute)
	join(t, p, "chat_project_7", "3", "c1", map[string]any{"username": "jdoe"})
	join(t, p, "chat_project_7", "3", "c2", nil)
	c := inspect(t, srv)
	keys := c.Keys(bg, "*").Val()
	sort.Strings(keys)
	want := []string{"sidecar:presence:conns", "sidecar:presence:info:chat_project_7", "sidecar:presence:users:chat_project_7"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	if n := c.HGet(bg, "sidecar:presence:users:chat_project_7", "3").Val(); n != "2" {
		t.Fatalf("connection count %q, want 2", n)
	}
	members := c.ZRangeWithScores(bg, "sidecar:presence:conns", 0, -1).Val()
	now := c.Time(bg).Val()
	for _, m := range members {
		g, u, conn, ok := decodeMember(m.Member.(string))
		if !ok || g != "chat_project_7" || u != "3" || !strings.HasPrefix(conn, p.instance+"/c") {
			t.Fatalf("member %q decodes to %q %q %q %v", m.Member, g, u, conn, ok)
		}
		deadline := time.UnixMilli(int64(m.Score))
		if d := deadline.Sub(now); d <= 0 || d > time.Minute {
			t.Fatalf("deadline %s is not within a TTL of Redis time %s", deadline, now)
		}
	}
	for _, k := range keys {
		if ttl := c.PTTL(bg, k).Val(); ttl <= time.Minute || ttl > 3*time.Minute {
			t.Fatalf("%s expires in %s, want within three TTLs", k, ttl)
		}
	}
}

func TestOnlineDistinctUsersWithInfo(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := openProcess(t, srv, time.Minute)
	join(t, p, "g", "10", "a", map[string]any{"username": "ann", "n": 1})
	join(t, p, "g", "10", "b", map[string]any{"username": "ann", "n": 2})
	join(t, p, "g", "10", "c", map[string]any{"username": "ann", "n": 3})
	join(t, p, "g", "2", "d", map[string]any{"username": "bob"})
	join(t, p, "other", "5", "e", map[string]any{"username": "cy"})
	got := online(t, p, "g")
	want := []Member{
		{UserID: "10", Info: map[string]any{"username": "ann", "n": float64(3)}},
		{UserID: "2", Info: map[string]any{"username": "bob"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("online %+v, want %+v", got, want)
	}
	if got := online(t, p, "nobody"); len(got) != 0 {
		t.Fatalf("empty group: %v", got)
	}
}

func TestTwoProcesses(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := openProcess(t, srv, time.Minute), openProcess(t, srv, time.Minute)
	if !join(t, a, "g", "1", "c1", map[string]any{"username": "u1"}) {
		t.Fatal("A: first tab not first")
	}
	// Connection ids need only be unique per process.
	if join(t, b, "g", "1", "c1", map[string]any{"username": "u1"}) {
		t.Fatal("B: a tab of a user already online on A reported first")
	}
	if !join(t, b, "g", "2", "c2", nil) {
		t.Fatal("B: another user not first")
	}
	for _, p := range []*Presence{a, b} {
		if got := userIDs(online(t, p, "g")); !reflect.DeepEqual(got, []string{"1", "2"}) {
			t.Fatalf("online %v", got)
		}
	}
	if leave(t, a, "g", "1", "c1") {
		t.Fatal("A's tab closing reported last while B has one")
	}
	if !leave(t, b, "g", "1", "c1") {
		t.Fatal("B's tab closing not reported last")
	}
	if got := userIDs(online(t, a, "g")); !reflect.DeepEqual(got, []string{"2"}) {
		t.Fatalf("online %v", got)
	}
	// Only this process's connections can be withdrawn by it.
	if leave(t, a, "g", "2", "c2") {
		t.Fatal("A withdrew B's connection")
	}
}

func TestLiveConnectionsAreNotSwept(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := openProcess(t, srv, time.Minute)
	join(t, p, "g", "1", "c", nil)
	left, err := p.Sweep(bg)
	if err != nil || len(left) != 0 {
		t.Fatalf("Sweep = %v, %v; want nothing", left, err)
	}
	if got := online(t, p, "g"); len(got) != 1 {
		t.Fatalf("online %v", got)
	}
}

// recorder collects what Run reports.
type recorder struct {
	mu     sync.Mutex
	left   []Left
	joined []Joined
}

func (r *recorder) hooks() Hooks {
	return Hooks{
		OnLeft: func(_ context.Context, l []Left) {
			r.mu.Lock()
			r.left = append(r.left, l...)
			r.mu.Unlock()
		},
		OnJoined: func(_ context.Context, j []Joined) {
			r.mu.Lock()
			r.joined = append(r.joined, j...)
			r.mu.Unlock()
		},
	}
}

func (r *recorder) snapshot() ([]Left, []Joined) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slicesClone(r.left), slicesClone(r.joined)
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

// run starts p.Run and stops it at the end of the test.
func run(t *testing.T, p *Presence, r *recorder) {
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, r.hooks())
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond until it holds, failing after a generous deadline
// that only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashedProcessSweptOnce(t *testing.T) {
	srv := testenv.StartRedis(t)
	const ttl = 3 * time.Second
	crashed := openProcess(t, srv, ttl)
	b, c := openProcess(t, srv, ttl), openProcess(t, srv, ttl)
	join(t, crashed, "g", "1", "x", map[string]any{"username": "one"})
	join(t, crashed, "g", "1", "y", map[string]any{"username": "one"})
	join(t, crashed, "h", "1", "z", map[string]any{"username": "one"})
	join(t, crashed, "g", "2", "x2", map[string]any{"username": "two"})
	join(t, b, "g", "2", "b2", map[string]any{"username": "two"})
	join(t, b, "g", "3", "b3", map[string]any{"username": "three"})
	// crashed never heartbeats again; b and c both heartbeat and sweep.
	var rb, rc recorder
	run(t, b, &rb)
	run(t, c, &rc)
	waitFor(t, "the crashed process's connections to be swept", func() bool {
		return inspect(t, srv).ZCard(bg, "sidecar:presence:conns").Val() == 2
	})
	lb, jb := rb.snapshot()
	lc, jc := rc.snapshot()
	all := append(lb, lc...)
	sort.Slice(all, func(i, j int) bool { return all[i].Group < all[j].Group })
	want := []Left{
		{Group: "g", UserID: "1", Info: map[string]any{"username": "one"}},
		{Group: "h", UserID: "1", Info: map[string]any{"username": "one"}},
	}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("reported left %+v, want %+v exactly once (user 2 still has a tab on b)", all, want)
	}
	if len(jb)+len(jc) != 0 {
		t.Fatalf("healthy processes re-added connections: %v %v", jb, jc)
	}
	if got := userIDs(online(t, b, "g")); !reflect.DeepEqual(got, []string{"2", "3"}) {
		t.Fatalf("online %v", got)
	}
	if got := online(t, b, "h"); len(got) != 0 {
		t.Fatalf("online in h: %v", got)
	}
}

func TestConcurrentSweepersReportEachUserOnce(t *testing.T) {
	srv := testenv.StartRedis(t)
	const ttl = 200 * time.Millisecond
	p := openProcess(t, srv, ttl)
	want := map[string]bool{}
	for i := range 1500 {
		g, u := fmt.Sprint("g", i%3), fmt.Sprint(i%500)
		join(t, p, g, u, fmt.Sprint("c", i), nil)
		want[g+"|"+u] = true
	}
	c := inspect(t, srv)
	waitFor(t, "every connection to expire", func() bool {
		now := c.Time(bg).Val().UnixMilli()
		return c.ZCount(bg, "sidecar:presence:conns", "-inf", fmt.Sprint(now)).Val() == 1500
	})
	sweepers := make([]*Presence, 4)
	for i := range sweepers {
		sweepers[i] = openProcess(t, srv, ttl)
	}
	results := make([][]Left, len(sweepers))
	var wg sync.WaitGroup
	for i, s := range sweepers {
		wg.Go(func() {
			l, err := s.Sweep(bg)
			if err != nil {
				t.Error(err)
			}
			results[i] = l
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range results {
		for _, l := range r {
			seen[l.Group+"|"+l.UserID]++
		}
	}
	for k, n := range seen {
		if n != 1 || !want[k] {
			t.Fatalf("%s reported %d times", k, n)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d users reported, want %d", len(seen), len(want))
	}
	if keys := c.Keys(bg, "*").Val(); len(keys) != 0 {
		t.Fatalf("keys left behind: %q", keys)
	}
}

func TestStalledProcessComesBack(t *testing.T) {
	srv := testenv.StartRedis(t)
	const ttl = 200 * time.Millisecond
	stalled, sweeper := openProcess(t, srv, ttl), openProcess(t, srv, ttl)
	join(t, stalled, "g", "1", "c", map[string]any{"username": "one"})
	var left []Left
	waitFor(t, "the stalled connection to be swept", func() bool {
		l, err := sweeper.Sweep(bg)
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, l...)
		return len(left) > 0
	})
	if len(left) != 1 || left[0].UserID != "1" {
		t.Fatalf("left %+v", left)
	}
	// Its next heartbeat adds the connection back and reports the user
	// online again, since an offline event went out.
	joined, err := stalled.Heartbeat(bg)
	if err != nil {
		t.Fatal(err)
	}
	want := []Joined{{Group: "g", UserID: "1", Info: map[string]any{"username": "one"}}}
	if !reflect.DeepEqual(joined, want) {
		t.Fatalf("Heartbeat = %+v, want %+v", joined, want)
	}
	if joined, err := stalled.Heartbeat(bg); err != nil || len(joined) != 0 {
		t.Fatalf("second Heartbeat = %+v, %v", joined, err)
	}
	if !leave(t, stalled, "g", "1", "c") {
		t.Fatal("leaving after coming back not reported last")
	}
}

func TestRedisRestartRebuiltByHeartbeat(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := openProcess(t, srv, time.Minute), openProcess(t, srv, time.Minute)
	join(t, a, "g", "1", "t1", map[string]any{"username": "one"})
	join(t, a, "g", "1", "t2", map[string]any{"username": "one"})
	join(t, a, "g", "2", "t3", map[string]any{"username": "two"})
	join(t, b, "g", "2", "t4", map[string]any{"username": "two"})
	join(t, b, "h", "3", "t5", map[string]any{"username": "three"})

	srv.Restart()
	waitFor(t, "Redis to answer after the restart", func() bool {
		_, err := a.Online(bg, "g")
		return err == nil
	})
	if got := online(t, a, "g"); len(got) != 0 {
		t.Fatalf("online after an empty restart: %v", got)
	}
	var ja, jb []Joined
	waitFor(t, "A's heartbeat to succeed", func() bool {
		j, err := a.Heartbeat(bg)
		ja = j
		return err == nil
	})
	sort.Slice(ja, func(i, j int) bool { return ja[i].UserID < ja[j].UserID })
	want := []Joined{
		{Group: "g", UserID: "1", Info: map[string]any{"username": "one"}},
		{Group: "g", UserID: "2", Info: map[string]any{"username": "two"}},
	}
	if !reflect.DeepEqual(ja, want) {
		t.Fatalf("A's heartbeat re-added %+v, want %+v", ja, want)
	}
	waitFor(t, "B's heartbeat to succeed", func() bool {
		j, err := b.Heartbeat(bg)
		jb = j
		return err == nil
	})
	want = []Joined{{Group: "h", UserID: "3", Info: map[string]any{"username": "three"}}}
	if !reflect.DeepEqual(jb, want) {
		t.Fatalf("B's heartbeat re-added %+v, want %+v (user 2 was already back)", jb, want)
	}
	got := online(t, a, "g")
	if !reflect.DeepEqual(userIDs(got), []string{"1", "2"}) || got[0].Info["username"] != "one" {
		t.Fatalf("online rebuilt as %+v", got)
	}
	// Counts were rebuilt too: the first of two tabs is not the last.
	if leave(t, a, "g", "1", "t1") || !leave(t, a, "g", "1", "t2") {
		t.Fatal("tab counts not rebuilt")
	}
	if leave(t, a, "g", "2", "t3") || !leave(t, b, "g", "2", "t4") {
		t.Fatal("cross-process counts not rebuilt")
	}
}

func TestJoinWhileRedisDownIsAddedByHeartbeat(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := openProcess(t, srv, time.Minute)
	srv.Stop()
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if _, err := p.Join(ctx, "g", "1", "c", map[string]any{"username": "one"}); err == nil {
		t.Fatal("Join with Redis down did not fail")
	}
	srv.Restart()
	var joined []Joined
	waitFor(t, "a heartbeat to succeed", func() bool {
		j, err := p.Heartbeat(bg)
		joined = j
		return err == nil
	})
	if len(joined) != 1 || joined[0].UserID != "1" {
		t.Fatalf("Heartbeat = %+v, want user 1 announced", joined)
	}
	if !leave(t, p, "g", "1", "c") {
		t.Fatal("Leave not last")
	}
}

func TestDrain(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := openProcess(t, srv, time.Minute), openProcess(t, srv, time.Minute)
	join(t, a, "g", "1", "c1", nil)
	join(t, a, "g", "1", "c2", nil)
	join(t, a, "g", "2", "c3", nil)
	join(t, b, "g", "2", "c4", nil)
	left, err := a.Drain(bg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(left, []Left{{Group: "g", UserID: "1"}}) {
		t.Fatalf("Drain = %+v, want only user 1", left)
	}
	if a.Connections() != 0 {
		t.Fatalf("%d connections left after Drain", a.Connections())
	}
	if got := userIDs(online(t, b, "g")); !reflect.DeepEqual(got, []string{"2"}) {
		t.Fatalf("online %v", got)
	}
}

// TestConcurrentJoinLeaveHeartbeat churns tabs of a few users from many
// goroutines while heartbeats run, and checks that online and offline
// alternate per user and that nothing is left behind.
func TestConcurrentJoinLeaveHeartbeat(t *testing.T) {
	srv := testenv.StartRedis(t)
	p, q := openProcess(t, srv, time.Minute), openProcess(t, srv, time.Minute)
	var mu sync.Mutex
	firsts, lasts := map[string]int{}, map[string]int{}
	var joined []Joined
	stop := make(chan struct{})
	var hb sync.WaitGroup
	for _, proc := range []*Presence{p, q} {
		hb.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				j, err := proc.Heartbeat(bg)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				joined = append(joined, j...)
				mu.Unlock()
			}
		})
	}
	var wg sync.WaitGroup
	for w := range 8 {
		proc := []*Presence{p, q}[w%2]
		user := fmt.Sprint(w % 3)
		wg.Go(func() {
			for i := range 40 {
				conn := fmt.Sprint("w", w, "-", i)
				f, err := proc.Join(bg, "g", user, conn, nil)
				if err != nil {
					t.Error(err)
					return
				}
				l, err := proc.Leave(bg, "g", user, conn)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if f {
					firsts[user]++
				}
				if l {
					lasts[user]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	hb.Wait()
	if len(joined) != 0 {
		t.Fatalf("heartbeats re-added connections: %+v", joined)
	}
	if !reflect.DeepEqual(firsts, lasts) || len(firsts) != 3 {
		t.Fatalf("firsts %v, lasts %v: want equal counts for 3 users", firsts, lasts)
	}
	if keys := inspect(t, srv).Keys(bg, "*").Val(); len(keys) != 0 {
		t.Fatalf("keys left behind: %q", keys)
	}
}

func TestIDsWithAnyBytes(t *testing.T) {
	srv := testenv.StartRedis(t)
	const ttl = 200 * time.Millisecond
	p, sweeper := openProcess(t, srv, ttl), openProcess(t, srv, ttl)
	cases := [][2]string{
		{"a:1:b", "12:x"},
		{"3:abc", "3:abc"},
		{"grüße", "ユーザー"},
		{"nul\x00group", "user\x00\xff"},
		{"9", "9"},
	}
	for i, c := range cases {
		if !join(t, p, c[0], c[1], fmt.Sprint(i, ":conn:", i), map[string]any{"i": i}) {
			t.Fatalf("%q not first", c)
		}
		if got := userIDs(online(t, p, c[0])); !reflect.DeepEqual(got, []string{c[1]}) {
			t.Fatalf("online in %q: %q", c[0], got)
		}
	}
	if !leave(t, p, cases[0][0], cases[0][1], "0:conn:0") {
		t.Fatal("leave with colons in ids not last")
	}
	var left []Left
	waitFor(t, "the rest to be swept", func() bool {
		l, err := sweeper.Sweep(bg)
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, l...)
		return len(left) >= len(cases)-1
	})
	got := map[[2]string]bool{}
	for _, l := range left {
		got[[2]string{l.Group, l.UserID}] = true
	}
	for _, c := range cases[1:] {
		if !got[c] {
			t.Fatalf("sweep reported %+v, missing %q", left, c)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := openProcess(t, srv, time.Minute)
	long := strings.Repeat("x", MaxIDLen+1)
	for _, ids := range [][3]string{{"", "u", "c"}, {"g", "", "c"}, {"g", "u", ""}, {long, "u", "c"}, {"g", long, "c"}, {"g", "u", long}} {
		if _, err := p.Join(bg, ids[0], ids[1], ids[2], nil); err == nil {
			t.Errorf("Join(%.10q, %.10q, %.10q) accepted", ids[0], ids[1], ids[2])
		}
		if _, err := p.Leave(bg, ids[0], ids[1], ids[2]); err == nil {
			t.Errorf("Leave(%.10q, %.10q, %.10q) accepted", ids[0], ids[1], ids[2])
		}
	}
	if _, err := p.Join(bg, "g", "u", "c", map[string]any{"big": strings.Repeat("x", DefaultMaxInfoBytes)}); err == nil || !strings.Contains(err.Error(), "max_info_bytes") {
		t.Errorf("oversized info: %v", err)
	}
	if _, err := p.Join(bg, "g", "u", "c", map[string]any{"ch": make(chan int)}); err == nil {
		t.Error("info that is not JSON accepted")
	}
	if p.Connections() != 0 {
		t.Fatalf("rejected joins were remembered: %d", p.Connections())
	}
	// Info written into the namespace by something else is reported, not
	// a crash.
	inspect(t, srv).HSet(bg, "sidecar:presence:info:bad", "u", "{not json")
	if _, err := p.Online(bg, "bad"); err == nil {
		t.Error("Online accepted unreadable info")
	}
}

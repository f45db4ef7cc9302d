package bridge

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// recordingObserver keeps what a layer reports.
type recordingObserver struct {
	mu     sync.Mutex
	lags   []float64
	depths map[int][]int
}

func newRecordingObserver() *recordingObserver {
	return &recordingObserver{depths: make(map[int][]int)}
}

func (o *recordingObserver) ObserveLag(s float64) {
	o.mu.Lock()
	o.lags = append(o.lags, s)
	o.mu.Unlock()
}

func (o *recordingObserver) SetQueueDepth(host, n int) {
	o.mu.Lock()
	o.depths[host] = append(o.depths[host], n)
	o.mu.Unlock()
}

func (o *recordingObserver) snapshot() ([]float64, map[int][]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := make(map[int][]int, len(o.depths))
	for k, v := range o.depths {
		d[k] = append([]int(nil), v...)
	}
	return append([]float64(nil), o.lags...), d
}

// fillProcessKey stores n messages for ch in l's process key, published
// age ago.
func fillProcessKey(t testing.TB, rc *redis.Client, l *RedisLayer, ch string, n int, age time.Duration) {
	t.Helper()
	ctx := context.Background()
	sc := score(time.Now().Add(-age))
	for start := 0; start < n; start += 1000 {
		_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
			zs := make([]redis.Z, 0, 1000)
			for i := start; i < min(start+1000, n); i++ {
				m, err := l.codec.AppendMember(nil, Message{"type": "chat.message", "i": i, "text": "hello"}, ch)
				if err != nil {
					return err
				}
				zs = append(zs, redis.Z{Score: sc, Member: m})
			}
			p.ZAdd(ctx, "asgi"+l.ProcessName(), zs...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRedisLagAndQueueDepth: the receive loop reports each message's age
// and samples the backlog of its process key.
func TestRedisLagAndQueueDepth(t *testing.T) {
	r := testenv.StartRedis(t)
	obs := newRecordingObserver()
	rec := newRecorder()
	l := newRedisTestLayer(t, r, Config{ReceiveBatch: 10, Observer: obs}, rec.handle)
	ch := l.NewChannel()
	fillProcessKey(t, rawClient(t, r), l, ch, 50, 5*time.Second)
	runLayer(t, l)
	rec.waitFor(t, 50, 10*time.Second)
	lags, depths := obs.snapshot()
	if len(lags) != 50 {
		t.Fatalf("%d lags observed", len(lags))
	}
	for _, lag := range lags {
		if lag < 4.9 || lag > 30 {
			t.Fatalf("lag %f s for a message published 5 s ago", lag)
		}
	}
	// One message by BZPOPMIN, then a batch of 10 with the first sample.
	if len(depths[0]) == 0 || depths[0][0] != 39 {
		t.Fatalf("queue depth samples %v, want 39 first", depths[0])
	}
	st := l.Stats()
	if st.LagMax < 4.9 || st.LagLast < 4.9 || st.Hosts[0].Received != 50 {
		t.Fatalf("stats %+v", st)
	}
	if again := l.Stats(); again.LagMax != 0 || again.LagLast < 4.9 {
		t.Fatalf("LagMax is not reset by Stats: %+v", again)
	}
	// Once the key stays empty, the loop reports an empty queue.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, depths = obs.snapshot()
		if d := depths[0]; d[len(d)-1] == 0 && l.Stats().Hosts[0].QueueDepth == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("depth samples %v", depths[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisRingOneHostDown: with one of two hosts down, Ready names that
// host only, Stats shows which host is down, and traffic through the other
// host still flows.
func TestRedisRingOneHostDown(t *testing.T) {
	ctx := context.Background()
	rs, urls := startRing(t, 2)
	rec := newRecorder()
	l := newRingLayer(t, hostList(urls), Config{}, rec.handle, 0)
	runLayer(t, l)
	if err := l.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	rs[1].Stop()
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Hosts[1].Up {
		if time.Now().After(deadline) {
			t.Fatal("the receive loop of the stopped host did not notice")
		}
		time.Sleep(50 * time.Millisecond)
	}
	err := l.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "host 1 ("+"redis://"+rs[1].Addr()) || strings.Contains(err.Error(), rs[0].Addr()) {
		t.Fatalf("Ready: %v", err)
	}
	st := l.Stats()
	if !st.Hosts[0].Up || st.Hosts[1].BackendErrors == 0 || st.Hosts[0].BackendErrors != 0 {
		t.Fatalf("per-host stats %+v", st.Hosts)
	}
	group := groupOn(0, 2, "alive")
	ch := l.NewChannel()
	if err := l.GroupAdd(ctx, group, ch); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupSend(ctx, group, Message{"type": "still.here"}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 1, 5*time.Second)
	if err := l.GroupAdd(ctx, groupOn(1, 2, "dead"), ch); err == nil || !strings.Contains(err.Error(), rs[1].Addr()) {
		t.Fatalf("group_add on the stopped host: %v", err)
	}
}

// TestRedisGroupSendAcrossHosts: one group_send writes each member's key
// on the host of its non-local name, and counts what it wrote.
func TestRedisGroupSendAcrossHosts(t *testing.T) {
	ctx := context.Background()
	rs, urls := startRing(t, 2)
	recs := []*recorder{newRecorder(), newRecorder()}
	sender := newRingLayer(t, hostList(urls), Config{}, nopHandler, 0)
	group := groupOn(1, 2, "mixed")
	for h := range 2 {
		l := newRingLayer(t, hostList(urls), Config{}, recs[h].handle, h)
		if err := l.GroupAdd(ctx, group, l.NewChannel()); err != nil {
			t.Fatal(err)
		}
		runLayer(t, l)
	}
	// A plain member is written on the host of its own name.
	plain := "worker.tasks" // hashes to host 1 of 2
	if err := sender.GroupAdd(ctx, group, plain); err != nil {
		t.Fatal(err)
	}
	if err := sender.GroupSend(ctx, group, Message{"type": "fan"}); err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		rec.waitFor(t, 1, 5*time.Second)
	}
	if n0, n1 := rawClient(t, rs[0]).ZCard(ctx, "asgi"+plain).Val(), rawClient(t, rs[1]).ZCard(ctx, "asgi"+plain).Val(); n0 != 0 || n1 != 1 {
		t.Fatalf("plain member key: %d on host 0, %d on host 1", n0, n1)
	}
	if st := sender.Stats(); st.GroupSent != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestHandleMemberAllocations keeps the per-message cost of decoding and
// dispatching a typical group message small.
func TestHandleMemberAllocations(t *testing.T) {
	l, member := handleMemberFixture(t)
	s := l.shards[0]
	allocs := testing.AllocsPerRun(200, func() { l.handleMember(s, member, 1, 2) })
	limit := 8.0
	if raceEnabled {
		// The race detector's sync.Pool drops items at random, so pooled
		// decoders are rebuilt now and then.
		limit = 16
	}
	if allocs > limit {
		t.Fatalf("%.0f allocations per received message", allocs)
	}
}

func handleMemberFixture(t testing.TB) (*RedisLayer, any) {
	t.Helper()
	l, err := newRedisLayer(Config{Prefix: "asgi", Expiry: 60, Capacity: 100, RandomPrefixLength: 12}, nopHandler, nil, []string{"h"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := l.codec.AppendGroupMember(nil, Message{"type": "chat.message", "message": strings.Repeat("m", 150), "user_id": 42}, []string{l.NewChannel()})
	if err != nil {
		t.Fatal(err)
	}
	return l, any(string(m))
}

func BenchmarkHandleMember(b *testing.B) {
	l, member := handleMemberFixture(b)
	s := l.shards[0]
	b.ReportAllocs()
	for b.Loop() {
		l.handleMember(s, member, 1, 2)
	}
}

// BenchmarkReceiveDrain measures how fast Run drains a backlog from a real
// redis-server: b.N messages wait in the process key, and the clock runs
// until the Handler has seen them all.
func BenchmarkReceiveDrain(b *testing.B) {
	r := testenv.StartRedis(b)
	var seen atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	l := newRedisTestLayer(b, r, Config{}, func(string, Message) {
		if seen.Add(1) == target {
			close(done)
		}
	})
	fillProcessKey(b, rawClient(b, r), l, l.NewChannel(), b.N, 0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		_ = l.Run(ctx)
		close(ran)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("drained %d of %d", seen.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-ran
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

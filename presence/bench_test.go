package presence

import (
	"fmt"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// BenchmarkJoinLeave measures one tab opening and closing: two scripts.
func BenchmarkJoinLeave(b *testing.B) {
	srv := testenv.StartRedis(b)
	p := openProcess(b, srv, time.Minute)
	info := map[string]any{"username": "jdoe"}
	i := 0
	for b.Loop() {
		conn := fmt.Sprint("c", i)
		if _, err := p.Join(bg, "user_status", "3", conn, info); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Leave(bg, "user_status", "3", conn); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkHeartbeat measures one heartbeat of a process with 10,000
// connections of 5,000 users over 100 groups: one pipeline of ten
// refresh scripts.
func BenchmarkHeartbeat(b *testing.B) {
	srv := testenv.StartRedis(b)
	p := openProcess(b, srv, time.Minute)
	info := map[string]any{"username": "someone"}
	for i := range 10000 {
		if _, err := p.Join(bg, fmt.Sprint("group_", i%100), fmt.Sprint(i%5000), fmt.Sprint("c", i), info); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		joined, err := p.Heartbeat(bg)
		if err != nil || len(joined) != 0 {
			b.Fatalf("Heartbeat = %v, %v", joined, err)
		}
	}
}

// BenchmarkHeartbeatAfterRestart measures the heartbeat that rebuilds
// 10,000 connections after Redis lost them.
func BenchmarkHeartbeatAfterRestart(b *testing.B) {
	srv := testenv.StartRedis(b)
	p := openProcess(b, srv, time.Minute)
	c := inspect(b, srv)
	for i := range 10000 {
		if _, err := p.Join(bg, fmt.Sprint("group_", i%100), fmt.Sprint(i%5000), fmt.Sprint("c", i), nil); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		b.StopTimer()
		if err := c.FlushAll(bg).Err(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		joined, err := p.Heartbeat(bg)
		if err != nil || len(joined) != 5000 {
			b.Fatalf("Heartbeat rebuilt %d users, %v; want 5000", len(joined), err)
		}
	}
}

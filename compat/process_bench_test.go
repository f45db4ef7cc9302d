package compat

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/golang-jwt/jwt/v5"
)

// procUsage reads a process's resident memory (bytes) and CPU time.
func procUsage(tb testing.TB, pid int) (rss int64, cpu time.Duration) {
	tb.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb * 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name: utime and stime are the 12th and
	// 13th, in clock ticks (100 per second on Linux).
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return rss, time.Duration(ut+st) * 10 * time.Millisecond
}

const processBenchConfig = `
log: {level: warn}
auth:
  secret_key: bench-secret-key-0123456789
  session_engine: django.contrib.sessions.backends.signed_cookies
channel_layer: {backend: memory}
websocket: {compression: false}
routes:
  - path: /ws/bench/{room:slug}/
    auth: required
    groups: ["bench_{room}"]
    receive:
      default:
        group_send: {group: "bench_{room}", forward_frame: true, event: {type: bench.message}}
`

// BenchmarkSidecarProcess measures the built binary (no race detector)
// from outside, as the design budget states its figures: server CPU per
// connect with a JWT checked, resident memory per idle socket, and server
// CPU per delivered frame when 30 messages of 200 bytes fan out to every
// socket of one group. Run with -benchtime=1x; SOCKETS sets the count.
func BenchmarkSidecarProcess(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("SOCKETS")); err == nil && v > 0 {
		n = v
	}
	cmd := exec.Command(plainBinary.get(b), "--config", writeConfig(b, processBenchConfig))
	s := startProcess(b, cmd)
	pid := cmd.Process.Pid
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"token_type": "access", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
		"jti": "0123456789abcdef0123456789abcdef", "user_id": 7,
	}).SignedString([]byte("bench-secret-key-0123456789"))
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let start-up settle before the baseline
	rss0, cpu0 := procUsage(b, pid)

	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/bench/room/?token="+token), http.Header{})
		if err != nil {
			b.Fatalf("socket %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	rss1, cpu1 := procUsage(b, pid)

	const messages = 30
	var wg sync.WaitGroup
	wg.Add(n * messages)
	for _, c := range conns {
		go func(c *websocket.Conn) {
			for i := 0; i < messages; i++ {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				wg.Done()
			}
		}(c)
	}
	text := strings.Repeat("x", 200-len(`{"text":"","type":"bench.message"}`))
	for i := 0; i < messages; i++ {
		if err := conns[0].WriteJSON(map[string]any{"text": text}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	_, cpu2 := procUsage(b, pid)

	b.ReportMetric(float64(rss1-rss0)/float64(n)/1024, "KB-RSS/idle-socket")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(n), "µs-CPU/connect")
	b.ReportMetric(float64((cpu2-cpu1).Nanoseconds())/1000/float64(n*messages), "µs-CPU/frame")
}

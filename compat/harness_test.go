// Package compat holds the black-box tests: they build the sidecar binary
// and drive it with real WebSocket clients, real Redis, and the real
// Django, Channels and channels_redis packages.
package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// binary is the sidecar built once per test run: with the race detector
// for tests, without it for benchmarks that measure the process.
type binary struct {
	once sync.Once
	path string
	err  error
	race bool
}

var (
	raceBinary  = &binary{race: true}
	plainBinary = &binary{}
)

func (b *binary) get(tb testing.TB) string {
	tb.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "sidecar-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "channels-sidecar")
		args := []string{"build", "-o", b.path}
		if b.race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// sidecarBinary is the race-enabled binary the tests run.
func sidecarBinary(t testing.TB) string { return raceBinary.get(t) }

// lockedBuffer collects a process's output for the test log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sidecar is a running sidecar process.
type sidecar struct {
	addr string
	cmd  *exec.Cmd
	logs *lockedBuffer
}

// startSidecar runs the built binary with a config file ("" for the
// embedded default) and extra environment, and stops it with SIGTERM when
// the test ends.
func startSidecar(t testing.TB, config string, env ...string) *sidecar {
	t.Helper()
	args := []string{}
	if config != "" {
		args = append(args, "--config", config)
	}
	return startProcess(t, exec.Command(sidecarBinary(t), args...), env...)
}

func startProcess(t testing.TB, cmd *exec.Cmd, env ...string) *sidecar {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s := &sidecar{addr: addr, cmd: cmd, logs: &lockedBuffer{}}
	cmd.Env = append(append(os.Environ(), "SIDECAR_LISTEN="+addr, "SIDECAR_CONFIG="), env...)
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("sidecar did not stop within 15s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("sidecar output:\n%s", s.logs.String())
		}
	})
	if err := testenv.WaitTCP(addr, 60*time.Second); err != nil {
		t.Fatalf("sidecar did not start: %v\n%s", err, s.logs.String())
	}
	return s
}

func (s *sidecar) url(path string) string   { return "http://" + s.addr + path }
func (s *sidecar) wsURL(path string) string { return "ws://" + s.addr + path }

// dial opens a WebSocket and fails the test on error.
func (s *sidecar) dial(t *testing.T, path string, header http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(s.wsURL(path), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialStatus tries a handshake and returns the HTTP status: 101 on success.
func (s *sidecar) dialStatus(t *testing.T, path string, header http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(s.wsURL(path), header)
	if err == nil {
		_ = c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return resp.StatusCode
}

// readJSON reads one frame as a JSON object, failing after a generous
// timeout (a hang guard, not a performance check).
func readJSON(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("frame is not a JSON object: %q", data)
	}
	return m
}

func writeJSON(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

func httpGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// python runs a helper script from compat/python with one Python stack
// and extra environment.
func python(ctx context.Context, st testenv.PyStack, env []string, script string, args ...string) *exec.Cmd {
	cmd := st.Command(ctx, append([]string{filepath.Join(testenv.RepoRoot(), "compat", "python", script)}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// forEachStack runs a subtest per Python stack: Debian 12's Django 3.2 and
// channels_redis 4.0, and the current Django 5.2 and channels_redis 4.3.
func forEachStack(t *testing.T, fn func(t *testing.T, st testenv.PyStack)) {
	for _, st := range testenv.PythonStacks(t) {
		t.Run(st.Name, func(t *testing.T) { fn(t, st) })
	}
}

// writeConfig writes a config file for one test.
func writeConfig(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sidecar.yaml")
	if err := os.WriteFile(p, []byte(strings.TrimLeft(body, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// expectPeer is a running channels_peer.py "expect" or "expect_channel":
// a Python consumer waiting for one message that it compares, types
// included, with what the test expects.
type expectPeer struct {
	t       *testing.T
	cmd     *exec.Cmd
	lines   *bufio.Scanner
	stderr  *lockedBuffer
	Channel string // the peer's channel name, from its READY line
}

// startExpectPeer starts the peer and waits until its channel is ready.
func startExpectPeer(ctx context.Context, t *testing.T, st testenv.PyStack, env []string, args ...string) *expectPeer {
	t.Helper()
	cmd := python(ctx, st, env, "e2e/channels_peer.py", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &expectPeer{t: t, cmd: cmd, lines: bufio.NewScanner(stdout), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !p.lines.Scan() || !strings.HasPrefix(p.lines.Text(), "READY ") {
		t.Fatalf("python peer did not get ready: %q %s", p.lines.Text(), p.stderr.String())
	}
	p.Channel = strings.TrimPrefix(p.lines.Text(), "READY ")
	return p
}

// requireMatch waits for the peer's verdict and fails the test unless the
// message it received was the expected one.
func (p *expectPeer) requireMatch() {
	p.t.Helper()
	if !p.lines.Scan() {
		p.t.Fatalf("python peer printed nothing: %s", p.stderr.String())
	}
	if res := p.lines.Text(); res != "MATCH" {
		p.t.Fatalf("python received a different message: %s", res)
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("python peer: %v %s", err, p.stderr.String())
	}
}

// Package testenv starts the real components that integration tests need
// (redis-server, Debian's Python with Django and channels_redis) and decides
// whether a missing one skips the test or fails it.
//
// On a developer's machine a missing dependency skips the test with the
// command that installs it. When CI=true it fails the test instead, so that
// nothing is silently skipped in CI.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Python is Debian's interpreter. The one on PATH may be another build
// without the distribution's Django and channels packages.
const Python = "/usr/bin/python3"

// InstallHint names the script that installs every test dependency.
const InstallHint = "run scripts/install-test-deps.sh"

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Missing skips the test, or fails it in CI, because a dependency is absent.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (" + InstallHint + ")"
	if InCI() {
		t.Fatalf("missing dependency in CI: %s", msg)
	}
	t.Skip("missing dependency: " + msg)
}

// RequireCommand returns the path of an executable, or skips/fails the test.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			Missing(t, "%s not found", name)
		}
		return name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not on PATH", name)
	}
	return p
}

var pyModules sync.Map // module list -> error

// RequirePython checks that Debian's Python can import the given modules
// and returns its path.
func RequirePython(t testing.TB, modules ...string) string {
	t.Helper()
	RequireCommand(t, Python)
	key := strings.Join(modules, ",")
	if v, ok := pyModules.Load(key); ok {
		if v != nil {
			Missing(t, "%v", v)
		}
		return Python
	}
	var errv any
	if len(modules) > 0 {
		src := "import " + strings.Join(modules, ", ")
		out, err := exec.Command(Python, "-c", src).CombinedOutput()
		if err != nil {
			errv = fmt.Sprintf("python modules %s: %s", key, strings.TrimSpace(string(out)))
		}
	}
	pyModules.Store(key, errv)
	if errv != nil {
		Missing(t, "%v", errv)
	}
	return Python
}

// RepoRoot returns the module root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts TCP connections or the timeout passes.
func WaitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Redis is a redis-server process started for one test.
type Redis struct {
	Port int
	t    testing.TB
	bin  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	dir  string
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the redis:// URL of the server's database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// StartRedis starts an empty, non-persistent redis-server on a free port and
// stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := RequireCommand(t, "redis-server")
	r := &Redis{Port: FreePort(t), t: t, bin: bin, dir: t.TempDir()}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	r.cmd = cmd
	if err := WaitTCP(r.Addr(), 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("redis-server: %w: %s", err, stderr.String())
	}
	return nil
}

// Stop kills the server. It is safe to call more than once.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Restart kills the server and starts an empty one on the same port.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// RunPython runs Debian's Python on a script with arguments, feeding stdin,
// and returns stdout. A non-zero exit fails the test with stderr.
func RunPython(ctx context.Context, t testing.TB, env []string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, Python, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}

// waitListening waits until a server process listens on addr. If it exits
// first, or never listens, the test fails with what it printed; stop ends
// a process that did not listen in time, exitedFirst notes an early exit.
func waitListening(t testing.TB, what, addr string, timeout time.Duration, exited <-chan error, stop, exitedFirst func(), output func() string) {
	t.Helper()
	ready := make(chan error, 1)
	go func() { ready <- WaitTCP(addr, timeout) }()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			t.Fatalf("%s on %s: %v\noutput:\n%s", what, addr, err, output())
		}
	case err := <-exited:
		exitedFirst()
		t.Fatalf("%s exited before listening on %s: %v\noutput:\n%s", what, addr, err, output())
	}
}

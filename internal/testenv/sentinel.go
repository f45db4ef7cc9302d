package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Sentinel is a redis-server in Sentinel mode, started for one test,
// watching one master.
type Sentinel struct {
	// Port is the Sentinel's TCP port on 127.0.0.1.
	Port int
	// MasterName is the name the master is monitored under.
	MasterName string
}

// Addr is host:port of the Sentinel.
func (s *Sentinel) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// StartSentinel starts a Sentinel (redis-server --sentinel, which Debian's
// redis-server package provides) on a free port, monitoring master under
// masterName with a quorum of one, and stops it when the test ends.
func StartSentinel(t testing.TB, master *Redis, masterName string) *Sentinel {
	t.Helper()
	bin := RequireCommand(t, "redis-server")
	s := &Sentinel{Port: FreePort(t), MasterName: masterName}
	dir := t.TempDir()
	// Sentinel rewrites its configuration file, so it must be writable.
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n",
		s.Port, dir, masterName, master.Port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf, "--sentinel", "--loglevel", "warning")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis sentinel: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := WaitTCP(s.Addr(), 10*time.Second); err != nil {
		t.Fatalf("redis sentinel: %v: %s", err, out.String())
	}
	return s
}

package testenv

import (
	"bytes"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TLSRedis is a redis-server that only accepts TLS connections, started
// for one test.
type TLSRedis struct {
	// Port is the TLS port on 127.0.0.1.
	Port int
}

// Addr is host:port of the server.
func (r *TLSRedis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the rediss:// URL of the server's database 0.
func (r *TLSRedis) URL() string { return "rediss://" + r.Addr() + "/0" }

// StartRedisTLS starts an empty, non-persistent redis-server serving TLS
// only, with the given certificate and key, on a free port; clients need
// no certificate. It stops the server when the test ends. Debian's
// redis-server is built with TLS.
func StartRedisTLS(t testing.TB, certFile, keyFile, caFile string) *TLSRedis {
	t.Helper()
	bin := RequireCommand(t, "redis-server")
	r := &TLSRedis{Port: FreePort(t)}
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server with TLS: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := WaitTCP(r.Addr(), 10*time.Second); err != nil {
		t.Fatalf("redis-server with TLS: %v: %s", err, out.String())
	}
	return r
}

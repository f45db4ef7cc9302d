package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// sessionPeer drives compat/python/auth/session_peer.py: the real Django
// logs users in and out through its real session engines, one JSON line
// per operation.
type sessionPeer struct {
	t        *testing.T
	stack    string
	in       io.WriteCloser
	out      *bufio.Scanner
	versions map[string]string
	mu       sync.Mutex
}

// startSessionPeer runs the peer with one Python stack and its settings
// line (see the script's docstring), and stops it when the test ends.
func startSessionPeer(t *testing.T, st testenv.PyStack, settings map[string]any, env ...string) *sessionPeer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	script := filepath.Join(testenv.RepoRoot(), "compat", "python", "auth", "session_peer.py")
	cmd := st.Command(ctx, script)
	cmd.Env = append(cmd.Env, env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedLog{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() {
			t.Logf("session_peer.py (%s) stderr:\n%s", st.Name, stderr.String())
		}
	})
	p := &sessionPeer{t: t, stack: st.Name, in: in, out: bufio.NewScanner(out)}
	p.out.Buffer(make([]byte, 1<<16), 1<<20)
	var ready struct {
		Ready    bool              `json:"ready"`
		Versions map[string]string `json:"versions"`
	}
	p.send(settings, &ready)
	if !ready.Ready {
		t.Fatalf("session_peer.py (%s) not ready\nstderr:\n%s", st.Name, stderr.String())
	}
	p.versions = ready.Versions
	return p
}

func (p *sessionPeer) send(v any, answer any) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("session_peer.py (%s): write: %v", p.stack, err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("session_peer.py (%s) exited: %v", p.stack, p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), answer); err != nil {
		p.t.Fatalf("session_peer.py (%s) answered %q: %v", p.stack, p.out.Bytes(), err)
	}
}

// peerLogin is the answer to a login.
type peerLogin struct {
	SessionKey string `json:"session_key"`
	UserID     string `json:"user_id"`
	CacheKey   string `json:"cache_key"`
	RedisKey   string `json:"redis_key"`
	Error      string `json:"error"`
}

// login logs username in through Django; extra adds op fields (engine,
// cache_alias, expiry).
func (p *sessionPeer) login(username string, extra map[string]any) peerLogin {
	p.t.Helper()
	op := map[string]any{"op": "login", "username": username}
	for k, v := range extra {
		op[k] = v
	}
	var a peerLogin
	p.send(op, &a)
	if a.Error != "" || a.SessionKey == "" {
		p.t.Fatalf("django login (%s): %+v", p.stack, a)
	}
	return a
}

// logout runs django.contrib.auth.logout on a session.
func (p *sessionPeer) logout(sessionKey string, extra map[string]any) {
	p.t.Helper()
	op := map[string]any{"op": "logout", "session_key": sessionKey}
	for k, v := range extra {
		op[k] = v
	}
	var a struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	p.send(op, &a)
	if !a.OK {
		p.t.Fatalf("django logout (%s): %s", p.stack, a.Error)
	}
}

// lockedLog collects a process's stderr.
type lockedLog struct {
	mu  sync.Mutex
	buf []byte
}

func (l *lockedLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	return len(b), nil
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

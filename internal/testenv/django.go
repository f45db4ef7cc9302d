package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DjangoDir is the reference Django project, relative to the module root.
const DjangoDir = "compat/django"

// djangoStartTimeout bounds migrate plus the wait for runserver's port; a
// loaded two-core CI machine needs a few seconds for Django's imports.
const djangoStartTimeout = 60 * time.Second

// djangoOutput collects what a Django process prints, for failure reports.
type djangoOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *djangoOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *djangoOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// StartDjango runs the reference Django project (compat/django) with
// `manage.py runserver 127.0.0.1:PORT --noreload` on a free port, after
// migrating a fresh SQLite database in the test's temporary directory, and
// returns its base URL, http://127.0.0.1:PORT. The server is stopped when
// the test ends.
//
// env adds KEY=VALUE settings on top of the process environment; the
// defaults are DJANGO_SETTINGS_MODULE=refsite.settings and DJANGO_DB_PATH in
// the temporary directory, and refsite/settings.py documents the rest
// (SECRET_KEY, REDIS_URL, ...). Without Debian's Python and Django the test
// is skipped, or fails in CI.
func StartDjango(t testing.TB, env ...string) (baseURL string) {
	t.Helper()
	RequirePython(t, "django", "channels")
	dir := filepath.Join(RepoRoot(), DjangoDir)
	manage := filepath.Join(dir, "manage.py")
	if _, err := os.Stat(manage); err != nil {
		t.Fatalf("reference Django project: %v", err)
	}
	base := []string{
		"DJANGO_SETTINGS_MODULE=refsite.settings",
		"DJANGO_DB_PATH=" + filepath.Join(t.TempDir(), "refsite.sqlite3"),
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
	}
	// Later entries win in exec, so the caller's settings override ours.
	procEnv := append(append(os.Environ(), base...), env...)

	migrate := exec.Command(Python, manage, "migrate", "--noinput", "-v", "0")
	migrate.Dir = dir
	migrate.Env = procEnv
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("django migrate: %v\n%s", err, out)
	}

	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(Python, manage, "runserver", addr, "--noreload")
	cmd.Dir = dir
	cmd.Env = procEnv
	out := &djangoOutput{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start django runserver: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	waitListening(t, "django runserver", addr, djangoStartTimeout, exited, stop, func() {}, out.String)
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("django runserver output:\n%s", djangoTail(out.String(), 8000))
		}
	})
	return "http://" + addr
}

// djangoTail keeps the end of a long log, where the failure usually is.
func djangoTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := s[len(s)-n:]
	if i := strings.IndexByte(cut, '\n'); i >= 0 {
		cut = cut[i+1:]
	}
	return fmt.Sprintf("[... %d bytes before]\n%s", len(s)-len(cut), cut)
}

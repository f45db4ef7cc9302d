package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// daphneStopTimeout bounds the graceful stop after SIGTERM before the
// process is killed.
const daphneStopTimeout = 10 * time.Second

// StartDaphne runs the reference Django project's ASGI application
// (refsite.asgi:application: Django's HTTP views and the Channels consumers)
// under Daphne, `python3 -m daphne -b 127.0.0.1 -p PORT`, from compat/django
// on a free port, and returns its address, 127.0.0.1:PORT. The server is
// stopped when the test ends, and its output is logged if the test failed.
//
// env adds KEY=VALUE settings on top of the process environment: a Python
// stack's Env to pick its libraries, and the project's settings, such as
// REDIS_URL and LAYER_KEYS for the channel layer (refsite/settings.py
// documents them). The defaults are DJANGO_SETTINGS_MODULE=refsite.settings
// and DJANGO_DB_PATH in the test's temporary directory. Without Debian's
// Python, Django, Channels and Daphne the test is skipped, or fails in CI.
func StartDaphne(t testing.TB, env ...string) (addr string) {
	t.Helper()
	RequirePython(t, "django", "channels", "daphne")
	dir := filepath.Join(RepoRoot(), DjangoDir)
	if _, err := os.Stat(filepath.Join(dir, "refsite", "asgi.py")); err != nil {
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

	port := FreePort(t)
	addr = "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(Python, "-m", "daphne", "-b", "127.0.0.1", "-p", strconv.Itoa(port), "refsite.asgi:application")
	cmd.Dir = dir
	cmd.Env = procEnv
	out := &djangoOutput{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start daphne: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// SIGTERM lets Daphne close its sockets; a stuck one is killed.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(daphneStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	waitListening(t, "daphne", addr, djangoStartTimeout, exited, stop, func() { stopped = true },
		func() string { return djangoTail(out.String(), 8000) })
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("daphne output:\n%s", djangoTail(out.String(), 8000))
		}
	})
	return addr
}

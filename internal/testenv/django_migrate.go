package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MigrateDjango runs `manage.py migrate` for the reference Django project
// (compat/django) with env on top of the process environment: a Python
// stack's Env and the project's settings, DJANGO_DB_PATH above all. It
// prepares a database for a server that does not migrate by itself, such
// as StartDaphne, which must then be given the same DJANGO_DB_PATH.
// Without Debian's Python and Django the test is skipped, or fails in CI.
func MigrateDjango(t testing.TB, env ...string) {
	t.Helper()
	RequirePython(t, "django", "channels")
	dir := filepath.Join(RepoRoot(), DjangoDir)
	manage := filepath.Join(dir, "manage.py")
	if _, err := os.Stat(manage); err != nil {
		t.Fatalf("reference Django project: %v", err)
	}
	base := []string{
		"DJANGO_SETTINGS_MODULE=refsite.settings",
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
	}
	cmd := exec.Command(Python, manage, "migrate", "--noinput", "-v", "0")
	cmd.Dir = dir
	// Later entries win in exec, so the caller's settings override ours.
	cmd.Env = append(append(os.Environ(), base...), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("django migrate: %v\n%s", err, out)
	}
}

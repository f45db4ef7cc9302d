package compat

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// TestKibrayDjangoUnitTests runs the kibray app's own Django tests
// (compat/django/kibray/tests.py: text cleaning, rolling rate limits,
// hook answers, credential re-checks, the test API switch) on both Python
// stacks.
func TestKibrayDjangoUnitTests(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := st.Command(ctx, filepath.Join(testenv.RepoRoot(), testenv.DjangoDir, "manage.py"), "test", "kibray", "-v", "2")
		cmd.Dir = filepath.Join(testenv.RepoRoot(), testenv.DjangoDir)
		cmd.Env = append(cmd.Env,
			"DJANGO_SETTINGS_MODULE=refsite.settings",
			"DJANGO_DB_PATH="+filepath.Join(t.TempDir(), "kibray-unit.sqlite3"),
			"PYTHONDONTWRITEBYTECODE=1",
			// The tests choose their own settings; none may leak in.
			"SESSION_ENGINE=django.contrib.sessions.backends.db",
			"REDIS_URL=",
			"KIBRAY_TEST_API=0",
		)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "\nOK") {
			t.Fatalf("manage.py test kibray: %v\n%s", err, out)
		}
	})
}

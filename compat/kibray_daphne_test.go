package compat

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// Settings shared by every Django process of the Kibray tests; the
// sidecar is given the same values (see kibraySidecarEnv).
const (
	kibraySecretKey     = "kibray-differential-secret-key-for-tests-only"
	kibrayHookSecret    = "kibray-differential-hook-secret"
	kibraySessionEngine = "django.contrib.sessions.backends.signed_cookies"
)

// kibrayDjangoEnv is the environment of a Django process (Daphne or
// runserver) serving the kibray app: the stack's libraries, its own
// database and channel layer, the test API switched on, signed-cookie
// sessions (which the sidecar verifies with the same SECRET_KEY) and the
// hook secret.
func kibrayDjangoEnv(st testenv.PyStack, redisURL, dbPath string) []string {
	env := append([]string(nil), st.Env...)
	return append(env,
		"DJANGO_DB_PATH="+dbPath,
		"REDIS_URL="+redisURL,
		"SECRET_KEY="+kibraySecretKey,
		"SESSION_ENGINE="+kibraySessionEngine,
		"SIDECAR_HOOK_SECRETS="+kibrayHookSecret,
		"KIBRAY_TEST_API=1",
	)
}

// startKibrayDaphne runs the reference: Daphne serving refsite.asgi (the
// kibray consumers and Django's HTTP views) on a migrated database of its
// own, with a Redis of its own.
func startKibrayDaphne(t *testing.T, st testenv.PyStack) kibrayTarget {
	t.Helper()
	redis := testenv.StartRedis(t)
	env := kibrayDjangoEnv(st, redis.URL(), filepath.Join(t.TempDir(), "kibray-daphne.sqlite3"))
	testenv.MigrateDjango(t, env...)
	addr := testenv.StartDaphne(t, env...)
	return kibrayTarget{Name: "daphne", WS: kibrayWSBase(addr), Django: "http://" + addr}
}

// TestKibrayScenariosOnDaphne runs every scenario twice against Daphne
// serving the reference consumers, on both Python stacks: the two runs
// must agree (the harness and the scenarios are deterministic) and match
// the transcripts written by hand in each scenario file (the reference
// consumers do what the product decisions say).
func TestKibrayScenariosOnDaphne(t *testing.T) {
	scenarios := loadKibrayScenarios(t)
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		target := startKibrayDaphne(t, st)
		for _, sc := range scenarios {
			t.Run(sc.Name, func(t *testing.T) {
				want, err := sc.expected()
				if err != nil {
					t.Fatal(err)
				}
				first := runKibrayScenario(t, target, sc)
				second := runKibrayScenario(t, target, sc)
				for i, run := range []*kibrayRun{first, second} {
					if run.Problem != "" {
						t.Errorf("run %d stopped at %s; transcripts:\n%s", i+1, run.Problem, kibrayExpectedJSON(run.Normalized))
					}
				}
				if d := diffKibrayTranscripts("first run", first.Normalized, "second run", second.Normalized); d != "" {
					t.Errorf("two runs on Daphne disagree:\n%s", d)
				}
				if d := diffKibrayTranscripts("expected", want, "daphne", first.Normalized); d != "" {
					t.Errorf("Daphne does not give the expected transcripts:\n%s", d)
				}
			})
		}
	})
}

// TestKibrayScenarioFiles checks every scenario file without running it:
// it parses, it is consistent, and together the files cover all ten
// routes and every kind of step.
func TestKibrayScenarioFiles(t *testing.T) {
	scenarios := loadKibrayScenarios(t)
	routes := map[string]bool{}
	steps := map[string]bool{}
	for _, sc := range scenarios {
		for _, c := range sc.Clients {
			if r := kibrayRouteOf(c.Path); r != "" {
				routes[r] = true
			} else {
				t.Errorf("%s: client %s: path %s is none of the ten routes", sc.Name, c.Name, c.Path)
			}
		}
		for i := range sc.Steps {
			steps[sc.Steps[i].kind()] = true
		}
	}
	for _, r := range kibrayRoutes {
		if !routes[r.name] {
			t.Errorf("no scenario covers %s", r.name)
		}
	}
	for _, k := range []string{"connect", "send", "wait", "publish", "django", "sleep", "close"} {
		if !steps[k] {
			t.Errorf("no scenario has a %s step", k)
		}
	}
}

// kibrayExpectedJSON renders a normalized run the way scenario files hold
// expectations, for a failure message that can be compared by eye.
func kibrayExpectedJSON(run map[string][]any) string {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(run); err != nil {
		return err.Error()
	}
	return sb.String()
}

package compat

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// kibrayExampleConfig is the sidecar configuration that replaces Daphne
// for the kibray app, relative to the module root.
const kibrayExampleConfig = "docs/examples/kibray.yaml"

// kibraySidecarEnv is the environment a sidecar serving the kibray app is
// started with; its configuration file refers to these variables:
//
//	SIDECAR_REDIS_URL    the channel layer's Redis (Django's REDIS_URL)
//	SIDECAR_UPSTREAM     Django, for every non-WebSocket request
//	SIDECAR_HOOKS_URL    Django's base URL for the hook views (/internal/ws/...)
//	SIDECAR_HOOK_SECRET  the secret that signs hook calls (Django's SIDECAR_HOOK_SECRETS)
//	DJANGO_SECRET_KEY    Django's SECRET_KEY (signed-cookie sessions, simplejwt tokens)
//
// SIDECAR_LISTEN is set by startSidecar.
func kibraySidecarEnv(redisURL, django string) []string {
	return []string{
		"SIDECAR_REDIS_URL=" + redisURL,
		"SIDECAR_UPSTREAM=" + django,
		"SIDECAR_HOOKS_URL=" + django,
		"SIDECAR_HOOK_SECRET=" + kibrayHookSecret,
		"DJANGO_SECRET_KEY=" + kibraySecretKey,
	}
}

// startKibraySidecar runs the sidecar with sidecarConfig in front of a
// Django of its own (runserver on a migrated database, serving the hook
// views and the test API) and a Redis of its own.
func startKibraySidecar(t *testing.T, st testenv.PyStack, sidecarConfig string) kibrayTarget {
	t.Helper()
	redis := testenv.StartRedis(t)
	env := kibrayDjangoEnv(st, redis.URL(), filepath.Join(t.TempDir(), "kibray-sidecar.sqlite3"))
	django := testenv.StartDjango(t, env...)
	s := startSidecar(t, sidecarConfig, kibraySidecarEnv(redis.URL(), django)...)
	return kibrayTarget{Name: "sidecar", WS: kibrayWSBase(s.addr), Django: django}
}

// runKibrayDifferential runs every scenario against Daphne serving the
// reference consumers and against the sidecar started with sidecarConfig
// (each with its own Django, database and Redis, on the Python stack st),
// and fails a scenario whose normalized transcripts differ between the
// two: every client must receive the same frames in the same order and
// see the same handshake refusals and close codes.
func runKibrayDifferential(t *testing.T, st testenv.PyStack, sidecarConfig string) {
	t.Helper()
	scenarios := loadKibrayScenarios(t)
	daphne := startKibrayDaphne(t, st)
	sidecar := startKibraySidecar(t, st, sidecarConfig)
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			ref := runKibrayScenario(t, daphne, sc)
			if ref.Problem != "" {
				t.Fatalf("the reference run on Daphne stopped at %s", ref.Problem)
			}
			got := runKibrayScenario(t, sidecar, sc)
			d := diffKibrayTranscripts("daphne", ref.Normalized, "sidecar", got.Normalized)
			if got.Problem != "" {
				d = "the script stopped on the sidecar at " + got.Problem + "\n" + d
			}
			if d != "" {
				t.Errorf("%s\nthe sidecar differs from Daphne:\n%s", sc.Description, d)
			}
		})
	}
}

// TestKibrayDifferential proves that the sidecar configured by
// docs/examples/kibray.yaml can replace Daphne for the kibray app: every
// scenario gives the same transcripts on both, on both Python stacks. It
// is skipped only while that file does not exist.
func TestKibrayDifferential(t *testing.T) {
	cfg := filepath.Join(testenv.RepoRoot(), kibrayExampleConfig)
	if _, err := os.Stat(cfg); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s does not exist yet: the sidecar side of the differential test waits for it", kibrayExampleConfig)
	} else if err != nil {
		t.Fatal(err)
	}
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		runKibrayDifferential(t, st, cfg)
	})
}

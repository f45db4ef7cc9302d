package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stackModules are the libraries whose releases distinguish the stacks.
var stackModules = []string{"django", "channels", "channels_redis", "daphne", "rest_framework_simplejwt"}

// wantSeries is the major.minor each stack must report for stackModules.
var wantSeries = map[string]map[string]string{
	StackDebian12: {
		"django": "3.2", "channels": "4.0", "channels_redis": "4.0", "daphne": "4.0", "rest_framework_simplejwt": "5.2",
	},
	StackCurrent: {
		"django": "5.2", "channels": "4.3", "channels_redis": "4.3", "daphne": "4.2", "rest_framework_simplejwt": "5.5",
	},
}

// majorMinor returns the first two dot-separated parts of a version.
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func TestPythonStacksReportExpectedVersions(t *testing.T) {
	stacks := PythonStacks(t, stackModules...)
	if len(stacks) != 2 || stacks[0].Name != StackDebian12 || stacks[1].Name != StackCurrent {
		t.Fatalf("stacks = %+v, want %s then %s", stacks, StackDebian12, StackCurrent)
	}
	for _, s := range stacks {
		want := wantSeries[s.Name]
		for _, m := range stackModules {
			if got := majorMinor(s.Versions[m]); got != want[m] {
				t.Errorf("%s stack: %s version %q, want %s.x", s.Name, m, s.Versions[m], want[m])
			}
		}
		t.Logf("%s stack: %v", s.Name, s.Versions)
	}
}

func TestPythonStacksImportFromTheirOwnFolders(t *testing.T) {
	stacks := PythonStacks(t, "django")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wantDir := map[string]string{
		StackDebian12: "/usr/lib/python3/dist-packages",
		StackCurrent:  CurrentStackPath(CurrentStackDir()),
	}
	script := "import django, channels_redis, rest_framework_simplejwt, msgpack\n" +
		"for m in (django, channels_redis, rest_framework_simplejwt, msgpack): print(m.__file__)\n"
	for _, s := range stacks {
		out := strings.Fields(string(s.Run(ctx, t, nil, "-c", script)))
		if len(out) != 4 {
			t.Fatalf("%s stack printed %q, want four module files", s.Name, out)
		}
		for _, f := range out[:3] {
			if !within(wantDir[s.Name], f) {
				t.Errorf("%s stack imported %s, want it under %s", s.Name, f, wantDir[s.Name])
			}
		}
		// Unstable's msgpack is compiled for a newer Python, so both stacks
		// must use Debian 12's.
		if !within("/usr/lib/python3/dist-packages", out[3]) {
			t.Errorf("%s stack imported msgpack from %s, want Debian 12's", s.Name, out[3])
		}
	}
}

func TestPythonStacksCacheHandsOutCopies(t *testing.T) {
	first := PythonStacks(t, "django")
	for _, s := range first {
		s.Versions["django"] = "changed by the caller"
	}
	for _, s := range PythonStacks(t, "django") {
		if s.Versions["django"] == "changed by the caller" {
			t.Errorf("%s stack: a caller's change to Versions reached the cache", s.Name)
		}
	}
}

func TestPyStackRunPassesStdinArgsAndEnv(t *testing.T) {
	RequirePython(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := PyStack{Name: "probe", Env: []string{"SIDECAR_STACK_PROBE=from-env"}}
	script := "import os, sys\nprint(sys.argv[1], os.environ['SIDECAR_STACK_PROBE'], sys.stdin.read())\n"
	out := s.Run(ctx, t, []byte("data-from-stdin"), "-c", script, "arg1")
	want := "arg1 from-env data-from-stdin\n"
	if string(out) != want {
		t.Fatalf("Run printed %q, want %q", out, want)
	}
}

// recorder is a testing.TB that notes Fatal and Skip calls instead of
// stopping the goroutine, so that failure paths can be checked.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Fatal(args ...any)                 { r.fatal = fmt.Sprint(args...) }
func (r *recorder) FailNow()                          { r.fatal = "FailNow" }
func (r *recorder) Skip(args ...any)                  { r.skip = fmt.Sprint(args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }
func (r *recorder) SkipNow()                          { r.skip = "SkipNow" }

func TestPyStackRunFailureNamesStackAndStderr(t *testing.T) {
	RequirePython(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := &recorder{TB: t}
	out := PyStack{Name: StackCurrent}.Run(ctx, rec, nil, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)")
	if out != nil {
		t.Errorf("Run returned %q after a failure, want nil", out)
	}
	for _, want := range []string{"current stack", "exit status 3", "boom"} {
		if !strings.Contains(rec.fatal, want) {
			t.Errorf("failure %q does not mention %q", rec.fatal, want)
		}
	}
}

func TestPythonStacksMissingCurrentStack(t *testing.T) {
	RequirePython(t, "django")
	empty := t.TempDir()
	half := t.TempDir()
	// A folder whose marker exists but whose packages are gone must not
	// pass for the current stack by falling back to Debian 12's Django.
	if err := os.WriteFile(filepath.Join(half, currentStackMarker), []byte("# test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(CurrentStackPath(half), "django"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(CurrentStackPath(half), "django", "__init__.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dir, ci string
		wantFatal     bool
		wantText      string
	}{
		{"laptop skips", empty, "", false, "not unpacked"},
		{"ci fails", empty, "true", true, "not unpacked"},
		{"half unpacked skips", half, "", false, "has no version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(CurrentStackDirEnv, c.dir)
			t.Setenv("CI", c.ci)
			rec := &recorder{TB: t}
			if got := PythonStacks(rec, "django"); got != nil {
				t.Errorf("PythonStacks returned %+v for a missing stack, want nil", got)
			}
			msg := rec.skip
			if c.wantFatal {
				msg = rec.fatal
				if rec.skip != "" {
					t.Errorf("skipped in CI: %q", rec.skip)
				}
			} else if rec.fatal != "" {
				t.Errorf("failed outside CI: %q", rec.fatal)
			}
			for _, want := range []string{CurrentStackHint, c.wantText} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not mention %q", msg, want)
				}
			}
		})
	}
}

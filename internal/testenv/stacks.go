package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Names of the Python stacks that compatibility tests run against.
const (
	// StackDebian12 is Debian 12's own packages (Django 3.2, channels 4.0,
	// channels_redis 4.0, daphne 4.0, simplejwt 5.2), installed system-wide.
	StackDebian12 = "debian12"
	// StackCurrent is the current releases (Django 5.2, channels 4.3,
	// channels_redis 4.3, daphne 4.2, redis-py 6, simplejwt 5.5), unpacked
	// from Debian unstable's packages into a private folder and put in front
	// of the system's through PYTHONPATH.
	StackCurrent = "current"
)

// CurrentStackDirEnv names the environment variable that overrides where
// scripts/install-current-stack.sh unpacks the current stack.
const CurrentStackDirEnv = "SIDECAR_PYSTACK_DIR"

// CurrentStackHint names the script that unpacks the current stack.
const CurrentStackHint = "run scripts/install-current-stack.sh"

// currentStackMarker is written by the install script once the unpacked
// stack has imported cleanly; without it the folder may be half-written.
const currentStackMarker = "STACK"

// stackProbeTimeout bounds the import of a stack's modules; Django's
// imports take a few seconds on a loaded two-core machine.
const stackProbeTimeout = 60 * time.Second

// DefaultStackModules returns the modules whose versions PythonStacks
// reports when a test names none.
func DefaultStackModules() []string {
	return []string{"django", "channels", "channels_redis", "daphne", "redis", "rest_framework_simplejwt", "jwt"}
}

// PyStack is one set of Python libraries run by Debian 12's interpreter
// (/usr/bin/python3); the stacks differ only in the environment that
// selects the libraries.
type PyStack struct {
	// Name is StackDebian12 or StackCurrent.
	Name string
	// Env is added to the process environment of every run, for example
	// PYTHONPATH=... for the current stack; later entries win.
	Env []string
	// Versions maps each probed module to its version as the stack imports
	// it (for example "django" to "5.2.18").
	Versions map[string]string
}

// CurrentStackDir returns the folder that scripts/install-current-stack.sh
// unpacks into: $SIDECAR_PYSTACK_DIR, or
// $HOME/.cache/channels-sidecar/pystack-current. It is empty when neither
// is known.
func CurrentStackDir() string {
	if d := os.Getenv(CurrentStackDirEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".cache", "channels-sidecar", "pystack-current")
}

// CurrentStackPath returns the PYTHONPATH entry of the current stack in dir.
func CurrentStackPath(dir string) string {
	return filepath.Join(dir, "usr", "lib", "python3", "dist-packages")
}

// PythonStacks returns the Debian 12 stack and the current stack, in that
// order, each with the versions of the given modules (DefaultStackModules
// when none are given); each module must have __version__ or distribution
// metadata. A stack that is absent, or cannot import a module or tell its
// version, skips the test on a developer's machine and fails it when CI=true, with
// the command that installs it. Versions are probed once per process.
func PythonStacks(t testing.TB, modules ...string) []PyStack {
	t.Helper()
	RequireCommand(t, Python)
	if len(modules) == 0 {
		modules = DefaultStackModules()
	}

	debian := PyStack{Name: StackDebian12}
	v, err := stackVersions(debian, modules, "")
	if err != nil {
		Missing(t, "%s stack: %v", StackDebian12, err)
		return nil
	}
	debian.Versions = v

	dir := CurrentStackDir()
	if dir == "" {
		missingCurrentStack(t, "no folder for it: set %s or HOME", CurrentStackDirEnv)
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, currentStackMarker)); err != nil {
		missingCurrentStack(t, "not unpacked in %s", dir)
		return nil
	}
	current := PyStack{Name: StackCurrent, Env: []string{"PYTHONPATH=" + currentPythonPath(dir)}}
	v, err = stackVersions(current, modules, CurrentStackPath(dir))
	if err != nil {
		missingCurrentStack(t, "in %s: %v", dir, err)
		return nil
	}
	current.Versions = v
	return []PyStack{debian, current}
}

// currentPythonPath puts the private folder first and keeps any PYTHONPATH
// the caller already had after it, so that the folder's Django wins over
// every other copy.
func currentPythonPath(dir string) string {
	p := CurrentStackPath(dir)
	if old := os.Getenv("PYTHONPATH"); old != "" {
		p += string(os.PathListSeparator) + old
	}
	return p
}

// missingCurrentStack is Missing with the hint that installs the current
// stack rather than the system packages.
func missingCurrentStack(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("%s python stack: ", StackCurrent) + fmt.Sprintf(format, args...) + " (" + CurrentStackHint + ")"
	if InCI() {
		t.Fatalf("missing dependency in CI: %s", msg)
		return
	}
	t.Skip("missing dependency: " + msg)
}

// Command returns an exec.Cmd that runs Debian's Python with args in this
// stack's environment, for processes a test starts and stops itself.
func (s PyStack) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, Python, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	return cmd
}

// Run runs Debian's Python with args in this stack's environment, feeding
// stdin when it is not nil, and returns stdout. A non-zero exit fails the
// test with the stack's name and stderr.
func (s PyStack) Run(ctx context.Context, t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := s.Command(ctx, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python (%s stack) %s: %v\nstderr:\n%s\nstdout:\n%s", s.Name, strings.Join(args, " "), err, stderr.String(), stdout.String())
		return nil
	}
	return stdout.Bytes()
}

// versionProbe imports each module named on the command line and prints a
// JSON object of their versions and source files. __version__ is preferred;
// a module without one (or with a tuple, like msgpack's) falls back to the
// metadata of its distribution in the same sys.path entry as its code, so
// that another copy's metadata cannot lend it a version.
const versionProbe = `
import importlib, json, os, sys
from importlib import metadata
out, dists = {}, None
for name in sys.argv[1:]:
    mod = importlib.import_module(name)
    v = getattr(mod, "__version__", None)
    if isinstance(v, tuple):
        v = ".".join(map(str, v))
    if not isinstance(v, str) or not v:
        v = ""
        top = importlib.import_module(name.split(".")[0])
        f = getattr(top, "__file__", None)
        if f:
            entry = os.path.dirname(f)
            if os.path.basename(f) == "__init__.py":
                entry = os.path.dirname(entry)
            if dists is None:
                dists = metadata.packages_distributions()
            for d in dists.get(top.__name__, []):
                found = list(metadata.distributions(name=d, path=[entry]))
                if found:
                    v = found[0].version
                    break
    out[name] = {"version": v if isinstance(v, str) else "", "file": getattr(mod, "__file__", None) or ""}
json.dump(out, sys.stdout)
`

// stackProbe is the cached outcome of one version probe.
type stackProbe struct {
	once     sync.Once
	versions map[string]string
	err      error
}

// stackProbes caches probes per stack environment and module set for the
// life of the test binary, since each probe imports Django.
var stackProbes sync.Map // key string -> *stackProbe

// stackVersions returns a copy of the probed versions of modules in s. When
// private is set, a module that the private folder holds must be imported
// from there: a copy found first elsewhere would test the wrong release.
func stackVersions(s PyStack, modules []string, private string) (map[string]string, error) {
	sorted := append([]string(nil), modules...)
	sort.Strings(sorted)
	key := s.Name + "\x00" + strings.Join(s.Env, "\x00") + "\x00" + strings.Join(sorted, ",")
	p, _ := stackProbes.LoadOrStore(key, &stackProbe{})
	probe := p.(*stackProbe)
	probe.once.Do(func() {
		probe.versions, probe.err = probeVersions(s, sorted, private)
	})
	if probe.err != nil {
		return nil, probe.err
	}
	out := make(map[string]string, len(probe.versions))
	for k, v := range probe.versions {
		out[k] = v
	}
	return out, nil
}

// probeVersions imports modules in s and reads their versions.
func probeVersions(s PyStack, modules []string, private string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stackProbeTimeout)
	defer cancel()
	cmd := s.Command(ctx, append([]string{"-c", versionProbe}, modules...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("import %s: %w: %s", strings.Join(modules, ", "), err, lastLine(stderr.String()))
	}
	var found map[string]struct {
		Version string `json:"version"`
		File    string `json:"file"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &found); err != nil {
		return nil, fmt.Errorf("read module versions %q: %w", stdout.String(), err)
	}
	versions := make(map[string]string, len(found))
	for _, m := range modules {
		f, ok := found[m]
		if !ok {
			return nil, fmt.Errorf("module %s missing from the probe's answer", m)
		}
		if private != "" && holds(private, m) && !within(private, f.File) {
			return nil, fmt.Errorf("module %s imported from %s, not from %s", m, f.File, private)
		}
		if f.Version == "" {
			return nil, fmt.Errorf("module %s (%s) has no version", m, f.File)
		}
		versions[m] = f.Version
	}
	return versions, nil
}

// holds reports whether the folder dir contains the top-level package or
// module of the dotted module name. A folder without __init__.py does not
// count: daphne ships twisted/plugins/ alone, and twisted itself rightly
// comes from the system.
func holds(dir, module string) bool {
	top, _, _ := strings.Cut(module, ".")
	if _, err := os.Stat(filepath.Join(dir, top, "__init__.py")); err == nil {
		return true
	}
	_, err := os.Stat(filepath.Join(dir, top+".py"))
	return err == nil
}

// within reports whether file lies under dir, both cleaned of symlinks
// where possible.
func within(dir, file string) bool {
	if file == "" {
		return false
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	if f, err := filepath.EvalSymlinks(file); err == nil {
		file = f
	}
	rel, err := filepath.Rel(dir, file)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// lastLine returns the last non-empty line of a traceback, which names the
// failing import.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

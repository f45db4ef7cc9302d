package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostgresSuperuser is the superuser that StartPostgres creates; it
// connects without a password over 127.0.0.1 and the socket.
const PostgresSuperuser = "postgres"

// postgresStartTimeout bounds initdb plus the wait for the port; initdb
// takes a few seconds on a loaded two-core machine.
const postgresStartTimeout = 90 * time.Second

// Postgres is a PostgreSQL server started for one test, with its data
// directory and unix socket in a private temporary folder.
type Postgres struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// SocketDir holds the server's unix socket.
	SocketDir string
	bin       string
	t         testing.TB
}

// Host is the server's TCP address without the port.
func (p *Postgres) Host() string { return "127.0.0.1" }

// DSN returns a postgres:// URL for database name as the superuser.
func (p *Postgres) DSN(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", PostgresSuperuser, p.Port, name)
}

// CreateDatabase creates an empty database and returns its name.
func (p *Postgres) CreateDatabase(name string) string {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port),
		"-U", PostgresSuperuser, name)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("createdb %s: %v\n%s", name, err, out)
	}
	return name
}

// postgresBinDir returns the bin folder of the newest PostgreSQL that
// Debian's postgresql package installed, or "" if there is none.
func postgresBinDir() string {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return ""
	}
	sort.Slice(found, func(i, j int) bool { return pgMajor(found[i]) < pgMajor(found[j]) })
	return filepath.Dir(found[len(found)-1])
}

// pgMajor reads the version folder of a /usr/lib/postgresql/N/bin path.
func pgMajor(p string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return n
}

// StartPostgres runs initdb into a fresh temporary folder and starts a
// postgres server on a free port of 127.0.0.1, with trust authentication
// for PostgresSuperuser and fsync off. PostgreSQL refuses to run as root,
// so as root the server runs as Debian's postgres user, which owns the
// folder. The server is stopped and the folder removed when the test
// ends. Without Debian's postgresql package the test is skipped, or fails
// in CI.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBinDir()
	if bin == "" {
		Missing(t, "PostgreSQL server (/usr/lib/postgresql/*/bin/initdb) not installed")
		return nil
	}
	cred, owner, err := postgresCredential()
	if err != nil {
		Missing(t, "PostgreSQL cannot run as root without the postgres user: %v", err)
		return nil
	}
	// Not t.TempDir: its parents are private to root, and the server may
	// run as another user, who can always reach /tmp but maybe not $TMPDIR.
	base := ""
	if owner != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "sidecar-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{dir, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != nil {
			if err := os.Chown(d, owner.uid, owner.gid); err != nil {
				t.Fatalf("chown %s: %v", d, err)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), postgresStartTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", PostgresSuperuser,
		"--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	p := &Postgres{Port: FreePort(t), SocketDir: sock, bin: bin, t: t}
	out := &djangoOutput{}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(p.Port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "synchronous_commit=off", "-c", "max_connections=40", "-c", "shared_buffers=16MB")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// SIGINT is PostgreSQL's fast shutdown: it ends sessions and exits.
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	ready := make(chan error, 1)
	go func() { ready <- WaitTCP(fmt.Sprintf("127.0.0.1:%d", p.Port), postgresStartTimeout) }()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			t.Fatalf("postgres on port %d: %v\n%s", p.Port, err, out.String())
		}
	case err := <-exited:
		t.Fatalf("postgres exited before listening: %v\n%s", err, out.String())
	}
	// Cleanups run last-in first-out: the server stops before its folder
	// is removed.
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("postgres output:\n%s", djangoTail(out.String(), 4000))
		}
	})
	if err := p.waitReady(); err != nil {
		t.Fatalf("postgres not ready: %v\n%s", err, out.String())
	}
	return p
}

// waitReady waits until the server accepts queries: the port opens a
// moment before startup recovery ends.
func (p *Postgres) waitReady() error {
	deadline := time.Now().Add(postgresStartTimeout)
	for {
		cmd := exec.Command(filepath.Join(p.bin, "pg_isready"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port),
			"-U", PostgresSuperuser, "-d", "postgres")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pg_isready: %v: %s", err, strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type fileOwner struct{ uid, gid int }

// postgresCredential returns the credential to run the server with: none
// (the current user) unless this process is root, then Debian's postgres
// user.
func postgresCredential() (*syscall.Credential, *fileOwner, error) {
	if os.Geteuid() != 0 {
		return nil, nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("postgres user has ids %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true},
		&fileOwner{uid: uid, gid: gid}, nil
}

package deploy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
)

// hostileArgs are arguments a shell would mangle if quoting were wrong.
var hostileArgs = []string{
	"plain", "", "two words", "  padded  ", `it's`, `"double"`, `'single'`, `\`, `\'`,
	"$HOME", "${PATH}", "$(id)", "`id`", "a;b", "a && b", "a|b", "a>b", "<in", "*", "?", "[ab]", "~root",
	"#comment", "-n", "--", "=zsh", "!bang", "tab\there", "new\nline", "trailing\n", "ü€", "%C",
}

func TestShellJoinRoundTrip(t *testing.T) {
	t.Parallel()
	// The shell's split of the joined line must be argv again.
	out, err := exec.Command("/bin/sh", "-c", "printf '%s\\0' "+ShellJoin(hostileArgs)).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, hostileArgs) {
		t.Errorf("sh split ShellJoin back into\n%q\nwant\n%q", got, hostileArgs)
	}
	for in, want := range map[string]string{"abc": "abc", "/nix/store/x-y.z": "/nix/store/x-y.z", "": "''", "a b": "'a b'", "it's": `'it'\''s'`, "=x": "'=x'"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSSHDestination(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		target string
		want   []string
		err    string
	}{
		{"root@host", []string{"root@host"}, ""},
		{"host", []string{"host"}, ""},
		{"root@10.0.0.1:2222", []string{"-p", "2222", "root@10.0.0.1"}, ""},
		{"admin@[2001:db8::1]:22", []string{"-p", "22", "admin@2001:db8::1"}, ""},
		{"root@2001:db8::1", []string{"root@2001:db8::1"}, ""},
		{"root@[::1]", []string{"root@::1"}, ""},
		{"root@host:0", nil, "bad port"},
		{"root@host:x", nil, "bad port"},
		{"root@", nil, "no host"},
		{"@host", nil, "empty user"},
		{"-oProxyCommand=x", nil, "must not start with -"},
		{"root@-oProxyCommand=x", nil, "must not start with -"},
		{"root@host name", nil, "whitespace"},
		{"root@[::1", nil, "missing ]"},
		{"root@web.example.", []string{"root@web.example."}, ""},
		{"deploy_user@web-1.example:2222", []string{"-p", "2222", "deploy_user@web-1.example"}, ""},
		{"root@[fe80::1%eth0]:22", []string{"-p", "22", "root@fe80::1%eth0"}, ""},
		{"root@web;id", nil, "shell metacharacters"},
		{"root@web$(id)", nil, "shell metacharacters"},
		{"root@web|x", nil, "shell metacharacters"},
		{"root@web\x00", nil, "shell metacharacters"},
		{"root@web/x", nil, "shell metacharacters"},
		{"root@a@b", nil, "bad host"},
		{"root@web.-x", nil, "bad host"},
		{"root@web..x", nil, "bad host"},
		{".x@web", nil, "bad user"},
		{"root@[web]:22", nil, "bad IPv6"},
		{"root@[10.0.0.1]", nil, "bad IPv6"},
		{"root@web%x", nil, "bad host"},
		{"root@web:022", nil, "bad port"},
		{"root@web:+22", nil, "shell metacharacters"},
		{"root@[::1]x", nil, "want [address]:port"},
	} {
		got, err := sshDestination(tc.target)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.target, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.target, got, err, tc.want)
		}
	}
}

func sshRunner(t *testing.T, srv *sshtest.Server) *SSHRunner {
	r := &SSHRunner{Options: srv.ClientOptions(), ControlDir: srv.ControlDir()}
	t.Cleanup(r.Close)
	return r
}

func TestRemote(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	r := sshRunner(t, srv)
	ctx := context.Background()

	t.Run("hostile arguments arrive intact", func(t *testing.T) {
		var out bytes.Buffer
		argv := append([]string{"printf", `%s\0`}, hostileArgs...)
		if err := r.Remote(ctx, srv.Target(), argv, IO{Stdout: &out}); err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00")
		if !reflect.DeepEqual(got, hostileArgs) {
			t.Errorf("remote argv\n%q\nwant\n%q", got, hostileArgs)
		}
	})

	t.Run("exit codes and stderr", func(t *testing.T) {
		var stderr bytes.Buffer
		argv := []string{"sh", "-c", "echo first >&2; echo 'it broke; badly' >&2; exit 7"}
		err := r.Remote(ctx, srv.Target(), argv, IO{Stderr: &stderr})
		var ce *CommandError
		if !errors.As(err, &ce) || ce.ExitCode != 7 {
			t.Fatalf("err = %v, want exit status 7", err)
		}
		msg := err.Error()
		for _, want := range []string{"ssh " + srv.Target() + " sh -c ", "exit status 7", "first", "it broke; badly"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, "could not reach") {
			t.Errorf("exit 7 blamed on ssh: %q", msg)
		}
		if stderr.String() != "first\nit broke; badly\n" {
			t.Errorf("stderr = %q", stderr.String())
		}
	})

	t.Run("stdin", func(t *testing.T) {
		var out bytes.Buffer
		in := "line one\nline 'two' $x\n"
		if err := r.Remote(ctx, srv.Target(), []string{"cat"}, IO{Stdin: strings.NewReader(in), Stdout: &out}); err != nil {
			t.Fatal(err)
		}
		if out.String() != in {
			t.Errorf("cat echoed %q, want %q", out.String(), in)
		}
	})

	t.Run("cancel kills the command", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		// Cancel once the command runs (the host is this machine).
		started := filepath.Join(t.TempDir(), "started")
		go func() {
			defer cancel()
			waitFile(started)
		}()
		start := time.Now()
		err := r.Remote(ctx, srv.Target(), []string{"sh", "-c", `: > "$1"; exec sleep 60`, "sh", started}, IO{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("cancel took %s: the command was not killed", d)
		}
	})
}

func TestRemoteControlMaster(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	r := sshRunner(t, srv)
	ctx := context.Background()
	for i := range 3 {
		if err := r.Remote(ctx, srv.Target(), []string{"true"}, IO{}); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if n := srv.Logins(); n != 1 {
		t.Errorf("3 commands made %d logins, want 1 shared connection", n)
	}
	sockets, _ := filepath.Glob(filepath.Join(r.ControlDir, "*"))
	if len(sockets) != 1 {
		t.Fatalf("control sockets: %q, want one", sockets)
	}
	check := func() error {
		args := append(r.sshOptions(), "-O", "check", "-p", strconv.Itoa(srv.Port), srv.User+"@127.0.0.1")
		return exec.Command("ssh", args...).Run()
	}
	if err := check(); err != nil {
		t.Errorf("ssh -O check: %v", err)
	}

	// nix's ssh, given NIX_SSHOPTS (split at blanks, as nix does), rides
	// the same master.
	script := `exec ssh $NIX_SSHOPTS -p "$1" "$2" true`
	if err := r.Local(ctx, []string{"sh", "-c", script, "sh", strconv.Itoa(srv.Port), srv.User + "@127.0.0.1"}, IO{}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Logins(); n != 1 {
		t.Errorf("ssh with NIX_SSHOPTS logged in anew (%d logins)", n)
	}

	r.Close()
	if err := check(); err == nil {
		t.Error("master still answers after Close")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		sockets, _ = filepath.Glob(filepath.Join(r.ControlDir, "*"))
		if len(sockets) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control sockets left after Close: %q", sockets)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Many commands to one host at once, before any master exists: they race
// to become the master; the losers run without one, none fails.
func TestRemoteConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	r := &SSHRunner{Options: srv.ClientOptions(), ControlDir: filepath.Join(srv.ControlDir(), "new")}
	t.Cleanup(r.Close)
	const n = 12
	errs := make(chan error, n)
	for i := range n {
		go func() {
			var out bytes.Buffer
			err := r.Remote(context.Background(), srv.Target(), []string{"echo", strconv.Itoa(i)}, IO{Stdout: &out})
			if err == nil && out.String() != strconv.Itoa(i)+"\n" {
				err = errors.New("output " + strconv.Quote(out.String()))
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if err := r.Remote(context.Background(), srv.Target(), []string{"true"}, IO{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d commands at once: %d logins", n+1, srv.Logins())
}

func TestLocal(t *testing.T) {
	t.Parallel()
	stubs := sshtest.NewStubs(t)
	stubs.Record("nix")
	sys := stubs.StorePath("nixos-system-m1")
	stubs.Output("nix", sys+"\n")
	r := &SSHRunner{Env: stubs.Env(), Options: []string{"-o", "ConnectTimeout=3"}, ControlDir: "/tmp/cm"}
	ctx := context.Background()

	var out bytes.Buffer
	argv := append([]string{"nix", "build"}, hostileArgs...)
	if err := r.Local(ctx, argv, IO{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != sys+"\n" {
		t.Errorf("stdout = %q", out.String())
	}
	want := append([]string{filepath.Join(stubs.StubDir, "nix")}, argv[1:]...)
	if got := stubs.Calls("nix"); !reflect.DeepEqual(got, [][]string{want}) {
		t.Errorf("calls = %q\nwant %q", got, [][]string{want})
	}

	stubs.Fail("nix", 4)
	err := r.Local(ctx, []string{"nix", "copy", "--to", "ssh-ng://root@m1", sys}, IO{})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 4 || ce.Target != "" {
		t.Fatalf("err = %#v, want a local exit 4", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "nix copy --to ssh-ng://root@m1 "+sys+": exit status 4") ||
		!strings.Contains(msg, "sshtest stub failing") {
		t.Errorf("error = %q", msg)
	}

	// Programs run with the runner's NIX_SSHOPTS and Env.
	out.Reset()
	if err := r.Local(ctx, []string{"sh", "-c", `printf %s "$NIX_SSHOPTS"`}, IO{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if want := "-o ConnectTimeout=3 -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15 -o ServerAliveCountMax=3 -o ControlMaster=auto -o ControlPath=/tmp/cm/%C -o ControlPersist=60s"; !strings.HasSuffix(out.String(), want) {
		t.Errorf("NIX_SSHOPTS = %q, want it to end with %q", out.String(), want)
	}

	if err := r.Local(ctx, []string{"no-such-program-fleet"}, IO{}); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing program: err = %v", err)
	}
}

func TestLocalCancelKillsProcessGroup(t *testing.T) {
	t.Parallel()
	r := &SSHRunner{}
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the background sleep runs.
	go func() {
		defer cancel()
		waitFile(pidfile)
	}()
	start := time.Now()
	// The background sleep holds stdout: it must die too, and Local must
	// not wait for it (the sleep's 60s).
	var out bytes.Buffer
	err := r.Local(ctx, []string{"sh", "-c", `sleep 60 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait`, "sh", pidfile}, IO{Stdout: &out})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancel took %s: Local waited for the background sleep", d)
	}
	data, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		// A zombie until its reaper notices: check its state.
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background sleep %d survived the cancel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestControlDirTooLong(t *testing.T) {
	t.Parallel()
	r := &SSHRunner{ControlDir: "/" + strings.Repeat("d", 80)}
	err := r.Remote(context.Background(), "root@host", []string{"true"}, IO{})
	if err == nil || !strings.Contains(err.Error(), "too long for a Unix socket path") {
		t.Errorf("err = %v", err)
	}
}

func TestNixStoreURL(t *testing.T) {
	for _, tc := range []struct {
		target, url string
		opts        []string
		err         string
	}{
		{"root@web.zt", "ssh-ng://root@web.zt", nil, ""},
		{"web.zt", "ssh-ng://web.zt", nil, ""},
		{"root@127.0.0.1:2222", "ssh-ng://root@127.0.0.1", []string{"-p", "2222"}, ""},
		{"admin@[2001:db8::1]:22", "ssh-ng://admin@[2001:db8::1]", []string{"-p", "22"}, ""},
		{"root@[2001:db8::1]", "ssh-ng://root@[2001:db8::1]", nil, ""},
		{"root@web:0", "", nil, "bad port"},
	} {
		url, opts, err := NixStoreURL(tc.target)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NixStoreURL(%q): err %v, want %q", tc.target, err, tc.err)
			}
			continue
		}
		if err != nil || url != tc.url || !slices.Equal(opts, tc.opts) {
			t.Errorf("NixStoreURL(%q) = %q %q %v; want %q %q", tc.target, url, opts, err, tc.url, tc.opts)
		}
	}
}

// silentHost listens on loopback, accepts connections and never says a
// word: a host whose sshd hangs, or a firewall that accepts and drops.
func silentHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestRemoteSilentHostTimesOut: a host that accepts the connection and
// never speaks ssh fails the command within the connect timeout (master
// start and command each), naming the host and the timeout.
func TestRemoteSilentHostTimesOut(t *testing.T) {
	t.Parallel()
	target := "root@" + silentHost(t)
	control, err := os.MkdirTemp("", "fleet-ssh-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(control)
	r := &SSHRunner{ControlDir: control, ConnectTimeout: time.Second,
		Options: []string{"-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-F", "/dev/null"}}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err = r.Remote(ctx, target, []string{"true"}, IO{})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if ctx.Err() != nil {
		t.Fatalf("ran until the test's own deadline: %v", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "ssh "+target+": the connection timed out") {
		t.Fatalf("err = %v", err)
	}
}

// TestRemoteCancelDuringMasterStart: Ctrl-C while the master connection
// is being started ends the command at once, for the command that starts
// the master and for those waiting for it.
func TestRemoteCancelDuringMasterStart(t *testing.T) {
	t.Parallel()
	target := "root@" + silentHost(t)
	control, err := os.MkdirTemp("", "fleet-ssh-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(control)
	r := &SSHRunner{ControlDir: control, ConnectTimeout: time.Minute,
		Options: []string{"-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-F", "/dev/null"}}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- r.Remote(ctx, target, []string{"true"}, IO{}) }()
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want cancelled", err)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancelled after 300ms, returned after %v: waited for the connect timeout", d)
	}
}

// TestSSHTimeoutOptions: every ssh fleet starts (and nix's, through
// NIX_SSHOPTS) gets connect and keepalive timeouts, after the user's
// options, which win.
func TestSSHTimeoutOptions(t *testing.T) {
	got := NixSSHOpts(&SSHRunner{})
	for _, want := range []string{"-o ConnectTimeout=15", "-o ServerAliveInterval=15", "-o ServerAliveCountMax=3"} {
		if !strings.Contains(got, want) {
			t.Errorf("NixSSHOpts = %q, lacks %q", got, want)
		}
	}
	got = NixSSHOpts(&SSHRunner{Options: []string{"-o", "ConnectTimeout=3"}, ConnectTimeout: 1500 * time.Millisecond, ServerAliveInterval: 5 * time.Second, ServerAliveCountMax: 2})
	if !strings.HasPrefix(got, "-o ConnectTimeout=3 ") || !strings.Contains(got, "-o ConnectTimeout=2 -o ServerAliveInterval=5 -o ServerAliveCountMax=2") {
		t.Errorf("NixSSHOpts = %q", got)
	}
}

// waitFile returns once path exists, or after a minute (the caller's
// test then fails on what did not happen).
func waitFile(path string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
}

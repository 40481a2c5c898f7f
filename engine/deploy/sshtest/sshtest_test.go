package sshtest_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
)

func runner(t *testing.T, srv *sshtest.Server) *deploy.SSHRunner {
	r := &deploy.SSHRunner{Options: srv.ClientOptions(), ControlDir: srv.ControlDir()}
	t.Cleanup(r.Close)
	return r
}

func TestStubsRecordCalls(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	r := runner(t, srv)
	ctx := context.Background()

	// The login PATH starts with the stubs.
	var out bytes.Buffer
	if err := r.Remote(ctx, srv.Target(), []string{"sh", "-c", "command -v nix-env"}, deploy.IO{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), filepath.Join(srv.StubDir, "nix-env"); got != want {
		t.Fatalf("remote nix-env is %q, want the stub %q", got, want)
	}

	out.Reset()
	if err := r.Remote(ctx, srv.Target(), []string{"sh", "-c", `printf '%s\n' "$HOME" "$PATH"`}, deploy.IO{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(out.String(), "\n"); lines[0] != srv.Home || !strings.HasPrefix(lines[1], srv.StubDir+":") {
		t.Errorf("remote HOME and PATH = %q, want %s and %s first", lines, srv.Home, srv.StubDir)
	}

	sys := srv.StorePath("nixos-system-m1")
	hostile := []string{"a b", `it's "quoted"`, "$HOME;`id`", "two\nlines", "", "\\"}
	steps := [][]string{
		{"nix-env", "-p", "/nix/var/nix/profiles/system", "--set", sys},
		{"systemd-run", "--wait", "--collect", "--unit=fleet-activate", "-p", "X=1", "--", sys + "/bin/switch-to-configuration", "switch"},
		append([]string{"systemctl", "is-system-running"}, hostile...),
	}
	for _, argv := range steps {
		if err := r.Remote(ctx, srv.Target(), argv, deploy.IO{}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(got [][]string, want ...[]string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("calls:\n got %q\nwant %q", got, want)
		}
	}
	stub := func(argv []string) []string {
		return append([]string{filepath.Join(srv.StubDir, argv[0])}, argv[1:]...)
	}
	check(srv.Calls("nix-env"), stub(steps[0]))
	check(srv.Calls("systemd-run"), stub(steps[1]))
	check(srv.Calls("switch-to-configuration"), []string{sys + "/bin/switch-to-configuration", "switch"})
	check(srv.Calls("systemctl"), stub(steps[2]))
	check(srv.Calls("nix"))
	check(srv.AllCalls(), stub(steps[0]), stub(steps[1]), []string{sys + "/bin/switch-to-configuration", "switch"}, stub(steps[2]))
}

func TestStubsFailAndOutput(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	r := runner(t, srv)
	ctx := context.Background()

	srv.Fail("nix-env", 3)
	err := r.Remote(ctx, srv.Target(), []string{"nix-env", "--rollback"}, deploy.IO{})
	var ce *deploy.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 3 {
		t.Fatalf("err = %v, want exit 3", err)
	}
	if !strings.Contains(err.Error(), "nix-env: sshtest stub failing with exit 3") {
		t.Errorf("error lacks the stub's stderr: %v", err)
	}
	srv.Reset("nix-env")
	if err := r.Remote(ctx, srv.Target(), []string{"nix-env", "--rollback"}, deploy.IO{}); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	if n := len(srv.Calls("nix-env")); n != 2 {
		t.Errorf("%d calls, want 2 (failing calls are recorded too)", n)
	}

	// Local stubs, the same facility: nix build prints the store path.
	local := sshtest.NewStubs(t)
	local.Record("nix")
	sys := local.StorePath("nixos-system-m1")
	local.Output("nix", sys+"\n")
	lr := &deploy.SSHRunner{Env: local.Env()}
	var out bytes.Buffer
	if err := lr.Local(ctx, []string{"nix", "build", "--print-out-paths", ".#m1"}, deploy.IO{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != sys+"\n" {
		t.Errorf("nix build printed %q, want %q", out.String(), sys+"\n")
	}
	if got := local.Calls("nix"); len(got) != 1 || !reflect.DeepEqual(got[0][1:], []string{"build", "--print-out-paths", ".#m1"}) {
		t.Errorf("local nix calls = %q", got)
	}
}

func TestStubsHangAndCancel(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	r := runner(t, srv)

	srv.Hang("systemctl")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := r.Remote(ctx, srv.Target(), []string{"systemctl", "is-system-running", "--wait"}, deploy.IO{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancel took %s: the hanging command was waited for", d)
	}
	srv.Release("systemctl")
	srv.Sleep("systemctl", 200*time.Millisecond)
	start = time.Now()
	if err := r.Remote(context.Background(), srv.Target(), []string{"systemctl", "is-system-running"}, deploy.IO{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Sleep(200ms): the call took %s", d)
	}
}

func TestStopRestart(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	r := runner(t, srv)
	ctx := context.Background()
	if err := r.Remote(ctx, srv.Target(), []string{"true"}, deploy.IO{}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// The ControlMaster's connection went with the host: the next
	// command connects anew and is refused, or, when the master has not
	// noticed yet (a loaded machine), finds its socket broken.
	err := r.Remote(ctx, srv.Target(), []string{"true"}, deploy.IO{})
	var ce *deploy.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 255 {
		t.Fatalf("err = %v, want ssh's exit 255", err)
	}
	for _, want := range []string{"ssh " + srv.Target() + " true", "could not reach the host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if msg := err.Error(); !strings.Contains(msg, "Connection refused") && !strings.Contains(msg, "Broken pipe") {
		t.Errorf("error %q says neither that the host refused the connection nor that the master's went", err)
	}
	srv.Restart()
	if err := r.Remote(ctx, srv.Target(), []string{"true"}, deploy.IO{}); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}

func TestFreeze(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	r := runner(t, srv)
	if err := r.Remote(context.Background(), srv.Target(), []string{"true"}, deploy.IO{}); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := r.Remote(ctx, srv.Target(), []string{"true"}, deploy.IO{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("frozen host: err = %v, want the deadline", err)
	}
	srv.Thaw()
	if err := r.Remote(context.Background(), srv.Target(), []string{"true"}, deploy.IO{}); err != nil {
		t.Fatalf("after Thaw: %v", err)
	}
}

func TestServerFiles(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	for _, f := range []string{srv.ClientKey, filepath.Join(srv.Root, "ssh_host_ed25519_key")} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if !strings.HasPrefix(srv.Target(), srv.User+"@127.0.0.1:") {
		t.Errorf("Target() = %q", srv.Target())
	}
}

// systemd-run and systemctl keep the books of transient units as the
// real ones do: a unit whose command still runs (its ssh session
// dropped) cannot be started again; one that failed without --collect
// stays failed until reset-failed; --failed lists what FailedUnits says.
func TestStubsSystemdUnits(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	other := srv.AddHosts(1)[0]
	r := runner(t, srv)
	ctx := context.Background()
	sys := srv.StorePath("nixos-system-m1")
	run := func(argv ...string) (string, int) {
		t.Helper()
		// Apart: the two streams are copied at once.
		var out, errb bytes.Buffer
		err := r.Remote(ctx, srv.Target(), argv, deploy.IO{Stdout: &out, Stderr: &errb})
		out.Write(errb.Bytes())
		var ce *deploy.CommandError
		if errors.As(err, &ce) {
			return out.String(), ce.ExitCode
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	activate := []string{"systemd-run", "--wait", "--collect", "--unit=fleet-activate", "--description=first", "--", sys + "/bin/switch-to-configuration", "switch"}

	// The session drops while the activation hangs: it goes on.
	srv.Hang("switch-to-configuration")
	dropped, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Remote(dropped, srv.Target(), activate, deploy.IO{}) }()
	for len(srv.Calls("switch-to-configuration")) == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	// Another host of the server has a systemd of its own.
	if err := r.Remote(ctx, other, []string{"systemd-run", "--wait", "--collect", "--unit=fleet-activate", "--", "true"}, deploy.IO{}); err != nil {
		t.Errorf("another host's activation: %v", err)
	}
	for _, tc := range []struct {
		argv []string
		out  string
		code int
	}{
		{activate, "Failed to start transient service unit: Unit fleet-activate.service already exists.\n", 1},
		{[]string{"systemctl", "is-active", "fleet-activate.service"}, "active\n", 0},
		{[]string{"systemctl", "show", "-p", "Description", "--value", "fleet-activate.service"}, "first\n", 0},
		{[]string{"systemctl", "is-active", "other.service"}, "inactive\n", 3},
	} {
		if out, code := run(tc.argv...); out != tc.out || code != tc.code {
			t.Errorf("%q: %q, exit %d; want %q, exit %d", tc.argv, out, code, tc.out, tc.code)
		}
	}
	srv.Release("switch-to-configuration")
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if out, _ := run("systemctl", "is-active", "fleet-activate.service"); out == "inactive\n" {
			break
		} else if time.Now().After(end) {
			t.Fatalf("the unit is still %q after its command ended", out)
		}
	}

	// --wait passes the status on; without --collect a failed unit stays.
	srv.Fail("switch-to-configuration", 4)
	if _, code := run("systemd-run", "--wait", "--unit=fleet-activate", "--", sys+"/bin/switch-to-configuration", "switch"); code != 4 {
		t.Errorf("systemd-run --wait: exit %d, want the command's 4", code)
	}
	if out, code := run("systemctl", "is-active", "fleet-activate.service"); out != "failed\n" || code != 3 {
		t.Errorf("after a failure without --collect: %q, exit %d", out, code)
	}
	if _, code := run("systemctl", "reset-failed", "fleet-activate.service"); code != 0 {
		t.Errorf("reset-failed: exit %d", code)
	}
	if out, code := run("systemctl", "is-active", "fleet-activate.service"); out != "inactive\n" || code != 3 {
		t.Errorf("after reset-failed: %q, exit %d", out, code)
	}

	srv.FailedUnits("a.service", "b.socket")
	if out, _ := run("systemctl", "--failed", "--no-legend", "--plain", "--full"); out != "a.service loaded failed failed a.service\nb.socket loaded failed failed b.socket\n" {
		t.Errorf("systemctl --failed: %q", out)
	}

	// sudo without NOPASSWD, as sudo 1.9 says it over ssh.
	srv.SudoNeedsPassword()
	if out, code := run("sudo", "-n", "true"); out != "sudo: a password is required\n" || code != 1 {
		t.Errorf("sudo -n true: %q, exit %d", out, code)
	}
}

// TestPortKeptWhileStopped: a stopped server's port stays its own (no
// free-port request gets it, a plain bind is refused) while connections
// to it are refused, so Restart finds it however long the host was away.
func TestPortKeptWhileStopped(t *testing.T) {
	t.Parallel()
	srv := sshtest.Start(t)
	srv.Stop()
	if c, err := net.Dial("tcp", srv.Addr()); err == nil {
		c.Close()
		t.Fatal("a stopped server accepts connections")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Bind(fd, &syscall.SockaddrInet4{Port: srv.Port, Addr: [4]byte{127, 0, 0, 1}})
	syscall.Close(fd)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("binding a stopped server's port: %v, want EADDRINUSE", err)
	}
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.Addr().(*net.TCPAddr).Port == srv.Port {
			t.Fatalf("a free-port request got the stopped server's port %d", srv.Port)
		}
	}
	srv.Restart()
	r := runner(t, srv)
	if err := r.Remote(context.Background(), srv.Target(), []string{"true"}, deploy.IO{}); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}

package main

// fleet deploy and fleet diff as commands, against a machine behind the
// real sshd (engine/deploy/sshtest) whose nix-env, systemd-run and
// switch-to-configuration are recording stubs; the local nix is a
// recording stand-in on PATH, so what runs here and what runs there are
// kept apart.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
)

// sshdFleet is a one-machine fleet ("web", reached at the sshd) and the
// two sides' stubs.
type sshdFleet struct {
	srv   *sshtest.Server
	local *sshtest.Stubs
	file  string
	// sshopts collects "<nix subcommand> <NIX_SSHOPTS>" per local nix call.
	sshopts string
}

// newSSHDFleet writes the fleet (checks are Starlark, put into the
// machine's checks = [...]) and puts the local stubs first on PATH. The
// local nix answers --version as 2.8, prints system for a build and
// diffOut for store diff-closures.
func newSSHDFleet(t *testing.T, checks, diffOut string) *sshdFleet {
	t.Helper()
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	f := &sshdFleet{srv: srv, local: sshtest.NewStubs(t)}
	f.sshopts = filepath.Join(t.TempDir(), "sshopts")
	system := srv.StorePath("web")
	f.local.RecordScript("nix", nixStandIn+`printf '%s %s\n' "$1" "$NIX_SSHOPTS" >> `+f.sshopts+`
case "$1" in
build) echo '[{"drvPath":"/nix/store/00000000000000000000000000000000-system.drv","outputs":{"out":"`+system+`"}}]' ;;
store) printf '%s\n' `+shellQuote(diffOut)+` ;;
esac
`)
	t.Setenv("PATH", f.local.StubDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FLEET_SSH_OPTS", strings.Join(srv.ClientOptions(), " "))
	dir := t.TempDir()
	f.file = filepath.Join(dir, "fleet.star")
	src := fmt.Sprintf(`fleet(name = "x")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("web", system = "x86_64-linux", state_version = "26.05", target = %q, checks = [%s])
`, srv.Target(), checks)
	if err := os.WriteFile(f.file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// localNix is the local nix calls, without the experimental features.
func (f *sshdFleet) localNix() []string {
	var out []string
	for _, c := range f.local.Calls("nix") {
		out = append(out, strings.TrimPrefix(strings.Join(c[1:], " "), "--extra-experimental-features nix-command flakes "))
	}
	return out
}

// nixSSHOpts is the NIX_SSHOPTS of the local nix's (last) sub call.
func (f *sshdFleet) nixSSHOpts(t *testing.T, sub string) string {
	t.Helper()
	data, _ := os.ReadFile(f.sshopts)
	opts := ""
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, sub+" "); ok {
			opts = rest
		}
	}
	return opts
}

// TestDeployCLIBuildOnTarget: fleet deploy --build-on target --json
// --confirm-timeout, through the real action: the only nix command here
// is the build against the machine's store (and the version check); the
// machine sets its profile to what was built there and activates it;
// check.http and check.tcp run from here; the events are JSON lines.
func TestDeployCLIBuildOnTarget(t *testing.T) {
	var hits atomic.Int32
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(web.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	f := newSSHDFleet(t, fmt.Sprintf("check.http(%q), check.tcp(%q)", web.URL+"/health", l.Addr().String()), "")
	system := f.srv.StorePath("web")

	code, out, stderr := fleetCmd(t, "deploy", f.file, "--build-on", "target", "--json", "--confirm-timeout", "20s", "--out", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	nix := f.localNix()
	want := []string{"--version", "build --no-link --json --eval-store auto --store ssh-ng://" + f.srv.User + "@127.0.0.1 "}
	if len(nix) != 2 || nix[0] != want[0] || !strings.HasPrefix(nix[1], want[1]) || !strings.HasSuffix(nix[1], "#nixosConfigurations.web.config.system.build.toplevel") {
		t.Errorf("local nix calls: %q\nwant %q then the build of web's toplevel", nix, want)
	}
	if opts := f.nixSSHOpts(t, "build"); !strings.HasSuffix(opts, fmt.Sprintf(" -p %d", f.srv.Port)) {
		t.Errorf("the build's NIX_SSHOPTS lack the machine's port: %q", opts)
	}
	for _, c := range f.local.Calls("nix") {
		if len(c) > 3 && c[3] == "copy" {
			t.Errorf("nix copy ran: %q", c)
		}
	}
	if c := f.srv.Calls("nix"); len(c) > 0 {
		t.Errorf("nix ran on the machine: %q", c)
	}
	if env := f.srv.Calls("nix-env"); len(env) != 1 || strings.Join(env[0][1:], " ") != "-p /nix/var/nix/profiles/system --set "+system {
		t.Errorf("nix-env on the machine: %q", env)
	}
	if stc := f.srv.Calls("switch-to-configuration"); len(stc) != 1 || stc[0][0] != system+"/bin/switch-to-configuration" || stc[0][1] != "switch" {
		t.Errorf("switch-to-configuration on the machine: %q", stc)
	}
	if hits.Load() == 0 {
		t.Error("the http check never reached the server")
	}
	// --json: every line of output is an event (writeTree's lines go to
	// stderr); the check step succeeded.
	var checked bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("--json printed %q: %v", line, err)
		}
		if ev["step"] == "web/check" && ev["kind"] == "succeeded" {
			checked = true
		}
		if ev["action"] == "copy" {
			t.Errorf("a copy step: %s", line)
		}
	}
	if !checked {
		t.Errorf("no succeeded event for web/check:\n%s", out)
	}
	if strings.Contains(out, "logs: ") {
		t.Errorf("--json printed the table and log line:\n%s", out)
	}
}

// TestDeployCLIConfirmTimeout: --confirm-timeout bounds how long the
// checks may take, through the real action: a check.tcp to a closed port
// fails after it, naming it.
func TestDeployCLIConfirmTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	f := newSSHDFleet(t, fmt.Sprintf("check.tcp(%q)", closed), "")
	code, out, stderr := fleetCmd(t, "deploy", f.file, "--confirm-timeout", "1500ms", "--out", t.TempDir())
	if code != exitError || !strings.Contains(out, "checks did not pass within 1.5s: connect "+closed) || !strings.Contains(out, "connection refused") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

// TestDiffCLI: fleet diff builds here, asks the machine (through the
// real sshd) what it runs, fetches that from it and prints the closures'
// difference prefixed by the machine. What the machine answers goes onto
// a local nix command line, so an answer that is not a store path is an
// error, and nothing is fetched.
func TestDiffCLI(t *testing.T) {
	current := "/nix/store/" + strings.Repeat("0a", 16) + "-nixos-system-web-1"
	for _, tc := range []struct {
		name    string
		answer  string // what readlink -f /run/current-system prints there
		code    int
		want    string // in the output
		fetched bool
	}{
		{"store path", current, exitOK, "web: hello: 1.0 → 2.0, +12.3 KiB\n", true},
		{"not a store path", "/etc/nixos; touch /tmp/pwned", exitError,
			`/run/current-system resolves to "/etc/nixos; touch /tmp/pwned", not a /nix/store/<hash>-<name> path`, false},
		{"a store path and more", current + "/../../../etc", exitError, `/run/current-system resolves to "` + current + "/../", false},
		{"nothing", "", exitError, "web runs no NixOS or nix-darwin system yet", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSSHDFleet(t, "", "hello: 1.0 → 2.0, +12.3 KiB")
			f.srv.Stub("readlink", "printf '%s\\n' "+shellQuote(tc.answer)+"\n")
			code, out, stderr := fleetCmd(t, "diff", f.file, "--out", t.TempDir())
			if code != tc.code || !strings.Contains(out+stderr, tc.want) {
				t.Fatalf("exit %d (want %d), want %q in\n%s%s", code, tc.code, tc.want, out, stderr)
			}
			var fetched, diffed []string
			for _, c := range f.localNix() {
				if strings.HasPrefix(c, "copy ") {
					fetched = append(fetched, c)
				}
				if strings.HasPrefix(c, "store diff-closures ") {
					diffed = append(diffed, c)
				}
			}
			if !tc.fetched {
				if len(fetched)+len(diffed) > 0 {
					t.Errorf("ran after a bad answer: %q %q", fetched, diffed)
				}
				return
			}
			system := f.srv.StorePath("web")
			if len(fetched) != 1 || fetched[0] != "copy --no-check-sigs --from ssh-ng://"+f.srv.User+"@127.0.0.1 "+current {
				t.Errorf("fetch: %q", fetched)
			}
			if opts := f.nixSSHOpts(t, "copy"); !strings.HasSuffix(opts, fmt.Sprintf(" -p %d", f.srv.Port)) {
				t.Errorf("the fetch's NIX_SSHOPTS lack the machine's port: %q", opts)
			}
			if len(diffed) != 1 || diffed[0] != "store diff-closures "+current+" "+system {
				t.Errorf("diff: %q", diffed)
			}
			// Nothing changes on the machine.
			if c := f.srv.Calls("nix-env"); len(c)+len(f.srv.Calls("switch-to-configuration")) > 0 {
				t.Errorf("diff changed the machine: %q", c)
			}
		})
	}
}

// TestDiffLogFolderOwnRun: fleet diff logs into a folder of its own run,
// as deploy, build and exec do (runLogDir): a folder of the same second
// left by another run is not written into.
func TestDiffLogFolderOwnRun(t *testing.T) {
	f := newSSHDFleet(t, "", "hello: 1.0 → 2.0")
	f.srv.Stub("readlink", "echo /nix/store/"+strings.Repeat("0a", 16)+"-nixos-system-web-1\n")
	logs := filepath.Join(filepath.Dir(f.file), ".fleet", "logs")
	// Another run's folders, for every second this run may start in.
	now := time.Now()
	var others []string
	for s := -1; s <= 30; s++ {
		dir := filepath.Join(logs, "diff-"+now.Add(time.Duration(s)*time.Second).UTC().Format("20060102-150405"))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "web.log"), []byte("another run\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		others = append(others, dir)
	}
	if code, out, stderr := fleetCmd(t, "diff", f.file, "--out", t.TempDir()); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	for _, dir := range others {
		if data, _ := os.ReadFile(filepath.Join(dir, "web.log")); string(data) != "another run\n" {
			t.Errorf("diff wrote into another run's log folder %s:\n%s", dir, data)
		}
	}
	ours, _ := filepath.Glob(filepath.Join(logs, "diff-*-2"))
	if len(ours) != 1 {
		t.Errorf("no log folder of its own (diff-<time>-2): %q", ours)
	}
}

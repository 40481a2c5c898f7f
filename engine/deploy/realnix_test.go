package deploy_test

// The nix commands fleet builds, run by the real nix (Debian's nix-bin,
// 2.8, the oldest fleet supports), not by a stub that accepts anything:
// a flake tree inside a git work tree that ignores it, inputs that are
// stand-ins (a local path: flake), systems that are trivial derivations
// built with /bin/sh, a copy over ssh-ng:// through the real sshd into a
// store of its own, and diff-closures between two such systems.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// realNix is an isolated nix: no configuration of the machine's or the
// user's (so no experimental features: fleet must ask for them), no
// sandbox (a trivial /bin/sh builder), no substituters (no network).
type realNix struct {
	env  []string // for the runner: NIX_CONF_DIR and friends
	nix  string
	tree string // <repo>/.fleet/nix, a git work tree that ignores .fleet/
	log  string // where the systems' switch-to-configuration write
}

// nixSystem is the Nix system of this machine, which the trivial
// derivations must name to build here.
func nixSystem(t testing.TB) string {
	if runtime.GOOS != "linux" {
		t.Skip("the real-nix tests build linux derivations")
	}
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64-linux"
	case "arm64":
		return "aarch64-linux"
	}
	t.Skipf("no Nix system for %s", runtime.GOARCH)
	return ""
}

// newRealNix writes the flake tree: machines web and prev (NixOS) and mac
// (nix-darwin), and broken (NixOS), whose evaluation fails; the others'
// systems are directories with a
// bin/switch-to-configuration and an activate script that log their
// calls; one input, a stand-in flake on disk, so that a lock file is
// written.
func newRealNix(t testing.TB) *realNix {
	t.Helper()
	system := nixSystem(t)
	n := &realNix{nix: testtool.Require(t, "nix", "nix-bin")}
	testtool.Require(t, "git", "git")
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(conf, "nix.conf"), "sandbox = false\nsubstituters =\nexperimental-features =\n")
	write(t, filepath.Join(dir, "user.conf"), "")
	n.env = []string{"NIX_CONF_DIR=" + conf, "NIX_USER_CONF_FILES=" + filepath.Join(dir, "user.conf"),
		"NIX_CONFIG=", "XDG_CACHE_HOME=" + filepath.Join(dir, "cache")}
	// Building needs a writable store: root's local store, or a daemon.
	if out, err := n.cmd("nix-store", "--realise", "--dry-run", "/nix/store/00000000000000000000000000000000-x").CombinedOutput(); err != nil &&
		strings.Contains(string(out), "ermission denied") {
		testtool.Unavailable(t, "no writable Nix store (run as root, or with a nix-daemon): "+string(out))
	}

	standIn := filepath.Join(dir, "nixpkgs")
	write(t, filepath.Join(standIn, "flake.nix"), `{ outputs = { self }: { lib.version = "1"; }; }`+"\n")
	repo := filepath.Join(dir, "repo")
	n.tree = filepath.Join(repo, ".fleet", "nix")
	n.log = filepath.Join(dir, "activations.log")
	for k, v := range testtool.GitEnv() {
		t.Setenv(k, v)
	}
	write(t, filepath.Join(repo, ".gitignore"), ".fleet/\n")
	write(t, filepath.Join(repo, "fleet.star"), "# the fleet\n")
	testtool.Git(t, repo, "init", "-q")
	testtool.Git(t, repo, "add", ".")
	testtool.Git(t, repo, "commit", "-q", "-m", "fleet")
	sys := func(name string) string {
		script := fmt.Sprintf(`/bin/mkdir -p $out/bin; for f in bin/switch-to-configuration activate; do printf '#!/bin/sh\necho "$0 $*" >> %s\n' > $out/$f; /bin/chmod +x $out/$f; done`, n.log)
		return fmt.Sprintf(`derivation { name = "%s-system-${nixpkgs.lib.version}"; system = %q; builder = "/bin/sh"; args = [ "-c" %q ]; }`, name, system, script)
	}
	write(t, filepath.Join(n.tree, "flake.nix"), fmt.Sprintf(`{
  inputs.nixpkgs.url = "path:%s";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.web.config.system.build.toplevel = %s;
    nixosConfigurations.prev.config.system.build.toplevel = %s;
    darwinConfigurations.mac.system = %s;
    nixosConfigurations.broken.config.system.build.toplevel = throw "broken on purpose";
  };
}
`, standIn, sys("web"), sys("prev"), sys("mac")))
	return n
}

// execute runs steps and fails the test with each failed machine's
// error and log.
func execute(t *testing.T, steps []deploy.Step) *deploy.Summary {
	t.Helper()
	logs := t.TempDir()
	sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{LogDir: logs})
	if sum.Failed() {
		for _, m := range sum.Machines {
			if m.Outcome != deploy.OutcomeOK {
				data, _ := os.ReadFile(filepath.Join(logs, m.Machine+".log"))
				t.Errorf("%s: %s at %s: %v\nits log:\n%s", m.Machine, m.Outcome, m.FailedStep, m.Err, data)
			}
		}
		t.FailNow()
	}
	return sum
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cmd is a nix program with the isolated configuration.
func (n *realNix) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), n.env...)
	return c
}

// runner runs local commands with the isolated nix.
func (n *realNix) runner(srv *sshtest.Server) *deploy.SSHRunner {
	r := &deploy.SSHRunner{Env: n.env}
	if srv != nil {
		r.Options, r.ControlDir = srv.ClientOptions(), srv.ControlDir()
	}
	return r
}

// TestRealNixBuild: fleet build's argv, for a NixOS and a nix-darwin
// machine, accepted by the real nix, in a git work tree that ignores the
// tree; the lock file lands in the tree.
func TestRealNixBuild(t *testing.T) {
	n := newRealNix(t)
	r := n.runner(nil)
	var mu sync.Mutex
	paths := map[string]string{}
	steps, err := deploy.BuildSteps([]*model.Machine{
		{Name: "web", System: "x86_64-linux", Class: model.NixOS},
		{Name: "mac", System: "aarch64-darwin", Class: model.Darwin},
	}, deploy.Options{Tree: n.tree, Runner: r}, func(m, p string) { mu.Lock(); paths[m] = p; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	execute(t, steps)
	for _, m := range []string{"web", "mac"} {
		if !strings.HasPrefix(paths[m], "/nix/store/") || !strings.HasSuffix(paths[m], "-"+m+"-system-1") {
			t.Errorf("%s built %q", m, paths[m])
		}
		if _, err := os.Stat(paths[m] + "/bin/switch-to-configuration"); err != nil {
			t.Errorf("%s: the path printed is not the system built: %v", m, err)
		}
	}
	if _, err := os.Stat(filepath.Join(n.tree, "flake.lock")); err != nil {
		t.Errorf("nix wrote no flake.lock into the tree: %v", err)
	}
}

// build builds a machine's system with fleet's own build step.
func (n *realNix) build(t *testing.T, name string) string {
	t.Helper()
	var path string
	steps, err := deploy.BuildSteps([]*model.Machine{{Name: name, System: "x86_64-linux", Class: model.NixOS}},
		deploy.Options{Tree: n.tree, Runner: n.runner(nil)}, func(_, p string) { path = p })
	if err != nil {
		t.Fatal(err)
	}
	execute(t, steps)
	return path
}

// machineStore makes the machine behind srv keep a Nix store of its own
// (a chroot store in store): its nix-daemon, which nix copy --to ssh-ng://
// starts there, is the real one on that store, with signatures required
// as by default. It returns the store's location. (A chroot store builds
// in a sandbox: the trivial builder needs /bin/sh and its libraries.)
func (n *realNix) machineStore(t *testing.T, srv *sshtest.Server) string {
	t.Helper()
	return n.storeWithConf(t, srv, "require-sigs = true\ntrusted-users = root\nsandbox = false\nsubstituters =\nextra-sandbox-paths = /bin? /usr /lib? /lib64?\n")
}

// storeWithConf is machineStore with the nix.conf given.
func (n *realNix) storeWithConf(t *testing.T, srv *sshtest.Server, nixConf string) string {
	t.Helper()
	store := filepath.Join(t.TempDir(), "machine")
	conf := filepath.Join(t.TempDir(), "conf")
	write(t, filepath.Join(conf, "nix.conf"), nixConf)
	daemon, err := exec.LookPath("nix-daemon")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stub("nix-daemon", fmt.Sprintf("NIX_CONF_DIR=%s exec %s --store %s \"$@\"\n", conf, daemon, store))
	return store
}

// TestRealNixDeploy: the deploy's build, its copy over ssh-ng:// into the
// machine's own store (through the real sshd and the real nix-daemon
// there) and the activation of what was copied.
func TestRealNixDeploy(t *testing.T) {
	n := newRealNix(t)
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	store := n.machineStore(t, srv)
	web := nixos("web")
	web.Target = srv.Target()
	f := &model.Fleet{Name: "t", Machines: []*model.Machine{web}}
	profile := filepath.Join(t.TempDir(), "system")
	steps, err := deploy.Steps(f, f.Machines, deploy.Options{Tree: n.tree, Runner: n.runner(srv), Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	execute(t, steps)
	system := n.build(t, "web")
	if _, err := os.Stat(filepath.Join(store, system, "bin", "switch-to-configuration")); err != nil {
		t.Errorf("the system did not arrive in the machine's store: %v", err)
	}
	if env := srv.Calls("nix-env"); len(env) != 1 || strings.Join(env[0][1:], " ") != "-p "+profile+" --set "+system {
		t.Errorf("nix-env: %q", env)
	}
	if data, _ := os.ReadFile(n.log); string(data) != system+"/bin/switch-to-configuration switch\n" {
		t.Errorf("activations: %q, want %s's switch", data, system)
	}
}

// TestRealNixDiff: fleet diff fetches what the machine runs from its own
// store (a system this machine does not have) and diffs the closures.
func TestRealNixDiff(t *testing.T) {
	n := newRealNix(t)
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	store := n.machineStore(t, srv)
	prev := n.build(t, "prev")
	// The machine runs prev; only its store has it.
	if out, err := n.cmd("nix", "--extra-experimental-features", "nix-command", "copy", "--no-check-sigs", "--to", store, prev).CombinedOutput(); err != nil {
		t.Fatalf("nix copy --to %s: %v\n%s", store, err, out)
	}
	if out, err := n.cmd("nix-store", "--delete", prev).CombinedOutput(); err != nil {
		t.Fatalf("nix-store --delete: %v\n%s", err, out)
	}
	srv.Stub("readlink", "echo "+prev+"\n")
	web := nixos("web")
	web.Target = srv.Target()
	f := &model.Fleet{Name: "t", Machines: []*model.Machine{web}}
	var out strings.Builder
	steps, err := deploy.DiffSteps(f, f.Machines, deploy.Options{Tree: n.tree, Runner: n.runner(srv)}, func(string) io.Writer { return &out })
	if err != nil {
		t.Fatal(err)
	}
	execute(t, steps)
	// Each system is its own package: one goes, the other comes.
	for _, want := range []string{"prev-system: 1 → ∅", "web-system: ∅ → 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("diff-closures printed %q, want a line %q", out.String(), want)
		}
	}
}

// TestRealNixBuildOnTarget: with --build-on target the machine's own
// nix-daemon builds the system (nix build --eval-store auto --store
// ssh-ng://), and nothing is copied. (The machine's store is not
// /nix/store here, so the steps that would activate it do not run.)
func TestRealNixBuildOnTarget(t *testing.T) {
	n := newRealNix(t)
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	store := n.machineStore(t, srv)
	web := nixos("web")
	web.Target = srv.Target()
	f := &model.Fleet{Name: "t", Machines: []*model.Machine{web}}
	var system string
	steps, err := deploy.Steps(f, f.Machines, deploy.Options{Tree: n.tree, Runner: n.runner(srv), BuildOn: "target"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for i, s := range steps {
		actions = append(actions, s.Action)
		if s.Action == "profile" {
			steps = steps[:i]
			break
		}
	}
	if strings.Join(actions, " ") != "preflight build profile" {
		t.Fatalf("steps: %s, want no copy", actions)
	}
	execute(t, steps)
	entries, _ := os.ReadDir(filepath.Join(store, "nix", "store"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-web-system-1") {
			system = e.Name()
		}
	}
	if system == "" {
		t.Fatalf("the machine did not build web's system in its store (%s)", store)
	}
	if _, err := os.Stat(filepath.Join(store, "nix", "store", system, "bin", "switch-to-configuration")); err != nil {
		t.Error(err)
	}
}

package deploy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/model"
)

// BenchmarkCacheDeploy deploys N machines (FLEET_BENCH_CACHE_MACHINES,
// default 40; the figure is 200) running K = 4 distinct systems
// (256 KiB of incompressible data each) with the real nix 2.8 to N
// loopback targets, each a host of the real sshd with a Nix store of its
// own, at --parallel 10: once through a file:// binary cache that the
// targets substitute from (cache=on), once without (cache=off). Every
// iteration starts with an empty cache and empty target stores.
//
// Bytes sent by the deployer are counted where they leave: an ssh on
// nix's PATH that counts what nix writes into it (the copies to the
// targets), plus the NAR bytes the pushes wrote into the cache. Metrics:
// ssh-bytes/machine and deployer-bytes/closure (ssh + pushed, over K);
// per-machine-s, one machine deployed alone with its push (the best of
// three); ideal-s = ceil(N/10) x per-machine-s; ratio = the measured time
// over ideal-s; <action>-s/machine, the mean time of a machine's build,
// push, copy and activate steps in the whole deploy.
func BenchmarkCacheDeploy(b *testing.B) {
	machines := 40
	if s := os.Getenv("FLEET_BENCH_CACHE_MACHINES"); s != "" {
		var err error
		if machines, err = strconv.Atoi(s); err != nil || machines < 1 {
			b.Fatalf("FLEET_BENCH_CACHE_MACHINES=%q: want a number of machines", s)
		}
	}
	const closures = 4
	parallel := 10
	if s := os.Getenv("FLEET_BENCH_CACHE_PARALLEL"); s != "" {
		parallel, _ = strconv.Atoi(s)
	}
	for _, cached := range []bool{true, false} {
		b.Run(fmt.Sprintf("cache=%v", map[bool]string{true: "on", false: "off"}[cached]), func(b *testing.B) {
			bb := newCacheBench(b, machines, closures)
			actions := map[string]time.Duration{}
			run := func(ms []*model.Machine) (time.Duration, int64, int64) {
				root := bb.reset(b, cached)
				steps, err := deploy.Steps(bb.fleet, ms, deploy.Options{Tree: bb.n.tree, Runner: bb.runner, Profile: filepath.Join(root, "profile")})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{Parallel: parallel, LogDir: filepath.Join(root, "logs")})
				took := time.Since(start)
				if sum.Failed() {
					for _, m := range sum.Machines {
						if m.Outcome != deploy.OutcomeOK {
							data, _ := os.ReadFile(filepath.Join(root, "logs", m.Machine+".log"))
							b.Fatalf("%s: %v\n%s", m.Machine, m.Err, data)
						}
					}
				}
				if len(ms) > 1 {
					for _, m := range sum.Machines {
						for _, st := range m.Steps {
							actions[st.Action] += st.Duration
						}
					}
				}
				time.Sleep(300 * time.Millisecond) // the counting ssh's wc
				return took, bb.sshBytes(b, root), bb.pushedBytes(b, root)
			}
			one := time.Hour
			for range 3 {
				d, _, _ := run(bb.fleet.Machines[:1])
				one = min(one, d)
			}
			b.ResetTimer()
			var total time.Duration
			var ssh, pushed int64
			n := 0
			for b.Loop() {
				d, s, p := run(bb.fleet.Machines)
				total, ssh, pushed = total+d, ssh+s, pushed+p
				n++
			}
			ideal := time.Duration((machines+parallel-1)/parallel) * one
			b.ReportMetric(float64(ssh)/float64(n)/float64(machines), "ssh-bytes/machine")
			b.ReportMetric(float64(ssh+pushed)/float64(n)/closures, "deployer-bytes/closure")
			b.ReportMetric(one.Seconds(), "per-machine-s")
			b.ReportMetric(ideal.Seconds(), "ideal-s")
			b.ReportMetric(float64(total)/float64(n)/float64(ideal), "ratio")
			for _, a := range []string{"build", "push", "copy", "activate"} {
				if d, ok := actions[a]; ok {
					b.ReportMetric(d.Seconds()/float64(n*machines), a+"-s/machine")
				}
			}
		})
	}
}

// cacheBench is the benchmark's fleet, deployer and targets.
type cacheBench struct {
	n      *realNix
	srv    *sshtest.Server
	runner *deploy.SSHRunner
	fleet  *model.Fleet
	public string
	secret string
	dir    string // current: the iteration's root
}

func newCacheBench(b *testing.B, machines, closures int) *cacheBench {
	n := newRealNix(b)
	system := nixSystem(b)
	srv := sshtest.Start(b)
	srv.RecordDeploy()
	targets := append([]string{srv.Target()}, srv.AddHosts(machines-1)...)
	bb := &cacheBench{n: n, srv: srv, fleet: &model.Fleet{Name: "bench"}, dir: b.TempDir()}
	bb.secret, bb.public = n.cacheKey(b, "bench-1")
	for i := range machines {
		m := nixos(fmt.Sprintf("m%d", i))
		m.Target = targets[i]
		bb.fleet.Machines = append(bb.fleet.Machines, m)
	}
	script := `/bin/mkdir -p $out/bin; printf '#!/bin/sh\n' > $out/bin/switch-to-configuration; /bin/chmod +x $out/bin/switch-to-configuration; /usr/bin/head -c 262144 /dev/urandom > $out/blob`
	write(b, filepath.Join(n.tree, "flake.nix"), fmt.Sprintf(`{
  inputs.nixpkgs.url = "path:%s";
  outputs = { self, nixpkgs }: let
    sys = k: derivation { name = "sys${toString k}-system-${nixpkgs.lib.version}"; system = %q; builder = "/bin/sh"; args = [ "-c" %q ]; };
    machine = i: { name = "m${toString i}"; value.config.system.build.toplevel = sys (i - (i / %d) * %d); };
  in { nixosConfigurations = builtins.listToAttrs (builtins.genList machine %d); };
}
`, filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(n.tree))), "nixpkgs"), system, script, closures, closures, machines))

	// Each target's nix-daemon serves a store of its own (by the port
	// the connection came to), configured as the generated tree
	// configures a machine: the iteration's cache and its key.
	daemon, err := exec.LookPath("nix-daemon")
	if err != nil {
		b.Fatal(err)
	}
	srv.Stub("nix-daemon", fmt.Sprintf(`root=$(cat %[1]s/current)
port=$(echo "$SSH_CONNECTION" | cut -d' ' -f4)
NIX_CONF_DIR=$root/conf exec %[2]s --store $root/stores/$port "$@"
`, bb.dir, daemon))

	// nix's own ssh counts what nix sends through it; the runner's
	// ssh (its commands, its ControlMasters) is the real one.
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		b.Fatal(err)
	}
	wrap := filepath.Join(bb.dir, "bin")
	write(b, filepath.Join(wrap, "ssh"), fmt.Sprintf(`#!/bin/bash
for a; do case "$a" in -M|-O|-N|-f) exec %[1]s "$@" ;; esac; done
root=$(cat %[2]s/current)
tee >(wc -c > "$root/ssh-bytes/$$") | %[1]s "$@"
`, sshPath, bb.dir))
	if err := os.Chmod(filepath.Join(wrap, "ssh"), 0o755); err != nil {
		b.Fatal(err)
	}
	bb.runner = n.runner(srv)
	bb.runner.SSH = sshPath
	bb.runner.Env = append(bb.runner.Env, "PATH="+wrap+string(os.PathListSeparator)+os.Getenv("PATH"))
	b.Cleanup(bb.runner.Close)

	// Build every system first: the benchmark is about copies.
	var ms []*model.Machine
	for i := range min(closures, machines) {
		ms = append(ms, bb.fleet.Machines[i])
	}
	steps, err := deploy.BuildSteps(ms, deploy.Options{Tree: n.tree, Runner: bb.runner}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{LogDir: b.TempDir()}); sum.Failed() {
		b.Fatalf("building the systems: %+v", sum.Machines)
	}
	return bb
}

// reset starts an iteration: an empty cache, empty stores, no bytes
// counted. It returns the iteration's root.
func (bb *cacheBench) reset(b *testing.B, cached bool) string {
	root, err := os.MkdirTemp(bb.dir, "run")
	if err != nil {
		b.Fatal(err)
	}
	conf := "require-sigs = true\ntrusted-users = root\nsandbox = false\nsubstituters =\n"
	bb.fleet.Cache = nil
	if cached {
		url := "file://" + filepath.Join(root, "cache")
		conf = fmt.Sprintf("require-sigs = true\ntrusted-users = root\nsandbox = false\nsubstituters = %s\ntrusted-public-keys = %s\n", url, bb.public)
		bb.fleet.Cache = &model.Cache{URL: url, PublicKey: bb.public, SecretKeyFile: bb.secret}
	}
	write(b, filepath.Join(root, "conf", "nix.conf"), conf)
	for _, d := range []string{"stores", "ssh-bytes", "logs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	write(b, filepath.Join(bb.dir, "current"), root)
	return root
}

// sshBytes sums what nix sent through ssh in the iteration.
func (bb *cacheBench) sshBytes(b *testing.B, root string) int64 {
	entries, _ := os.ReadDir(filepath.Join(root, "ssh-bytes"))
	var total int64
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(root, "ssh-bytes", e.Name()))
		n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		total += n
	}
	return total
}

// pushedBytes sums the NAR files the pushes wrote into the cache.
func (bb *cacheBench) pushedBytes(b *testing.B, root string) int64 {
	entries, _ := os.ReadDir(filepath.Join(root, "cache", "nar"))
	var total int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			total += info.Size()
		}
	}
	return total
}

package deploy_test

// deploy --build-on target: the machine builds its own system. What runs
// where is the point, so the two sides keep separate books here: the
// local commands run with stubs of their own (local), the machine's
// through the real sshd with the server's stubs (srv).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/model"
)

// TestBuildOnTargetSides: with BuildOn "target" the local side runs one
// nix command, the build, against the machine's store (ssh-ng://, with
// the port in NIX_SSHOPTS), and nothing is copied; the machine gets the
// preflight, the profile and the activation of the path the build
// printed, and no nix command at all. With BuildOn "local", for
// contrast, the same rig builds here and copies.
func TestBuildOnTargetSides(t *testing.T) {
	for _, buildOn := range []string{"target", "local"} {
		t.Run(buildOn, func(t *testing.T) {
			web := nixos("web")
			r := newRig(t, web)
			system := r.srv.StorePath("web")
			local := sshtest.NewStubs(t)
			sshopts := filepath.Join(t.TempDir(), "nix-sshopts")
			local.RecordScript("nix", nixPrelude+`if [ "$1" = build ]; then `+builtJSON(system)+`; fi
printf '%s %s\n' "$1" "$NIX_SSHOPTS" >> `+sshopts+"\n")
			r.runner.Env = local.Env()

			sum := r.deploy(t, context.Background(), deploy.Options{BuildOn: buildOn})
			if sum.Failed() {
				t.Fatalf("deploy failed: %+v", sum.Machines)
			}

			attr := "path:/tree#nixosConfigurations.web.config.system.build.toplevel"
			store := "ssh-ng://" + r.srv.User + "@127.0.0.1"
			want := []string{"build --no-link --json --eval-store auto --store " + store + " " + attr}
			if buildOn == "local" {
				want = []string{"build --no-link --json " + attr, "copy --no-check-sigs --to " + store + " " + system}
			}
			var got []string
			for _, c := range local.Calls("nix") {
				got = append(got, strings.TrimPrefix(strings.Join(c[1:], " "), "--extra-experimental-features nix-command flakes "))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("local nix calls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// The store URL has no port: nix's ssh gets it from NIX_SSHOPTS.
			opts, _ := os.ReadFile(sshopts)
			for _, line := range strings.Split(strings.TrimSpace(string(opts)), "\n") {
				if buildOn == "local" && strings.HasPrefix(line, "build ") {
					continue // a local build goes nowhere
				}
				if !strings.HasSuffix(line, fmt.Sprintf(" -p %d", r.srv.Port)) {
					t.Errorf("nix %s ran without the machine's port in NIX_SSHOPTS: %q", strings.Fields(line)[0], line)
				}
			}
			for _, name := range []string{"nix-env", "systemd-run", "switch-to-configuration", "sudo"} {
				if c := local.Calls(name); len(c) > 0 {
					t.Errorf("%s ran locally: %q", name, c)
				}
			}

			// The machine: no nix (its nix-daemon is what nix build
			// reaches, through nix's own ssh), the profile set to the
			// path the build printed, that path activated.
			if c := r.srv.Calls("nix"); len(c) > 0 {
				t.Errorf("nix ran on the machine: %q", c)
			}
			if env := r.calls("nix-env"); len(env) != 1 || env[0] != "-p /nix/var/nix/profiles/system --set "+system {
				t.Errorf("nix-env on the machine: %q", env)
			}
			stc := r.srv.Calls("switch-to-configuration")
			if len(stc) != 1 || stc[0][0] != system+"/bin/switch-to-configuration" || stc[0][1] != "switch" {
				t.Errorf("switch-to-configuration on the machine: %q", stc)
			}
			if r.srv.Logins() == 0 {
				t.Errorf("nothing logged in to the machine:\n%s", r.srv.Log())
			}
		})
	}
}

// TestRealNixBuildOnTargetBuildsThere: with the real nix and the
// machine's own nix-daemon (its store a chroot store behind the real
// sshd), the system built with BuildOn "target" is in the machine's store
// and not in the local one: the build ran there, and nothing came back.
func TestRealNixBuildOnTargetBuildsThere(t *testing.T) {
	n := newRealNix(t)
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	store := n.machineStore(t, srv)
	web := nixos("web")
	web.Target = srv.Target()
	f := &model.Fleet{Name: "t", Machines: []*model.Machine{web}}
	steps, err := deploy.Steps(f, f.Machines, deploy.Options{Tree: n.tree, Runner: n.runner(srv), BuildOn: "target"})
	if err != nil {
		t.Fatal(err)
	}
	// Up to the build: the machine's store is not /nix/store here, so
	// what comes after cannot find the system.
	for i, s := range steps {
		if s.Action == "build" {
			steps = steps[:i+1]
			break
		}
	}
	execute(t, steps)
	var system string
	entries, _ := os.ReadDir(filepath.Join(store, "nix", "store"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-web-system-1") {
			system = "/nix/store/" + e.Name()
		}
	}
	if system == "" {
		t.Fatalf("web's system is not in the machine's store (%s)", store)
	}
	if out, err := n.cmd("nix-store", "--check-validity", system).CombinedOutput(); err == nil {
		t.Errorf("%s is in the local store too: built here, or copied back", system)
	} else if !strings.Contains(string(out), "is not valid") {
		t.Errorf("nix-store --check-validity %s: %v\n%s", system, err, out)
	}
}

package deploy_test

// The binary cache with the real nix: a file:// cache, a key made by
// nix-store --generate-binary-cache-key, the push signed with it, and the
// machine (its own store behind the real sshd and nix-daemon) fetching
// the system from the cache rather than from the deployer.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/model"
)

// cacheKey makes a signing key pair; it returns the secret key's file
// and the public key.
func (n *realNix) cacheKey(t testing.TB, name string) (secret, public string) {
	t.Helper()
	dir := t.TempDir()
	secret, pub := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	if out, err := n.cmd("nix-store", "--generate-binary-cache-key", name, secret, pub).CombinedOutput(); err != nil {
		t.Fatalf("nix-store --generate-binary-cache-key: %v\n%s", err, out)
	}
	data, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	return secret, strings.TrimSpace(string(data))
}

// substitutingStore is machineStore whose nix-daemon substitutes from
// the given substituters, trusting keys, as the generated nix.settings
// make a machine do.
func (n *realNix) substitutingStore(t *testing.T, srv *sshtest.Server, substituters, keys string) string {
	t.Helper()
	return n.storeWithConf(t, srv, fmt.Sprintf("require-sigs = true\ntrusted-users = root\nsandbox = false\nsubstituters = %s\ntrusted-public-keys = %s\n", substituters, keys))
}

// TestRealNixCache: the deploy pushes the system to a file:// cache,
// signed with the fleet's key, and the machine's copy substitutes it from
// there: the path in the machine's store carries the cache's signature,
// which only a substitution gives it (the deployer's copy of an unsigned
// path carries none). With the cache missing from the machine's
// substituters, the same deploy still works: the deployer sends the path.
func TestRealNixCache(t *testing.T) {
	for _, tc := range []struct {
		name        string
		substitutes bool
	}{
		{"machine substitutes", true},
		{"machine without the cache", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newRealNix(t)
			srv := sshtest.Start(t)
			srv.RecordDeploy()
			secret, public := n.cacheKey(t, "fleet-test-1")
			cacheDir := filepath.Join(t.TempDir(), "cache")
			url := "file://" + cacheDir
			subst, keys := "", ""
			if tc.substitutes {
				subst, keys = url, public
			}
			store := n.substitutingStore(t, srv, subst, keys)
			web := nixos("web")
			web.Target = srv.Target()
			f := &model.Fleet{Name: "t", Machines: []*model.Machine{web},
				Cache: &model.Cache{URL: url, PublicKey: public, SecretKeyFile: secret}}
			profile := filepath.Join(t.TempDir(), "system")
			steps, err := deploy.Steps(f, f.Machines, deploy.Options{Tree: n.tree, Runner: n.runner(srv), Profile: profile})
			if err != nil {
				t.Fatal(err)
			}
			execute(t, steps)
			system := n.build(t, "web")

			// The cache holds the system, signed with the fleet's key
			// (nix verifies the signature against the public key).
			hash := strings.SplitN(strings.TrimPrefix(system, "/nix/store/"), "-", 2)[0]
			narinfo, err := os.ReadFile(filepath.Join(cacheDir, hash+".narinfo"))
			if err != nil {
				t.Fatalf("the push left no narinfo for %s: %v", system, err)
			}
			if !strings.Contains(string(narinfo), "\nSig: fleet-test-1:") {
				t.Errorf("the narinfo is not signed with the fleet's key:\n%s", narinfo)
			}
			if out, err := n.cmd("nix", "--extra-experimental-features", "nix-command", "store", "verify", "--store", url,
				"--option", "trusted-public-keys", public, "--sigs-needed", "1", "--no-contents", system).CombinedOutput(); err != nil {
				t.Errorf("nix store verify of the cache: %v\n%s", err, out)
			}

			// The machine has it, and how it came shows in its
			// signatures.
			if _, err := os.Stat(filepath.Join(store, system, "bin", "switch-to-configuration")); err != nil {
				t.Fatalf("the system did not arrive in the machine's store: %v", err)
			}
			out, err := n.cmd("nix", "--extra-experimental-features", "nix-command", "path-info", "--sigs", "--store", store, system).CombinedOutput()
			if err != nil {
				t.Fatalf("nix path-info in the machine's store: %v\n%s", err, out)
			}
			if got := strings.Contains(string(out), "fleet-test-1:"); got != tc.substitutes {
				t.Errorf("the machine's path carries the cache's signature: %v, want %v (substituted from the cache): %s", got, tc.substitutes, out)
			}
			if data, _ := os.ReadFile(n.log); string(data) != system+"/bin/switch-to-configuration switch\n" {
				t.Errorf("activations: %q, want %s's switch", data, system)
			}
		})
	}
}

// TestRealNixBuilders: a fleet's builder (an ssh-ng:// builder line)
// builds the systems for the deployer, whose nix may build nothing itself
// (max-jobs = 0): nix takes fleet's builders, reaches the builder through
// the real sshd, and its nix-daemon builds in its own store. Both ways a
// build runs: one nix build per machine, and batched (one nix eval, then
// nix-store --realise per machine). Machine ifd's system imports from
// a derivation: its evaluation builds, and with max-jobs = 0 only the
// builder can, so the batch's nix eval must take the fleet's builders
// too.
func TestRealNixBuilders(t *testing.T) {
	for _, batch := range []int{0, 2} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			n := newRealNix(t)
			srv := sshtest.Start(t)
			store := n.machineStore(t, srv)
			conf := ""
			for _, e := range n.env {
				if v, ok := strings.CutPrefix(e, "NIX_CONF_DIR="); ok {
					conf = v
				}
			}
			write(t, filepath.Join(conf, "nix.conf"), "sandbox = false\nsubstituters =\nexperimental-features =\nmax-jobs = 0\n")
			addIFDMachine(t, n)
			r := n.runner(srv)
			// A builder line has no port: nix's ssh takes it from NIX_SSHOPTS.
			r.Env = append(r.Env, "NIX_SSHOPTS="+deploy.NixSSHOpts(r)+fmt.Sprintf(" -p %d", srv.Port))
			user, _, _ := strings.Cut(srv.Target(), "@")
			builder := "ssh-ng://" + user + "@127.0.0.1 " + nixSystem(t) + " - 1"
			var mu sync.Mutex
			paths := map[string]string{}
			steps, err := deploy.BuildSteps([]*model.Machine{nixos("web"), nixos("prev"), nixos("ifd")},
				deploy.Options{Tree: n.tree, Runner: r, Builders: []string{builder}, EvalBatch: batch},
				func(m, p string) { mu.Lock(); paths[m] = p; mu.Unlock() })
			if err != nil {
				t.Fatal(err)
			}
			execute(t, steps)
			for _, m := range []string{"web", "prev", "ifd"} {
				path := paths[m]
				if _, err := os.Stat(filepath.Join(store, path, "bin", "switch-to-configuration")); path == "" || err != nil {
					t.Errorf("the builder did not build %s's system %q in its store: %v", m, path, err)
				}
				if _, err := os.Stat(filepath.Join(path, "bin", "switch-to-configuration")); err != nil {
					t.Errorf("%s's system built remotely is not in the local store: %v", m, err)
				}
			}
		})
	}
}

// addIFDMachine adds machine ifd to n's flake: its system's name is
// read from a file a derivation writes (import from derivation), so
// evaluating it builds that derivation. Both derivations are the test's
// own (they name its activation log), so that none is valid already.
func addIFDMachine(t *testing.T, n *realNix) {
	t.Helper()
	flake := filepath.Join(n.tree, "flake.nix")
	data, err := os.ReadFile(flake)
	if err != nil {
		t.Fatal(err)
	}
	ifd := fmt.Sprintf(`    nixosConfigurations.ifd.config.system.build.toplevel =
      let version = import (derivation { name = "ifd-version"; system = %q; log = %q; builder = "/bin/sh"; args = [ "-c" "echo '\"1\"' > $out" ]; });
      in derivation {
        name = "ifd-system-${version}"; system = %q; log = %q; builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir -p $out/bin; printf '#!/bin/sh\\n' > $out/bin/switch-to-configuration; /bin/chmod +x $out/bin/switch-to-configuration" ];
      };
  };
}
`, nixSystem(t), n.log, nixSystem(t), n.log)
	s, ok := strings.CutSuffix(string(data), "  };\n}\n")
	if !ok {
		t.Fatalf("flake.nix does not end as expected:\n%s", data)
	}
	write(t, flake, s+ifd)
}

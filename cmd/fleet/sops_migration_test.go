package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// examples/sops-migration: a machine keeps sops-nix for the secrets not
// moved yet while fleet's agenix secrets serve the others. Its tree
// evaluates (fleet run), parses, and keeps the two apart: sops-nix's
// module is imported from its input, the sops file is copied where the
// machine refers to it (it sits in the fleet's secrets/ folder, beside
// fleet's own), and no agenix secret lands under sops-nix's /run/secrets.
// engine/conformance evaluates the tree against a sops-nix stand-in.
func TestSopsMigrationExample(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := fleetCmd(t, "run", filepath.Join(repoRoot, "examples/sops-migration/fleet.star"), "--out", out)
	if code != exitOK {
		t.Fatalf("fleet run: exit %d\n%s%s", code, stdout, stderr)
	}
	read := func(p string) string {
		data, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	flake := read("flake.nix")
	for _, want := range []string{`url = "github:Mic92/sops-nix";`, `url = "github:ryantm/agenix";`} {
		if !strings.Contains(flake, want) {
			t.Errorf("flake.nix lacks %s", want)
		}
	}
	if !strings.Contains(read("files/legacy-sops.nix"), "imports = [ inputs.sops-nix.nixosModules.sops ];") {
		t.Error("legacy-sops.nix does not import sops-nix's module")
	}
	sops, err := os.ReadFile(filepath.Join(repoRoot, "examples/sops-migration/secrets/monitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if read("files/secrets/monitor.yaml") != string(sops) {
		t.Error("the sops file is not copied to files/secrets/monitor.yaml")
	}
	machine := read("machines/nixos/monitor.nix")
	for _, want := range []string{
		"defaultSopsFile = ../../files/secrets/monitor.yaml;",
		`identityPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];`,
		"inputs.agenix.nixosModules.default",
		"grafana-admin-password = {",
	} {
		if !strings.Contains(machine, want) {
			t.Errorf("machines/nixos/monitor.nix lacks %q:\n%s", want, machine)
		}
	}
	if strings.Contains(machine, `"/run/secrets`) {
		t.Errorf("a path of fleet's under sops-nix's /run/secrets:\n%s", machine)
	}

	bin := testtool.Require(t, "nix-instantiate", "nix-bin")
	var nixFiles []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".nix") {
			nixFiles = append(nixFiles, p)
		}
		return err
	})
	if len(nixFiles) < 5 {
		t.Fatalf("only %d .nix files: %v", len(nixFiles), nixFiles)
	}
	if b, err := exec.Command(bin, append([]string{"--parse"}, nixFiles...)...).CombinedOutput(); err != nil {
		t.Fatalf("nix-instantiate --parse: %v\n%s", err, b)
	}
}

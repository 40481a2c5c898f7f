package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// incrementalFleet: mon is used by a and b, ssh by all four machines
// (c and d do not use mon); MON and MACHINE_D are replaced to change them.
const incrementalFleet = `fleet(name = "inc", admins = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ admin@example.org"])
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
ssh = feature("ssh", nixos = {"services.openssh.enable": True})
mon = feature("mon", nixos = {"services.prometheus.enable": MON})
machine("a", system = "x86_64-linux", state_version = "26.05", features = [ssh, mon], target = "root@a.example.org")
machine("b", system = "x86_64-linux", state_version = "26.05", features = [ssh, mon], target = "root@b.example.org")
machine("c", system = "x86_64-linux", state_version = "26.05", features = [ssh], target = "root@c.example.org")
machine("d", system = "x86_64-linux", state_version = "MACHINE_D", features = [ssh], target = "root@d.example.org")
`

// fleet build evaluates only the machines whose fingerprint has no valid
// cached system: all at first, none after no change, exactly a feature's
// machines after it changed, all with --rebuild, and a machine whose
// cached path nix path-info rejects (garbage-collected).
func TestBuildIncremental(t *testing.T) {
	t.Setenv("FLEET_CACHE_DIR", t.TempDir())
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	gone := filepath.Join(bin, "gone") // store paths path-info rejects
	nix := "#!/bin/sh\n" + nixStandIn + `echo "$*" >> ` + calls + `
if [ "$1" = path-info ]; then
	grep -qxF "$2" ` + gone + ` 2>/dev/null && { echo "error: path '$2' is not valid" >&2; exit 1; }
	echo "$2"; exit 0
fi
` + nixEvalStandIn + `
for a; do :; done
m="${a#*Configurations.}"; m="${m%%.*}"
echo "[{\"drvPath\":\"/nix/store/0000-nixos-system-$m.drv\",\"outputs\":{\"out\":\"/nix/store/0000-nixos-system-$m\"}}]"
`
	if err := os.WriteFile(filepath.Join(bin, "nix"), []byte(nix), 0o755); err != nil {
		t.Fatal(err)
	}
	nixStore := "#!/bin/sh\n" + nixStoreMachine + `echo "/nix/store/0000-nixos-system-$m"` + "\n"
	if err := os.WriteFile(filepath.Join(bin, "nix-store"), []byte(nixStore), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	fleet := func(mon, d string) string {
		return strings.NewReplacer("MON", mon, "MACHINE_D", d).Replace(incrementalFleet)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.star")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	evaluated := func(args ...string) []string {
		t.Helper()
		os.Remove(calls)
		code, out, stderr := fleetCmd(t, append([]string{"build", file}, args...)...)
		if code != exitOK {
			t.Fatalf("build %v: exit %d\n%s%s", args, code, out, stderr)
		}
		for _, m := range []string{"a", "b", "c", "d"} {
			if !strings.Contains(out, m+"  /nix/store/0000-nixos-system-"+m+"\n") {
				t.Fatalf("build %v: no path for %s:\n%s", args, m, out)
			}
		}
		data, _ := os.ReadFile(calls)
		var ms []string
		for _, x := range regexp.MustCompile(`build --no-link --json \S+#nixosConfigurations\.(\w+)\.`).FindAllStringSubmatch(string(data), -1) {
			ms = append(ms, x[1])
		}
		// A batch's evaluation: its machines are in --apply's list.
		for _, x := range regexp.MustCompile(`(?m)^eval --json .*\[(.*)\]`).FindAllStringSubmatch(string(data), -1) {
			for _, m := range strings.Fields(x[1]) {
				ms = append(ms, strings.Trim(m, `"`))
			}
		}
		slices.Sort(ms)
		return ms
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: evaluated %v, want %v", what, got, want)
		}
	}
	write(fleet("True", "26.05"))
	check("first build", evaluated(), "a", "b", "c", "d")
	check("no change", evaluated())
	// nix writes flake.lock on the first real build; a lock (here, a new
	// one) is in every fingerprint.
	tree := filepath.Join(dir, ".fleet", "nix")
	if err := os.WriteFile(filepath.Join(tree, "flake.lock"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("new flake.lock", evaluated(), "a", "b", "c", "d")
	check("no change again", evaluated())
	write(fleet("False", "26.05"))
	check("feature mon changed", evaluated(), "a", "b")
	write(fleet("False", "25.11"))
	check("machine d changed", evaluated(), "d")
	check("--rebuild", evaluated("--rebuild"), "a", "b", "c", "d")
	check("after --rebuild", evaluated())
	if err := os.WriteFile(gone, []byte("/nix/store/0000-nixos-system-c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("c garbage-collected", evaluated(), "c")

	// The dry run says which machines are cached, with their fingerprint.
	write(fleet(`False, "services.prometheus.port": 9091`, "25.11"))
	code, out, stderr := fleetCmd(t, "build", file, "--dry-run")
	if code != exitOK || !regexp.MustCompile(`(?m)^c:\n  build +cached /nix/store/0000-nixos-system-c \(fingerprint [0-9a-f]{12}\)\n +nix .* path-info /nix/store/0000-nixos-system-c; when it fails: evaluate a batch of its own \(c; .* eval --json .*, then nix-store --realise DRV \(c's derivation`).MatchString(out) {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	// a and b: mon changed to something never built.
	if !regexp.MustCompile(`(?m)^a:\n  build +evaluate batch 1 of 1 \(a, b; `).MatchString(out) {
		t.Errorf("dry run: a shown as cached:\n%s", out)
	}
	if code, out, _ := fleetCmd(t, "build", file, "--dry-run", "--rebuild"); code != exitOK || strings.Contains(out, "cached") {
		t.Errorf("dry run with --rebuild: exit %d\n%s", code, out)
	}
	// deploy uses the same cache.
	code, out, stderr = fleetCmd(t, "deploy", file, "--dry-run")
	if code != exitOK || !regexp.MustCompile(`(?m)^c:\n(  .*\n)*  build +cached /nix/store/0000-nixos-system-c \(fingerprint `).MatchString(out) ||
		!regexp.MustCompile(`(?m)^a:\n(  .*\n)*  build +evaluate batch 1 of 1 \(a, b; `).MatchString(out) {
		t.Fatalf("deploy dry run: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, _ := fleetCmd(t, "deploy", file, "--dry-run", "--rebuild"); code != exitOK || strings.Contains(out, "cached") {
		t.Errorf("deploy dry run with --rebuild: exit %d\n%s", code, out)
	}
}

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// nixStandIn starts a stand-in nix: it answers --version as nix 2.8
// does, refuses what the real one refuses without the experimental
// features, and leaves the subcommand in $1.
const nixStandIn = `if [ "$1" = --version ]; then echo "nix (Nix) 2.8.0"; exit 0; fi
if [ "$1" != --extra-experimental-features ] || [ "$2" != "nix-command flakes" ]; then
	echo "error: experimental Nix feature 'nix-command' is disabled; use '--extra-experimental-features nix-command' to override" >&2
	exit 1
fi
shift 2
`

// fleet build builds every selected system with nix (a stand-in here that
// prints a store path per machine and fails for one), prints the paths,
// and says which failed; it contacts no machine.
func TestBuild(t *testing.T) {
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	nix := "#!/bin/sh\n" + nixStandIn + `echo "$*" >> ` + calls + "\n" + nixEvalStandIn + `
for a; do :; done
m="${a#*Configurations.}"; m="${m%%.*}"
[ "$m" = db ] && { echo "error: builder for db failed" >&2; exit 1; }
echo "[{\"drvPath\":\"/nix/store/0000-nixos-system-$m.drv\",\"outputs\":{\"out\":\"/nix/store/0000-nixos-system-$m\"}}]"
`
	if err := os.WriteFile(filepath.Join(bin, "nix"), []byte(nix), 0o755); err != nil {
		t.Fatal(err)
	}
	// A batch's machines are built one by one from their derivations.
	nixStore := "#!/bin/sh\n" + `echo "nix-store $*" >> ` + calls + "\n" + nixStoreMachine + `
[ "$m" = db ] && { echo "error: builder for db failed" >&2; exit 1; }
echo "/nix/store/0000-nixos-system-$m"
`
	if err := os.WriteFile(filepath.Join(bin, "nix-store"), []byte(nixStore), 0o755); err != nil {
		t.Fatal(err)
	}
	// ssh must not be needed: make any use of it fail loudly.
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte("#!/bin/sh\necho ssh used >&2\nexit 99\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	file := copyFleet(t, "testdata/cloud/fleet.star", nil)

	code, out, stderr := fleetCmd(t, "build", file, "--on", "web", "--on", "gpu")
	if code != exitOK || !strings.Contains(out, "gpu  /nix/store/0000-nixos-system-gpu\nweb  /nix/store/0000-nixos-system-web\n") {
		t.Fatalf("build: exit %d\n%s%s", code, out, stderr)
	}
	data, _ := os.ReadFile(calls)
	// web and gpu: one batch, one evaluation, two builds.
	if n := strings.Count(string(data), "eval --json path:/"); n != 1 || !strings.Contains(string(data), `[ "gpu" "web" ]`) ||
		strings.Count(string(data), "nix-store --realise /nix/store/") != 2 || strings.Contains(string(data), "build --no-link") {
		t.Fatalf("nix calls:\n%s", data)
	}
	// Without a lock file, nix is about to write one: commit it.
	tree := filepath.Join(filepath.Dir(file), ".fleet", "nix")
	if !strings.Contains(stderr, "nix: "+tree+" has no flake.lock yet: nix pins the flake's inputs on this first build and writes it there; commit it") {
		t.Errorf("no word on the missing flake.lock:\n%s", stderr)
	}
	if err := os.WriteFile(filepath.Join(tree, "flake.lock"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, stderr := fleetCmd(t, "build", file, "--on", "web"); strings.Contains(stderr, "flake.lock") {
		t.Errorf("a note on flake.lock though there is one:\n%s", stderr)
	}

	code, out, stderr = fleetCmd(t, "build", file, "--exclude", "batch")
	if code != exitError || !regexp.MustCompile(`(?m)^web +/nix/store/0000-nixos-system-web$`).MatchString(out) || strings.Contains(out, "db ") ||
		!strings.Contains(stderr, "building failed on some machines") {
		t.Fatalf("build with a failing machine: exit %d\n%s%s", code, out, stderr)
	}
	if strings.Contains(stderr, "ssh used") {
		t.Fatal("build used ssh")
	}
	// nix's own words are in the machine's log.
	logs, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".fleet", "logs", "build-*", "db.log"))
	if len(logs) == 0 {
		t.Fatal("no log for db")
	}
	if data, _ := os.ReadFile(logs[len(logs)-1]); !strings.Contains(string(data), "builder for db failed") {
		t.Fatalf("db's log lacks nix's error:\n%s", data)
	}

	// A nix older than fleet supports stops the run before any build,
	// saying what to do.
	if err := os.WriteFile(filepath.Join(bin, "nix"), []byte("#!/bin/sh\necho 'nix (Nix) 2.3.16'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = fleetCmd(t, "build", file, "--on", "web")
	if code != exitError || !strings.Contains(stderr, "nix (Nix) 2.3.16 is too old: fleet needs Nix 2.8 or newer") {
		t.Fatalf("build with an old nix: exit %d\n%s", code, stderr)
	}

	code, out, _ = fleetCmd(t, "build", file, "--on", "web", "--dry-run", "--rebuild")
	if code != exitOK || !strings.Contains(out, "build     nix --extra-experimental-features 'nix-command flakes' build --no-link --json 'path:/") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
}

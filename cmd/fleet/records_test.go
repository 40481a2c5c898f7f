package main

// fleet plan's deploy and unchanged (issue 14 §1): what fleet deploy
// recorded on this computer, compared with the configuration now. Against
// the cloud fakes and the stand-in nix and ssh of newClouds.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/fingerprint"
)

func TestPlanSaysDeployOrUnchanged(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file, "--no-deploy")
	machines := func(file string) map[string]string {
		t.Helper()
		p, _ := c.plan(t, file)
		out := map[string]string{}
		for _, m := range p.Machines {
			out[m.Machine] = m.Action + ": " + m.Reason
		}
		return out
	}
	expect := func(step string, got map[string]string, want map[string][]string) {
		t.Helper()
		for m, words := range want {
			for _, w := range words {
				if !strings.Contains(got[m], w) {
					t.Errorf("%s: %s is %q, want it to say %q", step, m, got[m], w)
				}
			}
		}
	}
	never := []string{"unknown: fleet cannot tell without building or asking the machine"}
	expect("never deployed", machines(c.file), map[string][]string{"web": never, "db": never, "gpu": never,
		"batch": {"skip: its host is switched off"}})

	if code, out, stderr := c.fleet(t, "deploy", c.file, "--on", "web"); code != exitOK {
		t.Fatalf("deploy web: exit %d\n%s%s", code, out, stderr)
	}
	unchanged := []string{"unchanged: runs /nix/store/v1-nixos-system-web, built from this configuration, as last deployed from here ("}
	expect("web deployed", machines(c.file), map[string][]string{"web": unchanged, "db": never, "gpu": never})

	// A feature of web's: web is to deploy, naming it; db and gpu have
	// no record still.
	data, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), `machine("web", system = "x86_64-linux",`,
		`monitoring = feature("monitoring", nixos = {"services.prometheus.enable": True})
machine("web", features = [monitoring], system = "x86_64-linux",`, 1)
	edited := c.file
	if err := os.WriteFile(edited, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("web's feature added", machines(edited), map[string][]string{
		"web": {"deploy: changed since last deployed from here (", "): machine web, feature monitoring (added)"},
		"db":  never})

	if code, _, stderr := c.fleet(t, "plan", edited, "--detailed-exitcode"); code != 2 {
		t.Errorf("plan --detailed-exitcode with a machine to deploy: exit %d, want 2\n%s", code, stderr)
	}
	// The listing says it too.
	code, out, stderr := c.fleet(t, "plan", edited)
	if code != exitOK || !strings.Contains(out, "~ deploy   web    changed since last deployed from here") || !strings.Contains(out, "? unknown  db") {
		t.Errorf("plan: exit %d\n%s%s", code, out, stderr)
	}

	// Deployed again (the stand-in nix builds v2), web is unchanged.
	c.setBuilt(t, "web", "v2")
	if code, out, stderr := c.fleet(t, "deploy", edited, "--on", "web"); code != exitOK {
		t.Fatalf("deploy web again: exit %d\n%s%s", code, out, stderr)
	}
	expect("web deployed again", machines(edited), map[string][]string{
		"web": {"unchanged: runs /nix/store/v2-nixos-system-web, built from this configuration, as last deployed from here ("}})

	// --only-changed finding the system running records it too: db
	// runs v1 (installed by apply), which is what it builds.
	if code, out, stderr := c.fleet(t, "deploy", edited, "--on", "db", "--only-changed"); code != exitOK || !strings.Contains(out, "unchanged") {
		t.Fatalf("deploy db --only-changed: exit %d\n%s%s", code, out, stderr)
	}
	expect("db found running its system", machines(edited), map[string][]string{
		"db": {"unchanged: runs /nix/store/v1-nixos-system-db, built from this configuration"}})

	// A damaged record: db is unknown, and the plan names the file to remove.
	recs, err := fingerprint.DefaultRecords(filepath.Dir(edited))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(recs.Dir, "db.json")
	if err := os.WriteFile(file, []byte("{\"version\": 1, \"mach"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("db's record damaged", machines(edited), map[string][]string{
		"db":  {"unknown: its deploy record " + file + ": not a deploy record", "(remove it; the next deploy writes a new one); fleet cannot tell"},
		"web": {"unchanged: "}})
}

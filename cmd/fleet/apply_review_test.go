package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tree a new host is installed from is written after its secrets
// are generated: it names the host key that now exists (not a throw
// saying it does not exist yet) and carries its copy.
func TestApplyWritesTreeAfterGenerate(t *testing.T) {
	c := newClouds(t)
	file, id := hostKeyFleet(t, c)
	code, out, stderr := c.fleet(t, "apply", file, "--on", "web", "--yes", "--identity", id)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	dir := filepath.Dir(file)
	data, err := os.ReadFile(filepath.Join(dir, ".fleet", "nix", "machines", "nixos", "web.nix"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "does not exist yet") {
		t.Errorf("the tree web was installed from says its host key does not exist:\n%s", data)
	}
	if _, err := os.Stat(filepath.Join(dir, ".fleet", "nix", "secrets", "web", "host-key", "key.age")); err != nil {
		t.Errorf("the tree has no copy of web's host key: %v", err)
	}
}

// The plan of fleet up and fleet down says what they do to the toggled
// machines: up installs a switched-off machine's new host, down skips a
// machine whose host it deletes.
func TestTogglePlanMachines(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file)
	line := func(out, machine string) string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[2] == machine && (f[0] == "+" || f[0] == "." || f[0] == "=" || f[0] == "~" || f[0] == "?") {
				return l
			}
		}
		return ""
	}
	out := c.apply(t, "up", "batch", "--file", c.file, "--no-deploy")
	if l := line(out, "batch"); !strings.Contains(l, "--no-deploy changes the cloud only (otherwise install:") {
		t.Errorf("fleet up batch: its line is %q\n%s", l, out)
	}
	out = c.apply(t, "down", "web", "--file", c.file)
	if l := line(out, "web"); !strings.Contains(l, ". skip") || !strings.Contains(l, "is deleted") {
		t.Errorf("fleet down web: its line is %q\n%s", l, out)
	}
}

// Two fleet-wide changes of the same name (a firewall in each of two GCE
// projects) are two steps of the graph, not one refused twice.
func TestApplyTwoProjects(t *testing.T) {
	c := newClouds(t)
	file := copyFleet(t, c.file, map[string]string{
		`gcp.instance(project = "proj", zone = "us-central1-b", type = "e2-standard-8", disk_gb = 100, enabled = False)`: `gcp.instance(project = "proj2", zone = "us-central1-b", type = "e2-standard-8", disk_gb = 100)`,
	})
	code, out, stderr := c.fleet(t, "apply", file, "--dry-run")
	if code != exitOK || !strings.Contains(out, "_cloud/create-firewall-cloudtest-fleet\n") || !strings.Contains(out, "_cloud/create-firewall-cloudtest-fleet-gcp-proj2\n") {
		t.Fatalf("apply --dry-run with two projects: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = c.fleet(t, "apply", file, "--yes", "--no-deploy")
	if code != exitOK || strings.Contains(stderr, "twice") {
		t.Fatalf("apply with two projects: exit %d\n%s%s", code, out, stderr)
	}
}

// A host created anew (down, then apply) runs nothing fleet deployed:
// its deploy record is forgotten, and the plan does not say unchanged.
func TestNewHostForgetsDeployRecord(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file, "--no-deploy")
	if code, out, stderr := c.fleet(t, "deploy", c.file, "--on", "web"); code != exitOK {
		t.Fatalf("deploy web: exit %d\n%s%s", code, out, stderr)
	}
	action := func() string {
		p, _ := c.plan(t, c.file)
		for _, m := range p.Machines {
			if m.Machine == "web" {
				return m.Action + ": " + m.Reason
			}
		}
		return ""
	}
	if a := action(); !strings.HasPrefix(a, "unchanged: ") {
		t.Fatalf("web after its deploy: %s", a)
	}
	c.apply(t, "down", "web", "--file", c.file)
	c.apply(t, "apply", c.file, "--no-deploy")
	if a := action(); !strings.HasPrefix(a, "unknown: not deployed from this computer yet") {
		t.Errorf("web on a new host, nothing installed: %s", a)
	}
}

// Ctrl-C in a --no-deploy apply: the changes not made are the cloud's
// failures, not a deploy's (nothing was to be deployed).
func TestInterruptedCloudOnlyApply(t *testing.T) {
	c := newClouds(t)
	code, out, stderr := c.fleetCtx(c.interruptOnGCEInsert(), t, "apply", c.file, "--yes", "--no-deploy")
	if code != exitError || strings.Contains(stderr, "deploying the hosts failed") || !strings.Contains(stderr, "run fleet apply again to retry") {
		t.Fatalf("an interrupted --no-deploy apply: exit %d\n%s%s", code, out, stderr)
	}
}

// A deploy to another tree folder (--out) is compared there by plan
// --out, where its flake.lock and the user's files are: a file of the
// user's in that folder only makes the default folder's plan differ.
func TestPlanOutFolder(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file, "--no-deploy")
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "extra.nix"), []byte("{ }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, o, stderr := c.fleet(t, "deploy", c.file, "--on", "web", "--out", out); code != exitOK {
		t.Fatalf("deploy web --out: exit %d\n%s%s", code, o, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "unchanged"},
		{nil, "deploy"},
	} {
		p, _ := c.plan(t, c.file, tc.args...)
		for _, m := range p.Machines {
			if m.Machine == "web" && m.Action != tc.want {
				t.Errorf("plan %v: web is %s (%s), want %s", tc.args, m.Action, m.Reason, tc.want)
			}
		}
	}
}

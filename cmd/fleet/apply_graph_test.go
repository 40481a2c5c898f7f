package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
)

// hostKeyFleet is the cloud test fleet with a generated ssh host key for
// web (not generated yet) and the identity that decrypts it.
func hostKeyFleet(t *testing.T, c *clouds) (file, id string) {
	t.Helper()
	id = filepath.Join(t.TempDir(), "admin.txt")
	recipient := keygen(t, id)
	file = copyFleet(t, c.file, map[string]string{
		`fleet(name = "cloudtest", admins = ["alice"])`: `fleet(name = "cloudtest", admins = ["alice", "` + recipient + `"])
input("agenix", url = "github:ryantm/agenix")
hk = secret("host-key", machines = "web", generate = gen.ssh_keypair(), needed_for = "activation")`,
		`machine("web", system = "x86_64-linux", state_version = "26.05", tags = ["cloud"],`: `machine("web", system = "x86_64-linux", state_version = "26.05", tags = ["cloud"], host_key = hk,`,
	})
	return file, id
}

// apply --dry-run prints the whole plan and the whole graph: the cloud
// calls in their phases, the host key generated before web's install,
// each install needing its host's create, and changes nothing: no cloud
// mutation, no secret file written, no tree.
func TestApplyDryRunGraph(t *testing.T) {
	c := newClouds(t)
	file, id := hostKeyFleet(t, c)
	code, out, stderr := c.fleet(t, "apply", file, "--dry-run", "--identity", id)
	if code != exitOK {
		t.Fatalf("apply --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	if c.mutations() != 0 {
		t.Errorf("the dry run made %d mutating cloud requests", c.mutations())
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "secrets")); err == nil {
		t.Error("the dry run wrote secret files")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the dry run wrote into the fleet's folder: %v", entries)
	}
	golden(t, "testdata/apply/dry-run.golden", strings.ReplaceAll(out, dir, "FLEETDIR"))
}

// One graph: a create that fails skips only its machine's install; the
// other machine's deploy, in the same run, goes on and activates.
func TestApplyFailedCreateSkipsOnlyItsMachine(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file, "--on", "web", "--on", "gpu")
	c.setBuilt(t, "web", "v2")
	c.hz.FailCreate("db", "server is not available in this location")
	c.remoteCommands()
	code, out, stderr := c.fleet(t, "apply", c.file, "--yes")
	if code != exitError || !strings.Contains(stderr, "1 change failed") || !strings.Contains(stderr, "create hetzner server db") ||
		!strings.Contains(stderr, "run fleet apply again to retry") || strings.Contains(stderr, "deploying the hosts failed") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	for _, row := range []string{`(?m)^db +failed +\S+ +create `, `(?m)^web +ok `, `(?m)^gpu +unchanged `} {
		if !regexp.MustCompile(row).MatchString(out) {
			t.Errorf("no row %s in the summary:\n%s", row, out)
		}
	}
	cmds := c.remoteCommands()
	if !slices.ContainsFunc(cmds, func(s string) bool { return strings.Contains(s, "exec systemd-run ") }) {
		t.Errorf("web was not activated: %q", cmds)
	}
	for _, l := range c.installed() {
		if strings.Contains(l, "#db ") {
			t.Errorf("db was installed though its create failed: %s", l)
		}
	}
}

// apply --json: the events of the whole graph on stdout, nothing else
// (the plan goes to stderr); the host key is generated before the
// install that copies it, which starts only after its host's create.
func TestApplyJSONEventsHostKeyBeforeInstall(t *testing.T) {
	c := newClouds(t)
	file, id := hostKeyFleet(t, c)
	code, out, stderr := c.fleet(t, "apply", file, "--on", "web", "--yes", "--json", "--identity", id)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "plan for fleet cloudtest") {
		t.Errorf("no plan on stderr:\n%s", stderr)
	}
	var events []deploy.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e deploy.Event
		if err := e.UnmarshalJSON(sc.Bytes()); err != nil {
			t.Fatalf("not a JSON event: %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	at := func(step string, kind deploy.EventKind) int {
		for i, e := range events {
			if e.Step == step && e.Kind == kind {
				return i
			}
		}
		t.Fatalf("no %s %s event in\n%s", step, kind, out)
		return -1
	}
	gen, create, install := at("_secrets/generate", deploy.EventSucceeded), at("web/create", deploy.EventSucceeded), at("web/install", deploy.EventStarted)
	if gen > install || create > install {
		t.Errorf("web's install started (event %d) before its host key was generated (%d) or its host created (%d)", install, gen, create)
	}
	// The fleet-wide resources come first, then the host.
	if at("_cloud/create-ssh_key-"+sshKeyName(t, events), deploy.EventSucceeded) > at("web/create", deploy.EventStarted) {
		t.Error("web's host was created before the fleet's ssh key")
	}
	done := map[string]deploy.Outcome{}
	for _, e := range events {
		if e.Kind == deploy.EventDone {
			done[e.Machine] = e.Outcome
		}
	}
	if done["web"] != deploy.OutcomeOK || done["_secrets"] != deploy.OutcomeOK || done["_cloud"] != deploy.OutcomeOK {
		t.Errorf("outcomes %v", done)
	}
	pub, err := os.ReadFile(filepath.Join(filepath.Dir(file), "secrets/web/host-key/key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.installed(), "extra "+strings.TrimSpace(string(pub))+" mode=600") {
		t.Errorf("the install did not get the host key generated in the run: %q", c.installed())
	}
}

// sshKeyName finds the fleet's ssh key's name in its create step.
func sshKeyName(t *testing.T, events []deploy.Event) string {
	t.Helper()
	for _, e := range events {
		if name, ok := strings.CutPrefix(e.Step, "_cloud/create-ssh_key-"); ok {
			return name
		}
	}
	t.Fatal("no ssh key created")
	return ""
}

package main

// deploy, exec and diff over a fleet with switched-off hosts
// (enabled = False): those machines have no address, and are skipped
// with a line each instead of refusing the whole run; naming one exactly
// is an error that says to switch it on. Against the cloud fakes and
// the stand-in nix and ssh of newClouds.

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestSwitchedOffMachinesSkipped(t *testing.T) {
	c := newClouds(t)
	// Store paths that pass diff's check of what a machine runs.
	for _, m := range []string{"web", "db", "gpu", "batch"} {
		c.setBuilt(t, m, strings.Repeat("0a", 16))
	}
	c.apply(t, "apply", c.file, "--no-deploy")
	skipBatch := "skip batch: its host is switched off (enabled = False); fleet up batch --file " + c.file + " turns it on"
	skipTrain := "skip train: its host is switched off (enabled = False); fleet up train --file " + c.file + " turns it on"
	activated := func(cmds []string) int {
		n := 0
		for _, s := range cmds {
			if strings.HasPrefix(s, "ssh root@") && strings.Contains(s, "exec systemd-run ") {
				n++
			}
		}
		return n
	}

	// The whole fleet: web, db and gpu deploy, batch and train are skipped.
	code, out, stderr := c.fleet(t, "deploy", c.file)
	if code != exitOK || !strings.Contains(stderr, skipBatch+"\n") || !strings.Contains(stderr, skipTrain+"\n") {
		t.Fatalf("deploy: exit %d\n%s%s", code, out, stderr)
	}
	if n := activated(c.remoteCommands()); n != 3 {
		t.Errorf("deploy activated %d machines, want 3 (web, db, gpu)", n)
	}

	// A tag: the same.
	code, out, stderr = c.fleet(t, "deploy", c.file, "--on", "@cloud", "--dry-run")
	if code != exitOK || !strings.Contains(stderr, skipBatch+"\n") || !strings.Contains(stderr, skipTrain+"\n") ||
		!strings.Contains(out, "web:\n") || strings.Contains(out, "batch:") || strings.Contains(out, "train:") {
		t.Fatalf("deploy --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	c.remoteCommands()

	// --json: a skip event per switched-off machine.
	code, out, stderr = c.fleet(t, "deploy", c.file, "--json")
	if code != exitOK {
		t.Fatalf("deploy --json: exit %d\n%s%s", code, out, stderr)
	}
	var skipped []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("--json printed %q: %v", line, err)
		}
		if ev["kind"] == "skipped" && ev["step"] == nil {
			if ev["outcome"] != "switched-off" || !strings.Contains(ev["reason"].(string), "its host is switched off (enabled = False)") {
				t.Errorf("skip event: %s", line)
			}
			skipped = append(skipped, ev["machine"].(string))
		}
	}
	if !slices.Equal(skipped, []string{"batch", "train"}) {
		t.Errorf("--json skip events for %q, want batch and train\n%s", skipped, out)
	}
	c.remoteCommands()

	// exec and diff skip them too.
	code, out, stderr = c.fleet(t, "exec", c.file, "--", "true")
	if code != exitOK || !strings.Contains(stderr, skipBatch+"\n") || !strings.Contains(stderr, skipTrain+"\n") {
		t.Fatalf("exec: exit %d\n%s%s", code, out, stderr)
	}
	cmds := c.remoteCommands()
	if n := len(slices.DeleteFunc(slices.Clone(cmds), func(s string) bool { return !strings.HasSuffix(s, " true") })); n != 3 {
		t.Errorf("exec ran on %d machines, want 3: %q", n, cmds)
	}
	code, out, stderr = c.fleet(t, "diff", c.file, "--on", "*")
	if code != exitOK || !strings.Contains(stderr, skipBatch+"\n") || !strings.Contains(stderr, skipTrain+"\n") {
		t.Fatalf("diff: exit %d\n%s%s", code, out, stderr)
	}

	c.remoteCommands()

	// Named exactly: an error that says how to switch it on, and nothing runs.
	for _, cmd := range [][]string{{"deploy", c.file, "--on", "batch"}, {"deploy", c.file, "--on", "batch", "--dry-run"},
		{"exec", c.file, "--on", "web", "--on", "batch", "--", "true"}, {"diff", c.file, "--on", "batch"}} {
		code, out, stderr = c.fleet(t, cmd...)
		if code != exitError || !strings.Contains(stderr, "machine batch (") ||
			!strings.Contains(stderr, "its host is switched off (enabled = False), so it has no address: fleet up batch --file "+c.file+" switches it on") {
			t.Errorf("%q: exit %d\n%s%s", cmd, code, out, stderr)
		}
		if cmds := c.remoteCommands(); len(cmds) > 0 {
			t.Errorf("%q ran %q", cmd, cmds)
		}
	}
	// A pattern that selects only switched-off machines: nothing to do.
	code, out, stderr = c.fleet(t, "deploy", c.file, "--on", "batch*", "--on", "train")
	if code != exitError || !strings.Contains(stderr, "machine train (") || strings.Contains(stderr, "machine batch (") {
		t.Errorf("deploy of a pattern and a name: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = c.fleet(t, "deploy", c.file, "--on", "batch*")
	if code != exitError || !strings.Contains(stderr, skipBatch+"\n") || !strings.Contains(stderr, "nothing to deploy: every machine selected has its host switched off") {
		t.Errorf("deploy of switched-off machines only: exit %d\n%s%s", code, out, stderr)
	}

	// Without credentials, switched off is what the file says: skipped,
	// with a note that the cloud could not tell otherwise.
	none := deps{getenv: func(string) string { return "" }, providers: providers}
	var o, e bytes.Buffer
	code = runWith(context.Background(), none, []string{"fleet", "deploy", c.file, "--dry-run"}, strings.NewReader(""), &o, &e)
	if code != exitOK || !strings.Contains(e.String(), skipBatch+"\n") || !strings.Contains(e.String(), skipTrain+"\n") ||
		!strings.Contains(e.String(), "note: the hetzner API could not be asked (hetzner: no credentials: set HCLOUD_TOKEN") ||
		!strings.Contains(e.String(), "): batch taken to be switched off, as the file says, though fleet up may have switched it on\n") ||
		!strings.Contains(o.String(), "ssh root@<public address of web's host> ") {
		t.Errorf("dry run without credentials: exit %d\n%s%s", code, o.String(), e.String())
	}

	// Switched on for an apply (fleet up), batch has an address and
	// deploys like the others, although the file still says enabled = False.
	c.apply(t, "up", "batch", "--file", c.file)
	c.remoteCommands()
	code, out, stderr = c.fleet(t, "deploy", c.file, "--on", "batch")
	if code != exitOK || strings.Contains(stderr, "skip batch") {
		t.Fatalf("deploy of batch switched on: exit %d\n%s%s", code, out, stderr)
	}
	if n := activated(c.remoteCommands()); n != 1 {
		t.Errorf("batch switched on: %d activations, want 1", n)
	}
	code, out, stderr = c.fleet(t, "deploy", c.file)
	if code != exitOK || strings.Contains(stderr, "skip batch") || !strings.Contains(stderr, skipTrain) {
		t.Fatalf("deploy with batch switched on: exit %d\n%s%s", code, out, stderr)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool/jsondoc"
)

// loadDoc reads the fields a document lists under a heading.
func loadDoc(t *testing.T, file, heading string) *jsondoc.Doc {
	t.Helper()
	doc, err := jsondoc.Load(filepath.Join(repoRoot, "docs", file), heading)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkDoc checks one JSON output against doc: readable (no \u0026 and
// the like) and field by field as the document lists them.
func checkDoc(t *testing.T, doc *jsondoc.Doc, what, out string) map[string]any {
	t.Helper()
	if strings.Contains(out, `\u00`) {
		t.Errorf("%s: escaped characters:\n%s", what, out)
	}
	for _, p := range doc.Check([]byte(out)) {
		t.Errorf("%s: %s", what, p)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
	if v["version"] != 1.0 {
		t.Errorf("%s: version %v, want 1", what, v["version"])
	}
	return v
}

// fieldsSeen fails for documented fields no output had: the document
// lists none that fleet never writes.
func fieldsSeen(t *testing.T, doc *jsondoc.Doc) {
	t.Helper()
	if unseen := doc.Unseen(); len(unseen) > 0 {
		t.Errorf("documented but never written: %v", unseen)
	}
}

// The plan's JSON is docs/plan-json.md, read as generic JSON: creates
// (with scopes and prices), an in-place update, a refused replace and a
// provider without credentials between them write every field.
func TestPlanJSONMatchesDoc(t *testing.T) {
	doc := loadDoc(t, "plan-json.md", "fleet plan --json")
	c := newClouds(t)
	plan := func(file string) map[string]any {
		t.Helper()
		code, out, stderr := c.fleet(t, "plan", file, "--json")
		if code != exitOK {
			t.Fatalf("plan: exit %d\n%s", code, stderr)
		}
		v := checkDoc(t, doc, "plan", out)
		// The totals are the sums of the changes' cents.
		var before, after float64
		for _, ch := range v["changes"].([]any) {
			cost := ch.(map[string]any)["monthly_cost_cents"].(map[string]any)
			before += cost["before"].(float64)
			after += cost["after"].(float64)
		}
		total := v["monthly_cost_cents"].(map[string]any)
		if total["before"] != before || total["after"] != after {
			t.Errorf("totals %v, the changes add up to %v -> %v", total, before, after)
		}
		return v
	}
	first := plan(c.file)
	if first["monthly_cost_cents"].(map[string]any)["after"].(float64) <= 0 {
		t.Errorf("the first plan costs nothing: %v", first["monthly_cost_cents"])
	}
	// Secrets and machines: a fleet with a secret file missing, one
	// stale, one typed by a person and one damaged, new hosts and hosts
	// switched off.
	v := plan(secretsPlanFleet(t, c.file))
	got := map[string]string{}
	for _, x := range v["secrets"].([]any) {
		x := x.(map[string]any)
		got[x["file"].(string)] = x["action"].(string) + " " + x["secret"].(string) + " " + x["machine"].(string)
		if x["secret"] == "db-password" && !strings.Contains(x["reason"].(string), "recipients changed (0 added, 1 removed)") {
			t.Errorf("the stale file's reason: %v", x)
		}
	}
	want := map[string]string{
		"secrets/web/web-token/value.age":      "generate web-token web",
		"secrets/shared/api-token/value.age":   "prompt api-token ",
		"secrets/shared/db-password/value.age": "rekey db-password ",
		"secrets/shared/cache-key/value.age":   "repair cache-key ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("secrets: got %v, want %v", got, want)
	}
	machines := map[string]string{}
	for _, m := range v["machines"].([]any) {
		m := m.(map[string]any)
		machines[m["machine"].(string)] = m["action"].(string)
		if m["reason"] == "" {
			t.Errorf("no reason: %v", m)
		}
	}
	if want := "map[batch:skip db:install gpu:install train:skip web:install]"; fmt.Sprint(machines) != want {
		t.Errorf("machines: %v, want %s", machines, want)
	}
	c.apply(t, "apply", c.file)
	changed := copyFleet(t, c.file, map[string]string{
		`type = "cx22", location = "fsn1"`: `type = "cx22", location = "fsn1", labels = {"team": "web"}`,
		`type = "cx32", location = "nbg1"`: `type = "ccx23", location = "nbg1"`,
	})
	v = plan(changed)
	var reasons []string
	for _, ch := range v["changes"].([]any) {
		reasons = append(reasons, ch.(map[string]any)["reason"].(string))
	}
	if !strings.Contains(strings.Join(reasons, "\n"), "type cx32 -> ccx23") {
		t.Errorf("no readable replace reason in %q", reasons)
	}
	delete(c.env, "GOOGLE_APPLICATION_CREDENTIALS")
	v = plan(c.file)
	if m := v["machines"].([]any)[2].(map[string]any); m["machine"] != "gpu" || m["action"] != "unknown" || !strings.Contains(m["reason"].(string), "not compared") {
		t.Errorf("gpu without GCE credentials: %v", m)
	}
	fieldsSeen(t, doc)
}

// secretsPlanFleet is the cloud test fleet with four secrets, in a new
// folder: web-token's file is missing (generate), api-token's is typed
// by a person (prompt), db-password's was encrypted to an admin since
// removed (rekey), and cache-key's is not an age file (repair).
func secretsPlanFleet(t *testing.T, src string) string {
	t.Helper()
	id := filepath.Join(t.TempDir(), "admin.txt")
	recipient := keygen(t, id)
	old := filepath.Join(t.TempDir(), "old.txt")
	oldRecipient := keygen(t, old)
	header := `fleet(name = "cloudtest", admins = ["alice"])`
	decls := `
input("agenix", url = "github:ryantm/agenix", follows = {"nixpkgs": "nixpkgs"})
secret("db-password", shared = True, generate = gen.password(length = 24))
secret("cache-key", shared = True, generate = gen.password(length = 24))
secret("web-token", machines = "web", generate = gen.password(length = 24))
secret("api-token", shared = True, generate = gen.prompt(type = "hidden", label = "API token"))
`
	file := copyFleet(t, src, map[string]string{header: `fleet(name = "cloudtest", admins = ["alice", "` + recipient + `", "` + oldRecipient + `"])` + decls})
	code, out, stderr := fleetCmd(t, "secrets", "generate", file, "--identity", id)
	if code != exitError || !strings.Contains(stderr, "1 secret file typed by a person is missing") {
		t.Fatalf("generate: exit %d\n%s%s", code, out, stderr)
	}
	dir := filepath.Dir(file)
	if err := os.Remove(filepath.Join(dir, "secrets/web/web-token/value.age")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets/shared/cache-key/value.age"), []byte("not age\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src2, _ := os.ReadFile(file)
	if err := os.WriteFile(file, []byte(strings.Replace(string(src2), `, "`+oldRecipient+`"`, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// fleet hosts --json is docs/plan-json.md's, with and without credentials.
func TestHostsJSONMatchesDoc(t *testing.T) {
	doc := loadDoc(t, "plan-json.md", "fleet hosts --json")
	c := newClouds(t)
	c.apply(t, "apply", c.file)
	hosts := func() map[string]map[string]any {
		t.Helper()
		code, out, stderr := c.fleet(t, "hosts", c.file, "--json")
		if code != exitOK {
			t.Fatalf("hosts: exit %d\n%s", code, stderr)
		}
		v := checkDoc(t, doc, "hosts", out)
		by := map[string]map[string]any{}
		for _, h := range v["hosts"].([]any) {
			by[h.(map[string]any)["machine"].(string)] = h.(map[string]any)
		}
		return by
	}
	by := hosts()
	if web := by["web"]; web["status"] != "running" || web["ipv4"] == nil || web["monthly_cost_cents"].(float64) <= 0 || web["enabled"] != true {
		t.Errorf("web: %v", web)
	}
	if batch := by["batch"]; batch["status"] != "absent" || batch["enabled"] != false || batch["monthly_cost_cents"] != 0.0 {
		t.Errorf("batch (switched off): %v", batch)
	}
	if gpu := by["gpu"]; gpu["gpus"] != 1.0 || gpu["gpu"] != "nvidia-tesla-t4" || gpu["place"] != "us-central1-f" {
		t.Errorf("gpu: %v", gpu)
	}
	delete(c.env, "GOOGLE_APPLICATION_CREDENTIALS")
	if gpu := hosts()["gpu"]; gpu["status"] != "unknown" || gpu["monthly_cost_cents"].(float64) <= 0 {
		t.Errorf("gpu without credentials: %v", gpu)
	}
	fieldsSeen(t, doc)
}

// fleet overlays --json is docs/overlays-json.md's, for the reference
// fleet (patches, fallbacks with platforms, overrides).
func TestOverlaysJSONMatchesDoc(t *testing.T) {
	doc := loadDoc(t, "overlays-json.md", "fleet overlays --json")
	code, out, stderr := fleetCmd(t, "overlays", filepath.Join(repoRoot, "fleet.star"), "--json", "--today", "2026-06-01")
	if code != exitOK {
		t.Fatalf("overlays: exit %d\n%s", code, stderr)
	}
	v := checkDoc(t, doc, "overlays", out)
	if !strings.Contains(out, "Formatter<fs::u8path>") {
		t.Errorf("a reason with < and > is not as written:\n%s", out)
	}
	// The same order as the table, and the same ages.
	_, table, _ := fleetCmd(t, "overlays", filepath.Join(repoRoot, "fleet.star"), "--today", "2026-06-01")
	rows := strings.Split(strings.TrimSpace(table), "\n")[1:]
	list := v["overlays"].([]any)
	if len(list) != len(rows) {
		t.Fatalf("%d overlays in JSON, %d in the table", len(list), len(rows))
	}
	for i, o := range list {
		o := o.(map[string]any)
		f := strings.Fields(rows[i])
		if f[0] != o["kind"] || f[1] != o["name"] {
			t.Errorf("row %d: table %q, JSON %v", i, rows[i], o)
		}
		age := "-"
		if days, ok := o["age_days"].(float64); ok {
			age = fmt.Sprintf("%dd", int(days))
		}
		if f[4] != age {
			t.Errorf("row %d: table age %s, JSON %s", i, f[4], age)
		}
	}
	fieldsSeen(t, doc)
}

// plan --detailed-exitcode exits as terraform plan -detailed-exitcode
// does: 0 nothing to do, 2 changes, 1 an error (a cloud not compared, a
// usage error); without the flag, the exit codes are as before.
func TestPlanDetailedExitcode(t *testing.T) {
	c := newClouds(t)
	exit := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, stderr := c.fleet(t, args...)
		if code != want {
			t.Fatalf("fleet %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, stderr)
		}
		return out, stderr
	}
	out, _ := exit(2, "plan", c.file, "--detailed-exitcode")
	if !strings.Contains(out, "create") {
		t.Errorf("the plan was not printed:\n%s", out)
	}
	out, _ = exit(2, "plan", "--json", c.file, "--detailed-exitcode")
	if !json.Valid([]byte(out)) {
		t.Errorf("--json with --detailed-exitcode:\n%s", out)
	}
	exit(exitOK, "plan", c.file)
	c.apply(t, "apply", c.file)
	exit(exitOK, "plan", c.file, "--detailed-exitcode")
	exit(exitOK, "plan", c.file, "--json", "--detailed-exitcode")
	// Secret files to write are changes: 2, the clouds as wanted.
	out, _ = exit(2, "plan", secretsPlanFleet(t, c.file), "--detailed-exitcode")
	for _, want := range []string{
		"secrets: 1 file to generate, 1 to be typed by a person, 1 to rekey, 1 damaged, to repair by hand\n",
		"+ generate  secrets/web/web-token/value.age", "~ rekey     secrets/shared/db-password/value.age",
		"machines:\n", "? unknown  db ", ". skip     train  its host is switched off (enabled = False); fleet up train --file ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan with secrets lacks %q:\n%s", want, out)
		}
	}
	// A refused replace is a difference: 2, though apply would not do it.
	bigger := copyFleet(t, c.file, map[string]string{`type = "cx22"`: `type = "cx32"`})
	exit(2, "plan", bigger, "--detailed-exitcode")
	// Not every cloud compared: nobody knows, so 1, after the plan.
	delete(c.env, "GOOGLE_APPLICATION_CREDENTIALS")
	out, stderr := exit(exitError, "plan", c.file, "--detailed-exitcode")
	if !strings.Contains(out, "monthly cost") || !strings.Contains(stderr, "not every cloud was compared") || !strings.Contains(stderr, "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("without GCE credentials:\n%s%s", out, stderr)
	}
	exit(exitOK, "plan", c.file)
	// Usage errors are 1 under the flag, where 2 means changes.
	exit(exitError, "plan", c.file, "--detailed-exitcode", "--no-such-flag")
	exit(exitError, "plan", "-detailed-exitcode")
	exit(exitUsage, "plan", c.file, "--no-such-flag")
	exit(exitUsage, "plan", c.file, "--detailed-exitcode=false", "--no-such-flag")
}

// TestReferenceFleetPlan is issue 14's "one plan" on the reference
// fleet, without credentials: its cloud changes, its 24 missing secret
// files (2 of them typed by a person) and all 8 machines, each with an
// action and a reason.
func TestReferenceFleetPlan(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"fleet.star", "features", "lib", "nix", "pkgs"} {
		if err := os.CopyFS(filepath.Join(dir, p), os.DirFS(filepath.Join(repoRoot, p))); err != nil {
			if err := copyFile(filepath.Join(repoRoot, p), filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// No credentials, whatever the environment has.
	for _, k := range []string{"HCLOUD_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "FLEET_AGE_IDENTITY"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	file := filepath.Join(dir, "fleet.star")
	code, out, stderr := fleetCmd(t, "plan", file)
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"hetzner server    cinnabar", "monthly cost: 0.00 -> ",
		"secrets: 22 files to generate, 2 to be typed by a person\n", "machines:\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}
	code, out, stderr = fleetCmd(t, "plan", file, "--json")
	if code != exitOK {
		t.Fatalf("plan --json: exit %d\n%s", code, stderr)
	}
	var v struct {
		Changes  []struct{ Resource, Name string }
		Secrets  []struct{ Action, File, Reason string }
		Machines []struct{ Machine, Action, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Changes) == 0 {
		t.Errorf("no cloud changes")
	}
	if len(v.Secrets) != 24 {
		t.Errorf("%d secret files, want the 24 missing", len(v.Secrets))
	}
	for _, s := range v.Secrets {
		if (s.Action != "generate" && s.Action != "prompt") || s.Reason == "" {
			t.Errorf("secret file %v", s)
		}
	}
	got := map[string]string{}
	for _, m := range v.Machines {
		if m.Reason == "" {
			t.Errorf("machine %s: no reason", m.Machine)
		}
		got[m.Machine] = m.Action
	}
	want := "map[argentum:unknown blackphos:unknown cinnabar:unknown electrum:skip galena:skip rosegold:unknown scheelite:skip stibnite:unknown]"
	if fmt.Sprint(got) != want {
		t.Errorf("machines: %v\nwant %s", got, want)
	}
}

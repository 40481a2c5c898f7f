package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/gcpfake"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// clouds is a pair of fakes and the CLI wired to them through the same
// variables a user sets (HCLOUD_TOKEN, GOOGLE_APPLICATION_CREDENTIALS ...),
// with fast polling and retries.
type clouds struct {
	hz       *hetznerfake.Server
	gce      *gcpfake.Server
	env      map[string]string
	file     string
	installs string
	commands string
	state    string
}

func newClouds(t *testing.T) *clouds {
	t.Helper()
	c := &clouds{hz: hetznerfake.New(), gce: gcpfake.New()}
	t.Cleanup(c.hz.Close)
	t.Cleanup(c.gce.Close)
	sa := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(sa, c.gce.ServiceAccountJSON(t, "proj"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env = map[string]string{
		"HCLOUD_TOKEN":                            c.hz.Token,
		"HCLOUD_ENDPOINT":                         c.hz.URL(),
		"GOOGLE_APPLICATION_CREDENTIALS":          sa,
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": c.gce.Endpoint(),
		"HOME": t.TempDir(),
	}
	c.file = copyFleet(t, "testdata/cloud/fleet.star", nil)
	// apply installs NixOS on the hosts it creates and deploys the others
	// whose system changed. The hosts' addresses are made up, so nothing
	// may reach them: stand-ins for nix, nixos-anywhere and ssh play the
	// machines, keeping each host's running system in a file of state/
	// named by its ssh destination. The system a machine's build prints
	// is /nix/store/<version>-nixos-system-<name>, the version v1 unless
	// state/<name>.built says otherwise (setBuilt).
	bin := t.TempDir()
	c.state = filepath.Join(bin, "state")
	if err := os.Mkdir(c.state, 0o755); err != nil {
		t.Fatal(err)
	}
	c.installs = filepath.Join(bin, "installs.log")
	c.commands = filepath.Join(bin, "commands.log")
	built := `built() { v=$(cat "` + c.state + `/$1.built" 2>/dev/null || echo v1); echo "/nix/store/$v-nixos-system-$1"; }` + "\n"
	scripts := map[string]string{
		// With --extra-files, it also records the host key it would copy:
		// the public half and the private half's mode.
		"nixos-anywhere": built + `echo "$*" >> ` + c.installs + "\n" +
			`while [ $# -gt 0 ]; do case "$1" in` + "\n" +
			`--extra-files) d="$2"; echo "extra $(cat "$d/etc/ssh/ssh_host_ed25519_key.pub") mode=$(stat -c %a "$d/etc/ssh/ssh_host_ed25519_key")" >> ` + c.installs + ";;\n" +
			`--flake) name="${2##*#}";;` + "\n" +
			`--target-host) host="$2";;` + "\n" +
			"esac; shift; done\n" +
			`built "$name" > "` + c.state + `/$host"` + "\n",
		"nix": built + nixStandIn + `echo "nix $*" >> ` + c.commands + "\n" + nixEvalStandIn +
			`if [ "$1" = build ]; then for a; do :; done; a="${a#*Configurations.}"; echo "[{\"outputs\":{\"out\":\"$(built "${a%%.*}")\"}}]"; fi` + "\n",
		// A batch's machine, built from the derivation nix eval printed.
		"nix-store": built + nixStoreMachine + `echo "nix-store $*" >> ` + c.commands + "\n" + `built "$m"` + "\n",
		// ssh: the master (-N) and its exit (-O) do nothing; a command
		// (after --) is recorded and played on the destination's state.
		"ssh": `while [ $# -gt 0 ] && [ "$1" != -- ]; do dest="$1"; shift; done` + "\n" +
			`[ $# -gt 0 ] || exit 0` + "\n" +
			`echo "ssh $dest $2" >> ` + c.commands + "\n" +
			`f="` + c.state + `/$dest"; eval "set -- $2"` + "\n" +
			`case "$1" in` + "\n" +
			`readlink) [ -f "$f" ] && cat "$f";;` + "\n" +
			// Activation: a shell that waits for an earlier one, then
			// execs systemd-run ... -- <system>/bin/switch-to-configuration.
			`sh) case "$3" in *"exec systemd-run "*) printf '%s\n' "$3" | sed -n 's|.* -- \(/nix/store/[^ /]*\)/bin/switch-to-configuration .*|\1|p' > "$f";; esac;;` + "\n" +
			"esac\n",
	}
	for name, script := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return c
}

// setBuilt makes the machine's next build print a new system. The tree
// does not change, so a system cached under its fingerprint would be
// used instead of building: the build cache is emptied.
func (c *clouds) setBuilt(t *testing.T, machine, version string) {
	t.Helper()
	if d := os.Getenv("FLEET_CACHE_DIR"); d != "" {
		os.RemoveAll(filepath.Join(d, "builds"))
	}
	if err := os.WriteFile(filepath.Join(c.state, machine+".built"), []byte(version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// remoteCommands returns the commands run through the stand-in ssh and
// nix, and forgets them.
func (c *clouds) remoteCommands() []string {
	data, _ := os.ReadFile(c.commands)
	os.Remove(c.commands)
	if len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// installed returns the nixos-anywhere calls so far.
func (c *clouds) installed() []string {
	data, _ := os.ReadFile(c.installs)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// copyFleet copies a fleet file, applying string replacements, so a test
// can change it.
func copyFleet(t *testing.T, src string, replace map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for old, nw := range replace {
		if !strings.Contains(s, old) {
			t.Fatalf("%s does not contain %q", src, old)
		}
		s = strings.ReplaceAll(s, old, nw)
	}
	p := filepath.Join(t.TempDir(), "fleet.star")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *clouds) deps() deps {
	return deps{getenv: func(k string) string { return c.env[k] }, providers: func(getenv func(string) string) []cloud.Provider {
		cfg := cloud.Config{Getenv: getenv,
			Backoff: cloud.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 6}}
		g := gcp.New(cfg)
		g.PollInterval = time.Millisecond
		g.MaxResults = 50
		return []cloud.Provider{g, hetzner.New(cfg, hetzner.WithPollInterval(time.Millisecond))}
	}}
}

func (c *clouds) fleet(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return c.fleetCtx(context.Background(), t, args...)
}

func (c *clouds) fleetCtx(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ownCache(t)
	var out, errb bytes.Buffer
	code := runWith(ctx, c.deps(), append([]string{"fleet"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func (c *clouds) mutations() int { return c.hz.Mutations() + c.gce.Mutations() }

// planJSON returns the plan's changes other than no-ops, as "action kind name".
func (c *clouds) plan(t *testing.T, file string, args ...string) (*cloud.Plan, []string) {
	t.Helper()
	code, out, stderr := c.fleet(t, append([]string{"plan", file, "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	var p cloud.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	var changes []string
	for _, ch := range p.Changes {
		if ch.Action != cloud.NoOp {
			changes = append(changes, string(ch.Action)+" "+ch.Resource+" "+ch.Name)
		}
	}
	return &p, changes
}

func (c *clouds) apply(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := c.fleet(t, append(args, "--yes")...)
	if code != exitOK {
		t.Fatalf("%s: exit %d\n%s%s", args[0], code, out, stderr)
	}
	return out
}

func TestCloudFirstApplyThenNothing(t *testing.T) {
	c := newClouds(t)
	_, changes := c.plan(t, c.file)
	want := "create firewall cloudtest-fleet|create instance gpu|create ssh_key cloudtest-|create server db|create server web"
	if got := strings.Join(changes, "|"); !strings.HasPrefix(got, "create firewall cloudtest-fleet|create instance gpu|create ssh_key cloudtest-") ||
		!strings.HasSuffix(got, "create server db|create server web") {
		t.Fatalf("first plan: %s\nwant %s", got, want)
	}
	out := c.apply(t, "apply", c.file)
	if !strings.Contains(out, "applied 5 of 5 changes") {
		t.Fatalf("apply output:\n%s", out)
	}
	// NixOS was installed on each new host, at its new address, from
	// the flake tree apply wrote.
	installs := c.installed()
	if len(installs) != 3 || !strings.Contains(out, "installing NixOS on the new hosts: db, gpu, web") {
		t.Fatalf("installs: %q\n%s", installs, out)
	}
	ips := map[string]string{}
	for _, s := range c.hz.Servers() {
		ips[s.Name] = s.IPv4
	}
	for _, name := range []string{"web", "db"} {
		want := "#" + name + " --target-host root@" + ips[name]
		if !slices.ContainsFunc(installs, func(l string) bool { return strings.Contains(l, want) && strings.Contains(l, "--flake ") }) {
			t.Errorf("no install of %s (%s) in %q", name, want, installs)
		}
	}
	// The truth is in the clouds: a second plan and apply change nothing.
	if _, changes := c.plan(t, c.file); len(changes) != 0 {
		t.Fatalf("plan after apply: %v", changes)
	}
	before := c.mutations()
	c.remoteCommands()
	out = c.apply(t, "apply", c.file)
	if !strings.Contains(out, "no cloud change to apply") || c.mutations() != before {
		t.Fatalf("second apply made %d mutating requests:\n%s", c.mutations()-before, out)
	}
	// Every host runs what was installed: each is asked (what it needs
	// for a deploy, what it runs), none is touched.
	if !strings.Contains(out, "3 machines: 3 unchanged") {
		t.Fatalf("second apply deployed:\n%s", out)
	}
	for _, cmd := range c.remoteCommands() {
		local := strings.HasPrefix(cmd, "nix build ") || strings.HasPrefix(cmd, "nix eval ") || strings.HasPrefix(cmd, "nix-store --realise ")
		if !local && !strings.HasSuffix(cmd, " readlink -f /run/current-system") &&
			!strings.HasSuffix(cmd, ` sh -c 'command -v nix-daemon >/dev/null 2>&1 || echo "nix-daemon missing"'`) {
			t.Errorf("second apply ran %q on an unchanged host", cmd)
		}
	}
	// hosts shows what runs, where, with its address and cost.
	code, out, stderr := c.fleet(t, "hosts", c.file)
	if code != exitOK || !strings.Contains(out, "web") || !strings.Contains(out, "running") || !strings.Contains(out, "(enabled = False)") {
		t.Fatalf("hosts: exit %d\n%s%s", code, out, stderr)
	}
}

// apply deploys a host whose system changed (and only it), as deploy
// would, and the next apply finds it up to date; --no-deploy changes
// the cloud only.
func TestCloudApplyDeploysChangedSystems(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file)
	ips := map[string]string{}
	for _, s := range c.hz.Servers() {
		ips[s.Name] = s.IPv4
	}
	c.setBuilt(t, "web", "v2")
	c.remoteCommands()
	out := c.apply(t, "apply", c.file, "--no-deploy")
	if strings.Contains(out, "deploying") || len(c.remoteCommands()) != 0 {
		t.Fatalf("--no-deploy deployed:\n%s", out)
	}
	out = c.apply(t, "apply", c.file)
	if !strings.Contains(out, "deploying where the system changed: db, gpu, web") ||
		!regexp.MustCompile(`(?m)^web +ok `).MatchString(out) || !strings.Contains(out, "3 machines: 1 ok, 2 unchanged") {
		t.Fatalf("apply after web changed:\n%s", out)
	}
	web := "root@" + ips["web"]
	var webCmds []string
	for _, cmd := range c.remoteCommands() {
		if strings.Contains(cmd, "nix copy") || strings.Contains(cmd, "nix-env") || strings.Contains(cmd, "systemd-run") {
			if !strings.Contains(cmd, web) {
				t.Errorf("a host that did not change got %q", cmd)
			}
			webCmds = append(webCmds, cmd)
		}
	}
	sys := "/nix/store/v2-nixos-system-web"
	want := []string{
		"nix copy --no-check-sigs --to ssh-ng://" + web + " " + sys,
		"ssh " + web + " nix-env -p /nix/var/nix/profiles/system --set " + sys,
		"ssh " + web + " sh -c '",
	}
	if len(webCmds) != len(want) || webCmds[0] != want[0] || webCmds[1] != want[1] || !strings.HasPrefix(webCmds[2], want[2]) ||
		!strings.Contains(webCmds[2], "exec systemd-run --wait --collect --quiet --service-type=exec --unit=fleet-activate ") ||
		!strings.HasSuffix(webCmds[2], " -- "+sys+"/bin/switch-to-configuration switch'") {
		t.Fatalf("web's deploy:\n%s\nwant\n%s...", strings.Join(webCmds, "\n"), strings.Join(want, "\n"))
	}
	if out := c.apply(t, "apply", c.file); !strings.Contains(out, "3 machines: 3 unchanged") {
		t.Fatalf("apply after the deploy:\n%s", out)
	}
}

func TestCloudToggles(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file)
	// fleet up switches a toggled host on for one apply, and says so.
	out := c.apply(t, "up", "batch", "train", "--file", c.file)
	if !strings.Contains(out, "switching batch on for this apply") || !strings.Contains(out, "applied 2 of 2 changes") {
		t.Fatalf("up:\n%s", out)
	}
	if len(c.hz.Servers()) != 3 || len(c.gce.InstanceNames()) != 2 {
		t.Fatalf("after up: %d servers, %d instances", len(c.hz.Servers()), len(c.gce.InstanceNames()))
	}
	// A plain plan goes back to the file: the toggled hosts are deleted.
	p, changes := c.plan(t, c.file)
	if strings.Join(changes, "|") != "delete instance train|delete server batch" {
		t.Fatalf("plan after up: %v", changes)
	}
	for _, ch := range p.Changes {
		if ch.Action == cloud.Delete && (!strings.Contains(ch.Reason, "enabled = False") || ch.MonthlyCostBefore <= 0 || ch.MonthlyCostAfter != 0) {
			t.Errorf("delete of a toggled host: reason %q, cost %.2f -> %.2f", ch.Reason, ch.MonthlyCostBefore, ch.MonthlyCostAfter)
		}
	}
	if p.MonthlyCost.After >= p.MonthlyCost.Before {
		t.Errorf("switching off should save money: %.2f -> %.2f", p.MonthlyCost.Before, p.MonthlyCost.After)
	}
	c.apply(t, "apply", c.file)
	// fleet down switches an enabled one off for this apply.
	out = c.apply(t, "down", "gpu", "--file", c.file)
	if !strings.Contains(out, "switching gpu off") || len(c.gce.InstanceNames()) != 0 {
		t.Fatalf("down:\n%s\ninstances %v", out, c.gce.InstanceNames())
	}
}

func TestCloudOrphanAndNamesake(t *testing.T) {
	c := newClouds(t)
	// An orphan with our labels (a machine since removed) and an
	// unlabelled server that happens to be called "web".
	c.hz.SeedServer(hetznerfake.ServerSeed{Name: "old", Labels: map[string]string{"managed-by": "fleet", "fleet": "cloudtest", "machine": "old"}})
	c.hz.SeedServer(hetznerfake.ServerSeed{Name: "web", Labels: map[string]string{"team": "other"}})
	p, changes := c.plan(t, c.file)
	if !slices.Contains(changes, "delete server old") {
		t.Fatalf("the orphan should be deleted: %v", changes)
	}
	for _, ch := range p.Changes {
		if ch.Name == "old" && !strings.Contains(ch.Reason, "orphan") {
			t.Errorf("orphan reason: %q", ch.Reason)
		}
	}
	code, out, stderr := c.fleet(t, "apply", c.file, "--yes")
	if code != exitError || !strings.Contains(stderr, `server "web"`) || !strings.Contains(stderr, "was not created by this fleet") {
		t.Fatalf("namesake: exit %d\n%s%s", code, out, stderr)
	}
	for _, s := range c.hz.Servers() {
		switch s.Name {
		case "web":
			if s.Labels["team"] != "other" || s.Labels["fleet"] != "" {
				t.Errorf("the unlabelled namesake was touched: %v", s.Labels)
			}
		case "old":
			t.Error("the orphan was not deleted")
		}
	}
	// The other changes went through despite the failure.
	if len(c.gce.InstanceNames()) != 1 {
		t.Errorf("gpu should have been created: %v", c.gce.InstanceNames())
	}
}

func TestCloudReplaceRefusedWithoutFlag(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file)
	bigger := copyFleet(t, c.file, map[string]string{`type = "cx22"`: `type = "cx32"`})
	p, _ := c.plan(t, bigger)
	var web *cloud.Change
	for _, ch := range p.Changes {
		if ch.Name == "web" {
			web = ch
		}
	}
	if web == nil || web.Action != cloud.Replace || web.Refused == "" || !strings.Contains(web.Reason, "type cx22 -> cx32") {
		t.Fatalf("web: %+v", web)
	}
	before := c.mutations()
	code, out, _ := c.fleet(t, "apply", bigger, "--yes")
	if code != exitOK || c.mutations() != before || !strings.Contains(out, "--allow-replace") {
		t.Fatalf("a refused replace must change nothing: exit %d, %d mutations\n%s", code, c.mutations()-before, out)
	}
	c.apply(t, "apply", bigger, "--allow-replace")
	for _, s := range c.hz.Servers() {
		if s.Name == "web" && !strings.Contains(s.Type, "cx32") {
			t.Errorf("web is still %s", s.Type)
		}
	}
	if _, changes := c.plan(t, bigger); len(changes) != 0 {
		t.Fatalf("after replace: %v", changes)
	}
}

func TestCloudRateLimitsAndFailuresConverge(t *testing.T) {
	c := newClouds(t)
	// The fakes match paths as their APIs name them: Hetzner's without
	// /v1, GCE's relative to /compute/v1/.
	c.hz.FailNext("POST", "/servers", 3, 429)
	c.gce.FailNext("POST", "projects/proj/zones/us-central1-f/instances", 2, 429)
	c.hz.FailCreate("db", "server is not available in this location")
	code, out, stderr := c.fleet(t, "apply", c.file, "--yes")
	if code != exitError || !strings.Contains(stderr, "1 change failed") || !strings.Contains(stderr, "db") {
		t.Fatalf("one failed create: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "server web: create done") || !strings.Contains(out, "instance gpu: create done") {
		t.Fatalf("the other creates should succeed after the 429s:\n%s", out)
	}
	// The 429s were answered (and retried through), not skipped.
	posts, limited := 0, 0
	for _, r := range c.hz.Requests() {
		if r.Method == "POST" && r.Path == "/servers" {
			posts++
		}
	}
	for _, r := range c.gce.Requests() {
		if r.Method == "POST" && r.Status == 429 {
			limited++
		}
	}
	if posts < 3+2 || limited != 2 {
		t.Errorf("%d server creates asked of Hetzner (want 3 rate-limited + web + db), %d GCE requests answered 429 (want 2)", posts, limited)
	}
	// The next apply converges.
	_, changes := c.plan(t, c.file)
	if strings.Join(changes, "|") != "create server db" {
		t.Fatalf("plan after a failed create: %v", changes)
	}
	c.apply(t, "apply", c.file)
	if _, changes := c.plan(t, c.file); len(changes) != 0 {
		t.Fatalf("not converged: %v", changes)
	}
}

// interruptOnGCEInsert is a context cancelled (Ctrl-C) once an apply is
// under way, when GCE got its insert, however long evaluating and
// planning took; the insert never finishes by itself.
func (c *clouds) interruptOnGCEInsert() context.Context {
	c.gce.SetOperationPolls(1000000)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for deadline := time.Now().Add(time.Minute); c.gce.Mutations() == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return ctx
}

// Ctrl-C in the middle of an apply: the next plan shows the truth.
func TestCloudInterruptedApply(t *testing.T) {
	c := newClouds(t)
	ctx := c.interruptOnGCEInsert()
	code, out, stderr := c.fleetCtx(ctx, t, "apply", c.file, "--yes")
	if code != exitError {
		t.Fatalf("an interrupted apply should fail: exit %d\n%s%s", code, out, stderr)
	}
	c.gce.SetOperationPolls(0)
	// The plan is the truth: what exists (whatever the interrupted apply
	// got to) is not created again, what does not exist is.
	_, changes := c.plan(t, c.file)
	servers := map[string]bool{}
	for _, s := range c.hz.Servers() {
		servers[s.Name] = true
	}
	instances := map[string]bool{}
	for _, n := range c.gce.InstanceNames() {
		instances[n] = true
	}
	if len(changes) == 0 {
		t.Fatal("the interrupted apply cannot have finished everything")
	}
	for _, ch := range changes {
		f := strings.Fields(ch)
		if f[0] != "create" || f[1] == "server" && servers[f[2]] || f[1] == "instance" && instances[f[2]] {
			t.Errorf("plan after Ctrl-C proposes %q, but the cloud says otherwise", ch)
		}
	}
	c.apply(t, "apply", c.file)
	if len(c.gce.InstanceNames()) != 1 || len(c.hz.Servers()) != 2 || len(c.hz.SSHKeys()) != 1 {
		t.Fatalf("after converging: instances %v, %d servers, %d keys", c.gce.InstanceNames(), len(c.hz.Servers()), len(c.hz.SSHKeys()))
	}
	if _, changes := c.plan(t, c.file); len(changes) != 0 {
		t.Fatalf("not converged: %v", changes)
	}
}

func TestCloudApplyNeedsYesWithoutTerminal(t *testing.T) {
	c := newClouds(t)
	code, _, stderr := c.fleet(t, "apply", c.file)
	if code != exitError || !strings.Contains(stderr, "without --yes") || c.mutations() != 0 {
		t.Fatalf("exit %d, %d mutations: %s", code, c.mutations(), stderr)
	}
}

func TestCloudApplyOn(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file, "--on", "web")
	var names []string
	for _, s := range c.hz.Servers() {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "web" || len(c.gce.InstanceNames()) != 0 {
		t.Fatalf("--on web created %v and %v", names, c.gce.InstanceNames())
	}
}

func TestPlanWithoutCredentials(t *testing.T) {
	code, out, stderr := fleetCmd(t, "plan", filepath.Join(repoRoot, "fleet.star"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"cinnabar", "unknown", "HCLOUD_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "monthly cost: 0.00 ->"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan without credentials should mention %q:\n%s", want, out)
		}
	}
}

// Labels and power are changed in place, never by replacing the host.
func TestCloudUpdateInPlace(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file)
	labelled := copyFleet(t, c.file, map[string]string{`type = "cx22", location = "fsn1"`: `type = "cx22", location = "fsn1", labels = {"team": "web"}`})
	p, changes := c.plan(t, labelled)
	if strings.Join(changes, "|") != "update server web" {
		t.Fatalf("a new label: %v", changes)
	}
	for _, ch := range p.Changes {
		if ch.Name == "web" && (strings.Join(ch.Fields, ",") != "labels" || !strings.Contains(ch.Reason, "+team=web")) {
			t.Errorf("update: fields %v, reason %q", ch.Fields, ch.Reason)
		}
	}
	c.apply(t, "apply", labelled)
	// Someone powers db off in the console: the plan powers it on again.
	powerOff(t, c, "db")
	_, changes = c.plan(t, labelled)
	if strings.Join(changes, "|") != "update server db" {
		t.Fatalf("a server powered off: %v", changes)
	}
	c.apply(t, "apply", labelled)
	if _, changes := c.plan(t, labelled); len(changes) != 0 {
		t.Fatalf("not converged: %v", changes)
	}
}

// powerOff switches a server off through the API, as a person would.
func powerOff(t *testing.T, c *clouds, name string) {
	t.Helper()
	p := hetzner.New(cloud.Config{Getenv: func(k string) string { return c.env[k] }}, hetzner.WithPollInterval(time.Millisecond))
	have, err := p.List(context.Background(), "cloudtest", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range have {
		if r.Name == name && r.Kind == "server" {
			want := *r
			want.Spec = map[string]string{}
			for k, v := range r.Spec {
				want.Spec[k] = v
			}
			want.Spec["power"] = "off"
			if _, err := p.Update(context.Background(), &want, r, []string{"power"}); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no server %s", name)
}

// A machine with a generated host key gets it at install time, decrypted
// with the admin identity into a private folder that is removed after.
func TestCloudInstallWithGeneratedHostKey(t *testing.T) {
	c := newClouds(t)
	id := filepath.Join(t.TempDir(), "admin.txt")
	recipient := keygen(t, id)
	file := copyFleet(t, c.file, map[string]string{
		`fleet(name = "cloudtest", admins = ["alice"])`: `fleet(name = "cloudtest", admins = ["alice", "` + recipient + `"])
input("agenix", url = "github:ryantm/agenix")
hk = secret("host-key", machines = "web", generate = gen.ssh_keypair(), needed_for = "activation")`,
		`machine("web", system = "x86_64-linux", state_version = "26.05", tags = ["cloud"],`: `machine("web", system = "x86_64-linux", state_version = "26.05", tags = ["cloud"], host_key = hk,`,
	})
	if code, out, stderr := fleetCmd(t, "secrets", "generate", file, "--identity", id); code != exitOK {
		t.Fatalf("generate: %s%s", out, stderr)
	}
	pub, _ := os.ReadFile(filepath.Join(filepath.Dir(file), "secrets/web/host-key/key.pub"))
	c.apply(t, "apply", file, "--on", "web", "--identity", id)
	var extra string
	for _, l := range c.installed() {
		if strings.HasPrefix(l, "extra ") {
			extra = l
		}
	}
	if extra != "extra "+strings.TrimSpace(string(pub))+" mode=600" {
		t.Fatalf("the install did not get web's host key: %q (installs %q)", extra, c.installed())
	}
	// The decrypted key does not outlive the install.
	leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "fleet-extra-files-*"))
	for _, d := range leftovers {
		if _, err := os.Stat(filepath.Join(d, "etc/ssh/ssh_host_ed25519_key")); err == nil {
			t.Errorf("a decrypted host key was left in %s", d)
		}
	}
}

// A machine with a cloud host and no target is deployed at its host's
// public address, as the cloud lists it now; without credentials the
// dry run still prints (with a placeholder) and a deploy says why not.
func TestCloudDeployGoesToHostAddress(t *testing.T) {
	c := newClouds(t)
	c.apply(t, "apply", c.file, "--no-deploy")
	ips := map[string]string{}
	for _, s := range c.hz.Servers() {
		ips[s.Name] = s.IPv4
	}
	web := "root@" + ips["web"]
	code, out, stderr := c.fleet(t, "deploy", c.file, "--on", "web", "--dry-run")
	if code != exitOK || !strings.Contains(out, "ssh "+web+" nix-env -p /nix/var/nix/profiles/system --set") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	c.remoteCommands()
	if code, out, stderr := c.fleet(t, "deploy", c.file, "--on", "web"); code != exitOK {
		t.Fatalf("deploy: exit %d\n%s%s", code, out, stderr)
	}
	cmds := c.remoteCommands()
	if !slices.ContainsFunc(cmds, func(s string) bool {
		return strings.HasPrefix(s, "ssh "+web+" sh -c ") && strings.Contains(s, "exec systemd-run ")
	}) {
		t.Fatalf("web was not activated at %s: %q", web, cmds)
	}
	if code, out, stderr := c.fleet(t, "exec", c.file, "--on", "db", "--", "true"); code != exitOK || !slices.Contains(c.remoteCommands(), "ssh root@"+ips["db"]+" sh -c true") {
		t.Fatalf("exec: exit %d\n%s%s", code, out, stderr)
	}
	// A switched-off host has no address: the error says how to fix it.
	code, _, stderr = c.fleet(t, "deploy", c.file, "--on", "batch")
	if code != exitError || !strings.Contains(stderr, "its host is switched off (enabled = False)") {
		t.Fatalf("deploy of a switched-off host: exit %d\n%s", code, stderr)
	}

	// No credentials: the dry run prints a placeholder, a deploy refuses.
	none := deps{getenv: func(string) string { return "" }, providers: providers}
	var o, e bytes.Buffer
	code = runWith(context.Background(), none, []string{"fleet", "deploy", c.file, "--on", "web", "--dry-run"}, strings.NewReader(""), &o, &e)
	if code != exitOK || !strings.Contains(o.String(), "ssh root@<public address of web's host> ") || !strings.Contains(e.String(), "shown as placeholders") {
		t.Fatalf("dry run without credentials: exit %d\n%s%s", code, o.String(), e.String())
	}
	o.Reset()
	e.Reset()
	code = runWith(context.Background(), none, []string{"fleet", "deploy", c.file, "--on", "web"}, strings.NewReader(""), &o, &e)
	if code != exitError || !strings.Contains(e.String(), "the hetzner API could not be asked") || !strings.Contains(e.String(), "HCLOUD_TOKEN") {
		t.Fatalf("deploy without credentials: exit %d\n%s%s", code, o.String(), e.String())
	}
}

// fleet(credentials = ...) names the secrets holding the clouds'
// credentials: with none in the environment, plan and apply decrypt them
// with the admin identity (a GCE key goes to a private file, removed
// afterwards); the environment still wins.
func TestCloudCredentialsFromSecrets(t *testing.T) {
	testtool.Require(t, "age", "age")
	c := newClouds(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	id := filepath.Join(t.TempDir(), "admin.txt")
	code, out, stderr := c.fleet(t, "secrets", "keygen", "--identity", id)
	if code != exitOK {
		t.Fatalf("keygen: exit %d\n%s", code, stderr)
	}
	recipient := strings.TrimSpace(out[strings.Index(out, "recipient: ")+len("recipient: "):])
	file := copyFleet(t, "testdata/cloud/fleet.star", map[string]string{
		`fleet(name = "cloudtest", admins = ["alice"])`: `fleet(name = "cloudtest", admins = ["alice", "` + recipient + `"],
    credentials = {"hetzner": "hcloud-token", "gcp": "gcp-key"})
secret("hcloud-token", shared = True)
secret("gcp-key", shared = True, generate = gen.prompt(type = "multiline"))`,
	})
	set := func(name, value string) {
		t.Helper()
		var o, e bytes.Buffer
		if code := runWith(context.Background(), c.deps(), []string{"fleet", "secrets", "set", "--file", file, name}, strings.NewReader(value), &o, &e); code != exitOK {
			t.Fatalf("secrets set %s: exit %d\n%s%s", name, code, o.String(), e.String())
		}
	}
	set("hcloud-token", c.env["HCLOUD_TOKEN"]+"\n")
	set("gcp-key", string(c.gce.ServiceAccountJSON(t, "proj")))
	delete(c.env, "HCLOUD_TOKEN")
	delete(c.env, "GOOGLE_APPLICATION_CREDENTIALS")

	// Without an identity to decrypt them: notes, and a plan that could
	// not compare.
	c.env["FLEET_AGE_IDENTITY"] = filepath.Join(t.TempDir(), "missing.txt")
	code, out, stderr = c.fleet(t, "plan", file)
	if !strings.Contains(stderr, "HCLOUD_TOKEN is not set, and the hetzner credentials in secret hcloud-token could not be read") ||
		!strings.Contains(stderr, "GOOGLE_APPLICATION_CREDENTIALS is not set, and the gcp credentials in secret gcp-key could not be read") {
		t.Fatalf("plan without an identity: exit %d\n%s%s", code, out, stderr)
	}

	c.env["FLEET_AGE_IDENTITY"] = id
	before := len(c.hz.Requests()) + len(c.gce.Requests())
	_, changes := c.plan(t, file)
	if got := strings.Join(changes, "|"); !strings.Contains(got, "create server web") || !strings.Contains(got, "create instance gpu") {
		t.Fatalf("plan with credentials from secrets: %s", got)
	}
	if after := len(c.hz.Requests()) + len(c.gce.Requests()); after == before {
		t.Fatal("the plan did not ask the clouds")
	}
	c.apply(t, "apply", file, "--no-deploy")
	if len(c.hz.Servers()) != 2 || len(c.gce.InstanceNames()) != 1 {
		t.Fatalf("after apply: %d servers, %d instances", len(c.hz.Servers()), len(c.gce.InstanceNames()))
	}
	// The decrypted key file is gone with the command.
	if left, _ := filepath.Glob(filepath.Join(tmp, "fleet-credentials-*")); len(left) != 0 {
		t.Fatalf("credentials left behind: %v", left)
	}
}

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/testtool"
)

var update = flag.Bool("update", false, "rewrite golden files, docs/starlark-api.md and docs/stdlib.md")

// repoRoot is where fleet.star and examples/ live, relative to this package.
const repoRoot = "../.."

// fleetCmd runs the CLI in-process and returns its exit code and output.
func fleetCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return fleetCmdIn(t, "", args...)
}

// ownCache gives the test a cache folder of its own (unless it chose
// one): a system one test's stand-in nix "built" must not be another
// test's cached build.
func ownCache(t *testing.T) {
	if os.Getenv("FLEET_CACHE_DIR") == "" {
		t.Setenv("FLEET_CACHE_DIR", t.TempDir())
	}
}

// fleetCmdIn is fleetCmd with stdin.
func fleetCmdIn(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ownCache(t)
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"fleet"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// keygen makes an age identity at path with fleet secrets keygen and
// returns its recipient.
func keygen(t *testing.T, path string) string {
	t.Helper()
	code, out, stderr := fleetCmd(t, "secrets", "keygen", "--identity", path)
	if code != exitOK {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	return strings.TrimSpace(out[strings.Index(out, "recipient: ")+len("recipient: "):])
}

func TestExitCodes(t *testing.T) {
	minimal := filepath.Join(repoRoot, "examples/minimal/fleet.star")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"run ok", []string{"run", minimal, "--out", t.TempDir()}, exitOK, "fleet minimal", ""},
		{"reference fleet", []string{"run", filepath.Join(repoRoot, "fleet.star"), "--out", t.TempDir()}, exitOK, "fleet vanixiets", ""},
		{"flags after FILE", []string{"graph", minimal, "--format", "json"}, exitOK, `"nodes"`, ""},
		{"flag=value after FILE", []string{"graph", minimal, "--format=dot"}, exitOK, "digraph fleet", ""},
		{"eval text", []string{"eval", minimal}, exitOK, "machine  web", ""},
		{"validation error", []string{"run", "testdata/bad.star"}, exitError, "", `bad.star:3:8: machine web: unknown feature "shh" (did you mean "ssh"?)`},
		{"missing file", []string{"run", "testdata/none.star"}, exitError, "", "no such file"},
		{"no fleet.star here", []string{"run"}, exitUsage, "", "no fleet.star in "},
		{"two FILEs", []string{"eval", minimal, minimal}, exitUsage, "", "takes one FILE"},
		{"unknown command", []string{"deploi"}, exitUsage, "", `no command "deploi"`},
		{"unknown flag", []string{"run", "--nope", minimal}, exitUsage, "", "run: unknown flag --nope"},
		{"bad format", []string{"graph", minimal, "--format", "svg"}, exitUsage, "", `--format "svg": use text, dot or json`},
		{"doc list", []string{"doc"}, exitOK, "machine(name, system", ""},
		{"doc one", []string{"doc", "overlay.fallback"}, exitOK, "Layer 2.", ""},
		{"doc unknown", []string{"doc", "machin"}, exitError, "", `no builtin or @stdlib name "machin" (did you mean "machine"?)`},
		{"doc list has @stdlib", []string{"doc"}, exitOK, "@stdlib//nixos.star\n  nixos_base(name = \"nixos-base\"", ""},
		{"doc @stdlib", []string{"doc", "@stdlib"}, exitOK, "Declares a feature for NixOS cloud VMs", ""},
		{"doc @stdlib file", []string{"doc", "@stdlib//darwin.star"}, exitOK, "  darwin_base(name = \"darwin-base\"", ""},
		{"doc @stdlib function", []string{"doc", "nixos_cloud"}, exitOK, "load(\"@stdlib//nixos.star\", \"nixos_cloud\")", ""},
		{"doc @stdlib typo", []string{"doc", "nixos_bas"}, exitError, "", `(did you mean "nixos_base"?)`},
		{"doc @stdlib unknown file", []string{"doc", "@stdlib//nixo.star"}, exitError, "", `no file @stdlib//nixo.star in @stdlib (did you mean "@stdlib//nixos.star"?)`},
		{"doc markdown bad arg", []string{"doc", "--markdown", "machine"}, exitUsage, "", "--markdown takes no argument or @stdlib"},
		{"version", []string{"version"}, exitOK, "fleet dev", ""},
		{"help", []string{"--help"}, exitOK, "COMMANDS", ""},
		{"command help", []string{"graph", "--help"}, exitOK, "--format", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := fleetCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("fleet %s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout containing %q, stderr containing %q",
					strings.Join(tc.args, " "), code, tc.code, stdout, stderr, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestEvalJSONGolden pins `fleet eval --json` of the reference fleet and
// every example, and checks that two runs give the same bytes.
func TestEvalJSONGolden(t *testing.T) {
	files := map[string]string{"fleet": filepath.Join(repoRoot, "fleet.star")}
	examples, _ := filepath.Glob(filepath.Join(repoRoot, "examples/*/fleet.star"))
	for _, e := range examples {
		files["example-"+filepath.Base(filepath.Dir(e))] = e
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			code, first, stderr := fleetCmd(t, "eval", file, "--json")
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if _, second, _ := fleetCmd(t, "eval", file, "--json"); second != first {
				t.Fatal("two evaluations gave different JSON")
			}
			golden(t, filepath.Join("testdata/golden", name+".json"), first)
		})
	}
}

// TestDocsUpToDate keeps docs/starlark-api.md equal to `fleet doc --markdown`.
func TestDocsUpToDate(t *testing.T) {
	code, out, stderr := fleetCmd(t, "doc", "--markdown")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	golden(t, filepath.Join(repoRoot, "docs/starlark-api.md"), out)
}

// TestStdlibDocsUpToDate keeps docs/stdlib.md equal to `fleet doc
// --markdown @stdlib`, which reads the .star files' own docstrings.
func TestStdlibDocsUpToDate(t *testing.T) {
	code, out, stderr := fleetCmd(t, "doc", "--markdown", "@stdlib")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"## `@stdlib//nixos.star`", "### `nixos_base`", "Declares a feature with NIXOS_BASE"} {
		if !strings.Contains(out, want) {
			t.Errorf("the @stdlib reference lacks %q", want)
		}
	}
	golden(t, filepath.Join(repoRoot, "docs/stdlib.md"), out)
}

// TestGraphDOTRendersWithGraphviz is the check that
// `fleet graph fleet.star --format dot | dot -Tsvg` works.
func TestGraphDOTRendersWithGraphviz(t *testing.T) {
	dot := testtool.Require(t, "dot", "graphviz")
	code, out, stderr := fleetCmd(t, "graph", filepath.Join(repoRoot, "fleet.star"), "--format", "dot")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(out)
	var svg, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &svg, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("dot -Tsvg: %v\n%s", err, errb.String())
	}
	if !strings.Contains(svg.String(), "<svg") || !strings.Contains(svg.String(), "cinnabar") {
		t.Error("the SVG does not show the fleet")
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s is out of date (run go test ./cmd/fleet -update and review the diff):\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff shows the first differing line, enough to see what changed.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, wl, gl)
		}
	}
	return ""
}

// TestNixWriteAndCheck: fleet nix writes the tree, a second run writes
// nothing, --check passes, and detects a hand-edited and a stale file.
func TestNixWriteAndCheck(t *testing.T) {
	out := t.TempDir()
	minimal := filepath.Join(repoRoot, "examples/minimal/fleet.star")
	code, stdout, stderr := fleetCmd(t, "nix", minimal, "--out", out)
	if code != exitOK || !strings.Contains(stdout, "written, 0 unchanged") {
		t.Fatalf("first write: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, _ := fleetCmd(t, "nix", minimal, "--out", out); code != exitOK || !strings.Contains(stdout, ": 0 written") {
		t.Fatalf("second write should write nothing: %s", stdout)
	}
	if code, stdout, stderr := fleetCmd(t, "nix", minimal, "--out", out, "--check"); code != exitOK || !strings.Contains(stdout, "is up to date") {
		t.Fatalf("--check on a fresh tree: exit %d\n%s%s", code, stdout, stderr)
	}
	flake := filepath.Join(out, "flake.nix")
	data, _ := os.ReadFile(flake)
	os.WriteFile(flake, append(data, "# edited\n"...), 0o644)
	code, _, stderr = fleetCmd(t, "nix", minimal, "--out", out, "--check")
	if code != exitError || !strings.Contains(stderr, "changed: flake.nix") {
		t.Fatalf("--check after a hand edit: exit %d, stderr %q", code, stderr)
	}
	// A stale tree: the fleet changed since the tree was written.
	fleetCmd(t, "nix", minimal, "--out", out)
	dir := t.TempDir()
	src, _ := os.ReadFile(minimal)
	changed := strings.Replace(string(src), `"mosh"`, `"mosh", "htop"`, 1)
	os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(changed), 0o644)
	code, _, stderr = fleetCmd(t, "nix", filepath.Join(dir, "fleet.star"), "--out", out, "--check")
	if code != exitError || !strings.Contains(stderr, "changed: modules/nixos/ssh.nix") {
		t.Fatalf("--check on a stale tree: exit %d, stderr %q", code, stderr)
	}
	// A file fleet did not write is never overwritten.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "flake.nix"), []byte("{ }\n"), 0o644)
	code, _, stderr = fleetCmd(t, "nix", minimal, "--out", other)
	if code != exitError || !strings.Contains(stderr, "flake.nix") {
		t.Fatalf("a foreign flake.nix: exit %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "flake.nix")); string(b) != "{ }\n" {
		t.Fatal("a file fleet did not write was changed")
	}
}

func TestOverlaysOldestFirst(t *testing.T) {
	code, out, stderr := fleetCmd(t, "overlays", filepath.Join(repoRoot, "fleet.star"), "--today", "2026-11-25")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "KIND") || len(lines) < 4 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	var dates []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		dates = append(dates, f[3])
	}
	for i := 1; i < len(dates); i++ {
		if dates[i] != "-" && (dates[i-1] == "-" || dates[i] < dates[i-1]) {
			t.Errorf("not oldest first: %v", dates)
		}
	}
	if !strings.Contains(stderr, "pkgs.patched is imported from a derivation") {
		t.Errorf("the fleet has a patch: the note on its cost is missing from stderr:\n%s", stderr)
	}
	if !strings.Contains(out, "override  mactop") || !strings.Contains(out, "319d") {
		t.Errorf("mactop (added 2026-01-10) should be listed with its age:\n%s", out)
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "package") || strings.HasPrefix(l, "flake") {
			t.Errorf("only patches, fallbacks and overrides are workarounds: %s", l)
		}
	}
}

// TestDeployDryRun prints the reference fleet's commands without network,
// credentials or any program run (nix is not even looked for).
func TestDeployDryRun(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing to run, so nothing can run
	code, out, stderr := fleetCmd(t, "deploy", filepath.Join(repoRoot, "fleet.star"), "--dry-run", "--out", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		// cinnabar, the only NixOS machine, is a batch of its own.
		"cinnabar:", "build     evaluate batch 1 of 2 (cinnabar; up to 8 machines per nix process): nix --extra-experimental-features 'nix-command flakes' eval --json 'path:/",
		"#nixosConfigurations' --apply EXPR (EXPR: nixosConfigurations.<machine>.config.system.build.toplevel.drvPath of each)\n            nix-store --realise DRV (cinnabar's derivation, from the batch)\n",
		"nix --extra-experimental-features 'nix-command flakes' copy --no-check-sigs --to ssh-ng://root@cinnabar.zt", "nix-env -p /nix/var/nix/profiles/system --set",
		"switch-to-configuration switch", "sudo -H -- /nix/store/",
		// The nix-darwin machines: one batch, one nix eval (FLEET_EVAL_MEMORY
		// is 4GiB in the tests: 8 machines a batch).
		"build     evaluate batch 2 of 2 (argentum, blackphos, rosegold, stibnite; up to 8 machines per nix process): nix --extra-experimental-features 'nix-command flakes' eval --json 'path:/",
		"#darwinConfigurations' --apply EXPR (EXPR: darwinConfigurations.<machine>.system.drvPath of each)\n            nix-store --realise DRV (stibnite's derivation, from the batch)\n",
		"on failure: ssh root@cinnabar.zt",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
}

func TestDeploySelection(t *testing.T) {
	file := filepath.Join(repoRoot, "fleet.star")
	code, out, stderr := fleetCmd(t, "deploy", file, "--dry-run", "--on", "@cloud", "--exclude", "galena", "--goal", "boot", "--out", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var machines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			machines = append(machines, strings.TrimSuffix(line, ":"))
		}
	}
	// electrum and scheelite are switched off (enabled = False): skipped.
	if strings.Join(machines, ",") != "cinnabar" || !strings.Contains(out, "switch-to-configuration boot") ||
		!strings.Contains(stderr, "skip electrum: its host is switched off") || !strings.Contains(stderr, "skip scheelite: its host is switched off") ||
		strings.Contains(stderr, "galena") {
		t.Fatalf("--on @cloud --exclude galena --goal boot:\n%s%s", out, stderr)
	}
	if code, _, stderr := fleetCmd(t, "deploy", file, "--dry-run", "--goal", "reboot", "--out", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "use switch, boot, test or dry-activate") {
		t.Fatalf("bad goal: exit %d %s", code, stderr)
	}
}

// TestExec runs a command on two machines through a real sshd, with each
// line of output prefixed by its machine.
func TestExec(t *testing.T) {
	srv := sshtest.Start(t)
	t.Setenv("FLEET_SSH_OPTS", strings.Join(srv.ClientOptions(), " "))
	dir := t.TempDir()
	src := fmt.Sprintf(`fleet(name = "x")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("a", system = "x86_64-linux", state_version = "26.05", target = %q)
machine("b", system = "x86_64-linux", state_version = "26.05", target = %q)
`, srv.Target(), srv.Target())
	if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := fleetCmd(t, "exec", filepath.Join(dir, "fleet.star"), "--", "echo", "hello world;", "$HOME")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	for _, m := range []string{"a", "b"} {
		if !strings.Contains(out, m+": hello world; $HOME\n") {
			t.Errorf("no prefixed, literally passed output for %s:\n%s", m, out)
		}
	}
	// One argument is a command line for the remote shell, as with ssh
	// and colmena exec: ; separates commands, $HOME expands remotely.
	code, out, stderr = fleetCmd(t, "exec", filepath.Join(dir, "fleet.star"), "--on", "a", "--", `echo a; sleep 0; echo "b $HOME" | tr b c`)
	if code != exitOK || !strings.Contains(out, "a: a\n") || !strings.Contains(out, "a: c /") || strings.Contains(out, "$HOME") {
		t.Fatalf("one argument as a shell line: exit %d\n%s%s", code, out, stderr)
	}
	code, _, stderr = fleetCmd(t, "exec", filepath.Join(dir, "fleet.star"), "--on", "a", "--", "sh", "-c", "exit 4")
	if code != exitError || !strings.Contains(stderr, "failed") {
		t.Fatalf("a failing command: exit %d %s", code, stderr)
	}
}

// TestBadTargetsRejectedEarly: a target ssh or nix would read as an option,
// or a shell as more than one word, is an error naming the machine and the
// target, in --dry-run too, before anything runs (PATH holds nothing).
func TestBadTargetsRejectedEarly(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, target := range []string{
		"root@-oProxyCommand=touch${IFS}/tmp/pwned",
		"-oProxyCommand=x",
		"root@web;touch /tmp/pwned",
		"root@web$(id)",
		"ro ot@web",
		"-l@web",
		"root@web:22x",
	} {
		dir := t.TempDir()
		src := fmt.Sprintf(`fleet(name = "x")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("good", system = "x86_64-linux", state_version = "26.05", target = "root@good.example")
machine("bad", system = "x86_64-linux", state_version = "26.05", target = %q)
`, target)
		file := filepath.Join(dir, "fleet.star")
		os.WriteFile(file, []byte(src), 0o644)
		for _, args := range [][]string{
			{"deploy", file, "--dry-run", "--out", t.TempDir()},
			{"deploy", file, "--out", t.TempDir()},
			{"deploy", file, "--build-on", "target", "--dry-run", "--out", t.TempDir()},
			{"diff", file, "--out", t.TempDir()},
			{"exec", file, "--", "true"},
		} {
			code, out, stderr := fleetCmd(t, args...)
			if code != exitError || !strings.Contains(stderr, "machine bad") || !strings.Contains(stderr, fmt.Sprintf("%q", target)) {
				t.Errorf("%s %q: exit %d, stderr %s", args[0], target, code, stderr)
			}
			if strings.Contains(out, "ssh-ng://") || strings.Contains(out, "ssh ") {
				t.Errorf("%s %q: printed commands:\n%s", args[0], target, out)
			}
		}
	}
}

// TestExecSilentHostTimesOut: fleet exec and fleet deploy against a host that accepts the
// connection and never speaks ssh fails in bounded time, naming the host
// and the timeout (the connect timeout shortened through FLEET_SSH_OPTS,
// which comes before fleet's own 15 s).
func TestExecSilentHostTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Setenv("FLEET_SSH_OPTS", "-F /dev/null -o UserKnownHostsFile=/dev/null -o ConnectTimeout=1")
	dir := t.TempDir()
	target := "root@" + l.Addr().String()
	src := fmt.Sprintf(`fleet(name = "x")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("a", system = "x86_64-linux", state_version = "26.05", target = %q)
`, target)
	if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, stderr := fleetCmd(t, "exec", filepath.Join(dir, "fleet.star"), "--", "true")
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v", d)
	}
	if code != exitError || !strings.Contains(stderr, "ssh "+target+": the connection timed out") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	testtool.Require(t, "nix", "nix-bin")
	start = time.Now()
	code, out, stderr = fleetCmd(t, "deploy", filepath.Join(dir, "fleet.star"), "--out", t.TempDir())
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("deploy took %v", d)
	}
	if code != exitError || !strings.Contains(out, "preflight  ssh "+target+": the connection timed out") {
		t.Fatalf("deploy: exit %d\n%s%s", code, out, stderr)
	}
}

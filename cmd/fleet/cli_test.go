package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/testtool"
	"github.com/urfave/cli/v2"
)

// cliFleet is a small valid fleet with tags, for the tests of the
// command line itself.
const cliFleet = `fleet(name = "t")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
feature("base")
machine("web", system = "x86_64-linux", state_version = "26.05", features = ["base"],
    tags = ["cloud", "edge"], target = "root@web.example.org")
machine("db", system = "x86_64-linux", state_version = "26.05", features = ["base"],
    tags = ["cloud"], target = "root@db.example.org")
`

// evaluatedFleet fails with EVALUATED whenever it is evaluated: a usage
// error must stop a command before that.
const evaluatedFleet = `fail("EVALUATED")
`

// fleetDir makes a folder with a fleet.star of src.
func fleetDir(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fleetAt runs the CLI in-process with wd as its working folder (the
// process's is not changed), no environment but env, and clouds that
// count how often they are asked for.
func fleetAt(t *testing.T, wd string, env map[string]string, args ...string) (code int, stdout, stderr string, clouds int64) {
	t.Helper()
	var n atomic.Int64
	d := deps{
		getenv:    func(k string) string { return env[k] },
		providers: func(func(string) string) []cloud.Provider { n.Add(1); return nil },
		wd:        wd,
	}
	var out, errb bytes.Buffer
	code = runWith(context.Background(), d, append([]string{"fleet"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String(), n.Load()
}

// TestUsageErrors: every mistake in the command line exits 2 with what
// was wrong (and what was meant), before the fleet is evaluated or a
// cloud is asked.
func TestUsageErrors(t *testing.T) {
	dir := fleetDir(t, evaluatedFleet)
	// The sentinel works: a command without a mistake evaluates it.
	if code, _, stderr, _ := fleetAt(t, dir, nil, "eval"); code != exitError || !strings.Contains(stderr, "EVALUATED") {
		t.Fatalf("fleet eval of the sentinel fleet: exit %d, %s", code, stderr)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown command", []string{"deplyo"}, `no command "deplyo" (did you mean "deploy"?)`},
		{"unknown command, no suggestion", []string{"zzzzzzzz"}, `no command "zzzzzzzz"` + "\nRun 'fleet --help' for usage."},
		{"unknown global flag", []string{"--hepl"}, `unknown flag --hepl (did you mean --help?)`},
		{"unknown subcommand", []string{"secrets", "frob"}, `secrets: no command "frob": use generate, check, rekey, get, set, import or keygen`},
		{"subcommand typo", []string{"secrets", "generat"}, `secrets: no command "generat" (did you mean "generate"?)`},
		{"deps subcommand typo", []string{"deps", "lokc"}, `deps: no command "lokc" (did you mean "lock"?)`},
		{"unknown flag", []string{"deploy", "--onn", "web"}, `deploy: unknown flag --onn (did you mean --on?)`},
		{"unknown flag of a subcommand", []string{"secrets", "generate", "--regenrate", "x"}, `secrets generate: unknown flag --regenrate (did you mean --regenerate?)`},
		{"unknown flag after FILE", []string{"plan", "fleet.star", "--jsn"}, `plan: unknown flag --jsn (did you mean --json?)`},
		{"batch size", []string{"apply", "--batch", "0"}, "apply: --batch 0: give the number of machines one nix process evaluates, 1 or more\nRun 'fleet help apply' for usage."},
		{"eval memory", []string{"build", "--eval-memory", "1.5G"}, `build: --eval-memory: "1.5G" is not a whole number`},
		{"goal", []string{"deploy", "--goal", "swtich"}, `deploy: --goal "swtich": use switch, boot, test or dry-activate (did you mean "switch"?)` + "\nRun 'fleet help deploy' for usage."},
		{"goal after FILE", []string{"deploy", "fleet.star", "--goal=bot", "--dry-run"}, `--goal "bot": use switch, boot, test or dry-activate (did you mean "boot"?)`},
		{"build-on", []string{"deploy", "--build-on", "targte"}, `deploy: --build-on "targte": use local or target (did you mean "target"?)`},
		{"format", []string{"graph", "--format", "jsn"}, `graph: --format "jsn": use text, dot or json (did you mean "json"?)`},
		{"format, no suggestion", []string{"graph", "--format", "svg"}, `graph: --format "svg": use text, dot or json` + "\n"},
		{"duration without unit", []string{"deploy", "--confirm-timeout", "5"}, `deploy: --confirm-timeout 5: durations need a unit, like 5s or 2m`},
		{"not a duration", []string{"deploy", "--confirm-timeout", "soon"}, `--confirm-timeout "soon": not a duration (like 30s, 2m or 1h30m)`},
		{"not a number", []string{"deploy", "--parallel", "many"}, `deploy: --parallel "many": not a whole number`},
		{"bool with a value", []string{"plan", "--json=maybe"}, `plan: --json=maybe: write --json alone`},
		{"flag without value", []string{"deploy", "--goal"}, `deploy: --goal needs a value`},
		{"bad glob", []string{"deploy", "--on", "web["}, `deploy: --on: selector "web[" is not a valid glob`},
		{"empty selector", []string{"build", "--exclude", ""}, `build: --exclude: empty selector`},
		{"tag without name", []string{"secrets", "generate", "--on", "@"}, `secrets generate: --on: selector "@" names no tag` + "\nRun 'fleet help secrets generate' for usage."},
		{"two FILEs", []string{"eval", "fleet.star", "fleet.star"}, `eval: takes one FILE`},
		{"max-memory", []string{"eval", "--max-memory", "lots"}, `--max-memory`},
		{"batch", []string{"deploy", "--batch", "0"}, `--batch 0: give the number of machines one nix process evaluates, 1 or more`},
		{"eval-memory", []string{"build", "--eval-memory", "lots"}, `--eval-memory: "lots" is not a size: write a number with a unit, like 2GiB or 512MiB`},
		{"help of no command", []string{"help", "deplyo"}, `no command "deplyo" (did you mean "deploy"?)`},
		{"help of no subcommand", []string{"help", "secrets", "generat"}, `secrets: no command "generat" (did you mean "generate"?)`},
		{"completion of no shell", []string{"completion", "bsh"}, `completion: no shell "bsh": use bash, zsh or fish (did you mean "bash"?)`},
		{"completion without shell", []string{"completion"}, `completion: name the shell`},
		{"exec without command", []string{"exec", "--"}, `exec: no command`},
		{"adopt without machines", []string{"adopt", "fleet.star"}, `adopt: name the machines`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr, clouds := fleetAt(t, dir, nil, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("fleet %s: exit %d (want %d)\nstderr:\n%s\nwant stderr containing %q", strings.Join(tc.args, " "), code, exitUsage, stderr, tc.stderr)
			}
			if strings.Contains(stderr+stdout, "EVALUATED") || clouds > 0 {
				t.Errorf("fleet %s: the fleet was evaluated or a cloud asked (%d) before the usage error:\n%s", strings.Join(tc.args, " "), clouds, stderr)
			}
		})
	}
}

// TestFileArgument: every command that reads a fleet takes an optional
// FILE: none is ./fleet.star, a folder is its fleet.star, and without one
// the error says where it looked.
func TestFileArgument(t *testing.T) {
	dir := fleetDir(t, cliFleet)
	parent := filepath.Dir(dir)
	empty := t.TempDir()
	out := t.TempDir()
	for _, args := range [][]string{
		{"run", "--out", out},
		{"eval"},
		{"nix", "--out", out},
		{"overlays"},
		{"plan"},
		{"hosts"},
		{"graph"},
		{"lint"},
		{"secrets", "check"},
		{"secrets", "generate"},
		{"build", "--dry-run"},
		{"deploy", "--dry-run", "--out", out},
	} {
		name := strings.Join(args, " ")
		t.Run(name, func(t *testing.T) {
			// No FILE, in the fleet's folder.
			code, stdout, stderr, _ := fleetAt(t, dir, nil, args...)
			if code != exitOK {
				t.Errorf("fleet %s in %s: exit %d\n%s%s", name, dir, code, stdout, stderr)
			}
			// The folder as FILE.
			withDir := append([]string{args[0]}, args[1:]...)
			if args[0] == "secrets" {
				withDir = []string{args[0], args[1], filepath.Base(dir)}
				withDir = append(withDir, args[2:]...)
			} else {
				withDir = append([]string{args[0], filepath.Base(dir)}, args[1:]...)
			}
			if code, stdout, stderr, _ := fleetAt(t, parent, nil, withDir...); code != exitOK {
				t.Errorf("fleet %s in %s: exit %d\n%s%s", strings.Join(withDir, " "), parent, code, stdout, stderr)
			}
			// Neither.
			code, _, stderr, _ = fleetAt(t, empty, nil, args...)
			want := "no fleet.star in " + empty + ": name the fleet file or its folder"
			if code != exitUsage || !strings.Contains(stderr, want) {
				t.Errorf("fleet %s in an empty folder: exit %d, %q (want 2, %q)", name, code, stderr, want)
			}
		})
	}
	// --file takes a folder too.
	if code, _, stderr, _ := fleetAt(t, parent, nil, "secrets", "get", "nope", "--file", filepath.Base(dir)); code != exitError || !strings.Contains(stderr, `no secret "nope"`) {
		t.Errorf("secrets get --file DIR: exit %d, %s", code, stderr)
	}
	// A folder without fleet.star, named.
	if code, _, stderr, _ := fleetAt(t, parent, nil, "eval", filepath.Base(empty)); code != exitUsage || !strings.Contains(stderr, "no fleet.star in "+empty) {
		t.Errorf("eval EMPTYDIR: exit %d, %s", code, stderr)
	}
	// A named file that does not exist is still the evaluator's error.
	if code, _, stderr, _ := fleetAt(t, dir, nil, "eval", "other.star"); code != exitError || !strings.Contains(stderr, "no such file") {
		t.Errorf("eval other.star: exit %d, %s", code, stderr)
	}
	// The REPL without FILE and without fleet.star starts empty.
	if code, _, stderr, _ := fleetAt(t, empty, nil, "repl"); code != exitOK {
		t.Errorf("repl in an empty folder: exit %d, %s", code, stderr)
	}
	// exec's FILE is optional before --, and adopt's before the machines.
	for _, tc := range []struct {
		args []string
		file string
		argv []string
	}{
		{[]string{"--", "uptime"}, "", []string{"uptime"}},
		{[]string{"x", "--", "uptime", "-a"}, "x", []string{"uptime", "-a"}},
		{[]string{"x.star", "uptime"}, "x.star", []string{"uptime"}},
		{[]string{"uptime"}, "", []string{"uptime"}},
	} {
		file, argv, err := execArgs(tc.args)
		if err != nil || file != tc.file || !slices.Equal(argv, tc.argv) {
			t.Errorf("execArgs(%q) = %q, %q, %v; want %q, %q", tc.args, file, argv, err, tc.file, tc.argv)
		}
	}
}

// TestHelp: fleet help CMD and fleet help CMD SUB show that command's
// help, like CMD --help.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "COMMANDS"},
		{[]string{"help", "deploy"}, "fleet deploy [command options] [FILE]"},
		{[]string{"help", "secrets"}, "generate"},
		{[]string{"help", "secrets", "generate"}, "fleet secrets generate [command options] [FILE]"},
		{[]string{"help", "completion"}, "source <(fleet completion bash)"},
		{[]string{"--help"}, "help"},
	} {
		code, stdout, stderr := fleetCmd(t, tc.args...)
		if code != exitOK || !strings.Contains(stdout, tc.want) {
			t.Errorf("fleet %s: exit %d, stdout:\n%s\nstderr: %s\nwant %q", strings.Join(tc.args, " "), code, stdout, stderr, tc.want)
		}
	}
	if _, stdout, _ := fleetCmd(t, "--help"); strings.Contains(stdout, "__complete") {
		t.Error("fleet --help lists the hidden __complete")
	}
}

// TestComplete: what fleet __complete offers for the last word.
func TestComplete(t *testing.T) {
	dir := fleetDir(t, cliFleet)
	broken := fleetDir(t, evaluatedFleet)
	for _, tc := range []struct {
		name  string
		wd    string
		words []string
		want  []string
	}{
		{"commands", dir, []string{"dep"}, []string{"deploy", "deps"}},
		{"all commands", dir, []string{""}, nil},
		{"subcommands", dir, []string{"secrets", ""}, []string{"generate", "check", "rekey", "get", "set", "import", "keygen"}},
		{"flags", dir, []string{"deploy", "--o"}, []string{"--offline", "--override", "--out", "--on", "--only-changed"}},
		{"flags after FILE", dir, []string{"graph", "fleet.star", "--fo"}, []string{"--format"}},
		{"goal", dir, []string{"deploy", "--goal", ""}, []string{"switch", "boot", "test", "dry-activate"}},
		{"format", dir, []string{"graph", "--format", "d"}, []string{"dot"}},
		{"on", dir, []string{"deploy", "--on", ""}, []string{"@cloud", "@edge", "all", "db", "web"}},
		{"on tag", dir, []string{"deploy", "--parallel", "2", "--on", "@e"}, []string{"@edge"}},
		{"exclude", dir, []string{"build", "--exclude", "w"}, []string{"web"}},
		{"machine", dir, []string{"secrets", "get", "x", "--machine", ""}, []string{"db", "web"}},
		{"up", dir, []string{"up", ""}, []string{"db", "web"}},
		{"FILE named", filepath.Dir(dir), []string{"deploy", filepath.Base(dir) + "/", "--on", "d"}, []string{"db"}},
		{"--file named", filepath.Dir(dir), []string{"up", "--file", filepath.Base(dir), "w"}, []string{"web"}},
		{"shells", dir, []string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{"help", dir, []string{"help", "sec"}, []string{"secrets"}},
		{"help of a subcommand", dir, []string{"help", "deps", ""}, []string{"lock", "update", "verify"}},
		{"a path: the shell's", dir, []string{"deploy", "--out", ""}, nil},
		{"FILE: the shell's", dir, []string{"eval", ""}, nil},
		{"after --: the shell's", dir, []string{"exec", "--", ""}, nil},
		{"broken fleet: nothing", broken, []string{"deploy", "--on", ""}, nil},
		{"no fleet: nothing", t.TempDir(), []string{"deploy", "--on", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr, clouds := fleetAt(t, tc.wd, nil, append([]string{"__complete"}, tc.words...)...)
			if code != exitOK || stderr != "" || clouds > 0 {
				t.Fatalf("exit %d, stderr %q, clouds %d", code, stderr, clouds)
			}
			got := strings.Fields(stdout)
			if tc.want == nil && tc.name == "all commands" {
				if !slices.Contains(got, "deploy") || slices.Contains(got, "__complete") {
					t.Errorf("got %q", got)
				}
				return
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("fleet __complete %q: %q, want %q", tc.words, got, want)
			}
		})
	}
}

// TestCompletionScripts: the scripts parse in their shells.
func TestCompletionScripts(t *testing.T) {
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			code, script, stderr := fleetCmd(t, "completion", sh)
			if code != exitOK || !strings.Contains(script, "__complete") {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			bin := testtool.Require(t, sh, sh) // the Debian packages are named as the shells
			cmd := exec.Command(bin, "-n")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", sh, err, out)
			}
		})
	}
}

// TestColour: escape codes only on a terminal, and not with NO_COLOR or
// TERM=dumb.
func TestColour(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		testtool.Unavailable(t, fmt.Sprintf("no pseudo-terminal: %v", err))
	}
	defer ptm.Close()
	defer tty.Close()
	table := "  + create  hetzner server  web  0.00 -> 5.00  new\n  = no-op  hetzner server  db\n  ~ update (refused)  x\n"
	for _, tc := range []struct {
		name string
		w    any
		env  map[string]string
		want bool
	}{
		{"terminal", tty, map[string]string{"TERM": "xterm"}, true},
		{"NO_COLOR", tty, map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, false},
		{"TERM=dumb", tty, map[string]string{"TERM": "dumb"}, false},
		{"not a terminal", &bytes.Buffer{}, map[string]string{"TERM": "xterm"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w.(interface{ Write([]byte) (int, error) })
			app := &cli.App{Metadata: map[string]any{"getenv": func(k string) string { return tc.env[k] }}}
			c := cli.NewContext(app, nil, nil)
			if got := colourOn(c, w); got != tc.want {
				t.Fatalf("colourOn = %v, want %v", got, tc.want)
			}
			cw, done := colourLines(c, w, planColour)
			if tc.want {
				cw.Write([]byte(table[:10]))
				cw.Write([]byte(table[10:]))
				done()
				got := readPTY(t, ptm, "x\x1b[0m")
				for _, want := range []string{"\x1b[33m  + create", "\x1b[31m  ~ update (refused)  x\x1b[0m", "\r\n  = no-op  hetzner server  db\r\n"} {
					if !strings.Contains(got, want) {
						t.Errorf("on the terminal: %q, want %q in it", got, want)
					}
				}
				return
			}
			if cw != w {
				t.Error("colourLines wrapped a writer that gets no colour")
			}
		})
	}
	// A whole command to a pipe: no escape codes, whatever TERM says.
	code, stdout, stderr, _ := fleetAt(t, fleetDir(t, cliFleet), map[string]string{"TERM": "xterm"}, "deploy", "--dry-run", "--out", t.TempDir())
	if code != exitOK || strings.Contains(stdout+stderr, "\x1b") {
		t.Errorf("deploy --dry-run to a pipe: exit %d, %q %q", code, stdout, stderr)
	}
	for line, want := range map[string]string{
		"web      failed       3s  web/check  boom": red,
		"web      ok           3s":                  yellow,
		"web      unchanged    1s":                  "",
		"MACHINE  OUTCOME      DURATION":            "",
	} {
		if got := outcomeColour(line); got != want {
			t.Errorf("outcomeColour(%q) = %q, want %q", line, got, want)
		}
	}
}

// readPTY reads from the terminal's master side until it has seen until.
func readPTY(t *testing.T, ptm *os.File, until string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(got), until) {
		ptm.SetReadDeadline(deadline)
		n, err := ptm.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading the terminal: %v (got %q)", err, got)
		}
	}
	return string(got)
}

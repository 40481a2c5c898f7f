package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine"
)

// replScript runs fleet repl with a script on standard input (not a
// terminal), as `printf ... | fleet repl FILE` does.
func replScript(t *testing.T, d deps, script string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = runWith(ctx, d, append([]string{"fleet", "repl"}, args...), strings.NewReader(script), &out, &errb)
	return code, out.String(), errb.String()
}

// replNoCredentials are the real providers with an empty environment.
func replNoCredentials() deps {
	return deps{getenv: func(string) string { return "" }, providers: providers}
}

// The "done" criterion: the machine count, then cinnabar's Nix as
// Nix (not a quoted string).
func TestReplPipeDone(t *testing.T) {
	file := filepath.Join(repoRoot, "fleet.star")
	f, err := engine.Eval(context.Background(), file, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := replScript(t, replNoCredentials(), "len(machines())\nnix(machines(\"cinnabar\")[0])\n", file)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	first, rest, _ := strings.Cut(out, "\n")
	if first != fmt.Sprint(len(f.Machines)) {
		t.Errorf("first line %q, want the number of machines %d", first, len(f.Machines))
	}
	for _, want := range []string{"# ==> machines/nixos/cinnabar.nix <==\n", `networking.hostName = "cinnabar";`, "\n  imports = [\n"} {
		if !strings.Contains(rest, want) {
			t.Errorf("nix(cinnabar) lacks %q:\n%s", want, rest)
		}
	}
}

// Errors print position and backtrace on stderr, the session goes on, and
// a script with a failed statement exits 1.
func TestReplPipeErrorRecovery(t *testing.T) {
	file := filepath.Join(repoRoot, "examples/minimal/fleet.star")
	script := `x = 6
len(1)
x * 7
def double(n):
    m = n * 2

    return m
double(21)
if len(machines()) > 0:
    print("some")
else:
    print("none")
undefined_name
machines("wbe")
machine("db", system = "x86_64-linux", state_version = "26.05")
(1 +
  2)
[1, 2 3]
"end"
(1 +
`
	code, out, stderr := replScript(t, replNoCredentials(), script, file)
	if code != exitError {
		t.Errorf("exit %d, want %d (a statement failed)", code, exitError)
	}
	if want := "42\n42\nsome\n3\n\"end\"\n"; out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	for _, want := range []string{
		"Traceback (most recent call last):\n  <stdin>:2:4: in <expr>\nError in len: value of type int has no len\n",
		"<stdin>:13:1: undefined: undefined_name",
		`Error in machines: no machine is called "wbe" (did you mean "web"?)`,
		"Error in machine: declarations are made by fleet files, not in the REPL: add it to",
		"<stdin>:18:8: got int literal, want ']'",
		"<stdin>:21:1: got end of file, want primary expression",
		"fleet repl: a statement failed: 6 of 13 statements",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestReplPipeStepLimit(t *testing.T) {
	file := filepath.Join(repoRoot, "examples/minimal/fleet.star")
	start := time.Now()
	code, out, stderr := replScript(t, replNoCredentials(), "[x for x in range(1000000000000)]\n1 + 1\n", file, "--max-steps", "1000000")
	if code != exitError || out != "2\n" || !strings.Contains(stderr, "stopped after 1000000 steps (--max-steps)") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// Views, show (with secrets redacted), deps/rdeps and the nix module.
func TestReplPipeHelpers(t *testing.T) {
	dir := t.TempDir()
	replWriteFile(t, filepath.Join(dir, "fleet.star"), `
fleet(name = "t", admins = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ admin@example.org"])
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
input("agenix", url = "github:ryantm/agenix", follows = {"nixpkgs": "nixpkgs"})
input("nix-darwin", url = "github:nix-darwin/nix-darwin", follows = {"nixpkgs": "nixpkgs"})
ssh = feature("ssh", nixos = {"services.openssh.enable": True}, darwin = {"services.openssh.enable": True})
web_key = secret("web-key", machines = "web", generate = gen.ssh_keypair())
machine("web", system = "x86_64-linux", state_version = "26.05", tags = ["cloud"], features = [ssh],
    host = hetzner.server(type = "cx22", location = "fsn1"),
    nixos = {
        "users.users.root.hashedPassword": "$6$notforyoureyes",
        "users.users.root.hashedPasswordFile": "/run/agenix/root",
        "environment.etc.key.text": "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS",
        "environment.systemPackages": [nix.pkg("ripgrep")],
    })
machine("mac", system = "aarch64-darwin", state_version = 6, features = ["ssh"])
`)
	script := `machines()
machines("@cloud")[0].host
sorted(machines(), reverse = True)[0] == machines("web")[0]
{machines("web")[0]: 1}
features()
show(machines("web")[0])
show(web_key)
deps("web")
rdeps(ssh)
rdeps("feature:ssh")
nix.pkg("htop")
nix("ssh")
machines()[0].tags.append("x")
`
	code, out, stderr := replScript(t, replNoCredentials(), script, filepath.Join(dir, "fleet.star"))
	if code != exitError || !strings.Contains(stderr, "cannot append to frozen list") || strings.Count(stderr, "Traceback") != 1 {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"[<machine mac aarch64-darwin darwin>, <machine web x86_64-linux nixos>]\n",
		"<host hetzner cx22 fsn1>\n",
		"True\n",
		"{<machine web x86_64-linux nixos>: 1}\n",
		"[<feature ssh nixos,darwin>]\n",
		"<machine web x86_64-linux nixos>  # fleet.star:8:8\n",
		`"hashedPassword": <redacted>`,
		`"hashedPasswordFile": "/run/agenix/root"`,
		`"text": <redacted: private key material>`,
		`[nix.pkg("ripgrep")]`,
		"  secrets       = [<secret web-key>]\n",
		"  files      = [<secret web-key/key>, \"key.pub\"]\n",
		`["feature:ssh", "host:web", "secret:web-key"]`,
		`["machine:mac", "machine:web"]` + "\n" + `["machine:mac", "machine:web"]`,
		`nix.pkg("htop")`,
		"# ==> modules/nixos/ssh.nix <==\n",
		"# ==> modules/darwin/ssh.nix <==\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, leak := range []string{"notforyoureyes", "AGE-SECRET-KEY-1QYQ"} {
		if strings.Contains(out, leak) {
			t.Errorf("show printed %q:\n%s", leak, out)
		}
	}
}

func TestReplPipePlan(t *testing.T) {
	code, out, stderr := replScript(t, replNoCredentials(), "plan()\n", filepath.Join(repoRoot, "fleet.star"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"plan for fleet vanixiets", "cinnabar", "HCLOUD_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan() without credentials should mention %q:\n%s", want, out)
		}
	}
	c := newClouds(t)
	code, out, stderr = replScript(t, c.deps(), "plan()\n", c.file)
	// The whole plan, as fleet plan shows it: secrets and machines too.
	if code != exitOK || !strings.Contains(out, "plan for fleet cloudtest") || !strings.Contains(out, "+ create") ||
		!strings.Contains(out, "secrets: all present") || !strings.Contains(out, "+ install  web") {
		t.Errorf("plan() against the fakes: exit %d\n%s\n%s", code, out, stderr)
	}
}

// replBuffer is a bytes.Buffer safe for a writer and a poller.
type replBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *replBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *replBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// replWaitFor polls until s() contains want.
func replWaitFor(t *testing.T, what string, s func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %q:\n%s", what, want, s())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reload() picks up edits, keeps the user's names, and keeps the old
// evaluation when the new one fails.
func TestReplPipeReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.star")
	base := "fleet(name = \"r\")\nchannel(\"nixpkgs\", url = \"github:NixOS/nixpkgs/nixos-unstable\")\n" +
		"ssh = feature(\"ssh\", nixos = {\"services.openssh.enable\": True})\n" +
		"machine(\"a\", system = \"x86_64-linux\", state_version = \"26.05\", features = [ssh])\n"
	replWriteFile(t, file, base)
	in, w := io.Pipe()
	var out, errb replBuffer
	done := make(chan int)
	go func() {
		done <- runWith(context.Background(), replNoCredentials(), []string{"fleet", "repl", file}, in, &out, &errb)
	}()
	send := func(s string) {
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
	}
	send("n = len(machines())\nmine = 'kept'\nssh.name\nn\n")
	replWaitFor(t, "stdout", out.String, "\"ssh\"\n1\n")

	replWriteFile(t, file, base+"machine(\"b\", system = \"x86_64-linux\", state_version = \"26.05\")\nextra = 1\n")
	send("reload()\nlen(machines()), mine, extra, n\n")
	replWaitFor(t, "stdout", out.String, "(2, \"kept\", 1, 1)\n")

	replWriteFile(t, file, base+"machine(\"c\", system = \"x86_64-linux\", state_version = \"26.05\", features = [\"shh\"])\n")
	send("reload()\n[m.name for m in machines()]\n")
	replWaitFor(t, "stdout", out.String, "[\"a\", \"b\"]\n")
	replWaitFor(t, "stderr", errb.String, `unknown feature "shh" (did you mean "ssh"?)`)
	replWaitFor(t, "stderr", errb.String, "the session keeps the previous evaluation")
	w.Close()
	select {
	case code := <-done:
		if code != exitError { // the failed reload
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the REPL did not end at end of input")
	}
}

func replWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

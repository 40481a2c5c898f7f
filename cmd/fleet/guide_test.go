package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// The guide (docs/guide.md) is run, not just read: TestGuide follows it in
// an empty folder under a temporary HOME and checks that every command
// prints what the guide shows. go test ./cmd/fleet -run TestGuide -update
// rewrites the shown outputs from a run.
//
// The guide's markdown, as the test reads it:
//   - a ```python file=PATH block is written to PATH (the whole file);
//   - a ```console block holds commands, each on a line starting with "$ ",
//     followed by its output. `fleet ...` runs in-process; `export
//     HCLOUD_TOKEN=...` switches the Hetzner credentials on (the token and
//     endpoint of a local fake of the Hetzner API); the line `mkdir homelab
//     && cd homelab` is where the test starts. Any other command fails the
//     test: the guide shows only what the test runs.
//   - a non-zero exit is shown as a last output line "[exit N]".
//
// What differs between runs is replaced by what the guide shows: the
// temporary HOME by ~, the reader's ssh keys (made for each run) by the
// guide's.
const guidePath = "../../docs/guide.md"

// Keys as the guide shows them; the test's own keys replace them on disk.
const (
	guideAdminKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGuideAdminKeyOfTheReaderForTheGuideOnly0 you@laptop"
	guideWebKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGuideHostKeyOfTheWebMachineForTheGuide00"
)

func TestGuide(t *testing.T) {
	keygen := testtool.Require(t, "ssh-keygen", "ssh-keygen")
	guide, err := filepath.Abs(guidePath) // the test changes directory
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("NO_COLOR", "1")
	sshDir := filepath.Join(home, ".ssh")
	adminKey := sshKey(t, keygen, filepath.Join(sshDir, "id_ed25519"), "you@laptop")
	webKey := sshKey(t, keygen, filepath.Join(t.TempDir(), "web"), "")
	dir := filepath.Join(home, "homelab")

	hz := hetznerfake.New()
	t.Cleanup(hz.Close)
	env := map[string]string{"HOME": home}
	d := deps{getenv: func(k string) string { return env[k] }, providers: func(getenv func(string) string) []cloud.Provider {
		cfg := cloud.Config{Getenv: getenv, Backoff: cloud.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 6}}
		return []cloud.Provider{hetzner.New(cfg, hetzner.WithPollInterval(time.Millisecond))}
	}}

	toDisk := strings.NewReplacer(guideAdminKey, adminKey, guideWebKey, webKey)
	toGuide := strings.NewReplacer(adminKey, guideAdminKey, webKey, guideWebKey, home, "~")

	blocks := parseGuide(t, string(src))
	started := false
	for i, b := range blocks {
		switch b.kind {
		case "file":
			if !started {
				t.Fatalf("guide block %d writes %s before `mkdir homelab && cd homelab`", i, b.file)
			}
			p := filepath.Join(dir, filepath.FromSlash(b.file))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(toDisk.Replace(b.body)), 0o644); err != nil {
				t.Fatal(err)
			}
		case "console":
			for j := range b.cmds {
				c := &b.cmds[j]
				switch {
				case c.line == "mkdir homelab && cd homelab":
					if err := os.Mkdir(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					t.Chdir(dir)
					started = true
					continue
				case strings.HasPrefix(c.line, "export HCLOUD_TOKEN="):
					env["HCLOUD_TOKEN"], env["HCLOUD_ENDPOINT"] = hz.Token, hz.URL()
					continue
				case !strings.HasPrefix(c.line, "fleet "):
					t.Fatalf("guide: %q: the test runs only fleet commands (and the two above)", c.line)
				}
				if !started {
					t.Fatalf("guide: %q runs before `mkdir homelab && cd homelab`", c.line)
				}
				if strings.ContainsAny(c.line, `'"$|;&<>`) {
					t.Fatalf("guide: %q: keep guide commands to plain words (the test splits at spaces)", c.line)
				}
				args := strings.Fields(toDisk.Replace(strings.ReplaceAll(c.line, "~", home)))
				var out, errb bytes.Buffer
				code := runWith(context.Background(), d, args, strings.NewReader(""), &out, &errb)
				got := out.String() + errb.String()
				if code != 0 {
					got += fmt.Sprintf("[exit %d]\n", code)
				}
				got = normalizeGuide(toGuide.Replace(got))
				if *update {
					c.out = got
					continue
				}
				if got != c.out {
					t.Errorf("guide: $ %s\nprints:\n%s\nthe guide shows:\n%s", c.line, got, c.out)
				}
			}
		}
	}
	if !started {
		t.Fatal("the guide never starts (`$ mkdir homelab && cd homelab`)")
	}
	if *update {
		if err := os.WriteFile(guide, []byte(renderGuide(blocks)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sshKey makes an ed25519 key pair at path and returns the public line.
func sshKey(t *testing.T, keygen, path, comment string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// normalizeGuide drops trailing blanks and what changes with the clock.
var guideVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b\d+(\.\d+)?(ms|µs|s)\b`), "0s"},
	{regexp.MustCompile(`\d{8}-\d{6}(-\d+)?`), "YYYYMMDD-HHMMSS"},
	// The fleet's ssh key in the cloud is named after the admins' keys,
	// which are the reader's.
	{regexp.MustCompile(`\bhomelab-[0-9a-f]{12}\b`), "homelab-xxxxxxxxxxxx"},
}

func normalizeGuide(s string) string {
	for _, v := range guideVolatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
}

// guideBlock is a piece of the guide: prose (kept as it is), a file, or a
// console session.
type guideBlock struct {
	kind string // "text", "file", "console"
	raw  string // text: the prose; file and console: the opening fence line
	file string
	body string
	cmds []guideCmd
}

type guideCmd struct {
	line string // without "$ "
	out  string // what it prints, each line ending in "\n"
}

func parseGuide(t *testing.T, src string) []guideBlock {
	t.Helper()
	var blocks []guideBlock
	var text strings.Builder
	lines := strings.SplitAfter(src, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		fence := strings.TrimRight(l, "\n")
		kind, file := "", ""
		switch {
		case fence == "```console":
			kind = "console"
		case strings.HasPrefix(fence, "```python file="):
			kind, file = "file", strings.TrimPrefix(fence, "```python file=")
		}
		if kind == "" {
			text.WriteString(l)
			continue
		}
		if text.Len() > 0 {
			blocks = append(blocks, guideBlock{kind: "text", raw: text.String()})
			text.Reset()
		}
		var body []string
		i++
		for ; i < len(lines) && strings.TrimRight(lines[i], "\n") != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("guide: block %q is not closed", fence)
		}
		b := guideBlock{kind: kind, raw: l, file: file, body: strings.Join(body, "")}
		if kind == "console" {
			for _, bl := range body {
				if cmd, ok := strings.CutPrefix(bl, "$ "); ok {
					b.cmds = append(b.cmds, guideCmd{line: strings.TrimRight(cmd, "\n")})
				} else if len(b.cmds) == 0 {
					t.Fatalf("guide: console block %q starts with output, not a command", fence)
				} else {
					b.cmds[len(b.cmds)-1].out += bl
				}
			}
		}
		blocks = append(blocks, b)
	}
	if text.Len() > 0 {
		blocks = append(blocks, guideBlock{kind: "text", raw: text.String()})
	}
	return blocks
}

func renderGuide(blocks []guideBlock) string {
	var b strings.Builder
	for _, bl := range blocks {
		switch bl.kind {
		case "text":
			b.WriteString(bl.raw)
		case "file":
			b.WriteString(bl.raw + bl.body + "```\n")
		case "console":
			b.WriteString(bl.raw)
			for _, c := range bl.cmds {
				b.WriteString("$ " + c.line + "\n" + c.out)
			}
			b.WriteString("```\n")
		}
	}
	return b.String()
}

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

// The guide (docs/guide.md) and the migration guide (docs/migrating.md)
// are run, not just read. TestGuide follows the guide in
// an empty folder under a temporary HOME and checks that every command
// prints what the guide shows. go test ./cmd/fleet -run TestGuide -update
// rewrites the shown outputs from a run.
//
// The guide's markdown, as the test reads it:
//   - a ```LANG file=PATH block is written to PATH (the whole file);
//   - a ```console block holds commands, each on a line starting with "$ ",
//     followed by its output. `fleet ...` runs in-process; `export
//     HCLOUD_TOKEN=...` switches the Hetzner credentials on (the token and
//     endpoint of a local fake of the Hetzner API); the line `mkdir NAME &&
//     cd NAME` is where the test starts, in ~/NAME. Any other command fails the
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
	r := newDocRun(t, guidePath)
	r.swap(guideAdminKey, sshKey(t, keygen, filepath.Join(r.home, ".ssh", "id_ed25519"), "you@laptop"))
	r.swap(guideWebKey, sshKey(t, keygen, filepath.Join(t.TempDir(), "web"), ""))
	r.run()
}

// docRun follows a document's files and commands (see TestGuide) in an
// empty folder under a temporary HOME, with a local fake of the Hetzner
// API for its cloud commands.
type docRun struct {
	t      *testing.T
	path   string // the document, absolute: the run changes directory
	home   string
	env    map[string]string // what the cloud providers see
	hz     *hetznerfake.Server
	toDisk []string         // pairs: as the document shows it, as it is in this run
	setup  func(dir string) // run in the new folder, after it is made
}

func newDocRun(t *testing.T, doc string) *docRun {
	t.Helper()
	abs, err := filepath.Abs(doc)
	if err != nil {
		t.Fatal(err)
	}
	r := &docRun{t: t, path: abs, home: t.TempDir(), hz: hetznerfake.New()}
	t.Cleanup(r.hz.Close)
	t.Setenv("HOME", r.home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("NO_COLOR", "1")
	r.env = map[string]string{"HOME": r.home}
	return r
}

// swap makes the run use real where the document shows shown (keys made
// for the run, ids the fake chose), and show it back as shown.
func (r *docRun) swap(shown, real string) { r.toDisk = append(r.toDisk, shown, real) }

var docStart = regexp.MustCompile(`^mkdir ([a-z0-9-]+) && cd ([a-z0-9-]+)$`)

func (r *docRun) run() {
	t := r.t
	src, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	d := deps{getenv: func(k string) string { return r.env[k] }, providers: func(getenv func(string) string) []cloud.Provider {
		cfg := cloud.Config{Getenv: getenv, Backoff: cloud.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 6}}
		return []cloud.Provider{hetzner.New(cfg, hetzner.WithPollInterval(time.Millisecond))}
	}}
	toDisk := strings.NewReplacer(r.toDisk...)
	back := make([]string, 0, len(r.toDisk)+2)
	for i := 0; i < len(r.toDisk); i += 2 {
		back = append(back, r.toDisk[i+1], r.toDisk[i])
	}
	toDoc := strings.NewReplacer(append(back, r.home, "~")...)

	blocks := parseGuide(t, string(src))
	dir := ""
	for i, b := range blocks {
		switch b.kind {
		case "file":
			if dir == "" {
				t.Fatalf("%s block %d writes %s before `mkdir NAME && cd NAME`", filepath.Base(r.path), i, b.file)
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
				if m := docStart.FindStringSubmatch(c.line); m != nil && m[1] == m[2] {
					dir = filepath.Join(r.home, m[1])
					if err := os.Mkdir(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					t.Chdir(dir)
					if r.setup != nil {
						r.setup(dir)
					}
					continue
				}
				switch {
				case strings.HasPrefix(c.line, "export HCLOUD_TOKEN="):
					r.env["HCLOUD_TOKEN"], r.env["HCLOUD_ENDPOINT"] = r.hz.Token, r.hz.URL()
					continue
				case !strings.HasPrefix(c.line, "fleet "):
					t.Fatalf("%s: %q: the test runs only fleet commands (and mkdir/cd, export HCLOUD_TOKEN)", filepath.Base(r.path), c.line)
				case dir == "":
					t.Fatalf("%s: %q runs before `mkdir NAME && cd NAME`", filepath.Base(r.path), c.line)
				case strings.ContainsAny(c.line, `'"$|;&<>`):
					t.Fatalf("%s: %q: keep commands to plain words (the test splits at spaces)", filepath.Base(r.path), c.line)
				}
				args := strings.Fields(toDisk.Replace(strings.ReplaceAll(c.line, "~", r.home)))
				var out, errb bytes.Buffer
				code := runWith(context.Background(), d, args, strings.NewReader(""), &out, &errb)
				got := out.String() + errb.String()
				if code != 0 {
					got += fmt.Sprintf("[exit %d]\n", code)
				}
				got = normalizeGuide(toDoc.Replace(got))
				if *update {
					c.out = got
					continue
				}
				if got != c.out {
					t.Errorf("%s: $ %s\nprints:\n%s\nthe document shows:\n%s", filepath.Base(r.path), c.line, got, c.out)
				}
			}
		}
	}
	if dir == "" {
		t.Fatalf("%s never starts (`$ mkdir NAME && cd NAME`)", filepath.Base(r.path))
	}
	if *update {
		if err := os.WriteFile(r.path, []byte(renderGuide(blocks)), 0o644); err != nil {
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

// guideVolatile is what changes from run to run, whatever the document.
var guideVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b\d+(\.\d+)?(ms|µs|s)\b`), "0s"},
	{regexp.MustCompile(`\d{8}-\d{6}(-\d+)?`), "YYYYMMDD-HHMMSS"},
	// The fleet's ssh key in the cloud is named after the admins' keys,
	// which are the reader's: <fleet>-<12 hex digits>.
	{regexp.MustCompile(`\b([a-z0-9-]+)-[0-9a-f]{12}\b`), "$1-xxxxxxxxxxxx"},
}

// normalizeGuide drops trailing blanks and what changes between runs.
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

// docFileFence opens a block that is a file: ```python file=fleet.star.
var docFileFence = regexp.MustCompile("^```[a-z]+ file=(\\S+)$")

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
		case docFileFence.MatchString(fence):
			kind, file = "file", docFileFence.FindStringSubmatch(fence)[1]
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

// sopsFixtures are files the real sops CLI made, and the age key they are
// encrypted to.
const sopsFixtures = "../../engine/secrets/sopsfile/testdata"

// TestMigrating runs the worked example of docs/migrating.md: cinnabar's
// server exists, made by Terraform (no fleet labels), with the id the
// example's state names.
func TestMigrating(t *testing.T) {
	keygen := testtool.Require(t, "ssh-keygen", "ssh-keygen")
	r := newDocRun(t, "../../docs/migrating.md")
	r.swap(guideAdminKey, sshKey(t, keygen, filepath.Join(r.home, ".ssh", "id_ed25519"), "you@laptop"))
	id := r.hz.SeedServer(hetznerfake.ServerSeed{Name: "cinnabar", Type: "cx43", Location: "fsn1", Image: "debian-12",
		Labels: map[string]string{"managed-by": "terranix"}})
	r.swap("58310442", fmt.Sprint(id))
	// The reader's sops file and the age key sops encrypted it to: the
	// fixtures the real sops CLI made (engine/secrets/sopsfile/testdata).
	fixtures, err := filepath.Abs(sopsFixtures) // setup runs after the chdir
	if err != nil {
		t.Fatal(err)
	}
	r.setup = func(dir string) {
		keys := filepath.Join(r.home, ".config", "sops", "age", "keys.txt")
		if err := os.MkdirAll(filepath.Dir(keys), 0o700); err != nil {
			t.Fatal(err)
		}
		for from, to := range map[string]string{"secrets.yaml": filepath.Join(dir, "secrets.yaml"), "key.txt": keys} {
			if err := copyFile(filepath.Join(fixtures, from), to); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.run()
}

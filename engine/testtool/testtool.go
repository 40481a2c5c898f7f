// Package testtool finds the external programs that fleet's tests drive
// for real (nix-instantiate, sshd, age, git, dot).
//
// A test that needs one calls Require. On a developer's machine without
// the program the test is skipped with a message naming the program and
// the Debian package to install; under FLEET_REQUIRE_TOOLS=1 (as in CI,
// where .ci/run installs them) the test fails instead, so a missing
// install step cannot turn a green CI into a run that tested nothing.
//
// Upstream finds the upstream source snapshots (nixpkgs' lib, home-manager,
// nix-darwin, agenix) the same way, and Untar unpacks them. Helpers for
// generated trees live here too, so the nixgen tests and the conformance
// tier lay them out alike: WriteFiles, and StandInSecrets for a fleet
// whose secrets are not generated.
package testtool

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/testtool/testenv"
)

// Require returns the path of program, or skips (fails under
// FLEET_REQUIRE_TOOLS=1) naming the Debian package that provides it.
func Require(t testing.TB, program, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	Unavailable(t, program+" not found in PATH: install the Debian package "+debianPackage+" to run this test")
	return ""
}

// Unavailable is the rule for a test that cannot run here for want of
// something the machine should provide (a program, a pseudo-terminal, a
// writable Nix store): it skips with msg, or fails under
// FLEET_REQUIRE_TOOLS=1, where everything is expected to be there.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("FLEET_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (FLEET_REQUIRE_TOOLS=1 makes this a failure)")
	}
	t.Skip(msg)
}

// Git runs git in dir (main as the default branch, whatever the machine's
// configuration says) and returns its trimmed output; a failure fails t
// with git's stderr.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// GitEnv is the environment that isolates a test's git from the
// machine's configuration and names the author of its commits, as on a
// clean CI machine (testenv.GitEnv; testenv.Isolate sets it already).
func GitEnv() map[string]string { return testenv.GitEnv() }

// Upstream returns the folder of the upstream source snapshots the
// conformance tests evaluate generated trees with (nixpkgs-lib.tar.gz,
// home-manager.tar.gz, nix-darwin.tar.gz, agenix.tar.gz): $FLEET_UPSTREAM_DIR
// when set, else ../shared/upstream next to the repository root (the folder
// of go.mod). Without it the test is skipped, or fails under
// FLEET_REQUIRE_TOOLS=1.
func Upstream(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("FLEET_UPSTREAM_DIR")
	if dir == "" {
		if root, err := repoRoot(); err == nil {
			dir = filepath.Join(root, "..", "shared", "upstream")
		}
	}
	if dir != "" {
		if abs, err := filepath.Abs(dir); err == nil {
			if st, err := os.Stat(abs); err == nil && st.IsDir() {
				return abs
			}
			dir = abs
		}
	}
	Unavailable(t, "upstream snapshots not found ("+dir+"): put nixpkgs-lib, home-manager, nix-darwin and agenix archives in ../shared/upstream next to the repository, or set FLEET_UPSTREAM_DIR")
	return ""
}

// repoRoot is the nearest folder at or above the working directory that
// holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// StandInHostKey is the public half of every stand-in host key.
const StandInHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ stand-in"

// StandInSecrets gives the fleet a root in which every secret file it
// declares exists, as after `fleet secrets generate`: the tree refers to
// the stored files (a file not generated yet stops the evaluation with
// fleet's own message). The root is a temporary folder with links to the
// fleet's own files and a secrets/ folder of stand-ins; evaluation never
// reads their contents, only the public halves of host keys, which are a
// valid key.
func StandInSecrets(t testing.TB, f *model.Fleet) {
	t.Helper()
	root := t.TempDir()
	entries, err := os.ReadDir(f.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "secrets" {
			// Its other files (a sops file kept there, which the tree
			// refers to with nix.path) are linked one by one; the
			// secrets' own files are stand-ins, below.
			linkFiles(t, filepath.Join(f.Root, "secrets"), filepath.Join(root, "secrets"))
			continue
		}
		if err := os.Symlink(filepath.Join(f.Root, e.Name()), filepath.Join(root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range f.Secrets {
		owners := s.Machines
		if s.Shared || len(owners) == 0 {
			owners = []string{""}
		}
		for _, m := range owners {
			for _, file := range s.Files {
				rel := nixgen.SecretPath(s, m, file)
				data := "age-encryption.org/v1\n-> stand-in\n"
				if !file.Secret {
					rel = strings.TrimSuffix(rel, ".age")
					data = StandInHostKey + "\n"
				}
				p := filepath.Join(root, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(p); err != nil && !os.IsNotExist(err) { // a link to the real file
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	f.Root = root
}

// linkFiles makes dst a tree of folders with a link to each file of src.
func linkFiles(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return os.Symlink(p, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// WriteFiles lays out a generated tree in dir.
func WriteFiles(t testing.TB, dir string, files []nixgen.File) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Untar extracts a .tar.gz archive (an upstream snapshot) into dst,
// refusing entries that would leave it.
func Untar(t testing.TB, archive, dst string) {
	t.Helper()
	if err := untar(archive, dst); err != nil {
		t.Fatalf("unpacking %s: %v", archive, err)
	}
}

func untar(archive, dst string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("%s: entry %q leaves the folder", archive, h.Name)
		}
		p := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		}
	}
}

package nixgen_test

import (
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/testtool"
)

var update = flag.Bool("update", false, "rewrite the golden trees in testdata/golden")

// fleets are the fleets whose trees are pinned: the reference fleet, every
// example, and the test fleets under testdata/fleets.
func fleets(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{"fleet": "../../fleet.star"}
	for _, pattern := range []string{"../../examples/*/fleet.star", "testdata/fleets/*/fleet.star"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			prefix := "example-"
			if strings.HasPrefix(pattern, "testdata") {
				prefix = "test-"
			}
			out[prefix+filepath.Base(filepath.Dir(m))] = m
		}
	}
	return out
}

func evalFleet(t testing.TB, file string) *model.Fleet {
	t.Helper()
	f, err := engine.Eval(context.Background(), file, engine.Options{Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := graph.Build(f); err != nil {
		t.Fatal(err)
	}
	return f
}

func generate(t testing.TB, file string) []nixgen.File {
	t.Helper()
	files, err := nixgen.Generate(evalFleet(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGoldenTrees pins every generated tree byte for byte, and checks that
// generating twice gives the same bytes.
func TestGoldenTrees(t *testing.T) {
	for name, file := range fleets(t) {
		t.Run(name, func(t *testing.T) {
			files := generate(t, file)
			again := generate(t, file)
			if len(files) != len(again) {
				t.Fatal("two generations gave different trees")
			}
			for i := range files {
				if files[i].Path != again[i].Path || string(files[i].Data) != string(again[i].Data) {
					t.Fatalf("two generations differ at %s", files[i].Path)
				}
			}
			dir := filepath.Join("testdata/golden", name)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				testtool.WriteFiles(t, dir, files)
				return
			}
			want := map[string]bool{}
			for _, f := range files {
				want[f.Path] = true
				got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
				if err != nil {
					t.Errorf("%s: not in the golden tree (go test ./engine/nixgen -update)", f.Path)
					continue
				}
				if string(got) != string(f.Data) {
					t.Errorf("%s differs from the golden tree (go test ./engine/nixgen -update, then review the diff)", f.Path)
				}
			}
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					if !want[filepath.ToSlash(rel)] {
						t.Errorf("%s: in the golden tree but no longer generated", rel)
					}
				}
				return nil
			})
		})
	}
}

// TestTreesParse runs real Nix's parser over every generated .nix file.
func TestTreesParse(t *testing.T) {
	bin := testtool.Require(t, "nix-instantiate", "nix-bin")
	for name, file := range fleets(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			files := generate(t, file)
			testtool.WriteFiles(t, dir, files)
			var paths []string
			for _, f := range files {
				if strings.HasSuffix(f.Path, ".nix") && !strings.HasPrefix(f.Path, "files/") {
					paths = append(paths, filepath.Join(dir, f.Path))
				}
			}
			cmd := exec.Command(bin, append([]string{"--parse"}, paths...)...)
			cmd.Env = nixEnv(t)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nix-instantiate --parse: %v\n%s", err, out)
			}
		})
	}
}

// nixEnv keeps Nix away from the user's state and from any daemon.
func nixEnv(t testing.TB) []string {
	return append(os.Environ(), "NIX_REMOTE=", "NIX_STATE_DIR="+t.TempDir(), "NIX_PATH=", "NIX_CONF_DIR="+t.TempDir())
}

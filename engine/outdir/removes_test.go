package outdir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Removes names what the next Write removes, and only that: not a file
// edited since fleet wrote it (Write keeps it), not the user's, and it
// changes nothing.
func TestRemoves(t *testing.T) {
	v := flake()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string
	}{
		{"no folder", func(*testing.T, string) {}, nil},
		{"up to date", func(t *testing.T, dir string) { mustWrite(t, dir, v) }, nil},
		{"no longer produced", func(t *testing.T, dir string) {
			mustWrite(t, dir, with(with(v, "modules/old.nix", "{ }\n"), "files/x.nix", "{ }\n"))
		}, []string{"files/x.nix", "modules/old.nix"}},
		{"no longer produced, edited since", func(t *testing.T, dir string) {
			mustWrite(t, dir, with(v, "modules/old.nix", "{ }\n"))
			writeFile(t, dir, "modules/old.nix", "{ mine = 1; }\n")
		}, nil},
		{"the user's", func(t *testing.T, dir string) {
			mustWrite(t, dir, v)
			writeFile(t, dir, "mine.nix", "{ }\n")
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			tc.setup(t, dir)
			_, statErr := os.Stat(dir)
			exists := statErr == nil
			var before map[string]string
			if exists {
				before = snapshot(t, dir)
			}
			got, err := Removes(dir, v)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Removes = %q, want %q", got, tc.want)
			}
			if !exists {
				if _, err := os.Stat(dir); err == nil {
					t.Errorf("Removes made the folder")
				}
			} else if after := snapshot(t, dir); !equalMaps(before, after) {
				t.Errorf("Removes changed the folder")
			}
			if tc.want != nil {
				if rep := mustWrite(t, dir, v); !slices.Equal(rep.Removed, tc.want) {
					t.Errorf("Write removed %q, Removes said %q", rep.Removed, tc.want)
				}
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

package nixgen_test

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
)

// Reads names the files a machine's evaluation reads: flake.nix, the
// overlay, its own file and the modules of its features and of what they
// require, and nothing of the features it does not use.
func TestReads(t *testing.T) {
	f := benchModel(3) // m00000 uses f000, f007, ...; features require the one before, in chains of ten
	tree, err := nixgen.GenerateTree(f)
	if err != nil {
		t.Fatal(err)
	}
	reads := tree.Reads["m00000"]
	for _, want := range []string{"flake.nix", "overlays/default.nix", "machines/nixos/m00000.nix",
		"modules/nixos/f007.nix", "modules/nixos/f000.nix", "modules/nixos/f001.nix", // f007 requires f006 ... f000
		"homes/users/u0.nix", "modules/home/f000.nix"} {
		if !slices.Contains(reads, want) {
			t.Errorf("m00000 does not read %s: %v", want, reads)
		}
	}
	for _, p := range reads {
		if strings.HasPrefix(p, "machines/") && p != "machines/nixos/m00000.nix" || p == "secrets.nix" {
			t.Errorf("m00000 reads %s", p)
		}
	}
	if !sort.StringsAreSorted(reads) {
		t.Error("not sorted")
	}
	var files []string
	for _, x := range tree.Files {
		files = append(files, x.Path)
	}
	if len(reads) >= len(files) {
		t.Errorf("m00000 reads all %d files", len(files))
	}
	// Inline Nix naming self: every file.
	f.Machines[0].NixOS.Set([]string{"x"}, model.Expr{Code: "inputs.self.rev or null"})
	if tree, err = nixgen.GenerateTree(f); err != nil {
		t.Fatal(err)
	}
	if got := len(tree.Reads["m00000"]); got != len(tree.Files) {
		t.Errorf("with inputs.self, m00000 reads %d of %d files", got, len(tree.Files))
	}
	if got := len(tree.Reads["m00001"]); got >= len(tree.Files) {
		t.Errorf("m00001 reads all files because of m00000's code")
	}
}

// In the pinned fleets, no machine reads the whole tree, nor another
// machine's file.
func TestReadsOfPinnedFleets(t *testing.T) {
	for name, file := range fleets(t) {
		f := evalFleet(t, file)
		tree, err := nixgen.GenerateTree(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range f.Machines {
			reads := tree.Reads[m.Name]
			t.Logf("%s %s: %d of %d files", name, m.Name, len(reads), len(tree.Files))
			if len(reads) == len(tree.Files) {
				t.Errorf("%s: %s reads every file", name, m.Name)
			}
			for _, p := range reads {
				if strings.HasPrefix(p, "machines/") && !strings.HasSuffix(p, "/"+m.Name+".nix") {
					t.Errorf("%s: %s reads %s", name, m.Name, p)
				}
			}
		}
	}
}

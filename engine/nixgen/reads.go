package nixgen

import (
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// Tree is a generated tree and, per machine, the files of it that the
// evaluation of the machine's system reads.
type Tree struct {
	Files []File
	// Reads[m] are the tree paths (sorted) that evaluating machine m's
	// system (nixosConfigurations.<m> or darwinConfigurations.<m>) reads,
	// as far as fleet wrote the references: flake.nix, the overlay and
	// the files it refers to, the machine's file, the feature and home
	// modules it imports (transitively), the user homes it uses, the
	// hand-written files and secret files referred to. Files fleet did
	// not write (flake.lock, a user's own files in the folder) are not
	// here: engine/fingerprint adds them.
	//
	// Where the references may reach further than fleet can see, the
	// list is every file of the tree:
	//   - inline Nix (nix.expr) mentioning self, a relative path (./) or
	//     a search path (<...>), in one of the machine's files;
	//   - a hand-written Nix file mentioning self.
	// Any other hand-written Nix file the machine reads adds every
	// hand-written copy (files/, deps/): its own relative imports stay
	// among them.
	Reads map[string][]string
}

// GenerateTree is Generate with the files each machine reads.
func GenerateTree(f *model.Fleet) (*Tree, error) {
	g, files, err := generate(f)
	if err != nil {
		return nil, err
	}
	t := &Tree{Files: files, Reads: map[string][]string{}}
	var all, copies []string
	for _, x := range files {
		all = append(all, x.Path)
		if strings.HasPrefix(x.Path, filesDir+"/") || strings.HasPrefix(x.Path, depsDir+"/") {
			copies = append(copies, x.Path)
		}
	}
	for _, m := range f.Machines {
		t.Reads[m.Name] = g.reads(m, all, copies)
	}
	return t, nil
}

// reads walks the references from flake.nix's part for m.
func (g *gen) reads(m *model.Machine, all, copies []string) []string {
	seen := map[string]bool{}
	whole := false
	var visit func(p string)
	visit = func(p string) {
		if seen[p] || whole {
			return
		}
		seen[p] = true
		if g.open[p] {
			whole = true
			return
		}
		if isCopy(p) && strings.HasSuffix(p, ".nix") {
			if strings.Contains(string(g.files[p]), "self") {
				whole = true
				return
			}
			for _, c := range copies {
				visit(c)
			}
		}
		for to := range g.refs[p] {
			visit(to)
		}
	}
	for _, root := range []string{"flake.nix", "overlays/default.nix", machineFile(m)} {
		visit(root)
	}
	if whole {
		return all
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		if _, ok := g.files[p]; ok { // a secret file not generated yet is not in the tree
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func isCopy(p string) bool {
	return strings.HasPrefix(p, filesDir+"/") || strings.HasPrefix(p, depsDir+"/")
}

// reachesOut reports whether inline Nix code may read files fleet does
// not know it reads: the flake itself (self, inputs.self), a path
// relative to the file it is in, or a search path.
func reachesOut(code string) bool {
	return strings.Contains(code, "self") || strings.Contains(code, "./") || strings.Contains(code, "<")
}

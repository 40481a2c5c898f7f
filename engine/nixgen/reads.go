package nixgen

import (
	"path"
	"regexp"
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
	//   - a hand-written Nix file mentioning self (the name, not "itself").
	// Any other hand-written Nix file the machine reads adds the
	// hand-written copies (files/, deps/) in its folder and below, or
	// all of them when it mentions ../: its own relative paths stay
	// among those.
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
		if isCopy(x.Path) {
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
			if selfWord.Match(g.files[p]) {
				whole = true
				return
			}
			// Its relative paths stay in its own folder unless they
			// climb out of it (../).
			dir := path.Dir(p) + "/"
			climbs := strings.Contains(string(g.files[p]), "../")
			for _, c := range copies {
				if climbs || strings.HasPrefix(c, dir) {
					visit(c)
				}
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
	return selfWord.MatchString(code) || strings.Contains(code, "./") || strings.Contains(code, "<")
}

// selfWord is the name self (the flake, in inputs.self or a flake's
// outputs), not a word containing it (itself). Nix names hold letters,
// digits, _, ' and -.
var selfWord = regexp.MustCompile(`(^|[^A-Za-z0-9_'-])self($|[^A-Za-z0-9_'-])`)

package builtins

import (
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Doc documents one builtin. The same text feeds `fleet doc` and
// docs/starlark-api.md, so the reference cannot drift from the code.
type Doc struct {
	// Name is the name as called: "machine", "overlay.fallback".
	Name string
	// Group orders the reference: declarations, overlay, nix, hosts, secrets.
	Group     string
	Signature string
	Text      string
}

// Builtin is a predeclared function with its documentation.
type Builtin struct {
	Fn  func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)
	Doc Doc
}

// all lists every builtin, group by group.
func all() []Builtin {
	var out []Builtin
	for _, g := range [][]Builtin{fleetGroup(), featureGroup(), machineGroup(), overlayGroup(),
		nixGroup(), hostGroup(), secretGroup(), checkGroup()} {
		out = append(out, g...)
	}
	return out
}

// Docs returns the documentation of every builtin, sorted by group order
// then name. Extra documents builtins defined elsewhere (include, by the
// engine) so that the reference is complete.
func Docs(extra ...Doc) []Doc {
	var docs []Doc
	for _, b := range all() {
		docs = append(docs, b.Doc)
	}
	docs = append(docs, extra...)
	order := map[string]int{"declarations": 0, "files": 1, "overlay": 2, "nix": 3, "hosts": 4, "secrets": 5, "deploy": 6}
	sort.SliceStable(docs, func(i, j int) bool {
		if order[docs[i].Group] != order[docs[j].Group] {
			return order[docs[i].Group] < order[docs[j].Group]
		}
		return docs[i].Name < docs[j].Name
	})
	return docs
}

// Predeclared returns the names every fleet file and library sees: the
// top-level builtins and the modules (overlay, nix, hetzner, gcp, gen) that
// group the rest. It is built afresh per evaluation and frozen.
func Predeclared() starlark.StringDict {
	env := starlark.StringDict{}
	modules := map[string]starlark.StringDict{}
	for _, b := range all() {
		name := b.Doc.Name
		if mod, member, ok := strings.Cut(name, "."); ok {
			if modules[mod] == nil {
				modules[mod] = starlark.StringDict{}
			}
			modules[mod][member] = starlark.NewBuiltin(name, b.Fn)
			continue
		}
		env[name] = starlark.NewBuiltin(name, b.Fn)
	}
	for name, members := range modules {
		env[name] = &starlarkstruct.Module{Name: name, Members: members}
	}
	env.Freeze()
	return env
}

package engine

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// IncludeDoc documents include() for `fleet doc` and docs/.
var IncludeDoc = builtins.Doc{Name: "include", Group: "files", Signature: `include(pattern)`,
	Text: `Runs every fleet file matching pattern (a glob relative to the including file, or
//path from the fleet root) as part of the fleet, in sorted order. Files ending in
_test.star are skipped. Their declarations join the fleet; their global names stay
their own. A pattern that matches nothing is an error, and so is including one file
twice. Libraries cannot include: use load() for values and functions.`}

// withInclude returns env plus the include builtin, frozen.
func withInclude(env starlark.StringDict, fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) starlark.StringDict {
	out := make(starlark.StringDict, len(env)+1)
	for k, v := range env {
		out[k] = v
	}
	out["include"] = starlark.NewBuiltin("include", fn)
	out.Freeze()
	return out
}

func (e *evaluator) include(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "pattern", &pattern); err != nil {
		return nil, err
	}
	if builtins.KindOf(thread) == builtins.LibraryModule {
		return nil, fmt.Errorf("include: the library %s cannot include fleet files: include them from the fleet, and load() libraries", thread.Name)
	}
	if strings.HasPrefix(pattern, "@") {
		return nil, fmt.Errorf("include: %q: only files of the fleet can be included; load() libraries from @ repositories", pattern)
	}
	labelPattern, err := resolveLabel(thread.Name, pattern)
	if err != nil {
		return nil, fmt.Errorf("include: %w", err)
	}
	matches, err := filepath.Glob(filepath.Join(e.root, filepath.FromSlash(labelPattern)))
	if err != nil {
		return nil, fmt.Errorf("include: %q: %v", pattern, err)
	}
	isGlob := strings.ContainsAny(labelPattern, "*?[")
	var labels []string
	for _, m := range matches {
		rel, err := filepath.Rel(e.root, m)
		if err != nil {
			continue
		}
		label := filepath.ToSlash(rel)
		if !strings.HasSuffix(label, ".star") || (isGlob && strings.HasSuffix(label, "_test.star")) {
			continue
		}
		if model.NeedsEscape(label) {
			return nil, fmt.Errorf("include: %w (matched by %q)", labelError(label), pattern)
		}
		labels = append(labels, label)
	}
	sort.Strings(labels)
	if len(labels) == 0 {
		return nil, fmt.Errorf("include: %q matches no .star file (looked for %s under the fleet root)", pattern, labelPattern)
	}
	pos := posOf(thread.CallFrame(1).Pos)
	for _, label := range labels {
		if site, ok := e.included[label]; ok {
			where := "it is the entry file"
			if site.File != "" {
				where = "first included at " + site.String()
			}
			return nil, fmt.Errorf("include: %s is included twice (%s)", label, where)
		}
		if _, ok := e.modules[label]; ok {
			return nil, fmt.Errorf("include: %s is loaded as a library: a file is either included or loaded, not both", label)
		}
		e.included[label] = pos
		if _, err := e.exec(label, builtins.FleetModule, &pos); err != nil {
			return nil, err
		}
	}
	return starlark.None, nil
}

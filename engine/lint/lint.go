// Package lint finds what a fleet declares or loads and never uses.
//
// Two sources of truth, for two kinds of findings. The syntax of each
// file (parsed with buildtools, the parser fleet fmt formats with) tells
// which names are bound and which are read; it gives three rules:
//
//   - unused-load: a symbol brought in by load() that the file never
//     reads. go.starlark.net binds loaded names in the loading file only,
//     so another file cannot be relying on it.
//   - unused-symbol: a top-level name starting with _ (a variable or a
//     function) that the file never reads. Names starting with _ cannot
//     be loaded by other files, so nothing else can read it either.
//     Public top-level names are never reported: a library exists to be
//     loaded, and which files load what is not this file's business.
//   - unused-local: a variable assigned in a function, or a function
//     defined in one, that the function (and the functions nested in it)
//     never reads. Parameters are not reported (a signature is an
//     interface), nor loop variables, nor names starting with _ (the
//     usual way to say "deliberately unused", as in `_, v = pair`).
//
// Names are resolved the way go.starlark.net resolves them: a name bound
// anywhere in a function body is local to the whole function, nested
// functions see the locals of the functions around them, comprehension
// variables are local to the comprehension, and everything else is a
// global or a load of the file.
//
// The evaluated fleet gives the fourth rule:
//
//   - unused-feature: a feature that no machine reaches, neither in its
//     features, nor through the requires of those, nor as a home feature
//     of one of its users (and their requires). This is the closure of the
//     machines in the dependency graph (package graph). A feature only a
//     user without machines has is unused too: nothing builds it.
//     Features whose position is in @stdlib or a dependency (a label
//     starting with @) are not reported: the fleet cannot edit those
//     files, nor silence the finding there.
//
// # Silencing a finding
//
// A comment `# lint: ignore` at the end of the line a finding points at,
// or alone on the line just above it, silences the findings on that line;
// `# lint: ignore=unused-feature` (rules separated by commas) silences
// only those rules. Anything after the directive is free text, so the
// comment can say why:
//
//	# lint: ignore=unused-feature  kept for the next GPU machine
//	feature(
//	    "cuda-dev",
//
// The line-above form is the one that survives fleet fmt for a call that
// spans several lines: the formatter moves a comment written after an
// opening parenthesis onto the next line.
package lint

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
)

// Rules, as printed after each finding.
const (
	RuleUnusedLoad    = "unused-load"
	RuleUnusedSymbol  = "unused-symbol"
	RuleUnusedLocal   = "unused-local"
	RuleUnusedFeature = "unused-feature"
)

// Finding is one problem at one position.
type Finding struct {
	Pos  model.Pos
	Rule string
	Msg  string
}

// String is "file:line:col: message (rule)".
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s (%s)", f.Pos, f.Msg, f.Rule)
}

// Sort orders findings by position, then rule, then message.
func Sort(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Pos != b.Pos {
			return a.Pos.Less(b.Pos)
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Msg < b.Msg
	})
}

// Fleet lints a evaluated fleet: every .star file under its root (see
// Files) and its features. Findings silenced by a `# lint: ignore` comment
// are left out; the rest come back sorted.
func Fleet(f *model.Fleet, g *graph.Graph) ([]Finding, error) {
	files, err := Files(f.Root)
	if err != nil {
		return nil, err
	}
	var out []Finding
	parsed := map[string]*fileInfo{}
	for _, label := range files {
		src, err := os.ReadFile(filepath.Join(f.Root, filepath.FromSlash(label)))
		if err != nil {
			return nil, err
		}
		info, err := parse(label, src)
		if err != nil {
			return nil, err
		}
		parsed[label] = info
		out = append(out, info.findings()...)
	}
	out = append(out, Features(f, g)...)
	kept := out[:0]
	for _, fd := range out {
		if info := parsed[fd.Pos.File]; info == nil || !info.ignored(fd) {
			kept = append(kept, fd)
		}
	}
	Sort(kept)
	return kept, nil
}

// Files returns the .star files under root that lint reads, as
// slash-separated paths relative to root, sorted: test files (*_test.star)
// and testdata and hidden directories (.git, .fleet) are left out.
func Files(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && strings.HasSuffix(name, ".star") && !strings.HasSuffix(name, "_test.star") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Source lints one file's syntax (the unused-load, unused-symbol and
// unused-local rules), honouring its `# lint: ignore` comments. label
// names the file in positions. A file that does not parse is an error.
func Source(label string, src []byte) ([]Finding, error) {
	info, err := parse(label, src)
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, fd := range info.findings() {
		if !info.ignored(fd) {
			out = append(out, fd)
		}
	}
	Sort(out)
	return out, nil
}

// Features reports the features no machine reaches (unused-feature).
func Features(f *model.Fleet, g *graph.Graph) []Finding {
	ids := make([]string, len(f.Machines))
	for i, m := range f.Machines {
		ids[i] = graph.ID(graph.KindMachine, m.Name)
	}
	used := map[string]bool{}
	for _, id := range g.Closure(ids...) {
		used[id] = true
	}
	var out []Finding
	for _, feat := range f.Features {
		if strings.HasPrefix(feat.Pos.File, "@") {
			continue // declared in @stdlib or a dependency: not the fleet's to change
		}
		if !used[graph.ID(graph.KindFeature, feat.Name)] {
			out = append(out, Finding{Pos: feat.Pos, Rule: RuleUnusedFeature,
				Msg: fmt.Sprintf("unused feature %q: no machine uses it, directly, through requires or through a user's home", feat.Name)})
		}
	}
	return out
}

// fileInfo is a parsed file: its syntax and its lint directives.
type fileInfo struct {
	label string
	src   []byte
	file  *build.File
	// ignore maps a line to the rules silenced on it ("" for all).
	ignore map[int][]string
}

func parse(label string, src []byte) (*fileInfo, error) {
	f, err := build.ParseDefault(label, src)
	if err != nil {
		return nil, err
	}
	info := &fileInfo{label: label, src: src, file: f, ignore: map[int][]string{}}
	for _, c := range comments(f) {
		rules, ok := directive(c.Token)
		if !ok {
			continue
		}
		line := c.Start.Line
		if info.wholeLine(c.Start) {
			line++ // a comment alone on its line speaks of the next one
		}
		info.ignore[line] = append(info.ignore[line], rules...)
	}
	return info, nil
}

// directive parses "# lint: ignore" and "# lint: ignore=rule,rule",
// followed by free text.
func directive(comment string) (rules []string, ok bool) {
	text := strings.TrimSpace(strings.TrimPrefix(comment, "#"))
	rest, ok := strings.CutPrefix(text, "lint:")
	if !ok {
		return nil, false
	}
	rest = strings.TrimSpace(rest)
	rest, ok = strings.CutPrefix(rest, "ignore")
	if !ok {
		return nil, false
	}
	if list, ok := strings.CutPrefix(rest, "="); ok {
		if i := strings.IndexAny(list, " \t"); i >= 0 {
			list = list[:i]
		}
		for _, r := range strings.Split(list, ",") {
			if r != "" {
				rules = append(rules, r)
			}
		}
		return rules, len(rules) > 0
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return nil, false // "ignored", "ignore-me": not a directive
	}
	return []string{""}, true
}

// wholeLine reports whether only blanks precede the position on its line.
func (info *fileInfo) wholeLine(p build.Position) bool {
	for i := p.Byte - 1; i >= 0 && i < len(info.src); i-- {
		switch info.src[i] {
		case '\n':
			return true
		case ' ', '\t':
		default:
			return false
		}
	}
	return true
}

func (info *fileInfo) ignored(fd Finding) bool {
	for _, r := range info.ignore[fd.Pos.Line] {
		if r == "" || r == fd.Rule {
			return true
		}
	}
	return false
}

var commentsType = reflect.TypeOf(build.Comments{})

// comments returns every comment of the file. buildtools attaches comments
// to many kinds of nodes (and to fields such as a call's closing
// parenthesis that Walk does not visit), so the tree is searched by
// reflection for every Comments value.
func comments(f *build.File) []build.Comment {
	var out []build.Comment
	var visit func(v reflect.Value)
	visit = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				visit(v.Elem())
			}
		case reflect.Struct:
			if v.Type() == commentsType {
				c := v.Interface().(build.Comments)
				out = append(out, c.Before...)
				out = append(out, c.Suffix...)
				out = append(out, c.After...)
				return
			}
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					visit(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				visit(v.Index(i))
			}
		}
	}
	visit(reflect.ValueOf(f))
	return out
}

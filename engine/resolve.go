package engine

import (
	"fmt"
	"path"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

const stdlibPrefix = "@stdlib//"

// resolveLabel turns the path written in a load() or include() of the file
// labelled from into the label of the file it names. It is purely lexical:
//
//	"lib.star", "./lib.star", "../x.star"   relative to from's directory
//	"//lib/x.star"                          relative to the fleet root (inside
//	                                        @name: relative to @name's root)
//	"@stdlib//x.star"                       the embedded standard library
//	"@name//x.star"                         a pinned dependency
//
// A local result never leaves the root, and a relative or //-rooted path
// inside @stdlib or @name never leaves that repository.
func resolveLabel(from, p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("empty path")
	case model.NeedsEscape(p):
		return "", labelError(p)
	case strings.Contains(p, "\\"):
		return "", fmt.Errorf("%q: paths use '/' and no control characters", p)
	case strings.HasPrefix(p, "@"):
		repo, rest, ok := strings.Cut(p[1:], "//")
		if !ok || repo == "" {
			return "", fmt.Errorf("%q: write a dependency path as @name//path/file.star", p)
		}
		inner, err := clean(rest, p)
		if err != nil {
			return "", err
		}
		return "@" + repo + "//" + inner, nil
	case strings.HasPrefix(p, "//"):
		inner, err := clean(p[2:], p)
		if repo, _, ok := splitRepo(from); ok { // a repository's root is its own
			if err != nil {
				return "", fmt.Errorf("%s (inside @%s)", err, repo)
			}
			return "@" + repo + "//" + inner, nil
		}
		return inner, err
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%q is an absolute path: write it relative to the loading file, or as //path from the fleet root", p)
	}
	if repo, dir, ok := splitRepo(from); ok {
		inner, err := clean(path.Join(path.Dir(dir), p), p)
		if err != nil {
			return "", fmt.Errorf("%s (inside @%s)", err, repo)
		}
		return "@" + repo + "//" + inner, nil
	}
	return clean(path.Join(path.Dir(from), p), p)
}

// clean normalises a path that must stay inside its tree.
func clean(p, written string) (string, error) {
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") || c == "." || strings.HasPrefix(c, "/") {
		return "", fmt.Errorf("%q leaves the fleet root", written)
	}
	return c, nil
}

// splitRepo splits "@repo//dir/x.star" into ("repo", "dir/x.star").
func splitRepo(label string) (repo, rest string, ok bool) {
	if !strings.HasPrefix(label, "@") {
		return "", "", false
	}
	return strings.Cut(label[1:], "//")
}

// labelError refuses a file name fleet could not print as it is: a
// control character (a newline, '\r', ESC ...), a line or paragraph
// separator, a bidi control or a byte that is not UTF-8 (model.Printable).
// File names are printed into the comments of the generated files, into
// error messages and onto terminals, where such a character would end a
// Nix comment or rewrite the screen.
func labelError(name string) error { return &badLabel{name} }

// badLabel is the error of labelError; evalError finds it to quote the
// name in Starlark's own "cannot load <name>: ..." message.
type badLabel struct{ name string }

func (e *badLabel) Error() string {
	return model.BadFileName(e.name)
}

package outdir

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fleet-nix/fleet/engine/plural"
)

const (
	// ManifestName is the name of the manifest in the output folder.
	ManifestName = ".fleet-manifest.json"

	// tmpPrefix starts the name of the temporary file a file is written
	// to before it is renamed into place.
	tmpPrefix = ".fleet-tmp-"

	// maxProblems caps the number of lines an input error lists: a
	// generator bug can produce thousands of bad paths, and the first
	// few say what is wrong.
	maxProblems = 20
)

// checkPath returns why p is not a path fleet may write, or "".
func checkPath(p string) string {
	switch {
	case p == "":
		return "empty path"
	case strings.HasPrefix(p, "/"):
		return "absolute path; paths are relative to the output folder"
	case strings.Contains(p, `\`):
		return "contains a backslash; separate directories with /"
	case !utf8.ValidString(p):
		return "not valid UTF-8"
	case strings.ContainsFunc(p, unicode.IsControl):
		return "contains a control character"
	case p == ".." || strings.HasPrefix(p, "../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/../"):
		return `contains ".."; files must stay inside the output folder`
	case p == "." || !fs.ValidPath(p):
		if c := path.Clean(p); c != "." && c != p {
			return fmt.Sprintf("not a clean path (want %q)", c)
		}
		return "not a clean path"
	}
	return ""
}

// checkName returns why p, a clean path, is reserved for fleet's own use.
func checkName(p string) string {
	if p == ManifestName {
		return "reserved for fleet's manifest"
	}
	if strings.HasPrefix(path.Base(p), tmpPrefix) {
		return fmt.Sprintf("names starting with %q are reserved for fleet's temporary files", tmpPrefix)
	}
	return ""
}

// normalize validates files and returns a copy sorted by path, with the
// default mode filled in. Every problem is reported, not just the first.
func normalize(files []File) ([]File, error) {
	var problems []string
	bad := func(p, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%q: ", p)+fmt.Sprintf(format, args...))
	}
	out := make([]File, 0, len(files))
	for _, f := range files {
		if why := checkPath(f.Path); why != "" {
			bad(f.Path, "%s", why)
			continue
		}
		if why := checkName(f.Path); why != "" {
			bad(f.Path, "%s", why)
			continue
		}
		switch f.Mode {
		case 0:
			f.Mode = 0o644
		case 0o644, 0o755:
		default:
			bad(f.Path, "mode %v; want 0644 or 0755", f.Mode)
			continue
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })

	// Every path and every directory above it claims its case-folded
	// name, as a file or as a directory. A name claimed twice with
	// different spellings clashes on a case-insensitive file system; the
	// same spelling claimed twice is a duplicate or a file/directory
	// clash.
	type claim struct {
		path string
		dir  bool
	}
	claims := make(map[string]claim, len(out))
	seen := make(map[string]bool)
	report := func(msg string) {
		if !seen[msg] {
			seen[msg] = true
			problems = append(problems, msg)
		}
	}
	claimName := func(p string, dir bool) {
		key := strings.ToLower(p)
		c, ok := claims[key]
		if !ok {
			claims[key] = claim{p, dir}
			return
		}
		switch {
		case c.path != p:
			a, b := min(c.path, p), max(c.path, p)
			report(fmt.Sprintf("%q and %q differ only in case, which clashes on case-insensitive file systems", a, b))
		case c.dir && dir:
		case !c.dir && !dir:
			report(fmt.Sprintf("%q: given more than once", p))
		default:
			report(fmt.Sprintf("%q: both a file and a directory", p))
		}
	}
	for _, f := range out {
		claimName(f.Path, false)
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			claimName(d, true)
		}
	}

	if len(problems) == 0 {
		return out, nil
	}
	slices.Sort(problems)
	msg := "outdir: " + plural.Count(len(problems), "invalid generated file") + ":"
	for i, p := range problems {
		if i == maxProblems {
			msg += fmt.Sprintf("\n\t... and %d more", len(problems)-i)
			break
		}
		msg += "\n\t" + p
	}
	return nil, errors.New(msg)
}

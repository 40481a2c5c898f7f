package startest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Suffix ends the name of every test file.
const Suffix = "_test.star"

// PathError is a PATH argument that names no test: missing, or a file that
// is not a test file. It is the command line's mistake.
type PathError struct {
	Path string
	Msg  string
}

func (e *PathError) Error() string { return e.Path + ": " + e.Msg }

// Discover returns the test files named by paths (no paths: "."), sorted
// and without repeats. See the package doc for what is skipped.
func Discover(paths []string) ([]string, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if abs, err := filepath.Abs(p); err == nil && !seen[abs] {
			seen[abs] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		p = filepath.Clean(p)
		info, err := os.Stat(p)
		if err != nil {
			return nil, &PathError{p, "no such file or directory"}
		}
		if !info.IsDir() {
			if !strings.HasSuffix(p, Suffix) {
				return nil, &PathError{p, "not a test file (test files end in " + Suffix + ")"}
			}
			add(p)
			continue
		}
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if q != p && skipDir(d.Name()) {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), Suffix) && d.Type().IsRegular() {
				add(q)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// skipDir reports folders a walk does not enter: hidden ones (.git, the
// .fleet output), _-prefixed ones and testdata, as go test does.
func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata"
}

// RootOf returns the fleet root of a test file: the nearest folder at or
// above it holding a fleet.star, looking no higher than a folder holding
// .git; failing that, the test file's folder.
func RootOf(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(abs)
	for d := dir; ; {
		if isFile(filepath.Join(d, "fleet.star")) {
			return d, nil
		}
		if exists(filepath.Join(d, ".git")) {
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return dir, nil
}

func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// labelOf returns the root-relative label of file, or an error if file is
// outside root.
func labelOf(root, file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the fleet root %s", file, root)
	}
	return filepath.ToSlash(rel), nil
}

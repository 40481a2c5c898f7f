package deps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TreeHash is the sha256 of a folder's files, as fleet.lock records it, in
// lower-case hex. It depends on names, contents, the execute bit and
// symlink targets, not on times, owners or empty folders:
//
//	for every regular file and symlink under dir, sorted by its
//	slash-separated path relative to dir (byte order), one line
//
//	    <kind> <sha256 of content, hex> <path>\n
//
//	kind "f": a regular file; "x": a regular file with an execute bit;
//	"l": a symlink, whose content is its target as written (not followed)
//
//	TreeHash = hex(sha256(concatenation of the lines))
//
// A path holding a newline, and any other kind of file (device, socket,
// pipe), is an error.
func TreeHash(dir string) (string, error) {
	type entry struct{ path, line string }
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.ContainsAny(rel, "\n\r") {
			return fmt.Errorf("%s: a file name with a line break cannot be hashed", p)
		}
		var kind, sum string
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			kind, sum = "l", sha256Hex(strings.NewReader(target))
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			kind = "f"
			if info.Mode()&0o111 != 0 {
				kind = "x"
			}
			if sum, err = hashFile(p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: not a file, folder or symlink (%s)", p, t)
		}
		entries = append(entries, entry{rel, kind + " " + sum + " " + rel + "\n"})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	h := sha256.New()
	for _, e := range entries {
		io.WriteString(h, e.line)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sha256Hex(r io.Reader) string {
	h := sha256.New()
	io.Copy(h, r) // a strings.Reader does not fail
	return hex.EncodeToString(h.Sum(nil))
}

// Package fingerprint says when a machine's system need not be evaluated
// again: it hashes exactly what the machine's evaluation reads, and keeps
// a local cache from those hashes to the store paths built from them.
//
// # What is in a fingerprint
//
// A machine's fingerprint is the sha256 of, in this order:
//
//   - a version line (fleet-fingerprint v1) and the attribute built
//     (nixosConfigurations.<m> or darwinConfigurations.<m>, with the
//     machine's class);
//   - the path and the sha256 of the contents of every file of the
//     generated tree the machine reads (nixgen.Tree.Reads): flake.nix
//     (the channel and input URLs, the platform of each machine), the
//     overlay and the files it refers to, the machine's own file, the
//     feature and home modules it imports, transitively, the users' home
//     files, the hand-written files copied in that these refer to, the
//     secret files they name; every file of the tree when the machine's
//     files hold Nix code that may reach further (see nixgen.Tree);
//   - flake.lock as it is on disk when the fingerprint is taken (or a
//     line saying there is none): the exact revisions of the inputs;
//   - every file in the tree's folder that fleet did not write (a user's
//     own file there could be read by anything), except outdir's manifest
//     and temporary files.
//
// The evaluation is pure (flakes): no environment variable, no file
// outside the flake and its locked inputs, no current system reaches it,
// so these are all it reads. Not in it: the nix version and nix.conf,
// which do not change what a pure evaluation of the same files yields
// in practice; --rebuild is there for doubt.
//
// A fingerprint is taken on the files as written (after outdir.Write),
// and again, for the cache, after the build: nix writes flake.lock on the
// first build, and the path is recorded under the lock it built with.
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/outdir"
)

const version = "fleet-fingerprint v1\n"

// Set computes the fingerprints of a fleet's machines in a tree folder.
type Set struct {
	dir      string
	machines map[string]*model.Machine
	reads    map[string][]string
	sums     map[string][32]byte // generated file -> sha256 of its contents
	foreign  [][2]string         // path, hex sha256 of the folder's other files
}

// New prepares the fingerprints of the tree t written to folder dir. It
// reads the folder's files fleet did not write; flake.lock is read by Of.
func New(dir string, f *model.Fleet, t *nixgen.Tree) (*Set, error) {
	s := &Set{dir: dir, machines: map[string]*model.Machine{}, reads: t.Reads, sums: map[string][32]byte{}}
	for _, m := range f.Machines {
		s.machines[m.Name] = m
	}
	for _, x := range t.Files {
		s.sums[x.Path] = sha256.Sum256(x.Data)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		// outdir's manifest and the temporary files an interrupted
		// write left are fleet's bookkeeping, read by nothing.
		if _, ours := s.sums[rel]; ours || rel == outdir.ManifestName || rel == "flake.lock" ||
			strings.HasPrefix(d.Name(), ".fleet-tmp-") {
			return nil
		}
		data, err := os.ReadFile(p) // follows a link, as nix does when it copies the folder
		if err != nil {
			if d.Type()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				data = []byte("link " + target)
			} else {
				return err
			}
		}
		sum := sha256.Sum256(data)
		s.foreign = append(s.foreign, [2]string{rel, hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fingerprints of the Nix tree %s: %w", dir, err)
	}
	sort.Slice(s.foreign, func(i, j int) bool { return s.foreign[i][0] < s.foreign[j][0] })
	return s, nil
}

// Of is machine's fingerprint, with flake.lock as it is now.
func (s *Set) Of(machine string) (string, error) {
	m := s.machines[machine]
	if m == nil {
		return "", fmt.Errorf("fingerprint: no machine %s", machine)
	}
	h := sha256.New()
	attr := "nixosConfigurations."
	if m.Class == model.Darwin {
		attr = "darwinConfigurations."
	}
	fmt.Fprintf(h, "%sattr %s%s\nclass %s\n", version, attr, m.Name, m.Class)
	for _, p := range s.reads[machine] {
		sum, ok := s.sums[p]
		if !ok {
			return "", fmt.Errorf("fingerprint of %s: %s is not in the tree", machine, p)
		}
		fmt.Fprintf(h, "file %q %x\n", p, sum)
	}
	lock, err := os.ReadFile(filepath.Join(s.dir, "flake.lock"))
	switch {
	case err == nil:
		fmt.Fprintf(h, "lock %x\n", sha256.Sum256(lock))
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(h, "no lock\n")
	default:
		return "", fmt.Errorf("fingerprint of %s: %w", machine, err)
	}
	for _, x := range s.foreign {
		fmt.Fprintf(h, "other %q %s\n", x[0], x[1])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Short is the start of a fingerprint that people read.
func Short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

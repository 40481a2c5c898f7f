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
//
// # Deploy records
//
// Beside the build cache, fleet keeps per machine a record of the last
// system it deployed there from this computer, with the fingerprint and
// the files it covered (records.go). fleet plan compares a machine's
// fingerprint now, taken on the tree it would write (NewPlanned: nothing
// is written or built), with that record (Status): unchanged, deploy
// (naming what changed in the fleet's words, nixgen.Describe), or
// unknown without one. A record is a local note, not the truth: it does
// not see what others deployed or what changed on the machine.
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	return newSet(dir, f, t, nil)
}

// newSet is New leaving out the folder's files in skip (files fleet
// wrote earlier that the next write removes, see NewPlanned).
func newSet(dir string, f *model.Fleet, t *nixgen.Tree, skip []string) (*Set, error) {
	gone := map[string]bool{}
	for _, p := range skip {
		gone[p] = true
	}
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
		if _, ours := s.sums[rel]; ours || gone[rel] || rel == outdir.ManifestName || rel == "flake.lock" ||
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
	head, in, err := s.inputs(machine)
	if err != nil {
		return "", err
	}
	return hashOf(head, in), nil
}

// Input is one file a machine's fingerprint covers and the sha256 of its
// contents (hex): a file of the generated tree (KindTree), flake.lock
// (KindLock), or a file in the tree's folder fleet did not write
// (KindOther). A missing flake.lock is no Input.
type Input struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Sha256 string `json:"sha256"`
}

// The kinds of Input.
const (
	KindTree  = "tree"
	KindLock  = "lock"
	KindOther = "other"
)

// Inputs are the files machine's fingerprint covers, in the order they
// are hashed, with flake.lock as it is now: what a deploy record keeps
// so that a later plan can name what changed.
func (s *Set) Inputs(machine string) ([]Input, error) {
	_, in, err := s.inputs(machine)
	return in, err
}

// inputs is the fingerprint's first lines (the version, the attribute
// and class) and its files.
func (s *Set) inputs(machine string) (string, []Input, error) {
	m := s.machines[machine]
	if m == nil {
		return "", nil, fmt.Errorf("fingerprint: no machine %s", machine)
	}
	attr := "nixosConfigurations."
	if m.Class == model.Darwin {
		attr = "darwinConfigurations."
	}
	head := fmt.Sprintf("%sattr %s%s\nclass %s\n", version, attr, m.Name, m.Class)
	in := make([]Input, 0, len(s.reads[machine])+1+len(s.foreign))
	for _, p := range s.reads[machine] {
		sum, ok := s.sums[p]
		if !ok {
			return "", nil, fmt.Errorf("fingerprint of %s: %s is not in the tree", machine, p)
		}
		in = append(in, Input{Path: p, Kind: KindTree, Sha256: hex.EncodeToString(sum[:])})
	}
	lock, err := os.ReadFile(filepath.Join(s.dir, "flake.lock"))
	switch {
	case err == nil:
		sum := sha256.Sum256(lock)
		in = append(in, Input{Path: "flake.lock", Kind: KindLock, Sha256: hex.EncodeToString(sum[:])})
	case errors.Is(err, fs.ErrNotExist):
	default:
		return "", nil, fmt.Errorf("fingerprint of %s: %w", machine, err)
	}
	for _, x := range s.foreign {
		in = append(in, Input{Path: x[0], Kind: KindOther, Sha256: x[1]})
	}
	return head, in, nil
}

// hashOf is the fingerprint of a machine's first lines and inputs.
func hashOf(head string, in []Input) string {
	h := sha256.New()
	io.WriteString(h, head)
	lock := false
	for _, x := range in {
		switch x.Kind {
		case KindTree:
			fmt.Fprintf(h, "file %q %s\n", x.Path, x.Sha256)
		case KindLock:
			lock = true
			fmt.Fprintf(h, "lock %s\n", x.Sha256)
		case KindOther:
			if !lock {
				// The lock line (or its absence) comes between the
				// tree's files and the others.
				io.WriteString(h, "no lock\n")
				lock = true
			}
			fmt.Fprintf(h, "other %q %s\n", x.Path, x.Sha256)
		}
	}
	if !lock {
		io.WriteString(h, "no lock\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Short is the start of a fingerprint that people read.
func Short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

package outdir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// kind is what a path is on disk, as far as the plan cares.
type kind uint8

const (
	absent  kind = iota // nothing there, or a directory above it is missing
	regular             // a regular file
	dir                 // a directory
	other               // a symbolic link, device, socket, ...
	blocked             // a directory above it is not a directory
)

func kindOf(m fs.FileMode) kind {
	switch {
	case m.IsRegular():
		return regular
	case m.IsDir():
		return dir
	}
	return other
}

// disk looks paths up below root without following symbolic links, and
// caches what it learns about directories: 10,000 files share a few
// hundred directories.
type disk struct {
	root     string
	rootKind kind // dir or absent
	dirs     map[string]dirState
}

// dirState is what a directory path resolves to: dir if it and every
// directory above it exist, absent if one of them is missing, blocked (by
// the topmost one that is not a directory) otherwise.
type dirState struct {
	k       kind
	blocker string
}

func newDisk(root string) (*disk, error) {
	if root == "" {
		return nil, errors.New("outdir: no output folder given")
	}
	d := &disk{root: root, rootKind: dir, dirs: make(map[string]dirState)}
	// The root itself may be a symbolic link (a user's choice of --out);
	// below it, nothing is followed.
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.rootKind = absent
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("%s: output folder is not a directory", root)
	}
	return d, nil
}

func (d *disk) full(p string) string { return filepath.Join(d.root, filepath.FromSlash(p)) }

func (d *disk) lstat(p string) (fs.FileInfo, kind, error) {
	fi, err := os.Lstat(d.full(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, absent, nil
	}
	if err != nil {
		return nil, absent, err
	}
	return fi, kindOf(fi.Mode()), nil
}

func (d *disk) dir(p string) (dirState, error) {
	if p == "." {
		return dirState{k: d.rootKind}, nil
	}
	if st, ok := d.dirs[p]; ok {
		return st, nil
	}
	st, err := d.dir(path.Dir(p))
	if err != nil {
		return st, err
	}
	if st.k == dir {
		_, k, err := d.lstat(p)
		if err != nil {
			return st, err
		}
		switch k {
		case dir, absent:
			st = dirState{k: k}
		default:
			st = dirState{k: blocked, blocker: p}
		}
	}
	d.dirs[p] = st
	return st, nil
}

// at returns what p is. For blocked, blocker is the path in the way.
func (d *disk) at(p string) (fi fs.FileInfo, k kind, blocker string, err error) {
	st, err := d.dir(path.Dir(p))
	if err != nil || st.k != dir {
		return nil, st.k, st.blocker, err
	}
	fi, k, err = d.lstat(p)
	return fi, k, "", err
}

// plan is what Write would do to bring the folder in line with the wanted
// files, worked out from the manifest and the disk without changing
// anything. Check reports it; Write carries it out.
type plan struct {
	raw    []byte // the manifest on disk, nil if there is none
	intent []byte // the intent record to write before files, if any are written
	final  []byte // the manifest once the run is complete

	missing   []string // wanted, nothing there
	changed   []string // wanted, in the manifest, content or executable bit differs
	unchanged []string // wanted and already right
	write     []File   // missing and changed, in path order

	remove     []string          // no longer wanted, content as fleet wrote it
	removeHash map[string]string // the hash of each file in remove
	kept       []string          // no longer wanted, edited since fleet wrote it
	gone       []string          // in the manifest, no longer wanted, nothing left to remove

	// clearFiles (a subset of remove) and clearDirs (deepest first) are in
	// the way of wanted files and must go before they are written.
	clearFiles []string
	clearDirs  []string

	foreign []string          // paths fleet did not write, in the way of wanted files
	why     map[string]string // a note on some foreign paths, for ForeignError
}

// scan works out the plan for writing files, valid and sorted, to root.
func scan(root string, files []File) (*plan, error) {
	old, raw, err := readManifest(root)
	if err != nil {
		return nil, err
	}
	d, err := newDisk(root)
	if err != nil {
		return nil, err
	}
	p := &plan{raw: raw, removeHash: make(map[string]string), why: make(map[string]string)}

	wanted := make(map[string]bool, len(files))
	for _, f := range files {
		wanted[f.Path] = true
	}
	// current and pending make the intent record: the hash of every file
	// whose content on disk fleet wrote, and of every file about to be
	// written.
	current := make(map[string]string)
	pending := make(map[string]string)

	// Files no longer produced first: whether one can be removed decides
	// whether it may stand in the way of a wanted file.
	for _, name := range old.paths() {
		if wanted[name] {
			continue
		}
		_, k, _, err := d.at(name)
		if err != nil {
			return nil, err
		}
		if k != regular {
			// Removed or replaced by the user (or by an interrupted
			// run): there is nothing of fleet's left to remove.
			p.gone = append(p.gone, name)
			continue
		}
		data, err := os.ReadFile(d.full(name))
		if err != nil {
			return nil, err
		}
		if h := hash(data); old.wrote(name, h) {
			p.remove = append(p.remove, name)
			p.removeHash[name] = h
			current[name] = h
		} else {
			p.kept = append(p.kept, name)
		}
	}

	final := make(map[string]string, len(files))
	inTheWay := make(map[string]bool)
	foreign := func(name, why string) {
		if !inTheWay[name] {
			inTheWay[name] = true
			p.foreign = append(p.foreign, name)
			if why != "" {
				p.why[name] = why
			}
		}
	}
	// Looking at the wanted files is most of the work of a run that
	// changes nothing. Their directories are looked up first, in order,
	// through the cache; the files themselves are then looked up, read,
	// compared and hashed in parallel.
	type look struct {
		fi       fs.FileInfo
		k        kind
		blocker  string
		hash     string // of the wanted content
		same     bool   // content and executable bit on disk are as wanted
		diskHash string // of the content on disk, if it differs
	}
	looks := make([]look, len(files))
	for i, f := range files {
		st, err := d.dir(path.Dir(f.Path))
		if err != nil {
			return nil, err
		}
		looks[i].k, looks[i].blocker = st.k, st.blocker
	}
	err = parallel(len(files), func(i int) (err error) {
		f, l := files[i], &looks[i]
		l.hash = hash(f.Data)
		if l.k != dir {
			// Its directory is missing or blocked, and so is it.
			return nil
		}
		if l.fi, l.k, err = d.lstat(f.Path); err != nil {
			return err
		}
		if l.k != regular || !old.owns(f.Path) {
			return nil
		}
		data, err := os.ReadFile(d.full(f.Path))
		if err != nil {
			return err
		}
		l.same = bytes.Equal(data, f.Data) && l.fi.Mode()&0o100 == f.Mode&0o100
		if !l.same {
			l.diskHash = hash(data)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	for i, f := range files {
		l := looks[i]
		final[f.Path] = l.hash
		switch l.k {
		case absent:
			p.missing = append(p.missing, f.Path)
		case blocked:
			if _, ok := p.removeHash[l.blocker]; ok {
				if !inTheWay[l.blocker] {
					inTheWay[l.blocker] = true
					p.clearFiles = append(p.clearFiles, l.blocker)
				}
				p.missing = append(p.missing, f.Path)
				break
			}
			why := fmt.Sprintf("in the way of %s", f.Path)
			if slices.Contains(p.kept, l.blocker) {
				why = fmt.Sprintf("generated by fleet earlier but edited since; in the way of %s", f.Path)
			}
			foreign(l.blocker, why)
			continue
		case dir:
			inFiles, inDirs, ok, err := onlyRemovable(d, f.Path, p.removeHash)
			if err != nil {
				return nil, err
			}
			if !ok {
				foreign(f.Path, "a directory holding files fleet did not write, where fleet wants a file")
				continue
			}
			p.clearFiles = append(p.clearFiles, inFiles...)
			p.clearDirs = append(p.clearDirs, inDirs...)
			p.missing = append(p.missing, f.Path)
		case other:
			foreign(f.Path, "not a regular file")
			continue
		case regular:
			if !old.owns(f.Path) {
				foreign(f.Path, "")
				continue
			}
			if l.same {
				p.unchanged = append(p.unchanged, f.Path)
				current[f.Path] = l.hash
				continue
			}
			if old.wrote(f.Path, l.diskHash) {
				current[f.Path] = l.diskHash
			}
			p.changed = append(p.changed, f.Path)
		}
		p.write = append(p.write, f)
		pending[f.Path] = l.hash
	}

	p.final = manifest{files: final}.encode()
	if len(p.write) > 0 {
		p.intent = manifest{files: current, pending: pending}.encode()
	}
	slices.Sort(p.foreign)
	slices.Sort(p.clearFiles)
	// Deepest first, so that each directory is empty when its turn comes.
	slices.SortFunc(p.clearDirs, func(a, b string) int {
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return p, nil
}

// onlyRemovable reports whether directory top holds nothing but
// directories and files fleet may remove, and returns them.
func onlyRemovable(d *disk, top string, removable map[string]string) (files, dirs []string, ok bool, err error) {
	ok = true
	err = filepath.WalkDir(d.full(top), func(full string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(d.root, full)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case e.IsDir():
			dirs = append(dirs, rel)
		case e.Type().IsRegular() && removable[rel] != "":
			files = append(files, rel)
		default:
			ok = false
			return filepath.SkipAll
		}
		return nil
	})
	return files, dirs, ok, err
}

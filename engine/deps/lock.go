package deps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// lockVersion is the format of fleet.lock this package writes and reads.
const lockVersion = 1

// RootRequester is how requested_by names the fleet's own fleet.deps.
const RootRequester = "fleet.deps"

// Lock is the content of fleet.lock.
type Lock struct {
	Version int      `json:"version"`
	Deps    []Locked `json:"deps"`
}

// Locked is one pinned dependency.
type Locked struct {
	Name        string   `json:"name"`
	Git         string   `json:"git"`
	Ref         string   `json:"ref"`
	Commit      string   `json:"commit"`
	SHA256      string   `json:"sha256"`
	RequestedBy []string `json:"requested_by"`
}

// Find returns the entry of name, or nil.
func (l *Lock) Find(name string) *Locked {
	if l == nil {
		return nil
	}
	for i := range l.Deps {
		if l.Deps[i].Name == name {
			return &l.Deps[i]
		}
	}
	return nil
}

// Names returns the locked names, sorted.
func (l *Lock) Names() []string {
	var out []string
	if l != nil {
		for _, d := range l.Deps {
			out = append(out, d.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Marshal returns the file's bytes: deterministic, entries sorted by name,
// requesters sorted, indented, with a final newline.
func (l *Lock) Marshal() []byte {
	c := Lock{Version: lockVersion, Deps: slices.Clone(l.Deps)}
	if c.Deps == nil {
		c.Deps = []Locked{}
	}
	sort.Slice(c.Deps, func(i, j int) bool { return c.Deps[i].Name < c.Deps[j].Name })
	for i := range c.Deps {
		r := slices.Clone(c.Deps[i].RequestedBy)
		sort.Strings(r)
		c.Deps[i].RequestedBy = slices.Compact(r)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err) // strings and ints only
	}
	return append(b, '\n')
}

// ReadLock reads a fleet.lock. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s: not a valid lock file (%v): restore it from version control, or delete it and run fleet deps lock", path, err)
	}
	if l.Version != lockVersion {
		return nil, fmt.Errorf("%s: lock format version %d, this fleet reads version %d: run fleet deps lock (or use the fleet that wrote it)", path, l.Version, lockVersion)
	}
	seen := map[string]bool{}
	for _, d := range l.Deps {
		switch {
		case !nameRE.MatchString(d.Name):
			return nil, fmt.Errorf("%s: invalid dependency name %q: run fleet deps lock", path, d.Name)
		case seen[d.Name]:
			return nil, fmt.Errorf("%s: dependency %s is locked twice: run fleet deps lock", path, d.Name)
		case !isCommit(d.Commit):
			return nil, fmt.Errorf("%s: dependency %s: commit %q is not a full commit hash: run fleet deps lock", path, d.Name, d.Commit)
		case !hashRE.MatchString(d.SHA256):
			return nil, fmt.Errorf("%s: dependency %s: sha256 %q is not 64 hex digits: run fleet deps lock", path, d.Name, d.SHA256)
		}
		seen[d.Name] = true
	}
	return &l, nil
}

// WriteLock writes l to path atomically: a temporary file in the same
// folder, synced, renamed over path. Nothing is written when the file
// already has these bytes.
func WriteLock(path string, l *Lock) (changed bool, err error) {
	b := l.Marshal()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	return true, writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

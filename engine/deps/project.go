package deps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// Project is one fleet's fleet.deps and fleet.lock.
type Project struct {
	// Dir is the folder holding fleet.deps and fleet.lock (the fleet
	// file's folder).
	Dir string
	// Label is how messages name fleet.deps (default "fleet.deps"; the
	// CLI passes its path relative to the fleet root).
	Label string
	// Cache holds fetched trees.
	Cache *Cache
}

// HasDeps reports whether dir holds a fleet.deps.
func HasDeps(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, DepsFile))
	return err == nil
}

// DepsPath and LockPath are the files of the project.
func (p *Project) DepsPath() string { return filepath.Join(p.Dir, DepsFile) }
func (p *Project) LockPath() string { return filepath.Join(p.Dir, LockFile) }

func (p *Project) label() string {
	if p.Label != "" {
		return p.Label
	}
	return DepsFile
}

func (p *Project) lockLabel() string {
	return strings.TrimSuffix(p.label(), DepsFile) + LockFile
}

// readDeps reads the fleet's own fleet.deps, which must exist.
func (p *Project) readDeps() ([]Dep, error) {
	ds, ok, err := ReadFile(p.DepsPath(), p.label())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: no such file: declare dependencies there, one dep(\"name\", git = \"URL\", ref = \"TAG\") per line", p.label())
	}
	return ds, nil
}

// readOldLock reads fleet.lock if there is one.
func (p *Project) readOldLock() (*Lock, error) {
	l, err := ReadLock(p.LockPath())
	if isNotExist(err) {
		return nil, nil
	}
	return l, err
}

// Change is what locking did to one dependency.
type Change struct {
	Name   string
	Ref    string
	Old    string // commit before; "" when added
	New    string // commit now; "" when removed
	Locked *Locked
}

// Lock makes fleet.lock match fleet.deps: new and changed dependencies are
// resolved and fetched, and every pin whose git and ref are unchanged is
// kept. It returns the lock written and one Change per dependency.
func (p *Project) Lock(ctx context.Context) (*Lock, []Change, error) {
	return p.relock(ctx, func(string) bool { return false })
}

// Update is Lock that also re-resolves the refs of names (every
// dependency when names is empty), moving them to what their refs name now.
func (p *Project) Update(ctx context.Context, names ...string) (*Lock, []Change, error) {
	if len(names) == 0 {
		return p.relock(ctx, func(string) bool { return true })
	}
	old, err := p.readOldLock()
	if err != nil {
		return nil, nil, err
	}
	root, err := p.readDeps()
	if err != nil {
		return nil, nil, err
	}
	known := map[string]bool{}
	for _, n := range old.Names() {
		known[n] = true
	}
	for _, d := range root {
		known[d.Name] = true
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimPrefix(n, "@")
		if !known[n] {
			have := make([]string, 0, len(known))
			for k := range known {
				have = append(have, k)
			}
			sort.Strings(have)
			return nil, nil, fmt.Errorf("no dependency %q in %s or %s (there are: %s)", n, p.label(), p.lockLabel(), orNone(strings.Join(have, ", ")))
		}
		want[n] = true
	}
	return p.relock(ctx, func(n string) bool { return want[n] })
}

func (p *Project) relock(ctx context.Context, refresh func(string) bool) (*Lock, []Change, error) {
	old, err := p.readOldLock()
	if err != nil {
		return nil, nil, err
	}
	l, err := p.resolve(ctx, old, refresh)
	if err != nil {
		return nil, nil, err
	}
	if _, err := WriteLock(p.LockPath(), l); err != nil {
		return nil, nil, err
	}
	return l, changes(old, l), nil
}

// request is one dep(...) and who made it.
type request struct {
	dep Dep
	by  string // RootRequester or "@name"
}

// resolve computes the lock of the whole dependency tree, breadth first
// from the fleet's own fleet.deps. Pins of old are reused for names not
// refreshed whose git and ref did not change.
func (p *Project) resolve(ctx context.Context, old *Lock, refresh func(string) bool) (*Lock, error) {
	root, err := p.readDeps()
	if err != nil {
		return nil, err
	}
	if p.Cache == nil {
		return nil, fmt.Errorf("deps: no cache")
	}
	var queue []request
	for _, d := range root {
		queue = append(queue, request{d, RootRequester})
	}
	type pick struct {
		locked *Locked
		first  request
	}
	chosen := map[string]*pick{}
	var order []string
	asked := map[[2]string]string{} // git, ref -> commit, within this run

	commitOf := func(r request) (string, error) {
		key := [2]string{r.dep.Git, r.dep.Ref}
		if c, ok := asked[key]; ok {
			return c, nil
		}
		var commit string
		if e := old.Find(r.dep.Name); e != nil && e.Git == r.dep.Git && e.Ref == r.dep.Ref && !refresh(r.dep.Name) {
			commit = e.Commit // pinned: no need to ask
		} else {
			c, err := lsRemote(ctx, r.dep.Git, r.dep.Ref)
			if err != nil {
				return "", &model.Error{Pos: r.dep.Pos, Msg: fmt.Sprintf("dependency %s: %v", r.dep.Name, err)}
			}
			commit = c
		}
		asked[key] = commit
		return commit, nil
	}

	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := queue[0]
		queue = queue[1:]
		name := r.dep.Name
		if c, ok := chosen[name]; ok {
			commit := c.locked.Commit
			if r.dep.Git == c.locked.Git && r.dep.Ref != c.first.dep.Ref {
				if commit, err = commitOf(r); err != nil {
					return nil, err
				}
			}
			if r.dep.Git != c.locked.Git || commit != c.locked.Commit {
				return nil, conflict(name, c.first, c.locked.Commit, r, commit)
			}
			c.locked.RequestedBy = append(c.locked.RequestedBy, r.by)
			continue
		}
		commit, err := commitOf(r)
		if err != nil {
			return nil, err
		}
		hash, err := p.pin(ctx, old, name, r.dep.Git, commit)
		if err != nil {
			return nil, &model.Error{Pos: r.dep.Pos, Msg: fmt.Sprintf("dependency %s: %v", name, err)}
		}
		chosen[name] = &pick{
			locked: &Locked{Name: name, Git: r.dep.Git, Ref: r.dep.Ref, Commit: commit, SHA256: hash, RequestedBy: []string{r.by}},
			first:  r,
		}
		order = append(order, name)
		sub, _, err := ReadFile(filepath.Join(p.Cache.Dir(r.dep.Git, commit), DepsFile), "@"+name+"//"+DepsFile)
		if err != nil {
			return nil, err
		}
		for _, d := range sub {
			queue = append(queue, request{d, "@" + name})
		}
	}
	l := &Lock{Version: lockVersion}
	for _, n := range order {
		l.Deps = append(l.Deps, *chosen[n].locked)
	}
	return sortedLock(l), nil // as Marshal writes it
}

// pin makes sure commit of url is in the cache and returns the hash of its
// files. A commit already in the old lock is checked against the hash
// recorded there; a new one is fetched afresh (a cache entry that exists
// must agree with the fresh files), so a damaged entry cannot reach a lock.
func (p *Project) pin(ctx context.Context, old *Lock, name, url, commit string) (string, error) {
	if e := old.Find(name); e != nil && e.Git == url && e.Commit == commit {
		dir, fetched, err := p.Cache.Ensure(ctx, url, commit)
		if err != nil {
			return "", err
		}
		if err := checkHash(dir, commit, e.SHA256, fetched); err != nil {
			return "", err
		}
		return e.SHA256, nil
	}
	return p.Cache.fetchFresh(ctx, url, commit)
}

// checkHash compares the files of a cache entry with the lock's hash.
func checkHash(dir, commit, want string, fetched bool) error {
	got, err := TreeHash(dir)
	if err != nil {
		return err
	}
	if got == want {
		return nil
	}
	if fetched {
		return fmt.Errorf("the files of commit %s, just fetched, hash to %s, but fleet.lock says %s: fleet.lock was edited by hand, or the files differ on this machine (git filters, such as LFS or line-ending settings); run fleet deps verify",
			commit, got, want)
	}
	return &cacheDamaged{dir: dir, commit: commit, got: got, want: want, wantFrom: "fleet.lock says they should"}
}

// conflict is the error for one name wanted at two versions.
func conflict(name string, first request, firstCommit string, second request, secondCommit string) error {
	describe := func(r request, commit string) string {
		s := fmt.Sprintf("%s wants %s at %q", r.by, r.dep.Git, r.dep.Ref)
		if commit != "" && !isCommit(r.dep.Ref) {
			s += fmt.Sprintf(" (commit %s)", short(commit))
		}
		return s
	}
	if second.dep.Git != first.dep.Git {
		secondCommit = ""
	}
	return &model.Error{
		Pos: second.dep.Pos,
		Msg: fmt.Sprintf("dependency %s is wanted at two versions: %s, but %s; make them agree: change %s or %s so both ask for the same repository and commit of %s",
			name, describe(first, firstCommit), describe(second, secondCommit), first.by, second.by, name),
		Notes: []model.Note{{Pos: first.dep.Pos, Msg: first.by + " declares " + name + " here"}},
	}
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// sortedLock sorts entries by name and requesters, as Marshal does.
func sortedLock(l *Lock) *Lock {
	sort.Slice(l.Deps, func(i, j int) bool { return l.Deps[i].Name < l.Deps[j].Name })
	for i := range l.Deps {
		r := slices.Clone(l.Deps[i].RequestedBy)
		sort.Strings(r)
		l.Deps[i].RequestedBy = slices.Compact(r)
	}
	return l
}

// changes lists what happened to every dependency between old and now.
func changes(old, now *Lock) []Change {
	var out []Change
	for i := range now.Deps {
		d := &now.Deps[i]
		c := Change{Name: d.Name, Ref: d.Ref, New: d.Commit, Locked: d}
		if e := old.Find(d.Name); e != nil {
			c.Old = e.Commit
		}
		out = append(out, c)
	}
	if old != nil {
		for _, e := range old.Deps {
			if now.Find(e.Name) == nil {
				out = append(out, Change{Name: e.Name, Ref: e.Ref, Old: e.Commit})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// mismatch lists how fleet.lock disagrees with the fleet's fleet.deps:
// dependencies added, removed or changed since the lock was written, and
// entries whose requesters are gone.
func mismatch(root []Dep, l *Lock) []string {
	var out []string
	declared := map[string]bool{}
	for _, d := range root {
		declared[d.Name] = true
		e := l.Find(d.Name)
		switch {
		case e == nil:
			out = append(out, fmt.Sprintf("%s: %s is not in the lock", d.Pos, d.Name))
		case !slices.Contains(e.RequestedBy, RootRequester):
			out = append(out, fmt.Sprintf("%s: %s is locked only for %s", d.Pos, d.Name, strings.Join(e.RequestedBy, ", ")))
		case e.Git != d.Git:
			out = append(out, fmt.Sprintf("%s: %s: git is %s here, %s in the lock", d.Pos, d.Name, d.Git, e.Git))
		case e.Ref != d.Ref:
			out = append(out, fmt.Sprintf("%s: %s: ref is %q here, %q in the lock", d.Pos, d.Name, d.Ref, e.Ref))
		}
	}
	if l != nil {
		for _, e := range l.Deps {
			for _, by := range e.RequestedBy {
				switch {
				case by == RootRequester && !declared[e.Name]:
					out = append(out, fmt.Sprintf("%s is locked but no longer declared", e.Name))
				case by != RootRequester && l.Find(strings.TrimPrefix(by, "@")) == nil:
					out = append(out, fmt.Sprintf("%s is locked for %s, which is not locked", e.Name, by))
				}
			}
		}
	}
	return out
}

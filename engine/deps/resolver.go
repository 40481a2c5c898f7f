package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ResolverOptions configure the resolution of @name loads at evaluation.
type ResolverOptions struct {
	// Context bounds fetches (default context.Background()).
	Context context.Context
	// Offline forbids fetching: only cached trees are used.
	Offline bool
	// Overrides maps dependency names to local folders used instead of
	// the lock and the cache (relative to the current directory).
	Overrides map[string]string
	// Log receives a note the first time an override is used (nil: none).
	Log io.Writer
}

// Resolver answers engine.Options.Deps: the folder of a dependency's files.
type Resolver struct {
	p         *Project
	opts      ResolverOptions
	overrides map[string]string // name -> absolute folder
	lock      *Lock
	lockErr   error // why the lock cannot be used; reported on first use
	mu        sync.Mutex
	done      map[string]resolved
}

type resolved struct {
	dir string
	err error
}

// Resolver prepares the resolution of @name loads. fleet.deps must exist
// and parse, and every override must name a declared or locked dependency
// and an existing folder; a missing or outdated fleet.lock is reported
// when a non-overridden dependency is first loaded (so a fleet overriding
// all its dependencies evaluates before it is locked).
func (p *Project) Resolver(opts ResolverOptions) (*Resolver, error) {
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	root, err := p.readDeps()
	if err != nil {
		return nil, err
	}
	r := &Resolver{p: p, opts: opts, overrides: map[string]string{}, done: map[string]resolved{}}
	l, err := ReadLock(p.LockPath())
	switch {
	case isNotExist(err) && len(root) == 0:
		r.lock = &Lock{Version: lockVersion}
	case isNotExist(err):
		r.lockErr = fmt.Errorf("%s declares dependencies but there is no %s: run fleet deps lock", p.label(), p.lockLabel())
	case err != nil:
		r.lockErr = err
	default:
		r.lock = l
		if m := mismatch(root, l); len(m) > 0 {
			r.lockErr = fmt.Errorf("%s has changed since %s was written (%s): run fleet deps lock", p.label(), p.lockLabel(), strings.Join(m, "; "))
		}
	}
	known := map[string]bool{}
	for _, d := range root {
		known[d.Name] = true
	}
	for _, n := range l.Names() {
		known[n] = true
	}
	names := make([]string, 0, len(opts.Overrides))
	for n := range opts.Overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		dir := opts.Overrides[name]
		if !known[name] {
			have := make([]string, 0, len(known))
			for k := range known {
				have = append(have, k)
			}
			sort.Strings(have)
			return nil, fmt.Errorf("--override %s=%s: %s declares no dependency %s (it declares: %s)", name, dir, p.label(), name, orNone(strings.Join(have, ", ")))
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--override %s=%s: no such folder (relative paths start at the current directory)", name, dir)
		}
		r.overrides[name] = abs
	}
	return r, nil
}

// Dir returns the folder holding the files of dependency name: its
// override, or its cache entry after checking the entry's hash against the
// lock (fetching it first unless offline). Each name is resolved once.
func (r *Resolver) Dir(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x, ok := r.done[name]; ok {
		return x.dir, x.err
	}
	dir, err := r.dir(name)
	r.done[name] = resolved{dir, err}
	return dir, err
}

func (r *Resolver) dir(name string) (string, error) {
	if dir, ok := r.overrides[name]; ok {
		if r.opts.Log != nil {
			fmt.Fprintf(r.opts.Log, "fleet: @%s comes from --override %s (not the commit in %s)\n", name, dir, r.p.lockLabel())
		}
		return dir, nil
	}
	if r.lockErr != nil {
		return "", r.lockErr
	}
	e := r.lock.Find(name)
	if e == nil {
		return "", fmt.Errorf("unknown dependency %q: %s does not declare it (locked: %s); add dep(%q, git = \"...\", ref = \"...\") to it and run fleet deps lock",
			"@"+name, r.p.label(), orNone(strings.Join(r.lock.Names(), ", ")), name)
	}
	c := r.p.Cache
	fetched := false
	dir := c.Dir(e.Git, e.Commit)
	if !c.Has(e.Git, e.Commit) {
		if r.opts.Offline {
			return "", fmt.Errorf("dependency %s: commit %s of %s is not in the cache (%s) and --offline forbids fetching: run once without --offline (or fleet deps lock) while online",
				name, e.Commit, e.Git, c.Root)
		}
		var err error
		if dir, fetched, err = c.Ensure(r.opts.Context, e.Git, e.Commit); err != nil {
			return "", fmt.Errorf("dependency %s: %w", name, err)
		}
	}
	if err := checkHash(dir, e.Commit, e.SHA256, fetched); err != nil {
		var d *cacheDamaged
		if errors.As(err, &d) {
			return "", fmt.Errorf("dependency %s: %w", name, err)
		}
		return "", fmt.Errorf("dependency %s: %s", name, strings.ReplaceAll(err.Error(), "fleet.lock", r.p.lockLabel()))
	}
	return dir, nil
}

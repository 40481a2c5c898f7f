package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/fingerprint"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/urfave/cli/v2"
)

// rebuildFlag bypasses the build cache.
func rebuildFlag() cli.Flag {
	return &cli.BoolFlag{Name: "rebuild", Usage: "evaluate and build every machine, even those whose fingerprint has a cached system"}
}

// buildCache is the run's use of the local build cache
// (engine/fingerprint): which machines' systems are cached, and the
// recording of the systems built.
type buildCache struct {
	set     *fingerprint.Set
	cache   *fingerprint.Cache
	records *fingerprint.Records
	warn    io.Writer
	mu      sync.Mutex
}

// newBuildCache takes the fingerprints of l's machines in the tree folder
// as fleet writes it (fingerprint.NewPlanned: the same before the write,
// for a dry run or a graph made before it, as after): flake.lock and the
// user's files are read from the folder.
func newBuildCache(l *loaded, tree string, warn io.Writer) (*buildCache, error) {
	cache, err := fingerprint.DefaultCache()
	if err != nil {
		return nil, err
	}
	records, err := fingerprint.DefaultRecords(l.fleet.Root)
	if err != nil {
		return nil, err
	}
	set, err := fingerprint.NewPlanned(tree, l.fleet, l.tree)
	if err != nil {
		return nil, err
	}
	return &buildCache{set: set, cache: cache, records: records, warn: warn}, nil
}

// cached are the machines with a cached system (none with --rebuild).
func (b *buildCache) cached(c *cli.Context, machines []*model.Machine) map[string]deploy.CachedBuild {
	out := map[string]deploy.CachedBuild{}
	if c.Bool("rebuild") {
		return out
	}
	for _, m := range machines {
		fp, err := b.set.Of(m.Name)
		if err != nil {
			continue
		}
		if p, ok := b.cache.Get(fp); ok {
			out[m.Name] = deploy.CachedBuild{Path: p, Fingerprint: fp}
		}
	}
	return out
}

// built records machine's system under its fingerprint as it is now
// (with the flake.lock nix wrote if it had none). A cache that cannot be
// written costs the next run an evaluation, nothing more: a warning.
func (b *buildCache) built(machine, path string) {
	fp, err := b.fingerprints().Of(machine)
	if err == nil {
		err = b.cache.Put(fp, path)
	}
	if err != nil {
		b.mu.Lock()
		fmt.Fprintf(b.warn, "warning: %s: not recorded in the build cache: %v\n", machine, err)
		b.mu.Unlock()
	}
}

// deployed records that machine runs system, deployed from the tree as
// it is now (deploy.Options.Deployed, switch goal): fleet plan then says
// unchanged or deploy for it. A record that cannot be written leaves the
// plan saying unknown: a warning.
func (b *buildCache) deployed(machine, system string) {
	rec, err := b.fingerprints().Record(machine, system, string(deploy.Switch), time.Now())
	if err == nil {
		err = b.records.Put(rec)
	}
	if err != nil {
		b.mu.Lock()
		fmt.Fprintf(b.warn, "warning: %s: its deploy is not recorded: %v\n", machine, err)
		b.mu.Unlock()
	}
}

// fingerprints is the set the records and the cache are written under.
func (b *buildCache) fingerprints() *fingerprint.Set {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.set
}

// hostChanged forgets machine's deploy record: its host was created,
// replaced or deleted (apply.Options.HostChanged), so the plan must not
// say it runs what was deployed to the old one.
func (b *buildCache) hostChanged(machine string) {
	if err := b.records.Remove(machine); err != nil {
		b.mu.Lock()
		fmt.Fprintf(b.warn, "warning: %s: %v: remove it, or fleet plan may say it is unchanged\n", machine, err)
		b.mu.Unlock()
	}
}

// retake takes the fingerprints again on tree, written to the tree
// folder since (after a secrets generation): what is built and deployed
// from now on is recorded under them.
func (b *buildCache) retake(l *loaded, dir string, tree *nixgen.Tree) error {
	set, err := fingerprint.NewPlanned(dir, l.fleet, tree)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.set = set
	b.mu.Unlock()
	return nil
}

// dryRunCached is what a dry run shows as cached, from the tree as it is
// on disk (a dry run writes nothing); none when the cache cannot be read.
func dryRunCached(c *cli.Context, l *loaded, tree string, machines []*model.Machine) map[string]deploy.CachedBuild {
	bc, err := newBuildCache(l, tree, c.App.ErrWriter)
	if err != nil {
		return nil
	}
	return bc.cached(c, machines)
}

package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	pins "github.com/fleet-nix/fleet/engine/deps"
	"github.com/fleet-nix/fleet/engine/plural"
	"github.com/urfave/cli/v2"
)

func depsCommand() *cli.Command {
	fileFlag := &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Value: "fleet.star", Usage: "the fleet file (fleet.deps and fleet.lock are next to it)"}
	return &cli.Command{
		Name:  "deps",
		Usage: "pin the .star libraries the fleet loads from other repositories (fleet.deps, fleet.lock)",
		Description: `fleet.deps, next to the fleet file, declares libraries in other git repositories:

  dep("team", git = "https://git.example.org/org/fleet-lib.git", ref = "v1.2.0")

and the fleet loads their files with load("@team//features/ssh.star", "ssh").
fleet deps lock resolves every ref to a commit and writes fleet.lock (commit and
sha256 of the files of every dependency, including the dependencies' own
fleet.deps); evaluation uses only what fleet.lock names, from a cache under the
user's cache folder ($FLEET_CACHE_DIR/deps if set), checking each tree's hash first.
Fetching runs git, so your credentials and git config apply.

Evaluating commands take --offline (use only the cache) and --override NAME=DIR (use
a local folder instead of the pinned commit, to develop a library).`,
		Subcommands: []*cli.Command{
			{
				Name: "lock", Usage: "resolve fleet.deps into fleet.lock, keeping existing pins", ArgsUsage: "[FILE]",
				Description: `Resolves the ref of every dependency that is new or changed in fleet.deps (and of their
own dependencies) to a commit, fetches it and writes fleet.lock. Dependencies whose git
and ref did not change keep their locked commit: use fleet deps update to move them.`,
				Action: func(c *cli.Context) error {
					p, err := fileProject(c)
					if err != nil {
						return err
					}
					_, changes, err := p.Lock(c.Context)
					if err != nil {
						return err
					}
					writeChanges(c.App.Writer, p, changes)
					return nil
				},
			},
			{
				Name: "update", Usage: "move dependencies to what their refs name now", ArgsUsage: "[NAME...]",
				Description: `Looks up the refs of the named dependencies again (every dependency without names),
fetches the commits they name now and rewrites fleet.lock. Others keep their pins.

  fleet deps update team --file fleet.star`,
				Flags: []cli.Flag{fileFlag},
				Action: func(c *cli.Context) error {
					p, err := depsProject(fleetPath(c, c.String("file")))
					if err != nil {
						return err
					}
					_, changes, err := p.Update(c.Context, c.Args().Slice()...)
					if err != nil {
						return err
					}
					writeChanges(c.App.Writer, p, changes)
					return nil
				},
			},
			{
				Name: "verify", Usage: "check that refs have not moved and cached files match fleet.lock", ArgsUsage: "[FILE]",
				Description: `Checks that fleet.lock matches fleet.deps, asks every repository what each locked ref
names now (a tag moved to another commit is reported), and checks the hash of every
dependency's files (fetching those not cached). Exits 1 listing every problem.`,
				Action: func(c *cli.Context) error {
					p, err := fileProject(c)
					if err != nil {
						return err
					}
					problems, err := p.Verify(c.Context)
					if err != nil {
						return err
					}
					for _, pr := range problems {
						fmt.Fprintln(c.App.Writer, pr)
					}
					if len(problems) > 0 {
						return fmt.Errorf("fleet deps verify: %s", count(len(problems), "problem"))
					}
					l, err := pins.ReadLock(p.LockPath())
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: %s verified\n", lockName(p), dependencies(len(l.Deps)))
					return nil
				},
			},
		},
	}
}

// fileProject is the project of the [FILE] argument (fleet.star by default).
func fileProject(c *cli.Context) (*pins.Project, error) {
	switch c.NArg() {
	case 0:
		return depsProject(fleetPath(c, ""))
	case 1:
		return depsProject(fleetPath(c, c.Args().First()))
	}
	return nil, usagef("deps %s: takes at most one FILE, got %s", c.Command.Name, strings.Join(c.Args().Slice(), " "))
}

// depsProject is the fleet.deps and fleet.lock next to file.
func depsProject(file string) (*pins.Project, error) {
	dir := filepath.Dir(file)
	if !pins.HasDeps(dir) {
		return nil, fmt.Errorf("%s: no such file: declare the fleet's dependencies there, one dep(\"name\", git = \"URL\", ref = \"TAG\") per line", filepath.Join(dir, pins.DepsFile))
	}
	return newProject(dir, dir)
}

func newProject(dir, root string) (*pins.Project, error) {
	cache, err := pins.DefaultCache()
	if err != nil {
		return nil, err
	}
	label := pins.DepsFile
	absDir, err1 := filepath.Abs(dir)
	absRoot, err2 := filepath.Abs(root)
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(absRoot, filepath.Join(absDir, pins.DepsFile)); err == nil && !strings.HasPrefix(rel, "..") {
			label = filepath.ToSlash(rel)
		}
	}
	return &pins.Project{Dir: dir, Label: label, Cache: cache}, nil
}

func lockName(p *pins.Project) string {
	return strings.TrimSuffix(p.Label, pins.DepsFile) + pins.LockFile
}

// writeChanges prints the lock after lock or update, one dependency a line.
func writeChanges(w io.Writer, p *pins.Project, changes []pins.Change) {
	n := 0
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, ch := range changes {
		var what string
		switch {
		case ch.New == "":
			fmt.Fprintf(tw, "%s\t%s\t%s\tremoved\n", ch.Name, ch.Ref, shortCommit(ch.Old))
			continue
		case ch.Old == "":
			what = "added"
		case ch.Old != ch.New:
			what = "updated from " + shortCommit(ch.Old)
		default:
			what = "unchanged"
		}
		n++
		if by := ch.Locked.RequestedBy; len(by) != 1 || by[0] != pins.RootRequester {
			what += " (for " + strings.Join(by, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Name, ch.Ref, shortCommit(ch.New), what)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s: %s locked\n", lockName(p), dependencies(n))
}

func dependencies(n int) string { return plural.Count(n, "dependency") }

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// depsFor returns the resolver of @name// loads for the fleet file, or
// nil when the fleet has no fleet.deps.
func depsFor(c *cli.Context, file string) (func(name string) (string, error), error) {
	overrides := map[string]string{}
	for _, o := range c.StringSlice("override") {
		name, dir, ok := strings.Cut(o, "=")
		name = strings.TrimPrefix(name, "@")
		if !ok || name == "" || dir == "" {
			return nil, usagef("--override %q: write NAME=DIR, e.g. --override team=../fleet-lib", o)
		}
		if _, dup := overrides[name]; dup {
			return nil, usagef("--override %s is given twice", name)
		}
		overrides[name] = dir
	}
	dir := filepath.Dir(file)
	if !pins.HasDeps(dir) {
		if len(overrides) > 0 {
			return nil, usagef("--override: there is no %s next to %s, so no dependency to override", pins.DepsFile, file)
		}
		return nil, nil
	}
	root := dir
	if r := c.String("root"); r != "" {
		root = r
	}
	p, err := newProject(dir, root)
	if err != nil {
		return nil, err
	}
	r, err := p.Resolver(pins.ResolverOptions{
		Context:   c.Context,
		Offline:   c.Bool("offline"),
		Overrides: overrides,
		Log:       c.App.ErrWriter,
	})
	if err != nil {
		return nil, err
	}
	return r.Dir, nil
}

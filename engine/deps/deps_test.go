package deps_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/deps"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// The library every test depends on: features/ssh.star loads a file next
// to it, one by a relative path out of its folder and one //-rooted (both
// stay inside the library), and declares a feature when the fleet calls it.
var teamLib = map[string]string{
	"features/ssh.star": `load("../lib/util.star", "merge")
load("//lib/ports.star", "SSH_PORT")

def ssh(extra = {}):
    return feature("ssh", nixos = merge({"services.openssh.enable": True,
                                         "services.openssh.ports": [SSH_PORT]}, extra))
`,
	"lib/util.star": `def merge(a, b):
    out = dict(a)
    out.update(b)
    return out
`,
	"lib/ports.star": "SSH_PORT = 22\n",
}

const fleetStar = `load("@team//features/ssh.star", "ssh")
fleet(name = "t")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("web", system = "x86_64-linux", state_version = "26.05", features = [ssh()])
`

// teamFixture is a library repository with an annotated tag v1 and a
// fleet depending on it, locked.
type teamFixture struct {
	team   *repo
	v1     string // the commit of v1
	fleet  string // the fleet's folder
	cache  *deps.Cache
	lock   *deps.Lock
	p      *deps.Project
	commit string
}

func newTeamFixture(t *testing.T) *teamFixture {
	t.Helper()
	f := &teamFixture{cache: setupGit(t)}
	f.team = newRepo(t, "team")
	f.v1 = f.team.commit(teamLib)
	f.team.tag("v1", true)
	f.fleet = fleetDir(t, map[string]string{
		"fleet.star": fleetStar,
		"fleet.deps": depLine("team", f.team.url, "v1"),
	})
	f.p = project(f.fleet, f.cache)
	l, _, err := f.p.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.lock = l
	return f
}

// eval evaluates the fleet with a new resolver.
func (f *teamFixture) eval(t *testing.T, opts deps.ResolverOptions) (*model.Fleet, error) {
	t.Helper()
	r, err := f.p.Resolver(opts)
	if err != nil {
		return nil, err
	}
	return engine.Eval(context.Background(), filepath.Join(f.fleet, "fleet.star"), engine.Options{Deps: r.Dir})
}

// lockedEval locks the fleet in dir and evaluates it with what the lock
// names.
func lockedEval(t *testing.T, dir string, c *deps.Cache) (*model.Fleet, error) {
	t.Helper()
	p := project(dir, c)
	if _, _, err := p.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := p.Resolver(deps.ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{Deps: res.Dir})
}

func TestDepsLock(t *testing.T) {
	f := newTeamFixture(t)
	e := f.lock.Find("team")
	if e == nil || e.Commit != f.v1 || e.Ref != "v1" || e.Git != f.team.url || !slices.Equal(e.RequestedBy, []string{"fleet.deps"}) {
		t.Fatalf("locked %+v; want commit %s (v1 peeled)", e, f.v1)
	}
	entry := f.cache.Dir(f.team.url, f.v1)
	hash, err := deps.TreeHash(entry)
	if err != nil || hash != e.SHA256 {
		t.Fatalf("cache entry %s hashes to %s (%v); lock says %s", entry, hash, err, e.SHA256)
	}
	if _, err := os.Stat(filepath.Join(entry, ".git")); !os.IsNotExist(err) {
		t.Fatalf("the cache entry keeps .git: %v", err)
	}
	first, _ := os.ReadFile(f.p.LockPath())

	// Locking again, and from scratch, writes the same bytes.
	if _, _, err := f.p.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(f.p.LockPath())
	os.Remove(f.p.LockPath())
	if _, _, err := f.p.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	third, _ := os.ReadFile(f.p.LockPath())
	if string(first) != string(second) || string(first) != string(third) {
		t.Fatalf("locks differ:\n%s\n%s\n%s", first, second, third)
	}
}

// TestDepsRefs resolves every kind of ref.
func TestDepsRefs(t *testing.T) {
	c := setupGit(t)
	r := newRepo(t, "refs")
	c1 := r.commit(map[string]string{"a.star": "A = 1\n"})
	r.tag("light", false)
	r.tag("annotated", true)
	testtool.Git(t, r.work, "tag", "same")
	testtool.Git(t, r.work, "branch", "both")
	testtool.Git(t, r.work, "push", "-q", "origin", "both", "refs/tags/same")
	c2 := r.commit(map[string]string{"a.star": "A = 2\n"})
	testtool.Git(t, r.work, "tag", "both") // a tag "both" at c2, a branch "both" at c1
	testtool.Git(t, r.work, "push", "-q", "origin", "refs/tags/both")
	for _, tc := range []struct{ ref, commit, err string }{
		{"light", c1, ""},
		{"annotated", c1, ""},
		{"refs/tags/annotated", c1, ""},
		{"main", c2, ""},
		{"refs/heads/main", c2, ""},
		{"HEAD", c2, ""},
		{c1, c1, ""},
		{"refs/heads/both", c1, ""},
		{"both", "", `"both" is both a tag and a branch`},
		{"nope", "", `has no tag or branch "nope"`},
		{c1[:10], "", "abbreviated commit hash"},
		{"refs/tags/nope", "", "has no ref refs/tags/nope"},
	} {
		got, err := deps.LsRemote(context.Background(), r.url, tc.ref)
		if tc.err != "" {
			wantErr(t, err, tc.err)
			continue
		}
		if err != nil || got != tc.commit {
			t.Errorf("%s resolved to %s, %v; want %s", tc.ref, got, err, tc.commit)
		}
	}
	// Through a lock, errors name the dependency and its line.
	dir := fleetDir(t, map[string]string{"fleet.deps": depLine("x", r.url, "nope")})
	_, _, err := project(dir, c).Lock(context.Background())
	wantErr(t, err, `fleet.deps:1:1: dependency x: `+r.url+` has no tag or branch "nope"`)
}

func TestDepsLoadThroughEngine(t *testing.T) {
	f := newTeamFixture(t)
	fl, err := f.eval(t, deps.ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fl.Features) != 1 || fl.Features[0].Name != "ssh" {
		t.Fatalf("features %v; want ssh", fl.Features)
	}
	if js, _ := json.Marshal(fl.Features[0]); !strings.Contains(string(js), `"ports":[22]`) {
		t.Fatalf("feature ssh lacks what the library's files add: %s", js)
	}
}

// TestDepsCacheHitWithoutNetwork: once fetched, a dependency needs no
// repository, online or offline, and a new cache entry is fetched on
// demand when the repository is there.
func TestDepsCacheHitWithoutNetwork(t *testing.T) {
	f := newTeamFixture(t)
	if err := os.Rename(f.team.url, f.team.url+".gone"); err != nil {
		t.Fatal(err)
	}
	for _, offline := range []bool{false, true} {
		if _, err := f.eval(t, deps.ResolverOptions{Offline: offline}); err != nil {
			t.Fatalf("offline=%v: %v", offline, err)
		}
	}
	// A machine that has not fetched yet does, on first use.
	os.Rename(f.team.url+".gone", f.team.url)
	f.p.Cache = &deps.Cache{Root: t.TempDir()}
	if _, err := f.eval(t, deps.ResolverOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestDepsOffline(t *testing.T) {
	f := newTeamFixture(t)
	empty := t.TempDir()
	f.p.Cache = &deps.Cache{Root: empty}
	_, err := f.eval(t, deps.ResolverOptions{Offline: true})
	wantErr(t, err, "fleet.star:1:1: ", "dependency team: commit "+f.v1, "not in the cache", "--offline")
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("offline evaluation wrote to the cache: %v", entries)
	}
}

func TestDepsTamperedCache(t *testing.T) {
	f := newTeamFixture(t)
	entry := f.p.Cache.Dir(f.team.url, f.v1)
	if err := os.WriteFile(filepath.Join(entry, "lib/ports.star"), []byte("SSH_PORT = 2222\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := f.eval(t, deps.ResolverOptions{})
	wantErr(t, err, "fleet.star:1:1: dependency team: the cached files of commit "+f.v1, f.lock.Find("team").SHA256, "rm -rf "+entry)

	// Relocking does not take the damaged entry for the truth, and
	// verify reports it.
	_, _, err = f.p.Lock(context.Background())
	wantErr(t, err, "dependency team", "rm -rf "+entry)
	problems, err := f.p.Verify(context.Background())
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "dependency team: the cached files") {
		t.Fatalf("verify: %q, %v", problems, err)
	}

	// A fresh lock elsewhere does not trust it either.
	os.Remove(f.p.LockPath())
	_, _, err = f.p.Lock(context.Background())
	wantErr(t, err, "dependency team", "rm -rf "+entry)

	// Deleting the entry, as the message says, mends it.
	os.RemoveAll(entry)
	if _, _, err := f.p.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eval(t, deps.ResolverOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestDepsMovedTag: verify notices a tag that now names another commit; update
// moves the lock to it.
func TestDepsMovedTag(t *testing.T) {
	f := newTeamFixture(t)
	if problems, err := f.p.Verify(context.Background()); err != nil || len(problems) != 0 {
		t.Fatalf("verify of a fresh lock: %q, %v", problems, err)
	}
	moved := f.team.commit(map[string]string{"lib/ports.star": "SSH_PORT = 2222\n"})
	f.team.tag("v1", true)
	problems, err := f.p.Verify(context.Background())
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], `dependency team: ref "v1" of `+f.team.url+" now names commit "+moved) ||
		!strings.Contains(problems[0], "fleet deps update team") {
		t.Fatalf("verify after the tag moved: %q, %v", problems, err)
	}
	// lock keeps the pin; update moves it.
	if l, _, err := f.p.Lock(context.Background()); err != nil || l.Find("team").Commit != f.v1 {
		t.Fatalf("lock moved the pin: %v", err)
	}
	l, changes, err := f.p.Update(context.Background(), "team")
	if err != nil || l.Find("team").Commit != moved || len(changes) != 1 || changes[0].Old != f.v1 || changes[0].New != moved {
		t.Fatalf("update: %+v, %v", changes, err)
	}
	if problems, err := f.p.Verify(context.Background()); err != nil || len(problems) != 0 {
		t.Fatalf("verify after update: %q, %v", problems, err)
	}
	_, _, err = f.p.Update(context.Background(), "nope")
	wantErr(t, err, `no dependency "nope"`, "there are: team")
}

func TestDepsOverride(t *testing.T) {
	f := newTeamFixture(t)
	local := t.TempDir()
	writeFiles(t, local, teamLib)
	writeFiles(t, local, map[string]string{"lib/ports.star": "SSH_PORT = 2200\n"})
	os.RemoveAll(f.team.url)  // the override needs neither the repository
	os.Remove(f.p.LockPath()) // nor the lock
	var log strings.Builder
	fl, err := f.eval(t, deps.ResolverOptions{Overrides: map[string]string{"team": local}, Log: &log, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(fl.Features[0]); !strings.Contains(string(got), "2200") {
		t.Fatalf("the override was not used: %s", got)
	}
	if !strings.Contains(log.String(), "@team comes from --override "+local) {
		t.Fatalf("no note about the override: %q", log.String())
	}
	_, err = f.eval(t, deps.ResolverOptions{Overrides: map[string]string{"tema": local}})
	wantErr(t, err, "--override tema=", "declares no dependency tema (it declares: team)")
	_, err = f.eval(t, deps.ResolverOptions{Overrides: map[string]string{"team": filepath.Join(local, "nope")}})
	wantErr(t, err, "no such folder")
	// Without the override, the missing lock is reported where it matters.
	_, err = f.eval(t, deps.ResolverOptions{})
	wantErr(t, err, "fleet.star:1:1: fleet.deps declares dependencies but there is no fleet.lock: run fleet deps lock")
}

func TestDepsStaleLock(t *testing.T) {
	f := newTeamFixture(t)
	f.team.commit(map[string]string{"extra.star": "X = 1\n"})
	f.team.tag("v2", false)
	writeFiles(t, f.fleet, map[string]string{"fleet.deps": depLine("team", f.team.url, "v2")})
	_, err := f.eval(t, deps.ResolverOptions{})
	wantErr(t, err, "fleet.star:1:1: fleet.deps has changed since fleet.lock was written", `ref is "v2" here, "v1" in the lock`, "run fleet deps lock")
	problems, _ := f.p.Verify(context.Background())
	if len(problems) != 1 || !strings.Contains(problems[0], "fleet.lock does not match fleet.deps") {
		t.Fatalf("verify: %q", problems)
	}
	writeFiles(t, f.fleet, map[string]string{
		"fleet.deps": depLine("team", f.team.url, "v1") + depLine("other", f.team.url, "v1"),
		"fleet.star": "load(\"@nope//x.star\", \"x\")\n" + fleetStar,
	})
	_, err = f.eval(t, deps.ResolverOptions{})
	wantErr(t, err, "other is not in the lock")
	writeFiles(t, f.fleet, map[string]string{"fleet.deps": depLine("team", f.team.url, "v1")})
	_, err = f.eval(t, deps.ResolverOptions{})
	wantErr(t, err, `fleet.star:1:1: unknown dependency "@nope": fleet.deps does not declare it (locked: team)`)
}

// TestDepsTransitive: a dependency's own fleet.deps joins the lock, and its
// files load their dependency by name.
func TestDepsTransitive(t *testing.T) {
	cache := setupGit(t)
	c := newRepo(t, "c")
	c.commit(map[string]string{"ports.star": "SSH_PORT = 22\n"})
	c.tag("v1", false)
	repos := map[string]*repo{}
	for _, name := range []string{"a", "b"} {
		r := newRepo(t, name)
		r.commit(map[string]string{
			"fleet.deps":   depLine("c", c.url, "v1"),
			name + ".star": "load(\"@c//ports.star\", \"SSH_PORT\")\nPORT = SSH_PORT\n",
		})
		r.tag("v1", false)
		repos[name] = r
	}
	a, b := repos["a"], repos["b"]
	dir := fleetDir(t, map[string]string{
		"fleet.deps": depLine("a", a.url, "v1") + depLine("b", b.url, "v1"),
		"fleet.star": "load(\"@a//a.star\", \"PORT\")\nload(\"@b//b.star\", p2 = \"PORT\")\nfleet(name = \"t\")\n",
	})
	p := project(dir, cache)
	l, _, err := p.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("locked %v", got)
	}
	if by := l.Find("c").RequestedBy; !slices.Equal(by, []string{"@a", "@b"}) {
		t.Fatalf("c requested by %v, want @a and @b", by)
	}
	r, err := p.Resolver(deps.ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{Deps: r.Dir}); err != nil {
		t.Fatal(err)
	}

	// b moves to a c of another version: the diamond no longer closes.
	c.commit(map[string]string{"ports.star": "SSH_PORT = 2222\n"})
	c.tag("v2", false)
	b.commit(map[string]string{"fleet.deps": depLine("c", c.url, "v2")})
	b.tag("v2", false)
	writeFiles(t, dir, map[string]string{"fleet.deps": depLine("a", a.url, "v1") + depLine("b", b.url, "v2")})
	before, _ := os.ReadFile(p.LockPath())
	_, _, err = p.Lock(context.Background())
	wantErr(t, err, "@b//fleet.deps:1:1: dependency c is wanted at two versions: @a wants "+c.url+` at "v1"`, `@b wants `+c.url+` at "v2"`,
		"change @a or @b", "@a//fleet.deps:1:1: @a declares c here")
	if after, _ := os.ReadFile(p.LockPath()); string(after) != string(before) {
		t.Fatal("a failed lock changed fleet.lock")
	}
}

// TestDepsEscape: a dependency's loads stay inside it.
func TestDepsEscape(t *testing.T) {
	c := setupGit(t)
	r := newRepo(t, "esc")
	r.commit(map[string]string{
		"up.star":   "load(\"../x.star\", \"x\")\n",
		"root.star": "load(\"//../x.star\", \"x\")\n",
	})
	testtool.Git(t, r.work, "rm", "-q", "--cached", "up.star") // keep the tree simple
	if err := os.Symlink("/etc/passwd", filepath.Join(r.work, "link.star")); err != nil {
		t.Fatal(err)
	}
	testtool.Git(t, r.work, "add", "-A")
	testtool.Git(t, r.work, "commit", "-q", "-m", "link")
	testtool.Git(t, r.work, "push", "-q", "origin", "main")
	for _, tc := range []struct{ load, err string }{
		{"@esc//up.star", `cannot load ../x.star: "../x.star" leaves the fleet root (inside @esc)`},
		{"@esc//root.star", `(inside @esc)`},
		{"@esc//link.star", "@esc//link.star: a symlink leads outside the dependency"},
		{"@esc//../x.star", "leaves the fleet root"},
	} {
		t.Run(tc.load, func(t *testing.T) {
			dir := fleetDir(t, map[string]string{
				"fleet.deps": depLine("esc", r.url, "main"),
				"fleet.star": "load(\"" + tc.load + "\", \"x\")\nfleet(name = \"t\")\n",
				"x.star":     "x = 1\n",
			})
			_, err := lockedEval(t, dir, c)
			wantErr(t, err, tc.err)
		})
	}
}

// TestDepsFailedFetch: a fetch that fails leaves no cache entry and no
// temporary folder.
func TestDepsFailedFetch(t *testing.T) {
	c := setupGit(t)
	cacheRoot := c.Root
	r := newRepo(t, "lib")
	good := r.commit(map[string]string{"a.star": "A = 1\n"})
	bogus := strings.Repeat("0", 40)
	if _, _, err := c.Ensure(context.Background(), r.url, bogus); err == nil || !strings.Contains(err.Error(), "fetching commit "+bogus) {
		t.Fatalf("fetching a missing commit: %v", err)
	}
	if _, _, err := c.Ensure(context.Background(), filepath.Join(t.TempDir(), "none.git"), good); err == nil {
		t.Fatal("fetching from a missing repository worked")
	}
	if c.Has(r.url, bogus) {
		t.Fatal("a failed fetch left a cache entry")
	}
	var left []string
	filepath.WalkDir(cacheRoot, func(p string, d os.DirEntry, err error) error {
		if p != cacheRoot {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("a failed fetch left %v", left)
	}
	// The lock of a fleet naming a commit that does not exist fails the
	// same way, naming the dependency.
	dir := fleetDir(t, map[string]string{"fleet.deps": depLine("lib", r.url, bogus)})
	_, _, err := project(dir, c).Lock(context.Background())
	wantErr(t, err, "fleet.deps:1:1: dependency lib: fetching commit "+bogus)
	if _, err := os.Stat(filepath.Join(dir, "fleet.lock")); !os.IsNotExist(err) {
		t.Fatal("a failed lock wrote fleet.lock")
	}
}

// A library's feature may come with its hand-written module and package
// (paths relative to the library's file, never outside the library): the
// lowering copies them into the tree under deps/<name>/ and refers to
// them there. Paths that leave the library are refused.
func TestDepsFilesInTheTree(t *testing.T) {
	c := setupGit(t)
	r := newRepo(t, "team")
	r.commit(map[string]string{
		"features/ssh.star": `def ssh():
    return feature("ssh", modules = ["../nix/ssh-extra.nix"])

def bad():
    return feature("bad", modules = ["../../x.nix"])
`,
		"nix/ssh-extra.nix": "{ ... }: { services.openssh.openFirewall = true; }\n",
	})
	dir := fleetDir(t, map[string]string{
		"fleet.deps": depLine("team", r.url, "main"),
		"fleet.star": `load("@team//features/ssh.star", "ssh")
fleet(name = "t")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("web", system = "x86_64-linux", state_version = "26.05", features = [ssh()])
`,
	})
	fl, err := lockedEval(t, dir, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := fl.Features[0].Modules; !slices.Equal(got, []string{"@team//nix/ssh-extra.nix"}) {
		t.Fatalf("modules %q", got)
	}
	files, err := nixgen.Generate(fl)
	if err != nil {
		t.Fatal(err)
	}
	tree := map[string]string{}
	for _, f := range files {
		tree[f.Path] = string(f.Data)
	}
	if tree["deps/team/nix/ssh-extra.nix"] != "{ ... }: { services.openssh.openFirewall = true; }\n" {
		t.Fatalf("the library's module is not in the tree: %q", slices.Sorted(maps.Keys(tree)))
	}
	if !strings.Contains(tree["modules/nixos/ssh.nix"], "../../deps/team/nix/ssh-extra.nix") {
		t.Fatalf("modules/nixos/ssh.nix does not import it:\n%s", tree["modules/nixos/ssh.nix"])
	}

	// Out of the library: refused at the declaration.
	if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(`load("@team//features/ssh.star", "bad")
fleet(name = "t")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("web", system = "x86_64-linux", state_version = "26.05", features = [bad()])
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = lockedEval(t, dir, c)
	wantErr(t, err, "leaves the fleet root (inside @team)")
}

package conformance_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// archives are the upstream snapshots, each unpacked into a folder of its
// own name (see ../shared/upstream/README.md).
var archives = []string{"nixpkgs-lib", "home-manager", "nix-darwin", "agenix"}

// unpack extracts every archive of src into dst/<name>. The archives hold
// one top folder each (nixpkgs-lib/, home-manager/ ...).
func unpack(t testing.TB, src, dst string) {
	t.Helper()
	for _, name := range archives {
		testtool.Untar(t, filepath.Join(src, name+".tar.gz"), dst)
		if st, err := os.Stat(filepath.Join(dst, name)); err != nil || !st.IsDir() {
			t.Fatalf("%s.tar.gz does not unpack to %s/", name, name)
		}
	}
}

// The package names the stub nixpkgs provides are collected, not listed:
// every pkgs.<a>.<b> in the upstream modules, in the NixOS schema and in
// the generated tree, every mkPackageOption pkgs "<name>" (and its default
// = "<name>"), every inherit (pkgs) <names>; and the packages the fleet
// names (pkgNames). A module that reads a package some other way (through
// a variable, pkgs.${name}) finds no stub: its evaluation fails with
// "attribute missing", naming it.
var (
	pkgsRef       = regexp.MustCompile(`(?:^|[^\w.'"-])pkgs\.((?:[A-Za-z_][\w'-]*|"[^"$]*")(?:\.(?:[A-Za-z_][\w'-]*|"[^"$]*"))*)`)
	pkgsPart      = regexp.MustCompile(`"[^"]*"|[^.]+`)
	pkgOption     = regexp.MustCompile(`mkPackageOption\s+pkgs\s+(?:"([^"]+)"|\[([^\]]*)\])(?:\s*\{([^}]*)\})?`)
	pkgOptionDflt = regexp.MustCompile(`default\s*=\s*(?:"([^"]+)"|\[([^\]]*)\])`)
	quoted        = regexp.MustCompile(`"([^"]+)"`)
	inheritPkgs   = regexp.MustCompile(`inherit\s*\(\s*pkgs\s*\)([^;]*);`)
	// config.boot.kernelPackages.<a>.<b>: attributes of a kernel package
	// set (pkgs.linuxPackages*), which every such stub gets.
	kernelRef = regexp.MustCompile(`kernelPackages\.([A-Za-z_][\w'-]*(?:\.[A-Za-z_][\w'-]*)*)`)
)

// trie is a set of attribute paths: {"git": {}, "nerd-fonts": {"jetbrains-mono": {}}}.
type trie map[string]trie

func (t trie) add(path []string) {
	for _, p := range path {
		if p == "" {
			return
		}
		next, ok := t[p]
		if !ok {
			next = trie{}
			t[p] = next
		}
		t = next
	}
}

func (t trie) merge(o trie) {
	for k, v := range o {
		if _, ok := t[k]; !ok {
			t[k] = trie{}
		}
		t[k].merge(v)
	}
}

// scanNix adds the package paths every .nix file under dir mentions.
func (t trie) scanNix(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".nix") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		t.scanText(string(b))
		return nil
	})
}

func (t trie) scanText(s string) {
	for _, m := range pkgsRef.FindAllStringSubmatch(s, -1) {
		var path []string
		for _, part := range pkgsPart.FindAllString(m[1], -1) {
			path = append(path, strings.Trim(part, `"`))
		}
		t.add(path)
	}
	for _, m := range pkgOption.FindAllStringSubmatch(s, -1) {
		t.addNameOrList(m[1], m[2])
		if d := pkgOptionDflt.FindStringSubmatch(m[3]); d != nil {
			t.addNameOrList(d[1], d[2])
		}
	}
	for _, m := range inheritPkgs.FindAllStringSubmatch(s, -1) {
		for _, n := range strings.Fields(m[1]) {
			t.add([]string{n})
		}
	}
	for _, m := range kernelRef.FindAllStringSubmatch(s, -1) {
		t.add(append([]string{"linuxPackages"}, strings.Split(m[1], ".")...))
	}
	// A file that is a function of packages (callPackage's argument: its
	// formals name packages, and it is no module, which would take config)
	// gets each of them.
	if formals, ok := leadingFormals(s); ok && !slices.Contains(formals, "config") && !slices.Contains(formals, "options") {
		for _, f := range formals {
			t.add([]string{f})
		}
	}
}

var (
	nixComment = regexp.MustCompile(`(?m)^\s*#.*$`)
	formalName = regexp.MustCompile(`^\s*([A-Za-z_][\w'-]*)\s*(?:\?|$)`)
)

// leadingFormals returns the names of the formal arguments when the file
// is a function of an attribute set ({ a, b ? x, ... }: ...).
func leadingFormals(s string) ([]string, bool) {
	s = strings.TrimSpace(nixComment.ReplaceAllString(s, ""))
	if !strings.HasPrefix(s, "{") {
		return nil, false
	}
	depth := 0
	end := -1
	for i, r := range s {
		switch r {
		case '{', '[', '(':
			depth++
		case '}', ']', ')':
			depth--
		}
		if depth == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, false
	}
	rest := strings.TrimSpace(s[end+1:])
	if !strings.HasPrefix(rest, ":") && !strings.HasPrefix(rest, "@") {
		return nil, false
	}
	var names []string
	depth = 0
	start := 1
	inner := s[:end]
	for i := 1; i <= len(inner); i++ {
		if i < len(inner) {
			switch inner[i] {
			case '{', '[', '(':
				depth++
				continue
			case '}', ']', ')':
				depth--
				continue
			case ',':
				if depth != 0 {
					continue
				}
			default:
				continue
			}
		}
		if m := formalName.FindStringSubmatch(inner[start:i]); m != nil {
			names = append(names, m[1])
		}
		start = i + 1
	}
	return names, true
}

// kernelPackageSets gives every pkgs.linuxPackages* the attributes any
// of them is read with.
func (t trie) kernelPackageSets() {
	attrs := trie{}
	for k, v := range t {
		if strings.HasPrefix(k, "linuxPackages") {
			attrs.merge(v)
		}
	}
	for k, v := range t {
		if strings.HasPrefix(k, "linuxPackages") {
			v.merge(attrs)
		}
	}
}

func (t trie) addNameOrList(name, list string) {
	if name != "" {
		t.add([]string{name})
		return
	}
	var path []string
	for _, q := range quoted.FindAllStringSubmatch(list, -1) {
		path = append(path, q[1])
	}
	t.add(path)
}

// upstreamNames scans the upstream modules and the NixOS schema once.
func upstreamNames(t testing.TB, upstream string) trie {
	t.Helper()
	names := trie{}
	for _, dir := range []string{
		"home-manager/modules", "home-manager/nixos", "home-manager/nix-darwin", "home-manager/home-manager",
		"nix-darwin/modules", "nix-darwin/pkgs", "agenix/modules", "agenix/pkgs",
	} {
		if err := names.scanNix(filepath.Join(upstream, dir)); err != nil {
			t.Fatal(err)
		}
	}
	if err := names.scanNix(filepath.Join("testdata", "nixpkgs")); err != nil {
		t.Fatal(err)
	}
	// What the fake nixpkgs itself refers to (runtimeShell, stdenv.shell,
	// NixOS defaults).
	for _, n := range []string{"bash", "bashInteractive", "shadow", "nix", "coreutils", "linuxPackages"} {
		names.add([]string{n})
	}
	return names
}

// fakeNixpkgs lays out the fake nixpkgs for one tree in dir: the files of
// testdata/nixpkgs, lib pointing at the real nixpkgs lib, and names.json.
func fakeNixpkgs(t testing.TB, dir, upstream string, names trie) {
	t.Helper()
	src := filepath.Join("testdata", "nixpkgs")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(upstream, "nixpkgs-lib", "lib"), filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	names.kernelPackageSets()
	b, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "names.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package nixgen_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// The patched channel is imported from a derivation (IFD): nixpkgs with
// the patches applied by prev.applyPatches, then imported. These tests
// hold the generated overlays/default.nix to what the documentation of
// overlay.patch and the comment above the binding promise, with real
// nix-instantiate and the real nixpkgs lib (lib.fix, lib.extends and
// composeManyExtensions, as nixpkgs applies overlays):
//
//  1. Nothing but pkgs.patched forces the patched tree: every other
//     channel, fallback, package, override and flake overlay evaluates
//     with fetchpatch and applyPatches stubs that throw when called, so
//     no patch derivation is even instantiated.
//  2. Machines that do not use pkgs.patched evaluate, all their modules
//     deeply, with allow-import-from-derivation = false; machines that
//     do fail with Nix's own IFD error naming nixpkgs-patched.
//  3. The patched tree is built for the machine's system: where IFD is
//     allowed, evaluating pkgs.patched of another platform asks for a
//     builder of that platform, and of this platform builds here.
//
// fetchpatch and applyPatches are then real derivations (a builder that
// fails), so what Nix does with them is what it does with nixpkgs'
// own: it writes them to a private store (--store, a temporary
// directory, so nothing touches /nix/store) and, for IFD, builds them.

// ifdSystems are the platforms the tests evaluate the overlay for.
var ifdSystems = []string{"x86_64-linux", "aarch64-darwin"}

func TestPatchedChannelIFD(t *testing.T) {
	testtool.Require(t, "nix-instantiate", "nix-bin")
	libDir := upstreamNixpkgsLib(t)
	usedBy, notUsedBy := 0, 0
	for name, file := range fleets(t) {
		f := evalFleet(t, file)
		if !hasPatches(f) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			w := newIFDWorld(t, file, libDir)

			t.Run("other layers never force it", func(t *testing.T) {
				for _, system := range ifdSystems {
					var fields []reportField
					for _, e := range reportEntries(w.f) {
						if !w.forcesPatched(e.key, system) {
							fields = append(fields, e)
						}
					}
					var b strings.Builder
					fmt.Fprintf(&b, "let p = pkgsFor \"throw\" %q; in {\n    names = builtins.attrNames p;\n", system)
					for _, e := range fields {
						fmt.Fprintf(&b, "    %q = %s;\n", e.key, e.expr)
					}
					b.WriteString("  }")
					var got map[string]any
					if err := w.eval(t, b.String(), &got, "--option", "allow-import-from-derivation", "false"); err != nil {
						t.Fatalf("%s: %v", system, err)
					}
					want := expectedOverlay(w.f, system)
					for k := range want {
						if w.forcesPatched(k, system) {
							delete(want, k)
						}
					}
					delete(got, "names")
					if !reflect.DeepEqual(normalize(got), normalize(want)) {
						t.Errorf("%s:\ngot  %v\nwant %v", system, normalize(got), normalize(want))
					}
				}
			})

			t.Run("what uses it needs IFD", func(t *testing.T) {
				for _, system := range ifdSystems {
					for _, e := range reportEntries(w.f) {
						if !w.forcesPatched(e.key, system) {
							continue
						}
						err := w.eval(t, fmt.Sprintf("let p = pkgsFor \"drv\" %q; in %s", system, e.expr), new(any),
							"--option", "allow-import-from-derivation", "false")
						if !isIFDRefused(err) {
							t.Errorf("%s, %s: want Nix's allow-import-from-derivation error for nixpkgs-patched, got %v", system, e.key, err)
						}
					}
				}
			})

			t.Run("machines", func(t *testing.T) {
				for _, m := range w.f.Machines {
					files, skipped := w.machineModules(t, m)
					if len(skipped) > 0 {
						t.Logf("%s: not evaluated (hand-written, or raw expressions the stubs cannot evaluate): %s", m.Name, strings.Join(skipped, ", "))
					}
					var b strings.Builder
					fmt.Fprintf(&b, "let pkgs = pkgsFor \"drv\" %q; load = file: s.clean (import file { inherit (s) config lib inputs; inherit pkgs; }); in [\n", m.System)
					for _, p := range files {
						fmt.Fprintf(&b, "  (load ./%s)\n", p)
					}
					b.WriteString("]")
					err := w.eval(t, b.String(), new(any), "--option", "allow-import-from-derivation", "false")
					t.Logf("%s (%s): %d modules, uses pkgs.patched: %v", m.Name, m.System, len(files), w.machineUsesPatched(m))
					if w.machineUsesPatched(m) {
						usedBy++
						if !isIFDRefused(err) {
							t.Errorf("%s uses pkgs.patched: want Nix's allow-import-from-derivation error for nixpkgs-patched, got %v", m.Name, err)
						}
						continue
					}
					notUsedBy++
					if err != nil {
						t.Errorf("%s does not use pkgs.patched, yet its %d modules do not evaluate without IFD: %v", m.Name, len(files), err)
					}
				}
			})

			t.Run("built for the machine's system", func(t *testing.T) {
				here := w.currentSystem(t)
				other := ifdSystems[0]
				if other == here {
					other = ifdSystems[1]
				}
				// Another platform: Nix asks for a builder of it (none is
				// configured) before building anything.
				err := w.eval(t, fmt.Sprintf("(pkgsFor \"drv\" %q).patched.__channel", other), new(any))
				want := regexp.MustCompile(`a '` + regexp.QuoteMeta(other) + `' with features \{[^}]*\} is required to build '[^']*\.drv'`)
				if err == nil || !want.MatchString(err.Error()) {
					t.Errorf("pkgs.patched for %s evaluated on %s: want Nix asking for a %s builder, got %v", other, here, other, err)
				}
				// This platform: Nix builds it here (and the stub builder
				// fails), without asking for another machine.
				err = w.eval(t, fmt.Sprintf("(pkgsFor \"drv\" %q).patched.__channel", here), new(any))
				if err == nil || strings.Contains(err.Error(), "is required to build") || !strings.Contains(err.Error(), "build") {
					t.Errorf("pkgs.patched for %s evaluated on %s: want a local build attempt (that fails), got %v", here, here, err)
				}
			})
		})
	}
	if usedBy == 0 || notUsedBy == 0 {
		t.Errorf("%d machines use pkgs.patched and %d do not: the pinned fleets must have both for this test to show anything", usedBy, notUsedBy)
	}
}

// TestForkChannelNeedsNoIFD checks the way out the documentation of
// overlay.patch gives: the patches on a branch of a nixpkgs fork,
// declared as a channel, are a flake input that the overlay imports
// directly. A machine using it evaluates with IFD disabled and nothing
// ever calls fetchpatch or applyPatches.
func TestForkChannelNeedsNoIFD(t *testing.T) {
	testtool.Require(t, "nix-instantiate", "nix-bin")
	libDir := upstreamNixpkgsLib(t)
	file := filepath.Join(t.TempDir(), "fleet.star")
	src := `fleet(name = "fork")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
channel("nixpkgs-fixes", url = "github:example/nixpkgs/fixes")
overlay.fallback("zerotierone", channel = "nixpkgs-fixes", reason = "the fix is on our branch")
feature("zt", nixos = {"services.zerotierone.package": nix.pkg("nixpkgs-fixes.zerotierone")}, packages = ["zerotierone"])
machine("box", system = "x86_64-linux", features = ["zt"], nixos = {"system.stateVersion": "26.05"})
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newIFDWorld(t, file, libDir)
	m := w.f.Machines[0]
	files, _ := w.machineModules(t, m)
	if len(files) < 2 {
		t.Fatalf("box: modules %v, want its machine file and the zt module", files)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "let pkgs = pkgsFor \"throw\" %q; load = file: s.clean (import file { inherit (s) config lib inputs; inherit pkgs; }); in {\n", m.System)
	b.WriteString("  direct = pkgs.\"nixpkgs-fixes\".zerotierone;\n  fallback = pkgs.zerotierone;\n  modules = [\n")
	for _, p := range files {
		fmt.Fprintf(&b, "    (load ./%s)\n", p)
	}
	b.WriteString("  ];\n}")
	var got struct{ Direct, Fallback string }
	if err := w.eval(t, b.String(), &got, "--option", "allow-import-from-derivation", "false"); err != nil {
		t.Fatal(err)
	}
	if want := "nixpkgs-fixes:zerotierone"; got.Direct != want || got.Fallback != want {
		t.Errorf("pkgs.nixpkgs-fixes.zerotierone = %q, pkgs.zerotierone = %q; want both %q", got.Direct, got.Fallback, want)
	}
}

func hasPatches(f *model.Fleet) bool {
	for _, o := range f.Overlays {
		if o.Kind == model.OverlayPatch {
			return true
		}
	}
	return false
}

// isIFDRefused tells whether err is Nix refusing to build nixpkgs-patched
// during evaluation.
func isIFDRefused(err error) bool {
	return err != nil && regexp.MustCompile(`cannot build '[^']*-nixpkgs-patched\.drv' during evaluation because the option 'allow-import-from-derivation' is disabled`).MatchString(err.Error())
}

// ifdWorld is a generated tree laid out with stubs, and the Nix prelude
// that applies its overlay to a stub nixpkgs: pkgsFor mode system, where
// mode "throw" makes fetchpatch and applyPatches throw when called and
// "drv" makes them derivations for system whose builder fails.
type ifdWorld struct {
	f       *model.Fleet
	dir     string
	store   string
	prelude string
	files   map[string]string // generated files by path
	// unevaluable are the fleet's raw expressions the stubs cannot
	// evaluate (config.boot...); the modules holding them are skipped.
	unevaluable []string
}

func newIFDWorld(t *testing.T, file, libDir string) *ifdWorld {
	t.Helper()
	f, files, dir, stubs := stubbed(t, file)
	w := &ifdWorld{f: f, dir: dir, store: t.TempDir(), files: map[string]string{}}
	for _, fl := range files {
		w.files[fl.Path] = string(fl.Data)
	}
	values := exprValues(t, dir, stubs, f)
	f.WalkValues(func(v model.Value) {
		if e, ok := v.(model.Expr); ok {
			if _, ok := values[e.Code]; !ok {
				w.unevaluable = append(w.unevaluable, e.Code)
			}
		}
	})
	names := f.PackageNames()
	for _, o := range f.Overlays {
		names = append(names, o.Name)
	}
	names = append(names, overlayPkgNames(f)...)
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	nameList := "[ " + strings.Join(quoted, " ") + " ]"
	w.prelude = fmt.Sprintf(`let
  s = %s;
  lib = import %s;
  setAt = path: value: if path == [ ] then value else { ${builtins.head path} = setAt (builtins.tail path) value; };
  inputs = {
    nixpkgs = { outPath = %s; inherit lib; };
%s  };
  overlay = import ./overlays/default.nix inputs;
  mkPkg = n: args: attrs: { __pkg = n; __args = args; __attrs = attrs; override = a: mkPkg n (args // a) attrs; overrideAttrs = f: mkPkg n args (attrs // f attrs); };
  merge = a: b: a // builtins.mapAttrs (n: v: if a ? ${n} && !(v ? __pkg) && !(a.${n} ? __pkg) then merge a.${n} v else v) b;
  split = n: builtins.filter builtins.isString (builtins.split "\\." n);
  pkgSet = builtins.foldl' (acc: n: merge acc (setAt (split n) (mkPkg n { } { }))) { } %s;
  # A derivation for system whose builder fails: what matters is what Nix
  # does to get it built.
  failing = system: name: extra: derivation ({ inherit name system; builder = "/bin/sh"; args = [ "-c" "exit 1" ]; } // extra);
  fetchers = {
    throw = system: {
      fetchpatch = args: throw "fetchpatch ${args.name} was called: the overlay reached for the patched nixpkgs";
      applyPatches = args: throw "applyPatches was called: the overlay reached for the patched nixpkgs";
    };
    drv = system: {
      # Fixed-output, like nixpkgs' fetchpatch.
      fetchpatch = args: failing system args.name { inherit (args) url; outputHashMode = "flat"; outputHash = args.hash; };
      applyPatches = args: failing system args.name { inherit (args) src patches; };
    };
  };
  base = mode: system: pkgSet // fetchers.${mode} system // {
    stdenv.hostPlatform = { inherit system; isDarwin = builtins.match ".*-darwin" system != null; };
    config = { };
    callPackage = path: args: { callPackage = s.clean path; };
  };
  # As nixpkgs applies overlays.
  pkgsFor = mode: system: lib.fix (lib.extends overlay (final: base mode system));
in
`, stubs, libDir, stubChannel(t, dir, "nixpkgs", nameList), stubInputs(t, f, dir, nameList), nameList)
	return w
}

// eval evaluates expr after the prelude with --strict --json into out,
// on the world's private store, with no substituters and no builders.
// The error carries Nix's stderr.
func (w *ifdWorld) eval(t *testing.T, expr string, out any, extra ...string) error {
	t.Helper()
	bin := testtool.Require(t, "nix-instantiate", "nix-bin")
	file, err := os.CreateTemp(w.dir, "ifd-*.nix")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteString(w.prelude + expr + "\n"); err != nil {
		t.Fatal(err)
	}
	file.Close()
	args := append([]string{"--store", w.store, "--read-write-mode",
		"--option", "substituters", "", "--option", "builders", "", "--option", "extra-platforms", "",
		"--eval", "--strict", "--json"}, extra...)
	cmd := exec.Command(bin, append(args, file.Name())...)
	cmd.Env = nixEnv(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, stderr.String())
	}
	return json.Unmarshal(b, out)
}

func (w *ifdWorld) currentSystem(t *testing.T) string {
	t.Helper()
	var s string
	if err := w.eval(t, "builtins.currentSystem", &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// fallbackChannel is the channel a fallback takes name from on system,
// or "" when none applies there: the first declared one whose platforms
// include system (or that has none), as the generated chain does.
func fallbackChannel(f *model.Fleet, name, system string) string {
	for _, o := range f.Overlays {
		if o.Kind == model.OverlayFallback && o.Name == name && (len(o.Platforms) == 0 || contains(o.Platforms, system)) {
			return o.Channel
		}
	}
	return ""
}

// pkgForcesPatched tells whether evaluating the package pkgs.<name> on
// system forces pkgs.patched, by the model: it is in the patched channel,
// falls back to it there, or is overridden with one that does.
func (w *ifdWorld) pkgForcesPatched(name, system string, seen map[string]bool) bool {
	top, _, _ := strings.Cut(name, ".")
	if top == model.PatchedChannel || fallbackChannel(w.f, top, system) == model.PatchedChannel {
		return true
	}
	if seen[top] {
		return false
	}
	seen[top] = true
	for _, o := range w.f.Overlays {
		if o.Kind == model.OverlayOverride && o.Name == top {
			for _, p := range pkgsIn(o.Attrs, o.Args) {
				if w.pkgForcesPatched(p, system, seen) {
					return true
				}
			}
		}
	}
	return false
}

// forcesPatched tells whether a reportEntries key forces pkgs.patched on system.
func (w *ifdWorld) forcesPatched(key, system string) bool {
	kind, name, _ := strings.Cut(key, " ")
	switch kind {
	case "channel":
		return name == model.PatchedChannel
	case "fallback", "override":
		return w.pkgForcesPatched(name, system, map[string]bool{})
	}
	return false
}

// pkgsIn are the nix.pkg names inside some configuration values.
func pkgsIn(as ...*model.Attrs) []string {
	var out []string
	for _, a := range as {
		if a != nil {
			model.Walk(a, func(v model.Value) {
				if p, ok := v.(model.Pkg); ok {
					out = append(out, p.Name)
				}
			})
		}
	}
	return out
}

// machineUsesPatched tells, from the model alone, whether the machine's
// configuration reaches pkgs.patched: through the system and home parts
// of its features (and what they require), its own configuration, its
// users' home features, their packages and shells.
func (w *ifdWorld) machineUsesPatched(m *model.Machine) bool {
	f := w.f
	var pkgs []string
	var attrs []*model.Attrs
	seen := map[string]bool{}
	var feature func(name string, system bool)
	feature = func(name string, system bool) {
		key := fmt.Sprint(name, system)
		ft := f.Feature(name)
		if ft == nil || seen[key] {
			return
		}
		seen[key] = true
		attrs = append(attrs, ft.Home)
		if system {
			attrs = append(attrs, ft.Config(m.Class))
		}
		pkgs = append(pkgs, ft.Packages...)
		for _, r := range ft.Requires {
			feature(r, system)
		}
	}
	for _, name := range m.Features {
		feature(name, true)
	}
	attrs = append(attrs, m.Config(), m.Home)
	for _, name := range m.Users {
		u := f.User(name)
		for _, h := range u.Home {
			feature(h, false)
		}
		if u.Shell != "" {
			pkgs = append(pkgs, u.Shell)
		}
	}
	pkgs = append(pkgs, pkgsIn(attrs...)...)
	for _, p := range pkgs {
		if w.pkgForcesPatched(p, m.System, map[string]bool{}) {
			return true
		}
	}
	return false
}

// nixFileRef is a relative reference to a .nix file in generated Nix.
var nixFileRef = regexp.MustCompile(`\.\.?/[A-Za-z0-9_.+/-]*\.nix\b`)

// machineModules are the generated files of a machine's configuration:
// its machine file and every generated .nix file it reaches through
// imports, sharedModules and home-manager users, found by following the
// relative paths in their text. Hand-written files (files/...) and files
// holding raw expressions the stubs cannot evaluate are skipped.
func (w *ifdWorld) machineModules(t *testing.T, m *model.Machine) (files, skipped []string) {
	t.Helper()
	seen := map[string]bool{}
	var visit func(p string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		text, ok := w.files[p]
		if !ok || strings.HasPrefix(p, "files/") {
			skipped = append(skipped, p)
			return
		}
		for _, code := range w.unevaluable {
			if strings.Contains(text, code) {
				skipped = append(skipped, p)
				return
			}
		}
		files = append(files, p)
		for _, ref := range nixFileRef.FindAllString(text, -1) {
			visit(filepath.ToSlash(filepath.Join(filepath.Dir(p), ref)))
		}
	}
	visit("machines/" + string(m.Class) + "/" + m.Name + ".nix")
	sort.Strings(files)
	sort.Strings(skipped)
	return files, skipped
}

// upstreamNixpkgsLib unpacks the real nixpkgs lib (../shared/upstream)
// into a temporary folder and returns its lib/ folder.
func upstreamNixpkgsLib(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testtool.Untar(t, filepath.Join(testtool.Upstream(t), "nixpkgs-lib.tar.gz"), dir)
	return filepath.Join(dir, "nixpkgs-lib", "lib")
}

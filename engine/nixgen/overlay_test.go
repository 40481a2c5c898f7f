package nixgen_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// TestOverlayLayers applies overlays/default.nix, composed by a real
// composeManyExtensions, to a stub nixpkgs on a Linux and a darwin
// system, and checks each layer: channels (the darwin branch on darwin,
// the patched nixpkgs), fallbacks on their platforms only, custom
// packages, overrides (override args and overrideAttrs), flake overlays.
func TestOverlayLayers(t *testing.T) {
	testtool.Require(t, "nix-instantiate", "nix-bin")
	for name, file := range fleets(t) {
		t.Run(name, func(t *testing.T) {
			f, _, dir, stubs := stubbed(t, file)
			if len(f.Overlays) == 0 && len(f.Channels) < 2 {
				t.Skip("no overlay entries")
			}
			var names []string
			for _, o := range f.Overlays {
				names = append(names, o.Name)
			}
			names = append(names, overlayPkgNames(f)...)
			quoted := make([]string, len(names))
			for i, n := range names {
				quoted[i] = fmt.Sprintf("%q", n)
			}
			nameList := "[ " + strings.Join(quoted, " ") + " ]"
			channelFile := func(channel string) string { return stubChannel(t, dir, channel, nameList) }
			inputs := stubInputs(t, f, dir, nameList)
			src := fmt.Sprintf(`let
  s = %s;
  setAt = path: value: if path == [ ] then value else { ${builtins.head path} = setAt (builtins.tail path) value; };
  # nixpkgs' composeExtensions and composeManyExtensions, as in lib/fixed-points.nix.
  composeExtensions = f: g: final: prev: let fApplied = f final prev; prev' = prev // fApplied; in fApplied // g final prev';
  lib.composeManyExtensions = builtins.foldl' composeExtensions (final: prev: { });
  inputs = {
    nixpkgs = { outPath = %s; inherit lib; };
%s  };
  overlay = import ./overlays/default.nix inputs;
  mkPkg = n: args: attrs: { __pkg = n; __args = args; __attrs = attrs; override = a: mkPkg n (args // a) attrs; overrideAttrs = f: mkPkg n args (attrs // f attrs); };
  base = system: {
    stdenv.hostPlatform = { inherit system; isDarwin = builtins.match ".*-darwin" system != null; };
    config = { };
    lib = { };
    fetchpatch = args: args;
    # The patched channel must be nixpkgs with exactly the declared patches.
    applyPatches = args: assert args.src == inputs.nixpkgs; assert map (p: [ p.url p.hash ]) args.patches == %s; { outPath = %s; };
    callPackage = path: args: { callPackage = s.clean path; };
  } // pkgSet;
  # Dotted names (nixVersions.latest) nest; packages themselves are leaves.
  merge = a: b: a // builtins.mapAttrs (n: v: if a ? ${n} && !(v ? __pkg) && !(a.${n} ? __pkg) then merge a.${n} v else v) b;
  split = n: builtins.filter builtins.isString (builtins.split "\\." n);
  pkgSet = builtins.foldl' (acc: n: merge acc (setAt (split n) (mkPkg n { } { }))) { } %s;
  prevFor = system: s.lib // base system;
  pkgsFor = system: let final = (base system) // overlay final (base system); in final;
  report = system: let p = pkgsFor system; in {
%s  };
in {
  linux = report "x86_64-linux";
  darwin = report "aarch64-darwin";
}`, stubs, channelFile("nixpkgs"), inputs, patchList(f), channelFile("patched"), nameList, reportFields(f))
			var got map[string]map[string]any
			if err := evalNix(t, dir, src, &got); err != nil {
				t.Fatal(err)
			}
			for sysName, system := range map[string]string{"linux": "x86_64-linux", "darwin": "aarch64-darwin"} {
				want := expectedOverlay(f, system)
				if !reflect.DeepEqual(normalize(got[sysName]), normalize(want)) {
					t.Errorf("%s:\ngot  %v\nwant %v", system, normalize(got[sysName]), normalize(want))
				}
			}
		})
	}
}

// stubChannel writes a stub nixpkgs for a channel: a function of system
// and config, as nixpkgs is, whose packages are "<channel>:<name>" for
// every name of nameList (a Nix list of strings). It returns its path
// for Nix, relative to dir.
func stubChannel(t *testing.T, dir, channel, nameList string) string {
	t.Helper()
	p := "stub-channel-" + channel + ".nix"
	src := fmt.Sprintf(`{ system, config }: { __channel = %q; __system = system; } // builtins.listToAttrs (map (n: { name = n; value = %q + ":" + n; }) %s)`, channel, channel, nameList)
	if err := os.WriteFile(filepath.Join(dir, p), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return "./" + p
}

// stubInputs are the flake inputs the overlay reads besides nixpkgs, as
// Nix bindings: a stub channel per channel and darwin branch, and for
// each overlay.flake an input whose overlay sets "flake:<name>" = true.
// They use setAt (a let binding of the expression they go in).
func stubInputs(t *testing.T, f *model.Fleet, dir, nameList string) string {
	t.Helper()
	var inputs strings.Builder
	for _, c := range f.Channels {
		if c.Name != "nixpkgs" {
			fmt.Fprintf(&inputs, "    %q = { outPath = %s; };\n", c.Name, stubChannel(t, dir, c.Name, nameList))
			if c.DarwinURL != "" {
				fmt.Fprintf(&inputs, "    %q = { outPath = %s; };\n", c.Name+"-darwin", stubChannel(t, dir, c.Name+"-darwin", nameList))
			}
		}
	}
	for _, o := range f.Overlays {
		if o.Kind == model.OverlayFlake {
			path, _ := model.ParseAttrPath(o.Attr)
			q := make([]string, len(path))
			for i, p := range path {
				q[i] = fmt.Sprintf("%q", p)
			}
			fmt.Fprintf(&inputs, "    %q = setAt [ %s ] (final: prev: { %q = true; });\n", o.Input, strings.Join(q, " "), "flake:"+o.Name)
		}
	}
	return inputs.String()
}

// overlayPkgNames are packages named by nix.pkg inside override settings.
func overlayPkgNames(f *model.Fleet) []string {
	var out []string
	for _, o := range f.Overlays {
		for _, a := range []*model.Attrs{o.Attrs, o.Args} {
			if a != nil {
				model.Walk(a, func(v model.Value) {
					if p, ok := v.(model.Pkg); ok {
						out = append(out, p.Name)
					}
				})
			}
		}
	}
	return out
}

// reportField is one thing the overlay tests read from the final
// package set p: its key in the report and the Nix expression.
type reportField struct{ key, expr string }

// reportEntries are what the tests compare, per package or channel, in
// declaration order and without repeats.
func reportEntries(f *model.Fleet) []reportField {
	var out []reportField
	seen := map[string]bool{}
	field := func(key, expr string) {
		if !seen[key] {
			seen[key] = true
			out = append(out, reportField{key, expr})
		}
	}
	for _, c := range f.Channels {
		if c.Name != "nixpkgs" {
			field("channel "+c.Name, fmt.Sprintf("p.%q.__channel", c.Name))
		}
	}
	for _, o := range f.Overlays {
		switch o.Kind {
		case model.OverlayPatch:
			field("channel patched", `p.patched.__channel`)
		case model.OverlayFallback:
			field("fallback "+o.Name, fmt.Sprintf("let v = p.%q; in if builtins.isString v then v else \"unchanged\"", o.Name))
		case model.OverlayPackage:
			field("package "+o.Name, fmt.Sprintf("p.%q.callPackage", o.Name))
		case model.OverlayOverride:
			field("override "+o.Name, fmt.Sprintf("s.clean { inherit (p.%q) __args __attrs; }", o.Name))
		case model.OverlayFlake:
			field("flake "+o.Name, fmt.Sprintf("p.%q or false", "flake:"+o.Name))
		}
	}
	return out
}

// reportFields are the bindings of a report set: every reportEntries.
func reportFields(f *model.Fleet) string {
	var b strings.Builder
	for _, e := range reportEntries(f) {
		fmt.Fprintf(&b, "    %q = %s;\n", e.key, e.expr)
	}
	return b.String()
}

// expectedOverlay is what reportFields should find on system.
func expectedOverlay(f *model.Fleet, system string) map[string]any {
	darwin := strings.HasSuffix(system, "-darwin")
	channelOf := func(name string) string {
		if c := f.Channel(name); c != nil && c.DarwinURL != "" && darwin {
			return name + "-darwin"
		}
		return name
	}
	out := map[string]any{}
	for _, c := range f.Channels {
		if c.Name != "nixpkgs" {
			out["channel "+c.Name] = channelOf(c.Name)
		}
	}
	x := expect{}
	overlayValue := func(a *model.Attrs) any {
		if a == nil {
			return map[string]any{}
		}
		v, _ := x.value(a)
		return pkgsToChannel(v)
	}
	for _, o := range f.Overlays {
		switch o.Kind {
		case model.OverlayPatch:
			out["channel patched"] = "patched"
		case model.OverlayFallback:
			key := "fallback " + o.Name
			if len(o.Platforms) == 0 || contains(o.Platforms, system) {
				out[key] = channelOf(o.Channel) + ":" + o.Name
			} else if _, set := out[key]; !set {
				out[key] = "unchanged"
			}
		case model.OverlayPackage:
			out["package "+o.Name] = "path:files/" + o.Path
		case model.OverlayOverride:
			out["override "+o.Name] = map[string]any{"__args": overlayValue(o.Args), "__attrs": overlayValue(o.Attrs)}
		case model.OverlayFlake:
			out["flake "+o.Name] = true
		}
	}
	return out
}

// pkgsToChannel maps pkg markers to what the stub final holds for them:
// the stub package set (a mkPkg value, cleaned).
func pkgsToChannel(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v["__nix"] == "pkg" {
			return map[string]any{"__pkg": v["name"], "__args": map[string]any{}, "__attrs": map[string]any{},
				"override": "<function>", "overrideAttrs": "<function>"}
		}
		out := map[string]any{}
		for k, x := range v {
			out[k] = pkgsToChannel(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = pkgsToChannel(x)
		}
		return out
	}
	return v
}

// patchList is the [ [ url hash ] ... ] the patched channel must apply.
func patchList(f *model.Fleet) string {
	var parts []string
	for _, o := range f.Overlays {
		if o.Kind == model.OverlayPatch {
			parts = append(parts, fmt.Sprintf("[ %q %q ]", o.URL, o.Hash))
		}
	}
	return "[ " + strings.Join(parts, " ") + " ]"
}

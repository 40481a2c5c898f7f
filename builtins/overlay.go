package builtins

import (
	"fmt"
	"path"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// overlayGroup is the five overlay layers. Each workaround (patch,
// fallback, override) must say why it exists and may say when it was
// added, so `fleet overlays` can list the oldest ones for removal.
func overlayGroup() []Builtin {
	return []Builtin{
		{Fn: builtinPatch, Doc: Doc{Name: "overlay.patch", Group: "overlay",
			Signature: `overlay.patch(url, hash, reason, added = "", name = "")`,
			Text: `Layer 1. Applies a patch (an upstream PR's diff) to nixpkgs. All patches together make
the channel "patched": pkgs.patched.<package>, or overlay.fallback(..., channel =
"patched") to take a package from it. hash is the patch's SRI hash (sha256-...). name
defaults to the URL's last segment.

The cost: Nix cannot apply a patch while it evaluates, so the patched nixpkgs is imported
from a derivation (IFD). Evaluating a machine that uses pkgs.patched (directly or through
such a fallback on its platform) first fetches the patches and builds the patched tree,
for the machine's own system: evaluating a Linux machine on a Mac needs a Linux builder
(nix.linux-builder) or a binary cache that already holds the tree, and the evaluation
fails where IFD is disabled (allow-import-from-derivation = false, as on Hydra). Machines
that do not use it never build it. To do without IFD, keep the patches on a branch of a
nixpkgs fork instead and declare it as a channel: channel("nixpkgs-fixes", url =
"github:you/nixpkgs/fixes"), then pkgs.nixpkgs-fixes.<package> or overlay.fallback(...,
channel = "nixpkgs-fixes"). It is an ordinary flake input, locked in flake.lock; rebase
the branch when nixpkgs moves.`}},
		{Fn: builtinFallback, Doc: Doc{Name: "overlay.fallback", Group: "overlay",
			Signature: `overlay.fallback(package, channel, reason, platforms = [], added = "")`,
			Text: `Layer 2. Takes one package from another channel (usually stable) while it is
broken in nixpkgs, on the listed platforms only (all platforms when empty).`}},
		{Fn: builtinPackage, Doc: Doc{Name: "overlay.package", Group: "overlay",
			Signature: `overlay.package(name, path, reason = "")`,
			Text: `Layer 3. Adds a custom package built with callPackage from path (a package.nix,
relative to the declaring .star file).`}},
		{Fn: builtinOverride, Doc: Doc{Name: "overlay.override", Group: "overlay",
			Signature: `overlay.override(package, reason, attrs = {}, args = {}, added = "")`,
			Text: `Layer 4. Overrides a package: attrs go to overrideAttrs (doCheck = False ...), args to
override (callPackage arguments).`}},
		{Fn: builtinFlakeOverlay, Doc: Doc{Name: "overlay.flake", Group: "overlay",
			Signature: `overlay.flake(name, input, attr = "overlays.default")`,
			Text:      `Layer 5. Applies an overlay exported by a flake input (inputs.<input>.<attr>).`}},
	}
}

func declareOverlay(thread *starlark.Thread, what string, o *model.Overlay) (starlark.Value, error) {
	r, err := declare(thread, what)
	if err != nil {
		return nil, err
	}
	if o.Added != "" && !dateRE.MatchString(o.Added) {
		return nil, fmt.Errorf("%s: added = %q: write the date as YYYY-MM-DD", what, o.Added)
	}
	if o.Kind == model.OverlayPatch || o.Kind == model.OverlayFallback || o.Kind == model.OverlayOverride {
		if strings.TrimSpace(o.Reason) == "" {
			return nil, fmt.Errorf("%s: reason is empty: say why this workaround exists so it can be removed when upstream is fixed", what)
		}
	}
	o.Pos = callerPos(thread)
	r.overlays = append(r.overlays, o)
	attrs := starlark.StringDict{
		"layer":  starlark.MakeInt(o.Kind.Layer()),
		"reason": starlark.String(o.Reason),
		"added":  starlark.String(o.Added),
	}
	return newDecl(what, o.Name, attrs), nil
}

func builtinPatch(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var url, hash, reason, added, name string
	if err := unpack(b.Name(), args, kwargs, "url", &url, "hash", &hash, "reason", &reason,
		"added?", &added, "name?", &name); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("overlay.patch: url %q is not an http(s) URL", url)
	}
	if !strings.HasPrefix(hash, "sha256-") {
		return nil, fmt.Errorf("overlay.patch: hash %q is not an SRI sha256 hash (\"sha256-...\")", hash)
	}
	if name == "" {
		name = strings.TrimSuffix(strings.TrimSuffix(path.Base(url), ".patch"), ".diff")
	}
	return declareOverlay(thread, b.Name(), &model.Overlay{Kind: model.OverlayPatch, Name: name,
		Channel: "nixpkgs", URL: url, Hash: hash, Reason: reason, Added: added})
}

func builtinFallback(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pkg, reason, added string
	channel := ref{kind: "channel"}
	var platforms stringList
	if err := unpack(b.Name(), args, kwargs, "package", &pkg, "channel", &channel, "reason", &reason,
		"platforms?", &platforms, "added?", &added); err != nil {
		return nil, err
	}
	if err := checkTopLevel(b.Name(), pkg); err != nil {
		return nil, err
	}
	for _, p := range platforms {
		if _, err := checkSystem(p); err != nil {
			return nil, fmt.Errorf("overlay.fallback: platforms: %w", err)
		}
	}
	plats, dup := sortedUnique(platforms)
	if dup != "" {
		return nil, fmt.Errorf("overlay.fallback: platform %q listed twice", dup)
	}
	return declareOverlay(thread, b.Name(), &model.Overlay{Kind: model.OverlayFallback, Name: pkg,
		Channel: channel.name, Platforms: plats, Reason: reason, Added: added})
}

func builtinPackage(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name, p, reason string
	if err := unpack(b.Name(), args, kwargs, "name", &name, "path", &p, "reason?", &reason); err != nil {
		return nil, err
	}
	if err := checkName("package", name, identNameRE, "it becomes pkgs.<name>: use letters, digits, '_' and '-'"); err != nil {
		return nil, err
	}
	rel, err := r.path(thread, p)
	if err != nil {
		return nil, fmt.Errorf("overlay.package: path: %w", err)
	}
	return declareOverlay(thread, b.Name(), &model.Overlay{Kind: model.OverlayPackage, Name: name, Path: rel, Reason: reason})
}

func builtinOverride(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pkg, reason, added string
	var attrs, oargs config
	if err := unpack(b.Name(), args, kwargs, "package", &pkg, "reason", &reason, "attrs?", &attrs,
		"args?", &oargs, "added?", &added); err != nil {
		return nil, err
	}
	if err := checkTopLevel(b.Name(), pkg); err != nil {
		return nil, err
	}
	if attrs.attrs.Len() == 0 && oargs.attrs.Len() == 0 {
		return nil, fmt.Errorf("overlay.override: %s: give attrs = {...} (overrideAttrs) or args = {...} (override)", pkg)
	}
	return declareOverlay(thread, b.Name(), &model.Overlay{Kind: model.OverlayOverride, Name: pkg,
		Attrs: nonEmpty(attrs.attrs), Args: nonEmpty(oargs.attrs), Reason: reason, Added: added})
}

func builtinFlakeOverlay(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	input := ref{kind: "input"}
	attr := "overlays.default"
	if err := unpack(b.Name(), args, kwargs, "name", &name, "input", &input, "attr?", &attr); err != nil {
		return nil, err
	}
	if _, err := model.ParseAttrPath(attr); err != nil {
		return nil, fmt.Errorf("overlay.flake: attr: %w", err)
	}
	return declareOverlay(thread, b.Name(), &model.Overlay{Kind: model.OverlayFlake, Name: name, Input: input.name, Attr: attr})
}

// checkTopLevel refuses package names an overlay entry cannot replace on
// its own: python3Packages.foo lives in a package set, and binding it in
// an overlay would replace the whole set.
func checkTopLevel(fn, pkg string) error {
	if !identNameRE.MatchString(pkg) {
		return fmt.Errorf("%s: %q is not a top-level package name: packages inside sets (python3Packages.x) are overridden with the set's own mechanism, e.g. nix.expr in a feature's nixpkgs.overlays", fn, pkg)
	}
	return nil
}

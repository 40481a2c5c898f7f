package nixgen

import (
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// Describe names a file of the tree (or flake.lock beside it) in the
// words of the fleet that wrote it: "feature monitoring", "overlay",
// "machine cinnabar", "flake.lock (inputs)". It is the one place that
// knows the layout (see the package documentation), so that what says
// "changed since last deployed" speaks of features and users, not of
// paths. A path it does not know is returned as it is.
func Describe(p string) string {
	parts := strings.Split(p, "/")
	last := parts[len(parts)-1]
	switch {
	case p == "flake.nix":
		return "flake.nix (channels and inputs)"
	case p == "flake.lock":
		return "flake.lock (inputs)"
	case p == "overlays/default.nix":
		return "overlay"
	case p == "secrets.nix":
		return "secret rules (secrets.nix)"
	case len(parts) == 3 && parts[0] == "modules" && strings.HasSuffix(last, ".nix"):
		name := strings.TrimSuffix(last, ".nix")
		if parts[1] == string(model.Home) {
			return "feature " + name + " (home)"
		}
		return "feature " + name
	case len(parts) == 3 && parts[0] == "machines" && strings.HasSuffix(last, ".nix"):
		return "machine " + strings.TrimSuffix(last, ".nix")
	case len(parts) == 3 && parts[0] == "homes" && parts[1] == "users" && strings.HasSuffix(last, ".nix"):
		return "user " + strings.TrimSuffix(last, ".nix") + " (home)"
	case len(parts) == 3 && parts[0] == "homes" && parts[1] == "machines" && strings.HasSuffix(last, ".nix"):
		return "machine " + strings.TrimSuffix(last, ".nix") + " (home)"
	case len(parts) > 1 && parts[0] == filesDir:
		return "file " + strings.Join(parts[1:], "/")
	case len(parts) > 2 && parts[0] == depsDir:
		return "file @" + parts[1] + "//" + strings.Join(parts[2:], "/")
	case len(parts) == 4 && parts[0] == secretsDir && strings.HasSuffix(last, ".age"):
		// secrets/<owner>/<secret>/<file>.age
		name := "secret " + parts[2]
		if file := strings.TrimSuffix(last, ".age"); file != parts[2] && file != "value" {
			name += " (" + file + ")"
		}
		if parts[1] == "shared" {
			return name + ", shared"
		}
		return name + " of " + parts[1]
	}
	return p
}

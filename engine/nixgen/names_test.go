package nixgen_test

import (
	"testing"

	"github.com/fleet-nix/fleet/engine/nixgen"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"flake.nix", "flake.nix (channels and inputs)"},
		{"flake.lock", "flake.lock (inputs)"},
		{"overlays/default.nix", "overlay"},
		{"secrets.nix", "secret rules (secrets.nix)"},
		{"modules/nixos/monitoring.nix", "feature monitoring"},
		{"modules/darwin/shell.nix", "feature shell"},
		{"modules/home/shell.nix", "feature shell (home)"},
		{"machines/nixos/cinnabar.nix", "machine cinnabar"},
		{"machines/darwin/stibnite.nix", "machine stibnite"},
		{"homes/users/crs58.nix", "user crs58 (home)"},
		{"homes/machines/cinnabar.nix", "machine cinnabar (home)"},
		{"files/modules/zerotier.nix", "file modules/zerotier.nix"},
		{"deps/nixlib/lib/x.nix", "file @nixlib//lib/x.nix"},
		{"secrets/shared/db-password/value.age", "secret db-password, shared"},
		{"secrets/cinnabar/ssh-host-key/ssh_host_ed25519_key.age", "secret ssh-host-key (ssh_host_ed25519_key) of cinnabar"},
		{"secrets/cinnabar/wifi/wifi.age", "secret wifi of cinnabar"},
		{"somewhere/else.txt", "somewhere/else.txt"},
	} {
		if got := nixgen.Describe(tc.path); got != tc.want {
			t.Errorf("Describe(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

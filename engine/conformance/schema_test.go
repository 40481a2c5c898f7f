package conformance_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// schemaCases check the NixOS schema itself: that it accepts correct
// NixOS usage of the options fleet's trees set (with the real agenix and
// home-manager modules alongside), and that the NixOS rules it encodes
// fail with the upstream message.
var schemaCases = []struct {
	name string
	// module is the body of a NixOS module: an attribute set in the scope
	// of { config, lib, pkgs, inputs, ... }.
	module string
	// want is "" for a configuration that must pass cleanly (no failed
	// assertion, no warning, toplevel evaluates); else a text that must
	// appear in a failed assertion, a warning, a trace on stderr or Nix's
	// error.
	want string
}{
	{
		name: "correct server",
		module: `{
  imports = [ inputs.agenix.nixosModules.default inputs.home-manager.nixosModules.home-manager ];
  networking.hostName = "case";
  nixpkgs.hostPlatform = "x86_64-linux";
  system.stateVersion = "26.05";
  users.mutableUsers = false;
  services.openssh.enable = true;
  services.openssh.settings.PermitRootLogin = "prohibit-password";
  programs.zsh.enable = true;
  age.secrets.alice-password-hash.file = ./hash.age;
  users.users.root.openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEULM3YKQXjnkoYQmMS2X/ci65qw/4u1Ppln4/b26+S2 alice" ];
  users.users.alice = {
    isNormalUser = true;
    uid = 1000;
    extraGroups = [ "wheel" ];
    shell = pkgs.zsh;
    hashedPasswordFile = config.age.secrets.alice-password-hash.path;
  };
  home-manager.useGlobalPkgs = true;
  home-manager.users.alice = { home.stateVersion = "26.05"; };
}`,
	},
	{
		name: "normal user below uid 1000",
		module: `{
  users.users.alice = { isNormalUser = true; uid = 502; };
}`,
		want: "A user cannot have a users.users.alice.uid set below 1000 and set users.users.alice.isNormalUser.\n" +
			"Either users.users.alice.isSystemUser must be set to true instead of users.users.alice.isNormalUser\n" +
			"or users.users.alice.uid must be changed to 1000 or above.\n",
	},
	{
		name:   "neither normal nor system user",
		module: `{ users.users.alice = { uid = 1500; group = "users"; }; }`,
		want:   "Exactly one of users.users.alice.isSystemUser and users.users.alice.isNormalUser must be set.\n",
	},
	{
		name:   "primary group undefined",
		module: `{ users.users.svc = { isSystemUser = true; group = "svc"; }; }`,
		want:   "The following users have a primary group that is undefined: svc\n",
	},
	{
		name:   "locked out",
		module: `{ users.mutableUsers = false; users.users.alice = { isNormalUser = true; extraGroups = [ "wheel" ]; }; }`,
		want: "Neither the root account nor any wheel user has a password or SSH authorized key.\n" +
			"You must set one to prevent being locked out of your system.\n",
	},
	{
		name:   "shell without its program",
		module: `{ users.users.alice = { isNormalUser = true; shell = pkgs.zsh; }; }`,
		want:   "users.users.alice.shell is set to zsh, but\nprograms.zsh.enable is not true.",
	},
	{
		name:   "several passwords",
		module: `{ users.users.alice = { isNormalUser = true; hashedPassword = "!"; hashedPasswordFile = "/run/agenix/x"; }; }`,
		want:   "The user 'alice' has multiple of the options\n`initialHashedPassword`, `hashedPassword`, `initialPassword`, `password`\n& `hashedPasswordFile` set to a non-null value.",
	},
	{
		name:   "state version not set",
		module: `{ }`,
		want:   "system.stateVersion is not set, defaulting to 26.11. Read why this matters on https://nixos.org/manual/nixos/stable/options.html#opt-system.stateVersion.",
	},
	{
		name:   "no root file system, no boot loader",
		module: `{ fileSystems = lib.mkForce { }; boot.loader.grub.device = lib.mkForce ""; }`,
		want:   "The ‘fileSystems’ option does not specify your root file system.",
	},
	{
		name:   "grub without devices",
		module: `{ boot.loader.grub.device = lib.mkForce ""; }`,
		want:   "You must set the option ‘boot.loader.grub.devices’ or 'boot.loader.grub.mirroredBoots' to make the system bootable.",
	},
	{
		name:   "unknown option",
		module: `{ services.opensshd.enable = true; }`,
		want:   "The option `services.opensshd' does not exist.",
	},
	{
		name:   "option of the wrong type",
		module: `{ networking.hostName = "not a host name"; }`,
		want:   "is not of type `string matching the pattern",
	},
	{
		name:   "unknown sshd enum value",
		module: `{ services.openssh.settings.PermitRootLogin = "maybe"; }`,
		want:   "services.openssh.settings.PermitRootLogin",
	},
	{
		name: "agenix without identities",
		module: `{
  imports = [ inputs.agenix.nixosModules.default ];
  age.secrets.x.file = ./x.age;
}`,
		want: "age.identityPaths must be set, for example by enabling openssh.",
	},
}

// schema evaluates each case as a one-machine tree through the same
// report as the fleets.
func (e *fleetEnv) schema(t *testing.T) {
	for _, tc := range schemaCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree := t.TempDir()
			// Every case is a machine with a name and a platform; the
			// state version is the cases' own (one checks its absence).
			base := `{ lib, ... }: {
  networking.hostName = lib.mkDefault "case";
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; };
  boot.loader.grub.device = "/dev/sda";
}`
			files := map[string]string{
				"flake.nix": `{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.home-manager.url = "github:nix-community/home-manager";
  inputs.agenix.url = "github:ryantm/agenix";
  outputs = inputs@{ self, ... }: {
    nixosConfigurations.case = inputs.nixpkgs.lib.nixosSystem {
      specialArgs = { inherit inputs; };
      modules = [ ./modules/nixos/base.nix ./machines/nixos/case.nix ];
    };
  };
}`,
				"modules/nixos/base.nix":  base,
				"machines/nixos/case.nix": "{ config, lib, pkgs, inputs, ... }:\n" + tc.module + "\n",
			}
			for name, text := range files {
				p := filepath.Join(tree, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := *e
			env.tree = tree
			var r report
			m := &model.Machine{Name: "case", System: "x86_64-linux", Class: model.NixOS}
			params := env.params(m, nil)
			params["users"] = []string{"root", "alice", "svc"}
			stderr, err := env.nix.eval(t.Context(), params, &r)
			var seen []string
			var nerr *nixError
			if errors.As(err, &nerr) {
				seen = append(seen, nerr.msg)
			} else if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, traces(stderr)...)
			if err == nil {
				if !r.System.OK {
					var v any
					_, perr := env.nix.eval(t.Context(), env.params(m, "system"), &v)
					if perr == nil {
						perr = errNoPart
					}
					seen = append(seen, perr.Error())
				} else {
					seen = append(seen, r.System.Value.FailedAssertions...)
					seen = append(seen, r.System.Value.Warnings...)
					if tc.want == "" && len(r.System.Value.FailedAssertions) == 0 && r.System.Value.Toplevel == nil {
						seen = append(seen, "config.system.build.toplevel does not evaluate")
					}
				}
			}
			if tc.want == "" {
				for _, s := range seen {
					t.Errorf("schema: %s: a correct configuration fails:\n%s", tc.name, s)
				}
				return
			}
			if !slices.ContainsFunc(seen, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("schema: %s: want %q, got:\n%s", tc.name, tc.want, strings.Join(seen, "\n---\n"))
			}
			if len(r.System.Value.FailedAssertions) > 0 && r.System.Value.Toplevel != nil {
				t.Errorf("schema: %s: config.system.build.toplevel evaluates despite failed assertions", tc.name)
			}
		})
	}
}

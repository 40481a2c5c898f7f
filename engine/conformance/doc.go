// Package conformance is fleet's truth against upstream: its tests
// evaluate the flake trees fleet generates with the real upstream module
// code, and check that what comes out is what the .star files declared.
// The package has no API; everything is in its tests and testdata.
//
// Our own tests (engine/nixgen's golden trees and stub evaluations) say a
// tree is what fleet meant; only NixOS, nix-darwin, home-manager and
// agenix can say it is what they accept. The tier generates the trees of
// the reference fleet (fleet.star), every example (examples/shared-library
// with its library as --override does), nixgen's test fleets and this
// package's own testdata/fleets (a conforming fleet: the positive control),
// writes each into a temporary folder and calls its flake's outputs
// function directly, (import ./flake.nix).outputs inputs, with inputs
// built from the snapshots in ../shared/upstream (testtool.Upstream;
// unpacked once per run):
//
//	home-manager  the real flake.nix outputs: lib.homeManagerConfiguration,
//	              nixosModules.home-manager, darwinModules.home-manager
//	nix-darwin    the real flake.nix outputs: lib.darwinSystem over the real
//	              module list (no freeform root; its nixpkgs release check runs)
//	agenix        the real flake.nix outputs: modules/age.nix for NixOS and darwin
//	nixpkgs, every other channel (stable, stable-darwin ...)
//	              a fake nixpkgs (testdata/nixpkgs): the real lib; stub
//	              packages; lib.nixosSystem over a NixOS option schema
//	disko         a stand-in: disko.devices freeform, and the file systems and
//	              grub devices disko derives from a GPT layout
//	sops-nix      a stand-in: sops-nix's options with their upstream types
//	              and defaults, its key-source assertions, and each secret's
//	              sops file read as upstream's validation reads it
//	other inputs  stand-ins with the overlays the fleet takes from them
//
// Each machine is one nix-instantiate --eval --strict --json of
// testdata/report.nix, with the dummy store (nothing is copied into
// /nix/store) and an isolated NIX_STATE_DIR/NIX_CONF_DIR/NIX_PATH. The
// report is plain data: failed assertions, warnings and selected values
// of nixosConfigurations.<m> or darwinConfigurations.<m> and of every
// homeConfigurations."<user>@<m>". Its parts are guarded by tryEval; a part
// that throws is evaluated alone to show Nix's own message. Anything
// printed with builtins.trace (lib.warn, home-manager's showWarnings) is
// read from stderr and fails the machine too.
//
// # The NixOS schema
//
// Full nixpkgs is not available, so lib.nixosSystem of the fake nixpkgs
// runs the real lib.evalModules (class "nixos", the flake's specialArgs,
// modulesPath) over testdata/nixpkgs/nixos/modules: one file per nixpkgs
// module it stands in for (named in its header), declaring the options
// fleet's trees and the real home-manager and agenix NixOS modules set,
// with their upstream types. There is no freeform type at the root: an
// option nobody declares is an error, as in NixOS. Freeform types are used
// only where upstream uses them (nix.settings, services.openssh.settings,
// boot.kernel.sysctl) and in the disko stand-in. The NixOS rules fleet can
// trigger are real assertions with the upstream message text (the
// modules' headers cite the files): users-groups.nix (uid below 1000 with
// isNormalUser, exactly one of isNormalUser/isSystemUser, undefined or
// empty primary group, users.mutableUsers = false with neither root nor a
// wheel user able to log in, shells without their programs.<shell>.enable,
// several password options), version.nix (system.stateVersion not set),
// stage-1.nix (no root file system), grub.nix (no boot device ...), the nix
// gc/optimise rules. config.system.build.toplevel throws "Failed
// assertions:" as NixOS's does. The schema has its own cases
// (schemaCases): correct usage passes cleanly, each rule fails with its
// upstream text.
//
// # Stub packages
//
// Packages are stubs, generated, not listed: every pkgs.<a>.<b>,
// mkPackageOption pkgs "<name>" (and its default), inherit (pkgs) ... and
// formal argument of a package file in the upstream sources, the schema and
// the generated tree, and every package the fleet names, is a stub
// derivation (type, name, pname, version, outPath, meta.mainProgram,
// override, overrideAttrs, and a functor so that builders such as
// writeText or runCommand return stubs named after what they build).
// stdenv and the platforms come from lib.systems.elaborate; pkgs.formats
// have real option types; callPackage is the real lib.callPackageWith, so
// the fleet's own package files are called with the arguments they ask for;
// overlays are applied as nixpkgs does (lib.fix, lib.extends,
// lib.composeManyExtensions). Where a module computes with a nixpkgs
// function's result (home-manager's neovim module with
// wrapNeovimUnstable), pkgs.nix gives that result its shape, naming the
// nixpkgs file.
//
// # What is checked
//
// Upstream's verdicts: no failed assertion and no warning in any
// configuration (the home-manager users' own included), nothing printed
// while evaluating, every option the tree's modules set evaluated and
// walked (a value of the wrong type fails as it would at build time).
// Against the model (engine/model): networking.hostName, nixpkgs.hostPlatform,
// the machine's own declared values (equal, or contained in merged lists),
// each user's uid, description, groups, ssh keys and shell, age.secrets
// (names, files, owner, group, mode), home.stateVersion and the machine's
// home values, the packages of each user's home features in home.packages,
// homeConfigurations built for the machine's platform and account; with
// fleet(cache = ...), nix.settings.substituters starting with the cache and
// still holding cache.nixos.org, and both keys in trusted-public-keys
// (where the system manages Nix: nix.enable). Fleet's
// own rules for a deployable tree: the deploy target's user exists and
// accepts an admin's ssh key, sshd runs on NixOS; system.stateVersion is
// defined once, in the machine's own file, without lib.mkForce; password
// secrets of a user reach users.users.<u>.hashedPasswordFile (an absolute
// path); darwin users the fleet gives a uid are in users.knownUsers; every
// age secret can be decrypted (the host key is a recipient in secrets.nix,
// or age.identityPaths names another identity); no two variants of one
// package in a home (their files collide); home-manager.users.<u> given
// as a path, so that the module system knows its file.
//
// # What the stubs cannot prove
//
// Only module evaluation is real. NixOS's own module bodies are not here:
// the schema declares options and encodes the assertions listed above;
// anything else a NixOS module would compute, assert or warn is not
// checked (for example the nvidia driver assertions, or anything in
// systemd unit generation). Packages are stubs: that a package exists in
// nixpkgs, builds, has the program a module expects or the version a
// module checks (stubs claim a version newer than any check) is not
// proven; collisions are known only for the variant families pkgs.nix
// lists. Nothing is built: derivations' arguments, activation scripts,
// unit files and nix-darwin's system derivation are not evaluated. disko,
// sops-nix and other inputs are stand-ins. Secrets are not decrypted, and a
// recipient that only exists once a host key is generated cannot be
// checked.
package conformance

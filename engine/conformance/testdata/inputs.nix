# The flake inputs of a generated tree, built from the real upstream code,
# and the tree's outputs: (import <tree>/flake.nix).outputs inputs.
#
#   nixpkgs and every other nixpkgs channel (stable, stable-darwin ...): the
#     fake nixpkgs (./nixpkgs): the real lib, with lib.nixosSystem evaluating
#     the NixOS schema, and stub packages.
#   home-manager: the outputs of the real home-manager/flake.nix, called
#     with nixpkgs = the fake (lib.homeManagerConfiguration, nixosModules,
#     darwinModules are the real ones; nothing else of its outputs is read).
#   nix-darwin: the outputs of the real nix-darwin/flake.nix (lib.darwinSystem
#     over the real module list, with its nixpkgs release check).
#   agenix: the outputs of the real agenix/flake.nix (nixosModules.default and
#     darwinModules.default are its modules/age.nix).
#   disko: a stand-in whose nixosModules.disko declares disko.devices as a
#     freeform attribute set (disko's own types and what it derives from
#     them, file systems and grub devices, are not here).
#   any other input: a stand-in with the overlays the fleet takes from it
#     (each adds nothing) and an outPath that does not exist.
{
  # folder of the unpacked upstream snapshots
  upstream,
  # folder of the fake nixpkgs (with lib and names.json)
  nixpkgs,
  # folder of the generated tree
  tree,
  # input name -> list of attribute paths (["overlays" "default"]) the fleet
  # reads from it (overlay.flake)
  standInAttrs ? { },
}:
let
  lib = import (nixpkgs + "/lib");
  systems = [
    "x86_64-linux"
    "aarch64-linux"
    "x86_64-darwin"
    "aarch64-darwin"
  ];

  nixpkgsInput = {
    _type = "flake";
    outPath = nixpkgs;
    lib = lib.extend (final: _prev: { nixosSystem = import (nixpkgs + "/nixos/lib/eval-config.nix") final; });
    legacyPackages = lib.genAttrs systems (system: import nixpkgs { inherit system; });
  };

  flakeOf =
    dir: inputs:
    let
      outputs = (import (dir + "/flake.nix")).outputs (inputs // { self = self; });
      self =
        outputs
        // {
          _type = "flake";
          outPath = dir;
          inherit inputs outputs;
        };
    in
    self;

  home-manager = flakeOf (upstream + "/home-manager") { nixpkgs = nixpkgsInput; };
  nix-darwin = flakeOf (upstream + "/nix-darwin") { nixpkgs = nixpkgsInput; };
  agenix = flakeOf (upstream + "/agenix") {
    nixpkgs = nixpkgsInput;
    darwin = nix-darwin;
    inherit home-manager;
    # read only by agenix's packages and checks, which are not evaluated
    systems = throw "conformance: agenix's systems input is not provided";
  };

  disko = {
    _type = "flake";
    outPath = "/conformance-stand-in/disko";
    nixosModules.disko =
      { lib, ... }:
      {
        options.disko.devices = lib.mkOption {
          type = lib.types.submodule { freeformType = lib.types.attrsOf lib.types.anything; };
          default = { };
          description = "disko stand-in: the disk layout, not checked.";
        };
      };
  };

  standIn =
    name:
    lib.foldl' (acc: attrPath: lib.recursiveUpdate acc (lib.setAttrByPath attrPath (_final: _prev: { }))) {
      _type = "flake";
      outPath = "/conformance-stand-in/${name}";
    } (standInAttrs.${name} or [ ]);

  byURL =
    name: spec:
    let
      url = spec.url or "";
      repo = lib.toLower (lib.removePrefix "github:" (lib.head (lib.splitString "?" url)));
      owner = lib.concatStringsSep "/" (lib.take 2 (lib.splitString "/" repo));
    in
    if owner == "nixos/nixpkgs" then
      nixpkgsInput
    else if owner == "nix-community/home-manager" then
      home-manager
    else if owner == "nix-darwin/nix-darwin" || owner == "lnl7/nix-darwin" then
      nix-darwin
    else if owner == "ryantm/agenix" then
      agenix
    else if owner == "nix-community/disko" then
      disko
    else
      standIn name;

  flake = import (tree + "/flake.nix");
  inputs = lib.mapAttrs byURL (flake.inputs or { });
  self = outputs // {
    _type = "flake";
    outPath = tree;
    inherit inputs outputs;
  };
  outputs = flake.outputs (inputs // { inherit self; });
in
{
  inherit
    inputs
    outputs
    lib
    home-manager
    nix-darwin
    agenix
    ;
}

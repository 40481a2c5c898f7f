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
#     freeform attribute set (disko's own types are not here) and derives
#     file systems and grub devices from GPT layouts as disko does.
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

  # What disko derives from a disk layout, for the layouts fleet writes: a
  # GPT disk's partitions with a file system become fileSystems.<mount
  # point> (device /dev/disk/by-partlabel/disk-<disk>-<partition>, as disko
  # labels them), and a GPT disk with a BIOS boot partition (EF02) becomes a
  # grub device (disko's lib/types/gpt.nix). Other content types (LVM,
  # LUKS, ZFS, swap ...) are not derived.
  disko = {
    _type = "flake";
    outPath = "/conformance-stand-in/disko";
    nixosModules.disko =
      { config, lib, ... }:
      let
        disks = config.disko.devices.disk or { };
        partitions = disk: lib.mapAttrsToList (name: p: p // { _name = name; }) (disk.content.partitions or { });
        gpt = disk: (disk.content.type or null) == "gpt";
        fileSystemOf =
          diskName: p:
          lib.optional ((p.content.type or null) == "filesystem" && p.content ? mountpoint) {
            name = p.content.mountpoint;
            value = {
              device = "/dev/disk/by-partlabel/disk-${diskName}-${p._name}";
              fsType = p.content.format;
              options = p.content.mountOptions or [ "defaults" ];
            };
          };
      in
      {
        options.disko.devices = lib.mkOption {
          type = lib.types.submodule { freeformType = lib.types.attrsOf lib.types.anything; };
          default = { };
          description = "disko stand-in: the disk layout, not checked.";
        };
        config = {
          fileSystems = lib.listToAttrs (
            lib.concatLists (
              lib.mapAttrsToList (n: d: lib.optionals (gpt d) (lib.concatMap (fileSystemOf n) (partitions d))) disks
            )
          );
          boot.loader.grub.devices = lib.concatLists (
            lib.mapAttrsToList (
              _: d: lib.optional (gpt d && lib.any (p: (p.type or null) == "EF02") (partitions d)) d.device
            ) disks
          );
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

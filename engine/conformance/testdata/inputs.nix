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
#   sops-nix: a stand-in whose nixosModules.sops declares sops-nix's options
#     (sops.secrets with its secret type, defaultSopsFile, age.*, gnupg.*)
#     with their upstream types and defaults (modules/sops/default.nix),
#     reads each secret's sops file as upstream does when validating it,
#     and has upstream's key-source assertions. What it installs
#     (activation script, unit, manifest) is not here.
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

  # sops-nix's module for a machine that keeps some secrets in sops while
  # fleet manages others: its options, as modules/sops/default.nix of
  # Mic92/sops-nix declares them, so that a tree that sets one wrongly,
  # or sets one sops-nix does not have, fails as it would against
  # sops-nix. With validateSopsFiles (the default) upstream hashes each
  # secret's sops file at evaluation; so does this, so a sops file the
  # tree refers to must be in the tree.
  sops-nix = {
    _type = "flake";
    outPath = "/conformance-stand-in/sops-nix";
    nixosModules.default = sops-nix.nixosModules.sops;
    nixosModules.sops =
      {
        config,
        lib,
        options,
        ...
      }:
      let
        cfg = config.sops;
        hostKeys =
          type:
          if options.services.openssh ? hostKeys && config.services.openssh.enable then
            map (e: e.path) (
              lib.filter (e: e.type == type && !(lib.hasPrefix "/run/secrets" e.path)) config.services.openssh.hostKeys
            )
          else
            [ ];
        secretType = lib.types.submodule (
          { config, name, ... }:
          {
            options = {
              name = lib.mkOption {
                type = lib.types.str;
                default = name;
              };
              key = lib.mkOption {
                type = lib.types.str;
                default = if cfg.defaultSopsKey != null then cfg.defaultSopsKey else name;
              };
              path = lib.mkOption {
                type = lib.types.str;
                default =
                  if config.neededForUsers then "/run/secrets-for-users/${config.name}" else "/run/secrets/${config.name}";
              };
              format = lib.mkOption {
                type = lib.types.enum [
                  "yaml"
                  "json"
                  "binary"
                  "dotenv"
                  "ini"
                ];
                default = cfg.defaultSopsFormat;
              };
              mode = lib.mkOption {
                type = lib.types.str;
                default = "0400";
              };
              owner = lib.mkOption {
                type = lib.types.nullOr lib.types.str;
                default = null;
              };
              uid = lib.mkOption {
                type = lib.types.nullOr lib.types.int;
                default = 0;
              };
              group = lib.mkOption {
                type = lib.types.nullOr lib.types.str;
                default = null;
              };
              gid = lib.mkOption {
                type = lib.types.nullOr lib.types.int;
                default = 0;
              };
              sopsFile = lib.mkOption {
                type = lib.types.path;
                default = cfg.defaultSopsFile;
              };
              sopsFileHash = lib.mkOption {
                type = lib.types.str;
                readOnly = true;
                default = lib.optionalString cfg.validateSopsFiles "${builtins.hashFile "sha256" config.sopsFile}";
              };
              restartUnits = lib.mkOption {
                type = lib.types.listOf lib.types.str;
                default = [ ];
              };
              reloadUnits = lib.mkOption {
                type = lib.types.listOf lib.types.str;
                default = [ ];
              };
              neededForUsers = lib.mkOption {
                type = lib.types.bool;
                default = false;
              };
            };
          }
        );
        opt =
          type: default:
          lib.mkOption {
            inherit type default;
            description = "sops-nix stand-in";
          };
      in
      {
        options.sops = {
          secrets = opt (lib.types.attrsOf secretType) { };
          defaultSopsFile = lib.mkOption {
            type = lib.types.path;
            description = "sops-nix stand-in";
          };
          defaultSopsFormat = opt lib.types.str "yaml";
          defaultSopsKey = opt (lib.types.nullOr lib.types.str) null;
          validateSopsFiles = opt lib.types.bool true;
          keepGenerations = opt lib.types.ints.unsigned 1;
          useTmpfs = opt lib.types.bool false;
          age = {
            keyFile = opt (lib.types.nullOr lib.types.str) null;
            generateKey = opt lib.types.bool false;
            sshKeyPaths = opt (lib.types.listOf lib.types.path) (hostKeys "ed25519");
          };
          gnupg = {
            home = opt (lib.types.nullOr lib.types.str) null;
            sshKeyPaths = opt (lib.types.listOf lib.types.path) (hostKeys "rsa");
          };
        };
        config = lib.mkIf (cfg.secrets != { }) {
          assertions = [
            {
              assertion =
                cfg.gnupg.home != null || cfg.gnupg.sshKeyPaths != [ ] || cfg.age.keyFile != null || cfg.age.sshKeyPaths != [ ];
              message = "No key source configured for sops. Either set services.openssh.enable or set sops.age.keyFile or sops.gnupg.home";
            }
            {
              assertion = !(cfg.gnupg.home != null && cfg.gnupg.sshKeyPaths != [ ]);
              message = "Exactly one of sops.gnupg.home and sops.gnupg.sshKeyPaths must be set";
            }
          ]
          ++ lib.concatLists (
            lib.mapAttrsToList (_: secret: [
              {
                # upstream's sopsFileHash reads the file while the
                # manifest is evaluated; here the assertion does
                assertion = secret.sopsFileHash != "" || !cfg.validateSopsFiles;
                message = "sops-nix stand-in: ${secret.name}: no sops file hash";
              }
              {
                assertion = secret.uid != null && secret.uid != 0 -> secret.owner == null;
                message = "In ${secret.name} exactly one of sops.owner and sops.uid must be set";
              }
              {
                assertion = secret.gid != null && secret.gid != 0 -> secret.group == null;
                message = "In ${secret.name} exactly one of sops.group and sops.gid must be set";
              }
            ]) cfg.secrets
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
    else if owner == "mic92/sops-nix" then
      sops-nix
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

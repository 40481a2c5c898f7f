# nixpkgs.* as in nixpkgs' nixos/modules/misc/nixpkgs.nix: the platform, the
# nixpkgs config and overlays, and the `pkgs` module argument, which is this
# fake nixpkgs imported with them (the real module imports nixpkgs the same
# way). nixpkgs.hostPlatform is elaborated with the real
# lib.systems.elaborate; without it, nixpkgs.system is read, which has no
# default, so a machine without a platform fails as NixOS does.
{
  config,
  options,
  lib,
  ...
}:
let
  cfg = config.nixpkgs;
  opt = options.nixpkgs;

  # nixpkgs.config merges definitions recursively (mergeConfig in the
  # upstream module); a definition may be a function of pkgs.
  configType = lib.mkOptionType {
    name = "nixpkgs-config";
    description = "nixpkgs config";
    check = x: builtins.isAttrs x || lib.isFunction x;
    merge =
      _loc: defs:
      lib.foldr (def: acc: lib.recursiveUpdate (if lib.isFunction def.value then def.value { } else def.value) acc) { } defs;
  };

  overlayType = lib.mkOptionType {
    name = "nixpkgs-overlay";
    description = "nixpkgs overlay";
    check = lib.isFunction;
    merge = lib.mergeOneOption;
  };

  platformType = lib.types.either lib.types.str lib.types.attrs;

  hostPlatform = if opt.hostPlatform.isDefined then cfg.hostPlatform else lib.systems.elaborate { inherit (cfg) system; };
  buildPlatform = if opt.buildPlatform.isDefined then cfg.buildPlatform else hostPlatform;
  isCross = !(lib.systems.equals hostPlatform buildPlatform);

  defaultPkgs = import ../../.. (
    {
      inherit (cfg) config overlays;
    }
    // (
      if isCross then
        {
          localSystem = buildPlatform;
          crossSystem = hostPlatform;
        }
      else
        { localSystem = hostPlatform; }
    )
  );
in
{
  options.nixpkgs = {
    pkgs = lib.mkOption {
      type = lib.types.pkgs or lib.types.attrs;
      description = "An evaluation of nixpkgs to use instead of importing it.";
    };
    config = lib.mkOption {
      type = configType;
      default = { };
      description = "The configuration of the Nix Packages collection.";
    };
    overlays = lib.mkOption {
      type = lib.types.listOf overlayType;
      default = [ ];
      description = "Overlays applied to nixpkgs.";
    };
    hostPlatform = lib.mkOption {
      type = platformType;
      apply = lib.systems.elaborate;
      description = "The platform the system will run on.";
    };
    buildPlatform = lib.mkOption {
      type = platformType;
      apply = lib.systems.elaborate;
      description = "The platform the system is built on.";
    };
    localSystem = lib.mkOption {
      type = lib.types.attrs;
      apply = lib.systems.elaborate;
      description = "Deprecated alternative to nixpkgs.buildPlatform.";
    };
    crossSystem = lib.mkOption {
      type = lib.types.nullOr lib.types.attrs;
      default = null;
      description = "Deprecated alternative to nixpkgs.hostPlatform.";
    };
    system = lib.mkOption {
      type = lib.types.str;
      description = "Deprecated alternative to nixpkgs.hostPlatform.";
    };
  };

  config._module.args.pkgs = if opt.pkgs.isDefined then cfg.pkgs.appendOverlays cfg.overlays else defaultPkgs;
}

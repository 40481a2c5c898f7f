# The options of nixpkgs' nixos/modules/misc/meta.nix (module metadata:
# maintainers, teams, documentation), which NixOS and home-manager import.
# Their values are only read by the manual, so the types are loose.
{ lib, ... }:
{
  options.meta = {
    maintainers = lib.mkOption {
      type = lib.types.listOf lib.types.raw;
      internal = true;
      default = [ ];
    };
    teams = lib.mkOption {
      type = lib.types.listOf lib.types.raw;
      internal = true;
      default = [ ];
    };
    # Every module may name its own documentation: definitions are kept
    # per file, as nixpkgs' docFile type does.
    doc = lib.mkOption {
      type = lib.types.mkOptionType {
        name = "docFile";
        check = x: lib.isPath x || lib.isString x;
        merge = _loc: defs: lib.listToAttrs (map (def: lib.nameValuePair (toString def.file) def.value) defs);
      };
      internal = true;
      default = { };
    };
    buildDocsInSandbox = lib.mkOption {
      type = lib.types.bool;
      internal = true;
      default = true;
    };
  };
}

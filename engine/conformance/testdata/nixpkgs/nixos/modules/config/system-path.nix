# environment.* as declared in nixpkgs:
#  - systemPackages, pathsToLink, extraOutputsToInstall
#    (nixos/modules/config/system-path.nix)
#  - etc (nixos/modules/system/etc/etc.nix: per file text or source, mode,
#    user, group, target, enable)
#  - variables, shellAliases, shells (nixos/modules/config/shells-environment.nix),
#    sessionVariables (nixos/modules/config/system-environment.nix), profiles.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  envVar = types.attrsOf (
    types.nullOr (
      types.oneOf [
        (types.listOf (types.oneOf [ types.int types.str types.path ]))
        types.int
        types.str
        types.path
      ]
    )
  );
  etcFile =
    { name, config, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        target = mkOption {
          type = types.str;
          default = name;
        };
        text = mkOption {
          type = types.nullOr types.lines;
          default = null;
        };
        source = mkOption { type = types.path; };
        mode = mkOption {
          type = types.str;
          default = "symlink";
        };
        uid = mkOption {
          type = types.int;
          default = 0;
        };
        gid = mkOption {
          type = types.int;
          default = 0;
        };
        user = mkOption {
          type = types.str;
          default = "+${toString config.uid}";
        };
        group = mkOption {
          type = types.str;
          default = "+${toString config.gid}";
        };
      };
    };
in
{
  options.environment = {
    systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    pathsToLink = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    extraOutputsToInstall = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    etc = mkOption {
      type = types.attrsOf (types.submodule etcFile);
      default = { };
    };
    variables = mkOption {
      type = envVar;
      default = { };
    };
    sessionVariables = mkOption {
      type = envVar;
      default = { };
    };
    shellAliases = mkOption {
      type = types.attrsOf (types.nullOr (types.either types.str types.path));
      default = { };
    };
    shells = mkOption {
      type = types.listOf (types.either types.shellPackage types.path);
      default = [ ];
    };
    profiles = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };
}

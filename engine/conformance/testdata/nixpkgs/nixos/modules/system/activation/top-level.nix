# system.build.toplevel as nixpkgs' nixos/modules/system/activation/top-level.nix
# guards it: evaluating it with a failed assertion throws
#   "\nFailed assertions:\n- <message>\n- ..."
# and every warning is printed with lib.warn. The system itself is a stub
# derivation named like NixOS names it (nixos-system-<hostName>-<version>);
# nothing is built.
{ config, lib, pkgs, ... }:
let
  failedAssertions = map (x: x.message) (lib.filter (x: !x.assertion) config.assertions);
  showWarnings = res: lib.foldr (w: x: lib.warn w x) res config.warnings;
  baseSystem = pkgs.stdenvNoCC.mkDerivation {
    name = "nixos-system-${config.system.name}-${config.system.nixos.label}";
  };
in
{
  options.system = {
    build = lib.mkOption {
      internal = true;
      default = { };
      type = lib.types.lazyAttrsOf lib.types.unspecified;
      description = "Attribute set of derivations used to set up the system.";
    };
    name = lib.mkOption {
      type = lib.types.str;
      default = if config.networking.hostName == "" then "unnamed" else config.networking.hostName;
      description = "The name of the system used in the toplevel derivation.";
    };
    extraDependencies = lib.mkOption {
      type = lib.types.listOf lib.types.pathInStore;
      default = [ ];
      description = "Paths that must be in the closure of the system.";
    };
  };

  config.system.build.toplevel =
    if failedAssertions != [ ] then
      throw "\nFailed assertions:\n${lib.concatStringsSep "\n" (map (x: "- ${x}") failedAssertions)}"
    else
      showWarnings baseSystem;
}

# system.stateVersion and system.nixos.* as in nixpkgs'
# nixos/modules/misc/version.nix. stateVersion defaults to the release, and
# its apply warns when the default is used, with the upstream text:
#   "system.stateVersion is not set, defaulting to ${v}. Read why this
#    matters on https://nixos.org/manual/nixos/stable/options.html#opt-system.stateVersion."
{ config, options, lib, ... }:
{
  options.system = {
    stateVersion = lib.mkOption {
      type = lib.types.str;
      default = config.system.nixos.release;
      apply =
        v:
        lib.warnIf (options.system.stateVersion.highestPrio == (lib.mkOptionDefault { }).priority)
          "system.stateVersion is not set, defaulting to ${v}. Read why this matters on https://nixos.org/manual/nixos/stable/options.html#opt-system.stateVersion."
          v;
      description = "The NixOS release the machine's stateful data is compatible with.";
    };
    nixos.release = lib.mkOption {
      readOnly = true;
      type = lib.types.str;
      default = lib.trivial.release;
      description = "The NixOS release.";
    };
    nixos.version = lib.mkOption {
      internal = true;
      type = lib.types.str;
      default = lib.trivial.release + lib.trivial.versionSuffix;
      description = "The full NixOS version.";
    };
    nixos.label = lib.mkOption {
      type = lib.types.strMatching "[a-zA-Z0-9:_\\.-]*";
      default = config.system.nixos.version;
      description = "The label of the system in the boot menu.";
    };
    configurationRevision = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "The Git revision of the flake this configuration was built from.";
    };
  };
}

# The options of nixpkgs' nixos/modules/misc/assertions.nix, which NixOS
# and home-manager (through pkgs.path + "/nixos/modules/misc/assertions.nix")
# import: a list of { assertion, message } and a list of warnings.
{ lib, ... }:
{
  options = {
    assertions = lib.mkOption {
      type = lib.types.listOf lib.types.unspecified;
      internal = true;
      default = [ ];
      description = "Conditions that must hold, each with the message shown when it does not.";
    };
    warnings = lib.mkOption {
      internal = true;
      default = [ ];
      type = lib.types.listOf lib.types.str;
      description = "Messages shown when the configuration is built.";
    };
  };
}

# security.sudo.* (nixpkgs' nixos/modules/security/sudo.nix).
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.security.sudo = {
    enable = mkOption {
      type = types.bool;
      default = true;
    };
    wheelNeedsPassword = mkOption {
      type = types.bool;
      default = true;
    };
    execWheelOnly = mkOption {
      type = types.bool;
      default = false;
    };
    extraConfig = mkOption {
      type = types.lines;
      default = "";
    };
    extraRules = mkOption {
      type = types.listOf types.attrs;
      default = [ ];
    };
  };
}

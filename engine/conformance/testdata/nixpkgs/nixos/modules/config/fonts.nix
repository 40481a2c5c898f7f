# fonts.* (nixpkgs' nixos/modules/config/fonts/fontconfig.nix and
# packages.nix), which home-manager's fontconfig module reads.
{ lib, ... }:
{
  options.fonts = {
    fontconfig.enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
    };
    packages = lib.mkOption {
      type = lib.types.listOf lib.types.path;
      default = [ ];
    };
    enableDefaultPackages = lib.mkOption {
      type = lib.types.bool;
      default = false;
    };
  };
}

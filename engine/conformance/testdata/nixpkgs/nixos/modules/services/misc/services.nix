# Small service modules of nixpkgs, with the options the fleet sets:
#  - services.qemuGuest (nixos/modules/virtualisation/qemu-guest-agent.nix)
#  - services.zerotierone (nixos/modules/services/networking/zerotierone.nix:
#    enable, joinNetworks, port, package, localConf); it opens its UDP port
#    in the firewall, as upstream does
#  - services.xserver.enable / videoDrivers (nixos/modules/services/x11/xserver.nix)
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  zt = config.services.zerotierone;
in
{
  options.services = {
    qemuGuest = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      package = lib.mkPackageOption pkgs [ "qemu_kvm" "ga" ] { };
    };
    zerotierone = {
      enable = lib.mkEnableOption "ZeroTierOne";
      joinNetworks = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      port = mkOption {
        type = types.port;
        default = 9993;
      };
      package = lib.mkPackageOption pkgs "zerotierone" { };
      localConf = mkOption {
        type = (pkgs.formats.json { }).type;
        default = { };
      };
    };
    xserver = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      videoDrivers = mkOption {
        type = types.listOf types.str;
        default = [ "modesetting" "fbdev" ];
      };
    };
  };

  config = lib.mkIf zt.enable {
    networking.firewall.allowedUDPPorts = [ zt.port ];
  };
}

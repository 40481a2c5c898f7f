# hardware.* and virtualisation.* the fleet's GPU machines set, as declared
# in nixpkgs:
#  - hardware.nvidia.* (nixos/modules/hardware/video/nvidia.nix: open is a
#    nullOr bool that has to be set for recent drivers, package,
#    nvidiaPersistenced, modesetting, powerManagement)
#  - hardware.graphics.* (nixos/modules/hardware/graphics.nix)
#  - hardware.nvidia-container-toolkit.enable
#    (nixos/modules/services/hardware/nvidia-container-toolkit)
#  - virtualisation.podman.* (nixos/modules/virtualisation/podman/default.nix)
# The nvidia module's own assertions (driver versions, PRIME) are not
# encoded: the driver is a stub without a version.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  bool = default: mkOption {
    type = types.bool;
    inherit default;
  };
in
{
  options = {
    hardware.nvidia = {
      open = mkOption {
        type = types.nullOr types.bool;
        default = null;
      };
      package = mkOption {
        type = types.package;
        default = config.boot.kernelPackages.nvidiaPackages.stable;
      };
      nvidiaPersistenced = bool false;
      nvidiaSettings = bool true;
      modesetting.enable = bool false;
      powerManagement.enable = bool false;
      powerManagement.finegrained = bool false;
    };
    hardware.graphics = {
      enable = bool false;
      enable32Bit = bool false;
      extraPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
    };
    hardware.nvidia-container-toolkit.enable = bool false;
    virtualisation.podman = {
      enable = bool false;
      dockerCompat = bool false;
      dockerSocket.enable = bool false;
      defaultNetwork.settings = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
    };
  };
}

# boot.* the fleet's machines set, as declared in nixpkgs:
#  - boot.tmp.* (nixos/modules/system/boot/tmp.nix)
#  - boot.kernelParams (a kernel parameter: no spaces outside double quotes),
#    boot.kernelModules, boot.initrd.(available)KernelModules,
#    boot.kernelPackages (nixos/modules/system/boot/kernel.nix)
#  - boot.kernel.sysctl (nixos/modules/config/sysctl.nix: a freeform
#    submodule of bool/str/int/null values)
#  - boot.loader.grub.*, boot.loader.efi.*, boot.loader.systemd-boot.enable
#    (nixos/modules/system/boot/loader/grub/grub.nix, .../efi.nix,
#    .../systemd-boot/systemd-boot.nix)
# Not encoded: grub's "You must set the option boot.loader.grub.devices ..."
# assertion and the root file system assertion of
# nixos/modules/tasks/filesystems.nix: both are satisfied by disko, of which
# only a stand-in is here.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  sysctlOption = lib.mkOptionType {
    name = "sysctl option value";
    check =
      val:
      let
        checkType = x: lib.isBool x || lib.isString x || lib.isInt x || x == null;
      in
      checkType val || (val._type or "" == "override" && checkType val.content);
    merge = loc: defs: lib.mergeOneOption loc (lib.filterOverrides defs);
  };
  kernelParam =
    types.strMatching ''([^"[:space:]]|"[^"]*")+''
    // {
      name = "kernelParam";
      description = "string, with spaces inside double quotes";
    };
  mirroredBoot = types.submodule {
    options = {
      path = mkOption { type = types.str; };
      devices = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      efiSysMountPoint = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
    };
  };
in
{
  options.boot = {
    tmp = {
      cleanOnBoot = mkOption {
        type = types.bool;
        default = false;
      };
      useTmpfs = mkOption {
        type = types.bool;
        default = false;
      };
    };
    kernelPackages = mkOption {
      default = pkgs.linuxPackages;
      type = types.raw;
    };
    kernelParams = mkOption {
      type = types.listOf kernelParam;
      default = [ ];
    };
    kernelModules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    extraModulePackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    blacklistedKernelModules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    initrd = {
      availableKernelModules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      kernelModules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      systemd.enable = mkOption {
        type = types.bool;
        default = false;
      };
    };
    kernel.sysctl = mkOption {
      type = types.submodule { freeformType = types.attrsOf sysctlOption; };
      default = { };
    };
    loader = {
      grub = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        device = mkOption {
          type = types.str;
          default = "";
        };
        devices = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        mirroredBoots = mkOption {
          type = types.listOf mirroredBoot;
          default = [ ];
        };
        efiSupport = mkOption {
          type = types.bool;
          default = false;
        };
        efiInstallAsRemovable = mkOption {
          type = types.bool;
          default = false;
        };
        useOSProber = mkOption {
          type = types.bool;
          default = false;
        };
      };
      efi = {
        canTouchEfiVariables = mkOption {
          type = types.bool;
          default = false;
        };
        efiSysMountPoint = mkOption {
          type = types.str;
          default = "/boot";
        };
      };
      systemd-boot.enable = mkOption {
        type = types.bool;
        default = false;
      };
    };
  };
}

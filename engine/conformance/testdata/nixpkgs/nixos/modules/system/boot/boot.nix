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
#  - fileSystems (nixos/modules/tasks/filesystems.nix) and boot.isContainer
#    (nixos/modules/virtualisation/container-config.nix)
# with the assertions, upstream text:
#  - nixos/modules/system/boot/stage-1.nix: "The ‘fileSystems’ option does
#    not specify your root file system."
#  - nixos/modules/system/boot/loader/grub/grub.nix (grub is enabled by
#    default): "You must set the option ‘boot.loader.grub.devices’ or
#    'boot.loader.grub.mirroredBoots' to make the system bootable.", no
#    duplicated devices, efiInstallAsRemovable needs efiSupport and no
#    canTouchEfiVariables, absolute boot paths and devices.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  grub = config.boot.loader.grub;
  efi = config.boot.loader.efi;
  fileSystem =
    { name, config, ... }:
    {
      options = {
        mountPoint = mkOption {
          type = types.str;
          default = name;
        };
        device = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
        label = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
        fsType = mkOption {
          type = types.str;
          default = "auto";
        };
        options = mkOption {
          type = types.nonEmptyListOf types.str;
          default = [ "defaults" ];
        };
        neededForBoot = mkOption {
          type = types.bool;
          default = false;
        };
      };
    };
  bootDeviceCounters = lib.foldr (device: attr: attr // { ${device} = (attr.${device} or 0) + 1; }) { } (
    lib.concatMap (args: args.devices) grub.mirroredBoots
  );
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
  options.fileSystems = mkOption {
    type = types.attrsOf (types.submodule fileSystem);
    default = { };
  };
  options.boot.isContainer = mkOption {
    type = types.bool;
    default = false;
  };
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

  config = lib.mkMerge [
    {
      assertions = lib.optional (!config.boot.isContainer) {
        assertion = lib.any (fs: fs.mountPoint == "/") (lib.attrValues config.fileSystems);
        message = "The ‘fileSystems’ option does not specify your root file system.";
      };
    }
    (lib.mkIf grub.enable {
      boot.loader.grub.devices = lib.optional (grub.device != "") grub.device;
      boot.loader.grub.mirroredBoots = lib.optionals (grub.devices != [ ]) [
        {
          path = "/boot";
          inherit (grub) devices;
          inherit (efi) efiSysMountPoint;
        }
      ];
      assertions = [
        {
          assertion = grub.mirroredBoots != [ ];
          message =
            "You must set the option ‘boot.loader.grub.devices’ or "
            + "'boot.loader.grub.mirroredBoots' to make the system bootable.";
        }
        {
          assertion =
            grub.efiSupport || lib.all (c: c < 2) (lib.mapAttrsToList (n: c: if n == "nodev" then 0 else c) bootDeviceCounters);
          message = "You cannot have duplicated devices in mirroredBoots";
        }
        {
          assertion = grub.efiInstallAsRemovable -> grub.efiSupport;
          message = "If you wish to to use boot.loader.grub.efiInstallAsRemovable, then turn on boot.loader.grub.efiSupport";
        }
        {
          assertion = grub.efiInstallAsRemovable -> !efi.canTouchEfiVariables;
          message = "If you wish to to use boot.loader.grub.efiInstallAsRemovable, then turn off boot.loader.efi.canTouchEfiVariables";
        }
      ]
      ++ lib.concatMap (
        args:
        [
          {
            assertion = args.devices != [ ];
            message = "A boot path cannot have an empty devices string in ${args.path}";
          }
          {
            assertion = lib.hasPrefix "/" args.path;
            message = "Boot paths must be absolute, not ${args.path}";
          }
          {
            assertion = if args.efiSysMountPoint == null then true else lib.hasPrefix "/" args.efiSysMountPoint;
            message = "EFI paths must be absolute, not ${args.efiSysMountPoint}";
          }
        ]
        ++ map (device: {
          assertion = device == "nodev" || lib.hasPrefix "/" device;
          message = "GRUB devices must be absolute paths, not ${device} in ${args.path}";
        }) args.devices
      ) grub.mirroredBoots;
    })
  ];
}

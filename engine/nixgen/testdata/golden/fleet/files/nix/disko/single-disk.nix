# The disk layout of every cloud machine: one disk, GPT, partitioned and
# formatted by disko when nixos-anywhere installs the machine.
#
# Hetzner's shared-vCPU types boot with legacy BIOS, GCE boots UEFI. With a
# BIOS boot partition and an ESP on the same disk, and grub installed for
# both (see the "cloud" feature), one layout serves every provider and a
# machine can move between them without a new disk configuration.
#
# disko's own module comes from the flake input, passed to modules as the
# `inputs` special argument (it has to be a special argument: an import
# cannot depend on config).
{
  config,
  lib,
  inputs,
  ...
}:
{
  imports = [ inputs.disko.nixosModules.disko ];

  options.fleet.disk.device = lib.mkOption {
    type = lib.types.str;
    default = "/dev/sda";
    example = "/dev/nvme0n1";
    description = "The block device to install on.";
  };

  config.disko.devices.disk.main = {
    type = "disk";
    device = config.fleet.disk.device;
    content = {
      type = "gpt";
      partitions = {
        bios = {
          size = "1M";
          type = "EF02";
        };
        ESP = {
          size = "512M";
          type = "EF00";
          content = {
            type = "filesystem";
            format = "vfat";
            mountpoint = "/boot";
            mountOptions = [ "umask=0077" ];
          };
        };
        root = {
          size = "100%";
          content = {
            type = "filesystem";
            format = "ext4";
            mountpoint = "/";
          };
        };
      };
    };
  };
}

# documentation.* (nixpkgs' nixos/modules/misc/documentation.nix), zramSwap.*
# (nixos/modules/config/zram.nix).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  bool = default: mkOption {
    type = types.bool;
    inherit default;
  };
in
{
  options = {
    documentation = {
      enable = bool true;
      man.enable = bool true;
      doc.enable = bool true;
      info.enable = bool true;
      dev.enable = bool false;
      nixos.enable = bool true;
    };
    zramSwap = {
      enable = bool false;
      memoryPercent = mkOption {
        type = types.int;
        default = 50;
      };
      algorithm = mkOption {
        type = types.either (types.enum [ "lzo" "lzo-rle" "lz4" "lz4hc" "842" "zstd" ]) types.str;
        default = "zstd";
      };
      priority = mkOption {
        type = types.int;
        default = 5;
      };
    };
  };
}

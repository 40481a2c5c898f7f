# nix.* as declared in nixpkgs:
#  - nix.enable, nix.package, nix.extraOptions, nix.nixPath, nix.channel.enable,
#    nix.distributedBuilds (nixos/modules/services/system/nix-daemon.nix,
#    nixos/modules/config/nix-channel.nix, nixos/modules/config/nix-remote-build.nix)
#  - nix.settings (nixos/modules/config/nix.nix): a freeform submodule of
#    Nix config atoms (null, bool, int, float, str, path, package) or lists of
#    them, with typed options for the settings NixOS knows (max-jobs is an int
#    or "auto", cores an int, sandbox a bool or "relaxed" ...)
#  - nix.gc.* (nixos/modules/services/misc/nix-gc.nix) and nix.optimise.*
#    (nixos/modules/services/misc/nix-optimise.nix), with their assertions
#    "nix.gc.automatic requires nix.enable" and
#    "nix.optimise.automatic requires nix.enable".
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.nix;
  confAtom =
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        types.package
      ]
    )
    // {
      description = "Nix config atom (null, bool, int, float, str, path or package)";
    };
  listOfStr = default: mkOption {
    type = types.listOf types.str;
    inherit default;
  };
in
{
  options.nix = {
    enable = mkOption {
      type = types.bool;
      default = true;
    };
    package = mkOption {
      type = types.package;
      default = pkgs.nix;
    };
    extraOptions = mkOption {
      type = types.lines;
      default = "";
    };
    nixPath = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    channel.enable = mkOption {
      type = types.bool;
      default = true;
    };
    distributedBuilds = mkOption {
      type = types.bool;
      default = false;
    };
    buildMachines = mkOption {
      type = types.listOf types.attrs;
      default = [ ];
    };
    settings = mkOption {
      default = { };
      type = types.submodule {
        freeformType = types.attrsOf (types.either confAtom (types.listOf confAtom));
        options = {
          max-jobs = mkOption {
            type = types.either types.int (types.enum [ "auto" ]);
            default = "auto";
          };
          auto-optimise-store = mkOption {
            type = types.bool;
            default = false;
          };
          cores = mkOption {
            type = types.int;
            default = 0;
          };
          sandbox = mkOption {
            type = types.either types.bool (types.enum [ "relaxed" ]);
            default = true;
          };
          extra-sandbox-paths = listOfStr [ ];
          # No defaults: nix.nix defines cache.nixos.org below, so that a
          # machine's own caches add to it.
          substituters = mkOption { type = types.listOf types.str; };
          trusted-substituters = listOfStr [ ];
          trusted-public-keys = mkOption { type = types.listOf types.str; };
          require-sigs = mkOption {
            type = types.bool;
            default = true;
          };
          trusted-users = listOfStr [ "root" ];
          system-features = listOfStr [ ];
          allowed-users = listOfStr [ "*" ];
        };
      };
    };
    gc = {
      automatic = mkOption {
        type = types.bool;
        default = false;
      };
      dates = mkOption {
        type = types.either types.singleLineStr (types.listOf types.str);
        default = "03:15";
      };
      randomizedDelaySec = mkOption {
        type = types.singleLineStr;
        default = "0";
      };
      persistent = mkOption {
        type = types.bool;
        default = true;
      };
      options = mkOption {
        type = types.singleLineStr;
        default = "";
      };
    };
    optimise = {
      automatic = mkOption {
        type = types.bool;
        default = false;
      };
      dates = mkOption {
        type = types.either types.singleLineStr (types.listOf types.str);
        default = [ "03:45" ];
      };
      randomizedDelaySec = mkOption {
        type = types.singleLineStr;
        default = "1800";
      };
      persistent = mkOption {
        type = types.bool;
        default = true;
      };
    };
  };

  # as nixos/modules/config/nix.nix defines them (config = mkIf cfg.enable
  # there)
  config.nix.settings = lib.mkIf cfg.enable {
    substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
    trusted-public-keys = [ "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=" ];
  };
  config.assertions = [
    {
      assertion = cfg.gc.automatic -> cfg.enable;
      message = "nix.gc.automatic requires nix.enable";
    }
    {
      assertion = cfg.optimise.automatic -> cfg.enable;
      message = "nix.optimise.automatic requires nix.enable";
    }
  ];
}

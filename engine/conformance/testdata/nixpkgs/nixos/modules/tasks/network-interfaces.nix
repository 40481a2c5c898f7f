# networking.* as declared in nixpkgs' nixos/modules/tasks/network-interfaces.nix
# (hostName with its RFC 1035 check, domain, search, hosts from
# nixos/modules/config/networking.nix, useNetworkd, useDHCP, nameservers)
# and nixos/modules/services/networking/firewall.nix (enable, ports as
# types.port, port ranges, trusted interfaces, ping).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  portRange = types.submodule {
    options = {
      from = mkOption { type = types.port; };
      to = mkOption { type = types.port; };
    };
  };
  firewallPorts = {
    allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      apply = lib.unique;
    };
    allowedUDPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      apply = lib.unique;
    };
    allowedTCPPortRanges = mkOption {
      type = types.listOf portRange;
      default = [ ];
    };
    allowedUDPPortRanges = mkOption {
      type = types.listOf portRange;
      default = [ ];
    };
  };
in
{
  options.networking = {
    hostName = mkOption {
      default = "nixos";
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
    };
    domain = mkOption {
      default = null;
      type = types.nullOr (types.strMatching "^[[:alnum:]]([[:alnum:].-]{0,251}[[:alnum:]])?$");
    };
    search = mkOption {
      default = [ ];
      type = types.listOf types.str;
    };
    hosts = mkOption {
      type = types.attrsOf (types.listOf types.str);
      default = { };
    };
    nameservers = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    useNetworkd = mkOption {
      type = types.bool;
      default = false;
    };
    useDHCP = mkOption {
      type = types.bool;
      default = true;
    };
    enableIPv6 = mkOption {
      type = types.bool;
      default = true;
    };
    firewall = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      allowPing = mkOption {
        type = types.bool;
        default = true;
      };
      trustedInterfaces = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      logRefusedConnections = mkOption {
        type = types.bool;
        default = true;
      };
      interfaces = mkOption {
        type = types.attrsOf (types.submodule { options = firewallPorts; });
        default = { };
      };
    }
    // firewallPorts;
  };
}

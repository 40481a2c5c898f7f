# ZeroTier network controller for the fleet's private network.
#
# zerotierone already contains a network controller; what it lacks is a
# declarative way to say which network it serves and who may join. This
# module creates the network and authorizes the listed members through the
# controller's local JSON API every time the service starts, so a
# reinstalled controller comes back with the same network and members
# instead of waiting for someone to authorize them by hand.
#
# The options are set from features/zerotier.star (network and members) and
# from cinnabar's machine configuration (enable).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.fleet.zerotier.controller;
  api = "http://127.0.0.1:9993/controller/network/${cfg.networkId}";

  network = builtins.toJSON {
    inherit (cfg) name;
    private = true;
    v4AssignMode.zt = true;
    routes = [
      {
        target = cfg.route;
        via = null;
      }
    ];
  };

  member =
    m:
    builtins.toJSON {
      authorized = true;
      ipAssignments = [ m.ip ];
    };

  authorize = name: m: ''
    echo "authorizing ${name} (${m.address}, ${m.ip})"
    curl -fsS -H "$auth" -X POST -d ${lib.escapeShellArg (member m)} ${api}/member/${m.address} >/dev/null
  '';
in
{
  options.fleet.zerotier.controller = {
    enable = lib.mkEnableOption "the ZeroTier network controller of the fleet";

    networkId = lib.mkOption {
      type = lib.types.strMatching "[0-9a-f]{16}";
      description = ''
        The network to serve. Its first ten hex digits must be this
        machine's ZeroTier node id: a controller can only serve networks
        named after itself.
      '';
    };

    name = lib.mkOption {
      type = lib.types.str;
      default = "fleet";
      description = "Human-readable network name shown by zerotier-cli.";
    };

    route = lib.mkOption {
      type = lib.types.str;
      default = "10.147.17.0/24";
      description = "The managed route pushed to members.";
    };

    members = lib.mkOption {
      type = lib.types.attrsOf (
        lib.types.submodule {
          options = {
            address = lib.mkOption {
              type = lib.types.strMatching "[0-9a-f]{10}";
              description = "The member's ZeroTier node id.";
            };
            ip = lib.mkOption {
              type = lib.types.str;
              description = "The fixed address the member gets on the network.";
            };
          };
        }
      );
      default = { };
      description = "Members to authorize, by machine name.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.services.zerotierone.enable;
        message = "fleet.zerotier.controller needs services.zerotierone.enable";
      }
    ];

    systemd.services.zerotier-controller = {
      description = "Create the ZeroTier network and authorize its members";
      after = [ "zerotierone.service" ];
      requires = [ "zerotierone.service" ];
      partOf = [ "zerotierone.service" ];
      wantedBy = [ "multi-user.target" ];
      path = [
        pkgs.coreutils
        pkgs.curl
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        node=$(cut -c1-10 /var/lib/zerotier-one/identity.public)
        if [ "$node" != "${builtins.substring 0 10 cfg.networkId}" ]; then
          echo "network ${cfg.networkId} does not belong to this controller (node $node)" >&2
          exit 1
        fi

        auth="X-ZT1-Auth: $(cat /var/lib/zerotier-one/authtoken.secret)"

        # The API answers only once zerotierone has loaded its identity.
        for _ in $(seq 30); do
          if curl -fsS -H "$auth" http://127.0.0.1:9993/status >/dev/null; then
            break
          fi
          sleep 1
        done

        curl -fsS -H "$auth" -X POST -d ${lib.escapeShellArg network} ${api} >/dev/null
        ${lib.concatStrings (lib.mapAttrsToList authorize cfg.members)}
      '';
    };
  };
}

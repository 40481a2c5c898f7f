# services.openssh.* and users.users.<name>.openssh.authorizedKeys.* as
# nixpkgs' nixos/modules/services/networking/ssh/sshd.nix declares them.
# settings is the upstream submodule: freeform sshd_config keys (the
# settingsFormat type: atoms or lists of atoms) plus typed options for the
# keys NixOS knows (PermitRootLogin is an enum, PasswordAuthentication a bool
# ...). With the daemon enabled, as upstream: the sshd system user and
# group, and the listening ports opened when openFirewall is set.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.openssh;

  atom = types.nullOr (
    types.oneOf [
      types.bool
      types.int
      types.str
    ]
  );
  settingsType = types.attrsOf (types.either atom (types.listOf atom));

  nullOrListOfStr = default: mkOption {
    type = types.nullOr (types.listOf types.str);
    inherit default;
  };

  userOptions = {
    options.openssh.authorizedKeys = {
      keys = mkOption {
        type = types.listOf types.singleLineStr;
        default = [ ];
        description = "Verbatim OpenSSH public keys added to the user's authorized keys.";
      };
      keyFiles = mkOption {
        type = types.listOf types.path;
        default = [ ];
        description = "Files each containing one OpenSSH public key.";
      };
    };
  };
in
{
  options = {
    services.openssh = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      package = lib.mkPackageOption pkgs "openssh" { };
      startWhenNeeded = mkOption {
        type = types.bool;
        default = false;
      };
      allowSFTP = mkOption {
        type = types.bool;
        default = true;
      };
      sftpServerExecutable = mkOption {
        type = types.str;
      };
      sftpFlags = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      ports = mkOption {
        type = types.listOf types.port;
        default = [ 22 ];
      };
      openFirewall = mkOption {
        type = types.bool;
        default = true;
      };
      listenAddresses = mkOption {
        type = types.listOf (
          types.submodule {
            options = {
              addr = mkOption {
                type = types.nullOr types.str;
                default = null;
              };
              port = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
            };
          }
        );
        default = [ ];
      };
      hostKeys = mkOption {
        type = types.listOf types.attrs;
        default = [
          {
            type = "rsa";
            bits = 4096;
            path = "/etc/ssh/ssh_host_rsa_key";
          }
          {
            type = "ed25519";
            path = "/etc/ssh/ssh_host_ed25519_key";
          }
        ];
      };
      banner = mkOption {
        type = types.nullOr types.lines;
        default = null;
      };
      authorizedKeysFiles = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      authorizedKeysInHomedir = mkOption {
        type = types.bool;
        default = true;
      };
      authorizedKeysCommand = mkOption {
        type = types.str;
        default = "none";
      };
      authorizedKeysCommandUser = mkOption {
        type = types.str;
        default = "nobody";
      };
      settings = mkOption {
        default = { };
        type = types.submodule {
          freeformType = settingsType;
          options = {
            AuthorizedPrincipalsFile = mkOption {
              type = types.nullOr types.str;
              default = "none";
            };
            LogLevel = mkOption {
              type = types.nullOr (
                types.enum [
                  "QUIET"
                  "FATAL"
                  "ERROR"
                  "INFO"
                  "VERBOSE"
                  "DEBUG"
                  "DEBUG1"
                  "DEBUG2"
                  "DEBUG3"
                ]
              );
              default = "INFO";
            };
            UsePAM = mkOption {
              type = types.nullOr types.bool;
              default = true;
            };
            UseDns = mkOption {
              type = types.nullOr types.bool;
              default = false;
            };
            X11Forwarding = mkOption {
              type = types.nullOr types.bool;
              default = false;
            };
            PasswordAuthentication = mkOption {
              type = types.nullOr types.bool;
              default = true;
            };
            PermitRootLogin = mkOption {
              type = types.nullOr (
                types.enum [
                  "yes"
                  "without-password"
                  "prohibit-password"
                  "forced-commands-only"
                  "no"
                ]
              );
              default = "prohibit-password";
            };
            KbdInteractiveAuthentication = mkOption {
              type = types.nullOr types.bool;
              default = true;
            };
            GatewayPorts = mkOption {
              type = types.nullOr types.str;
              default = "no";
            };
            KexAlgorithms = nullOrListOfStr [
              "mlkem768x25519-sha256"
              "sntrup761x25519-sha512"
              "sntrup761x25519-sha512@openssh.com"
              "curve25519-sha256"
              "curve25519-sha256@libssh.org"
              "diffie-hellman-group-exchange-sha256"
            ];
            Macs = nullOrListOfStr [
              "hmac-sha2-512-etm@openssh.com"
              "hmac-sha2-256-etm@openssh.com"
              "umac-128-etm@openssh.com"
            ];
            Ciphers = nullOrListOfStr [
              "chacha20-poly1305@openssh.com"
              "aes256-gcm@openssh.com"
              "aes128-gcm@openssh.com"
              "aes256-ctr"
              "aes192-ctr"
              "aes128-ctr"
            ];
            StrictModes = mkOption {
              type = types.nullOr types.bool;
              default = true;
            };
            AllowUsers = nullOrListOfStr null;
            DenyUsers = nullOrListOfStr null;
            AllowGroups = nullOrListOfStr null;
            DenyGroups = nullOrListOfStr null;
            PrintMotd = mkOption {
              type = types.nullOr types.bool;
              default = false;
            };
          };
        };
      };
      extraConfig = mkOption {
        type = types.lines;
        default = "";
      };
      moduliFile = mkOption {
        type = types.path;
      };
    };

    users.users = mkOption {
      type = types.attrsOf (types.submodule userOptions);
    };
  };

  config = lib.mkIf cfg.enable {
    users.users.sshd = {
      isSystemUser = true;
      group = "sshd";
      description = "SSH privilege separation user";
    };
    users.groups.sshd = { };
    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall cfg.ports;
  };
}

# programs.<shell>.* for the shells users-groups.nix checks, as declared in
# nixpkgs' nixos/modules/programs/zsh/zsh.nix, fish.nix, xonsh.nix and
# bash/bash.nix (the options the fleet and the login-shell check use), and
# programs.ssh.* (nixos/modules/programs/ssh.nix).
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  enable = name: lib.mkEnableOption name;
in
{
  options.programs = {
    zsh = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      enableCompletion = mkOption {
        type = types.bool;
        default = true;
      };
      enableBashCompletion = enable "bash completion";
      autosuggestions.enable = enable "zsh-autosuggestions";
      syntaxHighlighting.enable = enable "zsh-syntax-highlighting";
      interactiveShellInit = mkOption {
        type = types.lines;
        default = "";
      };
      shellInit = mkOption {
        type = types.lines;
        default = "";
      };
      promptInit = mkOption {
        type = types.lines;
        default = "";
      };
    };
    fish.enable = mkOption {
      type = types.bool;
      default = false;
    };
    xonsh.enable = mkOption {
      type = types.bool;
      default = false;
    };
    bash = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      completion.enable = mkOption {
        type = types.bool;
        default = true;
      };
    };
    ssh = {
      package = lib.mkPackageOption pkgs "openssh" { };
      startAgent = enable "the ssh agent";
      extraConfig = mkOption {
        type = types.lines;
        default = "";
      };
      setXAuthLocation = mkOption {
        type = types.bool;
        default = false;
      };
      knownHosts = mkOption {
        type = types.attrsOf (
          types.submodule (
            { name, ... }:
            {
              options = {
                hostNames = mkOption {
                  type = types.listOf types.str;
                  default = [ name ];
                };
                publicKey = mkOption {
                  type = types.nullOr types.str;
                  default = null;
                };
                publicKeyFile = mkOption {
                  type = types.nullOr types.path;
                  default = null;
                };
                certAuthority = mkOption {
                  type = types.bool;
                  default = false;
                };
              };
            }
          )
        );
        default = { };
      };
    };
  };
}

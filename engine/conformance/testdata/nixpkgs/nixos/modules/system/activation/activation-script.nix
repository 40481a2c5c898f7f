# system.activationScripts and system.userActivationScripts as declared in
# nixpkgs' nixos/modules/system/activation/activation-script.nix: a script is
# a string or { text, deps, supportsDryActivation }.
{ lib, ... }:
let
  scriptType =
    withDry:
    let
      scriptOptions = {
        deps = lib.mkOption {
          type = lib.types.listOf lib.types.str;
          default = [ ];
          description = "List of dependencies. The script will run after these.";
        };
        text = lib.mkOption {
          type = lib.types.lines;
          description = "The content of the script.";
        };
      }
      // lib.optionalAttrs withDry {
        supportsDryActivation = lib.mkOption {
          type = lib.types.bool;
          default = false;
          description = "Whether this script supports dry activation.";
        };
      };
    in
    lib.types.either lib.types.str (lib.types.submodule { options = scriptOptions; });
in
{
  options.system = {
    activationScripts = lib.mkOption {
      default = { };
      type = lib.types.attrsOf (scriptType true);
      apply = set: set;
      description = "Snippets of shell code run on activation.";
    };
    userActivationScripts = lib.mkOption {
      default = { };
      type = lib.types.attrsOf (scriptType false);
      description = "Snippets of shell code run per user on activation.";
    };
  };
}

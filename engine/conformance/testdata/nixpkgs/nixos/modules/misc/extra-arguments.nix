# The `utils` module argument of nixpkgs' nixos/modules/misc/extra-arguments.nix
# (nixos/lib/utils.nix), with the functions the modules evaluated here use.
{ lib, ... }:
{
  config._module.args.utils = {
    # nixos/lib/utils.nix: escapeSystemdPath
    escapeSystemdPath =
      s: lib.replaceStrings [ "/" "-" " " ] [ "-" "\\x2d" "\\x20" ] (lib.removePrefix "/" s);
    toShellPath =
      shell: if lib.types.shellPackage.check shell then "/run/current-system/sw${shell.shellPath}" else shell;
  };
}

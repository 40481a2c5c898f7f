# lib.nixosSystem of the fake nixpkgs, after nixpkgs' nixos/lib/eval-config.nix:
# the real lib.evalModules, class "nixos", over the machine's modules and the
# schema of ../modules/module-list.nix, with the flake's specialArgs and
# modulesPath. The result is what NixOS returns: the evalModules result with
# pkgs.
lib:
{
  modules,
  specialArgs ? { },
  system ? null,
  extraModules ? [ ],
  ...
}:
let
  baseModules = import ../modules/module-list.nix;
  eval = lib.evalModules {
    class = "nixos";
    specialArgs = {
      modulesPath = toString ../modules;
    }
    // specialArgs;
    modules =
      baseModules
      ++ extraModules
      ++ modules
      ++ [
        {
          _module.args = {
            inherit baseModules extraModules modules;
          };
        }
      ]
      ++ lib.optional (system != null) { nixpkgs.system = lib.mkDefault system; };
  };
in
eval // { inherit (eval._module.args) pkgs; }

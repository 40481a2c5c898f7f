# A stand-in for nixpkgs' top-level default.nix: `import nixpkgs { ... }`
# with the arguments NixOS, nix-darwin, home-manager and fleet's trees pass.
# The packages are stubs (pkgs.nix); lib is the real nixpkgs lib.
{
  system ? null,
  localSystem ? { inherit system; },
  crossSystem ? null,
  overlays ? [ ],
  crossOverlays ? [ ],
  config ? { },
  ...
}:
import ./pkgs.nix {
  inherit
    localSystem
    crossSystem
    overlays
    config
    ;
}

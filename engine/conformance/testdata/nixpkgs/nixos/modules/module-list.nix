# The NixOS option schema of the conformance tier: every module here stands
# in for the nixpkgs module named in its header, declaring the options (with
# their upstream types) and the assertions fleet's trees can trigger. There
# is no freeform type at the root, so an option none of them (nor
# home-manager's and agenix's real modules) declares is an error, as in NixOS.
[
  ./misc/assertions.nix
  ./misc/meta.nix
  ./misc/nixpkgs.nix
  ./misc/extra-arguments.nix
  ./misc/version.nix
  ./misc/documentation.nix
  ./system/activation/top-level.nix
  ./system/activation/activation-script.nix
  ./system/boot/boot.nix
  ./system/systemd.nix
  ./config/users-groups.nix
  ./config/locale.nix
  ./config/nix.nix
  ./config/system-path.nix
  ./config/fonts.nix
  ./tasks/network-interfaces.nix
  ./programs/shells.nix
  ./security/sudo.nix
  ./services/networking/ssh/sshd.nix
  ./services/monitoring/prometheus/default.nix
  ./services/misc/services.nix
  ./hardware/hardware.nix
]

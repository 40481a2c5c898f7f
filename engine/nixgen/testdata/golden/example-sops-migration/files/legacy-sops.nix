# sops-nix, kept for the secrets of this machine that have not moved to
# fleet yet (their names and the sops file are in fleet.star, in the
# machine's nixos options). Delete this file, the feature that lists it
# and the input once the last one has moved.
#
# sops-nix and agenix (which fleet's secrets use) do not collide: sops-nix
# declares sops.*, decrypts into /run/secrets (a link into /run/secrets.d)
# with the activation script setupSecrets or the unit
# sops-install-secrets; agenix declares age.*, decrypts into /run/agenix
# (a link into /run/agenix.d) with the activation scripts agenixInstall,
# agenixNewGeneration and agenixChown or the unit agenix-install-secrets.
# Both may read the same host key; neither writes it.
{ inputs, ... }:
{
  imports = [ inputs.sops-nix.nixosModules.sops ];

  # The host's ed25519 key, as agenix's age.identityPaths has it. sops-nix
  # takes it from services.openssh.hostKeys too; naming it keeps the two
  # from drifting apart if the host keys ever change.
  sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
}

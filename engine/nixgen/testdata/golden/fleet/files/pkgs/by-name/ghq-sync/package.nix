# ghq-sync: fetch every repository under the ghq root, a few at a time, so
# that a laptop that was closed for a week is current before going offline
# again.
{
  lib,
  writeShellApplication,
  findutils,
  ghq,
  git,
}:
writeShellApplication {
  name = "ghq-sync";
  runtimeInputs = [
    findutils
    ghq
    git
  ];
  text = ''
    jobs="''${GHQ_SYNC_JOBS:-8}"

    # Fetch only: never touch a working tree someone may be in the middle
    # of. Failures (a deleted upstream, no network for one host) are
    # reported and do not stop the others. The single quotes are meant:
    # $1 is expanded by the inner sh, once per repository.
    # shellcheck disable=SC2016
    ghq list --full-path |
      xargs -P "$jobs" -I {} sh -c 'git -C "$1" fetch --all --prune --quiet || echo "ghq-sync: $1 failed" >&2' _ {}
  '';
  meta = {
    description = "Fetch all repositories under the ghq root in parallel";
    license = lib.licenses.mit;
    mainProgram = "ghq-sync";
    platforms = lib.platforms.unix;
  };
}

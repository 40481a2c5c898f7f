{ lib, ... }:
{
  # The values feature sets every kind of value under fleet.*: an option
  # that takes them as they are, so that NixOS evaluates them.
  options.fleet = lib.mkOption {
    type = lib.types.raw;
    description = "Values of every kind, for fleet's tests.";
  };
  config.environment.etc."fleet-extra".text = "from a hand-written module";
}

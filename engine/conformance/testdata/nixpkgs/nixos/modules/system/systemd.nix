# systemd.{services,sockets,timers,paths} and systemd.user.* with the unit
# options of nixpkgs' nixos/lib/systemd-unit-options.nix (dependencies,
# unitConfig/serviceConfig/... as attribute sets of systemd option values,
# script and its hooks, environment, path, restartTriggers ...), and
# systemd.sysusers.enable (nixos/modules/system/boot/systemd/sysusers.nix),
# services.userborn.enable (nixos/modules/services/system/userborn.nix),
# which agenix reads.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;

  # upstream: unitOption, a value of a systemd directive; lists concatenate.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    check =
      x:
      let
        atom = v: lib.isBool v || lib.isInt v || lib.isString v || lib.isPath v || lib.isDerivation v || lib.isStringLike v;
      in
      atom x || (lib.isList x && lib.all atom x);
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.any (def: lib.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };
  unitConfigOption = mkOption {
    type = types.attrsOf unitOption;
    default = { };
  };
  strList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  lines = mkOption {
    type = types.lines;
    default = "";
  };

  commonOptions = {
    enable = mkOption {
      type = types.bool;
      default = true;
    };
    description = mkOption {
      type = types.singleLineStr;
      default = "";
    };
    documentation = strList;
    requires = strList;
    requisite = strList;
    wants = strList;
    upholds = strList;
    after = strList;
    before = strList;
    bindsTo = strList;
    partOf = strList;
    conflicts = strList;
    wantedBy = strList;
    requiredBy = strList;
    upheldBy = strList;
    aliases = strList;
    onFailure = strList;
    onSuccess = strList;
    startLimitBurst = mkOption { type = types.int; };
    startLimitIntervalSec = mkOption { type = types.int; };
    unitConfig = unitConfigOption;
    restartTriggers = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    reloadTriggers = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    overrideStrategy = mkOption {
      type = types.enum [
        "asDropinIfExists"
        "asDropin"
      ];
      default = "asDropinIfExists";
    };
  };

  serviceOptions = commonOptions // {
    environment = mkOption {
      type = types.attrsOf (
        types.nullOr (
          types.oneOf [
            types.str
            types.path
            types.package
          ]
        )
      );
      default = { };
    };
    path = mkOption {
      type = types.listOf (types.oneOf [ types.package types.str ]);
      default = [ ];
    };
    serviceConfig = unitConfigOption;
    script = lines;
    scriptArgs = mkOption {
      type = types.str;
      default = "";
    };
    preStart = lines;
    postStart = lines;
    reload = lines;
    preStop = lines;
    postStop = lines;
    restartIfChanged = mkOption {
      type = types.bool;
      default = true;
    };
    reloadIfChanged = mkOption {
      type = types.bool;
      default = false;
    };
    stopIfChanged = mkOption {
      type = types.bool;
      default = true;
    };
    startAt = mkOption {
      type = types.either types.str (types.listOf types.str);
      default = [ ];
    };
    confinement.enable = lib.mkEnableOption "confinement";
  };

  unitsOf =
    extra:
    mkOption {
      default = { };
      type = types.attrsOf (types.submodule { options = commonOptions // extra; });
    };

  services = mkOption {
    default = { };
    type = types.attrsOf (types.submodule { options = serviceOptions; });
  };
  units = {
    inherit services;
    sockets = unitsOf {
      socketConfig = unitConfigOption;
      listenStreams = strList;
      listenDatagrams = strList;
    };
    timers = unitsOf { timerConfig = unitConfigOption; };
    paths = unitsOf { pathConfig = unitConfigOption; };
    targets = unitsOf { };
    tmpfiles.rules = strList;
  };
in
{
  options = {
    systemd = units // {
      package = lib.mkPackageOption pkgs "systemd" { };
      user = units;
      sysusers.enable = lib.mkEnableOption "systemd-sysusers";
    };
    services.userborn.enable = lib.mkEnableOption "userborn";
  };
}

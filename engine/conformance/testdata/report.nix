# One machine's conformance report: plain data only (strings, numbers,
# lists, attribute sets), so that `nix-instantiate --eval --strict --json`
# prints it. Every part is evaluated under builtins.tryEval: a part that
# throws (a failed assertion in homeManagerConfiguration, a type error in an
# option) is reported as { ok = false; } and the test evaluates that part
# alone (only = "<part>") to show Nix's own error message.
{
  upstream,
  nixpkgs,
  tree,
  standInAttrs ? { },
  machine,
  # "nixos" or "darwin"
  class,
  # users.users entries to report (the others are only named)
  users ? [ ],
  # option paths whose values the test compares with the .star files
  declared ? [ ],
  # null: everything, guarded; "system" or "home:<name>": that part, unguarded
  only ? null,
}:
let
  t = import ./inputs.nix {
    inherit
      upstream
      nixpkgs
      tree
      standInAttrs
      ;
  };
  inherit (t) lib outputs;

  guard =
    x:
    let
      r = builtins.tryEval (builtins.deepSeq x x);
    in
    if r.success then
      {
        ok = true;
        value = r.value;
      }
    else
      { ok = false; };

  failed = c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);

  # Store paths and outPaths as strings: a path value in the JSON output
  # would be copied to the store.
  str = x: if x == null then null else toString x;

  pkg = p: {
    name = p.name or null;
    pname = p.pname or null;
    # not "outPath": toJSON prints an attribute set with one as that string
    out = str (p.outPath or null);
    attr = p.stubAttrPath or null;
  };

  # A value the .star files declared: plain data is compared as is; a
  # derivation by its stub attribute path.
  plain =
    v:
    if lib.isDerivation v then
      { pkg = pkg v; }
    else if builtins.isList v then
      map plain v
    else if builtins.isAttrs v then
      lib.mapAttrs (_: plain) v
    else if builtins.isPath v then
      toString v
    else if builtins.isFunction v then
      "<function>"
    else
      v;

  configuration =
    if class == "nixos" then outputs.nixosConfigurations.${machine} else outputs.darwinConfigurations.${machine};
  cfg = configuration.config;
  opts = configuration.options;

  user = _: u: {
    name = u.name;
    uid = u.uid or null;
    description = u.description or null;
    isNormalUser = u.isNormalUser or null;
    isSystemUser = u.isSystemUser or null;
    group = u.group or null;
    extraGroups = u.extraGroups or null;
    home = str (u.home or null);
    shell = if lib.isDerivation (u.shell or null) then pkg u.shell else str (u.shell or null);
    hashedPassword = u.hashedPassword or null;
    hashedPasswordFile = u.hashedPasswordFile or null;
    password = u.password or null;
    initialPassword = u.initialPassword or null;
    initialHashedPassword = u.initialHashedPassword or null;
    keys = u.openssh.authorizedKeys.keys or [ ];
    keyFiles = map toString (u.openssh.authorizedKeys.keyFiles or [ ]);
  };

  home = c: o: system: {
    inherit system;
    username = c.home.username;
    homeDirectory = str c.home.homeDirectory;
    stateVersion = c.home.stateVersion;
    packages = map pkg c.home.packages;
    # files whose definitions make up home.packages: a module that
    # reached home-manager as an imported function has lost its file
    packagesFiles = if o == null then [ ] else map toString o.home.packages.files;
    failedAssertions = failed c;
    warnings = c.warnings;
  };

  hmUsers = cfg.home-manager.users or { };
  hmOptions = u: opts.home-manager.users.valueMeta.attrs.${u}.configuration.options or null;

  system = {
    failedAssertions = failed cfg;
    warnings = cfg.warnings;
    # NixOS: what `nix build .#nixosConfigurations.<m>.config.system.build.toplevel`
    # evaluates first; it throws "Failed assertions" when one fails.
    toplevel = if class == "nixos" && failed cfg == [ ] then cfg.system.build.toplevel.name else null;
    hostName = cfg.networking.hostName;
    hostPlatform = cfg.nixpkgs.hostPlatform.system;
    stateVersion = cfg.system.stateVersion;
    # the files of the definitions that win, and their priority (100 is a
    # plain definition, 50 lib.mkForce)
    stateVersionFiles = map (d: toString d.file) opts.system.stateVersion.definitionsWithLocations;
    stateVersionPriority = opts.system.stateVersion.highestPrio;
    sshEnable = cfg.services.openssh.enable or null;
    mutableUsers = cfg.users.mutableUsers or null;
    knownUsers = cfg.users.knownUsers or null;
    primaryUser = cfg.system.primaryUser or null;
    userNames = lib.attrNames cfg.users.users;
    users = lib.mapAttrs user (lib.filterAttrs (n: _: lib.elem n users) cfg.users.users);
    ageSecrets = lib.mapAttrs (_: s: {
      file = toString s.file;
      inherit (s)
        name
        path
        owner
        group
        mode
        ;
    }) (cfg.age.secrets or { });
    identityPaths = map toString (cfg.age.identityPaths or [ ]);
    homes = lib.mapAttrs (u: c: home c (hmOptions u) null) hmUsers;
    declared = map (p: {
      path = p;
      value = plain (lib.attrByPath (lib.splitString "\t" p) null cfg);
    }) declared;
  };

  # the homeConfigurations of this machine: "<user>@<machine>"
  homes = lib.filter (lib.hasSuffix "@${machine}") (lib.attrNames (outputs.homeConfigurations or { }));

  standalone =
    name:
    let
      hc = outputs.homeConfigurations.${name};
    in
    home hc.config hc.options hc.pkgs.stdenv.hostPlatform.system;

  secretRules = lib.mapAttrs (_: r: r.publicKeys or [ ]) (
    if builtins.pathExists (tree + "/secrets.nix") then import (tree + "/secrets.nix") else { }
  );
in
if only == null then
  {
    system = guard system;
    homes = lib.genAttrs homes (name: guard (standalone name));
    secretRules = guard secretRules;
  }
else if only == "system" then
  builtins.deepSeq system system
else
  let
    name = lib.removePrefix "home:" only;
  in
  builtins.deepSeq (standalone name) (standalone name)

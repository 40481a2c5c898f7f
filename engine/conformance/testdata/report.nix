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
  # option paths (tab-separated) whose values the test compares with the
  # .star files: of the system, of every home
  declared ? [ ],
  homeDeclared ? [ ],
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

  # Every option the tree's own modules set is evaluated, its value walked
  # down to derivations and functions: a value of the wrong type is an
  # error now, as it would be when the system is built and the value read.
  # The options are found from the modules' own attribute structure (each
  # module called with the configuration's arguments; values are not
  # forced), so defaults nobody reads are not forced. Not walked into:
  # home-manager.users (each user's configuration is checked the same way
  # with its own options), values of options typed attrs/raw/unspecified
  # (no type to check inside; they may hold whole configurations, as
  # home-manager.extraSpecialArgs does), attribute sets with a _type
  # (flakes, configurations, mkIf/mkMerge leftovers).
  walk =
    v:
    if builtins.isAttrs v then
      v ? _type || lib.isDerivation v || lib.all walk (builtins.attrValues v)
    else if builtins.isList v then
      lib.all walk v
    else
      true;
  opaque = [
    "attrs"
    "raw"
    "unspecified"
  ];

  nixFiles =
    dir:
    let
      d = tree + "/" + dir;
    in
    if builtins.pathExists d then
      map (n: d + "/" + n) (lib.filter (lib.hasSuffix ".nix") (lib.attrNames (builtins.readDir d)))
    else
      [ ];

  # the option paths a module file sets, as far as its attribute structure
  # shows them
  setPaths =
    args: file:
    let
      m = import file;
      v = if lib.isFunction m then m (builtins.intersectAttrs (builtins.functionArgs m) args) else m;
      body =
        if v ? config && (v ? options || v ? imports) then
          v.config
        else
          removeAttrs v [
            "imports"
            "options"
            "_file"
            "key"
            "disabledModules"
            "_class"
          ];
      paths =
        prefix: x:
        if builtins.isAttrs x && !(x ? _type) && !(lib.isDerivation x) && x != { } then
          lib.concatLists (lib.mapAttrsToList (n: y: paths (prefix ++ [ n ]) y) x)
        else
          [ prefix ];
    in
    if builtins.isAttrs body && !(body ? _type) then paths [ ] body else [ ];

  # the option a path is in: descend until an option
  # the option that holds path, and the rest of the path inside its value
  # (systemd.services: zerotierone restartTriggers)
  optionAt =
    options: path:
    if lib.isOption options then
      [
        {
          o = options;
          rest = path;
        }
      ]
    else if path == [ ] || !(builtins.isAttrs options) || !(options ? ${lib.head path}) then
      [ ]
    else
      optionAt options.${lib.head path} (lib.tail path);

  checkSet =
    options: args: files:
    let
      # one entry per option and path, keyed by name: comparing option
      # sets with == would force their values
      opts' = lib.attrValues (
        lib.listToAttrs (
          map (x: lib.nameValuePair (lib.showOption (x.o.loc ++ x.rest)) x) (
            lib.concatMap (optionAt options) (lib.unique (lib.concatMap (setPaths args) files))
          )
        )
      );
      # options of files this configuration does not import are not its own
      inTree = f: lib.hasPrefix (toString tree + "/") (toString f);
      # the files of an option nobody defines are its default's, which
      # may throw on purpose (nix-darwin's nix.* with nix.enable = false):
      # then no file of the tree defines it
      filesOf =
        o:
        let
          r = builtins.tryEval (builtins.deepSeq o.files o.files);
        in
        if r.success then r.value else [ ];
      checkable = lib.filter (
        x: x.o.loc != [ "home-manager" "users" ] && lib.any inTree (filesOf x.o)
      ) opts';
      # only what the file defines: other entries of an attribute set of
      # submodules (a service home-manager defines) are not this file's
      valueOf = x: if x.rest == [ ] then x.o.value else lib.attrByPath x.rest x.o.value x.o.value;
    in
    lib.unique (
      map (
        x:
        builtins.seq (if lib.elem (x.o.type.name or "") opaque then valueOf x else walk (valueOf x)) (
          lib.showOption x.o.loc
        )
      ) checkable
    );

  valuesAt =
    c: paths:
    map (p: {
      path = p;
      value = plain (lib.attrByPath (lib.splitString "\t" p) null c);
    }) paths;

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

  hmLib = import (upstream + "/home-manager/modules/lib/stdlib-extended.nix") lib;

  home = c: o: pkgs: {
    system = if pkgs == null then null else pkgs.stdenv.hostPlatform.system;
    username = c.home.username;
    homeDirectory = str c.home.homeDirectory;
    stateVersion = c.home.stateVersion;
    packages = map pkg c.home.packages;
    # files whose definitions make up home.packages: a module that
    # reached home-manager as an imported function has lost its file
    packagesFiles = if o == null then [ ] else map toString o.home.packages.files;
    failedAssertions = failed c;
    warnings = c.warnings;
    declared = valuesAt c homeDeclared;
    checked =
      if o == null then
        [ ]
      else
        checkSet o {
          config = c;
          options = o;
          lib = hmLib;
          inherit pkgs;
          inherit (t) inputs;
        } (nixFiles "modules/home" ++ nixFiles "homes/users" ++ nixFiles "homes/machines");
  };

  hmUsers = cfg.home-manager.users or { };
  hmOptions = u: opts.home-manager.users.valueMeta.attrs.${u}.configuration.options or null;

  system = {
    checked = checkSet opts {
      config = cfg;
      options = opts;
      inherit lib;
      pkgs = configuration._module.args.pkgs;
      inherit (t) inputs;
    } (nixFiles "modules/${class}" ++ [ (tree + "/machines/${class}/${machine}.nix") ]);
    failedAssertions = failed cfg;
    warnings = cfg.warnings;
    # NixOS: what `nix build .#nixosConfigurations.<m>.config.system.build.toplevel`
    # evaluates first; null when it throws ("Failed assertions: ...").
    toplevel =
      let
        r = builtins.tryEval cfg.system.build.toplevel.name;
      in
      if class == "nixos" && r.success then r.value else null;
    hostName = cfg.networking.hostName;
    hostPlatform = cfg.nixpkgs.hostPlatform.system;
    nixEnable = cfg.nix.enable or true;
    # null where nix-darwin does not manage Nix (nix.enable = false: its
    # nix.settings throws when read)
    substituters =
      let
        r = builtins.tryEval (cfg.nix.settings.substituters or null);
      in
      if r.success then r.value else null;
    trustedPublicKeys =
      let
        r = builtins.tryEval (cfg.nix.settings.trusted-public-keys or null);
      in
      if r.success then r.value else null;
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
    homes = lib.mapAttrs (u: c: home c (hmOptions u) configuration._module.args.pkgs) hmUsers;
    declared = valuesAt cfg declared;
  };

  # the homeConfigurations of this machine: "<user>@<machine>"
  homes = lib.filter (lib.hasSuffix "@${machine}") (lib.attrNames (outputs.homeConfigurations or { }));

  standalone =
    name:
    let
      hc = outputs.homeConfigurations.${name};
    in
    home hc.config hc.options hc.pkgs;

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

# The stub package set of the fake nixpkgs.
#
# Every attribute path in names.json (written by the test: every pkgs.<a>.<b>
# the upstream modules and the generated tree mention, and every package the
# fleet names) is a stub derivation: type = "derivation", a name, an outPath
# that is a function of the name, meta, override/overrideAttrs, and a functor
# so that builders (writeText, writeShellScript, runCommand, symlinkJoin ...)
# return stubs named after what they build. Stubs have no contents: nothing
# here can be built, and nothing here says that a package really exists in
# nixpkgs.
#
# What is not a stub is what modules compute with: lib (the real one),
# stdenv and the platforms (lib.systems.elaborate), path, config, overlays,
# callPackage (the real lib.callPackageWith over this set), formats (real
# option types, stub generators), appendOverlays/extend, applyPatches.
# Overlays are applied as nixpkgs applies them: lib.fix over lib.extends of
# lib.composeManyExtensions.
{
  localSystem,
  crossSystem ? null,
  overlays ? [ ],
  config ? { },
}:
let
  lib = import ./lib;
  inherit (lib) mapAttrs;

  names = builtins.fromJSON (builtins.readFile ./names.json);

  # The string of this folder, not a path value: nothing is copied to the store
  # when a module interpolates pkgs.path.
  path = toString ./.;

  buildPlatform = lib.systems.elaborate localSystem;
  hostPlatform = if crossSystem == null then buildPlatform else lib.systems.elaborate crossSystem;

  # Nix's base-32 alphabet, so that outPaths look like store paths.
  nix32 = lib.stringToCharacters "0123456789abcdfghijklmnpqrsvwxyz";
  hexDigits = lib.stringToCharacters "0123456789abcdef";
  hexToNix32 = lib.listToAttrs (lib.imap0 (i: h: lib.nameValuePair h (builtins.elemAt nix32 i)) hexDigits);
  storeHash =
    s:
    lib.concatMapStrings (c: hexToNix32.${c}) (
      lib.stringToCharacters (builtins.substring 0 32 (builtins.hashString "sha256" s))
    );
  sanitize = s: lib.replaceStrings [ "\"" " " "/" ] [ "" "-" "-" ] s;

  # Packages that nixpkgs builds as variants of one package: same pname, same
  # programs in bin/ (pkgs/applications/version-management/git/default.nix
  # builds git, gitMinimal, gitFull and gitSVN, all with pname "git"). Two of
  # them in one buildEnv (home.packages) collide; the test looks for equal
  # pnames with different outPaths.
  variantOf = {
    gitFull = "git";
    gitMinimal = "git";
    gitSVN = "git";
  };

  # Packages with passthru.shellPath in nixpkgs, which types.shellPackage needs.
  shells = [
    "bash"
    "bashInteractive"
    "dash"
    "fish"
    "ksh"
    "nushell"
    "tcsh"
    "xonsh"
    "zsh"
  ];

  mkStub =
    {
      attrPath,
      name ? sanitize attrPath,
      pname ? variantOf.${attrPath} or (lib.last (lib.splitString "." attrPath)),
      called ? false,
      extra ? { },
    }:
    let
      self = {
        type = "derivation";
        inherit name pname;
        # newer than any version a module checks (fzf >= 0.48 ...): stubs
        # stand for the current packages
        version = "999.0.0";
        system = hostPlatform.system;
        outPath = "/nix/store/${storeHash "out:${attrPath}:${name}"}-${name}";
        drvPath = "/nix/store/${storeHash "drv:${attrPath}:${name}"}-${name}.drv";
        outputName = "out";
        outputs = [ "out" ];
        meta = {
          description = "stub of pkgs.${attrPath}";
          mainProgram = pname;
          platforms = lib.platforms.all;
          broken = false;
          license = { };
        };
        passthru = { };
        stubAttrPath = attrPath;
        override = _: self;
        overrideDerivation = _: self;
        overrideAttrs =
          f:
          let
            new = if lib.isFunction f then f self else f;
            attrs = if lib.isFunction new then new self else new;
          in
          mkStub {
            inherit attrPath name pname called;
            extra = extra // attrs;
          };
        # Builders: called with a name (writeText "n" ...) or with an attribute
        # set naming what they build ({ name = ...; } / { pname, version }),
        # they return a stub of that name; further arguments keep it.
        __functor =
          _: arg:
          if called then
            self
          else if builtins.isString arg then
            mkStub {
              attrPath = "${attrPath}(${arg})";
              name = sanitize arg;
              pname = sanitize arg;
              called = true;
            }
          else if builtins.isAttrs arg && (arg ? name || arg ? pname) then
            let
              n = arg.name or "${arg.pname}-${arg.version or "0"}";
            in
            mkStub {
              attrPath = "${attrPath}(${n})";
              name = sanitize n;
              pname = sanitize (arg.pname or arg.name);
              called = true;
              extra = {
                passthru = arg.passthru or { };
                meta = (arg.meta or { }) // {
                  mainProgram = arg.meta.mainProgram or (arg.pname or arg.name);
                };
              };
            }
          else
            mkStub {
              inherit attrPath name pname;
              called = true;
            };
      }
      // lib.optionalAttrs (builtins.elem attrPath shells) { shellPath = "/bin/${pname}"; }
      // extra
      // {
        out = self;
        bin = self;
        dev = self;
        lib = self;
        man = self;
        doc = self;
        all = [ self ];
      };
    in
    self;

  # names.json's trie: { git = { }; nerd-fonts = { jetbrains-mono = { }; }; }
  stubTree =
    prefix: trie:
    mapAttrs (
      n: children:
      let
        p = if prefix == "" then n else "${prefix}.${n}";
      in
      mkStub { attrPath = p; } // stubTree p children
    ) trie;

  stubs = stubTree "" names;

  mkStdenv = name: {
    inherit hostPlatform buildPlatform;
    targetPlatform = hostPlatform;
    inherit (hostPlatform)
      system
      isDarwin
      isLinux
      isAarch64
      isx86_64
      ;
    mkDerivation = mkStub { attrPath = "${name}.mkDerivation"; };
    cc = mkStub { attrPath = "${name}.cc"; };
    shell = "${stubs.bash or (mkStub { attrPath = "bash"; })}/bin/bash";
    isCross = crossSystem != null;
    inherit lib;
  };

  formats = import ./formats.nix {
    inherit lib;
    generic = names.formats or { };
    mkStub = attrPath: mkStub { inherit attrPath; };
  };

  real = self: {
    inherit lib path overlays;
    config = if lib.isFunction config then config { inherit lib; pkgs = self; } else config;
    pkgs = self;
    system = hostPlatform.system;
    inherit hostPlatform buildPlatform;
    targetPlatform = hostPlatform;
    stdenv = mkStdenv "stdenv";
    stdenvNoCC = mkStdenv "stdenvNoCC";
    buildPackages = self;
    pkgsBuildBuild = self;
    pkgsBuildHost = self;
    pkgsBuildTarget = self;
    pkgsHostHost = self;
    pkgsHostTarget = self;
    pkgsTargetTarget = self;
    __splicedPackages = self;
    callPackage = fn: args: lib.callPackageWith self fn args;
    callPackages = fn: args: lib.callPackagesWith self fn args;
    newScope = extra: lib.callPackageWith (self // extra);
    inherit formats;
    runtimeShell = "${self.bash}/bin/bash";
    # nixpkgs' applyPatches is a derivation whose output is the patched
    # source; here the source itself, so that `import (applyPatches {
    # src = nixpkgs; ... }) { }` imports this fake nixpkgs again.
    applyPatches =
      {
        src,
        name ? "source",
        patches ? [ ],
        ...
      }:
      {
        type = "derivation";
        inherit name patches;
        outPath = toString (src.outPath or src);
        drvPath = "/nix/store/${storeHash "applyPatches:${name}"}-${name}.drv";
      };
    appendOverlays =
      extra:
      import ./pkgs.nix {
        inherit localSystem crossSystem config;
        overlays = overlays ++ extra;
      };
    extend = o: self.appendOverlays [ o ];
  };

  # nixpkgs functions whose results modules compute with, beyond a
  # derivation: the attributes home-manager and nix-darwin read, with the
  # values the real function gives for the arguments they pass (the
  # nixpkgs file is named). Found by evaluating: a missing attribute here is
  # an "attribute 'x' missing" error naming the module that reads it.
  shapes = self: {
    # pkgs/applications/editors/neovim/wrapper.nix: the lua init code it
    # generates; with wrapRc = false and no plugin configuration, none.
    wrapNeovimUnstable =
      neovim: args:
      mkStub {
        attrPath = "wrapNeovimUnstable";
        name = "neovim-${neovim.version or "0"}";
        pname = "neovim";
        called = true;
        extra = {
          luaRcContent = "";
          packpathDirs = args.packpathDirs or { };
          meta.mainProgram = "nvim";
        };
      };
    # pkgs/applications/editors/neovim/utils.nix
    neovimUtils = (stubs.neovimUtils or { }) // {
      makeVimPackageInfo = plugins: {
        pluginPython3Packages = [ ];
        runtimeDeps = [ ];
        vimPackage = {
          start = plugins;
          opt = [ ];
        };
      };
      packDir = _: mkStub { attrPath = "neovimUtils.packDir"; called = true; };
    };
  };

  base = self: stubs // real self // shapes self;
in
lib.fix (lib.extends (lib.composeManyExtensions overlays) base)

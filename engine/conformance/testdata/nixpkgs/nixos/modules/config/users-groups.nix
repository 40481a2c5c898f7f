# users.* as nixpkgs' nixos/modules/config/users-groups.nix declares them,
# with its assertions and warnings (message texts as upstream; upstream
# commit 005ab72f9cf5a75cdcd9ff672fb4a3b03391619f was read):
#
#  - "UIDs and GIDs must be unique!"
#  - a user whose primary group is not declared ("The following users have a
#    primary group that is undefined: ...")
#  - users.mutableUsers = false with a user whose shell is null
#  - users.mutableUsers = false and neither root nor any wheel user has a
#    password or an authorized ssh key ("Neither the root account nor any
#    wheel user has a password or SSH authorized key. ...")
#  - an invalid user name, a ":" in a password hash
#  - isNormalUser with a uid below 1000 ("A user cannot have a
#    users.users.<name>.uid set below 1000 and set users.users.<name>.isNormalUser. ...")
#  - not exactly one of isNormalUser / isSystemUser
#  - an empty primary group ("users.users.<name>.group is unset. ...")
#  - linger without users.manageLingering
#  - shell = pkgs.fish/xonsh/zsh without programs.<shell>.enable
#  - warnings: several password options at once; the renamed passwordFile.
#
# Not encoded: the systemd-initrd uid/gid uniqueness (no initrd here) and the
# warning about password hashes in schemes libxcrypt does not support (it
# needs libxcrypt's scheme list; fleet writes no literal hashes).
# The activation script and /etc files that the upstream module generates
# are not produced: nothing here is built.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.users;

  # upstream: allowsLogin
  allowsLogin =
    hash:
    hash == ""
    || !(lib.elem hash [
      null
      "!"
      "!!"
      "*"
    ]);

  overrideOrderMutable = "{option}`initialHashedPassword` -> {option}`initialPassword` -> {option}`hashedPassword` -> {option}`password` -> {option}`hashedPasswordFile`";
  overrideOrderImmutable = "{option}`initialHashedPassword` -> {option}`hashedPassword` -> {option}`initialPassword` -> {option}`password` -> {option}`hashedPasswordFile`";
  overrideOrderText = isMutable: ''
    If the option {option}`users.mutableUsers` is
    `${if isMutable then "true" else "false"}`, then the order of precedence is as shown
    below, where values on the left are overridden by values on the right:
    ${if isMutable then overrideOrderMutable else overrideOrderImmutable}
  '';
  multiplePasswordsWarning = ''
    If multiple of these password options are set at the same time then a
    specific order of precedence is followed, which can lead to surprising
    results. The order of precedence differs depending on whether the
    {option}`users.mutableUsers` option is set.
  '';

  # The shells whose programs.<shell>.enable the upstream module checks.
  shellPackages = {
    inherit (pkgs) fish xonsh zsh;
  };

  userOpts =
    { name, config, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        name = mkOption {
          type = types.passwdEntry types.str;
          apply =
            x:
            assert (
              lib.stringLength x < 32 || abort "Username '${x}' is longer than 31 characters which is not allowed!"
            );
            x;
        };
        description = mkOption {
          type = types.passwdEntry types.str;
          default = "";
        };
        uid = mkOption {
          type = types.nullOr types.int;
          default = null;
        };
        isSystemUser = mkOption {
          type = types.bool;
          default = false;
        };
        isNormalUser = mkOption {
          type = types.bool;
          default = false;
        };
        group = mkOption {
          type = types.str;
          apply =
            x:
            assert (
              lib.stringLength x < 32 || abort "Group name '${x}' is longer than 31 characters which is not allowed!"
            );
            x;
          default = "";
        };
        extraGroups = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        home = mkOption {
          type = types.passwdEntry types.path;
          default = "/var/empty";
        };
        homeMode = mkOption {
          type = types.strMatching "[0-7]{1,5}";
          default = "700";
        };
        cryptHomeLuks = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
        pamMount = mkOption {
          type = types.attrsOf types.str;
          default = { };
        };
        shell = mkOption {
          type = types.nullOr (types.either types.shellPackage (types.passwdEntry types.path));
          default = pkgs.shadow;
        };
        ignoreShellProgramCheck = mkOption {
          type = types.bool;
          default = false;
        };
        subUidRanges = mkOption {
          type = types.listOf (
            types.submodule {
              options.startUid = mkOption { type = types.int; };
              options.count = mkOption {
                type = types.int;
                default = 1;
              };
            }
          );
          default = [ ];
        };
        subGidRanges = mkOption {
          type = types.listOf (
            types.submodule {
              options.startGid = mkOption { type = types.int; };
              options.count = mkOption {
                type = types.int;
                default = 1;
              };
            }
          );
          default = [ ];
        };
        autoSubUidGidRange = mkOption {
          type = types.bool;
          default = false;
        };
        createHome = mkOption {
          type = types.bool;
          default = false;
        };
        useDefaultShell = mkOption {
          type = types.bool;
          default = false;
        };
        hashedPassword = mkOption {
          type = types.nullOr (types.passwdEntry types.str);
          default = null;
        };
        password = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
        hashedPasswordFile = mkOption {
          type = types.nullOr types.str;
          default = config.passwordFile;
        };
        passwordFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          visible = false;
        };
        initialHashedPassword = mkOption {
          type = types.nullOr (types.passwdEntry types.str);
          default = null;
        };
        initialPassword = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
        packages = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };
        expires = mkOption {
          type = types.nullOr (types.strMatching "[[:digit:]]{4}-[[:digit:]]{2}-[[:digit:]]{2}");
          default = null;
        };
        linger = mkOption {
          type = types.nullOr types.bool;
          default = null;
        };
      };

      config = lib.mkMerge [
        {
          name = lib.mkDefault name;
          shell = lib.mkIf config.useDefaultShell (lib.mkDefault cfg.defaultUserShell);
        }
        (lib.mkIf config.isNormalUser {
          group = lib.mkDefault "users";
          createHome = lib.mkDefault true;
          home = lib.mkDefault "${cfg.defaultUserHome}/${config.name}";
          homeMode = lib.mkDefault "700";
          useDefaultShell = lib.mkDefault true;
          isSystemUser = lib.mkDefault false;
        })
        (lib.mkIf (!cfg.mutableUsers && config.initialPassword != null) {
          password = lib.mkDefault config.initialPassword;
        })
        (lib.mkIf (!cfg.mutableUsers && config.initialHashedPassword != null) {
          hashedPassword = lib.mkDefault config.initialHashedPassword;
        })
        (lib.mkIf (config.isNormalUser && config.subUidRanges == [ ] && config.subGidRanges == [ ]) {
          autoSubUidGidRange = lib.mkDefault true;
        })
      ];
    };

  groupOpts =
    { name, config, ... }:
    {
      options = {
        name = mkOption { type = types.passwdEntry types.str; };
        gid = mkOption {
          type = types.nullOr types.int;
          default = null;
        };
        members = mkOption {
          type = types.listOf (types.passwdEntry types.str);
          default = [ ];
        };
      };
      config = {
        name = lib.mkDefault name;
        members = lib.mapAttrsToList (n: u: u.name) (
          lib.filterAttrs (n: u: u.enable && lib.elem config.name u.extraGroups) cfg.users
        );
      };
    };

  # upstream: idsAreUnique (it also traces "Duplicate uid <id>")
  idsAreUnique =
    set: idAttr:
    let
      ids = map (n: toString set.${n}.${idAttr}) (lib.attrNames set);
      dups = lib.filter (id: lib.count (x: x == id) ids > 1) (lib.unique ids);
    in
    if dups == [ ] then true else builtins.trace "Duplicate ${idAttr} ${lib.head dups}" false;

  uidsAreUnique = idsAreUnique (lib.filterAttrs (n: u: u.uid != null) cfg.users) "uid";
  gidsAreUnique = idsAreUnique (lib.filterAttrs (n: g: g.gid != null) cfg.groups) "gid";
  groupNames = lib.mapAttrsToList (n: g: g.name) cfg.groups;
  usersWithoutExistingGroup = lib.filterAttrs (n: u: u.group != "" && !lib.elem u.group groupNames) cfg.users;
  usersWithNullShells = lib.attrNames (lib.filterAttrs (name: u: u.shell == null) cfg.users);
in
{
  options = {
    users.mutableUsers = mkOption {
      type = types.bool;
      default = true;
    };
    users.enforceIdUniqueness = mkOption {
      type = types.bool;
      default = true;
    };
    users.manageLingering = mkOption {
      type = types.bool;
      default = true;
    };
    users.users = mkOption {
      default = { };
      type = types.attrsOf (types.submodule userOpts);
    };
    users.groups = mkOption {
      default = { };
      type = types.attrsOf (types.submodule groupOpts);
    };
    users.allowNoPasswordLogin = mkOption {
      type = types.bool;
      default = false;
    };
    users.defaultUserHome = mkOption {
      type = types.str;
      default = "/home";
    };
    # nixos/modules/config/shells-environment.nix
    users.defaultUserShell = mkOption {
      type = types.either types.path types.shellPackage;
      default = pkgs.bashInteractive;
    };
    # nixos/modules/security/google_oslogin.nix (read by the login check)
    security.googleOsLogin.enable = lib.mkEnableOption "Google OS Login";
  };

  config = {
    # ids.uids / ids.gids of nixos/modules/misc/ids.nix for root and nobody;
    # the other system groups are declared without their gids, which only
    # the uniqueness check would read.
    users.users = {
      root = {
        uid = 0;
        description = "System administrator";
        home = "/root";
        shell = lib.mkDefault cfg.defaultUserShell;
        group = "root";
      };
      nobody = {
        uid = 65534;
        isSystemUser = true;
        description = "Unprivileged account (don't use!)";
        group = "nogroup";
      };
    };

    users.groups = {
      root.gid = 0;
      wheel.gid = 1;
      users.gid = 100;
      nogroup.gid = 65534;
    }
    // lib.genAttrs [
      "disk"
      "kmem"
      "tty"
      "floppy"
      "uucp"
      "lp"
      "cdrom"
      "tape"
      "audio"
      "video"
      "dialout"
      "nixbld"
      "utmp"
      "adm"
      "input"
      "kvm"
      "render"
      "sgx"
      "shadow"
      "clock"
    ] (_: { });

    assertions = [
      {
        assertion = !cfg.enforceIdUniqueness || (uidsAreUnique && gidsAreUnique);
        message = "UIDs and GIDs must be unique!";
      }
      {
        assertion = usersWithoutExistingGroup == { };
        message =
          let
            errUsers = lib.attrNames usersWithoutExistingGroup;
            missingGroups = lib.unique (lib.mapAttrsToList (n: u: u.group) usersWithoutExistingGroup);
            mkConfigHint = group: "users.groups.${group} = {};";
          in
          ''
            The following users have a primary group that is undefined: ${lib.concatStringsSep " " errUsers}
            Hint: Add this to your NixOS configuration:
              ${lib.concatStringsSep "\n  " (map mkConfigHint missingGroups)}
          '';
      }
      {
        assertion = !cfg.mutableUsers -> lib.length usersWithNullShells == 0;
        message = ''
          users.mutableUsers = false has been set,
          but found users that have their shell set to null.
          If you wish to disable login, set their shell to pkgs.shadow (the default).
          Misconfigured users: ${lib.concatStringsSep " " usersWithNullShells}
        '';
      }
      {
        assertion =
          !cfg.mutableUsers
          -> !cfg.allowNoPasswordLogin
          -> lib.any lib.id (
            lib.mapAttrsToList (
              name: u:
              (name == "root" || u.group == "wheel" || lib.elem "wheel" u.extraGroups)
              && (
                allowsLogin u.hashedPassword
                || u.password != null
                || u.hashedPasswordFile != null
                || u.openssh.authorizedKeys.keys != [ ]
                || u.openssh.authorizedKeys.keyFiles != [ ]
              )
            ) cfg.users
            ++ [ config.security.googleOsLogin.enable ]
          );
        message = ''
          Neither the root account nor any wheel user has a password or SSH authorized key.
          You must set one to prevent being locked out of your system.
          If you really want to be locked out of your system, set users.allowNoPasswordLogin = true;
          However you are most probably better off by setting users.mutableUsers = true; and
          manually running passwd root to set the root password.
        '';
      }
    ]
    ++ lib.flatten (
      lib.flip lib.mapAttrsToList cfg.users (
        name: user:
        [
          (
            let
              nameRegex = "[a-zA-Z0-9_.][a-zA-Z0-9_.-]*";
            in
            {
              assertion = builtins.match nameRegex user.name != null;
              message = "The username \"${user.name}\" is not valid, it does not match the regex \"${nameRegex}\".";
            }
          )
          {
            assertion = (user.hashedPassword != null) -> (builtins.match ".*:.*" user.hashedPassword == null);
            message = ''
              The password hash of user "${user.name}" contains a ":" character.
              This is invalid and would break the login system because the fields
              of /etc/shadow (file where hashes are stored) are colon-separated.
              Please check the value of option `users.users."${user.name}".hashedPassword`.'';
          }
          {
            assertion = user.isNormalUser && user.uid != null -> user.uid >= 1000;
            message = ''
              A user cannot have a users.users.${user.name}.uid set below 1000 and set users.users.${user.name}.isNormalUser.
              Either users.users.${user.name}.isSystemUser must be set to true instead of users.users.${user.name}.isNormalUser
              or users.users.${user.name}.uid must be changed to 1000 or above.
            '';
          }
          {
            assertion =
              let
                isEffectivelySystemUser = user.isSystemUser || (user.uid != null && user.uid < 1000 && !user.isNormalUser);
              in
              lib.xor isEffectivelySystemUser user.isNormalUser;
            message = ''
              Exactly one of users.users.${user.name}.isSystemUser and users.users.${user.name}.isNormalUser must be set.
            '';
          }
          {
            assertion = user.group != "";
            message = ''
              users.users.${user.name}.group is unset. This used to default to
              nogroup, but this is unsafe. For example you can create a group
              for this user with:
              users.users.${user.name}.group = "${user.name}";
              users.groups.${user.name} = {};
            '';
          }
          {
            assertion = user.linger != null -> cfg.manageLingering;
            message = ''
              users.manageLingering is set to false, but
              users.users.${user.name}.linger is configured.

              If you want NixOS to manage whether user accounts linger or
              not, you must set users.manageLingering to true.  This is the
              default setting.

              If you do not want NixOS to manage whether user accounts linger
              or not, you must set users.users.${user.name}.linger to null.
              This is the default setting provided system.stateVersion is at
              least "25.11".
            '';
          }
        ]
        ++ lib.mapAttrsToList (shell: shellPackage: {
          assertion =
            !user.ignoreShellProgramCheck -> (user.shell == shellPackage) -> (config.programs.${shell}.enable == true);
          message = ''
            users.users.${user.name}.shell is set to ${shell}, but
            programs.${shell}.enable is not true. This will cause the ${shell}
            shell to lack the basic nix directories in its PATH and might make
            logging in as that user impossible. You can fix it with:
            programs.${shell}.enable = true;

            If you know what you're doing and you are fine with the behavior,
            set users.users.${user.name}.ignoreShellProgramCheck = true;
            instead.
          '';
        }) shellPackages
      )
    );

    warnings =
      lib.flip lib.concatMap (lib.attrValues cfg.users) (
        user:
        let
          passwordOptions = [
            "hashedPassword"
            "hashedPasswordFile"
            "password"
          ]
          ++ lib.optionals cfg.mutableUsers [
            "initialHashedPassword"
            "initialPassword"
          ];
          unambiguousPasswordConfiguration =
            1 >= lib.length (lib.filter (x: x != null) (map (lib.flip lib.getAttr user) passwordOptions));
        in
        lib.optional (!unambiguousPasswordConfiguration) ''
          The user '${user.name}' has multiple of the options
          `initialHashedPassword`, `hashedPassword`, `initialPassword`, `password`
          & `hashedPasswordFile` set to a non-null value.

          ${multiplePasswordsWarning}
          ${overrideOrderText cfg.mutableUsers}
          The values of these options are:
          ${lib.concatMapStringsSep "\n" (
            value: "* users.users.\"${user.name}\".${value}: ${lib.generators.toPretty { } user.${value}}"
          ) passwordOptions}
        ''
      )
      ++ lib.filter (x: x != null) (
        lib.flip lib.mapAttrsToList cfg.users (
          name: user:
          if user.passwordFile != null then
            ''The option `users.users."${name}".passwordFile' has been renamed ''
            + ''to `users.users."${name}".hashedPasswordFile'.''
          else
            null
        )
      );

    environment.systemPackages = lib.filter types.shellPackage.check (lib.mapAttrsToList (_: u: u.shell) cfg.users);
  };
}

// Package nixgen lowers a fleet to Nix: a flake tree of ordinary files a
// person could have written.
//
// Everything is printed from an AST (ast.go) by one printer (print.go), so
// quoting and escaping live in exactly one place: a Starlark string always
// becomes a Nix string with the same bytes (strings.go), attribute names
// are quoted whenever they are not plain identifiers, and parentheses
// appear where Nix needs them. The escaping property is checked against
// real Nix over thousands of generated strings and by a fuzz target.
//
// The tree (tree.go, flake.go, overlays.go):
//
//	flake.nix                      inputs (channels, channel-darwin branches, input()s with follows),
//	                               overlays.default, nixosConfigurations, darwinConfigurations,
//	                               homeConfigurations."<user>@<machine>"
//	overlays/default.nix           the five layers, composed in their fixed order
//	modules/<class>/<feature>.nix  one module per feature and class; imports what it requires
//	machines/<class>/<machine>.nix features, host name, platform, users, home-manager, age.secrets,
//	                               then the machine's own configuration
//	homes/users/<user>.nix         a user's own home features and their packages
//	homes/machines/<machine>.nix   machine(home = {...}), shared by all users of the machine
//	secrets.nix                    agenix rules (paths relative to the fleet root)
//	files/<path>                   copies of hand-written files (modules =, overlay.package, nix.path)
//	secrets/<owner>/<secret>/<file>.age  copies of the encrypted secrets that exist
//
// A flake reads only files inside its own source, hence the copies.
//
// Rules a reader of the output should know:
//   - A feature has a NixOS (darwin) module when a machine of that class
//     reaches it and it has configuration, packages or hand-written modules
//     for that class (or requires a feature that does); packages go to
//     environment.systemPackages. Hand-written modules are imported by the
//     modules of the classes the feature configures, or by all when it
//     configures none.
//   - Home parts: a user's home features apply on every machine the user
//     is on; the home parts of a machine's features (and machine(home=))
//     apply to every user of that machine, through home-manager's
//     sharedModules; home-manager.users.<u> is the file homes/users/<u>.nix
//     itself (a path, so the module system knows where definitions come
//     from). A user's home.packages are the packages of the user's home
//     features and what they require, of features that have a home part
//     only: a feature's packages go where its parts go (base's git stays
//     on the machine and does not collide with programs.git's gitFull in
//     home-manager's buildEnv). The standalone homeConfigurations use the
//     machine's own pkgs (self.<class>Configurations.<m>.pkgs): its
//     overlay and nixpkgs.config, evaluated once per machine.
//   - Accounts: users.users.<u> for the machine's users, with the uid of
//     the machine's class (user(uid = {"darwin": 502, "nixos": 1000})).
//     The deploy user (the target's, else root) gets the admins' ssh keys
//     (users.users.root.openssh.authorizedKeys on NixOS), so deploys can
//     log in after nixos-anywhere wiped the disk. nix-darwin users with a
//     uid are listed in users.knownUsers, the only ones whose uid, shell
//     and description nix-darwin applies. user(password_hash = s) is
//     hashedPasswordFile = config.age.secrets.<s>.path on NixOS.
//   - system.stateVersion comes from machine(state_version = ...), in the
//     machine's own file; no shared module sets it (the builtins refuse
//     one), so a new stdlib never changes a machine's state version.
//   - nix-darwin machines build from the nixpkgs channel's darwin_url when
//     it has one (nixpkgs.source), the branch nix-darwin asks for.
//   - Where fleet's own settings meet the user's (a machine setting
//     networking.hostName, a feature with packages also setting
//     environment.systemPackages), both definitions are kept with
//     lib.mkMerge [ fleet's user's ], and the module system combines them
//     (lists concatenate; nix.force wins).
//   - age.secrets.<name>: the secret's name when it has one encrypted file,
//     else <secret>-<file>. agenix decrypts every secret before the users
//     activation script, which satisfies needed_for = "activation" and
//     "users" alike. A secret's restart_units get, on NixOS machines,
//     systemd.<services|sockets|timers|paths>.<unit>.restartTriggers =
//     [ "sha256:<hash of the stored file> <name>" ]: the activation that
//     brings a changed secret restarts them, and no other does.
//     age.identityPaths is the host key, /etc/ssh/ssh_host_ed25519_key.
//     secret(paths = {file: path}) sets age.secrets.<name>.path for
//     encrypted files (agenix links them there) and deploys public files
//     from the store: systemd.tmpfiles "L+" rules on NixOS, environment.etc
//     on nix-darwin. A stored file that does not exist yet is
//     `throw "fleet: ... run fleet secrets generate"`: evaluating it stops
//     with fleet's message, not with Nix's "getting status of ...".
//   - Inside overlays/default.nix, nix.pkg("x") means final.x; in modules,
//     pkgs.x. Fallback conditions read prev, never final, so the overlay's
//     attribute names never depend on its own result.
//   - Comments carry user text (overlay reasons, file names in headers):
//     its control characters, line and paragraph separators, bidi controls
//     and non-UTF-8 bytes are shown escaped (\r, \x1b, \u2028), since Nix
//     ends a comment at '\r' too. A '\n' in a reason starts a new comment
//     line; in a header line it is escaped. File names with such characters
//     are refused by the evaluator.
//
// Output is deterministic (same fleet, same bytes); every file starts with
// a comment naming the .star position it came from. Writing is engine/outdir's
// job: atomic, only when changed, with a manifest.
package nixgen

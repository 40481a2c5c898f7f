// Package deps pins the .star libraries a fleet loads from other
// repositories: `load("@team//features/ssh.star", "ssh")`.
//
// # Declaring
//
// A fleet declares its dependencies in fleet.deps, next to fleet.star. It is
// a tiny Starlark dialect: nothing but calls of dep with string literals.
//
//	dep("team", git = "https://git.example.org/org/fleet-lib.git", ref = "v1.2.0")
//
// name matches [a-z][a-z0-9_-]* ("stdlib" is taken by the embedded
// library); git is anything the git command accepts as a repository
// (https://, ssh://, user@host:path, an absolute path, file://); ref is a
// tag, a branch, "HEAD", a full refs/... name or a full commit hash.
//
// # Locking
//
// `fleet deps lock` resolves every ref to a commit (git ls-remote; an
// annotated tag is peeled to its commit), fetches each commit into the cache
// and writes fleet.lock next to fleet.deps. A dependency may have a
// fleet.deps of its own at its root; its dependencies join the lock
// (breadth first, the fleet's own first). The names form one namespace:
// two requesters of one name that disagree on the repository or the commit
// are an error naming both. Evaluation uses only what fleet.lock names:
// fleet.deps and fleet.lock must agree (else "run fleet deps lock"), and
// nothing is resolved at evaluation time. Locking again keeps every pin
// whose git and ref did not change, so the lock moves only when asked:
// `fleet deps update [NAME...]` re-resolves the refs of the named
// dependencies (all without names).
//
// fleet.lock is indented JSON with a final newline, entries sorted by name,
// written atomically (a temporary file renamed over it):
//
//	{
//	  "version": 1,
//	  "deps": [
//	    {
//	      "name": "team",
//	      "git": "https://git.example.org/org/fleet-lib.git",
//	      "ref": "v1.2.0",
//	      "commit": "<40 hex digits>",
//	      "sha256": "<64 hex digits: TreeHash of the commit's files>",
//	      "requested_by": ["fleet.deps"]
//	    }
//	  ]
//	}
//
// requested_by lists who declared the dependency: "fleet.deps" for the
// fleet, "@name" for a dependency's own fleet.deps (sorted).
//
// # The cache
//
// Fetched trees live in <cache>/<first 16 hex digits of sha256(git URL)>/<commit>/,
// where <cache> is $FLEET_CACHE_DIR/deps or else <user cache dir>/fleet/deps
// (os.UserCacheDir: ~/.cache on Linux, ~/Library/Caches on macOS). An
// entry is the commit's files without .git. Fetching runs the user's git
// (their credentials, config and insteadOf rules keep working) in a fresh
// temporary folder inside the cache (git init, git fetch --depth 1 <url>
// <commit>, checkout; a full fetch when the server refuses a fetch by
// hash), removes .git and renames the folder into place, so an entry is
// complete or absent: a failed or interrupted fetch leaves nothing behind.
//
// Before a cached tree is used its TreeHash is compared with the lock's
// sha256. A mismatch is an error naming the dependency and the entry to
// delete; fleet never silently fetches again over a changed entry. With
// --offline nothing is fetched: a missing entry is an error naming the
// dependency and its commit. A Resolver hashes each dependency once per
// evaluation.
//
// # Overrides
//
// --override team=../fleet-lib points a dependency at a local folder (for
// developing the library next to a fleet): the lock and the cache are not
// consulted for it, and fleet says an override is in use. The overridden
// folder's own fleet.deps is not read; its @name loads use the fleet's lock.
//
// # Boundaries
//
// The engine resolves a load inside @team (relative, or //-rooted) to a
// label inside @team and refuses symlinks that lead out of the dependency's
// folder, so a dependency reads only its own files (and, through explicit
// @name// loads, other dependencies). Files a dependency's features name
// (modules = [...], overlay.package, nix.path) resolve the same way, and
// the Nix tree carries copies of them under deps/<name>/.
//
// `fleet deps verify` asks every repository again: a ref that now names
// another commit (a moved tag) is reported, and so is a cached tree whose
// hash differs from the lock.
package deps

// Package outdir writes a generated file tree (fleet's Nix flake:
// flake.nix, modules/..., machines/...) into an output folder such as
// .fleet/nix, and checks whether the folder is up to date.
//
// # Why a package of its own
//
// The output folder is shared. Users commit it, run `fleet nix --check`
// in CI against it, and keep files of their own next to it (a README, a
// hand-written module the flake imports). Writing it with os.WriteFile in
// a loop would get four things wrong: a crash would leave half-written
// files, every run would touch every file (and its mtime, which rebuilds
// and editors notice), files fleet stopped generating would linger, and a
// user's file that happens to sit where fleet now wants to write would be
// silently overwritten. This package gets them right once, for every
// generator.
//
// # Ownership: the manifest
//
// The folder holds a manifest, .fleet-manifest.json, listing every file
// fleet wrote with the sha256 of the bytes it wrote. It is the only way to
// tell fleet's files from the user's, so the rules are:
//
//   - A file not in the manifest is never written, renamed or removed. If
//     a wanted path is taken by such a file, Write fails before changing
//     anything and names every such file (ForeignError).
//   - A file in the manifest that is still produced is fleet's to
//     overwrite, edited or not: the generator is the source of truth and
//     Check reports the edit.
//   - A file in the manifest that is no longer produced is removed, but
//     only if its bytes still hash to what the manifest records. If the
//     user edited it, it is left in place, reported as Kept and dropped
//     from the manifest: it is the user's file from then on, and should
//     fleet want that path again later, Write reports it as foreign rather
//     than destroy the edit. Directories left empty by a removal are
//     removed too, up to but never including the output folder.
//
// The manifest is indented JSON with sorted keys and a trailing newline,
// so it diffs well when committed. A manifest whose paths are not clean
// relative paths is rejected as corrupt: fleet removes files the manifest
// names, so it must not be talked into removing ../../anything.
//
// # Writing
//
// Every file is written to a temporary file in its own directory, given
// its mode, flushed to disk and renamed over the target, so a reader (or
// a crash) sees the old file or the new one, never a prefix. The flush is
// done for all files of a run at once (one syncfs on Linux, an fsync per
// file elsewhere): per-file fsync made a 1,400-file tree take seconds. Temporary files are
// named ".fleet-tmp-<name>": the name is fixed so that a temporary file
// orphaned by a crash is replaced by the next run that writes that file.
// Holding the lock, Write first removes every orphaned temporary file beside a
// path the manifest names (fleet records a path before staging it), and Check
// reports them as Temp, so a killed run leaves no debris --check cannot see. That prefix and the manifest's name are reserved.
//
// Write first reads what is on disk and compares bytes, not manifest
// hashes: a file is rewritten when its content or its executable bit
// differs from what is wanted, and left alone (mtime and all) otherwise.
// A run that changes nothing performs no write at all, not even of the
// manifest. Only the executable bit is compared because it is all git
// records: a checkout under umask 002 yields 0664 files, and --check must
// not call them changed. Files fleet writes get exactly 0644 (or 0755 if
// the File asks for it), and directories it creates inside the folder
// 0755, whatever the umask.
//
// # Interruption
//
// A run that dies halfway must leave a folder the next run recognises as
// its own. Before writing any file, Write therefore replaces the manifest
// with an intent record: every path whose current content fleet wrote,
// with that content's hash, plus a "pending" map with the hash each file
// about to be written will have. Whatever a crash leaves on disk, each
// fleet-written file matches one of the hashes recorded for its path, so
// the next run neither mistakes it for a foreign file nor for a user's
// edit. The files are written next, the directories holding them synced,
// stale files removed, and the final manifest (no pending map) written
// last. Runs that only remove files skip the intent record: the old
// manifest already covers every file they touch.
//
// # Check
//
// Check runs the same analysis as Write without changing anything and
// reports what Write would do as a Diff: wanted files missing or
// different on disk (by bytes, so a hand-edit is caught even though the
// manifest still matches), files no longer produced, and foreign files in
// the way. The manifest itself is reported as missing or changed when
// Write would write it, so an empty Diff means exactly that Write would
// write nothing.
//
// # Paths
//
// Paths are slash-separated, relative to the output folder and clean:
// no "", ".", "..", leading or trailing or doubled slashes, backslashes
// or NUL bytes. No path may be both a file and a directory, and no two
// paths may differ only in case, since the tree is also checked out on
// macOS's case-insensitive file systems. Bad input is rejected, every
// problem at once, before anything is read or written.
//
// # Concurrency and performance
//
// Write locks the output folder (flock on the folder itself, so no lock file
// appears in a folder users commit) for the whole run: a second writer fails at
// once with "another fleet is writing <dir>" rather than wait behind a run of
// unknown length. The lock dies with its process; on file systems that cannot
// flock, Write proceeds unlocked. Check does not lock.
//
// Within one Write, files are looked
// at, and written, by a small pool of goroutines: a run that changes
// nothing is a few system calls per file, and a run that writes is bound
// by fsync, which takes most of a millisecond per file on a typical disk
// and overlaps well. On the development VM (2 vCPUs, shared ext4 disk,
// BenchmarkWrite), 10,000 files of 1 KiB take 4 to 6 s to write the first
// time (0.45 s on tmpfs, where fsync is free), and 130 to 180 ms to find
// unchanged on the next run; Check costs the same as the unchanged run.
package outdir

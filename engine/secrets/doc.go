// Package secrets generates, encrypts, stores, checks and re-encrypts the
// fleet's secrets. It is the only part of fleet that ever holds a secret
// value, and it is written so that the value stays where it belongs.
//
// # Where plaintext may exist
//
// A generated or prompted value lives in memory, in the []byte the
// generator returned, until it has been encrypted; then the slice is
// overwritten with zeros (best effort: Go may have copied it, but no copy
// is ever written anywhere). The one exception is gen.command, whose
// program needs files: it runs in a fresh temporary folder of mode 0700
// ($out), with the values of the secrets it depends on written under a
// second 0700 folder ($in/<secret>/<file>, mode 0600). Both folders are
// created under $XDG_RUNTIME_DIR when there is one (a per-user tmpfs, so
// nothing reaches a disk) and removed whatever happens: on success, on a
// failing program, on a missing output, on cancellation and on a panic.
// Nothing in this package prints or returns a value in an error message:
// errors name files and recipients, never contents.
//
// # Files on disk
//
// Secret files are age files (filippo.io/age, binary, not armored) stored
// as secrets/<machine>/<secret>/<file>.age, or secrets/shared/<secret>/<file>.age
// for shared secrets; public files (the .pub half of a key pair) are
// stored next to them in plain text, without .age. This is the layout
// engine/nixgen refers to (SecretPath) and lists in the agenix rules file
// secrets.nix, so `agenix -e`, `age -d` and the agenix NixOS module work on
// the same files: nothing here is specific to fleet except the record
// below. Every write goes to a temporary file in the target folder which
// is synced and renamed over the target: a file is either its old or its
// new version, never partial. Secret files have mode 0600, public files
// 0644, folders 0700. Nothing under secrets/ may be a symlink, folder or
// file: one could lead writes and reads outside the fleet root, so every
// write, read and check refuses it, naming the path.
//
// # Recipients and the record
//
// A secret file is encrypted to the fleet's admins (fleet(admins = ...):
// a user's age key or else their ssh-ed25519 keys, raw age or ssh
// recipients, age plugin recipients such as age1yubikey1...) plus the host
// key of every machine that reads it: the machine it belongs to, or all
// machines of a shared secret. A machine whose host key is not known yet
// is simply not a recipient; Recipients says which were left out so the
// CLI can warn, and the file becomes stale once the key is known.
//
// An age file does not say whom it was encrypted to: X25519 stanzas are
// anonymous and ssh stanzas carry only a 4-byte key tag. To tell whether a
// file still matches the fleet's recipients without decrypting it, every
// write also updates secrets/.recipients.json, which maps each encrypted
// file to the sorted recipients it was encrypted to and the sha256 of its
// ciphertext (sorted keys, stable formatting, so it diffs well in git).
// Check compares the record with the recipients the fleet declares now
// and the files on disk: missing files, stale ones (recipients changed),
// files that are not age at all, and files that changed without fleet
// (their hash differs from the record, e.g. after `agenix -e`). Check
// parses headers only and cannot decrypt: it is given no identity.
// Rekey decrypts stale and changed files with the admin's identities and
// re-encrypts them to the current recipients. A file that is not valid
// age is never overwritten: it is reported by name and left for a person
// to look at.
package secrets

// Package builtins is the Starlark surface of fleet: the predeclared
// functions and modules a .star file calls (fleet, channel, input, feature,
// user, machine, secret, overlay.*, nix.*, hetzner.*, gcp.*, gen.*).
//
// The design follows tilt's tiltfile package: one file per group of
// builtins, and argument types that implement starlark.Unpacker so that
// each kind of argument (a list of feature references, a config dict, a
// selector) is checked in one place with one wording of its errors.
//
// Builtins do not build the model directly. Each call is checked for what
// can be checked alone (types, formats, dotted-key conflicts) and recorded
// in a Recorder, which lives in the Starlark thread's locals, never in a
// package variable. Declarations may refer to each other by name in any
// order across files (a machine may name a feature that a later include
// declares), so references are resolved only once evaluation has finished,
// in Recorder.Build, which reports every unresolved name, duplicate and
// malformed reference at once, each at its declaring .star position.
//
// Every declaration returns a frozen value with readable attributes
// (m.name, f.requires ...), so libraries can compute with what a fleet
// declared without reaching into the model.
package builtins

// Package engine evaluates a fleet program: Starlark files in, a checked
// model.Fleet out.
//
// Evaluation follows go.starlark.net with strict file options (no while,
// no recursion, no top-level control flow, no global reassignment) and
// two ways of bringing in other files, with different meanings:
//
//   - load("x.star", "sym") brings in a library. Each library is evaluated
//     once per run, in its own thread, then frozen and cached by its label;
//     a library may not declare anything at its top level (builtins
//     enforces that per thread). A cycle of loads is an error printing the
//     whole chain.
//   - include("features/*.star") runs fleet files: their declarations are
//     part of the fleet. This is the dendritic pattern's auto-discovery.
//
// Every file has a label: its path relative to the fleet root for local
// files ("features/ssh.star"), "@stdlib//x.star" for the embedded library,
// "@name//x.star" for pinned dependencies. Labels are what positions and
// errors show, so output never depends on where a repository is checked
// out. Resolution (resolve.go) is purely lexical and then checked against
// symlinks: no label, however written, reaches outside the root.
//
// Limits: one step budget is shared by every thread of a run (each thread
// gets what is left), and cancelling the context cancels every thread, so
// Ctrl-C stops an endless computation promptly.
//
// Errors come back as *model.Error (one failure during evaluation, with the
// Starlark backtrace as notes) or model.Errors (every problem the
// whole-fleet checks found), both printing as "file:line:col: message".
package engine

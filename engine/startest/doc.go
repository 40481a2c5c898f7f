// Package startest runs the tests of a fleet written in Starlark: the
// *_test.star files that `fleet test` finds, each a module of test_*
// functions with two predeclared helpers, assert and fleet.
//
//	load("//lib/util.star", "merge")
//
//	def test_merge():
//	    assert.eq(merge({"a": 1}, {"a": 2}), {"a": 2})
//
//	def test_web():
//	    r = fleet.load_file("fleet.star")
//	    assert.eq(r.machine("web").system, "x86_64-linux")
//	    assert.contains(r.nix("machines/nixos/web.nix"), "services.openssh.enable = true;")
//	    assert.fails(lambda: fleet.eval("machine('x', system = 'bad')"), "system")
//
// # Why tests are Starlark
//
// A fleet is a program: library functions that shape machines, features
// built from @stdlib defaults, loops over users. Its author writes Starlark,
// so its tests are Starlark too, next to the files they test, and they check
// what the program produces at each stage the engine exposes: the model, the
// dependency graph and the Nix it lowers to. Nothing is built or deployed.
//
// # Discovery (Discover)
//
// A PATH argument that is a file is run as is (it must end in _test.star);
// a directory is walked recursively for *_test.star files. Below a named
// directory, folders whose name starts with "." or "_" and folders named
// testdata are skipped, as go test does: .git and the .fleet output tree
// hold no tests, and testdata holds fixtures, which may well be tests that
// fail on purpose (this package's own). Naming such a folder on the command
// line runs it. include() never picks up *_test.star files, so tests can
// sit next to the fleet files they test.
//
// # Root
//
// Each test file runs against a fleet root, as a fleet file does: loads and
// paths may not leave it, and labels (what positions show) are relative to
// it. The root is --root when given, otherwise the nearest folder at or
// above the test file that holds a fleet.star, looking no higher than the
// top of a git checkout (a folder holding .git), otherwise the test file's
// own folder. So lib/hosts_test.star of a fleet has the fleet's root, and its
// load("//lib/util.star") means what it means in fleet.star.
//
// # Running
//
// A test file is a module in the strict dialect of fleet files
// (engine.FileOptions). Its load() statements go through the engine's own
// loader (engine.Libraries): relative paths, //paths from the root,
// @stdlib//, pinned @name// dependencies, caching and cycle reports work as
// in a fleet. Its globals are the builtins plus assert and fleet; the name
// fleet is the fixture here, since declaring a fleet only means something
// inside an evaluation: a test declares inside fleet.eval(...). Libraries a
// test file loads see assert and fleet too, so test helpers can be shared
// (and a library using them can only be loaded by tests).
//
// After the module ran (and was frozen), every global function whose name
// starts with test_ is a test. Tests run in source order, the order a reader
// sees them in, one after the other, each in a thread of its own with a step
// budget of its own (--max-steps, as for a fleet), so one test cannot change
// what another sees and one failing test never stops the others: an error,
// a Go panic in a builtin, or a runaway loop that exhausts the budget is a
// failure of that test alone. --run REGEXP (Go syntax, unanchored, like go
// test -run) selects tests by function name.
//
// # assert
//
// Assertions record a failure and let the test go on, like Go's t.Errorf:
// one run shows every wrong value, not just the first. A failure names the
// file:line:col of the assert call and shows both values (repr; long or
// multi-line values on lines of their own, two multi-line strings with their
// first differing line; a long string a failure of the test already showed
// is not shown again). An assert called from a helper function also names
// the test line that called the helper.
//
//	assert.eq(a, b, msg = None)      a == b; Nix values (nix.force(...) ...) compare by meaning
//	assert.ne(a, b, msg = None)      a != b
//	assert.true(cond, msg = None)    cond is truthy
//	assert.contains(container, item, msg = None)
//	                                 substring of a str; element of a list or tuple; key of a dict
//	assert.fails(fn, pattern)        fn() must fail with an error matching the regexp
//	                                 pattern (Go syntax, unanchored); returns the error message
//
// An error (fail("..."), a bad index, an uncaught fleet.eval error) stops the
// test where it happened. Outside a test (at a test file's top level) an
// assert that does not hold is an error that stops the file.
//
// # fleet
//
//	fleet.eval(src)        evaluates src, a whole fleet file, as if it were the file
//	                       <eval> in the test file's folder: its relative loads and
//	                       paths work as in a fleet file there
//	fleet.load_file(path)  evaluates a fleet file, relative to the test file (or //path)
//
// Both evaluate, build the graph and lower to Nix, as `fleet run` does, and
// fail with the engine's positioned message when any of it fails; so
// assert.fails(lambda: fleet.eval(...), "unknown feature") tests a mistake
// being caught. Each evaluation gets what is left of the calling test's step
// budget. What they return is a read-only view of the result, built from the
// model, graph and Nix files (which know nothing of Starlark; this package
// converts):
//
//	r.name  r.domain  r.admins
//	r.machines              list of machine views, by name; r.machine(name)
//	r.features  r.users  r.secrets  r.channels  r.inputs
//	                        sorted names; r.feature(name), r.user(name), r.secret(name)
//	r.overlays              overlay views, in layer order
//	r.graph                 .nodes, .edges ((from, to, kind) tuples), .topo,
//	                        .deps(id), .rdeps(id), .closure(id, ...): node ids as
//	                        engine/graph names them ("machine:web", "feature:ssh")
//	r.nix(path)             text of a generated file ("flake.nix", "machines/nixos/web.nix")
//	r.nix_files             sorted paths of the generated tree
//
//	machine: name system kind ("nixos"/"darwin") tags features users target host
//	         host_key host_key_secret checks rollback nixos darwin home pos
//	host:    provider enabled type, and the provider's fields (location image
//	         labels firewalls ipv4 ipv6 / project zone image disk_gb gpu gpus tags labels)
//	feature: name doc requires packages modules nixos darwin home pos
//	user:    name uid description groups shell ssh_keys age home pos
//	secret:  name shared machines selector generator files needed_for owner group
//	         mode restart_units depends pos  (never contents: the model has none)
//	overlay: kind name channel platforms path url input attr reason added pos
//
// nixos, darwin and home are nested dicts, as on declared values; Nix
// constructs in them are Nix values (str() reads like the call that made them).
// Lists and dicts are frozen, so a result made at a file's top level can be
// shared by its tests. Asking for an unknown machine, node or file is an
// error with a "did you mean", not None: a typo in a test must not pass.
// docs/testing.md is the user's reference.
//
// # Output
//
// go test's shape: failing tests (FAIL test_x (file:line) 1.2ms, then each
// failure indented, then the test's print() output), then a summary line
// "N passed, M failed". -v also lists passing tests and their output. A file
// with something to show gets a "# path" header first: positions are
// root-relative labels, which alone do not say which folder's
// fleet_test.star failed. A test file that cannot be run is one failure.
// Exit status (the CLI's): 1 when anything failed, or when --run matched no
// test (a typo would otherwise pass); 0 with no test files at all, as go
// test.
package startest

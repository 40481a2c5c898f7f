package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/fleet-nix/fleet/engine/startest"
	"github.com/urfave/cli/v2"
)

func testCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run the *_test.star tests of a fleet and its libraries",
		ArgsUsage: "[PATH...]",
		Description: `Finds *_test.star files (PATH: files, or folders searched recursively, skipping
hidden and _-prefixed folders and testdata; default: the current folder) and runs
every test_* function in them, in source order, each on its own: a failure, an
error or a runaway loop in one test does not stop the others.

Tests see two modules besides the builtins:
  assert.eq(a, b, msg = None), assert.ne(a, b, msg = None), assert.true(cond, msg = None),
  assert.contains(container, item, msg = None), assert.fails(fn, "regexp")
  fleet.eval(src), fleet.load_file(path): evaluate fleet code as fleet run does and
  return its machines, features, users, secrets, graph and generated Nix files.
A test file's root is --root, else the nearest folder above it holding fleet.star.
The reference is docs/testing.md.

Prints failing tests with every failed assertion (file:line:col), then
"N passed, M failed"; -v lists passing tests too. Exits 1 if any test failed or
--run matched no test.`,
		Flags: append(testEvalFlags(),
			&cli.StringFlag{Name: "run", Usage: "run only the tests whose name matches `REGEXP` (Go syntax, like go test -run)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also list passing tests and their print() output"},
		),
		Action: func(c *cli.Context) error {
			memory, err := maxMemory(c)
			if err != nil {
				return err
			}
			opts := startest.Options{
				Root:      c.String("root"),
				MaxSteps:  c.Uint64("max-steps"),
				MaxMemory: memory,
				// Pinned dependencies are those of the fleet the test belongs to.
				Deps: func(root string) (func(string) (string, error), error) {
					return depsFor(c, filepath.Join(root, "fleet.star"))
				},
			}
			if re := c.String("run"); re != "" {
				var err error
				if opts.Run, err = regexp.Compile(re); err != nil {
					return usagef("test: --run %q: %v", re, err)
				}
			}
			files, err := startest.Discover(c.Args().Slice())
			if err != nil {
				var pe *startest.PathError
				if errors.As(err, &pe) {
					return usagef("test: %v", err)
				}
				return err
			}
			w := c.App.Writer
			if len(files) == 0 {
				fmt.Fprintln(w, "no test files")
				if opts.Run != nil {
					return fmt.Errorf("no tests match --run %q", c.String("run"))
				}
				return nil
			}
			r := &startest.Report{W: w, Verbose: c.Bool("verbose")}
			for _, f := range files {
				r.Add(startest.RunFile(c.Context, f, opts))
				if c.Context.Err() != nil {
					break // Ctrl-C: the file running reported it; skip the rest
				}
			}
			fmt.Fprintln(w, r.Summary())
			switch {
			case r.Failed > 0:
				return fmt.Errorf("FAIL: %d of %s failed", r.Failed, count(r.Failed+r.Passed, "test"))
			case r.Passed == 0 && opts.Run != nil:
				return fmt.Errorf("no tests match --run %q", c.String("run"))
			}
			return nil
		},
	}
}

// testEvalFlags are the evaluation flags, with what they mean for tests.
func testEvalFlags() []cli.Flag {
	flags := evalFlags()
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			if f.Name == "root" {
				f.Usage = "fleet root of every test file (default: the nearest folder above it holding fleet.star)"
			}
		case *cli.Uint64Flag:
			if f.Name == "max-steps" {
				f.Usage = "Starlark step budget of each test (and of each file's top level and libraries)"
			}
		}
	}
	return flags
}

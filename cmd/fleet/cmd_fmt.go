package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/fleet-nix/fleet/engine/lint"
	"github.com/fleet-nix/fleet/engine/starfmt"
	"github.com/urfave/cli/v2"
)

func fmtCommand() *cli.Command {
	return &cli.Command{
		Name:      "fmt",
		Usage:     "format .star files",
		ArgsUsage: "[PATH...]",
		Description: `Formats Starlark files in place with buildtools' printer (buildifier's layout) for
generic Starlark, without its rewrites: only layout changes, never the order of loads,
arguments or list elements. Every result is checked to parse to the same program.

PATHs are files or directories (default: the current directory). Directories are
searched recursively for *.star files and fleet.deps, skipping hidden directories
(.git, .fleet) and testdata. A file is rewritten (atomically, keeping its mode) only
if formatting changes it, and its name is printed.

With --check nothing is written: the files that are not formatted are listed and the
command exits 1 if there is any. --diff (-d) also prints what would change, as a
unified diff, and implies --check. A file that does not parse is reported as
file:line:col, left alone, and makes the command exit 1.

  fleet fmt                 # format every .star file under the current directory
  fleet fmt --check -d .    # in CI: fail, and show why, if something is not formatted`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "write nothing: list the files that are not formatted, exit 1 if any"},
			&cli.BoolFlag{Name: "diff", Aliases: []string{"d"}, Usage: "print a unified diff of what would change (implies --check)"},
		},
		Action: func(c *cli.Context) error {
			paths := c.Args().Slice()
			if len(paths) == 0 {
				paths = []string{"."}
			}
			check := c.Bool("check") || c.Bool("diff")
			files, err := starfmt.Files(paths)
			if err != nil {
				return err
			}
			var errs []error
			unformatted := 0
			for _, file := range files {
				src, err := os.ReadFile(file)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out, err := starfmt.Format(file, src)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if string(out) == string(src) {
					continue
				}
				if check {
					unformatted++
					fmt.Fprintln(c.App.Writer, file)
					if c.Bool("diff") {
						c.App.Writer.Write(starfmt.Diff(file, src, out))
					}
					continue
				}
				if err := starfmt.WriteFile(file, out); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(c.App.Writer, file)
			}
			if unformatted > 0 {
				errs = append(errs, fmt.Errorf("fmt: %s not formatted; run `fleet fmt` on %s", count(unformatted, "file"), them(unformatted)))
			}
			return errors.Join(errs...)
		},
	}
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func lintCommand() *cli.Command {
	return &cli.Command{
		Name:      "lint",
		Usage:     "report unused loads, symbols and features",
		ArgsUsage: "[FILE]",
		Description: `Evaluates the fleet (FILE, default fleet.star) and reports, as file:line:col, what
is declared or loaded and never used, in every .star file under the fleet root (test
files, testdata and hidden directories left out):

  unused-load      a load()ed symbol the file never uses
  unused-symbol    a top-level name starting with _ that the file never uses
  unused-local     a variable assigned (or a function defined) in a function and never
                   used there; parameters, loop variables and _names are not reported
  unused-feature   a feature no machine uses: not in its features, not required by
                   one of those, not a home feature of one of its users

Exits 1 when there is a finding. A comment at the end of the line a finding points
at, or alone on the line above it, silences it:

  # lint: ignore                    every finding on the line
  # lint: ignore=unused-feature     only these rules (separated by commas)

Text after the directive is free, to say why. Features declared in @stdlib or in a
dependency's files are not reported: the fleet cannot edit those.`,
		Flags: evalFlags(),
		Action: func(c *cli.Context) error {
			file, err := fileArg(c)
			if err != nil {
				return err
			}
			l, err := loadPath(c, file)
			if err != nil {
				return err
			}
			findings, err := lint.Fleet(l.fleet, l.graph)
			if err != nil {
				return err
			}
			for _, f := range findings {
				fmt.Fprintln(c.App.Writer, f)
			}
			if len(findings) > 0 {
				return fmt.Errorf("lint: %s", count(len(findings), "finding"))
			}
			return nil
		},
	}
}

package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/fleet-nix/fleet/engine/outdir"
	"github.com/urfave/cli/v2"
)

// outFlag is where the Nix tree goes.
func outFlag() cli.Flag {
	return &cli.StringFlag{Name: "out", Usage: "output folder of the Nix tree (default: .fleet/nix under the fleet root)"}
}

func nixCommand() *cli.Command {
	return &cli.Command{
		Name:      "nix",
		Usage:     "write the fleet's Nix flake tree",
		ArgsUsage: "[FILE]",
		Description: `Writes the flake tree: flake.nix, overlays/default.nix, modules/<class>/<feature>.nix,
machines/<class>/<machine>.nix, homes/<machine>/<user>.nix, secrets.nix, and copies
of the hand-written files they use. Files are written atomically and only when they
change; files fleet did not write are never touched; files it wrote before and no
longer produces are removed.

With --check nothing is written: the command lists every file that is missing,
differs (stale or edited by hand) or is no longer produced, and exits 1 if there is
any. Run it in CI to keep a committed tree in step with the .star files.`,
		Flags: append(evalFlags(), outFlag(), &cli.BoolFlag{Name: "check", Usage: "only compare the tree on disk with what would be written"}),
		Action: func(c *cli.Context) error {
			l, files, err := loadTree(c)
			if err != nil {
				return err
			}
			dir := outDir(c, l)
			if c.Bool("check") {
				diff, err := outdir.Check(dir, files)
				if err != nil {
					return err
				}
				if !diff.Empty() {
					return fmt.Errorf("the Nix tree in %s is not up to date; run `fleet nix %s` and commit the result:\n%s",
						dir, l.file, strings.TrimRight(diff.String(), "\n"))
				}
				fmt.Fprintf(c.App.Writer, "%s is up to date (%s)\n", dir, count(len(files), "file"))
				return nil
			}
			return writeTree(c.App.Writer, dir, files)
		},
	}
}

// outDir is --out, or .fleet/nix under the fleet root.
func outDir(c *cli.Context, l *loaded) string {
	if d := c.String("out"); d != "" {
		return d
	}
	return defaultOutDir(l)
}

// defaultOutDir is the tree folder without --out: .fleet/nix in the
// fleet's root.
func defaultOutDir(l *loaded) string {
	return filepath.Join(l.fleet.Root, ".fleet", "nix")
}

// writeTree writes the files and says what changed.
func writeTree(w io.Writer, dir string, files []outdir.File) error {
	rep, err := outdir.Write(dir, files)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "nix: %s: %d written, %d unchanged, %d removed\n", dir, len(rep.Written), len(rep.Unchanged), len(rep.Removed))
	for _, k := range rep.Kept {
		fmt.Fprintf(w, "nix: kept %s: fleet no longer produces it, but it was edited by hand\n", filepath.Join(dir, k))
	}
	return nil
}

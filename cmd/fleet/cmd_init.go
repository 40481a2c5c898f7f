package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-nix/fleet/engine/scaffold"
	"github.com/urfave/cli/v2"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "make a new fleet in DIR (default: the current folder)",
		ArgsUsage: "[DIR]",
		Description: `Writes a new fleet that fleet run accepts as it is, and whose comments teach the
layout: fleet.star (fleet, channel, include and one NixOS machine), features/base.star
(a feature, picked up by include("features/*.star")), fleet_test.star (tests that pass)
and .gitignore (the generated .fleet/ tree, except its flake.lock). Nothing is
overwritten: if any of these files exists, init writes none and says which.

The fleet is named after the folder (--name to choose). Your ssh public key becomes the
fleet's admin: --admin-key (a key line, or a .pub file), else the first of
~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub; --admin-key none leaves admins empty.

  mkdir homelab && cd homelab && fleet init && fleet run && fleet test`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "the fleet's name (default: from the folder's name)"},
			&cli.StringFlag{Name: "admin-key", Usage: "the admin's ssh public key: a key line, a .pub `FILE`, or none"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("init: takes at most one DIR, got %s", strings.Join(c.Args().Slice(), " "))
			}
			dir := c.Args().First()
			if dir == "" {
				dir = "."
			}
			key, from, err := adminKey(c.String("admin-key"))
			if err != nil {
				return err
			}
			files, err := scaffold.Files(dir, scaffold.Options{Name: c.String("name"), AdminKey: key})
			if err != nil {
				return usagef("init: %v", err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := scaffold.Write(dir, files); err != nil {
				return err
			}
			w := c.App.Writer
			for _, f := range files {
				fmt.Fprintf(w, "wrote %s\n", filepath.Join(dir, f.Path))
			}
			if from != "" {
				fmt.Fprintf(w, "admin: the key in %s\n", from)
			} else if key == "" {
				fmt.Fprintln(w, "admin: none yet; put your ssh public key in fleet(admins = [...]) before you deploy")
			}
			cd := ""
			if dir != "." {
				cd = "cd " + dir + " && "
			}
			fmt.Fprintf(w, "next: %sfleet run && fleet test; then set web's target and hardware, and fleet deploy --dry-run\n", cd)
			return nil
		},
	}
}

// adminKey is --admin-key's key line and the file it came from: a key
// line as given, a file's first line, "none" for no key, or (flag unset)
// the user's first default ssh public key, if any.
func adminKey(flag string) (key, from string, err error) {
	switch {
	case flag == "none":
		return "", "", nil
	case isKeyLine(flag):
		return strings.TrimSpace(flag), "", nil
	case flag != "":
		key, err := readKey(flag)
		if err != nil {
			return "", "", usagef("--admin-key: %v", err)
		}
		return key, flag, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", "", nil
	}
	for _, name := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
		p := filepath.Join(home, ".ssh", name)
		if key, err := readKey(p); err == nil {
			return key, p, nil
		}
	}
	return "", "", nil
}

// readKey is the first line of a public key file, checked to look like one.
func readKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	line = strings.TrimSpace(line)
	if !isKeyLine(line) {
		return "", fmt.Errorf("%s does not hold an ssh public key (it should start with ssh-ed25519, ssh-rsa or ecdsa-)", path)
	}
	return line, nil
}

// isKeyLine: s starts like an OpenSSH public key line.
func isKeyLine(s string) bool {
	return strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-")
}

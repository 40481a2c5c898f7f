package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"github.com/fleet-nix/fleet/engine/secrets"
	"github.com/urfave/cli/v2"
)

func secretsCommand() *cli.Command {
	identity := &cli.StringFlag{Name: "identity", Aliases: []string{"i"}, EnvVars: []string{"FLEET_AGE_IDENTITY"},
		Usage: "age identity (or OpenSSH private key) that decrypts the secrets (default: ~/.config/fleet/age/keys.txt)"}
	fileFlag := &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Value: "fleet.star", Usage: "the fleet file"}
	return &cli.Command{
		Name:  "secrets",
		Usage: "generate, check, rekey, read and write the fleet's age-encrypted secrets",
		Description: `Secrets live in secrets/<machine or shared>/<secret>/<file>.age under the fleet root,
encrypted with age to the fleet's admins and to the host key of every machine that reads
them; public halves (key.pub) are stored in plain text. The files are agenix-compatible
(see the generated secrets.nix). Plaintext exists only in memory or in a folder in
fleet's private per-user place, removed when the command ends (also on Ctrl-C or
SIGTERM); the folders of a run killed with -9 are removed by the next run.`,
		Subcommands: []*cli.Command{
			{
				Name: "generate", Usage: "create the secrets that are missing", ArgsUsage: "[FILE]",
				Description: `Generates, encrypts and stores every declared secret file that does not exist yet, in
dependency order, machines' host keys first. Secrets typed by a person (gen.prompt) are
asked on a terminal; without one they are listed as missing. --regenerate makes the
named secrets anew.`,
				Flags: append(evalFlags(), identity,
					&cli.StringSliceFlag{Name: "on", Usage: "only these machines' secrets (name, @tag, glob, all); repeatable"},
					&cli.StringSliceFlag{Name: "regenerate", Usage: "make this secret anew even if it exists; repeatable"}),
				Action: func(c *cli.Context) error {
					l, err := load(c)
					if err != nil {
						return err
					}
					on, err := parseSelectors("--on", c.StringSlice("on"))
					if err != nil {
						return err
					}
					for _, name := range c.StringSlice("regenerate") {
						if l.fleet.Secret(name) == nil {
							return fmt.Errorf("--regenerate %s: the fleet declares no such secret", name)
						}
					}
					ids, _ := loadIdentities(c) // only gen.command secrets with depends need them
					opts := secrets.Options{On: on, Regenerate: c.StringSlice("regenerate"), Identities: ids, Stderr: c.App.ErrWriter}
					if isTerminal(c.App.Reader) {
						opts.Prompter = secrets.NewTerminalPrompter()
					}
					st := &secrets.Store{Root: l.fleet.Root}
					sweepPlaintext(c.App.ErrWriter)
					rep, err := secrets.GenerateMissing(c.Context, l.fleet, st, opts)
					rep.Write(c.App.Writer)
					if err != nil && len(rep.Failed) == 0 {
						return err
					}
					if err := notDone(rep, "generated"); err != nil {
						// The report above says which and why.
						return err
					}
					if len(rep.NeedsPrompt) > 0 {
						n := len(rep.NeedsPrompt)
						return fmt.Errorf("%s typed by a person %s missing: run fleet secrets generate on a terminal", count(n, "secret file"), plural.Choose(n, "is", "are"))
					}
					return nil
				},
			},
			{
				Name: "check", Usage: "list missing, stale and damaged secret files (decrypts nothing)", ArgsUsage: "[FILE]",
				Flags: evalFlags(),
				Action: func(c *cli.Context) error {
					l, err := load(c)
					if err != nil {
						return err
					}
					st := &secrets.Store{Root: l.fleet.Root}
					rep, err := checkSecrets(st, l.fleet)
					if err != nil {
						return err
					}
					rep.Write(c.App.Writer)
					if !rep.OK() {
						return errors.New("the secrets are not in order (see above)")
					}
					fmt.Fprintln(c.App.Writer, "secrets: all present, encrypted to the current recipients")
					return nil
				},
			},
			{
				Name: "rekey", Usage: "re-encrypt stale secret files to the current recipients", ArgsUsage: "[FILE]",
				Flags: append(evalFlags(), identity),
				Action: func(c *cli.Context) error {
					l, err := load(c)
					if err != nil {
						return err
					}
					ids, err := loadIdentities(c)
					if err != nil {
						return err
					}
					st := &secrets.Store{Root: l.fleet.Root}
					hostKeys, err := st.HostKeys(l.fleet)
					if err != nil {
						return err
					}
					rep, err := st.Rekey(c.Context, l.fleet, hostKeys, ids)
					rep.Write(c.App.Writer)
					if err != nil {
						return err
					}
					return notDone(rep, "rekeyed")
				},
			},
			{
				Name: "get", Usage: "print a secret's value", ArgsUsage: "NAME[/FILE]",
				Flags: append(evalFlags(), identity, fileFlag, &cli.StringFlag{Name: "machine", Aliases: []string{"m"}, Usage: "the machine, for a per-machine secret"}),
				Action: func(c *cli.Context) error {
					l, s, file, machine, err := secretArg(c)
					if err != nil {
						return err
					}
					st := &secrets.Store{Root: l.fleet.Root}
					rel := secrets.FilePath(s, machine, file)
					if !file.Secret {
						data, err := st.ReadPublic(rel)
						if err != nil {
							return err
						}
						_, err = c.App.Writer.Write(data)
						return err
					}
					ids, err := loadIdentities(c)
					if err != nil {
						return err
					}
					data, err := st.Read(rel, ids)
					if err != nil {
						return err
					}
					_, err = c.App.Writer.Write(data)
					return err
				},
			},
			{
				Name: "set", Usage: "store a secret's value, read from standard input", ArgsUsage: "NAME[/FILE]",
				Flags: append(evalFlags(), fileFlag, &cli.StringFlag{Name: "machine", Aliases: []string{"m"}, Usage: "the machine, for a per-machine secret"}),
				Action: func(c *cli.Context) error {
					l, s, file, machine, err := secretArg(c)
					if err != nil {
						return err
					}
					value, err := io.ReadAll(c.App.Reader)
					if err != nil {
						return err
					}
					st := &secrets.Store{Root: l.fleet.Root}
					hostKeys, err := st.HostKeys(l.fleet)
					if err != nil {
						return err
					}
					noHostKey, err := st.Set(l.fleet, hostKeys, s, machine, file, value)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "stored %s\n", secrets.FilePath(s, machine, file))
					if len(noHostKey) > 0 {
						fmt.Fprintf(c.App.Writer, "not readable yet by %s (no host key): run fleet secrets rekey once it is known\n", strings.Join(noHostKey, ", "))
					}
					return nil
				},
			},
			secretsImportCommand(identity, fileFlag),
			{
				Name: "keygen", Usage: "create an admin age identity",
				Description: `Writes a new age identity to --identity (default ~/.config/fleet/age/keys.txt, mode
0600; an existing file is never overwritten) and prints its recipient: add it to
fleet(admins = [...]) or to your user(age = ...), then run fleet secrets rekey.`,
				Flags: []cli.Flag{identity},
				Action: func(c *cli.Context) error {
					path, err := identityPath(c)
					if err != nil {
						return err
					}
					if _, err := os.Stat(path); err == nil {
						return fmt.Errorf("%s exists: fleet does not overwrite an identity (its recipient: age-keygen -y %s)", path, path)
					}
					out, err := secrets.Generate(context.Background(), &model.Generator{Kind: "age_keypair"}, secrets.Inputs{})
					if err != nil {
						return err
					}
					if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
						return err
					}
					f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
					if err != nil {
						return err
					}
					if _, err := f.Write(out["key"]); err != nil {
						f.Close()
						return err
					}
					if err := f.Close(); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "wrote %s\nrecipient: %s\n", path, strings.TrimSpace(string(out["key.pub"])))
					return nil
				},
			},
		},
	}
}

// notDone is the error of a generate or rekey run whose report lists
// files that failed or are not age files (left alone): every such file
// is a non-zero exit, whatever the run did with the others.
func notDone(rep secrets.Report, verb string) error {
	bad := map[string]bool{}
	for _, x := range append(append([]secrets.FileState(nil), rep.Failed...), rep.Corrupt...) {
		bad[x.Path] = true
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s could not be %s (see above; `fleet secrets check` lists what is not in order)", count(len(bad), "secret file"), verb)
}

// checkSecrets is Check with the host keys the store knows.
func checkSecrets(st *secrets.Store, f *model.Fleet) (secrets.Report, error) {
	hostKeys, err := st.HostKeys(f)
	if err != nil {
		return secrets.Report{}, err
	}
	return st.Check(f, hostKeys)
}

// identityPath is --identity / FLEET_AGE_IDENTITY, or the usual place.
func identityPath(c *cli.Context) (string, error) {
	if p := c.String("identity"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home folder for the default identity: use --identity: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "fleet", "age", "keys.txt"), nil
}

func loadIdentities(c *cli.Context) ([]age.Identity, error) {
	path, err := identityPath(c)
	if err != nil {
		return nil, err
	}
	ids, err := secrets.LoadIdentities(path)
	if err != nil {
		return nil, fmt.Errorf("loading the age identity %s (set --identity or FLEET_AGE_IDENTITY, or create one with fleet secrets keygen): %w", path, err)
	}
	return ids, nil
}

// secretArg resolves NAME[/FILE] (and --machine) against the fleet.
func secretArg(c *cli.Context) (*loaded, *model.Secret, model.SecretFile, string, error) {
	var none model.SecretFile
	if c.NArg() != 1 {
		return nil, nil, none, "", usagef("%s: name one secret: NAME or NAME/FILE", c.Command.Name)
	}
	l, err := loadPath(c, c.String("file"))
	if err != nil {
		return nil, nil, none, "", err
	}
	name, fileName, _ := strings.Cut(c.Args().First(), "/")
	s := l.fleet.Secret(name)
	if s == nil {
		return nil, nil, none, "", fmt.Errorf("no secret %q in %s", name, l.file)
	}
	var file *model.SecretFile
	var names []string
	for i, fl := range s.Files {
		names = append(names, fl.Name)
		if fl.Name == fileName || fileName == "" && fl.Secret && file == nil {
			file = &s.Files[i]
		}
	}
	if file == nil {
		return nil, nil, none, "", fmt.Errorf("secret %s has no file %q: its files are %s", name, fileName, strings.Join(names, ", "))
	}
	machine := c.String("machine")
	if !s.Shared && len(s.Machines) > 0 {
		if machine == "" {
			return nil, nil, none, "", usagef("%s: secret %s is per machine: say which with --machine (one of %s)", c.Command.Name, name, strings.Join(s.Machines, ", "))
		}
		if !slices.Contains(s.Machines, machine) {
			return nil, nil, none, "", fmt.Errorf("secret %s is not declared for machine %s (its machines: %s)", name, machine, strings.Join(s.Machines, ", "))
		}
	}
	return l, s, *file, machine, nil
}

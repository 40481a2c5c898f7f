package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"github.com/fleet-nix/fleet/engine/secrets"
	"github.com/fleet-nix/fleet/engine/secrets/sopsfile"
	"github.com/urfave/cli/v2"
)

// secretsImportCommand is `fleet secrets import`: values kept by another
// tool become fleet secrets. Each tool is a subcommand.
func secretsImportCommand(identity, fileFlag *cli.StringFlag) *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "store the values of another tool's secret files as fleet secrets",
		Subcommands: []*cli.Command{
			{
				Name: "sops", Usage: "import the values of sops files (sops-nix) encrypted to age", ArgsUsage: "SOPS_FILE...",
				Description: `Decrypts each sops file with your age identity (--identity, FLEET_AGE_IDENTITY or
~/.config/fleet/age/keys.txt), checks sops' MAC, and stores every value as a fleet secret,
encrypted to the fleet's admins and to the machines that read it. The formats are sops':
YAML, JSON, dotenv, INI and binary, chosen by extension (.yaml/.yml, .json, .env, .ini,
anything else binary) or --format.

Each value becomes the secret named after its path, the keys joined by "-"
(db: {password: ...} is db-password; a binary file's value is named after the file),
unless --secret or --key PATH=NAME names it. --key PATH imports only the values at PATH
(keys joined by "/", as sops-nix's key option: db/password; a list position is a key:
hosts/0); PATH may be a mapping, for all the values under it. The secrets must be declared
in the fleet: the declarations of those that are not are printed, for you to add to
fleet.star, and nothing is imported until they are. A per-machine secret is stored for
--machine (or its one machine); a shared one once. Nothing but names is printed, and no
value is written anywhere but into its encrypted file.`,
				Flags: append(evalFlags(), identity, fileFlag,
					&cli.StringFlag{Name: "machine", Aliases: []string{"m"}, Usage: "the machine, for per-machine secrets (also in the declarations printed)"},
					&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "import only the values at PATH, as secret NAME with PATH=NAME; repeatable"},
					&cli.StringFlag{Name: "secret", Aliases: []string{"s"}, Usage: "the secret's name, when one value is imported"},
					&cli.StringFlag{Name: "format", Usage: "the sops files' format: yaml, json, dotenv, ini or binary (default: by extension)"},
					&cli.BoolFlag{Name: "dry-run", Usage: "decrypt and check, print what would be stored, store nothing"}),
				Action: importSops,
			},
			secretsImportClanCommand(identity, fileFlag),
		},
	}
}

// imported is one value of a sops file on its way to a fleet secret.
type imported struct {
	source string // FILE:path, for messages
	name   string
	value  []byte
}

func importSops(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("import sops: name the sops files to import")
	}
	var format sopsfile.Format
	if f := c.String("format"); f != "" {
		var err error
		if format, err = sopsfile.ParseFormat(f); err != nil {
			return usageError{"--format: " + err.Error()}
		}
	}
	keys := map[string]string{} // path -> name ("" when not named)
	var keyOrder []string
	for _, k := range c.StringSlice("key") {
		path, name := k, ""
		if i := strings.LastIndex(k, "="); i >= 0 {
			path, name = k[:i], k[i+1:]
		}
		path = strings.Trim(path, "/")
		if path == "" {
			return usagef("--key %q: name a path in the file (db/password)", k)
		}
		if _, dup := keys[path]; dup {
			return usagef("--key %s is given twice", path)
		}
		keys[path] = name
		keyOrder = append(keyOrder, path)
	}

	// A missing file is the mistake to report, before the identity.
	for _, file := range c.Args().Slice() {
		if _, err := os.Stat(file); err != nil {
			return err
		}
	}
	l, err := loadPath(c, c.String("file"))
	if err != nil {
		return err
	}
	ids, err := loadIdentities(c)
	if err != nil {
		return err
	}

	// Decrypt everything first: nothing is stored unless every file reads.
	var all [][]sopsfile.Value
	defer func() {
		for _, vs := range all {
			sopsfile.Wipe(vs)
		}
	}()
	var items []imported
	matched := map[string]bool{}
	var known []string
	for _, file := range c.Args().Slice() {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		f := format
		if f == "" {
			f = sopsfile.FormatOf(file)
		}
		vs, err := sopsfile.Decrypt(data, f, ids)
		if err != nil {
			return fmt.Errorf("%s (sops %s): %w", file, f, err)
		}
		all = append(all, vs)
		for _, v := range vs {
			path := strings.Join(v.Path, "/")
			known = append(known, path)
			name, ok := "", len(keys) == 0
			for _, k := range keyOrder {
				if path == k || strings.HasPrefix(path, k+"/") {
					ok, matched[k] = true, true
					if path == k {
						name = keys[k]
					}
					break
				}
			}
			if !ok {
				continue
			}
			if name == "" {
				if f == sopsfile.Binary {
					name = secretName([]string{strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))})
				} else {
					name = secretName(v.Path)
				}
			}
			items = append(items, imported{source: file + ":" + path, name: name, value: v.Data})
		}
	}
	for _, k := range keyOrder {
		if !matched[k] {
			return fmt.Errorf("--key %s: no such value in %s (its values: %s)", k, strings.Join(c.Args().Slice(), ", "), strings.Join(known, ", "))
		}
	}
	if len(items) == 0 {
		return errors.New("no values to import")
	}
	if s := c.String("secret"); s != "" {
		if len(items) != 1 {
			return usagef("--secret names one value, but %s are imported: name each with --key PATH=NAME", count(len(items), "value"))
		}
		items[0].name = s
	}

	// Every value against the fleet's declarations, before anything is
	// stored.
	type target struct {
		item    imported
		secret  *model.Secret
		machine string
		file    model.SecretFile
	}
	var targets []target
	var undeclared []string
	var problems []string
	seen := map[string]string{}
	machine := c.String("machine")
	if machine != "" && l.fleet.Machine(machine) == nil {
		return fmt.Errorf("--machine %s: the fleet has no such machine", machine)
	}
	for _, it := range items {
		s := l.fleet.Secret(it.name)
		if s == nil {
			if !slices.Contains(undeclared, it.name) {
				undeclared = append(undeclared, it.name)
			}
			continue
		}
		m := ""
		switch {
		case s.Shared && machine != "":
			problems = append(problems, fmt.Sprintf("%s: secret %s is shared, not per machine: leave out --machine", it.source, s.Name))
			continue
		case !s.Shared && machine == "" && len(s.Machines) == 1:
			m = s.Machines[0]
		case !s.Shared && machine == "":
			problems = append(problems, fmt.Sprintf("%s: secret %s is per machine: say which with --machine (one of %s)", it.source, s.Name, strings.Join(s.Machines, ", ")))
			continue
		case !s.Shared:
			if !slices.Contains(s.Machines, machine) {
				problems = append(problems, fmt.Sprintf("%s: secret %s is not declared for machine %s (its machines: %s)", it.source, s.Name, machine, orNone(strings.Join(s.Machines, ", "))))
				continue
			}
			m = machine
		}
		var file *model.SecretFile
		for i := range s.Files {
			if s.Files[i].Secret {
				file = &s.Files[i]
				break
			}
		}
		if file == nil {
			problems = append(problems, fmt.Sprintf("%s: secret %s has no encrypted file", it.source, s.Name))
			continue
		}
		rel := secrets.FilePath(s, m, *file)
		if prev, dup := seen[rel]; dup {
			problems = append(problems, fmt.Sprintf("%s and %s would both be stored as %s: name them apart with --key PATH=NAME", prev, it.source, rel))
			continue
		}
		seen[rel] = it.source
		targets = append(targets, target{it, s, m, *file})
	}
	if len(undeclared) > 0 {
		w := c.App.Writer
		fmt.Fprintf(w, "# %s not declared in %s; add %s and run the import again", count(len(undeclared), "secret"), l.file, plural.Choose(len(undeclared), "it", "them"))
		if machine == "" {
			fmt.Fprint(w, " (shared = True without machines: read by the admins only; add machines = ... or import with --machine)")
		}
		fmt.Fprintln(w, ":")
		for _, name := range undeclared {
			fmt.Fprintln(w, secretDeclaration(name, machine))
		}
	}
	if err := importRefused(problems, len(undeclared)); err != nil {
		return err
	}
	var out []importTarget
	for _, t := range targets {
		out = append(out, importTarget{source: t.item.source, secret: t.secret, machine: t.machine, file: t.file, value: t.item.value})
	}
	return storeImported(c.App.Writer, l.fleet, out, c.Bool("dry-run"))
}

// importTarget is one decrypted value an import stores, and where.
type importTarget struct {
	source  string // where it came from, for messages
	secret  *model.Secret
	machine string
	file    model.SecretFile
	value   []byte
}

// importRefused is the error of an import that stores nothing: problems
// found, or secrets still to declare (their declarations are printed).
func importRefused(problems []string, undeclared int) error {
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	if undeclared > 0 {
		return fmt.Errorf("%s %s not declared (see above): nothing imported", count(undeclared, "secret"), plural.Choose(undeclared, "is", "are"))
	}
	return nil
}

// storeImported stores every target through the store (so the recipients
// record is right), or with dryRun says where each would go. Only names
// are printed.
func storeImported(w io.Writer, f *model.Fleet, targets []importTarget, dryRun bool) error {
	if dryRun {
		for _, t := range targets {
			fmt.Fprintf(w, "would store %s as %s\n", t.source, secrets.FilePath(t.secret, t.machine, t.file))
		}
		return nil
	}
	st := &secrets.Store{Root: f.Root}
	hostKeys, err := st.HostKeys(f)
	if err != nil {
		return err
	}
	var noHostKey []string
	for _, t := range targets {
		missing, err := st.Set(f, hostKeys, t.secret, t.machine, t.file, t.value)
		if err != nil {
			return fmt.Errorf("%s: %w", t.source, err)
		}
		for _, m := range missing {
			if !slices.Contains(noHostKey, m) {
				noHostKey = append(noHostKey, m)
			}
		}
		fmt.Fprintf(w, "stored %s as %s\n", t.source, secrets.FilePath(t.secret, t.machine, t.file))
	}
	if len(noHostKey) > 0 {
		fmt.Fprintf(w, "not readable yet by %s (no host key): run fleet secrets rekey once it is known\n", strings.Join(noHostKey, ", "))
	}
	return nil
}

// secretName is the default secret name of a value at path: its keys
// joined by "-", made a secret name (secrets.NameFor).
func secretName(path []string) string { return secrets.NameFor(strings.Join(path, "-")) }

// secretDeclaration is the secret(...) line that declares an imported
// secret: per machine for --machine, else shared (read by the admins
// until machines are added).
func secretDeclaration(name, machine string) string {
	if machine != "" {
		return fmt.Sprintf("secret(%s, machines = %s)", strconv.Quote(name), strconv.Quote(machine))
	}
	return fmt.Sprintf("secret(%s, shared = True)", strconv.Quote(name))
}

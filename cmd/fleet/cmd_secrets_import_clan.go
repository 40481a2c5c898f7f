package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"github.com/fleet-nix/fleet/engine/secrets"
	"github.com/fleet-nix/fleet/engine/secrets/clanvars"
	"github.com/urfave/cli/v2"
)

// secretsImportClanCommand is `fleet secrets import clan DIR`.
func secretsImportClanCommand(identity, fileFlag *cli.StringFlag) *cli.Command {
	return &cli.Command{
		Name: "clan", Usage: "import a clan repository's vars (sops secrets and public files)", ArgsUsage: "CLAN_DIR",
		Description: `Reads the vars of the clan repository CLAN_DIR (vars/per-machine/<machine>/<generator>/<file>
and vars/shared/<generator>/<file>: secret files in clan's sops store, public ones as value),
decrypts the secret files with your age identity (--identity, FLEET_AGE_IDENTITY or
~/.config/fleet/age/keys.txt; clan encrypts every var to its admins), and stores every
file as a fleet secret file of the same name, encrypted to the fleet's admins and the
machines that read it; public files in plain text, as fleet keeps a key's public half.

Each generator becomes a fleet secret named after it (or after it and a file, when it
holds several): an ssh-ed25519 key pair gen.ssh_keypair, an age key pair gen.age_keypair,
a zerotier identity gen.command with zerotier-idtool, a password gen.passphrase or
gen.password (its -hash file gen.command with mkpasswd), a lone secret file gen.prompt(),
and anything else a gen.command that says it was imported. A per-machine generator is
declared for the machines that have it; a shared one for the machines clan encrypted it
to (none: the admins only). The secrets must be declared in the fleet: the declarations of
those that are not are printed, for you to add to fleet.star, and nothing is stored until
they are.

It also reports the recipients clan recorded: its users whose keys are not fleet admins,
its machines the fleet lacks (their vars are not imported), and recorded recipients whose
key is gone. Clan's machine age keys are not imported: fleet encrypts to host keys.`,
		Flags: append(evalFlags(), identity, fileFlag,
			&cli.BoolFlag{Name: "dry-run", Usage: "decrypt and check, print what would be stored, store nothing"}),
		Action: importClan,
	}
}

// clanSecret is a fleet secret planned from clan generators.
type clanSecret struct {
	decl     clanvars.Decl
	shared   bool
	machines []string // per machine: those with the generator; shared: its readers
	where    string   // the first generator, for messages
}

// clanValue is one clan file on its way to a fleet secret file.
type clanValue struct {
	source  string // machine/generator/file, for messages
	secret  string
	machine string
	file    string
	value   []byte
}

func importClan(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("import clan: name the clan repository's folder (the one with vars/ and sops/)")
	}
	repo, err := clanvars.Read(c.Args().First())
	if err != nil {
		return err
	}
	l, err := loadPath(c, c.String("file"))
	if err != nil {
		return err
	}
	ids, err := loadIdentities(c)
	if err != nil {
		return err
	}
	f := l.fleet
	w := c.App.Writer
	reportClanRecipients(w, repo, f)

	// Decrypt everything first: nothing is stored unless every file reads.
	var values []clanValue
	defer func() {
		for _, v := range values {
			clear(v.value)
		}
	}()
	planned := map[string]*clanSecret{}
	var order []string
	var problems []string
	for _, g := range repo.Generators {
		if g.Machine != "" && f.Machine(g.Machine) == nil {
			continue // reported above
		}
		got := map[string][]byte{}
		var failed bool
		value := func(file clanvars.File) []byte {
			if v, ok := got[file.Name]; ok {
				return v
			}
			v, err := file.Value(ids)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s/%s: %v", g.Where(), file.Name, err))
				failed = true
			}
			got[file.Name] = v
			return v
		}
		for _, file := range g.Files {
			value(file)
		}
		if failed {
			continue
		}
		for _, d := range clanvars.Map(g, value) {
			p := planned[d.Name]
			if p == nil {
				p = &clanSecret{decl: d, shared: g.Machine == "", where: g.Where()}
				planned[d.Name] = p
				order = append(order, d.Name)
			} else if p.shared != (g.Machine == "") {
				problems = append(problems, fmt.Sprintf("%s and %s would both be fleet secret %s, once shared and once per machine: declare one and import the other by hand", p.where, g.Where(), d.Name))
				continue
			}
			if g.Machine != "" {
				p.machines = append(p.machines, g.Machine)
			}
			for _, name := range d.ClanFiles {
				i := slices.IndexFunc(g.Files, func(x clanvars.File) bool { return x.Name == name })
				file := g.Files[i]
				if file.Secret {
					_, readers := repo.Recipients(file)
					if g.Machine == "" {
						for _, m := range readers {
							if f.Machine(m) != nil && !slices.Contains(p.machines, m) {
								p.machines = append(p.machines, m)
							}
						}
					} else if !slices.Contains(readers, g.Machine) {
						fmt.Fprintf(w, "note: clan kept %s/%s from %s (the admins only); fleet encrypts a per-machine secret to its machine too\n", g.Where(), name, g.Machine)
					}
				}
				values = append(values, clanValue{source: g.Where() + "/" + name, secret: d.Name, machine: g.Machine, file: name, value: got[name]})
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	if len(values) == 0 {
		return errors.New("no vars to import")
	}

	// Every secret against the fleet's declarations, before anything is
	// stored.
	var undeclared []string
	for _, name := range order {
		p := planned[name]
		sort.Strings(p.machines)
		s := f.Secret(name)
		if s == nil {
			undeclared = append(undeclared, fmt.Sprintf("# %s: %s\n%s", p.where, p.decl.Why, p.decl.Declaration(p.shared, p.machines)))
			continue
		}
		if s.Shared != p.shared {
			problems = append(problems, fmt.Sprintf("%s: secret %s is %s in the fleet, %s in clan", p.where, name, sharedWord(s.Shared), sharedWord(p.shared)))
			continue
		}
		if !p.shared {
			for _, m := range p.machines {
				if !slices.Contains(s.Machines, m) {
					problems = append(problems, fmt.Sprintf("secret %s is not declared for machine %s (its machines: %s)", name, m, orNone(strings.Join(s.Machines, ", "))))
				}
			}
		}
	}
	if len(undeclared) > 0 {
		fmt.Fprintf(w, "# %s not declared in %s; add %s and run the import again:\n", count(len(undeclared), "secret"), l.file, plural.Choose(len(undeclared), "it", "them"))
		for _, d := range undeclared {
			fmt.Fprintln(w, d)
		}
	}
	type target struct {
		v      clanValue
		secret *model.Secret
		file   model.SecretFile
	}
	var targets []target
	if len(undeclared) == 0 && len(problems) == 0 {
		for _, v := range values {
			s := f.Secret(v.secret)
			i := slices.IndexFunc(s.Files, func(x model.SecretFile) bool { return x.Name == v.file })
			if i < 0 {
				var names []string
				for _, x := range s.Files {
					names = append(names, x.Name)
				}
				problems = append(problems, fmt.Sprintf("%s: secret %s has no file %s (its files: %s): add files = {OUTPUT: %q}", v.source, s.Name, v.file, strings.Join(names, ", "), v.file))
				continue
			}
			targets = append(targets, target{v, s, s.Files[i]})
		}
	}
	if err := importRefused(problems, len(undeclared)); err != nil {
		return err
	}
	var out []importTarget
	for _, t := range targets {
		out = append(out, importTarget{source: t.v.source, secret: t.secret, machine: t.v.machine, file: t.file, value: t.v.value})
	}
	return storeImported(w, f, out, c.Bool("dry-run"))
}

func sharedWord(shared bool) string {
	if shared {
		return "shared"
	}
	return "per machine"
}

// reportClanRecipients compares the recipients clan recorded with the
// fleet's admins and machines.
func reportClanRecipients(w io.Writer, repo *clanvars.Repo, f *model.Fleet) {
	admins := map[string]bool{}
	for _, a := range f.AdminRecipients() {
		if n, err := secrets.NormalizeRecipient(a); err == nil {
			admins[n] = true
		}
	}
	for _, u := range slices.Sorted(maps.Keys(repo.Users)) {
		admin := false
		for _, k := range repo.Users[u] {
			if n, err := secrets.NormalizeRecipient(k); err == nil && admins[n] {
				admin = true
			}
		}
		if admin {
			fmt.Fprintf(w, "clan user %s: a fleet admin\n", u)
		} else {
			fmt.Fprintf(w, "clan user %s (%s): not a fleet admin: the imported secrets are not encrypted to it\n", u, strings.Join(repo.Users[u], ", "))
		}
	}
	machines := map[string]bool{}
	for m := range repo.Machines {
		machines[m] = true
	}
	for _, g := range repo.Generators {
		if g.Machine != "" {
			machines[g.Machine] = true
		}
	}
	for _, m := range slices.Sorted(maps.Keys(machines)) {
		switch {
		case f.Machine(m) == nil:
			fmt.Fprintf(w, "clan machine %s: not in the fleet: its vars are not imported\n", m)
		case len(repo.Machines[m]) > 0:
			fmt.Fprintf(w, "clan machine %s: in the fleet (fleet encrypts to its host key, not clan's age key)\n", m)
		}
	}
	missing := map[string][]string{}
	for _, g := range repo.Generators {
		for _, file := range g.Files {
			users, ms := repo.Recipients(file)
			for _, u := range users {
				if _, ok := repo.Users[u]; !ok {
					missing["user "+u] = append(missing["user "+u], g.Where()+"/"+file.Name)
				}
			}
			for _, m := range ms {
				if _, ok := repo.Machines[m]; !ok {
					missing["machine "+m] = append(missing["machine "+m], g.Where()+"/"+file.Name)
				}
			}
		}
	}
	for _, who := range slices.Sorted(maps.Keys(missing)) {
		fmt.Fprintf(w, "clan recorded %s as a recipient of %s, but has no key for it (not in sops/)\n", who, strings.Join(missing[who], ", "))
	}
}

package clanvars

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/engine/secrets"
)

// Decl is a fleet secret that holds some of a generator's files.
type Decl struct {
	Name string
	// Generate is the gen.* expression that makes the files again.
	Generate string
	// Files maps the generator's outputs to the clan file names they are
	// stored as (files = {...}): the fleet keeps clan's file names.
	// ClanFiles are the files it holds.
	Files     map[string]string
	ClanFiles []string
	NeededFor string
	Depends   []string
	// Why says which gen.* was chosen and why, for the comment printed
	// above the declaration.
	Why string
}

// Map says which fleet secrets a generator's files become: key pairs
// (a file and its public .pub: ssh-ed25519 or age) gen.ssh_keypair and
// gen.age_keypair, a zerotier identity gen.command with zerotier-idtool
// (as features/zerotier.star), a password gen.passphrase or gen.password
// (and a file next to it ending in -hash gen.command with mkpasswd, as
// lib/secrets.star's user_password), a lone secret file gen.prompt(), and
// whatever else is left one gen.command that says it was imported (its
// files' values are kept; fleet cannot make them again). value gives a
// file's value (the public files' and passwords' shapes decide).
func Map(g *Generator, value func(File) []byte) []Decl {
	byName := map[string]File{}
	for _, f := range g.Files {
		byName[f.Name] = f
	}
	used := map[string]bool{}
	var decls []Decl
	var hashes []Decl // named after their password, after the others
	for _, f := range g.Files {
		pub, ok := byName[f.Name+".pub"]
		if !f.Secret || !ok || pub.Secret {
			continue
		}
		v := value(pub)
		kind := ""
		switch {
		case bytes.HasPrefix(v, []byte("ssh-ed25519 ")):
			kind = "ssh_keypair"
		case bytes.HasPrefix(v, []byte("age1")):
			kind = "age_keypair"
		default:
			continue
		}
		used[f.Name], used[pub.Name] = true, true
		decls = append(decls, Decl{Generate: "gen." + kind + "()", Files: map[string]string{"key": f.Name, "key.pub": pub.Name},
			ClanFiles: []string{f.Name, pub.Name}, Why: "a key pair"})
	}
	if f, ok := byName["zerotier-identity-secret"]; ok && f.Secret && !used[f.Name] {
		used[f.Name] = true
		decls = append(decls, Decl{Generate: `gen.command(["zerotier-idtool", "generate", "$out/identity.secret"], outputs = ["identity.secret"])`,
			Files: map[string]string{"identity.secret": f.Name}, ClanFiles: []string{f.Name}, Why: "a zerotier identity"})
	}
	for _, f := range g.Files {
		if !f.Secret || used[f.Name] || !strings.Contains(f.Name, "password") || strings.Contains(f.Name, "hash") {
			continue
		}
		used[f.Name] = true
		d := Decl{Generate: passwordGen(value(f)), Files: map[string]string{"value": f.Name}, ClanFiles: []string{f.Name}, Why: "a password"}
		decls = append(decls, d)
		if h, ok := byName[f.Name+"-hash"]; ok && !used[h.Name] {
			used[h.Name] = true
			hashes = append(hashes, Decl{
				Generate:  "", // set once the password's name is known
				Files:     map[string]string{"hash": h.Name},
				ClanFiles: []string{h.Name}, NeededFor: "users", Depends: []string{f.Name}, Why: "the password's hash",
			})
		}
	}
	var rest []File
	for _, f := range g.Files {
		if !used[f.Name] {
			rest = append(rest, f)
		}
	}
	public := false
	for _, f := range rest {
		public = public || !f.Secret
	}
	switch {
	case len(rest) == 0:
	case !public:
		for _, f := range rest {
			decls = append(decls, Decl{Generate: "gen.prompt()", Files: map[string]string{"value": f.Name}, ClanFiles: []string{f.Name},
				Why: "imported: fleet asks for it again"})
		}
	default:
		d := Decl{Files: map[string]string{}, Why: "imported: no gen.* makes these files; the command says so"}
		var outputs []string
		for _, f := range rest {
			out := f.Name
			switch {
			case !f.Secret && !strings.HasSuffix(out, ".pub"):
				out += ".pub"
			case f.Secret && strings.HasSuffix(out, ".pub"):
				out += ".secret"
			}
			outputs = append(outputs, strconv.Quote(out))
			d.Files[out] = f.Name
			d.ClanFiles = append(d.ClanFiles, f.Name)
		}
		d.Generate = fmt.Sprintf(`gen.command(["sh", "-c", %s], outputs = [%s])`,
			strconv.Quote(fmt.Sprintf("echo 'clan generator %s was imported: write the command that makes it' >&2; exit 1", g.Name)),
			strings.Join(outputs, ", "))
		decls = append(decls, d)
	}

	// Names: the generator's, or with the first file's when it has several.
	for i := range decls {
		if len(decls) > 1 {
			decls[i].Name = secrets.NameFor(g.Name + "-" + strings.TrimPrefix(decls[i].ClanFiles[0], g.Name+"-"))
		} else {
			decls[i].Name = secrets.NameFor(g.Name)
		}
	}
	for _, h := range hashes {
		pw := h.Depends[0]
		for _, d := range decls {
			if d.ClanFiles[0] == pw {
				h.Name = d.Name + "-hash"
				h.Depends = []string{d.Name}
				h.Generate = fmt.Sprintf(`gen.command(["sh", "-c", %s], outputs = ["hash"])`,
					strconv.Quote(fmt.Sprintf(`mkpasswd --method=yescrypt --stdin < "$in/%s/%s" > "$out/hash"`, d.Name, pw)))
			}
		}
		decls = append(decls, h)
	}
	return decls
}

// passwordGen is the gen.* for a password like v: a passphrase of words
// joined by "-" (clan's xkcdpass), letters and digits, or else a prompt.
func passwordGen(v []byte) string {
	words := strings.Split(string(v), "-")
	isWords := len(words) >= 3
	for _, w := range words {
		if w == "" || strings.TrimLeft(w, "abcdefghijklmnopqrstuvwxyz") != "" {
			isWords = false
		}
	}
	alnum := len(v) >= 8 && len(v) <= 1024
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			alnum = false
		}
	}
	switch {
	case isWords && len(words) <= 64:
		return fmt.Sprintf(`gen.passphrase(words = %d)`, len(words))
	case alnum:
		return fmt.Sprintf(`gen.password(length = %d)`, len(v))
	}
	return "gen.prompt()"
}

// Declaration is the secret(...) to paste for d: per machine for
// machines, or shared (read by machines, or by the admins alone).
func (d Decl) Declaration(shared bool, machines []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "secret(%s", strconv.Quote(d.Name))
	if shared {
		b.WriteString(", shared = True")
	}
	if len(machines) > 0 {
		b.WriteString(", machines = " + quoteList(machines))
	}
	b.WriteString(", generate = " + d.Generate)
	var outs []string
	for o, n := range d.Files {
		if o != n {
			outs = append(outs, fmt.Sprintf("%s: %s", strconv.Quote(o), strconv.Quote(n)))
		}
	}
	sort.Strings(outs)
	if len(outs) > 0 {
		b.WriteString(", files = {" + strings.Join(outs, ", ") + "}")
	}
	if d.NeededFor != "" {
		b.WriteString(", needed_for = " + strconv.Quote(d.NeededFor))
	}
	if len(d.Depends) > 0 {
		b.WriteString(", depends = " + quoteList(d.Depends))
	}
	b.WriteString(")")
	return b.String()
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
)

// Options tune GenerateMissing.
type Options struct {
	// On restricts generation to these machines' secrets (shared secrets
	// that one of them reads included, admin-only ones excluded); empty
	// means every machine and the admin-only secrets.
	On []model.Selector
	// Regenerate names secrets to make anew even where they exist.
	Regenerate []string
	// Identities decrypt the values gen.command generators depend on.
	Identities []age.Identity
	// Prompter asks for gen.prompt values; nil (or one that returns
	// ErrNoTerminal) lists those secrets in Report.NeedsPrompt.
	Prompter Prompter
	// HostKeys are the machines' host keys (machine -> public key). nil
	// means Store.HostKeys: the keys written in the fleet and the public
	// halves of generated host-key secrets. Host keys generated during
	// the run are added as they appear.
	HostKeys map[string]string
	// Stderr receives the output of gen.command programs.
	Stderr io.Writer
	// TempDir is where gen.command's private folders go (see Inputs).
	TempDir string
}

// GenerateMissing generates and stores every declared secret file that
// does not exist yet (per machine for per-machine secrets, once for
// shared ones), and those of the secrets named in opts.Regenerate (and of
// the gen.command secrets computed from them). Secrets are visited in
// dependency order, machines' host-key secrets first, so that a machine's
// host key exists before the secrets it must be able to read are
// encrypted; a host-key secret is itself encrypted to its machine too, as
// secrets.nix lists it. Regenerating a host key makes the machine's other
// files stale: Check lists them and Rekey re-encrypts them.
//
// Nothing that exists is overwritten unless regenerated, and a file that
// is not age or that changed outside fleet is never overwritten: it is
// listed in Failed. Secrets asked of a person are listed in NeedsPrompt
// when there is nobody to ask. The error joins the Failed reasons; the
// report is complete either way.
func GenerateMissing(ctx context.Context, f *model.Fleet, st *Store, opts Options) (Report, error) {
	var rep Report
	regen := map[string]bool{}
	for _, n := range opts.Regenerate {
		if f.Secret(n) == nil {
			return rep, fmt.Errorf("regenerate %s: the fleet declares no secret of that name", n)
		}
		regen[n] = true
	}
	for _, sel := range opts.On {
		if err := sel.Validate(); err != nil {
			return rep, err
		}
	}
	hostKeys := map[string]string{}
	if opts.HostKeys == nil {
		hk, err := st.HostKeys(f)
		if err != nil {
			return rep, err
		}
		hostKeys = hk
	} else {
		for k, v := range opts.HostKeys {
			hostKeys[k] = v
		}
	}
	order, err := generationOrder(f)
	if err != nil {
		return rep, err
	}
	// A gen.command value computed from a regenerated secret would no
	// longer match it: regenerate such dependents too (in order, so the
	// closure is complete after one pass).
	if len(regen) > 0 {
		for _, s := range order {
			if s.Generator == nil || s.Generator.Kind != KindCommand {
				continue
			}
			for _, d := range s.Depends {
				if regen[d] {
					regen[s.Name] = true
				}
			}
		}
	}
	g := &generation{ctx: ctx, f: f, st: st, opts: opts, hostKeys: hostKeys, rep: &rep,
		regen: regen, promptOff: opts.Prompter == nil, needsPrompt: map[string]bool{}}
	err = st.batch(func() error {
		for _, s := range order {
			var owners []string
			for _, owner := range Owners(s) {
				if selected(f, s, owner, opts.On) {
					owners = append(owners, owner)
				}
			}
			if err := g.secret(s, owners); err != nil {
				return err
			}
		}
		return nil
	})
	seen := map[string]bool{}
	for _, s := range f.Secrets {
		for _, m := range s.Machines {
			if !seen[m] && strings.TrimSpace(hostKeys[m]) == "" {
				rep.NoHostKey = append(rep.NoHostKey, m)
			}
			seen[m] = true
		}
	}
	sort.Strings(rep.NoHostKey)
	if err != nil {
		return rep, err
	}
	return rep, errors.Join(g.errs...)
}

type generation struct {
	ctx         context.Context
	f           *model.Fleet
	st          *Store
	opts        Options
	hostKeys    map[string]string
	rep         *Report
	regen       map[string]bool
	promptOff   bool
	needsPrompt map[string]bool // secret/owner listed in NeedsPrompt
	errs        []error
}

// outcome is what generating one secret for one owner came to.
type outcome struct {
	generated, failed, needsPrompt, corrupt []FileState
	errs                                    []error
	// waitsForPrompt: the secret is missing because a prompt could not
	// be asked (its dependents wait too); promptOff: nobody is there to
	// ask, do not try again.
	waitsForPrompt, promptOff bool
	// hostKey is the machine's new host key, when this was its host-key
	// secret.
	hostKey string
}

func (o *outcome) fail(x FileState, reason string) {
	x.Reason = reason
	o.failed = append(o.failed, x)
	o.errs = append(o.errs, fmt.Errorf("%s: %s", x.Path, reason))
}

// merge adds an outcome to the report and the generation's state.
func (g *generation) merge(s *model.Secret, owner string, o *outcome) {
	g.rep.Generated = append(g.rep.Generated, o.generated...)
	g.rep.Failed = append(g.rep.Failed, o.failed...)
	g.rep.NeedsPrompt = append(g.rep.NeedsPrompt, o.needsPrompt...)
	g.rep.Corrupt = append(g.rep.Corrupt, o.corrupt...)
	g.errs = append(g.errs, o.errs...)
	if o.waitsForPrompt {
		g.needsPrompt[s.Name+"/"+owner] = true
	}
	if o.promptOff {
		g.promptOff = true
	}
	if o.hostKey != "" {
		g.hostKeys[ownerMachine(owner)] = o.hostKey
	}
}

// secret generates s for owners. Generators that talk to a person or run
// a program go one owner after the other; the others (key pairs and
// random values, where encryption dominates) run on all CPUs, their
// outcomes merged in owner order so the report does not depend on timing.
func (g *generation) secret(s *model.Secret, owners []string) error {
	kind := ""
	if s.Generator != nil {
		kind = s.Generator.Kind
	}
	workers := runtime.GOMAXPROCS(0)
	if kind == KindPrompt || kind == KindCommand || len(owners) < 2 || workers < 2 {
		for _, owner := range owners {
			o, err := g.one(s, owner)
			if err != nil {
				return err
			}
			g.merge(s, owner, o)
		}
		return nil
	}
	outs := make([]*outcome, len(owners))
	errs := make([]error, len(owners))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(owners)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				outs[i], errs[i] = g.one(s, owners[i])
			}
		}()
	}
	for i := range owners {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, owner := range owners {
		if errs[i] != nil {
			return errs[i]
		}
		g.merge(s, owner, outs[i])
	}
	return nil
}

// one generates secret s for owner if it needs to be. Only cancellation
// is returned as an error; everything else goes into the outcome. It may
// run for several owners of s at once: it reads the generation's state
// and writes only its outcome.
func (g *generation) one(s *model.Secret, owner string) (*outcome, error) {
	o := &outcome{}
	st, f := g.st, g.f
	m := ownerMachine(owner)
	states := make([]FileState, len(s.Files))
	var present, absent []string
	for i, file := range s.Files {
		states[i] = FileState{Path: FilePath(s, m, file), Secret: s.Name, Owner: owner, File: file.Name}
		if _, err := os.Lstat(st.abs(states[i].Path)); err == nil {
			present = append(present, file.Name)
		} else {
			absent = append(absent, file.Name)
		}
	}
	all := func(fn func(FileState)) {
		for _, x := range states {
			fn(x)
		}
	}
	if len(absent) == 0 && !g.regen[s.Name] {
		return o, nil
	}
	if len(present) > 0 && !g.regen[s.Name] {
		for i, file := range s.Files {
			if containsStr(absent, file.Name) {
				o.fail(states[i], fmt.Sprintf("incomplete: %s exist(s) without it; `--regenerate %s` makes a new value for all its files",
					strings.Join(present, ", "), s.Name))
			}
		}
		return o, nil
	}
	// Regenerating: every existing encrypted file must be fleet's own.
	refused := false
	for i, file := range s.Files {
		if !file.Secret || !containsStr(present, file.Name) {
			continue
		}
		if reason := g.st.notFleets(states[i].Path); reason != "" {
			if strings.HasPrefix(reason, "not an age file") {
				x := states[i]
				x.Reason = reason
				o.corrupt = append(o.corrupt, x)
			}
			o.fail(states[i], reason+": not overwriting it")
			refused = true
		}
	}
	if refused {
		return o, nil
	}

	// Dependencies.
	var depOwners []string
	for _, d := range s.Depends {
		ds := f.Secret(d)
		if ds == nil {
			all(func(x FileState) { o.fail(x, fmt.Sprintf("depends on %s, which the fleet does not declare", d)) })
			return o, nil
		}
		var dOwner string
		switch {
		case ds.Shared:
			dOwner = SharedOwner
		case s.Shared:
			all(func(x FileState) {
				o.fail(x, fmt.Sprintf("shared secret %s depends on %s, which has a value per machine: make %s shared too, or %s per machine", s.Name, d, d, s.Name))
			})
			return o, nil
		case !containsStr(ds.Machines, m):
			all(func(x FileState) {
				o.fail(x, fmt.Sprintf("depends on %s, which is not declared for machine %s (machines = %s)", d, m, ds.Selector))
			})
			return o, nil
		default:
			dOwner = m
		}
		for _, file := range ds.Files {
			if _, err := os.Lstat(st.abs(FilePath(ds, ownerMachine(dOwner), file))); err != nil {
				if g.needsPrompt[d+"/"+dOwner] {
					o.waitsForPrompt = true
					all(func(x FileState) {
						x.Reason = fmt.Sprintf("waits for %s, which is asked on a terminal", d)
						o.needsPrompt = append(o.needsPrompt, x)
					})
					return o, nil
				}
				all(func(x FileState) { o.fail(x, fmt.Sprintf("depends on %s, whose %s is missing", d, file.Name)) })
				return o, nil
			}
		}
		depOwners = append(depOwners, dOwner)
	}

	if s.Generator != nil && s.Generator.Kind == KindPrompt && g.promptOff {
		o.waitsForPrompt = true
		all(func(x FileState) {
			x.Reason = "asked of a person (gen.prompt)"
			o.needsPrompt = append(o.needsPrompt, x)
		})
		return o, nil
	}

	// Recipients before generating, so a person is not asked for a value
	// that cannot be stored. A machine's own host key is known only once
	// generated.
	selfHostKey := m != "" && f.Machine(m) != nil && f.Machine(m).HostKeySecret == s.Name
	var want []string
	if !selfHostKey {
		var err error
		if want, _, err = Recipients(f, s, m, g.hostKeys); err != nil {
			all(func(x FileState) { o.fail(x, err.Error()) })
			return o, nil
		}
	}

	in := Inputs{Secret: s.Name, Owner: owner, Prompter: g.opts.Prompter, Stderr: g.opts.Stderr, TempDir: g.opts.TempDir}
	if s.Generator != nil && s.Generator.Kind == KindCommand && len(s.Depends) > 0 {
		in.Deps = map[string]map[string][]byte{}
		defer func() {
			for _, files := range in.Deps {
				for _, v := range files {
					wipe(v)
				}
			}
		}()
		for i, d := range s.Depends {
			ds := f.Secret(d)
			vals := map[string][]byte{}
			in.Deps[d] = vals
			for _, file := range ds.Files {
				rel := FilePath(ds, ownerMachine(depOwners[i]), file)
				var v []byte
				var err error
				if file.Secret {
					v, err = st.Read(rel, g.opts.Identities)
				} else {
					v, err = st.ReadPublic(rel)
				}
				if err != nil {
					all(func(x FileState) { o.fail(x, fmt.Sprintf("reading its dependency: %v", err)) })
					return o, nil
				}
				vals[file.Name] = v
			}
		}
	}

	vals, err := Generate(g.ctx, s.Generator, in)
	defer func() {
		for _, v := range vals {
			wipe(v)
		}
	}()
	if errors.Is(err, ErrNoTerminal) {
		o.promptOff = true
		o.waitsForPrompt = true
		all(func(x FileState) {
			x.Reason = "asked of a person (gen.prompt); there is no terminal"
			o.needsPrompt = append(o.needsPrompt, x)
		})
		return o, nil
	}
	if cerr := g.ctx.Err(); cerr != nil {
		return o, cerr
	}
	if err != nil {
		all(func(x FileState) { o.fail(x, err.Error()) })
		return o, nil
	}
	for _, file := range s.Files {
		if _, ok := vals[file.Output]; !ok {
			all(func(x FileState) {
				o.fail(x, fmt.Sprintf("generator %s produced no output %q", s.Generator.Kind, file.Output))
			})
			return o, nil
		}
	}
	if selfHostKey {
		for _, file := range s.Files {
			if !file.Secret {
				o.hostKey = strings.TrimSpace(string(vals[file.Output]))
				break
			}
		}
		if want, _, err = Recipients(f, s, m, map[string]string{m: o.hostKey}); err != nil {
			all(func(x FileState) { o.fail(x, err.Error()) })
			return o, nil
		}
	}
	// Secret files first, public ones last: a public half (a host key)
	// never exists without its private half.
	for pass := 0; pass < 2; pass++ {
		for i, file := range s.Files {
			if file.Secret != (pass == 0) {
				continue
			}
			var err error
			if file.Secret {
				err = st.writeSecret(states[i].Path, vals[file.Output], want, "")
			} else {
				err = st.WritePublic(states[i].Path, vals[file.Output])
			}
			if err != nil {
				o.fail(states[i], err.Error())
				continue
			}
			o.generated = append(o.generated, states[i])
		}
	}
	return o, nil
}

// notFleets says why the existing file at rel is not one fleet may
// replace, or "" if it is (a valid age file whose hash is recorded).
func (st *Store) notFleets(rel string) string {
	data, err := st.readFile(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return err.Error()
	}
	if _, err := parseHeader(data); err != nil {
		return fmt.Sprintf("not an age file (%v)", err)
	}
	e, ok, err := st.recorded(rel)
	if err != nil {
		return err.Error()
	}
	if !ok || e.SHA256 != hashOf(data) {
		return "changed outside fleet (not as " + RecordFile + " records it)"
	}
	return ""
}

// selected reports whether secret s's files for owner are generated
// under --on selectors.
func selected(f *model.Fleet, s *model.Secret, owner string, on []model.Selector) bool {
	if len(on) == 0 {
		return true
	}
	machines := []string{owner}
	if owner == SharedOwner {
		machines = s.Machines
	}
	for _, name := range machines {
		m := f.Machine(name)
		if m == nil {
			continue
		}
		for _, sel := range on {
			if sel.Match(m) {
				return true
			}
		}
	}
	return false
}

// generationOrder sorts the secrets so that each comes after the ones it
// depends on; among those ready, machines' host-key secrets come first,
// then by name.
func generationOrder(f *model.Fleet) ([]*model.Secret, error) {
	hostKey := map[string]bool{}
	for _, m := range f.Machines {
		if m.HostKeySecret != "" {
			hostKey[m.HostKeySecret] = true
		}
	}
	indeg := map[string]int{}
	users := map[string][]string{}
	for _, s := range f.Secrets {
		indeg[s.Name] += 0
		for _, d := range s.Depends {
			if f.Secret(d) == nil {
				continue // reported when the secret is generated
			}
			indeg[s.Name]++
			users[d] = append(users[d], s.Name)
		}
	}
	less := func(a, b string) bool {
		if hostKey[a] != hostKey[b] {
			return hostKey[a]
		}
		return a < b
	}
	var ready []string
	for n, d := range indeg {
		if d == 0 {
			ready = append(ready, n)
		}
	}
	var out []*model.Secret
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return less(ready[i], ready[j]) })
		n := ready[0]
		ready = ready[1:]
		out = append(out, f.Secret(n))
		for _, u := range users[n] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(out) != len(f.Secrets) {
		var cyc []string
		for n, d := range indeg {
			if d > 0 {
				cyc = append(cyc, n)
			}
		}
		sort.Strings(cyc)
		return nil, fmt.Errorf("secrets depend on each other in a cycle: %s", strings.Join(cyc, ", "))
	}
	return out, nil
}

// HostKeys returns the host key of every machine that has one: written
// in the fleet (machine(host_key = "ssh-ed25519 ...")), or the public
// half of its generated host-key secret once that exists.
func (st *Store) HostKeys(f *model.Fleet) (map[string]string, error) {
	fromSecrets := map[string]string{}
	out := map[string]string{}
	for _, m := range f.Machines {
		switch {
		case m.HostKey != "":
			out[m.Name] = strings.TrimSpace(m.HostKey)
		case m.HostKeySecret != "":
			fromSecrets[m.Name] = m.HostKeySecret
		}
	}
	gen, err := st.HostKeysFromSecrets(f, fromSecrets)
	if err != nil {
		return nil, err
	}
	for k, v := range gen {
		out[k] = v
	}
	return out, nil
}

// HostKeysFromSecrets reads, for each machine -> secret of hostKeySecret,
// the public file of that (gen.ssh_keypair) secret stored for the
// machine: secrets/<machine>/<secret>/<public file>. A machine whose
// file does not exist yet is left out; a file that is not a public key
// is an error.
func (st *Store) HostKeysFromSecrets(f *model.Fleet, hostKeySecret map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for m, name := range hostKeySecret {
		s := f.Secret(name)
		if s == nil {
			return nil, fmt.Errorf("machine %s: host key secret %s is not declared", m, name)
		}
		var pub *model.SecretFile
		for i := range s.Files {
			if !s.Files[i].Secret {
				pub = &s.Files[i]
				break
			}
		}
		if pub == nil || s.Shared {
			return nil, fmt.Errorf("machine %s: host key secret %s has no public file per machine: generate it with gen.ssh_keypair()", m, name)
		}
		rel := FilePath(s, m, *pub)
		data, err := st.readFile(rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		key := strings.TrimSpace(string(data))
		if _, err := NormalizeRecipient(key); err != nil {
			return nil, fmt.Errorf("%s (host key of %s): %v", rel, m, err)
		}
		out[m] = key
	}
	return out, nil
}

// Set stores value as file of secret s for machine (ignored when shared):
// encrypted to the current recipients for a secret file, in plain text
// for a public one. It returns the machines that could not be recipients
// for want of a host key.
func (st *Store) Set(f *model.Fleet, hostKeys map[string]string, s *model.Secret, machine string, file model.SecretFile, value []byte) (noHostKey []string, err error) {
	rel := FilePath(s, machine, file)
	if !file.Secret {
		return nil, st.WritePublic(rel, value)
	}
	want, noHostKey, err := Recipients(f, s, machine, hostKeys)
	if err != nil {
		return noHostKey, err
	}
	return noHostKey, st.WriteSecret(rel, value, want)
}

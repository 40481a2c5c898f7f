package builtins

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// Build checks the recorded declarations as a whole and returns the fleet.
// entry is the display name of the entry file, used when the fleet lacks
// something no single line is responsible for. All problems are reported
// together, each at the declaration that has it.
func (r *Recorder) Build(entry string) (*model.Fleet, error) {
	var errs model.Errors
	errf := func(pos model.Pos, format string, args ...any) *model.Error {
		e := &model.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
		errs = append(errs, e)
		return e
	}

	f := &model.Fleet{Pos: model.Pos{File: entry, Line: 1, Col: 1}}
	switch len(r.fleets) {
	case 0:
		errf(f.Pos, `no fleet() declaration: add fleet(name = "...") to %s`, entry)
	default:
		*f = *r.fleets[0]
		for _, dup := range r.fleets[1:] {
			errf(dup.Pos, "fleet() is declared twice").Notes = []model.Note{{Pos: r.fleets[0].Pos, Msg: "first declared here"}}
		}
	}

	// Duplicate names, per kind. Channels and inputs share one namespace:
	// both are inputs of the generated flake.
	type named struct {
		kind string
		pos  model.Pos
	}
	dupCheck := func(ns map[string]named, kind, name string, pos model.Pos) {
		if prev, ok := ns[name]; ok {
			errf(pos, "%s %q is declared twice", kind, name).Notes = []model.Note{{Pos: prev.pos, Msg: fmt.Sprintf("%s %q first declared here", prev.kind, name)}}
			return
		}
		ns[name] = named{kind, pos}
	}
	flakeInputs := map[string]named{}
	for _, c := range r.channels {
		dupCheck(flakeInputs, "channel", c.Name, c.Pos)
		if c.DarwinURL != "" {
			// The darwin branch is the flake input <name>-darwin.
			dupCheck(flakeInputs, "channel (darwin_url of "+c.Name+")", c.Name+"-darwin", c.Pos)
		}
	}
	for _, in := range r.inputs {
		dupCheck(flakeInputs, "input", in.Name, in.Pos)
	}
	features, users, machines, secrets := map[string]named{}, map[string]named{}, map[string]named{}, map[string]named{}
	for _, x := range r.features {
		dupCheck(features, "feature", x.Name, x.Pos)
	}
	for _, x := range r.users {
		dupCheck(users, "user", x.Name, x.Pos)
	}
	for _, x := range r.machines {
		dupCheck(machines, "machine", x.Name, x.Pos)
	}
	for _, x := range r.secrets {
		dupCheck(secrets, "secret", x.s.Name, x.s.Pos)
	}
	firewalls := map[string]named{}
	for _, x := range r.firewalls {
		dupCheck(firewalls, "hetzner.firewall", x.Name, x.Pos)
	}
	r.checkOverlayDuplicates(errf)

	// References by name.
	channelNames, inputNames := names(r.channels, chName), names(r.inputs, inName)
	featureNames, userNames := keys(features), keys(users)
	check := func(pos model.Pos, owner, kind, name string, ns map[string]named, all []string) {
		if _, ok := ns[name]; !ok {
			errf(pos, "%s: unknown %s %q%s", owner, kind, name, DidYouMean(name, all))
		}
	}
	chans, ins := map[string]named{}, map[string]named{}
	for _, c := range r.channels {
		chans[c.Name] = named{}
	}
	for _, o := range r.overlays {
		if o.Kind == model.OverlayPatch {
			chans[model.PatchedChannel] = named{}
			channelNames = append(channelNames, model.PatchedChannel)
			break
		}
	}
	for _, in := range r.inputs {
		ins[in.Name] = named{}
	}
	for _, in := range r.inputs {
		for _, k := range slices.Sorted(maps.Keys(in.Follows)) {
			target := in.Follows[k]
			if _, ok := flakeInputs[target]; !ok {
				errf(in.Pos, "input %s: follows %s = %q, which is no channel or input%s", in.Name, k, target,
					DidYouMean(target, append(channelNames, inputNames...)))
			}
		}
	}
	for _, o := range r.overlays {
		owner := fmt.Sprintf("overlay.%s %s", o.Kind, o.Name)
		if o.Channel != "" {
			check(o.Pos, owner, "channel", o.Channel, chans, channelNames)
		}
		if o.Input != "" {
			check(o.Pos, owner, "input", o.Input, ins, inputNames)
		}
	}
	for _, x := range r.features {
		for _, req := range x.Requires {
			check(x.Pos, "feature "+x.Name+": requires", "feature", req, features, featureNames)
		}
	}
	for _, u := range r.users {
		for _, h := range u.Home {
			check(u.Pos, "user "+u.Name+": home", "feature", h, features, featureNames)
		}
	}
	userByName := make(map[string]*model.User, len(r.users))
	for _, u := range r.users {
		userByName[u.Name] = u
	}
	needHM, needDarwin := model.Pos{}, model.Pos{}
	featureByName := make(map[string]*model.Feature, len(r.features))
	for _, x := range r.features {
		featureByName[x.Name] = x
	}
	for _, m := range r.machines {
		for _, x := range m.Features {
			check(m.Pos, "machine "+m.Name, "feature", x, features, featureNames)
			if ft := featureByName[x]; ft != nil && !appliesTo(ft, m.Class, r.emptyParts[ft]) {
				errf(m.Pos, "machine %s (%s) uses feature %s, which has configuration only for %s: "+
					"give the feature a %s = {...} part (%s = {} if it has nothing to do there), or leave it off this machine", m.Name, m.Class, x, otherClass(m.Class), m.Class, m.Class)
			}
		}
		for _, u := range m.Users {
			check(m.Pos, "machine "+m.Name, "user", u, users, userNames)
		}
		if m.Class == model.Darwin && needDarwin.File == "" {
			needDarwin = m.Pos
		}
		if m.Home.Len() > 0 && needHM.File == "" {
			needHM = m.Pos
		}
		for _, u := range m.Users {
			if x := userByName[u]; x != nil && len(x.Home) > 0 && needHM.File == "" {
				needHM = m.Pos
			}
		}
	}
	if _, ok := chans["nixpkgs"]; !ok && len(r.machines) > 0 {
		errf(f.Pos, `machines are built from the channel "nixpkgs", which is not declared: add channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")`)
	}
	if needDarwin.File != "" {
		if _, ok := ins["nix-darwin"]; !ok {
			errf(needDarwin, `nix-darwin machines need the input "nix-darwin": add input("nix-darwin", url = "github:nix-darwin/nix-darwin", follows = {"nixpkgs": "nixpkgs"})`)
		}
	}
	if needHM.File != "" {
		if _, ok := ins["home-manager"]; !ok {
			errf(needHM, `home configuration needs the input "home-manager": add input("home-manager", url = "github:nix-community/home-manager", follows = {"nixpkgs": "nixpkgs"})`)
		}
	}
	for _, a := range f.Admins {
		if checkRecipient(a) == nil {
			continue
		}
		u := userByName[a]
		switch {
		case u == nil:
			errf(f.Pos, "fleet: admin %q is no user, age recipient or ssh-ed25519 key%s", a, DidYouMean(a, userNames))
		case u.Age == "" && !hasEd25519(u.SSHKeys):
			errf(f.Pos, "fleet: admin %q has no age key and no ssh-ed25519 key: set user(%q, age = \"age1...\")", a, a)
		}
	}

	f.Channels, f.Inputs, f.Overlays, f.Features, f.Users, f.Machines, f.Firewalls =
		r.channels, r.inputs, r.overlays, r.features, r.users, r.machines, r.firewalls
	f.Sort()

	// Secrets: resolve selectors against the machines.
	secretNames := keys(secrets)
	machineNames := keys(machines)
	needAgenix := model.Pos{}
	for _, d := range r.secrets {
		s := *d.s
		for _, sel := range d.sels {
			if len(f.Select(sel)) == 0 {
				if sel.IsPattern() {
					errf(s.Pos, "secret %s: selector %q matches no machine", s.Name, sel)
				} else {
					errf(s.Pos, "secret %s: unknown machine %q%s", s.Name, sel, DidYouMean(string(sel), machineNames))
				}
			}
		}
		var darwinReaders []string
		nixosReaders := 0
		for _, m := range f.Select(d.sels...) {
			s.Machines = append(s.Machines, m.Name)
			if m.Class == model.Darwin {
				darwinReaders = append(darwinReaders, m.Name)
			} else {
				nixosReaders++
			}
		}
		if len(s.RestartUnits) > 0 && len(darwinReaders) > 0 {
			errf(s.Pos, "%s", restartOnDarwin(&s, darwinReaders, nixosReaders))
		}
		if len(s.Machines) > 0 && needAgenix.File == "" {
			needAgenix = s.Pos
		}
		for _, dep := range s.Depends {
			check(s.Pos, "secret "+s.Name+": depends", "secret", dep, secrets, secretNames)
		}
		f.Secrets = append(f.Secrets, &s)
	}
	f.Sort()
	for _, m := range f.Machines {
		if m.HostKeySecret == "" {
			continue
		}
		s := f.Secret(m.HostKeySecret)
		switch {
		case s == nil:
			// Declared later by name is impossible: host_key takes a value.
		case s.Generator.Kind != "ssh_keypair":
			errf(m.Pos, "machine %s: host_key secret %s is generated by %s: a host key needs generate = gen.ssh_keypair()", m.Name, s.Name, s.Generator.Kind)
		case s.Shared:
			errf(m.Pos, "machine %s: host_key secret %s is shared: every machine needs a host key of its own", m.Name, s.Name)
		case !contains(s.Machines, m.Name):
			errf(m.Pos, "machine %s: host_key secret %s is not declared for this machine (machines = %s)", m.Name, s.Name, s.Selector)
		}
	}
	checkUpstreamRules(f, errf)
	for _, provider := range slices.Sorted(maps.Keys(f.Credentials)) {
		name := f.Credentials[provider]
		s := f.Secret(name)
		files := 0
		if s != nil {
			for _, fl := range s.Files {
				if fl.Secret {
					files++
				}
			}
		}
		switch {
		case s == nil:
			errf(f.Pos, "fleet: credentials: %s names no secret %q%s", provider, name, DidYouMean(name, secretNames))
		case files != 1:
			errf(s.Pos, "secret %s holds the %s credentials (fleet credentials), so it must have one encrypted file; it has %d", name, provider, files)
		case !s.Shared && len(s.Machines) != 1:
			errf(s.Pos, "secret %s holds the %s credentials (fleet credentials): make it shared = True, or read by one machine, so that there is one copy to decrypt", name, provider)
		}
	}
	if _, ok := ins["agenix"]; !ok && needAgenix.File != "" {
		errf(needAgenix, `machines decrypt their secrets with agenix: add input("agenix", url = "github:ryantm/agenix", follows = {"nixpkgs": "nixpkgs"})`)
	}
	f.Sort()
	// Empty, not absent: JSON consumers see [] rather than null.
	f.Channels, f.Inputs, f.Overlays = nonNil(f.Channels), nonNil(f.Inputs), nonNil(f.Overlays)
	f.Features, f.Users, f.Machines, f.Secrets = nonNil(f.Features), nonNil(f.Users), nonNil(f.Machines), nonNil(f.Secrets)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// checkOverlayDuplicates refuses two overlay entries for the same thing,
// except fallbacks of one package on disjoint platform lists.
func (r *Recorder) checkOverlayDuplicates(errf func(model.Pos, string, ...any) *model.Error) {
	seen := map[string]*model.Overlay{}
	for _, o := range r.overlays {
		key := string(o.Kind) + "\x00" + o.Name
		if o.Kind == model.OverlayPatch {
			key = string(o.Kind) + "\x00" + o.URL
		}
		prev, ok := seen[key]
		if !ok {
			seen[key] = o
			continue
		}
		if o.Kind == model.OverlayFallback && len(o.Platforms) > 0 && len(prev.Platforms) > 0 && !overlaps(o.Platforms, prev.Platforms) {
			continue
		}
		errf(o.Pos, "overlay.%s %q is declared twice", o.Kind, o.Name).Notes =
			[]model.Note{{Pos: prev.Pos, Msg: "first declared here"}}
	}
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

func hasEd25519(keys []string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, "ssh-ed25519 ") {
			return true
		}
	}
	return false
}

func chName(c *model.Channel) string { return c.Name }
func inName(i *model.Input) string   { return i.Name }

func names[T any](xs []T, name func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = name(x)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// restartOnDarwin refuses restart_units on a secret that nix-darwin
// machines read. nix-darwin runs services as launchd daemons, and nothing
// in it (nor in agenix's darwin module) restarts a daemon when a file it
// reads changes: the units named are systemd's, and leaving them out on
// those machines would silently keep their services on the old value,
// which is what restart_units exists to prevent.
func restartOnDarwin(s *model.Secret, darwin []string, nixos int) string {
	who, them := "the nix-darwin machine "+darwin[0]+" reads", "it"
	if len(darwin) > 1 {
		who, them = "the nix-darwin machines "+strings.Join(darwin, ", ")+" read", "them"
	}
	msg := fmt.Sprintf("secret %s: restart_units restarts systemd units, which nix-darwin does not have "+
		"(its services are launchd daemons, and nothing restarts one when a secret changes), "+
		"and %s it: there the service would keep the old value; ", s.Name, who)
	switch {
	case nixos == 0:
		return msg + "drop restart_units, and restart the service by hand after a change (sudo launchctl kickstart -k system/<label>)"
	case s.Shared:
		return msg + "the secret is shared, so a second secret would hold another value: let only NixOS machines read it, " +
			"or drop restart_units and restart the services by hand after a change"
	}
	return msg + "its values are per machine anyway, so declare a second secret for " + them + " without restart_units, " +
		"and let this one be read by the NixOS machines only"
}

// appliesTo reports whether a feature does anything on a machine of class
// c. A feature with only the other class's configuration is a mistake
// (an nvidia feature on a laptop); one with packages, home configuration
// or nothing at all applies everywhere, and so does one given an
// explicitly empty part for c (empty lists those classes): darwin = {}
// says "nothing to do on darwin", deliberately.
func appliesTo(f *model.Feature, c model.Class, empty []model.Class) bool {
	other := otherClass(c)
	if f.Config(other).Len() == 0 || f.Config(c).Len() > 0 || slices.Contains(empty, c) {
		return true
	}
	return len(f.Packages) > 0 || f.Home.Len() > 0
}

func otherClass(c model.Class) model.Class {
	if c == model.Darwin {
		return model.NixOS
	}
	return model.Darwin
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

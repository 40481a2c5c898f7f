package builtins

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hcloudcatalog"
	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// hostGroup is hetzner.server and gcp.instance: where a cloud machine runs.
// They declare nothing by themselves; passing one as machine(host = ...)
// makes it part of the fleet, named after the machine.
func hostGroup() []Builtin {
	return []Builtin{
		{Fn: builtinHetznerServer, Doc: Doc{Name: "hetzner.server", Group: "hosts",
			Signature: `hetzner.server(type, location, image = "debian-12", enabled = True, labels = {}, firewalls = [], ipv4 = True, ipv6 = True)`,
			Text: `A Hetzner Cloud server (type "cx43", location "fsn1"). Types and locations are checked
against fleet's catalogue of Hetzner's offer (its date is in the message), including
where a type is sold and its CPU (cax types are arm: system "aarch64-linux"); a type
newer than the catalogue is refused until fleet knows it. image is what the server boots
before fleet installs NixOS on it. enabled = False is the cost toggle: the server is
deleted, the machine stays in the fleet and its configuration is still built. labels
are added to fleet's own (managed-by, fleet, machine).`}},
		{Fn: builtinHetznerFirewall, Doc: Doc{Name: "hetzner.firewall", Group: "hosts",
			Signature: `hetzner.firewall(name, allow, sources = ["0.0.0.0/0", "::/0"], labels = {})`,
			Text: `Declares a Hetzner Cloud firewall that fleet creates and keeps as declared. allow lists
what may come in: "tcp/22", "udp/9993", "tcp/60000-61000", "icmp", "esp", "gre";
everything else is dropped. sources are the networks it may come from. Servers use it
with hetzner.server(firewalls = [fw]) (the value or its name); a name fleet does not
declare must be an existing firewall of the project, which is attached but not managed.`}},
		{Fn: builtinGCPInstance, Doc: Doc{Name: "gcp.instance", Group: "hosts",
			Signature: `gcp.instance(project, zone, type, disk_gb = 50, image = "projects/debian-cloud/global/images/family/debian-12", gpu = "", gpus = 0, tags = [], labels = {}, enabled = True)`,
			Text: `A Google Compute Engine instance (type "e2-standard-8", zone "us-central1-b").
gpu/gpus attach accelerators ("nvidia-tesla-t4", 1); such instances terminate on host
maintenance. tags are network tags for firewall rules. enabled = False deletes the
instance and keeps the machine, as for hetzner.server.`}},
	}
}

var (
	// GCE and Hetzner label keys: lower-case, start with a letter.
	labelKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)
	labelValRE = regexp.MustCompile(`^[a-z0-9_.-]{0,63}$`)
	zoneRE     = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+-[a-z]$`)
)

// reservedLabels are set by fleet itself on every resource it creates.
var reservedLabels = map[string]bool{"managed-by": true, "fleet": true, "machine": true}

func checkLabels(fn string, labels map[string]string) error {
	for k, v := range labels {
		if reservedLabels[k] {
			return fmt.Errorf("%s: label %q is set by fleet itself", fn, k)
		}
		if !labelKeyRE.MatchString(k) || !labelValRE.MatchString(v) {
			return fmt.Errorf("%s: label %q = %q: keys start with a lower-case letter; keys and values use a-z, 0-9, '_', '-', '.' (63 characters at most)", fn, k, v)
		}
	}
	return nil
}

func builtinHetznerServer(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s := &model.HetznerServer{Image: "debian-12", IPv4: true, IPv6: true}
	enabled := true
	var labels stringMap
	firewalls := refList{kind: "hetzner.firewall"}
	if err := unpack(b.Name(), args, kwargs, "type", &s.Type, "location", &s.Location, "image?", &s.Image,
		"enabled?", &enabled, "labels?", &labels, "firewalls?", &firewalls, "ipv4?", &s.IPv4, "ipv6?", &s.IPv6); err != nil {
		return nil, err
	}
	if s.Type == "" || s.Location == "" || s.Image == "" {
		return nil, fmt.Errorf("hetzner.server: type, location and image must not be empty")
	}
	if err := checkHetznerOffer(s.Type, s.Location); err != nil {
		return nil, fmt.Errorf("hetzner.server: %w", err)
	}
	if err := checkLabels(b.Name(), labels); err != nil {
		return nil, err
	}
	if !s.IPv4 && !s.IPv6 {
		return nil, fmt.Errorf("hetzner.server: ipv4 and ipv6 are both off: fleet could not reach the server")
	}
	s.Labels, s.Firewalls = labels, firewalls.names
	h := &model.Host{Provider: model.Hetzner, Enabled: enabled, Hetzner: s, Pos: callerPos(thread)}
	kw := map[string]string{"type": quote(s.Type), "location": quote(s.Location)}
	if !enabled {
		kw["enabled"] = "False"
	}
	return &HostValue{host: h, repr: callRepr(b.Name(), nil, kw)}, nil
}

func builtinGCPInstance(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	g := &model.GCPInstance{DiskGB: 50, Image: "projects/debian-cloud/global/images/family/debian-12"}
	enabled := true
	var labels stringMap
	var tags stringList
	if err := unpack(b.Name(), args, kwargs, "project", &g.Project, "zone", &g.Zone, "type", &g.Type,
		"disk_gb?", &g.DiskGB, "image?", &g.Image, "gpu?", &g.GPU, "gpus?", &g.GPUs, "tags?", &tags,
		"labels?", &labels, "enabled?", &enabled); err != nil {
		return nil, err
	}
	if g.Project == "" || g.Type == "" || g.Image == "" {
		return nil, fmt.Errorf("gcp.instance: project, type and image must not be empty")
	}
	if !zoneRE.MatchString(g.Zone) {
		return nil, fmt.Errorf("gcp.instance: zone %q is not a GCE zone (like \"us-central1-b\")", g.Zone)
	}
	if g.DiskGB < 10 || g.DiskGB > 65536 {
		return nil, fmt.Errorf("gcp.instance: disk_gb = %d: boot disks are 10 to 65536 GB", g.DiskGB)
	}
	if (g.GPU == "") != (g.GPUs == 0) {
		return nil, fmt.Errorf("gcp.instance: give gpu and gpus together (gpu = \"nvidia-tesla-t4\", gpus = 1)")
	}
	if g.GPUs < 0 || g.GPUs > 8 {
		return nil, fmt.Errorf("gcp.instance: gpus = %d: 0 to 8", g.GPUs)
	}
	if err := checkLabels(b.Name(), labels); err != nil {
		return nil, err
	}
	g.Labels, g.Tags = labels, tags
	h := &model.Host{Provider: model.GCP, Enabled: enabled, GCP: g, Pos: callerPos(thread)}
	kw := map[string]string{"project": quote(g.Project), "zone": quote(g.Zone), "type": quote(g.Type)}
	if !enabled {
		kw["enabled"] = "False"
	}
	return &HostValue{host: h, repr: callRepr(b.Name(), nil, kw)}, nil
}

// checkHetznerOffer refuses a server type or location that fleet's
// catalogue of Hetzner Cloud (hcloudcatalog) does not know, and a type
// where it is not sold: the API would refuse them at apply, after the
// plan. The catalogue is as of its date; the live catalogue is not asked
// (evaluation makes no network calls).
func checkHetznerOffer(typ, loc string) error {
	locs := hcloudcatalog.Locations
	if !slices.Contains(locs, loc) {
		return fmt.Errorf("location %q is not a Hetzner Cloud location: use one of %s%s",
			loc, strings.Join(locs, ", "), DidYouMean(loc, locs))
	}
	st, ok := hcloudcatalog.ServerTypes[typ]
	if !ok {
		types := slices.Sorted(maps.Keys(hcloudcatalog.ServerTypes))
		return fmt.Errorf("type %q is not a Hetzner Cloud server type in fleet's catalogue (of %s): use one of %s%s",
			typ, hcloudcatalog.PriceDate, strings.Join(types, ", "), DidYouMean(typ, types))
	}
	if !slices.Contains(st.Locations, loc) {
		var here []string
		for name, other := range hcloudcatalog.ServerTypes {
			if slices.Contains(other.Locations, loc) {
				here = append(here, name)
			}
		}
		slices.Sort(here)
		return fmt.Errorf("type %q is not sold in %s: it is sold in %s; types sold in %s are %s",
			typ, loc, strings.Join(st.Locations, ", "), loc, strings.Join(here, ", "))
	}
	return nil
}

// checkHetznerArch refuses a server type whose CPU is not the machine's:
// an x86_64-linux system on an Ampere (arm) type does not boot.
func checkHetznerArch(typ, system string) error {
	st, ok := hcloudcatalog.ServerTypes[typ]
	if !ok {
		return nil // hetzner.server refused it
	}
	want := map[string]string{"x86": "x86_64-linux", "arm": "aarch64-linux"}[st.Architecture]
	if want != "" && want != system {
		return fmt.Errorf("server type %s has %s CPUs, so its system is %s, not %s", typ, st.Architecture, want, system)
	}
	return nil
}

var firewallRuleRE = regexp.MustCompile(`^(tcp|udp)/([0-9]{1,5})(-([0-9]{1,5}))?$|^(icmp|esp|gre)$`)

func builtinHetznerFirewall(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name string
	var allow stringList
	sources := stringList{"0.0.0.0/0", "::/0"}
	var labels stringMap
	if err := unpack(b.Name(), args, kwargs, "name", &name, "allow", &allow, "sources?", &sources, "labels?", &labels); err != nil {
		return nil, err
	}
	if err := checkName("firewall", name, machineNameRE, "use lower-case letters, digits and '-'"); err != nil {
		return nil, err
	}
	if len(allow) == 0 {
		return nil, fmt.Errorf("hetzner.firewall %s: allow is empty: a firewall that allows nothing locks fleet out too (name at least \"tcp/22\")", name)
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("hetzner.firewall %s: sources is empty", name)
	}
	for _, src := range sources {
		if _, _, err := net.ParseCIDR(src); err != nil {
			return nil, fmt.Errorf("hetzner.firewall %s: source %q is not a network in CIDR notation (\"203.0.113.0/24\", \"::/0\")", name, src)
		}
	}
	if err := checkLabels(b.Name(), labels); err != nil {
		return nil, err
	}
	fw := &model.Firewall{Provider: model.Hetzner, Name: name, Labels: labels, Pos: callerPos(thread)}
	for _, a := range allow {
		m := firewallRuleRE.FindStringSubmatch(a)
		if m == nil {
			return nil, fmt.Errorf("hetzner.firewall %s: allow %q: write \"tcp/22\", \"udp/60000-61000\", \"icmp\", \"esp\" or \"gre\"", name, a)
		}
		rule := model.FirewallRule{Protocol: m[1] + m[5], Sources: sources}
		if m[1] != "" {
			lo, _ := strconv.Atoi(m[2])
			hi := lo
			if m[4] != "" {
				hi, _ = strconv.Atoi(m[4])
			}
			if lo < 1 || hi > 65535 || hi < lo {
				return nil, fmt.Errorf("hetzner.firewall %s: allow %q: ports are 1 to 65535, low to high", name, a)
			}
			rule.Port = m[2] + m[3]
		}
		fw.Rules = append(fw.Rules, rule)
	}
	r.firewalls = append(r.firewalls, fw)
	return newDecl(b.Name(), name, starlark.StringDict{
		"allow":   strList(allow),
		"sources": strList(sources),
	}), nil
}

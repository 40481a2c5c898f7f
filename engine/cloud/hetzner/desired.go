package hetzner

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/model"
)

// Keys of a wanted server's Resource.Extra: what creating it needs that
// the plan does not compare.
const (
	extraSSHKeys = "ssh_keys" // []*cloud.Resource: the fleet's ssh_key resources
	// extraFirewalls are the names of all the server's firewalls, the
	// fleet's and existing ones of the project, in the order declared.
	extraFirewalls = "firewalls" // []string
	// extraFleetFirewalls are the firewall resources of the fleet's own
	// firewalls the server uses (a subset of extraFirewalls).
	extraFleetFirewalls = "fleet_firewalls" // []*cloud.Resource
	extraIPv4           = "ipv4"            // bool: a public IPv4
	extraIPv6           = "ipv6"            // bool: a public IPv6 network
)

// Keys of a wanted firewall's Resource.Extra.
const (
	extraRules = "rules" // []rule: the rules to create or set, canonical
)

// labelUser marks an ssh key with the user it came from.
const labelUser = "fleet-user"

// Desired returns one server per enabled Hetzner host and, if there is
// any, one ssh key per distinct admin ssh public key and one firewall per
// declared Hetzner firewall (hetzner.firewall) an enabled server uses:
// keys first, then firewalls, then servers.
//
// A server's Spec has "firewalls": the names of the fleet's own firewalls
// it uses, sorted and comma-joined, which an update changes in place.
// Names the fleet does not declare are existing firewalls of the project:
// they are attached when the server is created and not compared.
func (p *Provider) Desired(f *model.Fleet) ([]*cloud.Resource, error) {
	declared := hetznerFirewalls(f)
	firewalls := map[string]*cloud.Resource{}
	var servers []*cloud.Resource
	for _, m := range f.Machines {
		h := m.Host
		if h == nil || h.Provider != model.Hetzner || !h.Enabled {
			continue
		}
		hs := h.Hetzner
		if hs == nil {
			return nil, fmt.Errorf("hetzner: machine %s (%s): the host has no Hetzner settings", m.Name, h.Pos)
		}
		// An empty setting would let the API choose, and the plan would
		// then see a difference on every run and want to replace.
		for _, s := range []struct{ name, value string }{{"type", hs.Type}, {"location", hs.Location}, {"image", hs.Image}} {
			if s.value == "" {
				return nil, fmt.Errorf("hetzner: machine %s (%s): the server needs a %s", m.Name, h.Pos, s.name)
			}
		}
		labels := cloud.FleetLabels(f.Name, m.Name, hs.Labels)
		if err := validLabels(labels); err != nil {
			return nil, fmt.Errorf("hetzner: machine %s (%s): %w", m.Name, h.Pos, err)
		}
		var names, managed []string
		var fleetFWs []*cloud.Resource
		for _, n := range hs.Firewalls {
			if contains(names, n) {
				continue
			}
			names = append(names, n)
			fw := declared[n]
			if fw == nil {
				continue
			}
			r := firewalls[n]
			if r == nil {
				var err error
				if r, err = firewallWanted(f, fw); err != nil {
					return nil, err
				}
				firewalls[n] = r
			}
			managed = append(managed, n)
			fleetFWs = append(fleetFWs, r)
		}
		if len(names) > maxFirewalls {
			return nil, fmt.Errorf("hetzner: machine %s (%s): %d firewalls: Hetzner applies at most %d to a server", m.Name, h.Pos, len(names), maxFirewalls)
		}
		sort.Strings(managed)
		servers = append(servers, &cloud.Resource{
			Provider: providerName,
			Kind:     KindServer,
			Name:     m.Name,
			Machine:  m.Name,
			Labels:   labels,
			Spec: map[string]string{"type": hs.Type, "location": hs.Location, "image": hs.Image, "power": "on",
				"firewalls": strings.Join(managed, ",")},
			Mutable: []string{"power", "firewalls"},
			Extra: map[string]any{
				extraFirewalls:      names,
				extraFleetFirewalls: fleetFWs,
				extraIPv4:           hs.IPv4,
				extraIPv6:           hs.IPv6,
			},
		})
	}
	if len(servers) == 0 {
		// Keys and firewalls are only made for servers to use; with none
		// wanted the plan deletes those that exist.
		return nil, nil
	}
	keys, err := sshKeys(f)
	if err != nil {
		return nil, err
	}
	for _, s := range servers {
		s.Extra[extraSSHKeys] = keys
	}
	fws := make([]*cloud.Resource, 0, len(firewalls))
	for _, r := range firewalls {
		fws = append(fws, r)
	}
	sort.Slice(fws, func(i, j int) bool { return fws[i].Name < fws[j].Name })
	out := make([]*cloud.Resource, 0, len(keys)+len(fws)+len(servers))
	out = append(out, keys...)
	out = append(out, fws...)
	return append(out, servers...), nil
}

// sshKeys returns an ssh_key resource for each distinct ssh public key of
// the fleet's admins (a user's keys, or a raw key), sorted by name. Age
// recipients are for secrets and are skipped.
func sshKeys(f *model.Fleet) ([]*cloud.Resource, error) {
	byName := map[string]*cloud.Resource{}
	add := func(key, user string) error {
		pub, err := normalizeKey(key)
		if err != nil {
			if user != "" {
				return fmt.Errorf("hetzner: ssh key of admin %s: %w", user, err)
			}
			return fmt.Errorf("hetzner: admin ssh key: %w", err)
		}
		name := keyName(f.Name, pub)
		if byName[name] != nil {
			return nil // the first admin that brings a key names its user
		}
		labels := cloud.FleetLabels(f.Name, "", nil)
		if user != "" {
			labels[labelUser] = user
		}
		if err := validLabels(labels); err != nil {
			return fmt.Errorf("hetzner: ssh key of admin %s: %w", user, err)
		}
		byName[name] = &cloud.Resource{
			Provider: providerName,
			Kind:     KindSSHKey,
			Name:     name,
			Labels:   labels,
			Spec:     map[string]string{"public_key": pub},
		}
		return nil
	}
	for _, a := range f.Admins {
		if u := f.User(a); u != nil {
			for _, k := range u.SSHKeys {
				if err := add(k, u.Name); err != nil {
					return nil, err
				}
			}
			continue
		}
		if isSSHKey(a) {
			if err := add(a, ""); err != nil {
				return nil, err
			}
		}
	}
	out := make([]*cloud.Resource, 0, len(byName))
	for _, r := range byName {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func isSSHKey(s string) bool {
	return strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-sha2-") || strings.HasPrefix(s, "sk-")
}

// normalizeKey returns "<type> <base64>" of an authorized_keys line,
// without its comment: that is what is uploaded, so that what the API
// gives back compares equal.
func normalizeKey(key string) (string, error) {
	fields := strings.Fields(key)
	if len(fields) < 2 || !isSSHKey(fields[0]) {
		return "", fmt.Errorf("%q is not an ssh public key (want \"<type> <base64> [comment]\")", short(key))
	}
	if _, err := base64.StdEncoding.DecodeString(fields[1]); err != nil {
		return "", fmt.Errorf("%q is not an ssh public key: %v", short(key), err)
	}
	return fields[0] + " " + fields[1], nil
}

// keyName is the name of a key in the project: the fleet, and a digest of
// the key so that the same key always has the same name.
func keyName(fleet, pub string) string {
	_, b64, _ := strings.Cut(pub, " ")
	sum := sha256.Sum256([]byte(b64))
	return fleet + "-" + hex.EncodeToString(sum[:])[:12]
}

func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// validLabels checks labels against the API's rules before any request,
// so that a bad label is reported with the machine's position.
func validLabels(labels map[string]string) error {
	m := make(map[string]any, len(labels))
	for k, v := range labels {
		m[k] = v
	}
	_, err := hcloud.ValidateResourceLabels(m)
	return err
}

package hetzner

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// selector is the label selector of everything fleet made for fleet.
func selector(fleet string) string {
	return cloud.LabelManagedBy + "=" + cloud.ManagedBy + "," + cloud.LabelFleet + "=" + fleet
}

// List returns the fleet's ssh keys, firewalls and servers: one
// label-selected, paginated list each. Hetzner has one scope, the
// project, so scopes is not needed. A server's "firewalls" are the
// fleet's firewalls it has, by name; the IDs of others are not looked up.
func (p *Provider) List(ctx context.Context, fleet string, scopes []string) ([]*cloud.Resource, error) {
	if err := p.Credentials(); err != nil {
		return nil, err
	}
	keys, err := p.listSSHKeys(ctx, selector(fleet))
	if err != nil {
		return nil, fmt.Errorf("hetzner: listing ssh keys: %w", err)
	}
	firewalls, err := p.listFirewalls(ctx, selector(fleet))
	if err != nil {
		return nil, fmt.Errorf("hetzner: listing firewalls: %w", err)
	}
	servers, err := allPages(ctx, p, func(page int) ([]*hcloud.Server, *hcloud.Response, error) {
		return p.client.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: perPage, LabelSelector: selector(fleet)}})
	})
	if err != nil {
		return nil, fmt.Errorf("hetzner: listing servers: %w", err)
	}
	out := make([]*cloud.Resource, 0, len(keys)+len(firewalls)+len(servers))
	for _, k := range keys {
		out = append(out, keyResource(k))
	}
	names := make(map[int64]string, len(firewalls))
	for _, fw := range firewalls {
		names[fw.ID] = fw.Name
		out = append(out, firewallResource(fw))
	}
	for _, s := range servers {
		out = append(out, serverResource(s, names))
	}
	return out, nil
}

func (p *Provider) listSSHKeys(ctx context.Context, labelSelector string) ([]*hcloud.SSHKey, error) {
	return allPages(ctx, p, func(page int) ([]*hcloud.SSHKey, *hcloud.Response, error) {
		return p.client.SSHKey.List(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: perPage, LabelSelector: labelSelector}})
	})
}

// allPages walks a list page by page, retrying each page on its own.
func allPages[T any](ctx context.Context, p *Provider, list func(page int) ([]*T, *hcloud.Response, error)) ([]*T, error) {
	var out []*T
	for page := 1; page != 0; {
		var items []*T
		var resp *hcloud.Response
		err := p.do(ctx, func() (*hcloud.Response, error) {
			var err error
			items, resp, err = list(page)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		page = 0
		if resp.Meta.Pagination != nil {
			page = resp.Meta.Pagination.NextPage
		}
	}
	return out, nil
}

// serverResource is a server as the plan compares it. fleetFirewalls
// names the fleet's firewalls by ID: those the server has are its
// "firewalls", sorted and comma-joined (pending ones count: they are
// being applied).
func serverResource(s *hcloud.Server, fleetFirewalls map[int64]string) *cloud.Resource {
	var fws []string
	for _, st := range s.PublicNet.Firewalls {
		if n, ok := fleetFirewalls[st.Firewall.ID]; ok && !contains(fws, n) {
			fws = append(fws, n)
		}
	}
	sort.Strings(fws)
	r := &cloud.Resource{
		Provider: providerName,
		Kind:     KindServer,
		Name:     s.Name,
		Machine:  s.Labels[cloud.LabelMachine],
		Labels:   s.Labels,
		Spec: map[string]string{"type": "", "location": "", "image": "", "power": power(s.Status),
			"firewalls": strings.Join(fws, ",")},
		Mutable: []string{"power", "firewalls"},
		ID:      strconv.FormatInt(s.ID, 10),
		Status:  string(s.Status),
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if s.ServerType != nil {
		r.Spec["type"] = s.ServerType.Name
	}
	if s.Location != nil {
		r.Spec["location"] = s.Location.Name
	}
	if s.Image != nil {
		// Snapshots have no name: they are referred to by ID, in the
		// fleet as here.
		r.Spec["image"] = s.Image.Name
		if s.Image.Name == "" && s.Image.ID != 0 {
			r.Spec["image"] = strconv.FormatInt(s.Image.ID, 10)
		}
	}
	if !s.PublicNet.IPv4.IsUnspecified() {
		r.IPv4 = s.PublicNet.IPv4.IP.String()
	}
	if n := s.PublicNet.IPv6.Network; n != nil && !s.PublicNet.IPv6.IsUnspecified() {
		// A server gets a /64; Hetzner's images configure its ::1, which is
		// the address to reach it at.
		ip := append(net.IP(nil), n.IP.To16()...)
		ip[15] = 1
		r.IPv6 = ip.String()
	}
	return r
}

// power is the "power" setting a server status amounts to. Transitional
// states count as where they are heading.
func power(s hcloud.ServerStatus) string {
	switch s {
	case hcloud.ServerStatusOff, hcloud.ServerStatusStopping, hcloud.ServerStatusDeleting:
		return "off"
	}
	return "on"
}

func keyResource(k *hcloud.SSHKey) *cloud.Resource {
	labels := k.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return &cloud.Resource{
		Provider: providerName,
		Kind:     KindSSHKey,
		Name:     k.Name,
		Labels:   labels,
		Spec:     map[string]string{"public_key": k.PublicKey},
		ID:       strconv.FormatInt(k.ID, 10),
	}
}

// Create creates a server, an ssh key or a firewall and waits until it
// is ready.
func (p *Provider) Create(ctx context.Context, want *cloud.Resource) (*cloud.Resource, error) {
	if err := p.Credentials(); err != nil {
		return nil, err
	}
	switch want.Kind {
	case KindServer:
		return p.createServer(ctx, want)
	case KindSSHKey:
		k, err := p.createSSHKey(ctx, want)
		if err != nil {
			return nil, err
		}
		return keyResource(k), nil
	case KindFirewall:
		fw, err := p.createFirewall(ctx, want)
		if err != nil {
			return nil, err
		}
		return firewallResource(fw), nil
	}
	return nil, fmt.Errorf("hetzner: cannot create a %s", want.Kind)
}

// duplicateKeyError: the public key is already in the project under
// another name, and Hetzner keeps a public key only once per project.
type duplicateKeyError struct {
	name     string
	existing *hcloud.SSHKey
	labels   map[string]string
}

func (e *duplicateKeyError) Error() string {
	return fmt.Sprintf("hetzner: ssh key %s: the same public key is already in the project as ssh key %q, which this fleet did not create, "+
		"and Hetzner keeps a public key only once per project: delete %q, or rename it to %s and label it %s",
		e.name, e.existing.Name, e.existing.Name, e.name, labelString(e.labels))
}

func labelString(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (p *Provider) createSSHKey(ctx context.Context, want *cloud.Resource) (*hcloud.SSHKey, error) {
	var key *hcloud.SSHKey
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		key, resp, err = p.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: want.Name, PublicKey: want.Spec["public_key"], Labels: want.Labels})
		return resp, err
	})
	if hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		return p.existingSSHKey(ctx, want, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hetzner: creating ssh key %s: %w", want.Name, err)
	}
	return key, nil
}

// existingSSHKey explains a uniqueness error on creating an ssh key: the
// name is taken (by an earlier run of this fleet, or by someone else), or
// the public key is already there under another name.
func (p *Provider) existingSSHKey(ctx context.Context, want *cloud.Resource, cause error) (*hcloud.SSHKey, error) {
	var key *hcloud.SSHKey
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		key, resp, err = p.client.SSHKey.GetByName(ctx, want.Name)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("hetzner: creating ssh key %s: %w; looking it up: %w", want.Name, cause, err)
	}
	if key != nil {
		if !keyResource(key).Ours(want.Labels[cloud.LabelFleet]) {
			return nil, &cloud.NamesakeError{Provider: providerName, Kind: KindSSHKey, Name: want.Name}
		}
		return key, nil
	}
	fp, ferr := fingerprint(want.Spec["public_key"])
	if ferr == nil {
		err = p.do(ctx, func() (resp *hcloud.Response, err error) {
			key, resp, err = p.client.SSHKey.GetByFingerprint(ctx, fp)
			return resp, err
		})
	}
	if ferr == nil && err == nil && key != nil {
		return nil, &duplicateKeyError{name: want.Name, existing: key, labels: want.Labels}
	}
	return nil, fmt.Errorf("hetzner: creating ssh key %s: %w", want.Name, cause)
}

// fingerprint is the API's MD5 fingerprint of a public key.
func fingerprint(pub string) (string, error) {
	_, b64, _ := strings.Cut(pub, " ")
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", err
	}
	sum := md5.Sum(blob)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":"), nil
}

func (p *Provider) createServer(ctx context.Context, want *cloud.Resource) (*cloud.Resource, error) {
	keys, err := p.serverSSHKeys(ctx, want)
	if err != nil {
		return nil, err
	}
	firewalls, fleetFirewalls, err := p.serverFirewalls(ctx, want)
	if err != nil {
		return nil, err
	}
	image := &hcloud.Image{Name: want.Spec["image"]}
	if id, err := strconv.ParseInt(want.Spec["image"], 10, 64); err == nil {
		image = &hcloud.Image{ID: id} // a snapshot
	}
	start := want.Spec["power"] != "off"
	ipv4, _ := want.Extra[extraIPv4].(bool)
	ipv6, _ := want.Extra[extraIPv6].(bool)
	opts := hcloud.ServerCreateOpts{
		Name:             want.Name,
		ServerType:       &hcloud.ServerType{Name: want.Spec["type"]},
		Image:            image,
		Location:         &hcloud.Location{Name: want.Spec["location"]},
		SSHKeys:          keys,
		Labels:           want.Labels,
		StartAfterCreate: hcloud.Ptr(start),
		Firewalls:        firewalls,
		PublicNet:        &hcloud.ServerCreatePublicNet{EnableIPv4: ipv4, EnableIPv6: ipv6},
	}
	var res hcloud.ServerCreateResult
	err = p.do(ctx, func() (resp *hcloud.Response, err error) {
		res, resp, err = p.client.Server.Create(ctx, opts)
		return resp, err
	})
	if hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		return p.existingServer(ctx, want, fleetFirewalls, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hetzner: creating server %s: %w", want.Name, err)
	}

	if err := p.wait(ctx, res.Action); err != nil {
		var ae hcloud.ActionError
		if !errors.As(err, &ae) {
			// Interrupted: the server exists with fleet's labels, and the
			// next plan sees it.
			return nil, fmt.Errorf("hetzner: waiting for server %s to be created: %w", want.Name, err)
		}
		msg := fmt.Sprintf("hetzner: creating server %s failed: %s", want.Name, ae.Message)
		// Leave nothing half-made behind.
		if derr := p.deleteServer(ctx, res.Server.ID); derr != nil {
			return nil, fmt.Errorf("%s (deleting what was made failed too, the next apply deletes it: %v)", msg, derr)
		}
		return nil, errors.New(msg)
	}
	have := serverResource(res.Server, fleetFirewalls)
	have.Spec["firewalls"] = want.Spec["firewalls"] // applied with the create
	if err := p.wait(ctx, res.NextActions...); err != nil {
		var ae hcloud.ActionError
		if errors.As(err, &ae) {
			err = errors.New(ae.Message)
		}
		return nil, fmt.Errorf("hetzner: server %s was created but did not start (the next apply switches it on): %w", want.Name, err)
	}
	// Settle what the create answer could not know yet.
	if start {
		have.Status, have.Spec["power"] = string(hcloud.ServerStatusRunning), "on"
	} else {
		have.Status, have.Spec["power"] = string(hcloud.ServerStatusOff), "off"
	}
	return have, nil
}

// existingServer explains a uniqueness error on creating a server: the
// name is taken, by an earlier run of this fleet (then it is the server
// wanted) or by someone else.
func (p *Provider) existingServer(ctx context.Context, want *cloud.Resource, fleetFirewalls map[int64]string, cause error) (*cloud.Resource, error) {
	var s *hcloud.Server
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		s, resp, err = p.client.Server.GetByName(ctx, want.Name)
		return resp, err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("hetzner: creating server %s: %w; looking it up: %w", want.Name, cause, err)
	case s == nil:
		// Gone again in between: the next apply creates it.
		return nil, fmt.Errorf("hetzner: creating server %s: %w", want.Name, cause)
	}
	have := serverResource(s, fleetFirewalls)
	if !have.Ours(want.Labels[cloud.LabelFleet]) {
		return nil, &cloud.NamesakeError{Provider: providerName, Kind: KindServer, Name: want.Name, Machine: want.Machine}
	}
	return have, nil
}

// serverSSHKeys resolves the fleet's ssh keys to the IDs the create
// request takes, with one list. Keys that are missing (their own create
// failed, or ran concurrently) are created here.
func (p *Provider) serverSSHKeys(ctx context.Context, want *cloud.Resource) ([]*hcloud.SSHKey, error) {
	wanted, _ := want.Extra[extraSSHKeys].([]*cloud.Resource)
	if len(wanted) == 0 {
		return nil, nil
	}
	have, err := p.listSSHKeys(ctx, selector(want.Labels[cloud.LabelFleet]))
	if err != nil {
		return nil, fmt.Errorf("hetzner: server %s: listing ssh keys: %w", want.Name, err)
	}
	byName := map[string]*hcloud.SSHKey{}
	for _, k := range have {
		byName[k.Name] = k
	}
	var out []*hcloud.SSHKey
	for _, w := range wanted {
		k := byName[w.Name]
		if k == nil {
			k, err = p.createSSHKey(ctx, w)
			var dup *duplicateKeyError
			if errors.As(err, &dup) {
				// Not ours to label, but the admin's key all the same.
				k, err = dup.existing, nil
			}
			if err != nil {
				return nil, fmt.Errorf("hetzner: server %s: %w", want.Name, err)
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// serverFirewalls resolves the server's firewalls to the IDs the create
// request takes, with one list: label-selected when they are all the
// fleet's own, of the whole project when some are not. The fleet's own
// that are missing (their create failed, or runs concurrently) are
// created here; a namesake of one is a *cloud.NamesakeError, for a server
// must not start behind someone else's rules. It also returns the
// fleet's firewalls by ID, to describe the server with.
func (p *Provider) serverFirewalls(ctx context.Context, want *cloud.Resource) ([]*hcloud.ServerCreateFirewall, map[int64]string, error) {
	names, _ := want.Extra[extraFirewalls].([]string)
	if len(names) == 0 {
		return nil, nil, nil
	}
	fleet := want.Labels[cloud.LabelFleet]
	declared := map[string]*cloud.Resource{}
	fleetFWs, _ := want.Extra[extraFleetFirewalls].([]*cloud.Resource)
	for _, r := range fleetFWs {
		declared[r.Name] = r
	}
	labelSelector := selector(fleet)
	for _, n := range names {
		if declared[n] == nil {
			labelSelector = "" // an existing firewall of the project, by name
		}
	}
	all, err := p.listFirewalls(ctx, labelSelector)
	if err != nil {
		return nil, nil, fmt.Errorf("hetzner: server %s: listing firewalls: %w", want.Name, err)
	}
	byName := map[string]*hcloud.Firewall{}
	for _, fw := range all {
		byName[fw.Name] = fw
	}
	var out []*hcloud.ServerCreateFirewall
	ours := map[int64]string{}
	var missing []string
	for _, n := range names {
		fw := byName[n]
		if r := declared[n]; r != nil {
			switch {
			case fw != nil && !firewallResource(fw).Ours(fleet):
				return nil, nil, fmt.Errorf("hetzner: server %s: %w", want.Name,
					&cloud.NamesakeError{Provider: providerName, Kind: KindFirewall, Name: n})
			case fw == nil:
				if fw, err = p.createFirewall(ctx, r); err != nil {
					return nil, nil, fmt.Errorf("hetzner: server %s: %w", want.Name, err)
				}
			}
			ours[fw.ID] = n
		} else if fw == nil {
			missing = append(missing, strconv.Quote(n))
			continue
		}
		out = append(out, &hcloud.ServerCreateFirewall{Firewall: hcloud.Firewall{ID: fw.ID}})
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("hetzner: server %s: no firewall %s in the project (fleet creates the firewalls it declares with hetzner.firewall; "+
			"other names must be existing firewalls, which it attaches but does not create)",
			want.Name, strings.Join(missing, ", "))
	}
	return out, ours, nil
}

// Update switches a server on or off, changes which of the fleet's
// firewalls it has, sets a firewall's rules, or sets the labels of any
// of them, and waits.
func (p *Provider) Update(ctx context.Context, want, have *cloud.Resource, fields []string) (*cloud.Resource, error) {
	if err := p.Credentials(); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(have.ID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("hetzner: %s %s has no ID %q", have.Kind, have.Name, have.ID)
	}
	out := *have
	out.Spec = copyMap(have.Spec)
	for _, f := range fields {
		switch {
		case f == "labels" && have.Kind == KindServer:
			var s *hcloud.Server
			err = p.do(ctx, func() (resp *hcloud.Response, err error) {
				s, resp, err = p.client.Server.Update(ctx, &hcloud.Server{ID: id}, hcloud.ServerUpdateOpts{Labels: want.Labels})
				return resp, err
			})
			if err == nil {
				out.Labels = s.Labels
			}
		case f == "labels" && have.Kind == KindSSHKey:
			var k *hcloud.SSHKey
			err = p.do(ctx, func() (resp *hcloud.Response, err error) {
				k, resp, err = p.client.SSHKey.Update(ctx, &hcloud.SSHKey{ID: id}, hcloud.SSHKeyUpdateOpts{Labels: want.Labels})
				return resp, err
			})
			if err == nil {
				out.Labels = k.Labels
			}
		case have.Kind == KindFirewall:
			err = p.updateFirewall(ctx, id, want, f, &out)
		case f == "firewalls" && have.Kind == KindServer:
			err = p.setServerFirewalls(ctx, id, want, have)
			if err == nil {
				out.Spec["firewalls"] = want.Spec["firewalls"]
			}
		case f == "power" && have.Kind == KindServer:
			err = p.setPower(ctx, id, want.Spec["power"])
			if err == nil {
				out.Spec["power"] = want.Spec["power"]
				out.Status = map[string]string{"on": string(hcloud.ServerStatusRunning), "off": string(hcloud.ServerStatusOff)}[want.Spec["power"]]
			}
		default:
			return nil, fmt.Errorf("hetzner: %s %s: %s cannot be changed in place", have.Kind, have.Name, f)
		}
		if err != nil {
			return nil, fmt.Errorf("hetzner: updating %s of %s %s: %w", f, have.Kind, have.Name, err)
		}
	}
	return &out, nil
}

// setPower switches a server on or off. Off is a hard power-off: a host
// switched off is a cost toggle or a stuck machine, and an ACPI shutdown
// may never finish.
func (p *Provider) setPower(ctx context.Context, id int64, state string) error {
	call := p.client.Server.Poweron
	switch state {
	case "on":
	case "off":
		call = p.client.Server.Poweroff
	default:
		return fmt.Errorf("unknown power state %q (want on or off)", state)
	}
	var a *hcloud.Action
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		a, resp, err = call(ctx, &hcloud.Server{ID: id})
		return resp, err
	})
	if err != nil {
		return err
	}
	return p.wait(ctx, a)
}

// Delete deletes a server (and waits), an ssh key or a firewall (see
// deleteFirewall for one still in use). What is already gone counts as
// deleted.
func (p *Provider) Delete(ctx context.Context, have *cloud.Resource) error {
	if err := p.Credentials(); err != nil {
		return err
	}
	id, err := strconv.ParseInt(have.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("hetzner: %s %s has no ID %q", have.Kind, have.Name, have.ID)
	}
	switch have.Kind {
	case KindServer:
		err = p.deleteServer(ctx, id)
	case KindSSHKey:
		err = p.do(ctx, func() (*hcloud.Response, error) {
			return p.client.SSHKey.Delete(ctx, &hcloud.SSHKey{ID: id})
		})
		if isNotFound(err) {
			err = nil
		}
	case KindFirewall:
		err = p.deleteFirewall(ctx, id, have)
		var inUse *firewallInUseError
		if errors.As(err, &inUse) {
			return err
		}
	default:
		return fmt.Errorf("hetzner: cannot delete a %s", have.Kind)
	}
	if err != nil {
		return fmt.Errorf("hetzner: deleting %s %s: %w", have.Kind, have.Name, err)
	}
	return nil
}

func (p *Provider) deleteServer(ctx context.Context, id int64) error {
	var res *hcloud.ServerDeleteResult
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		res, resp, err = p.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: id})
		return resp, err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.wait(ctx, res.Action)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

package hetzner

import (
	"context"
	"fmt"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// PlanAdoption looks up the server want names in the project of the
// token, whatever its labels (one list by name), and says what adopting
// it would do. When want has firewalls of the fleet, their IDs are
// listed too (one label-selected list), so that the server's
// "firewalls" compare as a plan would compare them. Only servers can be
// adopted: ssh keys and firewalls the fleet makes itself.
func (p *Provider) PlanAdoption(ctx context.Context, want *cloud.Resource) (*cloud.Adoption, error) {
	if err := p.Credentials(); err != nil {
		return nil, err
	}
	if want.Kind != KindServer {
		return nil, fmt.Errorf("hetzner: cannot adopt a %s, only servers", want.Kind)
	}
	var s *hcloud.Server
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		s, resp, err = p.client.Server.GetByName(ctx, want.Name)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("hetzner: looking up server %s: %w", want.Name, err)
	}
	if s == nil {
		return nil, &cloud.NotFoundError{Provider: providerName, Kind: KindServer, Name: want.Name,
			Where: "the Hetzner Cloud project of HCLOUD_TOKEN"}
	}
	fleetFirewalls := map[int64]string{}
	if want.Spec["firewalls"] != "" {
		fws, err := p.listFirewalls(ctx, selector(want.Labels[cloud.LabelFleet]))
		if err != nil {
			return nil, fmt.Errorf("hetzner: server %s: listing the fleet's firewalls: %w", want.Name, err)
		}
		for _, fw := range fws {
			fleetFirewalls[fw.ID] = fw.Name
		}
	}
	return cloud.NewAdoption(want, serverResource(s, fleetFirewalls))
}

// Adopt sets the labels of the server a describes, by its ID, replacing
// all of its labels (retried like every request). Hetzner reports
// everything a plan compares, so nothing else is written.
func (p *Provider) Adopt(ctx context.Context, a *cloud.Adoption) (*cloud.Resource, error) {
	if a.AlreadyOurs {
		return a.Have, nil
	}
	if a.Have.Kind != KindServer {
		return nil, fmt.Errorf("hetzner: cannot adopt a %s, only servers", a.Have.Kind)
	}
	want := *a.Want
	want.Labels = a.Labels
	out, err := p.Update(ctx, &want, a.Have, []string{"labels"})
	if err != nil {
		return nil, err
	}
	out.Machine = want.Machine
	return out, nil
}

package hetzner

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hcloudcatalog"
)

// Where prices come from, as the plan shows it.
const (
	sourceAPI = "Hetzner pricing API"
	// priceTableDate is when priceTable was taken.
	priceTableDate = hcloudcatalog.PriceDate
	sourceTable    = "price table of " + priceTableDate
)

// priceTable is what a server type costs per month, gross in EUR with
// German VAT (19 %), in the EU locations (fsn1, nbg1, hel1), as of
// priceTableDate, from the catalogue that hetznerfake shares (package
// hcloudcatalog). The figures are approximate: they are the fallback when
// no token is set or the pricing API fails, for a plan to show the order
// of magnitude; US and Singapore locations cost somewhat more. It is
// never written.
var priceTable = hcloudcatalog.EURMonthly()

// ipv4Table is the monthly gross price of a primary IPv4 (0.50 EUR net),
// which every server with a public IPv4 pays on top of its type.
const ipv4Table = 0.60

// MonthlyPrice is what a server costs per month (type and, if it has
// one, its primary IPv4), from the pricing API if a token is set, else
// from the price table. ssh keys are free.
func (p *Provider) MonthlyPrice(ctx context.Context, r *cloud.Resource) (float64, string, error) {
	if r.Kind != KindServer {
		return 0, "", nil
	}
	typ, loc := r.Spec["type"], r.Spec["location"]
	ipv4 := r.IPv4 != ""
	if v, ok := r.Extra[extraIPv4].(bool); ok {
		ipv4 = v
	}
	if p.client != nil {
		// A failing pricing API is not worth failing a plan for: the table
		// is there, and the source says which figure was used.
		if pr, err := p.fetchPricing(ctx); err == nil {
			if eur, ok := apiPrice(pr, typ, loc, ipv4); ok {
				return eur, sourceAPI, nil
			}
		}
	}
	eur, ok := priceTable[typ]
	if !ok {
		return 0, "unknown server type " + typ, nil
	}
	if ipv4 {
		eur += ipv4Table
	}
	return eur, sourceTable, nil
}

// fetchPricing gets the pricing API's answer once per Provider; later
// calls, concurrent or not, share it (or its error).
func (p *Provider) fetchPricing(ctx context.Context) (*hcloud.Pricing, error) {
	p.pricingMu.Lock()
	defer p.pricingMu.Unlock()
	if !p.pricingDone {
		var pr hcloud.Pricing
		err := p.do(ctx, func() (resp *hcloud.Response, err error) {
			defer func() {
				// hcloud-go v2.52.0 converts the answer with a slice sized
				// by the floating IP types and indexed by the primary IP
				// types: an answer with more of the latter panics. A price
				// is not worth crashing a plan for; the table takes over.
				if v := recover(); v != nil {
					err = fmt.Errorf("hcloud-go could not read the pricing answer: %v", v)
				}
			}()
			pr, resp, err = p.client.Pricing.Get(ctx)
			return resp, err
		})
		p.pricingDone, p.pricing, p.pricingErr = true, &pr, err
	}
	return p.pricing, p.pricingErr
}

// apiPrice finds a server type's monthly gross price in a location in the
// pricing API's answer, plus the primary IPv4's if wanted.
func apiPrice(pr *hcloud.Pricing, typ, loc string, ipv4 bool) (float64, bool) {
	var eur float64
	found := false
	for _, st := range pr.ServerTypes {
		if st.ServerType == nil || st.ServerType.Name != typ {
			continue
		}
		for _, lp := range st.Pricings {
			if lp.Location != nil && lp.Location.Name == loc {
				v, err := strconv.ParseFloat(lp.Monthly.Gross, 64)
				if err != nil {
					return 0, false
				}
				eur, found = v, true
			}
		}
	}
	if !found {
		return 0, false
	}
	if ipv4 {
		add := ipv4Table
		for _, pip := range pr.PrimaryIPs {
			if pip.Type != "ipv4" {
				continue
			}
			for _, lp := range pip.Pricings {
				if lp.Location == loc {
					if v, err := strconv.ParseFloat(lp.Monthly.Gross, 64); err == nil {
						add = v
					}
				}
			}
		}
		eur += add
	}
	return eur, true
}

package gcp

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/internal/gcecatalog"
)

// GCE has no pricing API that works without a billing account, so plans
// price GCE hosts from this table: on-demand list prices in us-central1,
// taken 2026-11-25, in USD, without sustained-use or committed-use
// discounts. Other regions cost up to a fifth more; the figures are for
// comparing plans, not for invoices.
const (
	priceDate = gcecatalog.PriceDate
	// eurPerUSD converts the table to the EUR the plan shows.
	eurPerUSD = 0.92
	// hoursPerMonth is GCE's own month for pricing.
	hoursPerMonth = 730
	// PriceSource says where GCE figures come from.
	PriceSource = "GCE price table of " + priceDate + " (us-central1 on-demand list prices, USD at 0.92 EUR; approximate)"
)

// The price table is the catalogue's (package gcecatalog), which gcpfake
// shares, so plans and tests against the fake know the same types. The
// catalogue knows some types (A2, A3) without a price: those are priced
// 0, with a source that says so.
var (
	// machineUSDPerHour are machine types, vCPUs and memory included
	// (and, for accelerator-optimized types, their GPUs).
	machineUSDPerHour = gcecatalog.MachineUSDPerHour()
	// gpuUSDPerHour are GPUs, per GPU.
	gpuUSDPerHour = gcecatalog.GPUUSDPerHour()
	// diskUSDPerGBMonth are boot disk types, per GB and month.
	diskUSDPerGBMonth = gcecatalog.DiskUSDPerGBMonth
)

// MonthlyPrice prices an instance from the table: machine type, GPUs and
// boot disk while it runs, the disk alone while it is stopped (GCE bills
// no vCPU, memory or GPU then). Firewall rules are free. A type the table
// does not know is priced 0, with a source that says so.
func (p *Provider) MonthlyPrice(_ context.Context, r *cloud.Resource) (float64, string, error) {
	if r.Kind != KindInstance {
		return 0, "", nil
	}
	typ := r.Spec["type"]
	machine, ok := machineUSDPerHour[typ]
	if !ok {
		return 0, fmt.Sprintf("unknown machine type %s: not in the GCE price table of %s, priced 0", typ, priceDate), nil
	}
	disk, err := strconv.ParseFloat(orZero(r.Spec["disk_gb"]), 64)
	if err != nil {
		return 0, "", fmt.Errorf("gcp: instance %s: disk_gb %q: %w", r.Name, r.Spec["disk_gb"], err)
	}
	usd := disk * diskUSDPerGBMonth[diskType]
	if r.Spec["power"] == "off" {
		return eur(usd), PriceSource, nil
	}
	usd += machine * hoursPerMonth
	gpus, err := strconv.Atoi(orZero(r.Spec["gpus"]))
	if err != nil {
		return 0, "", fmt.Errorf("gcp: instance %s: gpus %q: %w", r.Name, r.Spec["gpus"], err)
	}
	if _, _, builtin := gcecatalog.BuiltinGPU(typ); gpus > 0 && !builtin {
		gpu, ok := gpuUSDPerHour[r.Spec["gpu"]]
		if !ok {
			return 0, fmt.Sprintf("unknown GPU type %s: not in the GCE price table of %s, priced 0", r.Spec["gpu"], priceDate), nil
		}
		usd += float64(gpus) * gpu * hoursPerMonth
	}
	return eur(usd), PriceSource, nil
}

// eur converts and rounds to cents.
func eur(usd float64) float64 { return math.Round(usd*eurPerUSD*100) / 100 }

package gcp

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// GCE has no pricing API that works without a billing account, so plans
// price GCE hosts from this table: on-demand list prices in us-central1,
// taken 2026-11-25, in USD, without sustained-use or committed-use
// discounts. Other regions cost up to a fifth more; the figures are for
// comparing plans, not for invoices.
const (
	priceDate = "2026-11-25"
	// eurPerUSD converts the table to the EUR the plan shows.
	eurPerUSD = 0.92
	// hoursPerMonth is GCE's own month for pricing.
	hoursPerMonth = 730
	// PriceSource says where GCE figures come from.
	PriceSource = "GCE price table of " + priceDate + " (us-central1 on-demand list prices, USD at 0.92 EUR; approximate)"
)

// machineUSDPerHour are machine types, vCPUs and memory included (and, for
// G2, its L4 GPUs).
var machineUSDPerHour = map[string]float64{
	"e2-micro":       0.008376,
	"e2-small":       0.016751,
	"e2-medium":      0.033503,
	"e2-standard-2":  0.067006,
	"e2-standard-4":  0.134012,
	"e2-standard-8":  0.268024,
	"e2-standard-16": 0.536048,
	"e2-standard-32": 1.072096,
	"n1-standard-1":  0.0475,
	"n1-standard-2":  0.0950,
	"n1-standard-4":  0.1900,
	"n1-standard-8":  0.3800,
	"n1-standard-16": 0.7600,
	"n1-standard-32": 1.5200,
	"n2-standard-2":  0.097118,
	"n2-standard-4":  0.194236,
	"n2-standard-8":  0.388472,
	"n2-standard-16": 0.776944,
	"g2-standard-4":  0.706832,
	"g2-standard-8":  0.853624,
	"g2-standard-12": 1.000416,
	"g2-standard-16": 1.147208,
	"g2-standard-24": 2.000832,
	"g2-standard-32": 1.734400,
	"g2-standard-48": 4.001664,
	"g2-standard-96": 8.003328,
}

// gpuUSDPerHour are attachable GPUs, per GPU.
var gpuUSDPerHour = map[string]float64{
	"nvidia-tesla-t4":   0.35,
	"nvidia-l4":         0.56,
	"nvidia-tesla-p4":   0.60,
	"nvidia-tesla-p100": 1.46,
	"nvidia-tesla-v100": 2.48,
}

// diskUSDPerGBMonth are boot disk types, per GB and month.
var diskUSDPerGBMonth = map[string]float64{
	"pd-standard": 0.04,
	"pd-balanced": 0.10,
	"pd-ssd":      0.17,
}

// bundledGPU is the GPU an accelerator-optimized machine type comes with:
// GCE attaches it by itself and its price is the machine's.
type bundledGPU struct {
	gpu   string
	count int
}

var bundledGPUs = map[string]bundledGPU{
	"g2-standard-4":  {"nvidia-l4", 1},
	"g2-standard-8":  {"nvidia-l4", 1},
	"g2-standard-12": {"nvidia-l4", 1},
	"g2-standard-16": {"nvidia-l4", 1},
	"g2-standard-24": {"nvidia-l4", 2},
	"g2-standard-32": {"nvidia-l4", 1},
	"g2-standard-48": {"nvidia-l4", 4},
	"g2-standard-96": {"nvidia-l4", 8},
}

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
	if _, bundled := bundledGPUs[typ]; gpus > 0 && !bundled {
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

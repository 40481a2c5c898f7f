// Package gcecatalog is what fleet knows of Compute Engine's offer: machine
// types and where they are offered, the GPUs some types come with, the
// GPUs that can be attached and to what, boot disk types, public images,
// and the list prices of 2026-11-25 (us-central1, on demand, USD).
//
// It is the one copy of these facts: the gcp provider prices plans and
// decides an instance's host maintenance policy from it, and gcpfake
// refuses what GCE would refuse from it, so that a test against the fake
// and a plan agree on what exists where. It is a subset of GCE (the zones
// of a few regions, the types fleet's users ask for) and approximate:
// availability changes, and the figures are for comparing plans.
//
// Sources: https://cloud.google.com/compute/docs/gpus (GPU machine types,
// GPU models and counts), https://cloud.google.com/compute/docs/gpus/gpu-regions-zones
// (where), https://cloud.google.com/compute/docs/gpus/gpu-host-maintenance
// (GPU instances cannot live-migrate), https://cloud.google.com/compute/vm-instance-pricing
// and https://cloud.google.com/compute/gpus-pricing (prices).
package gcecatalog

import (
	"slices"
	"strconv"
	"strings"
)

// PriceDate is when the prices were taken.
const PriceDate = "2026-11-25"

// Zones the catalogue describes: a few zones of us-central1,
// europe-west1 and europe-west4.
var Zones = []string{"europe-west1-b", "europe-west4-a", "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"}

var (
	allZones = Zones
	usC1ABC  = []string{"us-central1-a", "us-central1-b", "us-central1-c"}
)

// MachineType is a machine type: its on-demand price per hour (vCPUs and
// memory, and built-in GPUs for accelerator-optimized types; 0 if the
// price table does not have it) and the zones that offer it.
type MachineType struct {
	USDPerHour float64
	Zones      []string
}

// MachineTypes are the machine types the catalogue knows.
var MachineTypes = map[string]MachineType{
	"e2-micro":       {0.008376, allZones},
	"e2-small":       {0.016751, allZones},
	"e2-medium":      {0.033503, allZones},
	"e2-standard-2":  {0.067006, allZones},
	"e2-standard-4":  {0.134012, allZones},
	"e2-standard-8":  {0.268024, allZones},
	"e2-standard-16": {0.536048, allZones},
	"e2-standard-32": {1.072096, allZones},
	"n1-standard-1":  {0.0475, allZones},
	"n1-standard-2":  {0.0950, allZones},
	"n1-standard-4":  {0.1900, allZones},
	"n1-standard-8":  {0.3800, allZones},
	"n1-standard-16": {0.7600, allZones},
	"n1-standard-32": {1.5200, allZones},
	"n2-standard-2":  {0.097118, allZones},
	"n2-standard-4":  {0.194236, allZones},
	"n2-standard-8":  {0.388472, allZones},
	"n2-standard-16": {0.776944, allZones},
	// G2: NVIDIA L4 built in.
	"g2-standard-4":  {0.706832, l4Zones},
	"g2-standard-8":  {0.853624, l4Zones},
	"g2-standard-12": {1.000416, l4Zones},
	"g2-standard-16": {1.147208, l4Zones},
	"g2-standard-24": {2.000832, l4Zones},
	"g2-standard-32": {1.734400, l4Zones},
	"g2-standard-48": {4.001664, l4Zones},
	"g2-standard-96": {8.003328, l4Zones},
	// A2 and A3: offered where their GPUs are; not in the price table.
	"a2-highgpu-1g":  {0, a100Zones},
	"a2-highgpu-2g":  {0, a100Zones},
	"a2-highgpu-4g":  {0, a100Zones},
	"a2-highgpu-8g":  {0, a100Zones},
	"a2-megagpu-16g": {0, a100Zones},
	"a2-ultragpu-1g": {0, a100x80Zones},
	"a2-ultragpu-2g": {0, a100x80Zones},
	"a2-ultragpu-4g": {0, a100x80Zones},
	"a2-ultragpu-8g": {0, a100x80Zones},
	"a3-highgpu-1g":  {0, h100Zones},
	"a3-highgpu-2g":  {0, h100Zones},
	"a3-highgpu-4g":  {0, h100Zones},
	"a3-highgpu-8g":  {0, h100Zones},
}

// Where the built-in GPU types are, among Zones.
var (
	l4Zones      = []string{"europe-west1-b", "europe-west4-a", "us-central1-a", "us-central1-b", "us-central1-c"}
	a100Zones    = []string{"europe-west4-a", "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"}
	a100x80Zones = []string{"europe-west4-a", "us-central1-a", "us-central1-c"}
	h100Zones    = []string{"us-central1-a", "us-central1-c"}
)

// GPUFamily is a family of accelerator-optimized machine types, all of
// whose types come with GPUs: GCE attaches them by itself (an insert must
// not name them in guestAccelerators), reports them in the instance's
// guestAccelerators, and refuses to live-migrate such an instance.
type GPUFamily struct {
	Prefix string // of the family's machine type names, "a2-highgpu-"
	GPU    string // the accelerator type, as the instance reports it
	// Counts are the GPUs of each type of the family; nil for families
	// whose type names end in the count, "-<n>g" (a2-highgpu-8g: 8).
	Counts map[string]int
}

// GPUFamilies are every family of machine types with built-in GPUs that
// https://cloud.google.com/compute/docs/gpus lists.
var GPUFamilies = []GPUFamily{
	// A2 Standard: NVIDIA A100 40GB, 1 to 8 (highgpu) or 16 (megagpu).
	{Prefix: "a2-highgpu-", GPU: "nvidia-tesla-a100"},
	{Prefix: "a2-megagpu-", GPU: "nvidia-tesla-a100"},
	// A2 Ultra: NVIDIA A100 80GB.
	{Prefix: "a2-ultragpu-", GPU: "nvidia-a100-80gb"},
	// A3 High and A3 Edge: NVIDIA H100 80GB; A3 Mega: H100 Mega 80GB;
	// A3 Ultra: NVIDIA H200 141GB.
	{Prefix: "a3-highgpu-", GPU: "nvidia-h100-80gb"},
	{Prefix: "a3-edgegpu-", GPU: "nvidia-h100-80gb"},
	{Prefix: "a3-megagpu-", GPU: "nvidia-h100-mega-80gb"},
	{Prefix: "a3-ultragpu-", GPU: "nvidia-h200-141gb"},
	// A4: NVIDIA B200; A4X: NVIDIA GB200.
	{Prefix: "a4-highgpu-", GPU: "nvidia-b200"},
	{Prefix: "a4x-highgpu-", GPU: "nvidia-gb200"},
	// G2: NVIDIA L4, by vCPUs.
	{Prefix: "g2-standard-", GPU: "nvidia-l4", Counts: map[string]int{
		"g2-standard-4": 1, "g2-standard-8": 1, "g2-standard-12": 1, "g2-standard-16": 1,
		"g2-standard-24": 2, "g2-standard-32": 1, "g2-standard-48": 4, "g2-standard-96": 8,
	}},
}

// BuiltinGPU is the GPU model and count a machine type comes with, and
// whether it comes with any: true for every type of a family in
// GPUFamilies, listed in MachineTypes or not.
func BuiltinGPU(machineType string) (gpu string, count int, ok bool) {
	for _, f := range GPUFamilies {
		if !strings.HasPrefix(machineType, f.Prefix) {
			continue
		}
		if f.Counts != nil {
			n, ok := f.Counts[machineType]
			return f.GPU, n, ok
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(machineType, f.Prefix), "g"))
		if err != nil || n <= 0 || !strings.HasSuffix(machineType, "g") {
			return "", 0, false
		}
		return f.GPU, n, true
	}
	return "", 0, false
}

// AttachableGPU is a GPU model attached to an instance by guestAccelerators:
// its price per GPU and hour, the counts one instance may have, and the
// zones that have it. Only N1 machine types take attached GPUs.
type AttachableGPU struct {
	USDPerHour float64
	Counts     []int
	Zones      []string
}

// AttachableGPUs are the GPUs an N1 instance can have.
var AttachableGPUs = map[string]AttachableGPU{
	"nvidia-tesla-t4":   {0.35, []int{1, 2, 4}, allZones},
	"nvidia-tesla-p4":   {0.60, []int{1, 2, 4}, []string{"us-central1-a", "us-central1-c"}},
	"nvidia-tesla-p100": {1.46, []int{1, 2, 4}, []string{"europe-west1-b", "europe-west4-a", "us-central1-c", "us-central1-f"}},
	"nvidia-tesla-v100": {2.48, []int{1, 2, 4, 8}, []string{"europe-west4-a", "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"}},
}

// GPUUSDPerHour are the prices per GPU and hour of the GPUs, attachable or
// built in (the latter for reference: a built-in GPU's price is its
// machine type's).
func GPUUSDPerHour() map[string]float64 {
	out := map[string]float64{"nvidia-l4": 0.56}
	for name, g := range AttachableGPUs {
		out[name] = g.USDPerHour
	}
	return out
}

// TakesAttachedGPUs reports whether guestAccelerators may be given for a
// machine type: N1 only (https://cloud.google.com/compute/docs/gpus: the
// other GPU machine series have their GPUs built in).
func TakesAttachedGPUs(machineType string) bool {
	return strings.HasPrefix(machineType, "n1-")
}

// Offered reports whether a machine type is offered in a zone.
func Offered(machineType, zone string) bool {
	mt, ok := MachineTypes[machineType]
	return ok && slices.Contains(mt.Zones, zone)
}

// MachineUSDPerHour are the machine types the price table has.
func MachineUSDPerHour() map[string]float64 {
	out := map[string]float64{}
	for name, mt := range MachineTypes {
		if mt.USDPerHour > 0 {
			out[name] = mt.USDPerHour
		}
	}
	return out
}

// DiskUSDPerGBMonth are boot disk types, per GB and month.
var DiskUSDPerGBMonth = map[string]float64{
	"pd-standard": 0.04,
	"pd-balanced": 0.10,
	"pd-ssd":      0.17,
}

// ImageFamilies are public image families, by project, whose images the
// catalogue knows: "projects/<project>/global/images/family/<family>"
// names the newest image of one.
var ImageFamilies = map[string][]string{
	"debian-cloud":    {"debian-11", "debian-12", "debian-13"},
	"ubuntu-os-cloud": {"ubuntu-2204-lts", "ubuntu-2404-lts-amd64"},
	"cos-cloud":       {"cos-stable"},
}

// Package hcloudcatalog is what fleet knows of Hetzner Cloud's offer:
// server types, what they cost and in which locations they are sold,
// locations, and system images.
//
// It is the one copy of these facts: the hetzner provider's price table
// (the fallback when the pricing API cannot be asked) comes from it,
// hetznerfake offers, prices and refuses from it, so that a plan and a
// test against the fake agree on what exists where, and hetzner.server()
// (package builtins) refuses a type or location it does not know at the
// line that names it. It imports nothing of fleet, so that the builtins
// can use it without depending on the cloud code. Since 2025-09-24
// server types depend on locations (https://docs.hetzner.cloud/changelog,
// "per location server types"); the API refuses a type where it is not
// sold with invalid_input, "unsupported location for server type". The
// figures are those of 2026-11-25 and approximate: availability changes.
package hcloudcatalog

import "slices"

// PriceDate is when the prices and availability were taken.
const PriceDate = "2026-11-25"

// Locations are Hetzner Cloud's locations: the EU ones first.
var Locations = []string{"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}

var (
	eu  = []string{"fsn1", "nbg1", "hel1"}
	all = Locations
)

// ServerType is a server type: its monthly gross price in EUR with German
// VAT (19 %) in the EU locations (US and Singapore cost somewhat more),
// its CPU architecture ("x86", "arm") and the locations that sell it.
type ServerType struct {
	EURMonthly   float64
	Architecture string
	Locations    []string
}

// ServerTypes are the server types the catalogue knows.
var ServerTypes = map[string]ServerType{
	// Shared vCPU, Intel, previous generation: EU only.
	"cx22": {4.51, "x86", eu}, "cx32": {8.09, "x86", eu}, "cx42": {19.52, "x86", eu}, "cx52": {38.56, "x86", eu},
	// Shared vCPU, cost-optimised (2025): EU only.
	"cx23": {4.15, "x86", eu}, "cx33": {6.53, "x86", eu}, "cx43": {11.89, "x86", eu}, "cx53": {21.40, "x86", eu},
	// Shared vCPU, AMD: every location.
	"cpx11": {5.18, "x86", all}, "cpx21": {8.98, "x86", all}, "cpx31": {16.18, "x86", all}, "cpx41": {29.99, "x86", all}, "cpx51": {65.33, "x86", all},
	// Shared vCPU, Ampere (arm64): EU only.
	"cax11": {4.51, "arm", eu}, "cax21": {7.72, "arm", eu}, "cax31": {14.86, "arm", eu}, "cax41": {29.14, "arm", eu},
	// Dedicated vCPU, AMD: every location.
	"ccx13": {14.86, "x86", all}, "ccx23": {29.14, "x86", all}, "ccx33": {57.70, "x86", all},
	"ccx43": {114.82, "x86", all}, "ccx53": {229.06, "x86", all}, "ccx63": {343.30, "x86", all},
}

// Sold reports whether a server type is sold in a location.
func Sold(serverType, location string) bool {
	st, ok := ServerTypes[serverType]
	return ok && slices.Contains(st.Locations, location)
}

// EURMonthly are the server types' monthly gross EU prices.
func EURMonthly() map[string]float64 {
	out := make(map[string]float64, len(ServerTypes))
	for name, st := range ServerTypes {
		out[name] = st.EURMonthly
	}
	return out
}

// Images are the system images, by name, each for x86 and arm alike.
var Images = []string{
	"debian-11", "debian-12", "debian-13",
	"ubuntu-22.04", "ubuntu-24.04",
	"fedora-42", "rocky-9", "rocky-10", "alma-9", "alma-10",
	"centos-stream-9", "centos-stream-10", "opensuse-15",
}

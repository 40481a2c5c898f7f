package hetznerfake

import (
	"testing"

	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hcloudcatalog"
)

// The fake's locations, as the API describes them, are the catalogue's,
// and every catalogue type is sold somewhere the fake knows.
func TestLocationsAreTheCatalogues(t *testing.T) {
	if len(locations) != len(hcloudcatalog.Locations) {
		t.Fatalf("%d locations, the catalogue has %d", len(locations), len(hcloudcatalog.Locations))
	}
	for i, l := range locations {
		if l.Name != hcloudcatalog.Locations[i] {
			t.Errorf("location %d: %s, the catalogue says %s", i, l.Name, hcloudcatalog.Locations[i])
		}
	}
	for name, st := range hcloudcatalog.ServerTypes {
		if len(st.Locations) == 0 || st.EURMonthly <= 0 || (st.Architecture != "x86" && st.Architecture != "arm") {
			t.Errorf("%s: %+v", name, st)
		}
		for _, loc := range st.Locations {
			if _, ok := locationByName(loc); !ok {
				t.Errorf("%s sold in %s, which the fake does not know", name, loc)
			}
		}
	}
}

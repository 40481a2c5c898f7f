package gcecatalog

import (
	"slices"
	"strings"
	"testing"
)

// The tables agree with each other: zones are known, every type of a GPU
// family that the catalogue lists has a GPU count, and only N1 takes
// attached GPUs.
func TestCatalogueConsistent(t *testing.T) {
	for name, mt := range MachineTypes {
		if len(mt.Zones) == 0 {
			t.Errorf("%s is offered nowhere", name)
		}
		for _, z := range mt.Zones {
			if !slices.Contains(Zones, z) {
				t.Errorf("%s offered in %s, not a catalogue zone", name, z)
			}
		}
		gpu, n, ok := BuiltinGPU(name)
		for _, f := range GPUFamilies {
			if strings.HasPrefix(name, f.Prefix) && (!ok || gpu != f.GPU || n <= 0) {
				t.Errorf("%s: built-in GPU %q x %d (%v)", name, gpu, n, ok)
			}
		}
		if ok && TakesAttachedGPUs(name) {
			t.Errorf("%s has its GPUs and takes more", name)
		}
	}
	for name, g := range AttachableGPUs {
		if len(g.Counts) == 0 || len(g.Zones) == 0 || g.USDPerHour <= 0 {
			t.Errorf("%s: %+v", name, g)
		}
	}
	for typ, want := range map[string]int{"a2-megagpu-16g": 16, "a3-highgpu-2g": 2, "a4-highgpu-8g": 8, "a4x-highgpu-4g": 4, "g2-standard-48": 4} {
		if _, n, ok := BuiltinGPU(typ); !ok || n != want {
			t.Errorf("%s: %d GPUs (%v), want %d", typ, n, ok, want)
		}
	}
	for _, typ := range []string{"a2-highgpu-", "a2-highgpu-xg", "g2-standard-2", "n1-standard-8", "a4x-standard-4"} {
		if _, _, ok := BuiltinGPU(typ); ok {
			t.Errorf("%s has built-in GPUs?", typ)
		}
	}
}

package nixgen_test

import (
	"reflect"
	"sort"
	"testing"

	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// TestSecretsRules evaluates secrets.nix with real Nix: every encrypted
// file of every secret is there, readable by the admins and by the host
// keys of the machines that use it, as agenix expects.
func TestSecretsRules(t *testing.T) {
	testtool.Require(t, "nix-instantiate", "nix-bin")
	for name, file := range fleets(t) {
		t.Run(name, func(t *testing.T) {
			f, _, dir, _ := stubbed(t, file)
			var got map[string]struct{ PublicKeys []string }
			if err := evalNix(t, dir, "import ./secrets.nix", &got); err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{}
			for _, s := range f.Secrets {
				owners := s.Machines
				if s.Shared || len(owners) == 0 {
					owners = []string{""}
				}
				for _, owner := range owners {
					readers := f.AdminRecipients()
					machines := []string{owner}
					if owner == "" {
						machines = s.Machines
					}
					for _, m := range machines {
						switch mm := f.Machine(m); {
						case mm.HostKey != "":
							readers = append(readers, mm.HostKey)
						case mm.HostKeySecret != "":
							// the public half of the generated key (a stand-in here)
							readers = append(readers, testtool.StandInHostKey)
						}
					}
					for _, fl := range s.Files {
						if fl.Secret {
							want[nixgen.SecretPath(s, owner, fl)] = readers
						}
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d rules, want %d", len(got), len(want))
			}
			for p, keys := range want {
				g := append([]string(nil), got[p].PublicKeys...)
				w := append([]string(nil), keys...)
				sort.Strings(g)
				sort.Strings(w)
				if len(w) == 0 {
					w = nil
				}
				if len(g) == 0 {
					g = nil
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: publicKeys %v, want %v", p, g, w)
				}
			}
		})
	}
}

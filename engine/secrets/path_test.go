package secrets_test

import (
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/secrets"
)

// TestFilePathMatchesNixgen: the files fleet writes are the files the
// generated Nix modules and secrets.nix refer to.
func TestFilePathMatchesNixgen(t *testing.T) {
	keyFiles := []model.SecretFile{{Name: "ssh_host_ed25519_key", Output: "key", Secret: true}, {Name: "ssh_host_ed25519_key.pub", Output: "key.pub"}}
	valueFile := []model.SecretFile{{Name: "value", Output: "value", Secret: true}}
	for _, s := range []*model.Secret{
		{Name: "ssh-host-key", Machines: []string{"cinnabar"}, Files: keyFiles},
		{Name: "user-password", Shared: true, Machines: []string{"cinnabar"}, Files: valueFile},
	} {
		for _, file := range s.Files {
			got := secrets.FilePath(s, "cinnabar", file)
			if file.Secret {
				if want := nixgen.SecretPath(s, "cinnabar", file); got != want {
					t.Errorf("FilePath %s, nixgen.SecretPath %s", got, want)
				}
			} else if got != "secrets/cinnabar/ssh-host-key/ssh_host_ed25519_key.pub" {
				t.Errorf("public file stored as %s", got)
			}
		}
	}
	s := &model.Secret{Name: "user-password", Shared: true, Files: valueFile}
	if got := secrets.FilePath(s, "", s.Files[0]); got != "secrets/shared/user-password/value.age" || !strings.HasPrefix(got, secrets.Dir+"/") {
		t.Errorf("shared path %s", got)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// TestCloudCredentialsDefaultIdentity: the clouds' credentials kept as
// secrets are decrypted with the default identity
// (~/.config/fleet/age/keys.txt) when neither --identity nor
// FLEET_AGE_IDENTITY names one; without it there, the note says where
// fleet looked and what to do.
func TestCloudCredentialsDefaultIdentity(t *testing.T) {
	testtool.Require(t, "age", "age")
	c := newClouds(t)
	home := withoutIdentityEnv(t)
	delete(c.env, "FLEET_AGE_IDENTITY")
	def := filepath.Join(home, ".config", "fleet", "age", "keys.txt")
	code, out, stderr := c.fleet(t, "secrets", "keygen")
	if code != exitOK || !strings.Contains(out, def) {
		t.Fatalf("keygen: exit %d\n%s%s", code, out, stderr)
	}
	recipient := strings.TrimSpace(out[strings.Index(out, "recipient: ")+len("recipient: "):])
	file := copyFleet(t, "testdata/cloud/fleet.star", map[string]string{
		`fleet(name = "cloudtest", admins = ["alice"])`: `fleet(name = "cloudtest", admins = ["alice", "` + recipient + `"],
    credentials = {"hetzner": "hcloud-token"})
secret("hcloud-token", shared = True)`,
	})
	var o, e bytes.Buffer
	if code := runWith(context.Background(), c.deps(), []string{"fleet", "secrets", "set", "--file", file, "hcloud-token"},
		strings.NewReader(c.env["HCLOUD_TOKEN"]+"\n"), &o, &e); code != exitOK {
		t.Fatalf("secrets set: exit %d\n%s%s", code, o.String(), e.String())
	}
	delete(c.env, "HCLOUD_TOKEN")

	_, changes := c.plan(t, file)
	if got := strings.Join(changes, "|"); !strings.Contains(got, "create server web") {
		t.Fatalf("plan with the token decrypted by the default identity: %s", got)
	}

	if err := os.Remove(def); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = c.fleet(t, "plan", file)
	for _, want := range []string{"HCLOUD_TOKEN is not set, and the hetzner credentials in secret hcloud-token could not be read", def, "fleet secrets keygen"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("plan without the default identity: exit %d, stderr lacks %q:\n%s%s", code, want, out, stderr)
		}
	}
}

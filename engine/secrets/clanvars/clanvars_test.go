package clanvars

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/secrets"
)

// TestReadFixture reads the repository make.sh made with sops as clan
// does: the layout, the recipients clan recorded, every value, and the
// secrets each generator becomes.
func TestReadFixture(t *testing.T) {
	r, err := Read("testdata/clan")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := secrets.LoadIdentities("testdata/alice.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Users) != 2 || len(r.Users["alice"]) != 1 || !strings.HasPrefix(r.Users["alice"][0], "age1") || len(r.Machines) != 3 {
		t.Fatalf("keys: users %v machines %v", r.Users, r.Machines)
	}
	var where []string
	for _, g := range r.Generators {
		where = append(where, g.Where())
	}
	want := []string{"shared/backup-age", "shared/wifi", "db/api", "ghost/openssh", "web/openssh", "web/user-password-root", "web/zerotier"}
	if !slices.Equal(where, want) {
		t.Fatalf("generators %v, want %v", where, want)
	}
	values := map[string]string{}
	decls := map[string]string{}
	for _, g := range r.Generators {
		value := func(f File) []byte {
			v, err := f.Value(ids)
			if err != nil {
				t.Fatalf("%s/%s: %v", g.Where(), f.Name, err)
			}
			return v
		}
		for _, f := range g.Files {
			values[g.Where()+"/"+f.Name] = string(value(f))
		}
		for _, d := range Map(g, value) {
			decls[d.Name] = d.Declaration(g.Machine == "", nil)
		}
	}
	for k, v := range map[string]string{
		"shared/wifi/psk": "wifi-pass-42", "shared/wifi/ssid": "home-net", "db/api/token": "tok-123\n",
		"web/user-password-root/user-password":  "correct-horse-battery-staple-zebra-moon",
		"web/zerotier/zerotier-identity-secret": "1234567890:0:aaaa:bbbb", "web/zerotier/zerotier-ip": "fd00::1",
	} {
		if values[k] != v {
			t.Errorf("%s = %q, want %q", k, values[k], v)
		}
	}
	if !strings.HasPrefix(values["web/openssh/ssh.id_ed25519"], "-----BEGIN OPENSSH PRIVATE KEY-----") || !strings.HasPrefix(values["web/openssh/ssh.id_ed25519.pub"], "ssh-ed25519 ") {
		t.Errorf("the ssh key pair: %q", values["web/openssh/ssh.id_ed25519.pub"])
	}
	for name, want := range map[string]string{
		"openssh":                  `gen.ssh_keypair(), files = {"key": "ssh.id_ed25519", "key.pub": "ssh.id_ed25519.pub"}`,
		"backup-age":               `gen.age_keypair()`,
		"user-password-root":       `gen.passphrase(words = 6), files = {"value": "user-password"}`,
		"user-password-root-hash":  `mkpasswd --method=yescrypt --stdin < \"$in/user-password-root/user-password\"`,
		"zerotier-identity-secret": `zerotier-idtool`,
		"zerotier-ip":              `outputs = ["zerotier-ip.pub"]), files = {"zerotier-ip.pub": "zerotier-ip"}`,
		"api":                      `gen.prompt(), files = {"value": "token"}`,
		"wifi":                     `outputs = ["psk", "ssid.pub"]`,
	} {
		if !strings.Contains(decls[name], want) {
			t.Errorf("secret %s: %q lacks %q", name, decls[name], want)
		}
	}
	var psk File
	for _, g := range r.Generators {
		if g.Where() == "shared/wifi" {
			psk = g.Files[0]
		}
	}
	users, machines := r.Recipients(psk)
	if !slices.Equal(users, []string{"alice", "bob", "carol"}) || !slices.Equal(machines, []string{"db", "web"}) {
		t.Errorf("wifi/psk recipients: %v %v", users, machines)
	}
}

// TestLinkedValueRefused: a value or secret that is a symlink is refused,
// so a clan repository cannot have a file from elsewhere copied in.
func TestLinkedValueRefused(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "vars", "shared", "g", "f")
	if err := os.MkdirAll(f, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "private")
	os.WriteFile(target, []byte("not public"), 0o600)
	if err := os.Symlink(target, filepath.Join(f, "value")); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a linked value: %v", err)
	}
}

package secrets

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/plugin"
	"github.com/fleet-nix/fleet/engine/model"
	"golang.org/x/crypto/ssh"
)

// sshKey makes an ed25519 key pair with the ssh_keypair generator.
func sshKey(t testing.TB, comment string) (pub string, pem []byte) {
	t.Helper()
	out, err := sshKeypair(comment)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out["key.pub"])), out["key"]
}

func yubikeyRecipient(t testing.TB) string {
	t.Helper()
	data := make([]byte, 33)
	rand.Read(data)
	return plugin.EncodeRecipient("yubikey", data)
}

func TestParseRecipient(t *testing.T) {
	a := newAdmin(t)
	edPub, _ := sshKey(t, "laptop")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPub, _ := ssh.NewPublicKey(&rsaKey.PublicKey)
	rsaLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rsaPub)))
	yk := yubikeyRecipient(t)
	tests := []struct {
		in       string
		wantType any
		norm     string
		err      string
	}{
		{a.rec, &age.X25519Recipient{}, a.rec, ""},
		{"  " + a.rec + "\n", &age.X25519Recipient{}, a.rec, ""},
		{edPub, &agessh.Ed25519Recipient{}, strings.TrimSuffix(edPub, " laptop"), ""},
		{rsaLine + " old-key", &agessh.RSARecipient{}, rsaLine, ""},
		{yk, &pluginRecipient{}, yk, ""},
		{"age1notvalid", nil, "", "not an age recipient"},
		{"ssh-dss AAAAB3NzaC1kc3MAAACBAP", nil, "", "not an ssh public key"},
		{"ecdsa-sha2-nistp256 AAAA", nil, "", "not an age recipient"},
		{"AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", nil, "", "a private key was given"},
		{"alice", nil, "", "not an age recipient"},
	}
	for _, tt := range tests {
		t.Run(short(tt.in), func(t *testing.T) {
			r, err := ParseRecipient(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
					t.Error("the error quotes a private key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if reflect.TypeOf(r) != reflect.TypeOf(tt.wantType) {
				t.Errorf("type %T, want %T", r, tt.wantType)
			}
			n, err := NormalizeRecipient(tt.in)
			if err != nil || n != tt.norm {
				t.Errorf("normalized %q, %v; want %q", n, err, tt.norm)
			}
		})
	}
}

func TestRecipients(t *testing.T) {
	alice, bob := newAdmin(t), newAdmin(t)
	carolSSH, _ := sshKey(t, "carol@laptop")
	carolNorm, _ := NormalizeRecipient(carolSSH)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPub, _ := ssh.NewPublicKey(&rsaKey.PublicKey)
	hkA, _ := sshKey(t, "root@a")
	hkB, _ := sshKey(t, "root@b")
	hkANorm, _ := NormalizeRecipient(hkA)
	hkBNorm, _ := NormalizeRecipient(hkB)
	yk := yubikeyRecipient(t)
	users := []*model.User{
		{Name: "alice", Age: alice.rec, SSHKeys: []string{carolSSH}},
		{Name: "carol", SSHKeys: []string{carolSSH, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rsaPub)))}},
	}
	perMachine := mkSecret("db-password", false, []string{"a", "b"}, mkGen(KindPassword, nil))
	shared := mkSecret("user-password", true, []string{"a", "b"}, mkGen(KindPassphrase, nil))
	adminOnly := mkSecret("hcloud-token", true, nil, mkGen(KindPrompt, nil))
	hostKeys := map[string]string{"a": hkA}
	sorted := func(xs ...string) []string {
		out := append([]string(nil), xs...)
		sort.Strings(out)
		return out
	}
	tests := []struct {
		name      string
		admins    []string
		secret    *model.Secret
		machine   string
		want      []string
		noHostKey []string
		err       string
	}{
		{"user with age key", []string{"alice"}, perMachine, "a", sorted(alice.rec, hkANorm), nil, ""},
		{"user with ssh keys only", []string{"carol"}, perMachine, "a", sorted(carolNorm, hkANorm), nil, ""},
		{"raw recipients", []string{bob.rec, yk}, perMachine, "a", sorted(bob.rec, yk, hkANorm), nil, ""},
		{"repeats once", []string{"alice", alice.rec}, perMachine, "a", sorted(alice.rec, hkANorm), nil, ""},
		{"machine without host key", []string{"alice"}, perMachine, "b", sorted(alice.rec), []string{"b"}, ""},
		{"shared: all its machines", []string{"alice"}, shared, "", sorted(alice.rec, hkANorm), []string{"b"}, ""},
		{"admin only", []string{"alice"}, adminOnly, "", sorted(alice.rec), nil, ""},
		{"nobody", nil, perMachine, "b", nil, []string{"b"}, "refusing to encrypt to nobody"},
		{"nobody, admin only", nil, adminOnly, "", nil, nil, "refusing to encrypt to nobody"},
		{"bad admin", []string{"age1bogus"}, perMachine, "a", nil, nil, "fleet admins"},
		{"undeclared machine", []string{"alice"}, perMachine, "c", nil, nil, "not declared for machine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mkFleet(t.TempDir(), tt.admins, machines("a", "b", "c"), perMachine, shared, adminOnly)
			f.Users = users
			got, noHK, err := Recipients(f, tt.secret, tt.machine, hostKeys)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("recipients\n%q\nwant\n%q", got, tt.want)
			}
			if !reflect.DeepEqual(noHK, tt.noHostKey) {
				t.Errorf("no host key %q, want %q", noHK, tt.noHostKey)
			}
		})
	}
	// Both machines known: the shared secret goes to both.
	f := mkFleet(t.TempDir(), []string{alice.rec}, machines("a", "b"), shared)
	got, noHK, err := Recipients(f, shared, "", map[string]string{"a": hkA, "b": hkB})
	if err != nil || len(noHK) != 0 || !reflect.DeepEqual(got, sorted(alice.rec, hkANorm, hkBNorm)) {
		t.Errorf("shared with both keys: %q %q %v", got, noHK, err)
	}
}

func TestLoadIdentities(t *testing.T) {
	dir := t.TempDir()
	a, b := newAdmin(t), newAdmin(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ageFile := write("keys.txt", "# created: 2026-01-01T00:00:00Z\n# public key: "+a.rec+"\n"+a.id.String()+"\n\n# second\n"+b.id.String()+"\n")
	ids, err := LoadIdentities(ageFile)
	if err != nil || len(ids) != 2 {
		t.Fatalf("age identity file: %d, %v", len(ids), err)
	}
	_, pem := sshKey(t, "me")
	sshFile := write("id_ed25519", string(pem))
	ids, err = LoadIdentities(sshFile)
	if err != nil || len(ids) != 1 {
		t.Fatalf("ssh key: %d, %v", len(ids), err)
	}
	if _, ok := ids[0].(*agessh.Ed25519Identity); !ok {
		t.Errorf("ssh identity is %T", ids[0])
	}

	secretLine := "AGE-SECRET-KEY-1" + strings.Repeat("X", 58)
	for name, content := range map[string]string{
		"recipient.txt": "# oops\n" + a.rec + "\n",
		"garbage.txt":   "hunter2-top-secret\n",
		"badkey.txt":    secretLine + "\n",
		"empty.txt":     "# nothing\n\n",
		"badssh":        "-----BEGIN OPENSSH PRIVATE KEY-----\nhunter2-top-secret\n-----END OPENSSH PRIVATE KEY-----\n",
	} {
		_, err := LoadIdentities(write(name, content))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "XXXX") {
			t.Errorf("%s: the error quotes the file: %v", name, err)
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: the error does not name the file: %v", name, err)
		}
	}
	if _, err := LoadIdentities(filepath.Join(dir, "absent")); err == nil {
		t.Error("a missing file loaded")
	}
}

// TestPluginRecipientNotInstalled encrypts to an age1yubikey recipient
// without age-plugin-yubikey: the error says what to install and no file
// is left.
func TestPluginRecipientNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	st := &Store{Root: root}
	err := st.WriteSecret("secrets/shared/x/value.age", []byte("v"), []string{yubikeyRecipient(t)})
	if err == nil || !strings.Contains(err.Error(), "age-plugin-yubikey is not installed") {
		t.Fatalf("error %v", err)
	}
	if files := filesUnder(t, root); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

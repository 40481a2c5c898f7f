package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/testtool"
)

func TestStoreWriteRead(t *testing.T) {
	root := t.TempDir()
	st := &Store{Root: root}
	a, b := newAdmin(t), newAdmin(t)
	hostPub, hostPEM := sshKey(t, "root@m")
	rel := "secrets/m/db/value.age"
	if err := st.WriteSecret(rel, []byte("pw-1"), []string{a.rec, hostPub}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{"secrets", 0o700}, {"secrets/m", 0o700}, {"secrets/m/db", 0o700}, {rel, 0o600}, {RecordFile, 0o644}} {
		fi, err := os.Stat(filepath.Join(root, c.path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s has mode %o, want %o", c.path, fi.Mode().Perm(), c.mode)
		}
	}
	if v, err := st.Read(rel, a.ids()); err != nil || string(v) != "pw-1" {
		t.Fatalf("admin reads %q, %v", v, err)
	}
	hostID, err := LoadIdentities(writeTemp(t, hostPEM))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.Read(rel, hostID); err != nil || string(v) != "pw-1" {
		t.Fatalf("host reads %q, %v", v, err)
	}

	// Nobody else: the error names the recipients, from the record and
	// the header (the ssh tag matched to the host key).
	_, err = st.Read(rel, b.ids())
	var nie *NoIdentityError
	if !errors.As(err, &nie) {
		t.Fatalf("error %v, want a NoIdentityError", err)
	}
	hostNorm, _ := NormalizeRecipient(hostPub)
	msg := err.Error()
	for _, want := range []string{rel, a.rec, hostNorm, "ssh-ed25519 key with tag " + SSHTag(hostPub), "1 age X25519 recipient"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if _, err := st.Read(rel, nil); err == nil || !strings.Contains(err.Error(), "no age identity") {
		t.Errorf("no identities: %v", err)
	}
	if _, err := st.Read("secrets/m/absent/value.age", a.ids()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("absent file: %v", err)
	}

	// The record: sorted recipients and the ciphertext's hash, stable JSON.
	data, _ := os.ReadFile(filepath.Join(root, RecordFile))
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	ct, _ := os.ReadFile(filepath.Join(root, rel))
	want := recordEntry{Recipients: []string{a.rec, hostNorm}, SHA256: hashOf(ct)}
	if a.rec > hostNorm {
		want.Recipients = []string{hostNorm, a.rec}
	}
	if !reflect.DeepEqual(rec.Files[rel], want) {
		t.Errorf("record %+v, want %+v", rec.Files[rel], want)
	}
	again, _ := json.MarshalIndent(rec, "", "  ")
	if !bytes.Equal(append(again, '\n'), data) {
		t.Error("the record is not in its canonical form")
	}

	// Overwriting fleet's own file is fine; public files are plain 0644.
	if err := st.WriteSecret(rel, []byte("pw-2"), []string{a.rec}); err != nil {
		t.Fatal(err)
	}
	if err := st.WritePublic("secrets/m/host/key.pub", []byte(hostPub+"\n")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(root, "secrets/m/host/key.pub")); fi.Mode().Perm() != 0o644 {
		t.Errorf("public file mode %o", fi.Mode().Perm())
	}

	// Paths outside secrets/, or of the wrong kind, are refused.
	for _, bad := range []string{"../x.age", "secrets/../x.age", "/etc/x.age", "secrets/m/db/value", "other/x.age", "secrets/m/.hidden.age"} {
		if err := st.WriteSecret(bad, []byte("x"), []string{a.rec}); err == nil {
			t.Errorf("WriteSecret(%q) accepted", bad)
		}
	}
	if err := st.WritePublic("secrets/m/x/key.age", []byte("x")); err == nil {
		t.Error("WritePublic accepted a .age name")
	}
	if err := st.WriteSecret("secrets/m/n/value.age", []byte("x"), nil); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("no recipients: %v", err)
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCorruptAndForeignNotOverwritten: where a secret file should be, a
// file that is not age, or an age file fleet did not write, is never
// replaced by a write, and the error names it.
func TestCorruptAndForeignNotOverwritten(t *testing.T) {
	root := t.TempDir()
	st := &Store{Root: root}
	a := newAdmin(t)
	corrupt := "secrets/m/db/value.age"
	foreign := "secrets/m/api/value.age"
	garbage := []byte("this is not age\n")
	os.MkdirAll(filepath.Join(root, "secrets/m/db"), 0o700)
	os.MkdirAll(filepath.Join(root, "secrets/m/api"), 0o700)
	os.WriteFile(filepath.Join(root, corrupt), garbage, 0o600)
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, a.id.Recipient())
	w.Write([]byte("from elsewhere"))
	w.Close()
	foreignBytes := buf.Bytes()
	os.WriteFile(filepath.Join(root, foreign), foreignBytes, 0o600)

	for rel, want := range map[string]string{corrupt: "is not an age file", foreign: "is not the file fleet wrote"} {
		err := st.WriteSecret(rel, []byte("new"), []string{a.rec})
		if err == nil || !strings.Contains(err.Error(), rel) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", rel, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(root, corrupt)); !bytes.Equal(got, garbage) {
		t.Error("the corrupt file changed")
	}
	if got, _ := os.ReadFile(filepath.Join(root, foreign)); !bytes.Equal(got, foreignBytes) {
		t.Error("the foreign file changed")
	}
	var nae *NotAgeError
	if _, err := st.Read(corrupt, a.ids()); !errors.As(err, &nae) || !strings.Contains(err.Error(), corrupt) {
		t.Errorf("reading the corrupt file: %v", err)
	} else if strings.Contains(err.Error(), "this is not") {
		t.Errorf("the error quotes the file's contents: %v", err)
	}
	// Whatever the damage, no error quotes the file.
	for _, content := range []string{"plain-password-1", "age-encryption.org/v1\n-> X25519 plain-password-1\n", "-----BEGIN AGE ENCRYPTED FILE-----\nplain-password-1\n", ""} {
		os.WriteFile(filepath.Join(root, corrupt), []byte(content), 0o600)
		_, err := st.Read(corrupt, a.ids())
		if err == nil || strings.Contains(err.Error(), "plain-password") {
			t.Errorf("%q: %v", content, err)
		}
	}
	// The foreign file decrypts: it is a valid age file.
	if v, err := st.Read(foreign, a.ids()); err != nil || string(v) != "from elsewhere" {
		t.Errorf("reading the foreign file: %q %v", v, err)
	}
}

// TestAgeInterop: the age command line tool reads what fleet writes, with
// an X25519 identity and with an ssh-ed25519 key; fleet reads what age
// writes for both.
func TestAgeInterop(t *testing.T) {
	ageBin := testtool.Require(t, "age", "age")
	root := t.TempDir()
	st := &Store{Root: root}
	a := newAdmin(t)
	sshPub, sshPEM := sshKey(t, "root@m")
	ageKey := writeTemp(t, []byte("# admin\n"+a.id.String()+"\n"))
	sshKeyFile := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	os.WriteFile(sshKeyFile, sshPEM, 0o600)

	rel := "secrets/m/token/value.age"
	if err := st.WriteSecret(rel, []byte("fleet wrote this\n"), []string{a.rec, sshPub}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ageKey, sshKeyFile} {
		out, err := exec.Command(ageBin, "-d", "-i", key, filepath.Join(root, rel)).CombinedOutput()
		if err != nil || string(out) != "fleet wrote this\n" {
			t.Errorf("age -d -i %s: %q, %v", filepath.Base(key), out, err)
		}
	}

	for _, c := range []struct {
		name string
		args []string
		ids  []age.Identity
	}{
		{"x25519", []string{"-r", a.rec}, a.ids()},
		{"ssh", []string{"-r", sshPub}, mustLoad(t, sshKeyFile)},
		{"armored", []string{"-a", "-r", a.rec}, a.ids()},
	} {
		rel := "secrets/shared/from-age-" + c.name + "/value.age"
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o700)
		cmd := exec.Command(ageBin, append(c.args, "-o", p)...)
		cmd.Stdin = strings.NewReader("age wrote this")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("age %v: %v %s", c.args, err, out)
		}
		v, err := st.Read(rel, c.ids)
		if err != nil || string(v) != "age wrote this" {
			t.Errorf("%s: fleet read %q, %v", c.name, v, err)
		}
	}
}

func mustLoad(t *testing.T, p string) []age.Identity {
	t.Helper()
	ids, err := LoadIdentities(p)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestKeyFormatsWithTools checks generated keys with the tools that use
// them: ssh-keygen derives the same public key from fleet's private key,
// age-keygen the same recipient.
func TestKeyFormatsWithTools(t *testing.T) {
	t.Run("ssh-keygen", func(t *testing.T) {
		bin := testtool.Require(t, "ssh-keygen", "openssh-client")
		pub, pem := sshKey(t, "root@m")
		out, err := exec.Command(bin, "-y", "-f", writeTemp(t, pem)).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		want, _ := NormalizeRecipient(pub)
		got, _ := NormalizeRecipient(string(out))
		if got != want {
			t.Errorf("ssh-keygen -y gives %q, want %q", got, want)
		}
	})
	t.Run("age-keygen", func(t *testing.T) {
		bin := testtool.Require(t, "age-keygen", "age")
		out, err := ageKeypair()
		if err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command(bin, "-y", writeTemp(t, out["key"])).CombinedOutput()
		if err != nil || string(got) != string(out["key.pub"]) {
			t.Errorf("age-keygen -y gives %q (%v), want %q", got, err, out["key.pub"])
		}
	})
}

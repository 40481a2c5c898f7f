package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
	"golang.org/x/crypto/ssh"
)

// clanTestdata holds a clan repository made with the sops CLI as clan
// encrypts its vars, and the admin identity they are encrypted to
// (make.sh there says how).
const clanTestdata = "../../engine/secrets/clanvars/testdata"

// TestSecretsImportClan imports a clan repository's vars as a user would:
// the first run reports clan's recipients and prints the declarations to
// paste, the second stores every value, check is content, and the age
// CLI reads back every value clan's files hold.
func TestSecretsImportClan(t *testing.T) {
	ageBin := testtool.Require(t, "age", "age")
	ageKeygen := testtool.Require(t, "age-keygen", "age")
	dir := t.TempDir()
	admin, err := filepath.Abs(filepath.Join(clanTestdata, "alice.txt"))
	if err != nil {
		t.Fatal(err)
	}
	recipient, err := exec.Command(ageKeygen, "-y", admin).Output()
	if err != nil {
		t.Fatal(err)
	}
	hostKey := func() string {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	file := filepath.Join(dir, "fleet.star")
	fleetText := `fleet(name = "s", admins = ["` + strings.TrimSpace(string(recipient)) + `"])
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
input("agenix", url = "github:ryantm/agenix")
machine("web", system = "x86_64-linux", state_version = "26.05", host_key = "` + hostKey() + `")
machine("db", system = "x86_64-linux", state_version = "26.05", host_key = "` + hostKey() + `")
`
	if err := os.WriteFile(file, []byte(fleetText), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(clanTestdata, "clan")
	var printed strings.Builder
	imp := func(args ...string) (int, string, string) {
		t.Helper()
		code, out, stderr := fleetCmd(t, append(append([]string{"secrets", "import", "clan", "--file", file, "--identity", admin}, args...), repo)...)
		printed.WriteString(out + stderr)
		return code, out, stderr
	}

	// First run: the recipients report and the declarations, nothing stored.
	code, out, stderr := imp()
	if code != exitError || !strings.Contains(stderr, "8 secrets are not declared") {
		t.Fatalf("import of undeclared secrets: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{
		"clan user alice: a fleet admin",
		"clan user bob (age1", "not a fleet admin",
		"clan machine ghost: not in the fleet: its vars are not imported",
		"clan recorded user carol as a recipient of shared/wifi/psk, but has no key",
		"clan kept web/user-password-root/user-password from web",
		`secret("openssh", machines = ["web"], generate = gen.ssh_keypair(), files = {"key": "ssh.id_ed25519", "key.pub": "ssh.id_ed25519.pub"})`,
		`secret("backup-age", shared = True, generate = gen.age_keypair())`,
		`secret("wifi", shared = True, machines = ["db", "web"], generate = gen.command(`,
		`secret("api", machines = ["db"], generate = gen.prompt(), files = {"value": "token"})`,
		`secret("user-password-root", machines = ["web"], generate = gen.passphrase(words = 6), files = {"value": "user-password"})`,
		`secret("user-password-root-hash", machines = ["web"], generate = gen.command(["sh", "-c", "mkpasswd`,
		`secret("zerotier-identity-secret", machines = ["web"], generate = gen.command(["zerotier-idtool"`,
		`secret("zerotier-ip", machines = ["web"]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the first run lacks %s:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets")); err == nil {
		t.Fatal("an import of undeclared secrets stored something")
	}
	var decls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "secret(") || strings.HasPrefix(l, "# ") {
			decls = append(decls, l)
		}
	}
	if err := os.WriteFile(file, []byte(fleetText+strings.Join(decls, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// --dry-run stores nothing.
	if code, out, stderr := imp("--dry-run"); code != exitOK || strings.Count(out, "would store ") != 11 {
		t.Fatalf("--dry-run: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets")); err == nil {
		t.Fatal("--dry-run stored something")
	}

	// Second run: every file stored, ghost's left out.
	code, out, stderr = imp()
	if code != exitOK || strings.Count(out, "stored ") != 11 || strings.Contains(out, "ghost/openssh/") {
		t.Fatalf("import: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := fleetCmd(t, "secrets", "check", file); code != exitOK {
		t.Fatalf("check after the import: exit %d\n%s%s", code, out, stderr)
	}

	// Every value decrypts with the age CLI to what clan's files hold
	// (make.sh's plaintexts); public files are copied as they are.
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(repo, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	sshPub := read("vars/per-machine/web/openssh/ssh.id_ed25519.pub/value")
	agePub := read("vars/shared/backup-age/key.pub/value")
	for rel, want := range map[string]string{
		"shared/wifi/psk.age":                                       "wifi-pass-42",
		"shared/wifi/ssid":                                          "home-net",
		"db/api/token.age":                                          "tok-123\n",
		"shared/backup-age/key.pub":                                 agePub,
		"web/openssh/ssh.id_ed25519.pub":                            sshPub,
		"web/user-password-root/user-password.age":                  "correct-horse-battery-staple-zebra-moon",
		"web/user-password-root-hash/user-password-hash.age":        "$y$j9T$abcdefghijklmnopqrstu.$0123456789abcdefghijklmnopqrstuvwxyzABCDE",
		"web/zerotier-identity-secret/zerotier-identity-secret.age": "1234567890:0:aaaa:bbbb",
		"web/zerotier-ip/zerotier-ip":                               "fd00::1",
	} {
		p := filepath.Join(dir, "secrets", rel)
		var got []byte
		var err error
		if strings.HasSuffix(rel, ".age") {
			got, err = exec.Command(ageBin, "-d", "-i", admin, p).Output()
		} else {
			got, err = os.ReadFile(p)
		}
		if err != nil || string(got) != want {
			t.Errorf("%s: %v, %q, want %q", rel, err, got, want)
		}
	}
	// The key pairs: the private halves match their public ones.
	sshKey, err := exec.Command(ageBin, "-d", "-i", admin, filepath.Join(dir, "secrets/web/openssh/ssh.id_ed25519.age")).Output()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(sshKey)
	if err != nil || strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) != strings.Join(strings.Fields(sshPub)[:2], " ") {
		t.Errorf("the ssh key does not match its public half: %v", err)
	}
	ageKey, err := exec.Command(ageBin, "-d", "-i", admin, filepath.Join(dir, "secrets/shared/backup-age/key.age")).Output()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(keyFile, ageKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := exec.Command(ageKeygen, "-y", keyFile).Output(); err != nil || string(got) != agePub {
		t.Errorf("the age key does not match its public half: %v %q", err, got)
	}

	// Refused: an identity clan did not encrypt to, naming the file.
	other := filepath.Join(t.TempDir(), "other.txt")
	keygen(t, other)
	if code, _, stderr := fleetCmd(t, "secrets", "import", "clan", "--file", file, "--identity", other, repo); code != exitError || !strings.Contains(stderr, "shared/wifi/psk") {
		t.Errorf("another identity: exit %d: %s", code, stderr)
	}
	if code, _, _ := fleetCmd(t, "secrets", "import", "clan", "--file", file, "--identity", admin); code != exitUsage {
		t.Errorf("no folder: exit %d", code)
	}
	if code, _, stderr := fleetCmd(t, "secrets", "import", "clan", "--file", file, "--identity", admin, dir); code != exitError || !strings.Contains(stderr, "no vars folder") {
		t.Errorf("not a clan repository: exit %d: %s", code, stderr)
	}

	// No secret value was printed, and none is in plain text under the fleet.
	leaks := []string{"wifi-pass-42", "tok-123", "correct-horse", "1234567890:0:aaaa", "OPENSSH PRIVATE", "AGE-SECRET-KEY"}
	assertNoPlaintext(t, leaks, dir)
	for _, l := range leaks {
		if strings.Contains(printed.String(), l) {
			t.Errorf("the import printed a value (%q)", l)
		}
	}
}

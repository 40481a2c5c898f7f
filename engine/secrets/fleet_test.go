package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// refFleet is a small fleet with every generator: machines a and b get
// generated host keys, c has one written in the fleet, d has none.
func refFleet(t *testing.T, root string, alice admin) *model.Fleet {
	hostKey := mkSecret("ssh-host-key", false, []string{"a", "b"}, mkGen(KindSSH, nil))
	hostKey.Files = []model.SecretFile{
		{Name: "ssh_host_ed25519_key", Output: "key", Secret: true},
		{Name: "ssh_host_ed25519_key.pub", Output: "key.pub"},
	}
	cKey, _ := sshKey(t, "root@c")
	ms := machines("a", "b", "c", "d")
	ms[0].HostKeySecret, ms[1].HostKeySecret, ms[2].HostKey = "ssh-host-key", "ssh-host-key", cKey
	f := mkFleet(root, []string{"alice"}, ms,
		hostKey,
		mkSecret("user-password", true, []string{"a", "b", "c"}, mkGen(KindPassphrase, map[string]model.Value{"words": model.Int(5), "separator": model.String("-")})),
		mkSecret("db", false, []string{"a", "b", "c", "d"}, mkGen(KindPassword, nil)),
		mkSecret("wg", false, []string{"a", "b"}, mkGen(KindWireGuard, nil)),
		mkSecret("age-key", false, []string{"a"}, mkGen(KindAge, nil)),
		mkSecret("api-salt", true, nil, mkGen(KindHex, nil)),
		mkSecret("hcloud-token", true, nil, mkGen(KindPrompt, map[string]model.Value{"type": model.String("hidden"), "label": model.String("Hetzner token")})),
		mkSecret("zerotier", false, []string{"a"}, mkGen(KindPrompt, map[string]model.Value{"type": model.String("line")})),
		mkSecret("derived", false, []string{"a"}, mkGen(KindCommand, map[string]model.Value{
			"argv":    strs("sh", "-c", `cat "$in/db/value" "$in/user-password/value" | sha256sum | cut -d' ' -f1 | tr -d '\n' > "$out/value"; echo derived ok`),
			"outputs": strs("value")}), "db", "user-password"),
	)
	f.Users = []*model.User{{Name: "alice", Age: alice.rec}}
	return f
}

func answers() *fakePrompter {
	return &fakePrompter{answers: map[string]string{"Hetzner token": "hcloud-tok-5e6f7a8b9c0d", "zerotier for a": "zt-network-1a2b3c4d5e"}}
}

// TestGenerateMissing generates a whole fleet, checks it, then scans
// every file written and everything printed for the plaintexts.
func TestGenerateMissing(t *testing.T) {
	root := t.TempDir()
	tmp := t.TempDir()
	alice := newAdmin(t)
	f := refFleet(t, root, alice)
	st := &Store{Root: root}
	ctx := context.Background()
	var printed lockedBuffer
	prompter := answers()

	rep, err := GenerateMissing(ctx, f, st, Options{Prompter: prompter, Identities: alice.ids(), Stderr: &printed, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	rep.Write(&printed)
	js, _ := json.Marshal(rep)
	printed.Write(js)
	if len(rep.Failed)+len(rep.NeedsPrompt) != 0 {
		t.Fatalf("failed %+v, needs prompt %+v", rep.Failed, rep.NeedsPrompt)
	}
	// 4 host key files, 1 shared password, 4 db, 4 wg, 2 age-key,
	// 1 salt, 1 token, 1 zerotier, 1 derived.
	if len(rep.Generated) != 19 {
		t.Errorf("generated %d files: %q", len(rep.Generated), paths(rep.Generated))
	}
	if !reflect.DeepEqual(rep.NoHostKey, []string{"d"}) {
		t.Errorf("no host key %q", rep.NoHostKey)
	}
	if !strings.Contains(string(printed.Bytes()), "derived ok") {
		t.Error("gen.command's output was not passed on")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("gen.command left %v", left)
	}

	hostKeys, err := st.HostKeys(f)
	if err != nil || len(hostKeys) != 3 {
		t.Fatalf("host keys %v, %v", hostKeys, err)
	}
	check, err := st.Check(f, hostKeys)
	if err != nil || !check.OK() || len(check.Unknown) != 0 {
		t.Fatalf("check after generate: %v %+v", err, check)
	}

	// Machine a reads its secrets with its generated host key (its own
	// host key file included, as secrets.nix lists it).
	hostPEM, err := st.Read("secrets/a/ssh-host-key/ssh_host_ed25519_key.age", alice.ids())
	if err != nil {
		t.Fatal(err)
	}
	hostIDs := mustLoad(t, writeTemp(t, hostPEM))
	for _, rel := range []string{"secrets/a/db/value.age", "secrets/shared/user-password/value.age", "secrets/a/derived/value.age", "secrets/a/ssh-host-key/ssh_host_ed25519_key.age"} {
		if _, err := st.Read(rel, hostIDs); err != nil {
			t.Errorf("machine a cannot read %s: %v", rel, err)
		}
	}
	for _, rel := range []string{"secrets/b/db/value.age", "secrets/shared/api-salt/value.age", "secrets/shared/hcloud-token/value.age"} {
		if _, err := st.Read(rel, hostIDs); err == nil {
			t.Errorf("machine a can read %s", rel)
		}
	}
	// d, without a host key, has its secret encrypted to the admins.
	if _, err := st.Read("secrets/d/db/value.age", alice.ids()); err != nil {
		t.Error(err)
	}
	// The dependency's values reached the command.
	db, _ := st.Read("secrets/a/db/value.age", alice.ids())
	pw, _ := st.Read("secrets/shared/user-password/value.age", alice.ids())
	derived, _ := st.Read("secrets/a/derived/value.age", alice.ids())
	sum := sha256.Sum256(append(append([]byte{}, db...), pw...))
	if string(derived) != hex.EncodeToString(sum[:]) {
		t.Errorf("derived %q, want sha256(db + password)", derived)
	}
	if tok, _ := st.Read("secrets/shared/hcloud-token/value.age", alice.ids()); string(tok) != "hcloud-tok-5e6f7a8b9c0d" {
		t.Errorf("prompted value %q", tok)
	}

	// Nothing is missing: a second run does nothing and asks nothing.
	before := filesUnder(t, root)
	prompter.asked = nil
	again, err := GenerateMissing(ctx, f, st, Options{Prompter: prompter, Identities: alice.ids()})
	if err != nil || len(again.Generated) != 0 || len(prompter.asked) != 0 {
		t.Fatalf("second run: %v, generated %q, asked %q", err, paths(again.Generated), prompter.asked)
	}
	if !reflect.DeepEqual(before, filesUnder(t, root)) {
		t.Error("a run with nothing to do changed files")
	}

	// What a person sees on errors and reports goes into the scan too.
	if _, err := st.Read("secrets/a/db/value.age", newAdmin(t).ids()); err != nil {
		printed.Write([]byte(err.Error()))
	}
	check.Write(&printed)
	scanPlaintexts(t, st, alice, [][]byte{printed.Bytes()}, []string{"hcloud-tok-5e6f7a8b9c0d", "zt-network-1a2b3c4d5e"})
}

// scanPlaintexts fails the test if findPlaintexts finds anything.
func scanPlaintexts(t *testing.T, st *Store, a admin, outputs [][]byte, extra []string) {
	t.Helper()
	leaks, n := findPlaintexts(t, st, a, outputs, extra)
	if n < 20 {
		t.Fatalf("only %d plaintexts to look for", n)
	}
	for _, leak := range leaks {
		t.Error(leak)
	}
}

// findPlaintexts decrypts every secret file to learn the plaintexts, then
// looks for them in every file under the fleet root except public .pub
// files, and in the given outputs.
func findPlaintexts(t *testing.T, st *Store, a admin, outputs [][]byte, extra []string) (leaks []string, n int) {
	t.Helper()
	files := filesUnder(t, st.Root)
	var public [][]byte
	for rel, data := range files {
		if strings.HasSuffix(rel, ".pub") {
			public = append(public, data)
		}
	}
	var plain [][]byte
	for rel := range files {
		if !strings.HasSuffix(rel, AgeSuffix) {
			continue
		}
		v, err := st.Read(rel, a.ids())
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, needles(v, public)...)
	}
	for _, e := range extra {
		plain = append(plain, []byte(e))
	}
	haystacks := map[string][]byte{}
	for rel, data := range files {
		if !strings.HasSuffix(rel, ".pub") {
			haystacks[rel] = data
		}
	}
	for i, o := range outputs {
		haystacks["output "+string(rune('0'+i))] = o
	}
	for name, hay := range haystacks {
		for _, p := range plain {
			if bytes.Contains(hay, p) {
				leaks = append(leaks, fmt.Sprintf("%s contains a plaintext (%d bytes)", name, len(p)))
				break
			}
		}
	}
	sort.Strings(leaks)
	return leaks, len(plain)
}

// TestPlaintextScanFindsLeaks is the scan's control: a value copied into
// a file or an output is found.
func TestPlaintextScanFindsLeaks(t *testing.T) {
	root := t.TempDir()
	alice := newAdmin(t)
	f := mkFleet(root, []string{alice.rec}, machines("a"),
		mkSecret("k", false, []string{"a"}, mkGen(KindSSH, nil)),
		mkSecret("p", true, nil, mkGen(KindPassword, nil)))
	st := &Store{Root: root}
	if _, err := GenerateMissing(context.Background(), f, st, Options{}); err != nil {
		t.Fatal(err)
	}
	pw, _ := st.Read("secrets/shared/p/value.age", alice.ids())
	key, _ := st.Read("secrets/a/k/key.age", alice.ids())
	lines := strings.Split(string(key), "\n")
	os.WriteFile(filepath.Join(root, "secrets/leak.txt"), []byte("x"+lines[2]+"y"), 0o600)
	leaks, _ := findPlaintexts(t, st, alice, [][]byte{[]byte("log: " + string(pw))}, nil)
	want := []string{"output 0 contains a plaintext (32 bytes)", "secrets/leak.txt contains a plaintext (64 bytes)"}
	if !reflect.DeepEqual(leaks, want) {
		t.Errorf("leaks %q, want %q", leaks, want)
	}
}

func TestGenerateMissingWithoutTerminal(t *testing.T) {
	root := t.TempDir()
	alice := newAdmin(t)
	f := refFleet(t, root, alice)
	// A command that depends on a prompted secret waits for it.
	f.Secrets = append(f.Secrets, mkSecret("from-token", true, nil, mkGen(KindCommand, map[string]model.Value{
		"argv": strs("sh", "-c", `cp "$in/hcloud-token/value" "$out/value"`), "outputs": strs("value")}), "hcloud-token"))
	f.Sort()
	st := &Store{Root: root}
	for _, p := range []Prompter{nil, noTTY{}} {
		rep, err := GenerateMissing(context.Background(), f, st, Options{Prompter: p, Identities: alice.ids(), TempDir: t.TempDir()})
		if err != nil {
			t.Fatalf("prompter %T: %v", p, err)
		}
		want := []string{"secrets/a/zerotier/value.age", "secrets/shared/from-token/value.age", "secrets/shared/hcloud-token/value.age"}
		if got := paths(rep.NeedsPrompt); !reflect.DeepEqual(got, want) {
			t.Errorf("prompter %T: needs prompt %q, want %q", p, got, want)
		}
		var out bytes.Buffer
		rep.Write(&out)
		if !strings.Contains(out.String(), "asked on a terminal") {
			t.Errorf("report:\n%s", out.String())
		}
	}
	check, _ := st.Check(f, nil)
	if len(check.Missing) != 3 {
		t.Errorf("check: missing %q", paths(check.Missing))
	}
}

func TestGenerateMissingOnAndRegenerate(t *testing.T) {
	root := t.TempDir()
	alice := newAdmin(t)
	f := refFleet(t, root, alice)
	st := &Store{Root: root}
	ctx := context.Background()
	opts := Options{Prompter: answers(), Identities: alice.ids(), TempDir: t.TempDir()}
	if _, err := GenerateMissing(ctx, f, st, opts); err != nil {
		t.Fatal(err)
	}
	before := filesUnder(t, root)

	// Regenerate db: its four files change, nothing else does.
	opts.Regenerate = []string{"db"}
	rep, err := GenerateMissing(ctx, f, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	// derived, computed from a's db by gen.command, follows.
	if got := paths(rep.Generated); !reflect.DeepEqual(got, []string{"secrets/a/db/value.age", "secrets/a/derived/value.age",
		"secrets/b/db/value.age", "secrets/c/db/value.age", "secrets/d/db/value.age"}) {
		t.Errorf("regenerated %q", got)
	}
	after := filesUnder(t, root)
	for rel, data := range before {
		changed := !bytes.Equal(after[rel], data)
		if changed != (strings.Contains(rel, "/db/") || strings.Contains(rel, "/derived/") || rel == RecordFile) {
			t.Errorf("%s changed = %v", rel, changed)
		}
	}
	opts.Regenerate = nil

	// b loses its folder; --on a does nothing, --on b makes b's files
	// anew, and the shared password, encrypted to b's old host key, is
	// then stale until rekeyed.
	os.RemoveAll(filepath.Join(root, "secrets/b"))
	opts.On = []model.Selector{"a"}
	if rep, err := GenerateMissing(ctx, f, st, opts); err != nil || len(rep.Generated) != 0 {
		t.Errorf("--on a: %v %q", err, paths(rep.Generated))
	}
	opts.On = []model.Selector{"b"}
	rep, err = GenerateMissing(ctx, f, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(rep.Generated); !reflect.DeepEqual(got, []string{"secrets/b/db/value.age", "secrets/b/ssh-host-key/ssh_host_ed25519_key.age",
		"secrets/b/ssh-host-key/ssh_host_ed25519_key.pub", "secrets/b/wg/key.age", "secrets/b/wg/key.pub"}) {
		t.Errorf("--on b generated %q", got)
	}
	hostKeys, _ := st.HostKeys(f)
	check, _ := st.Check(f, hostKeys)
	if got := paths(check.Stale); !reflect.DeepEqual(got, []string{"secrets/shared/user-password/value.age"}) {
		t.Errorf("stale after b's new host key: %q", got)
	}
	if rep, err := st.Rekey(ctx, f, hostKeys, alice.ids()); err != nil || len(rep.Rekeyed) != 1 {
		t.Errorf("rekey: %v %+v", err, rep)
	}

	if _, err := GenerateMissing(ctx, f, st, Options{Regenerate: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown --regenerate: %v", err)
	}
}

// TestGenerateMissingRefuses: incomplete secrets, corrupt files under
// --regenerate, cycles and bad dependencies are errors naming the files,
// and nothing is overwritten.
func TestGenerateMissingRefuses(t *testing.T) {
	root := t.TempDir()
	alice := newAdmin(t)
	f := refFleet(t, root, alice)
	st := &Store{Root: root}
	ctx := context.Background()
	opts := Options{Prompter: answers(), Identities: alice.ids(), TempDir: t.TempDir()}
	if _, err := GenerateMissing(ctx, f, st, opts); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "secrets/a/wg/key.pub"))
	corrupt := filepath.Join(root, "secrets/c/db/value.age")
	os.WriteFile(corrupt, []byte("not age"), 0o600)
	before := filesUnder(t, root)
	opts.Regenerate = []string{"db"}
	rep, err := GenerateMissing(ctx, f, st, opts)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"secrets/a/wg/key.pub: incomplete", "secrets/c/db/value.age: not an age file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if got := paths(rep.Corrupt); !reflect.DeepEqual(got, []string{"secrets/c/db/value.age"}) {
		t.Errorf("corrupt %q", got)
	}
	if data, _ := os.ReadFile(corrupt); string(data) != "not age" {
		t.Error("the corrupt file was overwritten")
	}
	after := filesUnder(t, root)
	if !bytes.Equal(after["secrets/a/wg/key.age"], before["secrets/a/wg/key.age"]) {
		t.Error("the incomplete secret's private key was replaced")
	}

	// Cycles.
	x := mkSecret("x", true, nil, mkGen(KindHex, nil), "y")
	y := mkSecret("y", true, nil, mkGen(KindHex, nil), "x")
	cyc := mkFleet(t.TempDir(), []string{alice.rec}, nil, x, y)
	if _, err := GenerateMissing(ctx, cyc, &Store{Root: cyc.Root}, Options{}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	// A shared secret depending on a per-machine one.
	pm := mkSecret("pm", false, []string{"a"}, mkGen(KindHex, nil))
	sh := mkSecret("sh", true, nil, mkGen(KindCommand, map[string]model.Value{"argv": strs("true"), "outputs": strs("v")}), "pm")
	bad := mkFleet(t.TempDir(), []string{alice.rec}, machines("a"), pm, sh)
	if _, err := GenerateMissing(ctx, bad, &Store{Root: bad.Root}, Options{}); err == nil || !strings.Contains(err.Error(), "has a value per machine") {
		t.Errorf("shared on per-machine: %v", err)
	}
	// Nobody to encrypt to.
	lone := mkFleet(t.TempDir(), nil, machines("a"), mkSecret("s", false, []string{"a"}, mkGen(KindHex, nil)))
	if rep, err := GenerateMissing(ctx, lone, &Store{Root: lone.Root}, Options{}); err == nil || !strings.Contains(err.Error(), "nobody") || len(rep.Generated) != 0 {
		t.Errorf("no recipients: %v", err)
	}
}

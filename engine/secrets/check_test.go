package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
)

func paths(xs []FileState) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, x.Path)
	}
	sort.Strings(out)
	return out
}

// TestCheck finds missing, stale, foreign, corrupt and unknown files,
// with no identity at all (Check takes none: it cannot decrypt).
func TestCheck(t *testing.T) {
	root := t.TempDir()
	alice := newAdmin(t)
	hkA, _ := sshKey(t, "root@a")
	hkB, _ := sshKey(t, "root@b")
	ms := machines("a", "b")
	ms[0].HostKey = hkA
	db := mkSecret("db", false, []string{"a", "b"}, mkGen(KindPassword, nil))
	token := mkSecret("token", true, nil, mkGen(KindPrompt, nil))
	wg := mkSecret("wg", false, []string{"a"}, mkGen(KindWireGuard, nil))
	f := mkFleet(root, []string{alice.rec}, ms, db, token, wg)
	st := &Store{Root: root}
	ctx := context.Background()

	hostKeys, err := st.HostKeys(f)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := st.Check(f, hostKeys)
	if err != nil {
		t.Fatal(err)
	}
	wantMissing := []string{"secrets/a/db/value.age", "secrets/a/wg/key.age", "secrets/a/wg/key.pub", "secrets/b/db/value.age", "secrets/shared/token/value.age"}
	if got := paths(rep.Missing); !reflect.DeepEqual(got, wantMissing) {
		t.Errorf("missing %q, want %q", got, wantMissing)
	}
	if !reflect.DeepEqual(rep.NoHostKey, []string{"b"}) || rep.OK() {
		t.Errorf("no host key %q, ok %v", rep.NoHostKey, rep.OK())
	}

	gen, err := GenerateMissing(ctx, f, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(gen.NeedsPrompt); !reflect.DeepEqual(got, []string{"secrets/shared/token/value.age"}) {
		t.Errorf("needs prompt %q", got)
	}
	if len(gen.Generated) != 4 {
		t.Errorf("generated %q", paths(gen.Generated))
	}
	rep, _ = st.Check(f, hostKeys)
	if got := paths(rep.Missing); !reflect.DeepEqual(got, []string{"secrets/shared/token/value.age"}) || len(rep.Stale)+len(rep.Foreign)+len(rep.Corrupt) != 0 {
		t.Errorf("after generate: %+v", rep)
	}

	// b's host key becomes known: b's file is stale, nothing else.
	hostKeys["b"] = hkB
	rep, _ = st.Check(f, hostKeys)
	if got := paths(rep.Stale); !reflect.DeepEqual(got, []string{"secrets/b/db/value.age"}) {
		t.Fatalf("stale %q", got)
	}
	hkBNorm, _ := NormalizeRecipient(hkB)
	if add, del := diff(rep.Stale[0].Want, rep.Stale[0].Have); !reflect.DeepEqual(add, []string{hkBNorm}) || len(del) != 0 {
		t.Errorf("stale diff +%q -%q", add, del)
	}
	var out bytes.Buffer
	rep.Write(&out)
	if !strings.Contains(out.String(), "secrets/b/db/value.age") || !strings.Contains(out.String(), "+ ssh-ed25519") {
		t.Errorf("report text:\n%s", out.String())
	}

	// A corrupt file, a foreign one, an unknown one.
	os.WriteFile(filepath.Join(root, "secrets/a/wg/key.age"), []byte("garbage"), 0o600)
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, alice.id.Recipient())
	w.Write([]byte("edited elsewhere"))
	w.Close()
	os.WriteFile(filepath.Join(root, "secrets/a/db/value.age"), buf.Bytes(), 0o600)
	os.MkdirAll(filepath.Join(root, "secrets/gone/db"), 0o700)
	os.WriteFile(filepath.Join(root, "secrets/gone/db/value.age"), []byte("x"), 0o600)
	rep, _ = st.Check(f, hostKeys)
	if got := paths(rep.Corrupt); !reflect.DeepEqual(got, []string{"secrets/a/wg/key.age"}) {
		t.Errorf("corrupt %q", got)
	}
	if got := paths(rep.Foreign); !reflect.DeepEqual(got, []string{"secrets/a/db/value.age"}) {
		t.Errorf("foreign %q", got)
	}
	if !reflect.DeepEqual(rep.Unknown, []string{"secrets/gone/db/value.age"}) {
		t.Errorf("unknown %q", rep.Unknown)
	}
	// The deploy's judgement of the same report: a's corrupt and foreign
	// files, each with what to do; b's stale one; nothing of a for b.
	errA := rep.NotReady(f, "a")
	for _, want := range []string{"secrets/a/wg/key.age", "secrets/a/db/value.age", "fleet secrets check", "--regenerate db", "--regenerate wg"} {
		if errA == nil || !strings.Contains(errA.Error(), want) {
			t.Errorf("NotReady(a) lacks %q: %v", want, errA)
		}
	}
	if errB := rep.NotReady(f, "b"); errB == nil || !strings.Contains(errB.Error(), "secrets/b/db/value.age") || strings.Contains(errB.Error(), "secrets/a/") {
		t.Errorf("NotReady(b): %v", errB)
	}

	// A damaged record stops Check with a message naming it.
	os.WriteFile(filepath.Join(root, RecordFile), []byte("{"), 0o644)
	if _, err := st.Check(f, hostKeys); err == nil || !strings.Contains(err.Error(), RecordFile) {
		t.Errorf("damaged record: %v", err)
	}
}

// rekeyFleet is a fleet with two admins, one machine with a host key,
// and a per-machine, a shared and an admin-only secret, generated.
func rekeyFleet(t *testing.T, admins ...admin) (*model.Fleet, *Store, map[string]string) {
	root := t.TempDir()
	hk, _ := sshKey(t, "root@a")
	ms := machines("a")
	ms[0].HostKey = hk
	var recs []string
	for _, a := range admins {
		recs = append(recs, a.rec)
	}
	f := mkFleet(root, recs, ms,
		mkSecret("db", false, []string{"a"}, mkGen(KindPassword, nil)),
		mkSecret("user-password", true, []string{"a"}, mkGen(KindPassphrase, nil)),
		mkSecret("token", true, nil, mkGen(KindHex, nil)))
	st := &Store{Root: root}
	if _, err := GenerateMissing(context.Background(), f, st, Options{}); err != nil {
		t.Fatal(err)
	}
	hostKeys, _ := st.HostKeys(f)
	return f, st, hostKeys
}

func secretFiles(t *testing.T, st *Store) map[string][]byte {
	out := map[string][]byte{}
	for rel, data := range filesUnder(t, filepath.Join(st.Root, Dir)) {
		if strings.HasSuffix(rel, AgeSuffix) {
			out[Dir+"/"+rel] = data
		}
	}
	return out
}

// TestRekey adds and removes an admin: after rekeying, the removed one
// can no longer decrypt, the added one can, values are unchanged.
func TestRekey(t *testing.T) {
	alice, bob, carol := newAdmin(t), newAdmin(t), newAdmin(t)
	f, st, hostKeys := rekeyFleet(t, alice, bob)
	ctx := context.Background()
	before := map[string][]byte{}
	for rel := range secretFiles(t, st) {
		v, err := st.Read(rel, bob.ids())
		if err != nil {
			t.Fatal(err)
		}
		before[rel] = v
	}
	if len(before) != 3 {
		t.Fatalf("%d secret files", len(before))
	}

	f.Admins = []string{alice.rec, carol.rec}
	rep, _ := st.Check(f, hostKeys)
	if len(rep.Stale) != 3 {
		t.Fatalf("stale %q", paths(rep.Stale))
	}
	rep, err := st.Rekey(ctx, f, hostKeys, alice.ids())
	if err != nil || len(rep.Rekeyed) != 3 || len(rep.Failed) != 0 {
		t.Fatalf("rekey: %v, rekeyed %q, failed %+v", err, paths(rep.Rekeyed), rep.Failed)
	}
	if rep, _ := st.Check(f, hostKeys); !rep.OK() {
		t.Errorf("check after rekey: %+v", rep)
	}
	for rel, v := range before {
		if got, err := st.Read(rel, carol.ids()); err != nil || !bytes.Equal(got, v) {
			t.Errorf("%s: carol reads %q, %v", rel, got, err)
		}
		var nie *NoIdentityError
		if _, err := st.Read(rel, bob.ids()); !errors.As(err, &nie) {
			t.Errorf("%s: bob, removed, still reads it (%v)", rel, err)
		}
	}

	// An identity that cannot decrypt: every file is listed, none changes.
	dave := newAdmin(t)
	f.Admins = []string{alice.rec, carol.rec, dave.rec}
	files := secretFiles(t, st)
	rep, err = st.Rekey(ctx, f, hostKeys, bob.ids())
	if err != nil || len(rep.Failed) != 3 || len(rep.Rekeyed) != 0 {
		t.Fatalf("rekey with a removed key: %v, %+v", err, rep)
	}
	if !strings.Contains(rep.Failed[0].Reason, "cannot decrypt") {
		t.Errorf("reason %q", rep.Failed[0].Reason)
	}
	if !reflect.DeepEqual(files, secretFiles(t, st)) {
		t.Error("files changed although they could not be decrypted")
	}
}

// TestRekeyInterrupted cancels a rekey after its first file: every file
// is either its old version or a complete new one, the record says which,
// and no temporary file is left.
func TestRekeyInterrupted(t *testing.T) {
	alice, bob := newAdmin(t), newAdmin(t)
	f, st, hostKeys := rekeyFleet(t, alice)
	old := secretFiles(t, st)
	f.Admins = []string{alice.rec, bob.rec}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id := &countingIdentity{Identity: alice.id, after: func(n int) {
		if n == 1 {
			cancel()
		}
	}}
	rep, err := st.Rekey(ctx, f, hostKeys, []age.Identity{id})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want cancellation", err)
	}
	if len(rep.Rekeyed) != 1 {
		t.Fatalf("rekeyed %q before stopping", paths(rep.Rekeyed))
	}
	newer := 0
	for rel, data := range secretFiles(t, st) {
		if bytes.Equal(data, old[rel]) {
			continue
		}
		newer++
		if _, err := st.Read(rel, bob.ids()); err != nil {
			t.Errorf("%s changed but is not the new version: %v", rel, err)
		}
	}
	if newer != 1 {
		t.Errorf("%d files changed, want 1", newer)
	}
	check, _ := st.Check(f, hostKeys)
	if len(check.Stale) != 2 || len(check.Foreign)+len(check.Corrupt) != 0 {
		t.Errorf("after the interruption: stale %q foreign %q corrupt %q", paths(check.Stale), paths(check.Foreign), paths(check.Corrupt))
	}
	for rel := range filesUnder(t, st.Root) {
		if strings.Contains(rel, ".tmp-") {
			t.Errorf("temporary file left: %s", rel)
		}
	}
	// Finishing the job.
	if rep, err := st.Rekey(context.Background(), f, hostKeys, alice.ids()); err != nil || len(rep.Rekeyed) != 2 {
		t.Errorf("second rekey: %v %+v", err, rep)
	}
}

// TestRekeyAdoptsForeign: a valid age file fleet did not write (edited
// with agenix) is re-encrypted and recorded when it can be decrypted.
func TestRekeyAdoptsForeign(t *testing.T) {
	alice := newAdmin(t)
	f, st, hostKeys := rekeyFleet(t, alice)
	rel := "secrets/shared/token/value.age"
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, alice.id.Recipient())
	w.Write([]byte("edited with agenix"))
	w.Close()
	os.WriteFile(filepath.Join(st.Root, rel), buf.Bytes(), 0o600)
	if rep, _ := st.Check(f, hostKeys); !reflect.DeepEqual(paths(rep.Foreign), []string{rel}) {
		t.Fatalf("foreign %q", paths(rep.Foreign))
	}
	rep, err := st.Rekey(context.Background(), f, hostKeys, alice.ids())
	if err != nil || !reflect.DeepEqual(paths(rep.Rekeyed), []string{rel}) {
		t.Fatalf("rekey: %v %+v", err, rep)
	}
	if rep, _ := st.Check(f, hostKeys); !rep.OK() {
		t.Errorf("check: %+v", rep)
	}
	if v, _ := st.Read(rel, alice.ids()); string(v) != "edited with agenix" {
		t.Errorf("value %q", v)
	}
}

// TestCheckLostRecordEntry: a file whose record entry was lost (fleet
// killed while generating) is listed with the command that repairs it,
// and that command does.
func TestCheckLostRecordEntry(t *testing.T) {
	alice := newAdmin(t)
	f, st, hostKeys := rekeyFleet(t, alice)
	os.Remove(filepath.Join(st.Root, RecordFile))
	rep, err := st.Check(f, hostKeys)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Foreign) != 3 {
		t.Fatalf("foreign %q", paths(rep.Foreign))
	}
	for _, x := range rep.Foreign {
		if !strings.Contains(x.Reason, "written by another tool") || !strings.Contains(x.Reason, "`fleet secrets rekey`") {
			t.Errorf("%s: reason %q does not say that `fleet secrets rekey` repairs it", x.Path, x.Reason)
		}
	}
	if rep, err := st.Rekey(context.Background(), f, hostKeys, alice.ids()); err != nil || len(rep.Rekeyed) != 3 {
		t.Fatalf("rekey: %v %+v", err, rep)
	}
	if rep, _ := st.Check(f, hostKeys); !rep.OK() {
		t.Errorf("after rekey: %+v", rep)
	}
}

package secrets

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSymlinksRefused: a symlinked folder or file under secrets/ would
// make fleet write (or read) outside the fleet root: every write, read
// and check refuses it, naming the path, and nothing appears elsewhere.
func TestSymlinksRefused(t *testing.T) {
	alice := newAdmin(t)
	root := t.TempDir()
	elsewhere := t.TempDir()
	hk, _ := sshKey(t, "root@web")
	ms := machines("web")
	ms[0].HostKey = hk
	f := mkFleet(root, []string{alice.rec}, ms,
		mkSecret("keys", false, []string{"web"}, mkGen(KindWireGuard, nil)),
		mkSecret("db", false, []string{"web"}, mkGen(KindPassword, nil)))
	st := &Store{Root: root}
	hostKeys, _ := st.HostKeys(f)

	// A symlinked secret folder.
	if err := os.MkdirAll(filepath.Join(root, "secrets/web"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(root, "secrets/web/keys")); err != nil {
		t.Fatal(err)
	}
	rep, err := GenerateMissing(context.Background(), f, st, Options{})
	if err == nil || !strings.Contains(err.Error(), "secrets/web/keys") || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("generate through a symlinked folder: %v", err)
	}
	if len(paths(rep.Failed)) == 0 {
		t.Errorf("nothing failed: %+v", rep)
	}
	if got := filesUnder(t, elsewhere); len(got) != 0 {
		t.Errorf("generate wrote outside the fleet root: %v", got)
	}
	if err := st.WritePublic("secrets/web/keys/key.pub", []byte("x")); err == nil || !strings.Contains(err.Error(), "secrets/web/keys") {
		t.Errorf("WritePublic through a symlinked folder: %v", err)
	}
	if err := st.WriteSecret("secrets/web/keys/key.age", []byte("x"), []string{alice.rec}); err == nil || !strings.Contains(err.Error(), "secrets/web/keys") {
		t.Errorf("WriteSecret through a symlinked folder: %v", err)
	}
	if got := filesUnder(t, elsewhere); len(got) != 0 {
		t.Errorf("a write went outside the fleet root: %v", got)
	}

	// A symlinked secret file, pointing at a file fleet wrote.
	db := "secrets/web/db/value.age"
	if _, err := os.Stat(filepath.Join(root, db)); err != nil {
		t.Fatalf("db was not generated: %v", err)
	}
	os.Rename(filepath.Join(root, db), filepath.Join(elsewhere, "value.age"))
	if err := os.Symlink(filepath.Join(elsewhere, "value.age"), filepath.Join(root, db)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Read(db, alice.ids()); err == nil || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Read of a symlinked file: %v", err)
	}
	rep, err = st.Check(f, hostKeys)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range rep.Failed {
		if x.Path == db && strings.Contains(x.Reason, "symlink") {
			found = true
		}
	}
	if !found || rep.OK() {
		t.Errorf("check of a symlinked file: %+v", rep)
	}
	if err := rep.NotReady(f, "web"); err == nil || !strings.Contains(err.Error(), db) {
		t.Errorf("deploy of a symlinked file: %v", err)
	}
}

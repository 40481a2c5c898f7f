package secrets

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
)

// mkGen builds a generator as the builtins do.
func mkGen(kind string, params map[string]model.Value) *model.Generator {
	a := &model.Attrs{}
	for k, v := range params {
		if err := a.Set([]string{k}, v); err != nil {
			panic(err)
		}
	}
	if a.Len() == 0 {
		a = nil
	}
	return &model.Generator{Kind: kind, Params: a}
}

func strs(xs ...string) model.List {
	l := make(model.List, len(xs))
	for i, x := range xs {
		l[i] = model.String(x)
	}
	return l
}

// mkSecret builds a secret with the generator's default files (outputs
// ending in .pub public), per machine unless machines is nil and shared.
func mkSecret(name string, shared bool, machines []string, g *model.Generator, depends ...string) *model.Secret {
	s := &model.Secret{Name: name, Shared: shared, Machines: machines, Generator: g, Depends: depends,
		NeededFor: "services", Owner: "root", Group: "root", Mode: "0400", Selector: strings.Join(machines, ", ")}
	for _, o := range Outputs(g) {
		s.Files = append(s.Files, model.SecretFile{Name: o, Output: o, Secret: !strings.HasSuffix(o, ".pub")})
	}
	return s
}

// admin is an age identity standing for a person.
type admin struct {
	id  *age.X25519Identity
	rec string
}

func newAdmin(t testing.TB) admin {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return admin{id: id, rec: id.Recipient().String()}
}

func (a admin) ids() []age.Identity { return []age.Identity{a.id} }

// mkFleet builds a sorted fleet rooted at root.
func mkFleet(root string, admins []string, machines []*model.Machine, secrets ...*model.Secret) *model.Fleet {
	f := &model.Fleet{Name: "test", Root: root, Admins: admins, Machines: machines, Secrets: secrets}
	f.Sort()
	return f
}

func machines(names ...string) []*model.Machine {
	out := make([]*model.Machine, len(names))
	for i, n := range names {
		out[i] = &model.Machine{Name: n, System: "x86_64-linux", Class: model.NixOS}
	}
	return out
}

// fakePrompter answers prompts from a map label -> value and counts.
type fakePrompter struct {
	mu      sync.Mutex
	answers map[string]string
	asked   []string
}

func (p *fakePrompter) Prompt(ctx context.Context, label, help, kind string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, label)
	return []byte(p.answers[label]), nil
}

// noTTY is a prompter with nobody behind it.
type noTTY struct{}

func (noTTY) Prompt(context.Context, string, string, string) ([]byte, error) {
	return nil, ErrNoTerminal
}

// countingIdentity counts Unwrap calls of the identity it wraps.
type countingIdentity struct {
	age.Identity
	mu sync.Mutex
	n  int
	// after is called after each Unwrap (to cancel a context midway).
	after func(n int)
}

func (c *countingIdentity) Unwrap(s []*age.Stanza) ([]byte, error) {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	k, err := c.Identity.Unwrap(s)
	if c.after != nil {
		c.after(n)
	}
	return k, err
}

// filesUnder lists every regular file under dir, relative, slash-separated.
func filesUnder(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = data
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// needles are the pieces of a plaintext that must appear nowhere: the
// whole value and each line of 16 characters or more that is not a
// comment, PEM armor or a line of a public file.
func needles(plaintext []byte, public [][]byte) [][]byte {
	out := [][]byte{plaintext}
	for _, line := range bytes.Split(plaintext, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) < 16 || bytes.HasPrefix(line, []byte("#")) || bytes.HasPrefix(line, []byte("-----")) {
			continue
		}
		pub := false
		for _, p := range public {
			if bytes.Contains(p, line) {
				pub = true
			}
		}
		if !pub {
			out = append(out, line)
		}
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for a program's output copier.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

package engine_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine"
)

const header = "fleet(name = \"t\")\nchannel(\"nixpkgs\", url = \"github:NixOS/nixpkgs/nixos-unstable\")\n"

// writeTree writes files (path -> content) under a new temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestStepLimit(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"fleet.star": header + "x = [i for i in range(1000000)]\n",
	})
	_, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{MaxSteps: 10000})
	if err == nil || !strings.Contains(err.Error(), "fleet.star:3:") || !strings.Contains(err.Error(), "exceeded the step limit of 10000") {
		t.Fatalf("want a positioned step-limit error, got %v", err)
	}
}

// The step budget is shared by the whole run: work spread over loaded
// libraries counts too.
func TestStepLimitAcrossLoads(t *testing.T) {
	files := map[string]string{"fleet.star": header}
	for _, n := range []string{"a", "b", "c", "d"} {
		files[n+".star"] = "x = [i for i in range(1000)]\n"
		files["fleet.star"] += "load(\"" + n + ".star\", " + n + " = \"x\")\n"
	}
	dir := writeTree(t, files)
	// Each library alone fits in 10,000 steps; together they do not.
	_, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{MaxSteps: 10000})
	if err == nil || !strings.Contains(err.Error(), "step limit") {
		t.Fatalf("want a step-limit error, got %v", err)
	}
	if _, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{MaxSteps: 100000}); err != nil {
		t.Fatalf("within the budget: %v", err)
	}
}

func TestCancel(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"fleet.star": header + "load(\"slow.star\", \"x\")\n",
		"slow.star":  "print(\"looping\")\nx = [i for i in range(1 << 40)]\n",
	})
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the loop runs (slow.star printed), not after a delay
	// that a loaded machine may spend before getting there.
	looping := cancelOnWrite{cancel: cancel}
	done := make(chan error)
	go func() {
		_, err := engine.Eval(ctx, filepath.Join(dir, "fleet.star"), engine.Options{MaxSteps: 1 << 62, Stderr: &looping})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "evaluation cancelled") || !strings.Contains(err.Error(), "slow.star:2:") {
			t.Fatalf("want a positioned cancellation error, got %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("cancellation did not stop the evaluation")
	}
}

// cancelOnWrite cancels on the first write.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (c *cancelOnWrite) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

func TestPrintGoesToStderrWithPosition(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"fleet.star": header + "load(\"lib.star\", \"x\")\nprint(\"hello\", x)\n",
		"lib.star":   "x = 1\nprint(\"from lib\")\n",
	})
	var stderr bytes.Buffer
	if _, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	want := "lib.star:2: from lib\nfleet.star:4: hello 1\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

// A library is evaluated once per run however many files load it, and its
// values are frozen.
func TestLibraryOnceAndFrozen(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"fleet.star":      header + "load(\"lib.star\", \"L\")\ninclude(\"features/*.star\")\n",
		"features/a.star": "load(\"../lib.star\", \"L\")\n",
		"features/b.star": "load(\"//lib.star\", \"L\")\n",
		"lib.star":        "L = [1]\nprint(\"evaluated\")\n",
	})
	var stderr bytes.Buffer
	if _, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stderr.String(), "evaluated"); n != 1 {
		t.Errorf("library evaluated %d times, want 1", n)
	}

	dir = writeTree(t, map[string]string{
		"fleet.star": header + "load(\"lib.star\", \"L\")\nL.append(2)\n",
		"lib.star":   "L = [1]\n",
	})
	_, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "fleet.star:4:") || !strings.Contains(err.Error(), "frozen") {
		t.Fatalf("want a frozen-value error at fleet.star:4, got %v", err)
	}
}

func TestSymlinkOutsideRootRefused(t *testing.T) {
	outside := writeTree(t, map[string]string{"evil.star": "x = 1\n"})
	dir := writeTree(t, map[string]string{"fleet.star": header + "load(\"evil.star\", \"x\")\n"})
	if err := os.Symlink(filepath.Join(outside, "evil.star"), filepath.Join(dir, "evil.star")); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	_, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "a symlink leads outside the fleet root") {
		t.Fatalf("want a symlink error, got %v", err)
	}
}

func TestEntryOutsideRoot(t *testing.T) {
	dir := writeTree(t, map[string]string{"a/fleet.star": header, "b/x": ""})
	_, err := engine.Eval(context.Background(), filepath.Join(dir, "a/fleet.star"), engine.Options{Root: filepath.Join(dir, "b")})
	if err == nil || !strings.Contains(err.Error(), "outside the fleet root") {
		t.Fatalf("want an outside-root error, got %v", err)
	}
}

// A --root above the entry file lets it load siblings of its folder.
func TestRootOption(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"fleets/prod/fleet.star": header + "load(\"//lib/common.star\", \"x\")\n",
		"lib/common.star":        "x = 1\n",
	})
	f, err := engine.Eval(context.Background(), filepath.Join(dir, "fleets/prod/fleet.star"), engine.Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	if f.Pos.File != "fleets/prod/fleet.star" {
		t.Errorf("positions should be root-relative, got %s", f.Pos.File)
	}
}

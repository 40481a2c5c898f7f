package secrets

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plaintext"
)

// command runs gen.command: argv with the words $out and $in replaced by
// two fresh 0700 folders (substDirs; also in the environment as out and
// in), the program's working directory being $out. $in/<secret>/<file> hold the values of
// the secrets it depends on. The declared outputs are read back from
// $out; anything else the program leaves there is discarded. Both
// folders (privateDir) are removed before command returns, however it
// returns; the program runs in a process group of its own, killed whole
// when ctx is cancelled. The folders of a run killed outright are swept by
// the next one (plaintext.Sweep).
func command(ctx context.Context, g *model.Generator, in Inputs) (_ map[string][]byte, err error) {
	argv := strParams(g, "argv")
	outputs := strParams(g, "outputs")
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("gen.command: argv is empty")
	}
	if len(outputs) == 0 {
		return nil, fmt.Errorf("gen.command: no outputs declared")
	}
	name := argv[0]
	outDir, err := privateDir(in.TempDir, "fleet-secret-out-")
	if err != nil {
		return nil, fmt.Errorf("gen.command: %v", err)
	}
	defer os.RemoveAll(outDir)
	inDir, err := privateDir(in.TempDir, "fleet-secret-in-")
	if err != nil {
		return nil, fmt.Errorf("gen.command: %v", err)
	}
	defer os.RemoveAll(inDir)
	for _, d := range []string{outDir, inDir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("gen.command: %v", err)
		}
	}
	for secret, files := range in.Deps {
		if !plainName(secret) {
			return nil, fmt.Errorf("gen.command: dependency name %q is not a plain name", secret)
		}
		dir := filepath.Join(inDir, secret)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, fmt.Errorf("gen.command: %v", err)
		}
		for file, data := range files {
			if !plainName(file) {
				return nil, fmt.Errorf("gen.command: dependency file name %q is not a plain name", file)
			}
			if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
				return nil, fmt.Errorf("gen.command: writing $in/%s/%s: %v", secret, file, err)
			}
		}
	}

	args := make([]string, len(argv))
	for i, a := range argv {
		args[i] = substDirs(a, inDir, outDir)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = outDir
	cmd.Env = append(os.Environ(), "out="+outDir, "in="+inDir)
	w := in.Stderr
	if w == nil {
		w = io.Discard
	}
	cmd.Stdout, cmd.Stderr = w, w
	// A grandchild holding the output pipe open must not keep us (and
	// the plaintext folders) waiting forever.
	cmd.WaitDelay = 2 * time.Second
	// A process group of its own, killed whole when ctx ends; on Linux it
	// dies with fleet, and the next run stops what its children left.
	plaintext.Supervise(cmd, inDir)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("gen.command %s: %w", name, ctx.Err())
		}
		return nil, fmt.Errorf("gen.command %s failed: %v", name, err)
	}

	if commandHook != nil {
		commandHook(outDir, inDir)
	}
	out := map[string][]byte{}
	defer func() {
		if err != nil {
			for _, v := range out {
				wipe(v)
			}
		}
	}()
	var missing []string
	for _, o := range outputs {
		p := filepath.Join(outDir, o)
		fi, err := os.Lstat(p)
		if err != nil {
			missing = append(missing, o)
			continue
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("gen.command %s: $out/%s is not a regular file", name, o)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("gen.command %s: reading $out/%s: %v", name, o, err)
		}
		out[o] = data
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("gen.command %s did not write %s into $out", name, quoteList(missing))
	}
	return out, nil
}

// substDirs replaces in an argument the words $in and $out, alone or
// followed by '/' ($out, $out/key), and ${in} and ${out}, with the two
// folders. Anything else is left as written: a script's own $input,
// $output or $index, $in_x, $$ (which the program, a shell, reads as
// its own).
func substDirs(a, inDir, outDir string) string {
	if !strings.Contains(a, "$") {
		return a
	}
	var b strings.Builder
	for i := 0; i < len(a); {
		if a[i] != '$' {
			b.WriteByte(a[i])
			i++
			continue
		}
		rest := a[i+1:]
		if strings.HasPrefix(rest, "$") {
			b.WriteString("$$")
			i += 2
			continue
		}
		matched := false
		for _, v := range [...]struct{ name, dir string }{{"in", inDir}, {"out", outDir}} {
			if strings.HasPrefix(rest, "{"+v.name+"}") {
				b.WriteString(v.dir)
				i += 1 + len(v.name) + 2
				matched = true
				break
			}
			if after, ok := strings.CutPrefix(rest, v.name); ok && (after == "" || after[0] == '/') {
				b.WriteString(v.dir)
				i += 1 + len(v.name)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte('$')
			i++
		}
	}
	return b.String()
}

// commandHook, when set (by tests), runs after the program, with its
// folders still there: a test panics in it to see them removed anyway.
var commandHook func(outDir, inDir string)

// privateDir makes a folder for plaintext: in base when a caller (a
// test) chose one, otherwise in fleet's private per-user place, named so
// that a later run sweeps it if this one is killed (see package
// plaintext).
func privateDir(base, prefix string) (string, error) {
	if base != "" {
		return os.MkdirTemp(base, prefix)
	}
	return plaintext.MkdirTemp(prefix)
}

func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

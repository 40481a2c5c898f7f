package deploy

// The fleet's binary cache (fleet(cache = ...)) and remote builders
// (fleet(builders = ...)): past one machine, builds and copies go through
// Nix's own distributed engine instead of through the deployer.
//
// With a cache, each machine's deploy gains a push step between its build
// and its copy: the system's closure goes to the cache once (nix copy
// --to <cache>), signed with the fleet's secret key when fleet(cache =
// {"secret_key_file": ...}) names one (the store URL's secret-key
// parameter: the narinfo files in the cache are signed, the local store
// is left as it is). The copy to the machine then says
// --substitute-on-destination: the machine's nix-daemon fetches from its
// substituters (the generated tree lists the cache there, with its key)
// every path it can, and only what it cannot is sent over ssh. (nix
// 2.8's ssh-ng:// client does not send --substitute-on-destination to
// the daemon: it sends its builders-use-substitutes setting in that
// place, so the copy sets that too; newer nix sends the flag. Without
// both, the real nix 2.8 sends every path, as TestRealNixCache shows.) The
// deployer uploads each closure once, whatever the number of machines
// running it, and the machines download in parallel from the cache.
//
// Machines that build the same system share one push (pushes): the first
// step to reach a path pushes it, the others wait for that push and
// take its outcome. A failed push fails the machine's push step (and
// those waiting on it) with nix's error, rather than falling back to a
// plain copy: the cache is what the fleet declared, every machine is told
// to substitute from it, and a cache that cannot be written (wrong
// credentials, a missing key, a full bucket) is something to fix, not to
// hide behind a deploy that silently costs the deployer's uplink once per
// machine. The machines that already have their system are not held up.
//
// Builders (builderSet) are nix's machine lines, passed to local builds
// with --builders after the builders the user's own nix.conf names (nix
// show-config, once per run), so that those keep working: --builders
// replaces the setting, and nix 2.8 has no extra-builders. A batch's
// nix eval (batch.go) takes them too, for what it builds while it
// evaluates (import from derivation: the deployer's nix may build
// nothing itself, max-jobs = 0), and a batched machine's realisation
// as nix-store --option builders.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fleet-nix/fleet/engine/model"
)

// pushes pushes systems to the fleet's binary cache, each path once per
// run, whichever machines' steps ask for it.
type pushes struct {
	cache *model.Cache
	mu    sync.Mutex
	calls map[string]*pushCall
}

// pushCall is one path's push: done is closed when err is final.
type pushCall struct {
	machine string // whose step pushes it
	done    chan struct{}
	err     error
}

// newPushes is nil for a fleet without a cache: nothing is pushed.
func newPushes(c *model.Cache) *pushes {
	if c == nil {
		return nil
	}
	return &pushes{cache: c, calls: map[string]*pushCall{}}
}

// storeURL is the cache's store URL as the push gives it to nix: with the
// secret key file (key, expanded) as its secret-key parameter.
func (p *pushes) storeURL(key string) string {
	if key == "" {
		return p.cache.URL
	}
	sep := "?"
	if strings.Contains(p.cache.URL, "?") {
		sep = "&"
	}
	return p.cache.URL + sep + "secret-key=" + key
}

// argv pushes path's closure to the cache. nix copy skips the paths the
// cache has already (it asks for their narinfo first).
func (p *pushes) argv(key, path string) []string {
	return nixArgv("copy", "--to", p.storeURL(key), path)
}

// command is the push as --dry-run and logs show it.
func (p *pushes) command(path string) string {
	return ShellJoin(p.argv(p.cache.SecretKeyFile, path))
}

// keyFile is the secret key's path on this machine, checked: a key file
// that is missing is an error saying what to do before nix says it less
// clearly.
func (p *pushes) keyFile() (string, error) {
	key := p.cache.SecretKeyFile
	if key == "" {
		return "", nil
	}
	if rest, ok := strings.CutPrefix(key, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("the cache's secret_key_file %s (%s): %w", key, p.cache.Pos, err)
		}
		key = filepath.Join(home, rest)
	}
	if strings.ContainsAny(key, "&?#% ") {
		return "", fmt.Errorf("the cache's secret_key_file %s (%s) holds a character a store URL cannot carry (& ? # %% or a space): move the key", key, p.cache.Pos)
	}
	if _, err := os.Stat(key); err != nil {
		return "", fmt.Errorf("the cache's secret key file cannot be read (%v): create it with nix-store --generate-binary-cache-key <name> %s <public file> (its public half is fleet(cache = {\"public_key\": ...}) at %s), or fix secret_key_file", err, key, p.cache.Pos)
	}
	return key, nil
}

// push pushes path for machine, or waits for the push of the machine
// that asked first and shares its outcome.
func (p *pushes) push(ctx context.Context, r Runner, machine, path string, w io.Writer) error {
	p.mu.Lock()
	if c, ok := p.calls[path]; ok {
		p.mu.Unlock()
		fmt.Fprintf(w, "%s is pushed by %s's deploy: waiting for it\n", path, c.machine)
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.err != nil {
			return fmt.Errorf("pushing %s to the cache failed in %s's deploy: %w", path, c.machine, c.err)
		}
		fmt.Fprintf(w, "pushed to %s by %s's deploy\n", p.cache.URL, c.machine)
		return nil
	}
	c := &pushCall{machine: machine, done: make(chan struct{})}
	p.calls[path] = c
	p.mu.Unlock()
	defer close(c.done)
	key, err := p.keyFile()
	if err == nil {
		err = r.Local(ctx, p.argv(key, path), IO{Stdout: w, Stderr: w})
		if err != nil {
			err = fmt.Errorf("nix copy --to %s: %w (check the cache's URL and credentials at %s, or remove fleet(cache = ...) to copy straight to the machines)", p.cache.URL, err, p.cache.Pos)
		}
	}
	c.err = err
	if err == nil {
		fmt.Fprintf(w, "pushed %s to %s\n", path, p.cache.URL)
	}
	return err
}

// pushSystem is the push step of a machine's deploy.
func (d *machineDeploy) pushSystem(ctx context.Context, w io.Writer) error {
	return d.push.push(ctx, d.o.Runner, d.m.Name, d.system, w)
}

// builderSet is the --builders value of a run's local builds: the user's
// own builders (nix.conf's builders setting, @/etc/nix/machines by
// default), then the fleet's lines. It is read once per run.
type builderSet struct {
	lines []string
	once  sync.Once
	value string
	err   error
}

// newBuilderSet is nil when the fleet names no builders: builds then use
// nix.conf's builders as they are, and no --builders is given.
func newBuilderSet(lines []string) *builderSet {
	if len(lines) == 0 {
		return nil
	}
	return &builderSet{lines: lines}
}

// resolve reads the user's builders setting (nix show-config) and joins
// it with the fleet's, as nix reads the setting: entries separated by
// ';', an entry "@file" naming a machines file.
func (b *builderSet) resolve(ctx context.Context, r Runner) (string, error) {
	b.once.Do(func() {
		var out, errb bytes.Buffer
		if err := r.Local(ctx, nixArgv("show-config", "--json"), IO{Stdout: &out, Stderr: &errb}); err != nil {
			b.err = fmt.Errorf("reading nix.conf's builders (to keep them next to the fleet's): %w", err)
			return
		}
		var c struct {
			Builders struct{ Value string } `json:"builders"`
		}
		if err := json.Unmarshal(out.Bytes(), &c); err != nil {
			b.err = fmt.Errorf("nix show-config --json printed no JSON (%v): %q", err, firstLine(out.Bytes()))
			return
		}
		b.value = b.join(strings.TrimSpace(c.Builders.Value))
	})
	return b.value, b.err
}

func (b *builderSet) join(own string) string {
	all := make([]string, 0, len(b.lines)+1)
	if own != "" {
		all = append(all, own)
	}
	return strings.Join(append(all, b.lines...), ";")
}

// arg is the value resolved, or before that (for --dry-run) as it will
// be, with nix.conf's part named.
func (b *builderSet) arg() string {
	if b.value == "" {
		return b.join("<nix.conf builders>")
	}
	return b.value
}

// realiseArgv is a batched machine's realisation (batch.go) with the
// fleet's builders: nix-store takes them as --option builders.
func (d *machineDeploy) realiseArgv(drv string) []string {
	argv := realiseArgv(drv)
	if d.builders == nil {
		return argv
	}
	return append([]string{argv[0], "--option", "builders", d.builders.arg()}, argv[1:]...)
}

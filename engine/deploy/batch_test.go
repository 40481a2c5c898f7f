package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/model"
)

// batchNix plays nix for the batch tests: nix eval of a batch prints
// its machines' derivations, or fails as nix does when one of them is
// broken; nix-store --realise prints a system; it counts and records
// what runs, and how many machines are being evaluated at once.
type batchNix struct {
	broken map[string]bool
	valid  map[string]bool // path-info
	// evalTime is how long an evaluation (nix eval, or nix build of an
	// attribute) takes; a millisecond by default.
	evalTime time.Duration
	// nixConf is nix.conf's builders, as nix show-config prints them.
	nixConf string
	// realise, when set, is called before a build of a machine's system
	// (nix-store --realise, or nix build) answers; eval before a nix eval
	// does.
	realise func(ctx context.Context, machine string) error
	eval    func(ctx context.Context, machines []string) error
	copied  func(machine string)

	mu           sync.Mutex
	evals        [][]string
	evalArgvs    [][]string
	showConfigs  int
	realised     []string
	other        []string
	evaluating   int
	maxEvaluated int
}

var evalNames = regexp.MustCompile(`"([^"]+)"`)

func fakeHash(name string) string {
	return strings.Repeat("0", 32-len(name)%32) + strings.Repeat("a", len(name)%32)
}

func fakeDrv(m string) string    { return "/nix/store/" + fakeHash(m) + "-" + m + "-system.drv" }
func fakeSystem(m string) string { return "/nix/store/" + fakeHash(m) + "-" + m + "-system" }

func (r *batchNix) Local(ctx context.Context, argv []string, stdio IO) error {
	if argv[0] == "nix-store" {
		drv := argv[2]
		m := strings.TrimSuffix(strings.TrimPrefix(drv[strings.Index(drv, "-")+1:], ""), "-system.drv")
		r.mu.Lock()
		r.realised = append(r.realised, m)
		r.mu.Unlock()
		if r.realise != nil {
			if err := r.realise(ctx, m); err != nil {
				return err
			}
		}
		fmt.Fprintln(stdio.Stdout, fakeSystem(m))
		return nil
	}
	sub := argv[3]
	switch sub {
	case "eval":
		expr := argv[len(argv)-1]
		_, list, _ := strings.Cut(expr, "[")
		var names []string
		for _, m := range evalNames.FindAllStringSubmatch(list, -1) {
			names = append(names, m[1])
		}
		if r.eval != nil {
			if err := r.eval(ctx, names); err != nil {
				return err
			}
		}
		r.mu.Lock()
		r.evals = append(r.evals, names)
		r.evalArgvs = append(r.evalArgvs, argv)
		r.mu.Unlock()
		r.evaluate(len(names))
		var out []string
		for _, n := range names {
			if r.broken[n] {
				fmt.Fprintf(stdio.Stderr, "error: %s is broken\n", n)
				return &CommandError{Argv: argv, ExitCode: 1, Stderr: "error: " + n + " is broken", Err: errors.New("exit status 1")}
			}
			out = append(out, fmt.Sprintf("%q:%q", n, fakeDrv(n)))
		}
		fmt.Fprint(stdio.Stdout, "{"+strings.Join(out, ",")+"}")
		return nil
	case "show-config":
		r.mu.Lock()
		r.showConfigs++
		r.mu.Unlock()
		fmt.Fprintf(stdio.Stdout, `{"builders":{"value":%q}}`, r.nixConf)
	case "path-info":
		if !r.valid[argv[4]] {
			return &CommandError{Argv: argv, ExitCode: 1, Err: errors.New("exit status 1")}
		}
	case "build":
		m := argv[len(argv)-1]
		m = strings.Split(m, ".")[1]
		r.mu.Lock()
		r.other = append(r.other, "build "+m)
		r.mu.Unlock()
		r.evaluate(1)
		if r.realise != nil {
			if err := r.realise(ctx, m); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdio.Stdout, `[{"outputs":{"out":%q}}]`, fakeSystem(m))
	case "copy":
		m := strings.TrimSuffix(argv[len(argv)-1][len("/nix/store/")+33:], "-system")
		if r.copied != nil {
			r.copied(m)
		}
	}
	return nil
}

// evaluate counts n machines evaluated for evalTime, so that
// overlapping evaluations show in maxEvaluated.
func (r *batchNix) evaluate(n int) {
	r.mu.Lock()
	r.evaluating += n
	r.maxEvaluated = max(r.maxEvaluated, r.evaluating)
	r.mu.Unlock()
	time.Sleep(cmp.Or(r.evalTime, time.Millisecond))
	r.mu.Lock()
	r.evaluating -= n
	r.mu.Unlock()
}

func (r *batchNix) Remote(context.Context, string, []string, IO) error { return nil }

func machinesNamed(class model.Class, names ...string) []*model.Machine {
	var ms []*model.Machine
	for _, n := range names {
		ms = append(ms, &model.Machine{Name: n, Class: class, Target: "root@" + n})
	}
	return ms
}

// buildAll runs fleet build's steps and returns the paths built and
// the summary.
func buildAll(t *testing.T, machines []*model.Machine, opts Options, parallel int) (map[string]string, *Summary) {
	t.Helper()
	var mu sync.Mutex
	paths := map[string]string{}
	steps, err := BuildSteps(machines, opts, func(m, p string) { mu.Lock(); paths[m] = p; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sum := Execute(ctx, steps, ExecOptions{Parallel: parallel})
	if ctx.Err() != nil {
		t.Fatal("the build did not end: deadlocked")
	}
	return paths, sum
}

// Batches are cut by class and size, each evaluated by one nix
// process (a machine alone in its batch too), never more machines at
// once than the batch size, whatever --parallel is (also 1: no
// deadlock), also when every machine's cached system is gone (each is
// then evaluated alone); every machine gets its own path.
func TestEvalBatches(t *testing.T) {
	nixos := machinesNamed(model.NixOS, "a", "b", "c", "d", "e", "f", "g")
	darwin := machinesNamed(model.Darwin, "m1", "m2")
	all := append(slices.Clone(nixos[:4]), append(darwin, nixos[4:]...)...)
	for _, tc := range []struct {
		name     string
		batch    int
		parallel int
		want     [][]string
		gone     bool // every machine has a cached system, garbage-collected
	}{
		{"batches of 3", 3, 4, [][]string{{"a", "b", "c"}, {"d", "e", "f"}, {"g"}, {"m1", "m2"}}, false},
		{"parallel 1", 3, 1, [][]string{{"a", "b", "c"}, {"d", "e", "f"}, {"g"}, {"m1", "m2"}}, false},
		{"parallel above batch", 2, 10, [][]string{{"a", "b"}, {"c", "d"}, {"e", "f"}, {"g"}, {"m1", "m2"}}, false},
		{"one batch", 100, 3, [][]string{{"a", "b", "c", "d", "e", "f", "g"}, {"m1", "m2"}}, false},
		{"cached systems gone", 2, 10, [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}, {"g"}, {"m1"}, {"m2"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nix := &batchNix{}
			opts := Options{Tree: "/tree", Runner: nix, EvalBatch: tc.batch}
			if tc.gone {
				nix.evalTime = 20 * time.Millisecond
				opts.Cached = map[string]CachedBuild{}
				for _, m := range all {
					opts.Cached[m.Name] = CachedBuild{Path: "/nix/store/gone-" + m.Name, Fingerprint: "f"}
				}
			}
			paths, sum := buildAll(t, all, opts, tc.parallel)
			if sum.Failed() {
				t.Fatalf("failed: %+v", sum.Machines)
			}
			got := slices.Clone(nix.evals)
			slices.SortFunc(got, func(x, y []string) int { return strings.Compare(strings.Join(x, " "), strings.Join(y, " ")) })
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("evaluations %v, want %v", got, tc.want)
			}
			if nix.maxEvaluated > tc.batch {
				t.Errorf("%d machines evaluated at once, batch size %d", nix.maxEvaluated, tc.batch)
			}
			if len(nix.realised) != len(all) || len(nix.other) != 0 {
				t.Errorf("realised %v, other nix calls %v", nix.realised, nix.other)
			}
			for _, m := range all {
				if paths[m.Name] != fakeSystem(m.Name) {
					t.Errorf("%s built %q", m.Name, paths[m.Name])
				}
			}
		})
	}
}

// Without a batch size (or 1), and for --build-on target, each machine
// evaluates and builds alone, as before.
func TestEvalBatchOff(t *testing.T) {
	ms := machinesNamed(model.NixOS, "a", "b")
	for _, batch := range []int{0, 1} {
		nix := &batchNix{}
		if _, sum := buildAll(t, ms, Options{Tree: "/tree", Runner: nix, EvalBatch: batch}, 2); sum.Failed() {
			t.Fatal(sum.Machines)
		}
		if len(nix.evals) != 0 || len(nix.other) != 2 {
			t.Errorf("batch %d: evaluations %v, builds %v", batch, nix.evals, nix.other)
		}
	}
	f := &model.Fleet{Name: "t", Machines: ms}
	steps, err := Steps(f, ms, Options{Tree: "/tree", Runner: &batchNix{}, EvalBatch: 5, BuildOn: "target"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Action == "build" && !strings.Contains(s.Commands[0], "nix-command flakes' build --no-link --json --eval-store auto --store ssh-ng://") {
			t.Errorf("build on target: %s", s.Commands)
		}
	}
}

// A broken machine fails alone, with nix's error; its batch-mates are
// built, after the batch is halved down to it. When both halves of a
// node fail, the second to fail evaluates its machines one by one
// rather than halving again.
func TestEvalBatchFallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []string
		broken   []string
		parallel int
		want     []string // the evaluations, sorted
	}{
		{"one broken, halved down to it", []string{"a", "b", "c", "d", "e"}, []string{"c"}, 2,
			[]string{"[a b c d e]", "[a b]", "[c d e]", "[c]", "[d e]"}},
		{"both halves broken, the second one by one", []string{"a", "b", "c", "d", "e", "f", "g", "h"}, []string{"b", "g"}, 1,
			[]string{"[a b c d e f g h]", "[a b c d]", "[a b]", "[a]", "[b]", "[c d]", "[e f g h]", "[e]", "[f]", "[g]", "[h]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nix := &batchNix{broken: map[string]bool{}}
			for _, m := range tc.broken {
				nix.broken[m] = true
			}
			paths, sum := buildAll(t, machinesNamed(model.NixOS, tc.machines...), Options{Tree: "/tree", Runner: nix, EvalBatch: len(tc.machines)}, tc.parallel)
			for _, m := range sum.Machines {
				if slices.Contains(tc.broken, m.Machine) {
					var ce *CommandError
					if m.Outcome != OutcomeFailed || !errors.As(m.Err, &ce) || !strings.Contains(ce.Stderr, "error: "+m.Machine+" is broken") {
						t.Errorf("%s: %s %v, want its own nix error", m.Machine, m.Outcome, m.Err)
					}
					continue
				}
				if m.Outcome != OutcomeOK || paths[m.Machine] != fakeSystem(m.Machine) {
					t.Errorf("%s: %s %v, path %q", m.Machine, m.Outcome, m.Err, paths[m.Machine])
				}
			}
			var got []string
			for _, e := range nix.evals {
				got = append(got, fmt.Sprint(e))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("evaluations %q, want %q", got, want)
			}
		})
	}
}

// Machines with a cached system in the store are in no batch; one whose
// cached path is gone is evaluated as a batch of its own.
func TestEvalBatchCached(t *testing.T) {
	ms := machinesNamed(model.NixOS, "a", "b", "c", "d")
	nix := &batchNix{valid: map[string]bool{"/nix/store/old-b": true}}
	opts := Options{Tree: "/tree", Runner: nix, EvalBatch: 10, Cached: map[string]CachedBuild{
		"b": {Path: "/nix/store/old-b", Fingerprint: "f"}, "d": {Path: "/nix/store/gone-d", Fingerprint: "f"}}}
	paths, sum := buildAll(t, ms, opts, 4)
	if sum.Failed() {
		t.Fatal(sum.Machines)
	}
	evals := slices.Clone(nix.evals)
	slices.SortFunc(evals, slices.Compare)
	if fmt.Sprint(evals) != "[[a c] [d]]" || len(nix.other) != 0 || paths["b"] != "/nix/store/old-b" || paths["d"] != fakeSystem("d") {
		t.Errorf("evaluations %v, other builds %v, b at %q", nix.evals, nix.other, paths["b"])
	}
}

// Each machine's copy starts when its own system is built, not when
// its batch-mates' are: here fast's copy must run while slow's
// realisation waits for it.
func TestEvalBatchStreamsIntoCopies(t *testing.T) {
	ms := machinesNamed(model.NixOS, "slow", "fast")
	fastCopied := make(chan struct{})
	nix := &batchNix{
		realise: func(ctx context.Context, m string) error {
			if m != "slow" {
				return nil
			}
			select {
			case <-fastCopied:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		copied: func(m string) {
			if m == "fast" {
				close(fastCopied)
			}
		},
	}
	f := &model.Fleet{Name: "t", Machines: ms}
	steps, err := Steps(f, ms, Options{Tree: "/tree", Runner: nix, EvalBatch: 2, Goal: Test})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sum := Execute(ctx, steps, ExecOptions{Parallel: 4})
	if ctx.Err() != nil || sum.Failed() {
		t.Fatalf("slow's build waited for fast's copy, which never came: %+v", sum.Machines)
	}
	if len(nix.evals) != 1 {
		t.Errorf("evaluations %v, want one", nix.evals)
	}
}

// The dry run shows the batch and its size; the log of the machine that
// evaluated has nix's command, the others say who did.
func TestEvalBatchCommands(t *testing.T) {
	ms := machinesNamed(model.NixOS, "a", "b", "c", "d", "e", "f")
	steps, err := BuildSteps(ms, Options{Tree: "/tree", Runner: &batchNix{}, EvalBatch: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		step int
		want string
	}{
		{0, "evaluate batch 1 of 2 (a, b, c and 2 more; up to 5 machines per nix process): nix --extra-experimental-features 'nix-command flakes' eval --json 'path:/tree#nixosConfigurations' --apply EXPR (EXPR: nixosConfigurations.<machine>.config.system.build.toplevel.drvPath of each)"},
	} {
		if got := steps[tc.step].Commands; !strings.HasPrefix(got[0], tc.want) || got[1] != "nix-store --realise DRV ("+ms[tc.step].Name+"'s derivation, from the batch)" {
			t.Errorf("step %d: %q, want %q", tc.step, got, tc.want)
		}
	}
	if got := steps[5].Commands; len(got) != 2 || !strings.HasPrefix(got[0], "evaluate batch 2 of 2 (f; up to 5 machines per nix process): nix ") || got[1] != "nix-store --realise DRV (f's derivation, from the batch)" {
		t.Errorf("f, alone in its batch: %q", got)
	}
	var logs [2]strings.Builder
	for i, s := range steps[:2] {
		if err := s.Run(context.Background(), &logs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs[0].String(), "evaluating batch 1 of 2: 5 machines (a, b, c, d, e) in one nix process, up to 5 per process\n$ nix ") ||
		!strings.Contains(logs[1].String(), "batch 1 of 2 (a, b, c, d, e) evaluated by a's build step") {
		t.Errorf("logs:\n%s\n%s", logs[0].String(), logs[1].String())
	}
}

// The memory budget bounds the batch size; /proc/meminfo is read as
// Linux writes it.
func TestEvalBatchSize(t *testing.T) {
	for _, tc := range []struct {
		budget uint64
		want   int
	}{{0, 1}, {100 << 20, 1}, {512 << 20, 1}, {1 << 30, 2}, {8 << 30, 16}, {1 << 50, 1 << 16}} {
		if got := EvalBatchSize(tc.budget); got != tc.want {
			t.Errorf("EvalBatchSize(%d) = %d, want %d", tc.budget, got, tc.want)
		}
	}
	for _, tc := range []struct {
		meminfo string
		bytes   uint64
		field   string
	}{
		{"MemTotal:       16318412 kB\nMemFree:         1234 kB\nMemAvailable:    8159206 kB\n", 8159206 << 10, "MemAvailable"},
		{"MemTotal:       16318412 kB\nMemFree:         1234 kB\n", 16318412 << 10, "MemTotal"},
		{"nonsense\n", 0, ""},
	} {
		if n, f := ParseMeminfo(strings.NewReader(tc.meminfo)); n != tc.bytes || f != tc.field {
			t.Errorf("ParseMeminfo(%q) = %d %s, want %d %s", tc.meminfo, n, f, tc.bytes, tc.field)
		}
	}
	if n, why := DefaultEvalMemory(8<<30, "MemAvailable"); n != 4<<30 || why != "half of MemAvailable 8.0GiB" {
		t.Errorf("DefaultEvalMemory = %d, %q", n, why)
	}
	if n, _ := DefaultEvalMemory(0, ""); n != FallbackEvalMemory {
		t.Errorf("DefaultEvalMemory without memory = %d", n)
	}
}

var _ io.Writer = (*strings.Builder)(nil)

// Nothing roots the .drv files a batch's nix eval writes: when one is
// garbage-collected before its machine's realisation, the machine is
// built alone with nix build, and its log says why; a realisation that
// fails with its derivation still in the store fails the machine.
func TestEvalBatchDrvCollected(t *testing.T) {
	missing := &CommandError{Argv: []string{"nix-store"}, ExitCode: 1, Err: errors.New("exit status 1"),
		Stderr: "error: cannot build missing derivation '" + fakeDrv("a") + "'"}
	failed := &CommandError{Argv: []string{"nix-store"}, ExitCode: 1, Err: errors.New("exit status 1"),
		Stderr: "error: builder for '" + fakeDrv("a") + "' failed with exit code 1"}
	for _, tc := range []struct {
		name     string
		err      error           // a's realisation's
		valid    map[string]bool // nix path-info
		wantOK   bool
		wantLog  string
		wantNixB []string // nix build calls
	}{
		{"stderr says missing derivation", missing, map[string]bool{fakeDrv("a"): true}, true,
			fakeDrv("a") + " is not in the store any more (garbage-collected since its batch's evaluation, which gives it no GC root): building a alone with nix build", []string{"build a"}},
		{"path-info says gone", errors.New("exit status 1"), nil, true,
			"building a alone with nix build", []string{"build a"}},
		{"build failed, derivation there", failed, map[string]bool{fakeDrv("a"): true}, false, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			realised := false // a's first build, its realisation, fails
			nix := &batchNix{valid: tc.valid, realise: func(ctx context.Context, m string) error {
				if m == "a" && !realised {
					realised = true
					return tc.err
				}
				return nil
			}}
			steps, err := BuildSteps(machinesNamed(model.NixOS, "a", "b"), Options{Tree: "/tree", Runner: nix, EvalBatch: 2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			err = steps[0].Run(context.Background(), &log)
			if (err == nil) != tc.wantOK || (err != nil && err != tc.err) {
				t.Errorf("a: %v, want ok %v", err, tc.wantOK)
			}
			if tc.wantOK && !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("a's log:\n%s\nwant %q", log.String(), tc.wantLog)
			}
			if fmt.Sprint(nix.other) != fmt.Sprint(tc.wantNixB) {
				t.Errorf("nix builds %v, want %v", nix.other, tc.wantNixB)
			}
		})
	}
}

// A machine alone in its batch holds its slot while it is evaluated,
// not while it is built: here the lone machine's build waits for the
// other batch's evaluation, which needs every slot, to start; the other
// batch's steps start once the lone machine is building.
func TestEvalBatchLoneMachineSlot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []*model.Machine
		lone     string
		batch    []string // the batch evaluated while lone builds
	}{
		{"last of its class", machinesNamed(model.NixOS, "a", "b", "c"), "c", []string{"a", "b"}},
		{"alone in its class", append(machinesNamed(model.NixOS, "a", "b"), machinesNamed(model.Darwin, "m1")...), "m1", []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			building, evaluating := make(chan struct{}), make(chan struct{})
			var once [2]sync.Once
			wait := func(ctx context.Context, c chan struct{}) error {
				select {
				case <-c:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			nix := &batchNix{
				realise: func(ctx context.Context, m string) error {
					if m != tc.lone {
						return nil
					}
					once[0].Do(func() { close(building) })
					return wait(ctx, evaluating)
				},
				eval: func(ctx context.Context, ms []string) error {
					if slices.Equal(ms, tc.batch) {
						once[1].Do(func() { close(evaluating) })
					}
					return nil
				},
			}
			steps, err := BuildSteps(tc.machines, Options{Tree: "/tree", Runner: nix, EvalBatch: len(tc.batch)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range steps {
				if steps[i].Machine != tc.lone {
					run := steps[i].Run
					steps[i].Run = func(ctx context.Context, w io.Writer) error {
						if err := wait(ctx, building); err != nil {
							return err
						}
						return run(ctx, w)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sum := Execute(ctx, steps, ExecOptions{Parallel: len(steps)})
			if ctx.Err() != nil || sum.Failed() {
				t.Errorf("the batch %v waited for %s's build to release its slot: %+v", tc.batch, tc.lone, sum.Machines)
			}
		})
	}
}

// A batch's nix eval builds what the evaluation imports from
// derivations, so it takes the fleet's builders (after nix.conf's, read
// once) as nix build does: with max-jobs = 0 it could build nothing
// without them. --dry-run shows them.
func TestEvalBatchBuilders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		builders []string // the fleet's
		nixConf  string
		want     string // --builders; "": none
		dryRun   string
	}{
		{"no builders of the fleet's", nil, "@/etc/nix/machines", "", ""},
		{"nix.conf's and the fleet's", []string{"ssh-ng://b x86_64-linux"}, "@/etc/nix/machines",
			"@/etc/nix/machines;ssh-ng://b x86_64-linux", "<nix.conf builders>;ssh-ng://b x86_64-linux"},
		{"none of the user's", []string{"ssh-ng://b x86_64-linux", "ssh://c aarch64-linux"}, "",
			"ssh-ng://b x86_64-linux;ssh://c aarch64-linux", "<nix.conf builders>;ssh-ng://b x86_64-linux;ssh://c aarch64-linux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nix := &batchNix{nixConf: tc.nixConf}
			ms := machinesNamed(model.NixOS, "a", "b", "c")
			steps, err := BuildSteps(ms, Options{Tree: "/tree", Runner: nix, EvalBatch: 2, Builders: tc.builders}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				dry := " eval --json 'path:/tree#nixosConfigurations' --apply EXPR"
				if tc.dryRun != "" {
					dry = " eval --json --builders " + ShellQuote(tc.dryRun) + " 'path:/tree#nixosConfigurations' --apply EXPR"
				}
				if !strings.Contains(s.Commands[0], dry) {
					t.Errorf("%s: %q, want %q", s.ID, s.Commands[0], dry)
				}
			}
			if sum := Execute(context.Background(), steps, ExecOptions{Parallel: 3}); sum.Failed() {
				t.Fatal(sum.Machines)
			}
			if len(nix.evalArgvs) != 2 {
				t.Fatalf("evaluations %q, want 2", nix.evalArgvs)
			}
			for _, argv := range nix.evalArgvs {
				i := slices.Index(argv, "--builders")
				switch {
				case tc.want == "" && i >= 0:
					t.Errorf("nix %q: --builders without the fleet's builders", argv)
				case tc.want != "" && (i != 5 || argv[i+1] != tc.want):
					t.Errorf("nix %q: want eval --json --builders %q", argv, tc.want)
				}
			}
			if want := min(len(tc.builders), 1); nix.showConfigs != want {
				t.Errorf("nix show-config run %d times, want %d", nix.showConfigs, want)
			}
		})
	}
}

package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestExecuteLogs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".fleet", "logs", "run-1")
	steps := []Step{
		{ID: "a/build", Machine: "a", Action: "build",
			Commands: []string{"nix build --no-link --print-out-paths /tree#nixosConfigurations.a.config.system.build.toplevel"},
			Run: func(_ context.Context, out io.Writer) error {
				fmt.Fprint(out, "line one\nline ")
				fmt.Fprint(out, "two\r\n")
				fmt.Fprint(out, "no newline at the end")
				return nil
			}},
		{ID: "a/copy", Machine: "a", Action: "copy", Needs: []string{"a/build"},
			Commands: []string{"nix copy --to ssh-ng://root@a /nix/store/x-a", "second command"},
			Run: func(_ context.Context, out io.Writer) error {
				// stdout and stderr, as os/exec copies them: from two
				// goroutines.
				var wg sync.WaitGroup
				for _, stream := range []string{"stdout", "stderr"} {
					wg.Go(func() {
						for i := range 100 {
							fmt.Fprintf(out, "%s %d\n", stream, i)
						}
					})
				}
				wg.Wait()
				return errors.New("exit status 1\nerror: cannot connect")
			}},
		{ID: "a/activate", Machine: "a", Action: "activate", Needs: []string{"a/copy"},
			Run: func(context.Context, io.Writer) error { return nil }},
		{ID: "b/build", Machine: "b", Action: "build", Commands: []string{"nix build b"},
			Run: func(_ context.Context, out io.Writer) error {
				fmt.Fprintln(out, "b's output")
				return nil
			}},
	}
	s := Execute(context.Background(), steps, ExecOptions{LogDir: dir})
	if s.Err != nil {
		t.Fatal(s.Err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("log folder: %v, %v; want mode 0700", fi.Mode(), err)
	}
	logs := map[string]string{}
	for _, m := range []string{"a", "b"} {
		path := filepath.Join(dir, m+".log")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		logs[m] = string(b)
	}

	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) `)
	for m, log := range logs {
		for line := range strings.Lines(log) {
			if !stamp.MatchString(line) {
				t.Errorf("%s.log: line without a timestamp: %q", m, line)
			}
			if strings.Contains(line, "\r") {
				t.Errorf("%s.log: carriage return in %q", m, line)
			}
		}
	}
	// What each log says, in order, timestamps cut off.
	for _, tc := range []struct {
		machine string
		want    []string
		not     []string
	}{
		{"a", []string{
			"build: started",
			"build: $ nix build --no-link --print-out-paths /tree#nixosConfigurations.a.config.system.build.toplevel",
			"build| line one",
			"build| line two",
			"build| no newline at the end",
			"build: ok ",
			"copy: started",
			"copy: $ nix copy --to ssh-ng://root@a /nix/store/x-a",
			"copy: $ second command",
			"copy: failed ",
			"copy: error: cannot connect",
			"activate: skipped: needs a/copy, which failed",
		}, []string{"b's output", "activate: started"}},
		{"b", []string{"build: started", "build: $ nix build b", "build| b's output", "build: ok "}, []string{"a/", "line one"}},
	} {
		log := logs[tc.machine]
		var lines []string
		for line := range strings.Lines(log) {
			lines = append(lines, stamp.ReplaceAllString(strings.TrimSuffix(line, "\n"), ""))
		}
		at := 0
		for _, w := range tc.want {
			found := false
			for ; at < len(lines); at++ {
				if strings.HasPrefix(lines[at], w) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s.log: no %q (in this order) in:\n%s", tc.machine, w, strings.Join(lines, "\n"))
				break
			}
		}
		for _, n := range tc.not {
			if strings.Contains(log, n) {
				t.Errorf("%s.log has %q", tc.machine, n)
			}
		}
	}
	// Both streams of a/copy arrive whole, line by line.
	for _, stream := range []string{"stdout", "stderr"} {
		for i := range 100 {
			if !strings.Contains(logs["a"], fmt.Sprintf(" copy| %s %d\n", stream, i)) {
				t.Errorf("a.log: no line %q", fmt.Sprintf("copy| %s %d", stream, i))
			}
		}
	}
}

func TestExecuteLogDirError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ran := false
	s := Execute(context.Background(), []Step{{ID: "a/build", Machine: "a",
		Run: func(context.Context, io.Writer) error { ran = true; return nil }}},
		ExecOptions{LogDir: filepath.Join(file, "run")})
	if s.Err == nil || !s.Failed() || ran {
		t.Errorf("Err %v, Failed %v, ran %v; want an error and nothing run", s.Err, s.Failed(), ran)
	}
}

func TestStepWriterLongLine(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", maxPartialLine+10)
	s := Execute(context.Background(), []Step{{ID: "a/build", Machine: "a", Action: "build",
		Run: func(_ context.Context, out io.Writer) error {
			// A line that never ends (a progress bar redrawn with \r)
			// is written in pieces rather than held whole.
			for range 3 {
				io.WriteString(out, long)
			}
			return nil
		}}}, ExecOptions{LogDir: dir})
	if s.Failed() {
		t.Fatal(s.Err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "x"); n != 3*len(long) {
		t.Errorf("log has %d x, want %d", n, 3*len(long))
	}
}

package deploy

import (
	"context"
	"strings"
	"testing"
)

// Step.After orders without propagating failure: a step after one that
// failed (or was skipped) still runs, once that one has ended, and a step
// after a slow one does not start before it ends.
func TestExecuteAfter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failing string // a step that fails
		wantRan []string
		wantNot []string
	}{
		{"all succeed", "", []string{"k/first", "k/skipped", "h/one", "h/two", "z/last"}, nil},
		{"first fails", "k/first", []string{"h/one", "h/two", "z/last"}, []string{"k/skipped"}},
		{"a host fails", "h/one", []string{"k/first", "k/skipped", "h/two", "z/last"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrace()
			specs := []spec{
				{id: "k/first", run: sleepFor(20e6)},
				{id: "k/skipped", needs: []string{"k/first"}},
				{id: "h/one"},
				{id: "h/two"},
				{id: "z/last"},
			}
			if tc.failing != "" {
				specs = with(specs, tc.failing, fail("boom"))
			}
			steps := makeSteps(tr, specs)
			steps[2].After = []string{"k/first", "k/skipped"}
			steps[3].After = []string{"k/first", "k/skipped"}
			steps[4].After = []string{"h/one", "h/two"}
			sum := Execute(context.Background(), steps, ExecOptions{Parallel: 10})
			for _, id := range tc.wantRan {
				if !tr.ran(id) {
					t.Errorf("%s did not run", id)
				}
			}
			for _, id := range tc.wantNot {
				if tr.ran(id) {
					t.Errorf("%s ran", id)
				}
			}
			tr.mu.Lock()
			defer tr.mu.Unlock()
			for _, p := range [][2]string{{"k/first", "h/one"}, {"k/first", "h/two"}, {"h/one", "z/last"}, {"h/two", "z/last"}} {
				if tr.ends[p[0]] > tr.starts[p[1]] {
					t.Errorf("%s started before %s ended", p[1], p[0])
				}
			}
			for _, m := range sum.Machines {
				if m.Machine == "z" && m.Outcome != OutcomeOK {
					t.Errorf("z: %s, want ok", m.Outcome)
				}
			}
		})
	}
}

func TestValidateAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []Step
		want  string
	}{
		{"unknown", []Step{{ID: "a/x", Machine: "a", Run: makeSteps(newTrace(), []spec{{id: "a/x"}})[0].Run, After: []string{"b/y"}}}, "which is not a step"},
		{"cycle", func() []Step {
			s := makeSteps(newTrace(), []spec{{id: "a/x", needs: []string{"a/y"}}, {id: "a/y"}})
			s[1].After = []string{"a/x"}
			return s
		}(), "dependency cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.steps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

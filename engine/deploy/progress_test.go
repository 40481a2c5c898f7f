package deploy

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/testtool"
)

func TestProgressLines(t *testing.T) {
	events := []Event{
		{Machine: "cinnabar", Step: "cinnabar/build", Action: "build", Kind: EventStarted},
		{Machine: "galena", Step: "galena/build", Action: "build", Kind: EventStarted},
		{Machine: "cinnabar", Step: "cinnabar/build", Action: "build", Kind: EventSucceeded, Duration: 12340 * time.Millisecond},
		{Machine: "cinnabar", Step: "cinnabar/copy", Action: "copy", Kind: EventStarted},
		{Machine: "cinnabar", Step: "cinnabar/copy", Action: "copy", Kind: EventFailed, Duration: 1200 * time.Millisecond,
			Err: errors.New("exit status 1\nerror: cannot connect")},
		{Machine: "cinnabar", Step: "cinnabar/activate", Action: "activate", Kind: EventSkipped, Cause: "cinnabar/copy"},
		{Machine: "cinnabar", Step: "cinnabar/copy", Kind: EventDone, Outcome: OutcomeFailed,
			Err: errors.New("exit status 1\nerror: cannot connect"), Duration: 13540 * time.Millisecond},
		{Machine: "electrum", Step: "electrum/activate", Action: "activate", Kind: EventSkipped, Cause: "cinnabar/copy"},
		{Machine: "electrum", Step: "cinnabar/copy", Kind: EventDone, Outcome: OutcomeSkipped},
		{Machine: "galena", Step: "galena/build", Action: "build", Kind: EventFailed, Duration: 2 * time.Second, Err: context.Canceled},
		{Machine: "galena", Step: "galena/copy", Action: "copy", Kind: EventNotStarted},
		{Machine: "galena", Step: "galena/build", Kind: EventDone, Outcome: OutcomeCancelled, Err: context.Canceled, Duration: 2 * time.Second},
		{Machine: "scheelite", Step: "scheelite/check-http", Action: "check", Kind: EventStarted},
		{Machine: "scheelite", Step: "scheelite/check-http", Action: "check", Kind: EventSucceeded, Duration: 80 * time.Second},
		{Machine: "scheelite", Step: "scheelite/rollback", Action: "rollback", Kind: EventNotStarted},
		{Machine: "scheelite", Kind: EventDone, Outcome: OutcomePartial, Duration: 80 * time.Second},
		{Machine: "stibnite", Step: "stibnite/build", Action: "build", Kind: EventNotStarted},
		{Machine: "stibnite", Kind: EventDone, Outcome: OutcomeNotStarted},
		{Machine: "blackphos", Kind: EventDone, Outcome: OutcomeOK, Duration: 5 * time.Second},
		{Machine: "electrum", Step: "electrum/activate", Action: "activate", Kind: EventSucceeded, Duration: 3 * time.Second,
			Err: &UnitsFailedError{Units: []string{"nginx.service"}}},
		{Machine: "electrum", Step: "electrum/activate", Kind: EventDone, Outcome: OutcomeDegraded, Duration: 4 * time.Second,
			Err: &UnitsFailedError{Units: []string{"nginx.service"}}},
	}
	want := `cinnabar: build started
galena: build started
cinnabar: build ok 12.3s
cinnabar: copy started
cinnabar: copy failed 1.2s: exit status 1 …
cinnabar: activate skipped: needs cinnabar/copy, which failed
cinnabar: done: failed at copy 13.5s: exit status 1 …
electrum: activate skipped: needs cinnabar/copy, which failed
electrum: done: skipped: cinnabar/copy failed
galena: build failed 2.0s: context canceled
galena: copy not started
galena: done: cancelled at build 2.0s: context canceled
scheelite: check-http started
scheelite: check-http ok 1m20s
scheelite: rollback not started
scheelite: done: partial 1m20s
stibnite: build not started
stibnite: done: not started
blackphos: done: ok 5.0s
electrum: activate done 3.0s, but: the new system is active, but units failed: nginx.service (see systemctl status nginx.service on the machine)
electrum: done: degraded at activate 4.0s: the new system is active, but units failed: nginx.service (see systemctl status nginx.service on the machine)
`
	var b bytes.Buffer
	ev, done := Progress(&b, false)
	for _, e := range events {
		ev(e)
	}
	done()
	if b.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", b.String(), want)
	}
}

// Progress as Execute's Events: every step and machine gets its lines.
func TestProgressExecute(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		t.Run(map[bool]string{false: "lines", true: "terminal"}[terminal], func(t *testing.T) {
			var b testtool.SyncBuffer
			ev, done := Progress(&b, terminal)
			specs := with(append(append(chain("cinnabar", "build", "copy", "activate"), chain("galena", "build", "copy")...),
				chain("electrum", "build")...), "galena/copy", fail("no route to host"))
			specs = with(specs, "cinnabar/build", sleepFor(300*time.Millisecond))
			s := Execute(context.Background(), makeSteps(newTrace(), specs), ExecOptions{Events: ev})
			done()
			done() // twice is fine
			ev(Event{Machine: "late", Kind: EventStarted})
			if !s.Failed() {
				t.Error("Failed() = false")
			}
			out := b.String()
			var want []string
			if terminal {
				want = []string{"cinnabar", "ok ", "galena", "failed at copy", "no route to host", "electrum", "\x1b["}
			} else {
				want = []string{
					"cinnabar: build started\n", "cinnabar: activate ok ", "cinnabar: done: ok ",
					"galena: copy failed ", "galena: done: failed at copy ", "electrum: done: ok ",
				}
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			if terminal && strings.Contains(out, "late") {
				t.Errorf("an event after done was shown:\n%s", out)
			}
		})
	}
}

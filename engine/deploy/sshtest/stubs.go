package sshtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Stubs is a directory of stand-in programs (nix, nix-env, systemd-run,
// ...) that a test puts first on PATH: on a Server's remote login PATH,
// or on the local one through Env.
//
// A recorder stub (Record) appends its argv to a log and then does what
// the test told it: print something (Output), fail (Fail), take a while
// (Sleep) or hang until released (Hang). Behaviours live in control files
// next to the log, so a test changes them between calls, even while a
// deploy runs, without rewriting the stub.
type Stubs struct {
	// StubDir holds the stub programs.
	StubDir string
	// state holds the call logs (calls/<name>, calls/all) and the
	// behaviour files (ctl/<name>.exit, .sleep, .hang, .stdout).
	state string
	store string
	t     testing.TB
}

// NewStubs makes an empty stub directory, removed when the test ends.
func NewStubs(t testing.TB) *Stubs {
	t.Helper()
	root := t.TempDir()
	s := &Stubs{
		StubDir: filepath.Join(root, "bin"),
		state:   filepath.Join(root, "state"),
		store:   filepath.Join(root, "store"),
		t:       t,
	}
	for _, d := range []string{s.StubDir, filepath.Join(s.state, "calls"), filepath.Join(s.state, "ctl"), s.store} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Env is the environment addition that puts the stubs first on PATH for
// local commands (deploy.SSHRunner.Env).
func (s *Stubs) Env() []string {
	return []string{"PATH=" + s.StubDir + string(os.PathListSeparator) + os.Getenv("PATH")}
}

// Stub installs name as a shell script (#!/bin/sh unless script starts
// with #!). It records nothing.
func (s *Stubs) Stub(name, script string) {
	s.t.Helper()
	s.write(filepath.Join(s.StubDir, name), script)
}

// Record installs name as a recorder stub: every call appends its argv
// to the log Calls reads, then behaves as Output, Fail, Sleep and Hang
// say, and exits 0.
func (s *Stubs) Record(name string) { s.t.Helper(); s.RecordScript(name, "") }

// RecordScript is Record, finishing with script (sh, the call's
// arguments in "$@") instead of exiting 0, unless told to fail.
func (s *Stubs) RecordScript(name, script string) {
	s.t.Helper()
	s.write(filepath.Join(s.StubDir, name), s.recorder(name, script))
}

// SystemdRunScript makes a systemd-run recorder run the command it
// wraps, as systemd-run --wait would: RecordScript("systemd-run",
// SystemdRunScript). Options before the command are skipped. It does not
// know timers: RecordDeploy's systemd-run does (systemdRunScript).
const SystemdRunScript = `while [ $# -gt 0 ]; do
	case $1 in
	--) shift; break ;;
	-p|--property|-u|--unit|-E|--setenv|--description|--slice|--uid|--gid|--nice|--working-directory|-M|--machine|-H|--host|--service-type|--on-active|--on-calendar|-t|--timer-property|--path-property|--socket-property)
		shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
exec "$@"`

// systemdRunScript is SystemdRunScript that also keeps the books of
// transient units as systemd does, and plays transient timers.
//
// A service (--unit=<U>, U.service unless named otherwise) is loaded
// while its command runs: starting it again then fails as the real
// systemd-run does ("Failed to start transient service unit: Unit
// U.service already exists.", exit 1). It is unloaded when the command
// ends, unless it failed without --collect: then it stays, failed,
// until "systemctl reset-failed U.service". --wait waits for the
// command and exits with its status, as systemd-run --wait does; a
// command whose ssh session drops goes on, as a unit would.
//
// With --on-active=<N>s the command runs N seconds later, in the
// background, unless "systemctl stop U.timer" ran in between or the
// test is over (its stubs are gone, and the command would find the real
// programs); either way the timer then ends, which TimerEnded reports.
// Like a
// systemd unit, the delayed command outlives the ssh session and Stop:
// it leaves sshd's process tree, and its PATH does not start with the
// stubs' directory, by which Stop finds the host's orphans.
func (s *Stubs) systemdRunScript() string {
	timers := shQuote(filepath.Join(s.state, "timers"))
	units := s.unitsDir()
	return `unit= delay= wait= collect= description=
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; break ;;
	--unit=*) unit=${1#--unit=}; shift ;;
	-u|--unit) unit=$2; shift 2 ;;
	--description=*) description=${1#--description=}; shift ;;
	--description) description=$2; shift 2 ;;
	--on-active=*) delay=${1#--on-active=}; delay=${delay%s}; shift ;;
	--wait) wait=1; shift ;;
	-G|--collect) collect=1; shift ;;
	-p|--property|-E|--setenv|--slice|--uid|--gid|--nice|--working-directory|-M|--machine|-H|--host|--service-type|--on-active|--on-calendar|-t|--timer-property|--path-property|--socket-property)
		shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
if [ -n "$delay" ]; then
	mkdir -p ` + timers + `
	rm -f ` + timers + `/"$unit.stopped" ` + timers + `/"$unit.ended"
	(PATH="/systemd-timer:$PATH" setsid sh -c 'sleep "$1"; shift; t=$1; shift; [ -d "${t%/*}" ] || exit 0; [ -e "$t" ] || "$@"; [ -d "${t%/*}" ] && : > "${t%.stopped}.ended"' timer "$delay" ` + timers + `/"$unit.stopped" "$@" </dev/null >/dev/null 2>&1 &)
	exit 0
fi
[ -n "$unit" ] || unit=run-u$$
case $unit in *.service) ;; *) unit=$unit.service ;; esac
u=` + units + `/$unit
mkdir -p ` + units + `
if ! mkdir "$u" 2>/dev/null; then
	# Loaded: refused, unless its command is gone (killed with its host)
	# without leaving it failed: systemd would have unloaded it.
	if [ ! -e "$u/failed" ] && ! kill -0 "$(cat "$u/pid" 2>/dev/null)" 2>/dev/null; then
		rm -rf "$u"
		mkdir "$u"
	else
		echo "Failed to start transient service unit: Unit $unit already exists." >&2
		exit 1
	fi
fi
[ -n "$description" ] || description="$*"
printf '%s\n' "$description" > "$u/description"
"$@" &
pid=$!
echo $pid > "$u/pid"
if [ -z "$wait" ]; then exit 0; fi
wait $pid
rc=$?
if [ $rc = 0 ] || [ -n "$collect" ]; then rm -rf "$u"; else : > "$u/failed"; fi
exit $rc`
}

// systemctlScript plays, on systemdRunScript's books: "stop U.timer";
// "is-active U" (active while loaded and running, failed, or inactive
// with status 3, as for a unit systemd does not know); "show -p
// Description --value U"; "reset-failed U" (unloads a failed unit); and
// "--failed" (the units FailedUnits names, as --plain --no-legend prints
// them).
func (s *Stubs) systemctlScript() string {
	timers := shQuote(filepath.Join(s.state, "timers"))
	units := s.unitsDir()
	failed := shQuote(filepath.Join(s.state, "failed-units"))
	return `case " $* " in *" --failed "*|*" --state=failed "*)
	if [ -f ` + failed + ` ]; then while read -r u; do printf '%s loaded failed failed %s\n' "$u" "$u"; done < ` + failed + `; fi
	exit 0 ;;
esac
last=; for a; do last=$a; done
u=` + units + `/$last
case $1 in
stop)
	shift
	mkdir -p ` + timers + `
	for u; do case $u in *.timer) : > ` + timers + `/"${u%.timer}.stopped" ;; esac; done ;;
is-active)
	if [ -e "$u/failed" ]; then echo failed; exit 3; fi
	if [ -d "$u" ] && kill -0 "$(cat "$u/pid" 2>/dev/null)" 2>/dev/null; then echo active; exit 0; fi
	echo inactive; exit 3 ;;
show)
	if [ -d "$u" ]; then cat "$u/description"; else echo; fi ;;
reset-failed)
	if [ -e "$u/failed" ]; then rm -rf "$u"; exit 0; fi
	echo "Failed to reset failed state of unit $last: Unit $last not loaded." >&2; exit 1 ;;
esac`
}

// unitsDir is, in shell, the folder of the transient units of the host
// a stub runs on: one per port the ssh session came in on (the last
// field of SSH_CONNECTION; see Server.AddHosts), "local" outside ssh.
func (s *Stubs) unitsDir() string {
	return shQuote(filepath.Join(s.state, "units")) + `/"$(h=${SSH_CONNECTION##* }; echo "${h:-local}")"`
}

// FailedUnits makes "systemctl --failed" list units, until called again
// (with none: no failed unit).
func (s *Stubs) FailedUnits(units ...string) {
	s.t.Helper()
	path := filepath.Join(s.state, "failed-units")
	if len(units) == 0 {
		os.Remove(path)
		return
	}
	if err := os.WriteFile(path, []byte(strings.Join(units, "\n")+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// RecordDeploy installs recorders for the programs a deploy runs by
// name: nix, nix-env, nix-store, nix-daemon, nixos-anywhere and
// systemctl (systemctlScript), and systemd-run (systemdRunScript) and
// sudo, which then run the command they wrap (sudo as the real one
// does for a user allowed to without a password; SudoNeedsPassword).
// switch-to-configuration and activate come with StorePath.
func (s *Stubs) RecordDeploy() {
	s.t.Helper()
	for _, n := range []string{"nix", "nix-env", "nix-store", "nix-daemon", "nixos-anywhere"} {
		s.Record(n)
	}
	s.RecordScript("systemctl", s.systemctlScript())
	s.RecordScript("systemd-run", s.systemdRunScript())
	password := shQuote(filepath.Join(s.state, "ctl", "sudo.password"))
	s.RecordScript("sudo", `n=
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; break ;;
	-n|--non-interactive) n=1; shift ;;
	-u|-g|-C|-D|-h|-p|-r|-t|-U) shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
if [ -f `+password+` ]; then
	[ -n "$n" ] || echo "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper" >&2
	echo "sudo: a password is required" >&2
	exit 1
fi
exec "$@"`)
}

// SudoNeedsPassword makes RecordDeploy's sudo behave as the real one
// for a user without NOPASSWD over ssh without a terminal (sudo 1.9):
// it runs nothing, says "sudo: a password is required" (after "a
// terminal is required to read the password" without -n) and exits 1.
// Reset("sudo") allows it again.
func (s *Stubs) SudoNeedsPassword() { s.control("sudo", "password", "") }

// StorePath makes a fake system closure: a directory named like a store
// path (under the stubs' directory, not /nix/store) whose
// bin/switch-to-configuration, bin/activate and activate are recorders
// logging as "switch-to-configuration" and "activate". Calls' argv[0]
// tells which store path ran.
func (s *Stubs) StorePath(name string) string {
	s.t.Helper()
	sum := sha256.Sum256([]byte(name))
	p := filepath.Join(s.store, hex.EncodeToString(sum[:16])+"-"+name)
	if err := os.MkdirAll(filepath.Join(p, "bin"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.write(filepath.Join(p, "bin", "switch-to-configuration"), s.recorder("switch-to-configuration", ""))
	s.write(filepath.Join(p, "bin", "activate"), s.recorder("activate", ""))
	s.write(filepath.Join(p, "activate"), s.recorder("activate", ""))
	return p
}

// Fail makes name's recorder exit with code (after logging the call and
// a line on stderr), until Reset.
func (s *Stubs) Fail(name string, code int) { s.control(name, "exit", strconv.Itoa(code)) }

// Sleep makes name's recorder take d before it finishes, until Reset.
func (s *Stubs) Sleep(name string, d time.Duration) {
	s.control(name, "sleep", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
}

// Hang makes name's recorder wait until Release, Reset or the end of
// the test (it polls, so hung stubs never outlive the test by long).
func (s *Stubs) Hang(name string) { s.control(name, "hang", "") }

// Release lets hung calls of name (and later ones) go on.
func (s *Stubs) Release(name string) { s.remove(name, "hang") }

// Output makes name's recorder print stdout (for example nix build's
// store path, with its newline), until Reset.
func (s *Stubs) Output(name, stdout string) { s.control(name, "stdout", stdout) }

// Reset makes name's recorder succeed silently again.
func (s *Stubs) Reset(name string) {
	for _, k := range []string{"exit", "sleep", "hang", "stdout", "password"} {
		s.remove(name, k)
	}
}

// Calls returns the argv of every call of name's recorder so far, in
// order; argv[0] is the path it was run as.
func (s *Stubs) Calls(name string) [][]string {
	s.t.Helper()
	return s.readLog(filepath.Join(s.state, "calls", name))
}

// AllCalls returns the calls of every recorder, in the order they
// started.
func (s *Stubs) AllCalls() [][]string {
	s.t.Helper()
	return s.readLog(filepath.Join(s.state, "calls", "all"))
}

func (s *Stubs) readLog(path string) [][]string {
	s.t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	calls, err := splitRecords(string(data))
	if err != nil {
		s.t.Fatalf("%s: %v", path, err)
	}
	return calls
}

// recorder is the script of a recorder stub logging as name. Quoting is
// done in the shell itself (no subprocess per argument), so that a stub
// costs one fork of sh; each line goes out in one append, so that
// concurrent calls do not interleave within a line.
func (s *Stubs) recorder(name, script string) string {
	ctl := shQuote(filepath.Join(s.state, "ctl", name))
	log := shQuote(filepath.Join(s.state, "calls", name))
	all := shQuote(filepath.Join(s.state, "calls", "all"))
	if script == "" {
		script = "exit 0"
	}
	return `# sshtest recorder stub: logs its argv, then does what the test says.
q() {
	s=$1 r=
	while :; do
		case $s in
		*\'*) r="$r${s%%\'*}'\\''"; s=${s#*\'} ;;
		*) r="$r$s"; break ;;
		esac
	done
	line="$line'$r'"
}
line=
q "$0"
for a do line="$line "; q "$a"; done
printf '%s\n' "$line" >>` + log + `
printf '%s\n' "$line" >>` + all + `
c=` + ctl + `
if [ -f "$c.sleep" ]; then sleep "$(cat "$c.sleep")"; fi
while [ -f "$c.hang" ]; do sleep 0.05; done
if [ -f "$c.stdout" ]; then cat "$c.stdout"; fi
if [ -f "$c.exit" ]; then
	code=$(cat "$c.exit")
	echo "` + name + `: sshtest stub failing with exit $code" >&2
	exit "$code"
fi
` + script + "\n"
}

func (s *Stubs) write(path, script string) {
	s.t.Helper()
	if !strings.HasPrefix(script, "#!") {
		script = "#!/bin/sh\n" + script
	}
	if !strings.HasSuffix(script, "\n") {
		script += "\n"
	}
	// Rename into place: a stub being replaced while it runs stays whole.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Stubs) control(name, kind, value string) {
	s.t.Helper()
	path := filepath.Join(s.state, "ctl", name+"."+kind)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Stubs) remove(name, kind string) {
	s.t.Helper()
	if err := os.Remove(filepath.Join(s.state, "ctl", name+"."+kind)); err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// splitRecords splits a call log into records of words: words are
// separated by blanks and records by unquoted newlines, as sh would read
// them (only the quoting the recorder writes: '...' and \x).
func splitRecords(log string) ([][]string, error) {
	var (
		records [][]string
		words   []string
		word    strings.Builder
		inWord  bool
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(log); i++ {
		switch c := log[i]; c {
		case ' ', '\t':
			endWord()
		case '\n':
			endWord()
			if words != nil {
				records = append(records, words)
			}
			words = nil
		case '\'':
			end := strings.IndexByte(log[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote at byte %d", i)
			}
			word.WriteString(log[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case '\\':
			if i+1 < len(log) {
				i++
				word.WriteByte(log[i])
			}
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endWord()
	if words != nil {
		records = append(records, words)
	}
	return records, nil
}

// TimerEnded reports whether the transient timer unit (systemd-run
// --unit=<unit> --on-active=...) has ended: it fired and its command
// returned, or it found itself stopped. A test waits for it instead of
// sleeping past the timer's delay.
func (s *Stubs) TimerEnded(unit string) bool {
	unit = strings.TrimSuffix(unit, ".timer")
	_, err := os.Stat(filepath.Join(s.state, "timers", unit+".ended"))
	return err == nil
}

// WaitFor polls cond (every 20ms) until it holds, and fails the test,
// naming what, if it does not within a minute: the bound is only there
// to end a broken test, never a timing the test depends on.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

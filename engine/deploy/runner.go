package deploy

// The Runner of real deploys: programs run as subprocesses, remote ones
// through the OpenSSH client, so everything the user configured for ssh
// (~/.ssh/config, ProxyJump, the agent, known hosts) applies unchanged and
// tests substitute the programs by putting stubs first on a PATH.
//
// Remote commands travel as one shell-quoted line, because that is all
// ssh can carry: the remote login shell splits it again. Quoting every
// argument in single quotes makes that split reproduce argv exactly,
// whatever the argument contains.
//
// Connections to one host share a ControlMaster, so a deploy's half
// dozen ssh commands per machine pay for one handshake; NixSSHOpts hands
// the same options to `nix copy --to ssh-ng://`, which then rides the
// same master. Masters outlive the commands (ControlPersist) and Close
// ends them.
//
// Every command runs in its own process group, so cancelling its context
// kills the command and whatever it started (ssh's ProxyCommand, nix's
// builders) instead of leaving orphans behind; on Linux it dies with
// fleet, and what it leaves after a kill -9 is stopped by the next run
// (plaintext.Supervise, with ControlDir as the mark).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleet-nix/fleet/engine/plaintext"
)

// SSHRunner runs local programs as subprocesses and remote ones through
// the OpenSSH client. The zero value works: ssh from PATH, the user's
// configuration, no connection sharing.
type SSHRunner struct {
	// SSH is the ssh client program (default "ssh").
	SSH string
	// Options are extra ssh arguments placed before the destination, for
	// example "-o", "ConnectTimeout=10" or "-i", keyfile. They come before
	// fleet's own -o options, and ssh keeps the first value it sees, so
	// they override them.
	Options []string
	// ConfigFile, when set, is the only ssh configuration file read (ssh
	// -F): neither ~/.ssh/config nor /etc/ssh/ssh_config apply. Empty, the
	// default, keeps the user's configuration, as fleet's commands want.
	// Tests set os.DevNull, so that a developer's ~/.ssh/config (a
	// ProxyCommand, a Match exec, another identity) cannot reach into them.
	ConfigFile string
	// ControlDir, when set, holds ControlMaster sockets (<dir>/%C): all
	// commands to one host share one connection, kept 60 s after the last
	// use. The socket path must fit a Unix socket (about 100 bytes), so
	// keep the directory short (plaintext.MkdirTempShort("fleet-ssh-")).
	ControlDir string
	// Env is added to this process's environment for every command
	// (NAME=value); a PATH here is also where Local finds programs.
	Env []string
	// ConnectTimeout bounds connecting to a host and the ssh handshake
	// (ssh's ConnectTimeout, whole seconds; default 15s): a host that does
	// not answer, or accepts the connection and never speaks ssh, fails
	// instead of hanging.
	ConnectTimeout time.Duration
	// ServerAliveInterval and ServerAliveCountMax make ssh ask a host
	// that has been silent for an interval whether it is still there, and
	// give up after that many unanswered asks (defaults 15s and 3): a host
	// that stops answering mid-command fails within about a minute.
	ServerAliveInterval time.Duration
	ServerAliveCountMax int

	mu       sync.Mutex
	masters  map[string][]string      // destination arguments of each host used, for Close
	starting map[string]chan struct{} // closed when the host's master connection start ended
}

// Defaults of the SSHRunner's timeouts.
const (
	DefaultConnectTimeout      = 15 * time.Second
	DefaultServerAliveInterval = 15 * time.Second
	DefaultServerAliveCountMax = 3
)

// masterStartMax bounds a master connection start (connect, handshake,
// authentication) beyond the caller's context.
const masterStartMax = 30 * time.Second

var _ Runner = (*SSHRunner)(nil)

// controlPathMax bounds len(ControlDir)+"/"+%C (40 hex digits) plus the
// ".XXXXXXXXXXXXXXXX" ssh appends while it binds the socket, to fit
// sockaddr_un's sun_path on macOS (104) and Linux (108).
const controlPathMax = 104 - 1

// Local runs argv on this machine, without a shell.
func (r *SSHRunner) Local(ctx context.Context, argv []string, stdio IO) error {
	if len(argv) == 0 {
		return errors.New("local command: empty argv")
	}
	env := r.env()
	if !hasEnv(r.Env, "NIX_SSHOPTS") || len(stdio.NixSSHOpts) > 0 {
		// nix copy --to ssh-ng:// and friends start their own ssh: give them
		// ours, after any the user set (ssh keeps the first value), and
		// the command's own (a port).
		opts := NixSSHOpts(r)
		if set := envValue(r.Env, "NIX_SSHOPTS"); set != "" {
			opts = set
		} else if user := os.Getenv("NIX_SSHOPTS"); user != "" {
			opts = user + " " + opts
		}
		for _, o := range stdio.NixSSHOpts {
			opts += " " + ShellQuote(o)
		}
		env = append(env, "NIX_SSHOPTS="+opts)
	}
	prog, err := runnerLookPath(argv[0], env)
	if err != nil {
		return &CommandError{Argv: argv, ExitCode: -1, Err: err}
	}
	return r.run(ctx, "", argv, prog, argv, env, stdio)
}

// Remote runs argv on target ("user@host", "host", "user@host:port",
// "user@[v6addr]:port") as one shell-quoted line, so the remote shell sees
// exactly argv. ssh exits with the remote command's status, or 255 when it
// could not run it at all.
func (r *SSHRunner) Remote(ctx context.Context, target string, argv []string, stdio IO) error {
	if len(argv) == 0 {
		return fmt.Errorf("ssh %s: empty argv", target)
	}
	dest, err := sshDestination(target)
	if err != nil {
		return &CommandError{Target: target, Argv: argv, ExitCode: -1, Err: err}
	}
	if r.ControlDir != "" {
		if n := len(r.ControlDir) + 1 + 40 + 17; n > controlPathMax {
			return &CommandError{Target: target, Argv: argv, ExitCode: -1,
				Err: fmt.Errorf("ControlDir %s is too long for a Unix socket path (%d > %d bytes): use a shorter directory", r.ControlDir, n, controlPathMax)}
		}
		if err := os.MkdirAll(r.ControlDir, 0o700); err != nil {
			return &CommandError{Target: target, Argv: argv, ExitCode: -1, Err: err}
		}
		r.mu.Lock()
		if r.masters == nil {
			r.masters = map[string][]string{}
		}
		r.masters[strings.Join(dest, "\x00")] = dest
		r.mu.Unlock()
	}
	ssh := r.ssh()
	if r.ControlDir != "" {
		r.startMaster(ctx, ssh, dest)
	}
	cmd := append([]string{ssh}, r.sshOptions()...)
	cmd = append(cmd, "-T")
	cmd = append(cmd, dest...)
	cmd = append(cmd, "--", ShellJoin(argv))
	env := r.env()
	prog, err := runnerLookPath(ssh, env)
	if err != nil {
		return &CommandError{Target: target, Argv: argv, ExitCode: -1, Err: err}
	}
	return r.run(ctx, target, argv, prog, cmd, env, stdio)
}

// startMaster opens the host's master connection once, before the first
// command: without it, the commands that start at the same moment (one
// per step of every machine on that host) would each make a connection
// and authenticate, and only the last would be kept. It backgrounds after
// authenticating (-f -N); if it fails, commands still connect on their
// own (ControlMaster=auto). The start runs under the first caller's
// context (and at most masterStartMax); the callers that wait for it stop
// waiting when their own context ends.
func (r *SSHRunner) startMaster(ctx context.Context, ssh string, dest []string) {
	key := strings.Join(dest, "\x00")
	r.mu.Lock()
	if r.starting == nil {
		r.starting = map[string]chan struct{}{}
	}
	started, first := r.starting[key], false
	if started == nil {
		started, first = make(chan struct{}), true
		r.starting[key] = started
	}
	r.mu.Unlock()
	if !first {
		select {
		case <-started:
		case <-ctx.Done():
		}
		return
	}
	defer close(started)
	args := append(append([]string{}, r.sshOptions()...), "-o", "ControlMaster=yes", "-f", "-N")
	args = append(args, dest...)
	env := r.env()
	prog, err := runnerLookPath(ssh, env)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, masterStartMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	// The master backgrounds itself (-f), leaving this process: its
	// environment mark is what lets a later run stop it if this one is
	// killed (ControlPersist ends it 60 s after its last use otherwise).
	plaintext.Supervise(cmd, r.ControlDir)
	_ = cmd.Run()
}

// Close ends the ControlMaster connections this runner opened (ssh -O
// exit). Commands still running on them fail.
func (r *SSHRunner) Close() {
	r.mu.Lock()
	masters := r.masters
	r.masters = nil
	r.mu.Unlock()
	if r.ControlDir == "" || len(masters) == 0 {
		return
	}
	ssh := r.ssh()
	env := r.env()
	prog, err := runnerLookPath(ssh, env)
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, dest := range masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			args := append(r.sshOptions(), "-O", "exit")
			cmd := exec.CommandContext(ctx, prog, append(args, dest...)...)
			cmd.Env = env
			// No master (never started, or gone with the host): nothing to do.
			_ = cmd.Run()
		}()
	}
	wg.Wait()
}

// NixSSHOpts is the value of NIX_SSHOPTS that makes nix's own ssh (nix
// copy --to ssh-ng://, --store ssh-ng://) use this runner's options and
// control socket. nix splits it at whitespace; arguments containing
// whitespace are shell-quoted, which newer nix versions understand. Local
// sets it for the commands it runs unless Env sets NIX_SSHOPTS.
func NixSSHOpts(r *SSHRunner) string {
	var parts []string
	for _, o := range r.sshOptions() {
		parts = append(parts, ShellQuote(o))
	}
	return strings.Join(parts, " ")
}

// sshOptions are the arguments before the destination, shared by Remote,
// Close and NixSSHOpts so they name the same control socket.
func (r *SSHRunner) sshOptions() []string {
	var opts []string
	if r.ConfigFile != "" {
		opts = append(opts, "-F", r.ConfigFile)
	}
	opts = append(opts, r.Options...)
	// Never prompt: a deploy has no one to answer, and a prompt would hang.
	opts = append(opts, "-o", "BatchMode=yes")
	// Nor wait forever for a host that does not answer.
	opts = append(opts,
		"-o", "ConnectTimeout="+sshSeconds(r.ConnectTimeout, DefaultConnectTimeout),
		"-o", "ServerAliveInterval="+sshSeconds(r.ServerAliveInterval, DefaultServerAliveInterval),
		"-o", "ServerAliveCountMax="+strconv.Itoa(cmp.Or(max(r.ServerAliveCountMax, 0), DefaultServerAliveCountMax)))
	if r.ControlDir != "" {
		opts = append(opts,
			"-o", "ControlMaster=auto",
			"-o", "ControlPath="+filepath.Join(r.ControlDir, "%C"),
			"-o", "ControlPersist=60s")
	}
	return opts
}

// sshSeconds is d (def when not positive) in whole seconds for an ssh
// option, rounded up and at least 1.
func sshSeconds(d, def time.Duration) string {
	if d <= 0 {
		d = def
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

func (r *SSHRunner) ssh() string {
	if r.SSH != "" {
		return r.SSH
	}
	return "ssh"
}

func (r *SSHRunner) env() []string {
	return append(os.Environ(), r.Env...)
}

// run starts prog with args in a process group of its own and waits.
func (r *SSHRunner) run(ctx context.Context, target string, argv []string, prog string, args []string, env []string, stdio IO) error {
	cmd := exec.CommandContext(ctx, prog, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Env = env
	plaintext.Supervise(cmd, r.ControlDir)
	tail := &stderrTail{}
	stderr := io.Writer(tail)
	if stdio.Stderr != nil {
		stderr = io.MultiWriter(stdio.Stderr, tail)
	}
	var s runnerStreams
	err := s.attach(cmd, stdio.Stdin, stdio.Stdout, stderr)
	if err == nil {
		err = cmd.Start()
		s.started()
		if err == nil {
			err = cmd.Wait()
		}
	}
	s.finish(ctx.Err() != nil)
	if err == nil {
		return nil
	}
	e := &CommandError{Target: target, Argv: argv, ExitCode: -1, Stderr: tail.lines(stderrLines), Err: err}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		e.ExitCode = exit.ExitCode()
	}
	if ctx.Err() != nil {
		e.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		if errors.Is(err, ctx.Err()) {
			e.Err = ctx.Err()
		}
	}
	return e
}

// runnerStreams connects a command's stdio through pipes of our own
// rather than exec's. The reason is ssh multiplexing: a mux client hands
// its stdin, stdout and stderr to the ControlMaster, which keeps them
// until the remote command ends, even after the client was killed. exec
// would wait for those pipes to close; here, once the command exited,
// output is drained for a while (briefly when cancelled) and then cut.
type runnerStreams struct {
	child   []*os.File      // the child's ends, closed once it started
	ours    []*os.File      // our ends, closed in finish
	copying []chan struct{} // output copiers, done at EOF
}

// drainAfterExit bounds how long output may continue after the command
// exited (a ControlMaster finishing its writes), drainAfterCancel the same
// after a cancellation.
const (
	drainAfterExit   = 5 * time.Second
	drainAfterCancel = 200 * time.Millisecond
)

func (s *runnerStreams) attach(cmd *exec.Cmd, stdin io.Reader, stdout, stderr io.Writer) error {
	switch in := stdin.(type) {
	case nil:
	case *os.File:
		cmd.Stdin = in
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdin = pr
		s.child = append(s.child, pr)
		s.ours = append(s.ours, pw)
		// Not waited for: it may be blocked reading stdin, which the
		// command no longer wants.
		go func() {
			io.Copy(pw, in)
			pw.Close()
		}()
	}
	for i, w := range []io.Writer{stdout, stderr} {
		var f *os.File
		switch out := w.(type) {
		case nil:
		case *os.File:
			f = out
		default:
			pr, pw, err := os.Pipe()
			if err != nil {
				return err
			}
			f = pw
			s.child = append(s.child, pw)
			s.ours = append(s.ours, pr)
			done := make(chan struct{})
			s.copying = append(s.copying, done)
			go func() {
				io.Copy(out, pr)
				close(done)
			}()
		}
		if f != nil {
			if i == 0 {
				cmd.Stdout = f
			} else {
				cmd.Stderr = f
			}
		}
	}
	return nil
}

// started closes the child's ends in this process: only the command (and
// whoever it hands them to) holds them now, so EOF means it is done.
func (s *runnerStreams) started() {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
}

// finish waits for the output to end, at most drainAfterExit (or
// drainAfterCancel), then closes our ends; when it returns nothing writes
// to the command's writers any more.
func (s *runnerStreams) finish(cancelled bool) {
	s.started()
	wait := drainAfterExit
	if cancelled {
		wait = drainAfterCancel
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
drain:
	for _, done := range s.copying {
		select {
		case <-done:
		case <-timer.C:
			break drain
		}
	}
	for _, f := range s.ours {
		f.Close()
	}
	for _, done := range s.copying {
		<-done
	}
}

// CommandError is a command that failed.
type CommandError struct {
	// Target is the ssh destination, "" for a local command.
	Target string
	Argv   []string
	// ExitCode is the command's exit status (ssh's 255 when it could not
	// reach the host), -1 when it did not run or was killed.
	ExitCode int
	// Stderr holds the last lines the command wrote to stderr.
	Stderr string
	// Err is the cause: an *exec.ExitError, or the context's error when it
	// was cancelled.
	Err error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	if e.Target != "" && e.ExitCode == 255 && strings.Contains(e.Stderr, "timed out") {
		// First, so that a summary cut to one line still says it.
		b.WriteString("ssh " + e.Target + ": the connection timed out, the host did not answer (" +
			ShellJoin(e.Argv) + ": " + e.Err.Error() + ")")
	} else {
		if e.Target != "" {
			b.WriteString("ssh " + e.Target + " ")
		}
		b.WriteString(ShellJoin(e.Argv))
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
		if e.Target != "" && e.ExitCode == 255 {
			b.WriteString(" (ssh could not reach the host, or the command exited 255)")
		}
	}
	if e.Stderr != "" {
		lines := strings.Split(e.Stderr, "\n")
		if len(lines) == 1 {
			b.WriteString(": " + lines[0])
		} else {
			b.WriteString(", stderr ends with:")
			for _, l := range lines {
				b.WriteString("\n    " + l)
			}
		}
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

// shortCommandMax bounds the command line in Short.
const shortCommandMax = 40

// Short is the error in one line, for a table cell or a progress line:
// the command (without nix's --extra-experimental-features, cut short),
// how it ended, and the first line of what it said (the "error:" line of
// nix's error block, else the last line of stderr).
func (e *CommandError) Short() string {
	if e.Target != "" && e.ExitCode == 255 && strings.Contains(e.Stderr, "timed out") {
		first, _, _ := strings.Cut(e.Error(), "\n")
		if i := strings.Index(first, "): "); i >= 0 {
			first = first[:i+1]
		}
		return first
	}
	argv := e.Argv
	if len(argv) > len(nixFeatures) && argv[0] == "nix" && slices.Equal(argv[1:1+len(nixFeatures)], nixFeatures) {
		argv = append([]string{"nix"}, argv[1+len(nixFeatures):]...)
	}
	cmd := ShellJoin(argv)
	if r := []rune(cmd); len(r) > shortCommandMax {
		cmd = string(r[:shortCommandMax]) + "…"
	}
	var b strings.Builder
	if e.Target != "" {
		b.WriteString("ssh " + e.Target + " ")
	}
	b.WriteString(cmd + ": " + e.Err.Error())
	if e.Target != "" && e.ExitCode == 255 {
		b.WriteString(" (ssh could not reach the host, or the command exited 255)")
	}
	if e.Stderr != "" {
		line, _, _ := strings.Cut(e.Stderr, "\n")
		if !strings.HasPrefix(e.Stderr, "error:") {
			line = e.Stderr[strings.LastIndexByte(e.Stderr, '\n')+1:]
		}
		b.WriteString(": " + strings.TrimSpace(line))
	}
	return b.String()
}

// stderrTail keeps the end of a command's stderr for its error.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
}

// stderrTailMax is how much of the end of stderr is kept: enough for
// nix's error block with a builder's last log lines or an evaluation
// trace after its progress.
const stderrTailMax = 16 << 10

// stderrLines is how many lines of stderr a CommandError keeps.
const stderrLines = 10

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*stderrTailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-stderrTailMax:]...)
	}
	return len(p), nil
}

// lines returns what a person needs of the end of stderr, at most n
// lines: nix's error block (from the first line starting "error:" to
// the end) when there is one, else the last lines that are not nix's
// progress (what it builds, copies, fetches). Terminal escapes, lines
// redrawn with \r and blank lines are gone. A block longer than n keeps
// its first line and its end, where nix puts the innermost error.
func (t *stderrTail) lines(n int) string {
	t.mu.Lock()
	b := t.buf
	if len(b) > stderrTailMax {
		b = b[len(b)-stderrTailMax:]
	}
	text := ansiEscape.ReplaceAllString(string(b), "")
	t.mu.Unlock()
	var out []string
	first := -1
	for l := range strings.SplitSeq(text, "\n") {
		// ssh ends its lines with \r\n; a line redrawn in place is
		// what follows its last \r.
		l = strings.TrimSuffix(l, "\r")
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			l = l[i+1:]
		}
		l = strings.TrimRight(l, " \t")
		if strings.TrimSpace(l) == "" {
			continue
		}
		if first < 0 && strings.HasPrefix(l, "error:") {
			first = len(out)
		}
		out = append(out, l)
	}
	if first >= 0 {
		out = out[first:]
	} else {
		out = slices.DeleteFunc(out, func(l string) bool { return nixProgress.MatchString(l) })
		if len(out) > n {
			out = out[len(out)-n:]
		}
	}
	if len(out) > n && n >= 3 {
		left := len(out) - (n - 1)
		out = append([]string{out[0], fmt.Sprintf("… (%d lines left out)", left)}, out[left+1:]...)
	}
	return strings.Join(out, "\n")
}

// ansiEscape is a terminal escape sequence (colours, clearing a line).
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// nixProgress is a line of nix's progress on a stderr that is not a
// terminal: what it will build or fetch and the paths listed under that,
// what it builds, copies or fetches now, a progress counter.
var nixProgress = regexp.MustCompile(`^(these \d+ (derivations|paths) will be |this (derivation|path) will be |  /nix/store/\S+$|(building|copying|querying|fetching|downloading|unpacking|evaluating)\b.*\.\.\.$|\[\d+/\d+)`)

// sshDestination turns a target into ssh's destination arguments:
// [-p port] [user@]host.
// NixStoreURL is the ssh-ng:// store of target for nix, and the ssh
// options it needs (IO.NixSSHOpts): a port goes to ssh as -p, because
// Nix before 2.31 does not read one in the store URL.
func NixStoreURL(target string) (url string, sshOpts []string, err error) {
	dest, err := sshDestination(target)
	if err != nil {
		return "", nil, err
	}
	host := dest[len(dest)-1]
	if user, h, ok := strings.Cut(host, "@"); ok && strings.Contains(h, ":") {
		host = user + "@[" + h + "]"
	} else if !ok && strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if len(dest) == 3 && dest[0] == "-p" {
		return "ssh-ng://" + host, []string{"-p", dest[1]}, nil
	}
	return "ssh-ng://" + host, nil, nil
}

func sshDestination(target string) ([]string, error) {
	user, hostport, hasUser := strings.Cut(target, "@")
	if !hasUser {
		user, hostport = "", target
	}
	host, port, bracketed := hostport, "", false
	if strings.HasPrefix(hostport, "[") {
		end := strings.Index(hostport, "]")
		if end < 0 {
			return nil, fmt.Errorf("target %q: missing ] after an IPv6 address", target)
		}
		host, port, bracketed = hostport[1:end], "", true
		if rest := hostport[end+1:]; rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return nil, fmt.Errorf("target %q: want [address]:port", target)
			}
			port = rest[1:]
		}
	} else if strings.Count(hostport, ":") == 1 {
		host, port, _ = strings.Cut(hostport, ":")
	}
	switch {
	case host == "":
		return nil, fmt.Errorf("target %q: no host", target)
	case hasUser && user == "":
		return nil, fmt.Errorf("target %q: empty user", target)
	case strings.HasPrefix(host, "-") || strings.HasPrefix(user, "-"):
		// ssh would read it as an option.
		return nil, fmt.Errorf("target %q: host and user must not start with -", target)
	}
	if i := strings.IndexFunc(target, func(c rune) bool { return !targetChar(c) }); i >= 0 {
		return nil, fmt.Errorf("target %q: contains %q: whitespace, quotes and shell metacharacters are not allowed (want user@host[:port])", target, target[i:i+1])
	}
	if user != "" && !validUser(user) {
		return nil, fmt.Errorf("target %q: bad user name %q (letters, digits, _ . -; at most 64)", target, user)
	}
	if bracketed || strings.Contains(host, ":") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return nil, fmt.Errorf("target %q: bad IPv6 address %q", target, host)
		}
	} else if strings.Contains(host, "%") || !validHostName(host) {
		return nil, fmt.Errorf("target %q: bad host %q (want a host name or an IP address)", target, host)
	}
	var args []string
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return nil, fmt.Errorf("target %q: bad port %q", target, port)
		}
		args = append(args, "-p", port)
	}
	if user != "" {
		host = user + "@" + host
	}
	return append(args, host), nil
}

// ValidateTarget checks that target is user@host[:port] (user optional,
// host a host name, an IPv4 address or an [IPv6] address) with nothing ssh,
// nix or a shell would read as an option or a metacharacter: what
// Remote and NixStoreURL accept. Targets are validated before a deploy
// runs anything, so that no command is ever built from a bad one.
func ValidateTarget(target string) error {
	_, err := sshDestination(target)
	return err
}

// targetChar is a character a target may contain at all.
func targetChar(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.ContainsRune("._-@:[]%", c)
}

// validUser is a user name that is safe on a command line: POSIX's
// portable user name characters, not starting with - or .
func validUser(u string) bool {
	if len(u) > 64 || u[0] == '-' || u[0] == '.' {
		return false
	}
	return strings.Trim(u, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == ""
}

// validHostName is a DNS name (or an ssh config alias, which may hold _):
// labels of letters, digits, - and _, not starting with -, joined by
// dots, an optional final dot. IPv4 addresses are such names.
func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' ||
			strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			return false
		}
	}
	return true
}

// ShellQuote quotes s for a POSIX shell: unchanged when it holds only
// characters no shell treats specially, otherwise in single quotes.
func ShellQuote(s string) string {
	// A leading = is special to zsh (=cmd expands to its path).
	if s != "" && s[0] != '=' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellJoin quotes each argument and joins them with spaces: a POSIX
// shell splits the result back into argv.
func ShellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// runnerLookPath finds a program on the PATH of env (the last PATH=
// wins, as exec does), because exec.Command would search this process's
// PATH instead of the one the command gets.
func runnerLookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			if !filepath.IsAbs(p) {
				if abs, err := filepath.Abs(p); err == nil {
					p = abs
				}
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", file, exec.ErrNotFound)
}

// envValue is the value of name in env (NAME=value entries), or "".
func envValue(env []string, name string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, name+"="); ok {
			return v
		}
	}
	return ""
}

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

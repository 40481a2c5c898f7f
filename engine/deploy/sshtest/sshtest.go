// Package sshtest runs a real OpenSSH server on 127.0.0.1 for tests: the
// "machines" of deploy tests are logins on it whose nix, nix-env,
// systemd-run and switch-to-configuration are stub programs.
//
// A real sshd, not an in-process one, because what deploys depend on is
// OpenSSH's behaviour: the client's option parsing, how the remote shell
// splits a command line, exit statuses, ControlMaster sharing, what
// happens to a session when the host goes away. Each Server is Debian's
// /usr/sbin/sshd with a config, keys and log of its own in the test's
// temporary directory, on a port reserved for it while the test runs
// (freePort), stopped when the test ends.
//
// The remote login PATH starts with the server's StubDir, so a remote
// `nix-env ...` runs the stub the test installed. The login user's shell
// and its startup files run as on a real host; a ForceCommand then puts
// StubDir first again (startup files like to prepend) and evaluates the
// client's command line in that same shell.
//
// sshtest does not import deploy, so that deploy's own (internal) tests
// can use it; build a runner from the pieces:
//
//	srv := sshtest.Start(t)
//	srv.RecordDeploy()
//	r := &deploy.SSHRunner{Options: srv.ClientOptions(), ControlDir: srv.ControlDir()}
//	t.Cleanup(r.Close)
//	err := r.Remote(ctx, srv.Target(), []string{"nix-env", "--version"}, deploy.IO{})
//	calls := srv.Calls("nix-env")
package sshtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// Server is a running sshd. Its embedded Stubs are on the remote PATH.
type Server struct {
	*Stubs
	// Root is the server's directory: keys, sshd_config, sshd.log.
	Root string
	Port int
	// User is the login user: the one running the test.
	User string
	// Home is HOME in remote sessions (the login still starts in the
	// user's real home directory): empty, so the user's own shell
	// startup files do not run; put dotfiles here to test them.
	Home string
	// ClientKey is the private key that logs in; KnownHosts lists the
	// server's host key for [127.0.0.1]:Port.
	ClientKey  string
	KnownHosts string

	t          testing.TB
	sshd       string
	controlDir string
	hostPub    string
	// hosts are the ports of AddHosts.
	hosts []int

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd exits
	frozen  []int
	logFile *os.File
}

// Start starts an sshd for the test and stops it when the test ends. It
// skips the test when sshd or ssh is missing (fails under
// FLEET_REQUIRE_TOOLS=1).
func Start(t testing.TB) *Server {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if fi, err := os.Stat(sshd); err != nil || fi.Mode()&0o111 == 0 {
		sshd = testtool.Require(t, "sshd", "openssh-server")
	}
	testtool.Require(t, "ssh", "openssh-client")
	// sshd re-executes itself and refuses to start from a relative path.
	sshd, err := filepath.Abs(sshd)
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Stubs: NewStubs(t), Root: t.TempDir(), User: u.Username, t: t, sshd: sshd}
	if os.Geteuid() == 0 {
		// The privilege separation directory: sshd exits without it.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshd needs /run/sshd: %v", err)
		}
	}
	s.Home = filepath.Join(s.Root, "home")
	if err := os.Mkdir(s.Home, 0o700); err != nil {
		t.Fatal(err)
	}
	hostPub := s.writeKey("ssh_host_ed25519_key")
	clientPub := s.writeKey("client_ed25519_key")
	s.ClientKey = filepath.Join(s.Root, "client_ed25519_key")
	s.KnownHosts = filepath.Join(s.Root, "known_hosts")
	if err := os.WriteFile(filepath.Join(s.Root, "authorized_keys"), clientPub, 0o600); err != nil {
		t.Fatal(err)
	}
	if s.logFile, err = os.OpenFile(filepath.Join(s.Root, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the server stops before the temporary
	// directories go, so no session writes into them while they are removed.
	t.Cleanup(func() {
		s.Stop()
		s.logFile.Close()
		if s.controlDir != "" {
			os.RemoveAll(s.controlDir)
		}
	})

	// The port stays reserved for the test (freePort); should sshd still
	// find it taken, pick another.
	for attempt := 0; ; attempt++ {
		s.Port = freePort(t)
		err = s.start()
		if err == nil {
			break
		}
		if attempt == 4 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatal(err)
		}
	}
	s.hostPub = strings.TrimSpace(string(hostPub))
	s.writeKnownHosts()
	return s
}

// AddHosts starts n more hosts and returns their targets
// ("user@127.0.0.1:port"): sshd processes of their own, on ports of
// their own, with this server's keys, login and stubs. The stubs keep
// each host's books apart (transient units, by the port the session
// came in on), as on separate machines: a deploy of several machines to
// one server gives each a host of its own. Freeze and Restart act on
// this server only, Stop on it and on the commands left over from any
// host's sessions; the hosts stop when the test ends.
func (s *Server) AddHosts(n int) []string {
	s.t.Helper()
	var targets []string
	for i := 0; i < n; i++ {
		h := &Server{Stubs: s.Stubs, User: s.User, Home: s.Home, t: s.t, sshd: s.sshd}
		h.Root = filepath.Join(s.Root, fmt.Sprintf("host%d", len(s.hosts)+1))
		if err := os.Mkdir(h.Root, 0o700); err != nil {
			s.t.Fatal(err)
		}
		for _, f := range []string{"ssh_host_ed25519_key", "authorized_keys"} {
			data, err := os.ReadFile(filepath.Join(s.Root, f))
			if err == nil {
				err = os.WriteFile(filepath.Join(h.Root, f), data, 0o600)
			}
			if err != nil {
				s.t.Fatal(err)
			}
		}
		var err error
		if h.logFile, err = os.OpenFile(filepath.Join(h.Root, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(func() { h.Stop(); h.logFile.Close() })
		for attempt := 0; ; attempt++ {
			h.Port = freePort(s.t)
			err = h.start()
			if err == nil {
				break
			}
			if attempt == 4 || !strings.Contains(err.Error(), "Address already in use") {
				s.t.Fatal(err)
			}
		}
		s.hosts = append(s.hosts, h.Port)
		targets = append(targets, h.Target())
	}
	s.writeKnownHosts()
	return targets
}

// writeKnownHosts lists the host key for the server and its hosts.
func (s *Server) writeKnownHosts() {
	var b strings.Builder
	for _, p := range append([]int{s.Port}, s.hosts...) {
		fmt.Fprintf(&b, "[127.0.0.1]:%d %s\n", p, s.hostPub)
	}
	if err := os.WriteFile(s.KnownHosts, []byte(b.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// Target is the ssh destination: "user@127.0.0.1:port".
func (s *Server) Target() string { return fmt.Sprintf("%s@127.0.0.1:%d", s.User, s.Port) }

// Addr is the server's "127.0.0.1:port".
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// ClientOptions are the ssh arguments that log in to this server (and
// its AddHosts) and to nothing else: its key only, its host key only, and
// no ssh configuration file (-F /dev/null): the developer's ~/.ssh/config
// and the system's ssh_config stay out of the tests.
func (s *Server) ClientOptions() []string {
	return []string{
		"-F", os.DevNull,
		"-i", s.ClientKey,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + s.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "ConnectTimeout=5",
	}
}

// ControlDir is a directory for ControlMaster sockets, short enough for
// a Unix socket path (a test's TempDir often is not), removed when the
// test ends.
func (s *Server) ControlDir() string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.controlDir == "" {
		dir := ""
		if len(os.TempDir()) > 20 {
			dir = "/tmp"
		}
		d, err := os.MkdirTemp(dir, "sshtest")
		if err != nil {
			s.t.Fatal(err)
		}
		s.controlDir = d
	}
	return s.controlDir
}

// Log is what sshd logged so far (it runs with -e: connections,
// authentications, errors).
func (s *Server) Log() string {
	data, _ := os.ReadFile(filepath.Join(s.Root, "sshd.log"))
	return string(data)
}

// Logins counts the successful authentications so far: each is a new
// ssh connection (a command sharing a ControlMaster adds none).
func (s *Server) Logins() int {
	return strings.Count(s.Log(), "Accepted publickey for ")
}

// Stop makes the host go away: sshd and every session it started are
// killed, so open connections drop and new ones are refused.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	// Stop the listener first so it forks no session we would miss, then
	// kill its descendants while they are still its descendants, and the
	// commands whose session already ended (reparented, but still with
	// this server's PATH).
	syscall.Kill(pid, syscall.SIGSTOP)
	for _, p := range s.processes(pid) {
		syscall.Kill(p, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	<-s.exited
	s.cmd, s.frozen = nil, nil
}

// Restart starts sshd again on the same port, with the same keys, after
// Stop (or stops it first). The port stayed reserved for the server
// meanwhile (freePort), so no other test's server can have taken it.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.start()
		if err == nil {
			return
		}
		// The port is briefly unavailable only if someone else took it.
		if !strings.Contains(err.Error(), "Address already in use") || time.Now().After(deadline) {
			s.t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Freeze makes the host stop answering without going away: sshd and its
// sessions are suspended (SIGSTOP), so connections open at the TCP level
// and then hang, as with a host that lost its network. Thaw or Stop ends it.
func (s *Server) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.frozen != nil {
		return
	}
	pid := s.cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGSTOP)
	s.frozen = append([]int{pid}, s.processes(pid)...)
	for _, p := range s.frozen[1:] {
		syscall.Kill(p, syscall.SIGSTOP)
	}
}

// Thaw resumes a frozen server.
func (s *Server) Thaw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.frozen {
		syscall.Kill(p, syscall.SIGCONT)
	}
	s.frozen = nil
}

// start runs sshd on s.Port and waits until it answers with its banner.
func (s *Server) start() error {
	config := filepath.Join(s.Root, "sshd_config")
	if err := os.WriteFile(config, []byte(s.config()), 0o600); err != nil {
		return err
	}
	logStart, _ := s.logFile.Seek(0, 2)
	cmd := exec.Command(s.sshd, "-D", "-e", "-f", config)
	cmd.Stdout = s.logFile
	cmd.Stderr = s.logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("sshtest: start %s: %w", s.sshd, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	failed := func(why string) error {
		s.Stop()
		log := s.Log()
		if int(logStart) <= len(log) {
			log = log[logStart:]
		}
		return fmt.Errorf("sshtest: %s %s -D -e -f %s: %s; its log:\n%s", why, s.sshd, config, cmd.ProcessState, log)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return failed("sshd exited:")
		default:
		}
		if banner(s.Addr()) {
			return nil
		}
		if time.Now().After(deadline) {
			return failed("sshd did not answer within 10s:")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// banner reports whether an ssh server answers at addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-")
}

// config is the server's sshd_config: only its own keys and files, no
// PAM (which would need a service config), no passwords, nothing taken
// from the client's environment.
func (s *Server) config() string {
	path := s.StubDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	var b strings.Builder
	for _, kv := range [][2]string{
		{"ListenAddress", "127.0.0.1"},
		{"Port", strconv.Itoa(s.Port)},
		{"HostKey", filepath.Join(s.Root, "ssh_host_ed25519_key")},
		{"PidFile", filepath.Join(s.Root, "sshd.pid")},
		{"AuthorizedKeysFile", filepath.Join(s.Root, "authorized_keys")},
		// The key files live in a test's temporary directory, whose
		// parents sshd would otherwise want owned by the user.
		{"StrictModes", "no"},
		{"PubkeyAuthentication", "yes"},
		{"PasswordAuthentication", "no"},
		{"KbdInteractiveAuthentication", "no"},
		{"UsePAM", "no"},
		{"PermitRootLogin", "yes"},
		{"AllowUsers", s.User},
		// HOME is the server's own: the login user's real startup files
		// (~/.bashrc, which bash runs for ssh commands) stay out of the
		// tests: they are slow (pyenv init) and a session killed in the
		// middle of them may leave their locks behind.
		{"SetEnv", "PATH=" + path + " HOME=" + s.Home},
		// The login shell's startup files run before the command and may
		// put directories before the stubs (~/.bashrc adding pyenv, Nix's
		// profile adding the real nix): put the stubs first again, then
		// run the client's command in the same shell.
		{"ForceCommand", "PATH=" + shQuote(s.StubDir) + `:"$PATH"; export PATH; case $SSH_ORIGINAL_COMMAND in internal-sftp) exec ` + shQuote(s.sftpServer()) + `;; esac; eval "$SSH_ORIGINAL_COMMAND"`},
		{"Subsystem", "sftp internal-sftp"},
		// A deploy of many machines on one server: many sessions on one
		// ControlMaster, many connections at once without one.
		{"MaxSessions", "1000"},
		{"MaxStartups", "1000"},
		{"UseDNS", "no"},
		{"PrintMotd", "no"},
		{"PrintLastLog", "no"},
		{"X11Forwarding", "no"},
		{"LogLevel", "INFO"},
	} {
		fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
	}

	if v := sshdVersion(s.sshd); v >= 908 {
		// OpenSSH 9.8 penalises addresses whose connections end before
		// authenticating (the readiness probe, killed clients) by refusing
		// them for a while; every client here is 127.0.0.1.
		b.WriteString("PerSourcePenalties no\n")
	}
	return b.String()
}

// sftpServer is the external sftp server next to sshd: under
// ForceCommand the sftp subsystem runs through the shell, where
// internal-sftp does not exist.
func (s *Server) sftpServer() string {
	for _, p := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server", filepath.Join(filepath.Dir(s.sshd), "sftp-server")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "sftp-server"
}

var (
	versionOnce sync.Map // sshd path -> major*100+minor
	versionRE   = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)
)

// sshdVersion is sshd's version as major*100+minor (0 when unknown).
func sshdVersion(sshd string) int {
	if v, ok := versionOnce.Load(sshd); ok {
		return v.(int)
	}
	// sshd -V prints the version and exits (older ones print it in the
	// usage message after an unknown option: the same text).
	out, _ := exec.Command(sshd, "-V").CombinedOutput()
	v := 0
	if m := versionRE.FindStringSubmatch(string(out)); m != nil {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		v = major*100 + minor
	}
	versionOnce.Store(sshd, v)
	return v
}

// writeKey writes a new ed25519 private key in OpenSSH format (0600)
// and returns its authorized_keys line.
func (s *Server) writeKey(name string) []byte {
	s.t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshtest")
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root, name), pem.EncodeToMemory(block), 0o600); err != nil {
		s.t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		s.t.Fatal(err)
	}
	authorized := ssh.MarshalAuthorizedKey(sshPub)
	if err := os.WriteFile(filepath.Join(s.Root, name+".pub"), authorized, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return authorized
}

// freePort reserves a port on 127.0.0.1 for the test: a socket bound to
// it with SO_REUSEADDR that never listens, kept until the test ends. The
// kernel hands the port to no one else who asks for a free one (binding
// port 0 skips ports with a socket bound to them), connections to it are
// refused while no sshd listens there, and sshd, which binds its listener
// with SO_REUSEADDR too, can bind it as often as it starts: the first
// time, and after Stop, however long the host was away. Where the
// platform does not allow that second bind, start's "Address already in
// use" makes Start pick another port, as before.
func freePort(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// processes lists what runs "on the host": the processes below sshd's
// pid, and those that outlived their session (a command whose client was
// killed), found by the login PATH this server gave them.
func (s *Server) processes(pid int) []int {
	children := map[int][]int{}
	for _, pp := range processParents() {
		children[pp[1]] = append(children[pp[1]], pp[0])
	}
	var out []int
	seen := map[int]bool{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			seen[c] = true
			queue = append(queue, c)
		}
	}
	marker := []byte("\x00PATH=" + s.StubDir + ":")
	for _, pp := range processParents() {
		if p := pp[0]; !seen[p] && p != pid {
			env, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/environ")
			if err == nil && bytes.Contains(append([]byte{0}, env...), marker) {
				out = append(out, p)
			}
		}
	}
	return out
}

// processParents lists every process as {pid, ppid}: from /proc, or ps
// where there is none (macOS).
func processParents() [][2]int {
	var out [][2]int
	entries, err := os.ReadDir("/proc")
	if err == nil {
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...: comm may hold spaces and parens.
			i := strings.LastIndexByte(string(stat), ')')
			if i < 0 {
				continue
			}
			f := strings.Fields(string(stat[i+1:]))
			if len(f) < 2 {
				continue
			}
			if ppid, err := strconv.Atoi(f[1]); err == nil {
				out = append(out, [2]int{pid, ppid})
			}
		}
		return out
	}
	ps, err := exec.Command("ps", "-A", "-o", "pid=", "-o", "ppid=").Output()
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(ps), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			out = append(out, [2]int{pid, ppid})
		}
	}
	return out
}

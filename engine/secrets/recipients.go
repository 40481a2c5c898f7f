package secrets

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/plugin"
	"github.com/fleet-nix/fleet/engine/model"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// ParseRecipient parses one recipient: an age X25519 recipient (age1...),
// a post-quantum hybrid one (age1pq1...), an age plugin recipient
// (age1yubikey1..., run through the age plugin protocol when a file is
// encrypted), or an ssh-ed25519 / ssh-rsa public key in authorized_keys
// form (through agessh).
func ParseRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		r, err := age.ParseHybridRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %v", short(s), err)
		}
		return r, nil
	case strings.HasPrefix(s, "age1") && strings.Count(s, "1") > 1:
		r, err := plugin.NewRecipient(s, pluginUI())
		if err != nil {
			return nil, fmt.Errorf("recipient %q: not an age plugin recipient: %v", short(s), err)
		}
		return &pluginRecipient{r}, nil
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: not an age recipient: %v", short(s), err)
		}
		return r, nil
	case strings.HasPrefix(s, "ssh-"):
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("recipient %q: not an ssh public key: %v", short(s), err)
		}
		switch pk.Type() {
		case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA:
		default:
			return nil, fmt.Errorf("recipient %q: age cannot encrypt to %s keys: use an ssh-ed25519 key or an age key", short(s), pk.Type())
		}
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %v", short(s), err)
		}
		return r, nil
	case strings.HasPrefix(s, "AGE-SECRET-KEY-"), strings.HasPrefix(s, "AGE-PLUGIN-"), strings.HasPrefix(s, "-----BEGIN"):
		// Never echo a private key back.
		return nil, errors.New("a private key was given where a recipient (public key) belongs")
	}
	return nil, fmt.Errorf("recipient %q: not an age recipient (age1...), an age plugin recipient (age1<plugin>1...) or an ssh-ed25519 key", short(s))
}

// NormalizeRecipient returns the canonical spelling of a recipient, the
// one stored in the record: ssh keys without their comment (changing a
// comment does not change whom a file is encrypted to), age keys in
// lower case.
func NormalizeRecipient(s string) (string, error) {
	r, err := ParseRecipient(s)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	switch r := r.(type) {
	case *age.X25519Recipient:
		return r.String(), nil
	case *age.HybridRecipient:
		return r.String(), nil
	case *pluginRecipient:
		return strings.ToLower(s), nil
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), nil
}

// short abbreviates a public key for messages.
func short(s string) string {
	if len(s) > 60 {
		return s[:40] + "..." + s[len(s)-8:]
	}
	return s
}

// pluginRecipient turns the plugin's "not installed" into an error that
// says what to install.
type pluginRecipient struct{ *plugin.Recipient }

func (r *pluginRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, err := r.Recipient.Wrap(fileKey)
	return s, pluginErr(r.Name(), err)
}

func (r *pluginRecipient) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	s, l, err := r.Recipient.WrapWithLabels(fileKey)
	return s, l, pluginErr(r.Name(), err)
}

func pluginErr(name string, err error) error {
	var nf *plugin.NotFoundError
	if errors.As(err, &nf) {
		return fmt.Errorf("the age plugin age-plugin-%s is not installed (not found in PATH): install it to use %s recipients", name, name)
	}
	return err
}

// pluginUI is how age plugins talk to a person: messages go to stderr,
// questions to the controlling terminal. Without a terminal, a plugin
// that needs an answer (a PIN, a touch confirmation) fails with an error
// that says so instead of hanging.
func pluginUI() *plugin.ClientUI {
	printf := func(format string, v ...any) { fmt.Fprintf(os.Stderr, "fleet: "+format+"\n", v...) }
	ui := plugin.NewTerminalUI(printf, printf)
	request, confirm := ui.RequestValue, ui.Confirm
	ui.RequestValue = func(name, prompt string, secret bool) (string, error) {
		if !haveTTY() {
			return "", fmt.Errorf("age-plugin-%s asks %q, but there is no terminal to answer on", name, prompt)
		}
		return request(name, prompt, secret)
	}
	ui.Confirm = func(name, prompt, yes, no string) (bool, error) {
		if !haveTTY() {
			return false, fmt.Errorf("age-plugin-%s asks %q, but there is no terminal to answer on", name, prompt)
		}
		return confirm(name, prompt, yes, no)
	}
	return ui
}

func haveTTY() bool {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return term.IsTerminal(int(f.Fd()))
}

// LoadIdentities reads an identity file: an age identity file (lines of
// AGE-SECRET-KEY-1..., AGE-SECRET-KEY-PQ-1... or AGE-PLUGIN-... such as
// age-plugin-yubikey stubs; empty lines and # comments ignored) or an
// OpenSSH private key (ed25519 or rsa, through agessh; a passphrase is
// asked on the terminal when the key is protected). Errors never quote
// the file's contents.
func LoadIdentities(path string) ([]age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading identities: %w", err)
	}
	defer wipe(data)
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		id, err := sshIdentity(path, trimmed)
		if err != nil {
			return nil, err
		}
		return []age.Identity{id}, nil
	}
	var ids []age.Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("identity file %s: line %d is not valid UTF-8", path, n)
		}
		var id age.Identity
		switch {
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			id, err = plugin.NewIdentity(line, pluginUI())
		case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
			id, err = age.ParseHybridIdentity(line)
		case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
			id, err = age.ParseX25519Identity(line)
		case strings.HasPrefix(line, "age1"), strings.HasPrefix(line, "ssh-"):
			err = errors.New("this is a recipient (a public key), not an identity")
		default:
			err = errors.New("not an age identity (AGE-SECRET-KEY-1...) nor an age plugin identity (AGE-PLUGIN-...)")
		}
		if err != nil {
			// The line itself is never quoted: it may be a private key.
			return nil, fmt.Errorf("identity file %s, line %d: %v", path, n, err)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("identity file %s: %v", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("identity file %s holds no identity", path)
	}
	return ids, nil
}

func sshIdentity(path string, pemBytes []byte) (age.Identity, error) {
	id, err := agessh.ParseIdentity(pemBytes)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		pub := missing.PublicKey
		if pub == nil {
			data, rerr := os.ReadFile(path + ".pub")
			if rerr != nil {
				return nil, fmt.Errorf("ssh key %s is protected by a passphrase and %s.pub cannot be read: %v", path, path, rerr)
			}
			if pub, _, _, _, rerr = ssh.ParseAuthorizedKey(data); rerr != nil {
				return nil, fmt.Errorf("%s.pub: %v", path, rerr)
			}
		}
		key := bytes.Clone(pemBytes)
		return agessh.NewEncryptedSSHIdentity(pub, key, func() ([]byte, error) {
			return readTTYSecret(fmt.Sprintf("passphrase for %s: ", path))
		})
	}
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %v", path, err)
	}
	return id, nil
}

// readTTYSecret reads a passphrase from the controlling terminal.
func readTTYSecret(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("a passphrase is needed but there is no terminal: %w", ErrNoTerminal)
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, ErrNoTerminal
	}
	io.WriteString(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	io.WriteString(tty, "\n")
	return b, err
}

// Recipients returns the recipients of secret s's files stored for
// machine (ignored for shared secrets), normalized, sorted, without
// repeats: the fleet's admins plus the host key of each machine that
// reads the files (the machine itself, or all the machines of a shared
// secret). hostKeys maps machine names to their public host keys
// ("ssh-ed25519 ..." or "age1..."); a machine missing from it is not a
// recipient yet and is returned in noHostKey so that the caller can warn.
// A file that nobody could decrypt is refused with an error.
func Recipients(f *model.Fleet, s *model.Secret, machine string, hostKeys map[string]string) (recipients, noHostKey []string, err error) {
	set := map[string]bool{}
	for _, a := range f.AdminRecipients() {
		r, err := NormalizeRecipient(a)
		if err != nil {
			return nil, nil, fmt.Errorf("fleet admins: %v", err)
		}
		set[r] = true
	}
	readers := s.Machines
	if !s.Shared {
		if !containsStr(s.Machines, machine) {
			return nil, nil, fmt.Errorf("secret %s is not declared for machine %q (machines = %s)", s.Name, machine, s.Selector)
		}
		readers = []string{machine}
	}
	for _, m := range readers {
		k := strings.TrimSpace(hostKeys[m])
		if k == "" {
			noHostKey = append(noHostKey, m)
			continue
		}
		r, err := NormalizeRecipient(k)
		if err != nil {
			return nil, nil, fmt.Errorf("host key of machine %s: %v", m, err)
		}
		set[r] = true
	}
	for r := range set {
		recipients = append(recipients, r)
	}
	sort.Strings(recipients)
	if len(recipients) == 0 {
		what := "secrets/" + Owner(s, machine) + "/" + s.Name
		if len(noHostKey) > 0 {
			return nil, noHostKey, fmt.Errorf("%s: refusing to encrypt to nobody: the fleet has no admins and machine %s has no known host key yet; "+
				"declare fleet(admins = [...]) so someone can read it", what, strings.Join(noHostKey, ", "))
		}
		return nil, nil, fmt.Errorf("%s: refusing to encrypt to nobody: the fleet has no admins; declare fleet(admins = [...])", what)
	}
	return recipients, noHostKey, nil
}

// parseRecipients parses a list of recipient strings for age.Encrypt.
func parseRecipients(rs []string) ([]age.Recipient, error) {
	if len(rs) == 0 {
		return nil, errors.New("refusing to encrypt to nobody: no recipients")
	}
	out := make([]age.Recipient, len(rs))
	for i, s := range rs {
		r, err := ParseRecipient(s)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// wipe overwrites a plaintext buffer once it is no longer needed.
func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

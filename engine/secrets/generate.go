package secrets

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/sethvargo/go-diceware/diceware"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"
)

// Inputs is what a generator may use besides its parameters.
type Inputs struct {
	// Secret and Owner name what is being generated (the secret, and the
	// machine or "shared"), for prompts, key comments and messages.
	Secret, Owner string
	// Deps holds the values of the secrets this one depends on: secret
	// name -> stored file name -> contents (plaintext for secret files).
	// Only gen.command reads them, as $in/<secret>/<file>.
	Deps map[string]map[string][]byte
	// Prompter asks a person for gen.prompt values; nil means nobody can
	// be asked (Generate returns ErrNoTerminal).
	Prompter Prompter
	// Stderr receives what gen.command's program prints (stdout and
	// stderr) and nothing else; nil discards it.
	Stderr io.Writer
	// TempDir is where gen.command's private folders are made; empty
	// means fleet's private per-user place (package plaintext).
	TempDir string
}

// Generator kinds (model.Generator.Kind).
const (
	KindPassword   = "password"
	KindPassphrase = "passphrase"
	KindHex        = "hex"
	KindSSH        = "ssh_keypair"
	KindAge        = "age_keypair"
	KindWireGuard  = "wireguard_keypair"
	KindPrompt     = "prompt"
	KindCommand    = "command"
)

// Outputs returns the output names a generator produces.
func Outputs(g *model.Generator) []string {
	switch g.Kind {
	case KindSSH, KindAge, KindWireGuard:
		return []string{"key", "key.pub"}
	case KindCommand:
		return strParams(g, "outputs")
	}
	return []string{"value"}
}

// Generate runs generator g and returns its outputs by output name. The
// values are plaintext: the caller encrypts them and wipes the slices.
func Generate(ctx context.Context, g *model.Generator, in Inputs) (map[string][]byte, error) {
	if g == nil {
		return nil, fmt.Errorf("no generator")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch g.Kind {
	case KindPassword:
		v, err := password(intParam(g, "length", 32))
		return one(v, err)
	case KindPassphrase:
		sep := "-"
		if s, ok := g.Params.Get("separator").(model.String); ok {
			sep = string(s)
		}
		v, err := passphrase(intParam(g, "words", 6), sep)
		return one(v, err)
	case KindHex:
		n := intParam(g, "bytes", 32)
		if n < 1 {
			return nil, fmt.Errorf("gen.hex: bytes = %d", n)
		}
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		defer wipe(b)
		return one([]byte(hex.EncodeToString(b)), nil)
	case KindSSH:
		return sshKeypair(in.comment())
	case KindAge:
		return ageKeypair()
	case KindWireGuard:
		return wireguardKeypair()
	case KindPrompt:
		return prompt(ctx, g, in)
	case KindCommand:
		return command(ctx, g, in)
	}
	return nil, fmt.Errorf("unknown generator gen.%s", g.Kind)
}

func (in Inputs) comment() string {
	switch {
	case in.Owner != "" && in.Secret != "":
		return in.Owner + "/" + in.Secret
	case in.Secret != "":
		return in.Secret
	}
	return "fleet"
}

func one(v []byte, err error) (map[string][]byte, error) {
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"value": v}, nil
}

func intParam(g *model.Generator, name string, def int) int {
	if v, ok := g.Params.Get(name).(model.Int); ok {
		return int(v)
	}
	return def
}

func strParam(g *model.Generator, name, def string) string {
	if v, ok := g.Params.Get(name).(model.String); ok {
		return string(v)
	}
	return def
}

func strParams(g *model.Generator, name string) []string {
	l, _ := g.Params.Get(name).(model.List)
	out := make([]string, 0, len(l))
	for _, v := range l {
		if s, ok := v.(model.String); ok {
			out = append(out, string(s))
		}
	}
	return out
}

// passwordAlphabet is what gen.password draws from: 62 symbols, so a
// 32-character password carries 190 bits.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// password draws length symbols uniformly: random bytes at or above the
// largest multiple of 62 that fits in a byte (248) are rejected, so no
// symbol is more likely than another.
func password(length int) ([]byte, error) {
	if length < 1 {
		return nil, fmt.Errorf("gen.password: length = %d", length)
	}
	const limit = 256 - 256%len(passwordAlphabet)
	out := make([]byte, 0, length)
	buf := make([]byte, length+length/4+8)
	defer wipe(buf)
	for len(out) < length {
		if _, err := rand.Read(buf); err != nil {
			return nil, err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < length {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return out, nil
}

// passphrase joins words drawn from the EFF large word list (7776 words,
// 12.9 bits each) with sep.
func passphrase(words int, sep string) ([]byte, error) {
	if words < 1 {
		return nil, fmt.Errorf("gen.passphrase: words = %d", words)
	}
	w, err := diceware.GenerateWithWordList(words, diceware.WordListEffLarge())
	if err != nil {
		return nil, fmt.Errorf("gen.passphrase: %v", err)
	}
	return []byte(strings.Join(w, sep)), nil
}

// sshKeypair makes an ed25519 key: key is the OpenSSH private key file
// (as ssh-keygen writes it), key.pub the authorized_keys line.
func sshKeypair(comment string) (map[string][]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	defer wipe(priv)
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	spk, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " " + comment + "\n"
	return map[string][]byte{
		"key":     pem.EncodeToMemory(block),
		"key.pub": []byte(line),
	}, nil
}

// ageKeypair makes an X25519 identity: key is an identity file as
// age-keygen writes it, key.pub the recipient.
func ageKeypair() (map[string][]byte, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	pub := id.Recipient().String()
	key := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), pub, id.String())
	return map[string][]byte{"key": []byte(key), "key.pub": []byte(pub + "\n")}, nil
}

// wireguardKeypair makes a Curve25519 key pair encoded as `wg genkey` and
// `wg pubkey` print them: base64 of 32 bytes and a newline, the private
// key clamped.
func wireguardKeypair() (map[string][]byte, error) {
	var priv [32]byte
	if _, err := rand.Read(priv[:]); err != nil {
		return nil, err
	}
	defer wipe(priv[:])
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding
	return map[string][]byte{
		"key":     []byte(enc.EncodeToString(priv[:]) + "\n"),
		"key.pub": []byte(enc.EncodeToString(pub) + "\n"),
	}, nil
}

func prompt(ctx context.Context, g *model.Generator, in Inputs) (map[string][]byte, error) {
	if in.Prompter == nil {
		return nil, ErrNoTerminal
	}
	label := strParam(g, "label", "")
	if label == "" {
		label = in.Secret
		if in.Owner != "" && in.Owner != SharedOwner {
			label += " for " + in.Owner
		}
	}
	kind := strParam(g, "type", "hidden")
	v, err := in.Prompter.Prompt(ctx, label, strParam(g, "help", ""), kind)
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("%s: nothing was entered", label)
	}
	return map[string][]byte{"value": v}, nil
}

package secrets

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/sethvargo/go-diceware/diceware"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"
)

func TestGenerators(t *testing.T) {
	effWords := map[string]bool{}
	wl := diceware.WordListEffLarge()
	for i := 11111; i <= 66666; i++ {
		if w := wl.WordAt(i); w != "" {
			effWords[w] = true
		}
	}
	tests := []struct {
		name  string
		gen   *model.Generator
		in    Inputs
		check func(t *testing.T, out map[string][]byte)
	}{
		{"password default", mkGen(KindPassword, nil), Inputs{}, func(t *testing.T, out map[string][]byte) {
			checkPassword(t, out["value"], 32)
		}},
		{"password 8", mkGen(KindPassword, map[string]model.Value{"length": model.Int(8)}), Inputs{}, func(t *testing.T, out map[string][]byte) {
			checkPassword(t, out["value"], 8)
		}},
		{"password 1024", mkGen(KindPassword, map[string]model.Value{"length": model.Int(1024)}), Inputs{}, func(t *testing.T, out map[string][]byte) {
			checkPassword(t, out["value"], 1024)
		}},
		{"passphrase", mkGen(KindPassphrase, map[string]model.Value{"words": model.Int(7), "separator": model.String(" ")}), Inputs{},
			func(t *testing.T, out map[string][]byte) {
				words := strings.Split(string(out["value"]), " ")
				if len(words) != 7 {
					t.Fatalf("%d words, want 7", len(words))
				}
				for _, w := range words {
					if !effWords[w] {
						t.Errorf("word %q is not in the EFF large list", w)
					}
				}
			}},
		{"passphrase separator", mkGen(KindPassphrase, map[string]model.Value{"words": model.Int(4), "separator": model.String("_")}), Inputs{},
			func(t *testing.T, out map[string][]byte) {
				if n := len(strings.Split(string(out["value"]), "_")); n != 4 {
					t.Fatalf("%d words, want 4", n)
				}
			}},
		{"hex", mkGen(KindHex, map[string]model.Value{"bytes": model.Int(16)}), Inputs{}, func(t *testing.T, out map[string][]byte) {
			b, err := hex.DecodeString(string(out["value"]))
			if err != nil || len(b) != 16 {
				t.Fatalf("hex value: %d bytes, %v", len(b), err)
			}
		}},
		{"ssh keypair", mkGen(KindSSH, nil), Inputs{Secret: "ssh-host-key", Owner: "cinnabar"}, func(t *testing.T, out map[string][]byte) {
			k, err := ssh.ParseRawPrivateKey(out["key"])
			if err != nil {
				t.Fatal(err)
			}
			priv, ok := k.(*ed25519.PrivateKey)
			if !ok {
				t.Fatalf("private key is %T", k)
			}
			pub, comment, _, rest, err := ssh.ParseAuthorizedKey(out["key.pub"])
			if err != nil || len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("public key: %v (rest %q)", err, rest)
			}
			if comment != "cinnabar/ssh-host-key" {
				t.Errorf("comment %q", comment)
			}
			want, _ := ssh.NewPublicKey(priv.Public())
			if !bytes.Equal(want.Marshal(), pub.Marshal()) {
				t.Error("key.pub is not the public half of key")
			}
			if !bytes.HasPrefix(out["key"], []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
				t.Error("key is not an OpenSSH private key file")
			}
		}},
		{"age keypair", mkGen(KindAge, nil), Inputs{}, func(t *testing.T, out map[string][]byte) {
			ids, err := age.ParseIdentities(bytes.NewReader(out["key"]))
			if err != nil || len(ids) != 1 {
				t.Fatalf("identity file: %d identities, %v", len(ids), err)
			}
			x, ok := ids[0].(*age.X25519Identity)
			if !ok {
				t.Fatalf("identity is %T", ids[0])
			}
			if got := strings.TrimSpace(string(out["key.pub"])); got != x.Recipient().String() {
				t.Errorf("key.pub %q is not the identity's recipient %q", got, x.Recipient())
			}
		}},
		{"wireguard keypair", mkGen(KindWireGuard, nil), Inputs{}, func(t *testing.T, out map[string][]byte) {
			priv := decode32(t, out["key"])
			pub := decode32(t, out["key.pub"])
			if priv[0]&7 != 0 || priv[31]&128 != 0 || priv[31]&64 == 0 {
				t.Error("private key is not clamped")
			}
			want, _ := curve25519.X25519(priv, curve25519.Basepoint)
			if !bytes.Equal(want, pub) {
				t.Error("key.pub is not the public key of key")
			}
		}},
		{"prompt", mkGen(KindPrompt, map[string]model.Value{"type": model.String("line"), "label": model.String("API token")}),
			Inputs{Prompter: &fakePrompter{answers: map[string]string{"API token": "tok-123"}}},
			func(t *testing.T, out map[string][]byte) {
				if string(out["value"]) != "tok-123" {
					t.Errorf("value %q", out["value"])
				}
			}},
		{"prompt default label", mkGen(KindPrompt, nil),
			Inputs{Secret: "hcloud-token", Owner: SharedOwner, Prompter: &fakePrompter{answers: map[string]string{"hcloud-token": "x"}}},
			func(t *testing.T, out map[string][]byte) {
				if string(out["value"]) != "x" {
					t.Errorf("value %q", out["value"])
				}
			}},
		{"command", mkGen(KindCommand, map[string]model.Value{
			"argv":    strs("sh", "-c", `printf secret-a > "$out/a"; printf pub-b > $out/b.pub`),
			"outputs": strs("a", "b.pub")}), Inputs{TempDir: t.TempDir()},
			func(t *testing.T, out map[string][]byte) {
				if string(out["a"]) != "secret-a" || string(out["b.pub"]) != "pub-b" || len(out) != 2 {
					t.Errorf("outputs %q", out)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Generate(context.Background(), tt.gen, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range Outputs(tt.gen) {
				if len(out[o]) == 0 {
					t.Errorf("output %s is empty", o)
				}
			}
			tt.check(t, out)
			// Two runs never give the same value (prompts aside).
			if tt.gen.Kind != KindPrompt && tt.gen.Kind != KindCommand {
				again, err := Generate(context.Background(), tt.gen, tt.in)
				if err != nil {
					t.Fatal(err)
				}
				for o := range out {
					if bytes.Equal(out[o], again[o]) && !strings.HasSuffix(o, ".pub") {
						t.Errorf("output %s repeated", o)
					}
				}
			}
		})
	}
}

func checkPassword(t *testing.T, v []byte, n int) {
	t.Helper()
	if len(v) != n {
		t.Fatalf("length %d, want %d", len(v), n)
	}
	for _, c := range v {
		if !strings.ContainsRune(passwordAlphabet, rune(c)) {
			t.Fatalf("character %q outside letters and digits", c)
		}
	}
}

func decode32(t *testing.T, b []byte) []byte {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Error("no final newline (wg genkey prints one)")
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		t.Fatalf("key: %d bytes, %v", len(k), err)
	}
	return k
}

// TestPasswordUniform draws enough symbols to see a modulo bias: with a
// naive byte%62, the first 8 symbols would come up 5/4 as often.
func TestPasswordUniform(t *testing.T) {
	v, err := password(62 * 4000)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[byte]int{}
	for _, c := range v {
		counts[c]++
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct symbols, want 62", len(counts))
	}
	for c, n := range counts {
		if n < 3400 || n > 4600 {
			t.Errorf("symbol %q drawn %d times, expected about 4000", c, n)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Generate(ctx, mkGen("dice", nil), Inputs{}); err == nil || !strings.Contains(err.Error(), "gen.dice") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := Generate(ctx, mkGen(KindPrompt, nil), Inputs{}); !errors.Is(err, ErrNoTerminal) {
		t.Errorf("prompt without prompter: %v, want ErrNoTerminal", err)
	}
	empty := &fakePrompter{answers: map[string]string{}}
	if _, err := Generate(ctx, mkGen(KindPrompt, nil), Inputs{Secret: "s", Prompter: empty}); err == nil {
		t.Error("an empty answer was accepted")
	}
}

// TestCommandCleansUp runs gen.command on success, failure, a missing
// output and cancellation, and checks that its private folders are gone
// each time, that they were 0700, and that dependencies were readable.
func TestCommandCleansUp(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		outputs []string
		timeout time.Duration
		wantErr string
	}{
		{"success", []string{"sh", "-c", `stat -c %a "$out" "$in" > modes; cat "$in/dep/value" > "$out/copy"; echo program says hi`}, []string{"modes", "copy"}, 0, ""},
		{"failure", []string{"sh", "-c", `echo partial > "$out/copy"; exit 3`}, []string{"copy"}, 0, "failed: exit status 3"},
		{"missing output", []string{"sh", "-c", `echo x > "$out/one"`}, []string{"one", "two", "three"}, 0, `did not write "two", "three"`},
		{"not a file", []string{"sh", "-c", `mkdir "$out/d"`}, []string{"d"}, 0, "not a regular file"},
		{"no such program", []string{"fleet-no-such-program"}, []string{"x"}, 0, "fleet-no-such-program"},
		{"cancelled", []string{"sh", "-c", `echo x > "$out/x"; sleep 30`}, []string{"x"}, 200 * time.Millisecond, "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			var stderr lockedBuffer
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			g := mkGen(KindCommand, map[string]model.Value{"argv": strs(tt.argv...), "outputs": strs(tt.outputs...)})
			in := Inputs{TempDir: tmp, Stderr: &stderr, Deps: map[string]map[string][]byte{"dep": {"value": []byte("dep-value")}}}
			start := time.Now()
			out, err := Generate(ctx, g, in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := string(out["modes"]); got != "700\n700\n" {
					t.Errorf("folder modes %q, want 700 and 700", got)
				}
				if string(out["copy"]) != "dep-value" {
					t.Errorf("dependency value not passed: %q", out["copy"])
				}
				if !strings.Contains(string(stderr.Bytes()), "program says hi") {
					t.Errorf("program output not passed on: %q", stderr.Bytes())
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if time.Since(start) > 20*time.Second {
				t.Error("cancellation did not stop the program")
			}
			left, _ := os.ReadDir(tmp)
			for _, e := range left {
				t.Errorf("left behind: %s", filepath.Join(tmp, e.Name()))
			}
		})
	}
}

func TestCommandCleansUpOnPanic(t *testing.T) {
	tmp := t.TempDir()
	seen := 0
	commandHook = func(out, in string) {
		for _, d := range []string{out, in} {
			if _, err := os.Stat(d); err == nil {
				seen++
			}
		}
		panic("boom")
	}
	defer func() { commandHook = nil }()
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v", r)
			}
		}()
		g := mkGen(KindCommand, map[string]model.Value{"argv": strs("sh", "-c", `echo x > "$out/x"`), "outputs": strs("x")})
		Generate(context.Background(), g, Inputs{TempDir: tmp, Deps: map[string]map[string][]byte{"d": {"v": []byte("dep")}}})
	}()
	if seen != 2 {
		t.Fatalf("the hook saw %d of the 2 folders", seen)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind after a panic: %v", left)
	}
}

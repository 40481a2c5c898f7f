package sopsfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// The files in testdata were made by the sops CLI (testdata/make.sh says
// how); key.txt is the throwaway identity they are encrypted to.

func identities(t *testing.T, name string) []age.Identity {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type kv struct{ path, value string }

func flatten(vs []Value) []kv {
	var out []kv
	for _, v := range vs {
		out = append(out, kv{strings.Join(v.Path, "/"), string(v.Data)})
	}
	return out
}

func TestDecryptEveryFormat(t *testing.T) {
	ids := identities(t, "key.txt")
	for _, tc := range []struct {
		file string
		want []kv
	}{
		{"secrets.yaml", []kv{{"db/password", "hunter2"}, {"db/port", "5432"}, {"db/ratio", "0.75"}, {"db/enabled", "true"},
			{"api_token", "tok-123"}, {"multi", "line one\nline two\n"}, {"hosts/0", "alpha"}, {"hosts/1", "beta"}}},
		{"secrets.json", []kv{{"db/password", "hunter2"}, {"db/port", "5432"}, {"enabled", "false"}, {"api_token", "tok-123"}}},
		{"secrets.env", []kv{{"DB_PASSWORD", "hunter2"}, {"API_TOKEN", "tok-123"}}},
		{"secrets.ini", []kv{{"db/password", "hunter2"}, {"db/user", "admin"}, {"api/token", "tok-123"}}},
		{"secrets.bin", []kv{{"data", string(read(t, "plain.bin"))}}},
		{"unencrypted.yaml", []kv{{"user_public", "alice"}, {"password", "s3cret"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			vs, err := Decrypt(read(t, tc.file), FormatOf(tc.file), ids)
			if err != nil {
				t.Fatal(err)
			}
			defer Wipe(vs)
			got := flatten(vs)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("value %d: got %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestClearValuesAreMarked(t *testing.T) {
	vs, err := Decrypt(read(t, "unencrypted.yaml"), YAML, identities(t, "key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if vs[0].Encrypted || !vs[1].Encrypted {
		t.Fatalf("user_public is in clear, password encrypted: %+v", vs)
	}
}

func TestWipe(t *testing.T) {
	vs, err := Decrypt(read(t, "secrets.env"), Dotenv, identities(t, "key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	Wipe(vs)
	for _, v := range vs {
		if strings.Trim(string(v.Data), "\x00") != "" {
			t.Fatalf("%v not wiped", v.Path)
		}
	}
}

// dropLine removes the line of data that contains s.
func dropLine(t *testing.T, data []byte, s string) []byte {
	t.Helper()
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if strings.Contains(l, s) {
			return []byte(strings.Join(append(lines[:i:i], lines[i+1:]...), "\n"))
		}
	}
	t.Fatalf("no line with %q", s)
	return nil
}

func TestTamperedFilesRefused(t *testing.T) {
	ids := identities(t, "key.txt")
	yml := string(read(t, "secrets.yaml"))
	encOf := func(key string) string {
		for _, l := range strings.Split(yml, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(l), ": "); ok && k == key {
				return v
			}
		}
		t.Fatalf("no %s", key)
		return ""
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		format Format
		want   string
	}{
		// Every remaining value decrypts; only the MAC tells.
		{"a value removed", dropLine(t, []byte(yml), "api_token:"), YAML, "MAC mismatch"},
		{"a line removed from dotenv", dropLine(t, read(t, "secrets.env"), "API_TOKEN="), Dotenv, "MAC mismatch"},
		{"a line removed from INI", dropLine(t, read(t, "secrets.ini"), "user "), INI, "MAC mismatch"},
		{"a clear value added", []byte(strings.Replace(yml, "api_token:", "extra_unencrypted: x\napi_token:", 1)), YAML, "MAC mismatch"},
		// A ciphertext moved to another key fails its additional data.
		{"a value moved", []byte(strings.Replace(yml, encOf("api_token"), encOf("password"), 1)), YAML, "value api_token: it does not decrypt"},
		{"a clear value where an encrypted one was", []byte(strings.Replace(yml, encOf("api_token"), "tok-999", 1)), YAML, "value api_token: not a sops encrypted value"},
		{"the MAC removed", dropLine(t, []byte(yml), "    mac: "), YAML, "no MAC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := Decrypt(tc.data, tc.format, ids)
			if err == nil {
				Wipe(vs)
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			for _, secret := range []string{"hunter2", "tok-123", "tok-999", "admin"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a value: %v", err)
				}
			}
		})
	}
	if _, err := Decrypt(dropLine(t, []byte(yml), "api_token:"), YAML, ids); !errors.Is(err, ErrMACMismatch) {
		t.Fatalf("not ErrMACMismatch: %v", err)
	}
}

func TestNotOurIdentity(t *testing.T) {
	_, err := Decrypt(read(t, "other.yaml"), YAML, identities(t, "key.txt"))
	var nerr *NoIdentityError
	if !errors.As(err, &nerr) {
		t.Fatalf("got %v, want a NoIdentityError", err)
	}
	other := strings.TrimSpace(string(read(t, "other.pub")))
	if len(nerr.Recipients) != 1 || nerr.Recipients[0] != other || !strings.Contains(err.Error(), other) {
		t.Fatalf("the error should name %s: %v", other, err)
	}
}

func TestNotSops(t *testing.T) {
	ids := identities(t, "key.txt")
	for _, tc := range []struct {
		data   string
		format Format
		want   string
	}{
		{"a: b\n", YAML, "no sops metadata"},
		{"a: b\n---\nc: d\n", YAML, "several YAML documents"},
		{"- a\n", YAML, "not a mapping"},
		{`{"a": "secret-value"`, JSON, "not valid JSON"},
		{"A=1\n", Dotenv, "no sops metadata"},
		{"novalue\n", Dotenv, "line 1"},
		{`{"a": "x", "b": "y", "sops": {}}`, Binary, `one value, "data"`},
	} {
		_, err := Decrypt([]byte(tc.data), tc.format, ids)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret-value") {
			t.Errorf("%q: error %v, want %q", tc.data, err, tc.want)
		}
	}
}

func TestFormatOf(t *testing.T) {
	for name, want := range map[string]Format{"a.yaml": YAML, "a.YML": YAML, "a.json": JSON, "a.env": Dotenv, "a.ini": INI, "a.bin": Binary, "key": Binary} {
		if got := FormatOf(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

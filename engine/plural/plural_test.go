package plural

import "testing"

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		noun string
		want string
	}{
		{1, "file", "1 file"},
		{0, "file", "0 files"},
		{2, "file", "2 files"},
		{1, "secret file", "1 secret file"},
		{3, "secret file", "3 secret files"},
		{1, "dependency", "1 dependency"},
		{2, "dependency", "2 dependencies"},
		{2, "key", "2 keys"},
		{2, "patch", "2 patches"},
		{2, "fallback", "2 fallbacks"},
		{2, "address", "2 addresses"},
		{-1, "step", "-1 steps"},
	} {
		if got := Count(tc.n, tc.noun); got != tc.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tc.n, tc.noun, got, tc.want)
		}
	}
}

func TestChoose(t *testing.T) {
	if Choose(1, "is", "are") != "is" || Choose(0, "is", "are") != "are" || Choose(2, "is", "are") != "are" {
		t.Error("Choose does not agree with its count")
	}
}

func TestArticle(t *testing.T) {
	for noun, want := range map[string]string{"server": "a server", "instance": "an instance", "attribute set": "an attribute set", "": "a "} {
		if got := Article(noun); got != want {
			t.Errorf("Article(%q) = %q, want %q", noun, got, want)
		}
	}
}

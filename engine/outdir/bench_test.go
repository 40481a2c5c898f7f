package outdir

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// benchFiles returns n files of about 1 KiB, 100 to a directory, two
// levels deep: machines/g07/m0712.nix.
func benchFiles(n int) []File {
	files := make([]File, n)
	body := strings.Repeat("  services.example.enable = true;\n", 30)
	for i := range files {
		files[i] = File{
			Path: fmt.Sprintf("machines/g%02d/m%05d.nix", i/100%100, i),
			Data: []byte(fmt.Sprintf("# machine %d\n{\n%s}\n", i, body)),
		}
	}
	return files
}

func BenchmarkWrite(b *testing.B) {
	files := benchFiles(10_000)
	b.Run("first", func(b *testing.B) {
		top := b.TempDir()
		for i := 0; b.Loop(); i++ {
			if _, err := Write(filepath.Join(top, fmt.Sprint(i)), files); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		dir := b.TempDir()
		if _, err := Write(dir, files); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			rep, err := Write(dir, files)
			if err != nil {
				b.Fatal(err)
			}
			if len(rep.Written) > 0 {
				b.Fatalf("wrote %d files", len(rep.Written))
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		dir := b.TempDir()
		if _, err := Write(dir, files); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := Check(dir, files); err != nil {
				b.Fatal(err)
			}
		}
	})
}

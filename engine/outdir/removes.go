package outdir

import "slices"

// Removes lists, sorted, the files Write(dir, files) would remove: written
// by fleet earlier, no longer produced, not edited since. It changes
// nothing. A plan that writes nothing uses it to see the folder as the
// next write leaves it (engine/fingerprint).
func Removes(dir string, files []File) ([]string, error) {
	files, err := normalize(files)
	if err != nil {
		return nil, err
	}
	p, err := scan(dir, files)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(p.remove)
	slices.Sort(out)
	return out, nil
}

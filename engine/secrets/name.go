package secrets

import "strings"

// NameFor makes s a secret name, for secrets imported from elsewhere
// (sops keys, clan vars): what a name cannot hold becomes "_", and a
// name that would start with '-' or a digit gets a leading "_".
func NameFor(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r == '-' || r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || name[0] == '-' || name[0] >= '0' && name[0] <= '9' {
		name = "_" + name
	}
	return name
}

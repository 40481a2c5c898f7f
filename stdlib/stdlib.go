// Package stdlib holds the .star libraries that ship inside the fleet
// binary and load as "@stdlib//name.star". They are ordinary libraries:
// they define values and functions and declare nothing at their top level,
// so loading one never changes a fleet until the fleet calls into it.
package stdlib

import "embed"

// FS is the embedded library tree.
//
//go:embed *.star
var FS embed.FS

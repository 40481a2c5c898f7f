// Package conformance is fleet's truth against upstream: its tests
// evaluate the trees fleet generates with the real upstream module code.
package conformance

package builtins

import (
	"errors"
	"fmt"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// ModuleKind says what a Starlark thread is evaluating.
type ModuleKind int

const (
	// FleetModule is the entry file or a file brought in by include():
	// it may declare machines, features and the rest.
	FleetModule ModuleKind = iota
	// LibraryModule is a file brought in by load(): it may define values
	// and functions, but declaring at its top level is an error, so that
	// loading a library never changes the fleet by side effect.
	LibraryModule
)

const (
	localRecorder = "fleet.builtins.recorder"
	localKind     = "fleet.builtins.kind"
)

// PathResolver turns a path written in a .star file into a path relative
// to the fleet root, checking that it stays inside the root. from is the
// display name of the file that wrote it (as in positions).
type PathResolver func(from, rel string) (string, error)

// Recorder collects the declarations of one evaluation. It is created by
// the engine per run and reached through thread locals.
type Recorder struct {
	resolvePath PathResolver

	fleets   []*model.Fleet
	channels []*model.Channel
	inputs   []*model.Input
	overlays []*model.Overlay
	features []*model.Feature
	// emptyParts are the classes a feature was given an explicitly empty
	// part for (darwin = {}): it says "nothing here", which counts as a
	// part, though the model drops empty parts.
	emptyParts map[*model.Feature][]model.Class
	users      []*model.User
	machines   []*model.Machine
	secrets    []*secretDecl
	firewalls  []*model.Firewall
}

// NewRecorder returns an empty Recorder. resolve checks and normalises
// file paths given to modules =, overlay.package(path =) and nix.path.
func NewRecorder(resolve PathResolver) *Recorder {
	return &Recorder{resolvePath: resolve}
}

// Attach makes r the recorder of thread and sets what the thread evaluates.
func Attach(thread *starlark.Thread, r *Recorder, kind ModuleKind) {
	thread.SetLocal(localRecorder, r)
	thread.SetLocal(localKind, kind)
}

// KindOf returns the module kind a thread was attached with.
func KindOf(thread *starlark.Thread) ModuleKind {
	k, _ := thread.Local(localKind).(ModuleKind)
	return k
}

// recorderOf returns the thread's recorder, or nil outside an evaluation.
func recorderOf(thread *starlark.Thread) *Recorder {
	r, _ := thread.Local(localRecorder).(*Recorder)
	return r
}

// declare returns the recorder for a declaring builtin, refusing when the
// thread is evaluating a library's top level.
func declare(thread *starlark.Thread, what string) (*Recorder, error) {
	r := recorderOf(thread)
	if r == nil {
		return nil, fmt.Errorf("%s: called outside a fleet evaluation", what)
	}
	if KindOf(thread) == LibraryModule {
		file := thread.CallFrame(1).Pos.Filename()
		return nil, fmt.Errorf("%s: the library %s may not declare at its top level: "+
			"define a function that declares and call it from the fleet, or bring the file in with include()", what, file)
	}
	return r, nil
}

// callerPos is the position a declaration is recorded at: the innermost
// call in the fleet file the thread is evaluating. A machine declared by a
// library function (darwin_laptop("stibnite")) is thus placed at the
// fleet.star line that names it, not at the line inside the library that
// every laptop shares: that is the line the user edits to fix it.
func callerPos(thread *starlark.Thread) model.Pos {
	depth := thread.CallStackDepth()
	for i := 1; i < depth; i++ {
		if p := thread.CallFrame(i).Pos; p.Filename() == thread.Name {
			return model.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
		}
	}
	p := thread.CallFrame(1).Pos
	return model.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}

// path resolves a file path written in the calling file.
func (r *Recorder) path(thread *starlark.Thread, rel string) (string, error) {
	if model.NeedsEscape(rel) {
		// Printed into generated files and onto terminals as it is.
		return "", errors.New(model.BadFileName(rel))
	}
	if r.resolvePath == nil {
		return rel, nil
	}
	return r.resolvePath(thread.CallFrame(1).Pos.Filename(), rel)
}

package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// convert turns what go.starlark.net returns into fleet's positioned
// errors. An error that already is one (from a file this one loaded or
// included) passes through unchanged, so the user sees the innermost
// position, where the mistake is.
func (e *evaluator) convert(err error) error {
	var one *model.Error
	if errors.As(err, &one) {
		return one
	}
	var many model.Errors
	if errors.As(err, &many) {
		return many
	}
	var serr syntax.Error
	if errors.As(err, &serr) {
		src, _ := e.read(serr.Pos.Filename()) // for explaining Python habits; none is fine
		return explainSyntax(serr, src)
	}
	var rerrs resolve.ErrorList
	if errors.As(err, &rerrs) {
		var out model.Errors
		for _, r := range rerrs {
			out = append(out, &model.Error{Pos: posOf(r.Pos), Msg: explainResolve(r.Msg)})
		}
		return out
	}
	var eerr *starlark.EvalError
	if errors.As(err, &eerr) {
		return e.evalError(eerr)
	}
	return err
}

// evalError positions a runtime error at the innermost Starlark frame and
// keeps the rest of the backtrace as notes, outermost first.
func (e *evaluator) evalError(ee *starlark.EvalError) error {
	msg := ee.Msg
	var bad *badLabel
	switch {
	case errors.As(ee, &bad) && strings.HasPrefix(msg, "cannot load "+bad.name+": "):
		// Starlark names the module as written: quote it, as the rest of
		// the message does.
		msg = "cannot load " + bad.Error()
	case strings.Contains(msg, "too many steps"):
		msg = fmt.Sprintf("evaluation exceeded the step limit of %d steps: look for a runaway loop or comprehension, or raise --max-steps", e.maxSteps)
	case IsMemoryLimit(msg):
		msg = e.memory.MemoryLimitMessage("evaluation")
	case strings.Contains(msg, "Starlark computation cancelled"):
		msg = "evaluation cancelled: " + strings.TrimPrefix(msg, "Starlark computation cancelled: ")
	}
	return PositionedError(msg, ee.CallStack)
}

// PositionedError is msg at the innermost Starlark frame of stack (a
// builtin's own frame is skipped), with the calls that led there as
// notes, outermost first. fleet test reports its errors the same way.
func PositionedError(msg string, stack starlark.CallStack) *model.Error {
	frames := stack
	if n := len(frames); n > 0 && frames[n-1].Pos.Filename() == "<builtin>" {
		frames = frames[:n-1]
	}
	out := &model.Error{Msg: msg}
	if len(frames) == 0 {
		return out
	}
	out.Pos = posOf(frames[len(frames)-1].Pos)
	for i := 0; i < len(frames)-1; i++ {
		out.Notes = append(out.Notes, model.Note{Pos: posOf(frames[i].Pos),
			Msg: fmt.Sprintf("in %s, calling %s", frames[i].Name, frames[i+1].Name)})
	}
	return out
}

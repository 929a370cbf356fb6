package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one configuration problem, positioned in the YAML file.
// Its text is "FILE:LINE:COL: KEY.PATH: message"; LINE:COL is left out when
// unknown and KEY.PATH when the problem is not about one key.
type Error struct {
	File string
	Line int
	Col  int
	// Path is the dotted key path, e.g. "sources[0].slot".
	Path string
	Msg  string
	// Err is the underlying cause, when there is one (e.g. an os error).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// errorList collects problems so that one run reports all of them, in file
// order, instead of making the user fix them one at a time.
type errorList []*Error

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	sorted := slices.Clone(l)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
	if len(sorted) == 1 {
		return sorted[0]
	}
	errs := make([]error, len(sorted))
	for i, e := range sorted {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Errors returns every *Error inside err (which may be an errors.Join of
// them), in order. It returns nil when err holds none.
func Errors(err error) []*Error {
	var out []*Error
	for _, e := range flatten(err) {
		var ce *Error
		if errors.As(e, &ce) {
			out = append(out, ce)
		}
	}
	return out
}

// flatten expands errors.Join trees (and wrappers of them) into leaves.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	// A wrapper around a join, e.g. fmt.Errorf("x: %w", errors.Join(a, b)):
	// look through it so each joined error is still found.
	if inner := errors.Unwrap(err); inner != nil {
		if _, ok := inner.(interface{ Unwrap() []error }); ok {
			return flatten(inner)
		}
	}
	return []error{err}
}

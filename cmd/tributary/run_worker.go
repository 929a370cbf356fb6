package main

import (
	"errors"

	"github.com/tributary-cdc/tributary/worker"
)

// runWorker runs the pipeline until ctx is cancelled. It is a variable so
// that tests can replace the worker; this file is the one place that wires
// the command to the worker package.
var runWorker = worker.Run

// isConfigError reports whether an error from runWorker is a problem in the
// pipeline file, which exits 2 like `validate` would.
func isConfigError(err error) bool {
	var ce *worker.ConfigError
	return errors.As(err, &ce)
}

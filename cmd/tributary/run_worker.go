package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/tributary-cdc/tributary/config"
)

// runWorker runs the pipeline until ctx is cancelled. It is a variable so the
// command tree can be built before the worker package exists; this file is
// the one place that wires it (to worker.Run).
var runWorker = func(ctx context.Context, p *config.Pipeline, log *slog.Logger) error {
	return errors.New("the worker is not part of this build yet")
}

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/worker"
)

// runWorker runs the pipeline until ctx is cancelled. Config errors found
// while opening connectors exit 2, like those found while parsing.
var runWorker = func(ctx context.Context, p *config.Pipeline, log *slog.Logger) error {
	err := worker.Run(ctx, p, log)
	var ce *worker.ConfigError
	if errors.As(err, &ce) {
		return usageErr(ce.Err)
	}
	return err
}

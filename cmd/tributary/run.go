package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
)

func newRunCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "run -f FILE",
		Short: "Run the pipeline's connectors until interrupted",
		Long: `Run the sources and sinks of a pipeline config. Without log.brokers the log
and the schema registry are embedded in this process.

SIGINT or SIGTERM stops cleanly: connectors flush, offsets are committed and
replication slots released. A second signal exits at once (the offsets
already committed stay valid, so nothing is lost, but some events are sent
again on restart).

Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad config.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPipeline(file)
			if err != nil {
				return err
			}
			log := newLogger(p.Worker, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			finished := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				select {
				case <-ctx.Done():
				case <-finished:
				}
				// Until stop below, only a signal (or the parent) cancels ctx.
				if ctx.Err() != nil && cmd.Context().Err() == nil {
					log.Info("stopping: flushing and committing offsets; send the signal again to exit at once", "cause", context.Cause(ctx))
				}
				// Restore the default action, so a second signal kills the process.
				stop()
			})
			err = runWorker(ctx, p, log)
			close(finished)
			wg.Wait()
			var cfgErr *config.Error
			switch {
			case err == nil, errors.Is(err, context.Canceled) && ctx.Err() != nil:
				return nil
			case isConfigError(err) || errors.As(err, &cfgErr):
				return usageErr(err)
			}
			return runtimeErr(err)
		},
	}
	addFileFlag(cmd, &file)
	return cmd
}

func newLogger(w config.Worker, out io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: w.SlogLevel()}
	var h slog.Handler
	if w.LogFormat == "json" {
		h = slog.NewJSONHandler(out, opts)
	} else {
		h = slog.NewTextHandler(out, opts)
	}
	return slog.New(h)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/worker"
)

func newBackfillCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "backfill -f FILE SINK",
		Short: "Fill one sink's database from the log up to its head, then exit",
		Long: `Run sink SINK of the pipeline until it has applied everything in its topics
up to the head of the log as it was when the command started, then stop
cleanly and exit. This is how a new service's database is filled from the
compacted topics; afterwards 'tributary run' keeps it following the log.

Unlike replay, backfill never discards what the target already holds: it
starts where the sink's offsets in the target say (or at the sink's 'start'
on its very first run), applies batches with their offsets in one
transaction each, and can be interrupted at any point (even kill -9) and run
again to continue.

Stop the worker running this sink first: both would write the copy. In
embedded mode the log's folder is locked by the worker anyway.

Progress (records applied, rate, records left, ETA) goes to stderr every second.

Exit codes: 0 caught up, 1 failed, 2 bad config or arguments.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPipeline(file)
			if err != nil {
				return err
			}
			log := newLogger(p.Worker, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return backfill(ctx, p, args[0], log, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addFileFlag(cmd, &file)
	return cmd
}

func backfill(ctx context.Context, p *config.Pipeline, name string, log *slog.Logger, out, progress io.Writer) error {
	spec, target, err := openSinkEntry(p, name, log)
	if err != nil {
		return usageErr(err)
	}
	// A second handle on the target reads the committed offsets while the
	// sink runs: progress and the end condition come from what is durable.
	_, probe, err := openSinkEntry(p, name, log)
	if err != nil {
		_ = target.Close()
		return usageErr(err)
	}
	defer probe.Close()
	svc, err := worker.StartServices(ctx, p, log)
	if err != nil {
		_ = target.Close()
		return runtimeErr(err)
	}
	defer svc.Close()
	cl, err := svc.NewClient()
	if err != nil {
		_ = target.Close()
		return runtimeErr(err)
	}
	defer cl.Close()
	heads, err := sink.Heads(ctx, kadm.NewClient(cl), spec)
	if err != nil {
		_ = target.Close()
		return runtimeErr(fmt.Errorf("sink %s: %w", name, err))
	}
	if err := probe.Connect(ctx); err != nil {
		_ = target.Close()
		return runtimeErr(fmt.Errorf("sink %s: %w", name, err))
	}
	var total int64
	for _, h := range heads {
		total += h
	}
	fmt.Fprintf(progress, "backfilling sink %s up to the head of %d partitions\n", name, len(heads))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		runErr <- sink.Run(runCtx, spec, target, sink.Deps{
			NewClient: svc.NewClient,
			Decoder:   schema.NewDecoder(schema.SRFetcher{Client: svc.Registry}),
			Logger:    log.With("sink", name, "backfill", true),
		})
	}()

	began := time.Now()
	var first int64 = -1
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-runErr:
			if err == nil && ctx.Err() != nil {
				return runtimeErr(fmt.Errorf("sink %s: backfill interrupted; run it again to continue: %w", name, ctx.Err()))
			}
			if err == nil {
				err = errors.New("the sink stopped before reaching the head")
			}
			return runtimeErr(err)
		case <-tick.C:
		}
		left, err := backfillLeft(ctx, probe, name, heads)
		if err != nil {
			cancel()
			<-runErr
			return runtimeErr(err)
		}
		done := total - left
		if first < 0 {
			first = done
		}
		el := time.Since(began).Seconds()
		rate := float64(done-first) / el
		eta := "-"
		if rate > 0 {
			eta = (time.Duration(float64(left)/rate) * time.Second).Round(time.Second).String()
		}
		if left == 0 {
			fmt.Fprintf(progress, "caught up: %d records in the log applied, %.0f records/s\n", total, rate)
			cancel()
			if err := <-runErr; err != nil {
				return runtimeErr(err)
			}
			fmt.Fprintf(out, "sink %s backfilled up to the head of the log\n", name)
			return nil
		}
		fmt.Fprintf(progress, "backfilling: %d of %d records, %.0f records/s, %d left, ETA %s\n", done, total, rate, left, eta)
	}
}

// backfillLeft is how many records of heads the target has not committed.
func backfillLeft(ctx context.Context, t sink.Target, name string, heads map[sink.TopicPartition]int64) (int64, error) {
	tx, err := t.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("sink %s: reading progress: %w", name, err)
	}
	next, err := tx.LoadOffsets(ctx, name)
	_ = tx.Rollback(ctx)
	if err != nil {
		return 0, fmt.Errorf("sink %s: reading progress from tributary_offsets: %w", name, err)
	}
	var left int64
	for tp, h := range heads {
		left += max(h-next[tp], 0)
	}
	return left, nil
}

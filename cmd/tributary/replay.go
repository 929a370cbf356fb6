package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/worker"
)

func newReplayCmd() *cobra.Command {
	var file string
	var inPlace bool
	cmd := &cobra.Command{
		Use:   "replay -f FILE SINK",
		Short: "Rebuild one sink's copy from offset zero of the log",
		Long: `Rebuild the copy of sink SINK from offset zero of its topics, up to the head
of the log, and exit.

Stop the worker running this sink first ('tributary run' with the same file):
both would write the copy and its offsets. In embedded mode the log's folder
is locked by the worker anyway.

By default the copy is built beside the live one, then swapped in atomically
with its offsets, so readers never see a half-built copy:
  postgres  tables in schema <schema>__tributary_replay, moved with
            ALTER TABLE ... SET SCHEMA in one transaction
  mysql     tables <table>__replay in the same database, swapped with one
            RENAME TABLE statement
  sqlite    a new file <path>.replay renamed over <path> (close other
            connections to the file: it leaves WAL mode before the rename)

--in-place truncates each table and the sink's offsets (in the transaction of
the first batch written to it) and reloads it: less space, but readers see a
partial copy until the replay ends.

A replay interrupted at any point (even kill -9) is simply run again: the
shadow copy is dropped and rebuilt from offset zero. An interrupted in-place
replay must be run again before the worker is restarted.

Progress (records, rate, lag behind the head, ETA) goes to stderr every second.

Exit codes: 0 replayed, 1 failed, 2 bad config or arguments.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPipeline(file)
			if err != nil {
				return err
			}
			log := newLogger(p.Worker, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			spec, target, err := openSinkEntry(p, args[0], log)
			if err != nil {
				return usageErr(err)
			}
			svc, err := worker.StartServices(ctx, p, log)
			if err != nil {
				_ = target.Close()
				return runtimeErr(err)
			}
			defer svc.Close()
			deps := sink.Deps{
				NewClient: svc.NewClient,
				Decoder:   schema.NewDecoder(schema.SRFetcher{Client: svc.Registry}),
				Logger:    log.With("sink", spec.Name, "replay", true),
			}
			mode := "shadow copy, then swap"
			if inPlace {
				mode = "in place"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "replaying sink %s from offset zero (%s)\n", spec.Name, mode)
			err = sink.Replay(ctx, spec, target, deps, sink.ReplayOptions{
				InPlace:  inPlace,
				Progress: func(pr sink.ReplayProgress) { printReplayProgress(cmd.ErrOrStderr(), pr) },
			})
			if err != nil {
				return runtimeErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sink %s replayed from offset zero to the head of the log\n", spec.Name)
			return nil
		},
	}
	addFileFlag(cmd, &file)
	cmd.Flags().BoolVar(&inPlace, "in-place", false, "truncate and reload the live tables instead of building a shadow copy and swapping it in")
	return cmd
}

func printReplayProgress(w io.Writer, p sink.ReplayProgress) {
	eta := "-"
	if p.ETA > 0 {
		eta = p.ETA.Round(time.Second).String()
	}
	state := "replaying"
	if p.Done {
		state = "caught up"
	}
	fmt.Fprintf(w, "%s: %d records applied, %.0f records/s, lag %d records, ETA %s, %d tables\n",
		state, p.Records, p.Rate, p.Lag, eta, p.Tables)
}

// openSinkEntry decodes the `sinks:` entry named name and opens its target
// (not connected).
func openSinkEntry(p *config.Pipeline, name string, log *slog.Logger) (sink.Spec, sink.Target, error) {
	spec, target, _, err := openSinkConfig(p, name, log)
	return spec, target, err
}

// openSinkConfig is openSinkEntry that also returns the target's config.
func openSinkConfig(p *config.Pipeline, name string, log *slog.Logger) (sink.Spec, sink.Target, sink.Config, error) {
	var c *config.Connector
	var names []string
	for _, s := range p.Sinks {
		names = append(names, s.Name)
		if s.Name == name {
			c = s
		}
	}
	if c == nil {
		return sink.Spec{}, nil, nil, fmt.Errorf("%s: no sink named %q (sinks: %v)", p.File, name, names)
	}
	d, ok := sink.Lookup(c.Type)
	if !ok {
		return sink.Spec{}, nil, nil, c.Errorf("type", "unknown sink type %q (known: %v)", c.Type, sink.Drivers())
	}
	spec := sink.DefaultSpec()
	cfg := d.NewConfig()
	if err := c.Decode(&spec, cfg); err != nil {
		return sink.Spec{}, nil, nil, err
	}
	spec.Name = c.Name
	spec.InternalTopics = worker.InternalTopics(p, log)
	target, err := d.Open(c.Name, cfg, log.With("sink", c.Name))
	if err != nil {
		return sink.Spec{}, nil, nil, fmt.Errorf("%s (%s): %w", c.Path, c.Name, err)
	}
	return spec, target, cfg, nil
}

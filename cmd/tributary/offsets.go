package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tributary-cdc/tributary/broker"
	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/offsets"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/source"
)

func newOffsetsCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "offsets -f FILE [CONNECTOR...]",
		Short: "Show the committed positions of sources and sinks, and each sink's lag",
		Long: `Print where each connector of the pipeline would resume:

  sources  the Debezium-style offset in the offsets topic (log.offsets_topic),
           under the Kafka Connect key ["<name>",{"server":"<topic_prefix>"}]
  sinks    the next offset of every topic partition in the target's
           tributary_offsets table, with the head of the log and the lag

Without CONNECTOR names, every connector of the file is shown. The log is read
through log.brokers, or through the running worker's embedded broker
(log.listen). Nothing is changed, except that a sink target's offsets table is
created if it did not exist.

Exit codes: 0 shown, 1 the log or a target cannot be read, 2 bad config or
arguments.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPipeline(file)
			if err != nil {
				return err
			}
			if err := checkNames(p, args); err != nil {
				return usageErr(err)
			}
			log := newLogger(config.Worker{LogLevel: "warn"}, cmd.ErrOrStderr())
			return showOffsets(cmd.Context(), p, args, log, cmd.OutOrStdout())
		},
	}
	addFileFlag(cmd, &file)
	return cmd
}

func checkNames(p *config.Pipeline, want []string) error {
	var all []string
	for _, c := range append(slices.Clone(p.Sources), p.Sinks...) {
		all = append(all, c.Name)
	}
	for _, n := range want {
		if !slices.Contains(all, n) {
			return fmt.Errorf("%s: no source or sink named %q (connectors: %s)", p.File, n, strings.Join(all, ", "))
		}
	}
	return nil
}

func showOffsets(ctx context.Context, p *config.Pipeline, names []string, log *slog.Logger, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	picked := func(n string) bool { return len(names) == 0 || slices.Contains(names, n) }
	kc, kopts, _, err := tailOptions{file: p.File}.endpoints()
	if err != nil {
		return err
	}
	cl, err := broker.NewClient(kc, kopts...)
	if err != nil {
		return runtimeErr(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.ListTopics(ctx, p.Log.OffsetsTopic); err != nil {
		hint := ""
		if p.Log.Embedded() {
			hint = " (the embedded log is served by a running `tributary run`)"
		}
		return runtimeErr(fmt.Errorf("cannot reach the log at %s%s: %w", strings.Join(kc.Brokers, ","), hint, err))
	}

	store := offsets.NewStore(cl, p.Log.OffsetsTopic)
	for _, c := range p.Sources {
		if !picked(c.Name) {
			continue
		}
		d, ok := source.Lookup(c.Type)
		if !ok {
			continue // checkConnectors already refused it
		}
		cfg := d.NewConfig()
		if err := c.Decode(cfg); err != nil {
			return usageErr(err)
		}
		off, err := store.Load(ctx, c.Name, cfg.TopicPrefix())
		if err != nil {
			return runtimeErr(fmt.Errorf("source %s: reading %s: %w", c.Name, p.Log.OffsetsTopic, err))
		}
		key := string(offsets.Key(c.Name, cfg.TopicPrefix()))
		if off == nil {
			fmt.Fprintf(out, "source %s (%s) key %s: no offset committed (the next run starts with its snapshot mode)\n", c.Name, c.Type, key)
			continue
		}
		b, _ := json.Marshal(off)
		fmt.Fprintf(out, "source %s (%s) key %s: %s\n", c.Name, c.Type, key, b)
	}

	for _, c := range p.Sinks {
		if !picked(c.Name) {
			continue
		}
		if err := showSinkOffsets(ctx, p, c.Name, adm, log, out); err != nil {
			return runtimeErr(err)
		}
	}
	return nil
}

func showSinkOffsets(ctx context.Context, p *config.Pipeline, name string, adm *kadm.Client, log *slog.Logger, out io.Writer) error {
	_, target, err := openSinkEntry(p, name, log)
	if err != nil {
		return usageErr(err)
	}
	defer target.Close()
	if err := target.Connect(ctx); err != nil {
		return fmt.Errorf("sink %s: %w", name, err)
	}
	tx, err := target.Begin(ctx)
	if err != nil {
		return fmt.Errorf("sink %s: %w", name, err)
	}
	next, err := tx.LoadOffsets(ctx, name)
	_ = tx.Rollback(ctx)
	if err != nil {
		return fmt.Errorf("sink %s: reading tributary_offsets: %w", name, err)
	}
	// The runtime's "this sink has started" marker row is not a position.
	delete(next, sink.TopicPartition{Topic: "", Partition: -1})
	if len(next) == 0 {
		fmt.Fprintf(out, "sink %s: no offsets stored in its target (the next run starts at its `start` position)\n", name)
		return nil
	}
	var topics []string
	for tp := range next {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("sink %s: end offsets of %v: %w", name, topics, err)
	}
	tps := make([]sink.TopicPartition, 0, len(next))
	for tp := range next {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b sink.TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	fmt.Fprintf(out, "sink %s:\n", name)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TOPIC\tPARTITION\tNEXT\tHEAD\tLAG")
	var total int64
	for _, tp := range tps {
		head, lag := "?", "?"
		if o, ok := ends.Lookup(tp.Topic, tp.Partition); ok && o.Err == nil {
			head = fmt.Sprint(o.Offset)
			l := max(o.Offset-next[tp], 0)
			total += l
			lag = fmt.Sprint(l)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\n", tp.Topic, tp.Partition, next[tp], head, lag)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "  total lag: %d records\n", total)
	return nil
}

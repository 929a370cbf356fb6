package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/offsets"
	"github.com/tributary-cdc/tributary/source"
	"github.com/tributary-cdc/tributary/worker"
)

func newSnapshotCmd() *cobra.Command {
	var file, where string
	cmd := &cobra.Command{
		Use:   "snapshot -f FILE SOURCE TABLE... [--where COND]",
		Short: "Read tables of a source again, incrementally, while it streams",
		Long: `Ask source SOURCE to read the given tables again, in chunks between
watermarks of its change stream, while streaming goes on (see "Snapshots" in
the README). The rows are sent as op=r events with source.snapshot
"incremental"; --where reads only the rows a SQL condition selects.

The running worker (worker.http of the file) takes the request at once. With
no worker running, the request is recorded in the source's offset (the
offsets topic) and done at its next start.

Exit codes: 0 requested, 1 the worker refused it or the log cannot be
reached, 2 bad config or arguments.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPipeline(file)
			if err != nil {
				return err
			}
			var spec *config.Connector
			var names []string
			for _, s := range p.Sources {
				names = append(names, s.Name)
				if s.Name == args[0] {
					spec = s
				}
			}
			if spec == nil {
				return usageErr(fmt.Errorf("%s: no source named %q (sources: %s)", p.File, args[0], strings.Join(names, ", ")))
			}
			log := newLogger(config.Worker{LogLevel: "warn"}, cmd.ErrOrStderr())
			return requestSnapshot(cmd.Context(), p, spec, args[1:], where, log, cmd.OutOrStdout())
		},
	}
	addFileFlag(cmd, &file)
	cmd.Flags().StringVar(&where, "where", "", "SQL condition selecting the rows to read, e.g. \"updated_at > '2024-01-01'\"")
	return cmd
}

func requestSnapshot(ctx context.Context, p *config.Pipeline, spec *config.Connector, tables []string, where string, log *slog.Logger, out io.Writer) error {
	addr := p.Worker.HTTP
	host, port, err := net.SplitHostPort(addr)
	if err == nil && port != "0" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		done, err := askWorker(ctx, addr, spec.Name, tables, where, out)
		if done || err != nil {
			return err
		}
	}
	return recordSnapshot(ctx, p, spec, tables, where, log, out)
}

// askWorker posts the request to a running worker. done is false when no
// worker listens there.
func askWorker(ctx context.Context, addr, name string, tables []string, where string, out io.Writer) (bool, error) {
	body, _ := json.Marshal(map[string]any{"tables": tables, "where": where})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/connectors/"+name+"/snapshot", bytes.NewReader(body))
	if err != nil {
		return false, usageErr(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return false, nil
		}
		return true, runtimeErr(fmt.Errorf("worker at http://%s: %w", addr, err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK:
		fmt.Fprintf(out, "snapshot of %s requested from the running worker at %s; it runs while streaming\n", strings.Join(tables, ", "), addr)
		return true, nil
	case http.StatusAccepted:
		fmt.Fprintf(out, "snapshot of %s queued at the running worker at %s; the source takes it once it streams\n", strings.Join(tables, ", "), addr)
		return true, nil
	case http.StatusNotFound:
		return true, runtimeErr(fmt.Errorf("the worker at %s does not run source %s: %s", addr, name, strings.TrimSpace(string(msg))))
	default:
		return true, runtimeErr(fmt.Errorf("the worker at %s refused: %s", addr, strings.TrimSpace(string(msg))))
	}
}

// recordSnapshot adds the request to the source's committed offset, for a
// source that is not running.
func recordSnapshot(ctx context.Context, p *config.Pipeline, spec *config.Connector, tables []string, where string, log *slog.Logger, out io.Writer) error {
	d, ok := source.Lookup(spec.Type)
	if !ok {
		return usageErr(spec.Errorf("type", "unknown source type %q", spec.Type))
	}
	cfg := d.NewConfig()
	if err := spec.Decode(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	svc, err := worker.StartServices(ctx, registryOff(p), log)
	if err != nil {
		return runtimeErr(err)
	}
	defer svc.Close()
	cl, err := svc.NewClient()
	if err != nil {
		return runtimeErr(err)
	}
	defer cl.Close()
	store := offsets.NewStore(cl, p.Log.OffsetsTopic)
	off, err := store.Load(ctx, spec.Name, cfg.TopicPrefix())
	if err != nil {
		return runtimeErr(fmt.Errorf("source %s: %w", spec.Name, err))
	}
	if off == nil {
		fmt.Fprintf(out, "source %s has no offset yet: its first start takes a snapshot of every table anyway\n", spec.Name)
		return nil
	}
	rec, err := store.Record(spec.Name, cfg.TopicPrefix(), source.AddSnapshotTasks(off, tables, where))
	if err != nil {
		return runtimeErr(err)
	}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return runtimeErr(fmt.Errorf("source %s: write offset to %s: %w", spec.Name, p.Log.OffsetsTopic, err))
	}
	fmt.Fprintf(out, "no worker is running: snapshot of %s recorded in the offset of source %s; it runs at the next start\n", strings.Join(tables, ", "), spec.Name)
	return nil
}

// registryOff is the pipeline without its embedded registry: recording an
// offset needs the log only.
func registryOff(p *config.Pipeline) *config.Pipeline {
	q := *p
	q.Registry.URL = "external"
	return &q
}

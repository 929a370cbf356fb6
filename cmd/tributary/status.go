package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type workerStatus struct {
	Started    time.Time `json:"started"`
	Connectors map[string]struct {
		Kind  string    `json:"kind"`
		Type  string    `json:"type"`
		State string    `json:"state"`
		Error string    `json:"error,omitempty"`
		Since time.Time `json:"since"`
		// Attempt counts restarts after transient errors while retrying.
		Attempt int `json:"attempt,omitempty"`
	} `json:"connectors"`
	// Snapshots are the snapshot progress of each source, per table.
	Snapshots map[string][]struct {
		Table      string `json:"table"`
		Kind       string `json:"kind"`
		Rows       int64  `json:"rows"`
		Estimate   int64  `json:"estimate"`
		RowsPerSec int64  `json:"rows_per_sec"`
		ETA        string `json:"eta"`
		Done       bool   `json:"done"`
	} `json:"snapshots,omitempty"`
}

func newStatusCmd() *cobra.Command {
	var file, addr string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status (-f FILE | --http HOST:PORT)",
		Short: "Show the connectors of a running worker and their state",
		Long: `Ask a running worker (its worker.http endpoint, /status) for the state of each
connector: running, standby (another worker of the group runs it), waiting
(the worker is joining its group), retrying (a transient error; restarting
with backoff), stopped or failed (with the error).

Exit codes: 0 every connector is running or standby, 1 a connector failed or
the worker cannot be reached, 2 bad config or arguments.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (file == "") == (addr == "") {
				return usageErr(fmt.Errorf("give either -f FILE or --http HOST:PORT"))
			}
			if file != "" {
				p, err := loadPipeline(file)
				if err != nil {
					return err
				}
				addr = p.Worker.HTTP
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil || port == "0" {
				return usageErr(fmt.Errorf("worker http address %q: need host:port with a fixed port", addr))
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return showStatus(cmd.Context(), addr, asJSON, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "pipeline config whose worker.http to ask")
	cmd.Flags().StringVar(&addr, "http", "", "worker HTTP address, host:port")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the worker's /status JSON as is")
	return cmd
}

func showStatus(ctx context.Context, addr string, asJSON bool, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return usageErr(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return runtimeErr(fmt.Errorf("no worker answers at http://%s (is `tributary run` up?): %w", addr, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return runtimeErr(fmt.Errorf("reading http://%s/status: %w", addr, err))
	}
	if resp.StatusCode != http.StatusOK {
		return runtimeErr(fmt.Errorf("http://%s/status answered %s", addr, resp.Status))
	}
	var st workerStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return runtimeErr(fmt.Errorf("http://%s/status is not a tributary status: %w", addr, err))
	}
	if asJSON {
		_, _ = out.Write(body)
	} else {
		fmt.Fprintf(out, "worker at http://%s, up %s\n", addr, time.Since(st.Started).Round(time.Second))
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONNECTOR\tKIND\tTYPE\tSTATE\tSINCE\tERROR")
		names := make([]string, 0, len(st.Connectors))
		for n := range st.Connectors {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			c := st.Connectors[n]
			state := c.State
			if c.Attempt > 0 {
				state = fmt.Sprintf("%s (attempt %d)", state, c.Attempt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n, c.Kind, c.Type, state, c.Since.Format(time.RFC3339), c.Error)
		}
		_ = tw.Flush()
		if len(st.Snapshots) > 0 {
			fmt.Fprintln(out)
			tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SNAPSHOT OF	TABLE	KIND	ROWS	ESTIMATE	PERCENT	ROWS/S	ETA")
			srcs := make([]string, 0, len(st.Snapshots))
			for n := range st.Snapshots {
				srcs = append(srcs, n)
			}
			slices.Sort(srcs)
			for _, n := range srcs {
				for _, p := range st.Snapshots[n] {
					pct, eta := "?", p.ETA
					if p.Estimate > 0 {
						pct = fmt.Sprintf("%.1f%%", 100*float64(p.Rows)/float64(p.Estimate))
					}
					if p.Done {
						pct, eta = "done", "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", n, p.Table, p.Kind, p.Rows, p.Estimate, pct, p.RowsPerSec, eta)
				}
			}
			_ = tw.Flush()
		}
	}
	var failed []string
	for n, c := range st.Connectors {
		if c.State == "failed" {
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return runtimeErr(fmt.Errorf("failed connectors: %v", failed))
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

func (b *bench) snapshot(ctx context.Context) error {
	db := "bench_snap_" + b.runID
	u, drop, err := b.createDB(ctx, db)
	if err != nil {
		return err
	}
	defer drop()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Errorf("connect %s: %w", db, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE TABLE t (id bigint PRIMARY KEY, payload text NOT NULL)"); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	n := b.o.snapshotRows
	b.logf("snapshot: generating %d rows in %s", n, db)
	t := time.Now()
	const chunk = 1_000_000
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		if _, err := c.Exec(ctx, "INSERT INTO t SELECT g, "+payloadSQL+" FROM generate_series($1::bigint, $2::bigint) g", lo, hi); err != nil {
			return fmt.Errorf("insert rows %d-%d: %w", lo, hi, err)
		}
	}
	if _, err := c.Exec(ctx, "VACUUM ANALYZE t"); err != nil {
		return fmt.Errorf("vacuum analyze: %w", err)
	}
	// Write the freshly loaded table out now: otherwise the checkpointer
	// and the kernel write it back during the measured runs, and the disk
	// they share slows tributary's fsyncs while COPY to nowhere never waits
	// for the disk.
	if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	b.logf("snapshot: table ready in %s", time.Since(t).Round(time.Second))

	// Baseline: COPY of the whole table to nowhere; a second pass so both
	// sides read a warm cache.
	var copyEl time.Duration
	for range 2 {
		t = time.Now()
		tag, err := c.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT * FROM t) TO STDOUT")
		if err != nil {
			return fmt.Errorf("copy to stdout: %w", err)
		}
		copyEl = time.Since(t)
		if tag.RowsAffected() != int64(n) {
			return fmt.Errorf("copy returned %d rows, want %d", tag.RowsAffected(), n)
		}
	}
	copyRate := float64(n) / copyEl.Seconds()
	b.logf("snapshot: COPY TO STDOUT %d rows in %s (%.0f rows/s)", n, copyEl.Round(time.Millisecond), copyRate)

	variants := strings.Split(b.o.logExtra, ";")
	for i, v := range variants {
		if err := b.snapshotRun(ctx, u, n, copyRate, i, v, len(variants) > 1); err != nil {
			return err
		}
	}
	return nil
}

// snapshotRun snapshots table t of database u with tributary, the log
// section extended with logExtra ("key: value" pairs separated by commas).
func (b *bench) snapshotRun(ctx context.Context, u string, n int, copyRate float64, idx int, logExtra string, named bool) error {
	logAddr, regAddr, httpAddr := ports(basePort(2))
	extra := ""
	var env []string
	for _, kv := range strings.Split(logExtra, ",") {
		kv = strings.TrimSpace(kv)
		if e, ok := strings.CutPrefix(kv, "env "); ok {
			env = append(env, e) // an environment variable of the worker
		} else if bin, ok := strings.CutPrefix(kv, "bin "); ok {
			env = append(env, "TRIBUTARY_BENCH_BIN="+bin) // another build, for A/B runs
		} else if kv != "" {
			extra += "  " + kv + "\n"
		}
	}
	name := fmt.Sprintf("snapshot%d", idx)
	yaml := fmt.Sprintf(`log:
  data_dir: %s
  listen: %s
%sregistry:
  listen: %s
worker:
  http: %s
sources:
  - name: bench
    type: postgres
    url: %s
    tables: [public.t]
    topic_prefix: benchs%s
    slot: bench_s_%s_%d
    snapshot: initial_only
`, filepath.Join(b.work, name, "log"), logAddr, extra, regAddr, httpAddr, u, b.runID, b.runID, idx)
	start := time.Now()
	p, err := b.startTributary(ctx, name, yaml, httpAddr, env...)
	if err != nil {
		return err
	}
	var t0 time.Time
	var c0 int64
	timeout := time.After(20 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-p.done:
			break wait
		case <-timeout:
			_, _ = p.stop()
			return fmt.Errorf("tributary snapshot not done after 20 min; log tail:\n%s", p.tail())
		case <-tick.C:
			if !t0.IsZero() {
				continue
			}
			if v, err := produced(ctx, p.metrics); err == nil && v > 0 {
				t0, c0 = time.Now(), v
				if b.o.profile != "" {
					go b.cpuProfile(ctx, httpAddr, idx)
				}
			}
		}
	}
	end := time.Now()
	if p.waitErr != nil {
		return fmt.Errorf("tributary initial_only exited with %v; log tail:\n%s", p.waitErr, p.tail())
	}
	if t0.IsZero() {
		return fmt.Errorf("never saw a produced event before exit; log tail:\n%s", p.tail())
	}
	rate := float64(int64(n)-c0) / end.Sub(t0).Seconds()
	var rss int64
	var cpu time.Duration
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	label := "embedded"
	if named {
		label = "embedded " + strings.TrimSpace(logExtra)
	}
	b.logf("snapshot (%s): tributary %.0f rows/s (first event to exit %s; process %s, CPU %s = %.2f µs/row), peak RSS %s",
		label, rate, end.Sub(t0).Round(time.Millisecond), end.Sub(start).Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/float64(n), mb(rss))
	ratio := rate / copyRate
	b.add(row{measure: fmt.Sprintf("snapshot, %d rows", n), mode: label, figure: fmt.Sprintf("%.0f rows/s", rate),
		baseline: fmt.Sprintf("%.0f rows/s COPY", copyRate), ratio: fmt.Sprintf("%.2f×", ratio), target: "≥ 0.7×", verdict: verdict(ratio >= 0.7)})
	rssRow(b, "snapshot", label, rss)
	b.notes = append(b.notes, fmt.Sprintf("snapshot (%s): tributary process wall time %s incl. start-up and exit, CPU %s; rate counted from the first produced event to exit",
		label, end.Sub(start).Round(time.Millisecond), cpu.Round(time.Millisecond)))
	return nil
}

// cpuProfile saves a CPU profile of the worker (its /debug/pprof) to
// -profile; the bench figures are unaffected but for pprof's own overhead.
func (b *bench) cpuProfile(ctx context.Context, httpAddr string, idx int) {
	kind := "profile"
	if strings.HasSuffix(b.o.profile, ".trace") {
		kind = "trace" // an execution trace, for go tool trace
	}
	u := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", httpAddr, kind, b.o.profileSecs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		b.logf("profile: %v", err)
		return
	}
	resp, err := (&http.Client{Timeout: time.Duration(b.o.profileSecs+30) * time.Second}).Do(req)
	if err != nil {
		b.logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.logf("profile: status %s, %d bytes, %v", resp.Status, len(data), err)
		return
	}
	path := b.o.profile
	if idx > 0 {
		path += "." + strconv.Itoa(idx)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.logf("profile: %v", err)
		return
	}
	b.logf("profile: %d-second CPU profile written to %s", b.o.profileSecs, path)
}

package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
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

	logAddr, regAddr, httpAddr := ports(basePort(2))
	yaml := fmt.Sprintf(`log:
  data_dir: %s
  listen: %s
registry:
  listen: %s
worker:
  http: %s
sources:
  - name: bench
    type: postgres
    url: %s
    tables: [public.t]
    topic_prefix: benchs%s
    slot: bench_s_%s
    snapshot: initial_only
`, filepath.Join(b.work, "snapshot", "log"), logAddr, regAddr, httpAddr, u, b.runID, b.runID)
	start := time.Now()
	p, err := b.startTributary(ctx, "snapshot", yaml, httpAddr)
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
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
	}
	b.logf("snapshot: tributary %.0f rows/s (first event to exit %s; process %s), peak RSS %s",
		rate, end.Sub(t0).Round(time.Millisecond), end.Sub(start).Round(time.Millisecond), mb(rss))
	ratio := rate / copyRate
	b.add(row{measure: fmt.Sprintf("snapshot, %d rows", n), mode: "embedded", figure: fmt.Sprintf("%.0f rows/s", rate),
		baseline: fmt.Sprintf("%.0f rows/s COPY", copyRate), ratio: fmt.Sprintf("%.2f×", ratio), target: "≥ 0.7×", verdict: verdict(ratio >= 0.7)})
	rssRow(b, "snapshot", "embedded", rss)
	b.notes = append(b.notes, fmt.Sprintf("snapshot: tributary process wall time %s incl. start-up and exit; rate counted from the first produced event to exit", end.Sub(start).Round(time.Millisecond)))
	return nil
}

package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

const warmupRows = 20

func (b *bench) latency(ctx context.Context) error {
	var errs []string
	for _, s := range strings.Split(b.o.latSinks, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if s != "sqlite" && s != "postgres" {
			return fmt.Errorf("-latency-sinks: unknown copy %q (want sqlite or postgres)", s)
		}
		if err := b.latencyRun(ctx, s); err != nil {
			errs = append(errs, fmt.Sprintf("%s copy: %v", s, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// idReader returns the ids >= from that are visible in the copy; the table
// may not exist yet.
type idReader func(ctx context.Context, from int64) ([]int64, error)

// latencyRun measures commit → visible in the copy: PostgreSQL source →
// embedded log → copy in one worker, single-row commits at the set rate, and
// a poller that reads the copy every few milliseconds.
func (b *bench) latencyRun(ctx context.Context, kind string) error {
	db := "bench_sinklat_" + kind + "_" + b.runID
	u, err := b.createDB(ctx, db)
	if err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Errorf("connect %s: %w", db, err)
	}
	defer c.Close(ctx)
	slot := "bench_sl_" + kind + "_" + b.runID
	for _, q := range []string{
		"CREATE TABLE t (id bigint PRIMARY KEY, commit_us bigint NOT NULL, payload text NOT NULL)",
		"CREATE PUBLICATION bench_pub FOR TABLE t",
		"SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	prefix := "benchsl" + b.runID
	dir := filepath.Join(b.work, "latency-"+kind)
	var sinkEntry string
	var read idReader
	var closeRead func()
	switch kind {
	case "sqlite":
		path := filepath.Join(dir, "copy.db")
		sinkEntry = fmt.Sprintf("    type: sqlite\n    path: %s\n", path)
		var rdb *sql.DB
		closeRead = func() {
			if rdb != nil {
				rdb.Close()
			}
		}
		read = func(ctx context.Context, from int64) ([]int64, error) {
			if rdb == nil {
				d, err := openSQLite(path, true)
				if err != nil {
					return nil, err
				}
				rdb = d
			}
			rows, err := rdb.QueryContext(ctx, "SELECT id FROM public_t WHERE id >= ?", from)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				ids = append(ids, id)
			}
			return ids, rows.Err()
		}
	case "postgres":
		cu, err := b.createDB(ctx, "bench_sinklatcp_"+b.runID)
		if err != nil {
			return err
		}
		sinkEntry = fmt.Sprintf("    type: postgres\n    url: %s\n", cu)
		rc, err := pgx.Connect(ctx, cu)
		if err != nil {
			return fmt.Errorf("connect copy: %w", err)
		}
		closeRead = func() { rc.Close(context.Background()) }
		read = func(ctx context.Context, from int64) ([]int64, error) {
			rows, err := rc.Query(ctx, "SELECT id FROM public.t WHERE id >= $1", from)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowTo[int64])
		}
	}
	defer closeRead()

	l := freeListeners()
	// The sink runs with its defaults (flush_interval 50ms); the change
	// topic appears with the first warm-up row and is found by the next
	// topic refresh (10 s).
	yaml := l.header(filepath.Join(dir, "log")) + fmt.Sprintf(`sources:
  - name: bench
    type: postgres
    url: %s
    tables: [public.t]
    topic_prefix: %s
    slot: %s
    publication: bench_pub
    snapshot: never
sinks:
  - name: bench-lat
%s    topics: [%s.public.t]
`, u, prefix, slot, sinkEntry, prefix)
	p, _, err := b.runPipeline(ctx, dir, yaml, l.http)
	if err != nil {
		return err
	}
	defer p.stop()

	total := int(float64(b.o.latRate) * b.o.latDur.Seconds())
	commitAt := make([]atomic.Int64, total)
	seenAt := make([]int64, total) // poller-owned
	var seen, warm atomic.Int64

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var perr error
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		low := int64(-warmupRows) // smallest id not yet seen
		warmSeen := map[int64]bool{}
		tick := time.NewTicker(b.o.latPoll)
		defer tick.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
			ids, err := read(pctx, low)
			now := time.Now().UnixMicro()
			if err != nil {
				if pctx.Err() != nil {
					return
				}
				if warm.Load() < warmupRows {
					continue // the copy's table is created with the first batch
				}
				perr = fmt.Errorf("polling the copy: %w", err)
				cancel()
				return
			}
			for _, id := range ids {
				switch {
				case id < 0:
					if !warmSeen[id] {
						warmSeen[id] = true
						warm.Add(1)
					}
				case id < int64(total) && seenAt[id] == 0:
					seenAt[id] = now
					seen.Add(1)
				}
			}
			for low < int64(total) && (low < 0 && warmSeen[low] || low >= 0 && seenAt[low] != 0) {
				low++
			}
		}
	}()

	// Warm up: source streaming, topic and schema created, sink consuming
	// and the copy's table created.
	for i := 1; i <= warmupRows; i++ {
		if _, err := c.Exec(ctx, "INSERT INTO t VALUES ($1, 0, 'warm')", -i); err != nil {
			return fmt.Errorf("warm-up insert: %w", err)
		}
	}
	wd := time.Now().Add(90 * time.Second)
	for warm.Load() < warmupRows {
		if p.exited() {
			return fmt.Errorf("tributary exited during warm-up (%v); log tail:\n%s", p.waitErr, p.tail())
		}
		if time.Now().After(wd) || pctx.Err() != nil {
			return fmt.Errorf("warm-up rows not in the copy after 90s (%d/%d, poller error %v); log tail:\n%s", warm.Load(), warmupRows, perr, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.logf("latency (%s copy): %d single-row commits at %d/s from %d writers", kind, total, b.o.latRate, b.o.latWorkers)
	interval := time.Second / time.Duration(b.o.latRate)
	var next atomic.Int64
	var wg sync.WaitGroup
	werrs := make([]error, b.o.latWorkers)
	payload := fmt.Sprintf("%0200d", 0)
	start := time.Now()
	for w := range b.o.latWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc, err := pgx.Connect(ctx, u)
			if err != nil {
				werrs[w] = err
				return
			}
			defer wc.Close(context.Background())
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				if _, err := wc.Exec(ctx, "INSERT INTO t VALUES ($1, $2, $3)", i, time.Now().UnixMicro(), payload); err != nil {
					werrs[w] = fmt.Errorf("insert id %d: %w", i, err)
					return
				}
				commitAt[i].Store(time.Now().UnixMicro())
			}
		}()
	}
	wg.Wait()
	loadEl := time.Since(start)
	for _, e := range werrs {
		if e != nil {
			return fmt.Errorf("writer: %w", e)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for seen.Load() < int64(total) && time.Now().Before(deadline) && pctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	pwg.Wait()
	if perr != nil {
		return perr
	}
	if got := seen.Load(); got < int64(total) {
		return fmt.Errorf("copy shows %d of %d rows 60s after the load ended; log tail:\n%s", got, total, p.tail())
	}
	lat := make([]int64, total)
	for i := range total {
		lat[i] = seenAt[i] - commitAt[i].Load()
	}
	// p99 per quarter of the run (ids are in commit order): a rising series
	// means the copy falls behind the load, a flat one a fixed delay.
	var quarters []string
	for q := range 4 {
		part := slices.Clone(lat[q*total/4 : (q+1)*total/4])
		slices.Sort(part)
		if len(part) > 0 {
			quarters = append(quarters, ms(time.Duration(part[int(0.99*float64(len(part)))])*time.Microsecond))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		return time.Duration(lat[min(len(lat)-1, int(q*float64(len(lat))))]) * time.Microsecond
	}
	p50, p99, pmax := pct(0.50), pct(0.99), time.Duration(lat[len(lat)-1])*time.Microsecond
	achieved := rate(total, loadEl)
	rss, err := p.stop()
	if err != nil {
		return fmt.Errorf("peak RSS: %w", err)
	}
	name := map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[kind]
	b.logf("latency (%s copy): achieved %.0f commits/s; p50 %s p99 %s max %s; peak RSS %s", kind, achieved, p50, p99, pmax, mb(rss))
	b.add(row{measure: fmt.Sprintf("latency p50, commit→%s copy, %.0f commits/s", name, achieved), mode: "embedded", figure: ms(p50), baseline: "-", ratio: "-", target: "-", verdict: "-"})
	b.add(row{measure: fmt.Sprintf("latency p99, commit→%s copy, %.0f commits/s", name, achieved), mode: "embedded", figure: ms(p99), baseline: "-", ratio: "-", target: "≤ 250 ms", verdict: verdict(p99 <= 250*time.Millisecond)})
	b.notes = append(b.notes, fmt.Sprintf("latency (%s copy): %d single-row transactions over %s (target %d/s, %d writers), p90 %s, p95 %s, max %s, p99 per quarter of the run %s; the copy is polled every %s for new ids, visibility stamped when the poll returns; worker (source + sink) peak RSS %s",
		kind, total, loadEl.Round(time.Millisecond), b.o.latRate, b.o.latWorkers, ms(pct(0.90)), ms(pct(0.95)), ms(pmax), strings.Join(quarters, " / "), b.o.latPoll, mb(rss)))
	return nil
}

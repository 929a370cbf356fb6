package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/tributary-cdc/tributary/schema"
)

const warmupRows = 20

func (b *bench) latency(ctx context.Context) error {
	db := "bench_lat_" + b.runID
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
	slot := "bench_l_" + b.runID
	for _, q := range []string{
		"CREATE TABLE t (id bigint PRIMARY KEY, commit_us bigint NOT NULL, payload text NOT NULL)",
		"CREATE PUBLICATION bench_pub FOR TABLE t",
		"SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	// Start from a quiet disk: a checkpoint still writing out an earlier
	// bulk load (another bench part, another run) and the kernel's
	// write-back of it delay every fsync of the commit→log path for the
	// length of the run. Flushed here, before tributary starts; the run
	// itself still pays for its own WAL, checkpoints and fsyncs.
	quiet := time.Now()
	if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint before the latency run: %w", err)
	}
	syscall.Sync()
	b.logf("latency: checkpoint and sync before the run took %s", time.Since(quiet).Round(time.Millisecond))
	b.notes = append(b.notes, "latency: a CHECKPOINT and a sync(2) run before the measured load, so write-back of earlier bulk loads is not measured as commit latency")

	logAddr, regAddr, httpAddr := ports(basePort(3))
	prefix := "benchl" + b.runID
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
    topic_prefix: %s
    slot: %s
    publication: bench_pub
    snapshot: never
`, filepath.Join(b.work, "latency", "log"), logAddr, regAddr, httpAddr, u, prefix, slot)
	p, err := b.startTributary(ctx, "latency", yaml, httpAddr)
	if err != nil {
		return err
	}
	defer p.stop()

	total := int(float64(b.o.latRate) * b.o.latDur.Seconds())
	commitAt := make([]atomic.Int64, total)
	recvAt := make([]atomic.Int64, total)
	var received, warm atomic.Int64

	srClient, err := sr.NewClient(sr.URLs("http://" + regAddr))
	if err != nil {
		return fmt.Errorf("registry client: %w", err)
	}
	dec := schema.NewDecoder(schema.SRFetcher{Client: srClient})
	topic := prefix + ".public.t"
	cl, err := kgo.NewClient(kgo.SeedBrokers(logAddr), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(10*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(200*time.Millisecond))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cerr error
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		for {
			fs := cl.PollFetches(cctx)
			now := time.Now().UnixMicro()
			if cctx.Err() != nil {
				return
			}
			var ferr error
			fs.EachError(func(t string, part int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", t, part, err) })
			if ferr != nil {
				b.logf("latency consumer: %v", ferr)
				continue
			}
			for _, r := range fs.Records() {
				_, v, err := dec.Decode(cctx, r.Value)
				if err != nil {
					cerr = fmt.Errorf("decode offset %d: %w", r.Offset, err)
					cancel()
					return
				}
				m, _ := v.(map[string]any)
				after, _ := m["after"].(map[string]any)
				id, ok := after["id"].(int64)
				if !ok {
					cerr = fmt.Errorf("offset %d: after.id is %T, want int64 (value %v)", r.Offset, after["id"], v)
					cancel()
					return
				}
				if id < 0 {
					warm.Add(1)
					continue
				}
				if id < int64(total) && recvAt[id].Load() == 0 {
					recvAt[id].Store(now)
					received.Add(1)
				}
			}
		}
	}()

	// Warm up: tributary connected, topic and schema exist, consumer assigned.
	for i := 1; i <= warmupRows; i++ {
		if _, err := c.Exec(ctx, "INSERT INTO t VALUES ($1, 0, 'warm')", -i); err != nil {
			return fmt.Errorf("warm-up insert: %w", err)
		}
	}
	wd := time.Now().Add(60 * time.Second)
	for warm.Load() < warmupRows {
		if p.exited() {
			return fmt.Errorf("tributary exited during warm-up (%v); log tail:\n%s", p.waitErr, p.tail())
		}
		if time.Now().After(wd) || cctx.Err() != nil {
			return fmt.Errorf("warm-up rows not consumed after 60s (%d/%d, consumer error %v); log tail:\n%s", warm.Load(), warmupRows, cerr, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.logf("latency: %d single-row commits at %d/s from %d writers", total, b.o.latRate, b.o.latWorkers)
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
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < int64(total) && time.Now().Before(deadline) && cctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	cwg.Wait()
	if cerr != nil {
		return cerr
	}
	if got := received.Load(); got < int64(total) {
		return fmt.Errorf("consumer received %d of %d events 30s after the load ended; log tail:\n%s", got, total, p.tail())
	}
	lat := make([]int64, total)
	for i := range total {
		lat[i] = recvAt[i].Load() - commitAt[i].Load()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		return time.Duration(lat[min(len(lat)-1, int(q*float64(len(lat))))]) * time.Microsecond
	}
	p50, p99, pmax := pct(0.50), pct(0.99), time.Duration(lat[len(lat)-1])*time.Microsecond
	achieved := float64(total) / loadEl.Seconds()
	rss, err := p.stop()
	if err != nil {
		return fmt.Errorf("peak RSS: %w", err)
	}
	b.logf("latency: achieved %.0f commits/s; p50 %s p99 %s max %s; peak RSS %s", achieved, p50, p99, pmax, mb(rss))
	fd := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	b.add(row{measure: fmt.Sprintf("latency p50, commit→consumer, %.0f commits/s", achieved), mode: "embedded", figure: fd(p50), baseline: "-", ratio: "-", target: "-", verdict: "-"})
	b.add(row{measure: fmt.Sprintf("latency p99, commit→consumer, %.0f commits/s", achieved), mode: "embedded", figure: fd(p99), baseline: "-", ratio: "-", target: "≤ 50 ms", verdict: verdict(p99 <= 50*time.Millisecond)})
	rssRow(b, "latency", "embedded", rss)
	b.notes = append(b.notes, fmt.Sprintf("latency: %d single-row transactions over %s (target rate %d/s, %d writers), p90 %s, p95 %s, max %s; commit→consumer receive (FetchMaxWait 10 ms, the least franz-go accepts) is an upper bound of commit→log append",
		total, loadEl.Round(time.Millisecond), b.o.latRate, b.o.latWorkers, fd(pct(0.90)), fd(pct(0.95)), fd(pmax)))
	return nil
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// streaming fills one backlog read by a slot pair per mode: slot a for
// tributary, twin slot b for pg_recvlogical.
func (b *bench) streaming(ctx context.Context, embedded, kafka bool) error {
	db := "bench_stream_" + b.runID
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
	pub := "bench_pub"
	for _, q := range []string{
		"CREATE TABLE t (id bigint PRIMARY KEY, payload text NOT NULL)",
		"CREATE PUBLICATION " + pub + " FOR TABLE t",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	// slotB is drained by pg_recvlogical before tributary runs and slotC
	// after it; the faster of the two is the baseline, so the order (cold
	// or warm WAL, background writes of the load) never favours tributary.
	type mode struct {
		name, slotA, slotB, slotC string
	}
	var modes []mode
	if embedded {
		modes = append(modes, mode{"embedded", "bench_e_a_" + b.runID, "bench_e_b_" + b.runID, "bench_e_c_" + b.runID})
	}
	if kafka {
		modes = append(modes, mode{"kafka", "bench_k_a_" + b.runID, "bench_k_b_" + b.runID, "bench_k_c_" + b.runID})
	}
	for _, m := range modes {
		for _, s := range []string{m.slotA, m.slotB, m.slotC} {
			if _, err := c.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", s); err != nil {
				return fmt.Errorf("create slot %s: %w", s, err)
			}
		}
	}
	n := b.o.streamRows
	b.logf("streaming: generating %d inserts in 1000-row transactions in %s", n, db)
	t := time.Now()
	for lo := 1; lo <= n; lo += 1000 {
		hi := min(lo+999, n)
		if _, err := c.Exec(ctx, "INSERT INTO t SELECT g, "+payloadSQL+" FROM generate_series($1::bigint, $2::bigint) g", lo, hi); err != nil {
			return fmt.Errorf("insert rows %d-%d: %w", lo, hi, err)
		}
	}
	var end string
	if err := c.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&end); err != nil {
		return fmt.Errorf("end lsn: %w", err)
	}
	b.logf("streaming: backlog ready in %s, end LSN %s", time.Since(t).Round(time.Millisecond), end)

	for _, m := range modes {
		// pg_recvlogical baseline on the twin slot.
		t := time.Now()
		cmd := exec.CommandContext(ctx, filepath.Join(b.pgBin, "pg_recvlogical"), "-d", u, "--slot", m.slotB, "--start",
			"-o", "proto_version=1", "-o", "publication_names="+pub, "--endpos", end, "--no-loop", "-f", "/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pg_recvlogical slot %s: %w: %s", m.slotB, err, out)
		}
		recvEl := time.Since(t)
		recvRate := float64(n) / recvEl.Seconds()
		b.logf("streaming %s: pg_recvlogical drained %d inserts in %s (%.0f events/s)", m.name, n, recvEl.Round(time.Millisecond), recvRate)

		rate, el, whole, rss, err := b.streamTributary(ctx, m.name, u, m.slotA, pub, int64(n))
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		b.logf("streaming %s: tributary %.0f events/s (%s from first event, %s from process start), peak RSS %s", m.name, rate, el.Round(time.Millisecond), whole.Round(time.Millisecond), mb(rss))
		t2 := time.Now()
		cmd2 := exec.CommandContext(ctx, filepath.Join(b.pgBin, "pg_recvlogical"), "-d", u, "--slot", m.slotC, "--start",
			"-o", "proto_version=1", "-o", "publication_names="+pub, "--endpos", end, "--no-loop", "-f", "/dev/null")
		if out, err := cmd2.CombinedOutput(); err != nil {
			return fmt.Errorf("pg_recvlogical slot %s: %w: %s", m.slotC, err, out)
		}
		recvEl2 := time.Since(t2)
		b.logf("streaming %s: pg_recvlogical again after tributary: %s (%.0f events/s)", m.name, recvEl2.Round(time.Millisecond), float64(n)/recvEl2.Seconds())
		if recvEl2 < recvEl {
			recvEl, recvRate = recvEl2, float64(n)/recvEl2.Seconds()
		}
		b.notes = append(b.notes, fmt.Sprintf("streaming %s: pg_recvlogical %s for %d inserts incl. connect (faster of a run before and a run after tributary); tributary %s from first event to %d events (%s from process start, %.0f ev/s on that basis, %.2f×)",
			m.name, recvEl.Round(time.Millisecond), n, el.Round(time.Millisecond), n, whole.Round(time.Millisecond), float64(n)/whole.Seconds(), float64(n)/whole.Seconds()/recvRate))
		target := 0.8
		if m.name == "kafka" {
			target = 0.6
		}
		ratio := rate / recvRate
		b.add(row{measure: fmt.Sprintf("streaming drain, %d inserts", n), mode: m.name,
			figure: fmt.Sprintf("%.0f ev/s", rate), baseline: fmt.Sprintf("%.0f ev/s pg_recvlogical", recvRate),
			ratio: fmt.Sprintf("%.2f×", ratio), target: fmt.Sprintf("≥ %.1f×", target), verdict: verdict(ratio >= target)})
		rssRow(b, "streaming", m.name, rss)
		// Release the slots' WAL early.
		for _, s := range []string{m.slotA, m.slotB, m.slotC} {
			_, _ = c.Exec(ctx, "SELECT pg_drop_replication_slot($1)", s)
		}
	}
	return nil
}

func (b *bench) streamTributary(ctx context.Context, mode, u, slot, pub string, n int64) (float64, time.Duration, time.Duration, int64, error) {
	base := basePort(0)
	if mode == "kafka" {
		base = basePort(1)
	}
	logAddr, regAddr, httpAddr := ports(base)
	prefix := "bench" + mode[:1] + b.runID
	var logCfg, regCfg string
	if mode == "embedded" {
		logCfg = fmt.Sprintf("log:\n  data_dir: %s\n  listen: %s\n", filepath.Join(b.work, "stream-embedded", "log"), logAddr)
		regCfg = fmt.Sprintf("registry:\n  listen: %s\n", regAddr)
	} else {
		stop, err := b.startRegistry(ctx, regAddr, "_schemas_bench_"+b.runID)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		defer stop()
		logCfg = fmt.Sprintf("log:\n  brokers: [%s]\n  offsets_topic: bench-offsets-%s\n", b.brokers, b.runID)
		regCfg = fmt.Sprintf("registry:\n  url: http://%s\n", regAddr)
	}
	yaml := logCfg + regCfg + fmt.Sprintf(`worker:
  http: %s
sources:
  - name: bench
    type: postgres
    url: %s
    tables: [public.t]
    topic_prefix: %s
    slot: %s
    publication: %s
    snapshot: never
`, httpAddr, u, prefix, slot, pub)
	p, err := b.startTributary(ctx, "stream-"+mode, yaml, httpAddr)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	rate, el, whole, err := drain(ctx, p, n, 5*time.Minute)
	rss, herr := p.stop()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if herr != nil {
		return 0, 0, 0, 0, fmt.Errorf("peak RSS: %w", herr)
	}
	return rate, el, whole, rss, nil
}

// startRegistry runs `tributary registry` against the Kafka cluster and
// waits until it answers.
func (b *bench) startRegistry(ctx context.Context, addr, topic string) (func(), error) {
	logf, err := os.Create(filepath.Join(b.work, "registry.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, b.bin, "registry", "--brokers", b.brokers, "--listen", addr, "--topic", topic)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			data, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("registry exited: %s", data)
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := httpc.Get("http://" + addr + "/subjects")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop, nil
			}
		}
	}
	stop()
	return nil, fmt.Errorf("registry on %s not ready after 30s", addr)
}

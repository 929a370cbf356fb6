// Command bench measures tributary against the PostgreSQL baselines named in
// issue 2 section 3 (pg_recvlogical drain, COPY TO STDOUT, commit latency) and
// prints one table of figures, ratios and targets. It needs the test services
// (integration/services/up.sh) and TRIBUTARY_BIN; `make bench` sets both up.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

type opts struct {
	streamRows   int
	snapshotRows int
	latRate      int
	latDur       time.Duration
	latWorkers   int
	skipKafka    bool
	only         string
	out          string
	keep         bool
	profile      string
	profileSecs  int
	logExtra     string
}

// row is one line of the result table.
type row struct {
	measure, mode, figure, baseline, ratio, target, verdict string
}

type bench struct {
	o       opts
	pgURL   string // admin URL (postgres database)
	pgBin   string
	bin     string
	brokers string
	runID   string
	work    string
	rows    []row
	notes   []string
}

func main() {
	var o opts
	flag.IntVar(&o.streamRows, "stream-rows", 1_000_000, "inserts in the streaming backlog (1000-row transactions)")
	flag.IntVar(&o.snapshotRows, "snapshot-rows", 10_000_000, "rows of the snapshot table")
	flag.IntVar(&o.latRate, "latency-rate", 5000, "single-row commits per second in the latency run")
	flag.DurationVar(&o.latDur, "latency-duration", 20*time.Second, "length of the latency run")
	flag.IntVar(&o.latWorkers, "latency-workers", 16, "writer goroutines (each its own connection) in the latency run")
	flag.BoolVar(&o.skipKafka, "skip-kafka", false, "skip the Apache Kafka streaming run")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: stream,kafka,snapshot,latency")
	flag.StringVar(&o.out, "out", "bin/bench-results.md", "also write the result table here (empty: don't)")
	flag.BoolVar(&o.keep, "keep", false, "keep the bench databases and work folder")
	flag.StringVar(&o.profile, "profile", "", "write a CPU profile of the tributary worker during the snapshot run to this file (an execution trace if it ends in .trace)")
	flag.StringVar(&o.logExtra, "snapshot-log", "", "extra settings of the log section in the snapshot run, e.g. 'compression: lz4,sync_writes: false' ('env K=V' sets a variable of the worker, 'bin PATH' runs another build); variants separated by ';' snapshot the same table one after the other (for experiments; the default run uses the defaults)")
	flag.IntVar(&o.profileSecs, "profile-seconds", 5, "length of the -profile CPU profile, from the first produced event")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func need(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("%s is not set: run `make bench` (it starts the services and builds the binary)", name)
	}
	return v, nil
}

func run(ctx context.Context, o opts) error {
	b := &bench{o: o, runID: fmt.Sprintf("%d%03d", time.Now().Unix()%100000, rand.IntN(1000))}
	var err error
	if b.pgURL, err = need("TRIBUTARY_TEST_PG_URL"); err != nil {
		return err
	}
	if b.pgBin, err = need("TRIBUTARY_PG_BIN"); err != nil {
		return err
	}
	if b.bin, err = need("TRIBUTARY_BIN"); err != nil {
		return err
	}
	if b.bin, err = filepath.Abs(b.bin); err != nil {
		return err
	}
	if !o.skipKafka {
		if b.brokers, err = need("TRIBUTARY_TEST_KAFKA_BROKERS"); err != nil {
			return err
		}
	}
	b.work, err = os.MkdirTemp("", "tributary-bench-")
	if err != nil {
		return fmt.Errorf("work folder: %w", err)
	}
	if !o.keep {
		defer os.RemoveAll(b.work)
	}
	want := func(part string) bool {
		if o.only == "" {
			return part != "kafka" || !o.skipKafka
		}
		for _, p := range strings.Split(o.only, ",") {
			if strings.TrimSpace(p) == part {
				return true
			}
		}
		return false
	}
	start := time.Now()
	var errs []error
	// Latency first: after the bulk loads of the other parts, PostgreSQL's
	// checkpointer and the page cache write-back would be measured instead.
	if want("latency") {
		if err := b.latency(ctx); err != nil {
			errs = append(errs, fmt.Errorf("latency: %w", err))
			b.logf("latency FAILED: %v", err)
		}
	}
	if want("stream") || want("kafka") {
		if err := b.streaming(ctx, want("stream"), want("kafka")); err != nil {
			errs = append(errs, fmt.Errorf("streaming: %w", err))
			b.logf("streaming FAILED: %v", err)
		}
	}
	if want("snapshot") {
		if err := b.snapshot(ctx); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: %w", err))
			b.logf("snapshot FAILED: %v", err)
		}
	}
	b.notes = append(b.notes, fmt.Sprintf("whole bench: %s on %d-core machine", time.Since(start).Round(time.Second), numCPU()))
	table := b.render()
	fmt.Println()
	fmt.Print(table)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(table), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", o.out, err))
		} else {
			fmt.Printf("\n(table written to %s)\n", o.out)
		}
	}
	return errors.Join(errs...)
}

func numCPU() int {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\nprocessor") + boolInt(strings.HasPrefix(string(data), "processor"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) add(r row) { b.rows = append(b.rows, r) }

func (b *bench) render() string {
	var sb strings.Builder
	sb.WriteString("| measure | mode | tributary | baseline | ratio | target | result |\n")
	sb.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s |\n", r.measure, r.mode, r.figure, r.baseline, r.ratio, r.target, r.verdict)
	}
	if len(b.notes) > 0 {
		sb.WriteString("\n")
		for _, n := range b.notes {
			fmt.Fprintf(&sb, "- %s\n", n)
		}
	}
	return sb.String()
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// --- PostgreSQL helpers ---

func dbURL(admin, db string) string {
	u, err := url.Parse(admin)
	if err != nil {
		return admin
	}
	u.Path = "/" + db
	return u.String()
}

func (b *bench) createDB(ctx context.Context, name string) (string, func(), error) {
	c, err := pgx.Connect(ctx, b.pgURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect admin: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u := dbURL(b.pgURL, name)
	drop := func() {
		if b.o.keep {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, b.pgURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		rows, _ := c.Query(ctx, "SELECT slot_name FROM pg_replication_slots WHERE database = $1", name)
		slots, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, s := range slots {
			_, _ = c.Exec(ctx, "SELECT pg_drop_replication_slot($1)", s)
		}
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			b.logf("drop database %s: %v", name, err)
		}
	}
	return u, drop, nil
}

// payloadSQL yields about 200 bytes of text per row that zstd cannot fold to
// nothing (md5 of the id, repeated with a salt).
const payloadSQL = "substr(md5(g::text) || md5((g+1)::text) || md5((g+2)::text) || md5((g+3)::text) || md5((g+4)::text) || md5((g+5)::text) || md5((g+6)::text), 1, 200)"

// --- tributary process ---

type proc struct {
	cmd     *exec.Cmd
	metrics string
	done    chan struct{}
	started time.Time
	waitErr error
	stderr  *os.File
}

func (b *bench) startTributary(ctx context.Context, name, yaml, httpAddr string, env ...string) (*proc, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "tributary.log"))
	if err != nil {
		return nil, err
	}
	bin := b.bin
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "TRIBUTARY_BENCH_BIN="); ok {
			bin = v
		}
	}
	cmd := exec.CommandContext(ctx, bin, "run", "-f", cfg)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", b.bin, err)
	}
	p := &proc{cmd: cmd, metrics: "http://" + httpAddr + "/metrics", done: make(chan struct{}), stderr: logf, started: time.Now()}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process log, for error messages.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.stderr.Name())
	if len(data) > 1500 {
		data = data[len(data)-1500:]
	}
	return string(data)
}

// vmHWM reads the peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// stop sends SIGTERM after reading the peak RSS and waits for the exit.
func (p *proc) stop() (int64, error) {
	hwm, herr := vmHWM(p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return hwm, herr
}

var httpc = &http.Client{Timeout: 2 * time.Second}

// produced sums tributary_source_events_produced_total over all series.
func produced(ctx context.Context, metricsURL string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "tributary_source_events_produced_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		sum += v
	}
	return int64(sum), sc.Err()
}

// drain polls the metrics every 50 ms until target events were produced and
// returns the rate from the first observed event to target.
func drain(ctx context.Context, p *proc, target int64, timeout time.Duration) (rate float64, elapsed, sinceStart time.Duration, err error) {
	deadline := time.Now().Add(timeout)
	var t0 time.Time
	var c0 int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		case <-tick.C:
		}
		if p.exited() {
			return 0, 0, 0, fmt.Errorf("tributary exited early (%v); log tail:\n%s", p.waitErr, p.tail())
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("timeout after %s (t0=%v); log tail:\n%s", timeout, t0, p.tail())
		}
		n, err := produced(ctx, p.metrics)
		if err != nil {
			continue // not listening yet
		}
		now := time.Now()
		if n > 0 && t0.IsZero() {
			t0, c0 = now, n
		}
		if n >= target {
			el := now.Sub(t0)
			if el <= 0 || n == c0 {
				return 0, el, 0, fmt.Errorf("all %d events were produced before the first poll; raise -stream-rows", n)
			}
			return float64(target-c0) / el.Seconds(), el, now.Sub(p.started), nil
		}
	}
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func rssRow(b *bench, measure, mode string, rss int64) {
	b.add(row{measure: "peak RSS (" + measure + ")", mode: mode, figure: mb(rss), baseline: "-", ratio: "-", target: "< 150 MB", verdict: verdict(rss < 150<<20)})
}

func ports(base int) (logAddr, regAddr, httpAddr string) {
	return fmt.Sprintf("127.0.0.1:%d", base), fmt.Sprintf("127.0.0.1:%d", base+1), fmt.Sprintf("127.0.0.1:%d", base+2)
}

// basePort picks a port block below the ephemeral range, varying per run so
// a lingering process from an aborted run does not collide.
func basePort(slot int) int { return 20000 + (rand.IntN(300))*30 + slot*5 }

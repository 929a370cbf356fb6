// Command sinks measures tributary's sinks against physical baselines, as
// issue 3's benchmark section names them: the PostgreSQL, SQLite and MariaDB
// sinks applying 1M upserts from the log (against a bare COPY FROM, a bare
// multi-row INSERT in one transaction and LOAD DATA LOCAL INFILE), a replay
// of the 1M-row topic into PostgreSQL (time and peak RSS), and commit-to-copy
// latency at 5,000 changes/s. It prints one table with PASS/MISS next to the
// targets and appends it to bin/bench-results.md. It needs the test services
// (integration/services/up.sh) and TRIBUTARY_BIN; `make bench` sets both up.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

type opts struct {
	rows        int
	batchSize   int
	latRate     int
	latDur      time.Duration
	latWorkers  int
	latSinks    string
	latPoll     time.Duration
	only        string
	skipKafka   bool
	out         string
	keep        bool
	applyTimout time.Duration
	// pprofDir, when set, receives a CPU profile of each applying worker
	// taken from its first consumed record on (<sink>.pprof).
	pprofDir     string
	pprofSeconds int
}

// row is one line of the result table.
type row struct {
	measure, mode, figure, baseline, ratio, target, verdict string
}

type bench struct {
	o       opts
	pgURL   string // admin URL (postgres database)
	myURL   string // go-sql-driver DSN of the MariaDB server, no database
	bin     string
	runID   string
	work    string
	rows    []row
	notes   []string
	src     *sourceLog // the snapshotted 1M-row topic, shared by the apply and replay parts
	pgCopy  string     // URL of the PostgreSQL copy built by the apply part (replay rebuilds it)
	pgCfg   string     // pipeline file of that copy's sink
	cleanup []func()
}

func main() {
	var o opts
	flag.IntVar(&o.rows, "rows", 1_000_000, "rows of the source table snapshotted into the topic every sink applies")
	flag.IntVar(&o.batchSize, "batch-size", 0, "sinks' batch_size (0: the default)")
	flag.DurationVar(&o.applyTimout, "apply-timeout", 10*time.Minute, "give up on one sink's apply after this long")
	flag.IntVar(&o.latRate, "latency-rate", 5000, "single-row commits per second in the latency run")
	flag.DurationVar(&o.latDur, "latency-duration", 20*time.Second, "length of the latency run")
	flag.IntVar(&o.latWorkers, "latency-workers", 16, "writer goroutines (each its own connection) in the latency run")
	flag.StringVar(&o.latSinks, "latency-sinks", "sqlite,postgres", "copies measured by the latency run, one run each, comma-separated: sqlite,postgres")
	flag.DurationVar(&o.latPoll, "latency-poll", 5*time.Millisecond, "how often the copy is polled for new rows in the latency run")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: postgres,sqlite,mysql,replay,latency")
	flag.BoolVar(&o.skipKafka, "skip-kafka", false, "skip the replay through Apache Kafka (TRIBUTARY_TEST_KAFKA_BROKERS)")
	flag.StringVar(&o.out, "out", "bin/bench-results.md", "append the result table here (empty: don't)")
	flag.BoolVar(&o.keep, "keep", false, "keep the bench databases and work folder")
	flag.StringVar(&o.pprofDir, "pprof", "", "write a CPU profile of each applying worker (from its first record on) into this folder")
	flag.IntVar(&o.pprofSeconds, "pprof-seconds", 5, "length of each CPU profile")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench sinks:", err)
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
	if b.bin, err = need("TRIBUTARY_BIN"); err != nil {
		return err
	}
	if b.bin, err = filepath.Abs(b.bin); err != nil {
		return err
	}
	want := func(part string) bool {
		if o.only == "" {
			return true
		}
		for _, p := range strings.Split(o.only, ",") {
			if strings.TrimSpace(p) == part {
				return true
			}
		}
		return false
	}
	if want("mysql") {
		if b.myURL, err = need("TRIBUTARY_TEST_MYSQL_URL"); err != nil {
			return err
		}
	}
	b.work, err = os.MkdirTemp("", "tributary-bench-sinks-")
	if err != nil {
		return fmt.Errorf("work folder: %w", err)
	}
	defer func() {
		for i := len(b.cleanup) - 1; i >= 0; i-- {
			b.cleanup[i]()
		}
		if !o.keep {
			os.RemoveAll(b.work)
		}
	}()
	start := time.Now()
	loadStart := loadAvg()
	var errs []error
	part := func(name string, f func(context.Context) error) {
		if !want(name) {
			return
		}
		if err := f(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			b.logf("%s FAILED: %v", name, err)
		}
	}
	if want("postgres") || want("sqlite") || want("mysql") || want("replay") {
		if err := b.prepareSource(ctx); err != nil {
			errs = append(errs, fmt.Errorf("source topic: %w", err))
			b.logf("source topic FAILED: %v", err)
		}
	}
	if b.src != nil {
		part("postgres", b.applyPostgres)
		part("sqlite", b.applySQLite)
		part("mysql", b.applyMySQL)
		part("replay", b.replay)
	}
	part("latency", b.latency)
	b.notes = append(b.notes, fmt.Sprintf("load average (1 min) %s at the start and %s at the end: the machine is shared, figures move with it", loadStart, loadAvg()))
	b.notes = append(b.notes, fmt.Sprintf("whole sink bench: %s on a %d-core machine; rates count from the first record the sink consumed to the last change committed, so the log's start-up is left out", time.Since(start).Round(time.Second), numCPU()))
	table := b.render()
	fmt.Println()
	fmt.Print(table)
	if o.out != "" {
		if err := appendFile(o.out, "\n## Sinks (go run ./integration/bench/sinks, "+time.Now().UTC().Format(time.RFC3339)+")\n\n"+table); err != nil {
			errs = append(errs, fmt.Errorf("append to %s: %w", o.out, err))
		} else {
			fmt.Printf("\n(table appended to %s)\n", o.out)
		}
	}
	return errors.Join(errs...)
}

func appendFile(name, text string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func numCPU() int {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	n := strings.Count(string(data), "\nprocessor")
	if strings.HasPrefix(string(data), "processor") {
		n++
	}
	return n
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

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// ratioRow adds a throughput row compared with its baseline.
func (b *bench) ratioRow(measure, baselineName string, got, base, target float64) {
	r := got / base
	b.add(row{measure: measure, mode: "embedded", figure: fmt.Sprintf("%.0f rows/s", got),
		baseline: fmt.Sprintf("%.0f rows/s %s", base, baselineName), ratio: fmt.Sprintf("%.2f×", r),
		target: fmt.Sprintf("≥ %.1f×", target), verdict: verdict(r >= target)})
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

// createDB creates a database that is dropped (slots first) when the bench
// ends, unless -keep.
func (b *bench) createDB(ctx context.Context, name string) (string, error) {
	c, err := pgx.Connect(ctx, b.pgURL)
	if err != nil {
		return "", fmt.Errorf("connect admin: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	b.cleanup = append(b.cleanup, func() {
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
	})
	return dbURL(b.pgURL, name), nil
}

// --- tributary process ---

type proc struct {
	cmd     *exec.Cmd
	metrics string
	done    chan struct{}
	started time.Time
	waitErr error
	logPath string
	peak    atomic.Int64 // highest VmHWM sampled
}

// listeners are the loopback addresses of one tributary process.
type listeners struct{ log, registry, http string }

// freeListeners picks three consecutive free ports below the ephemeral range,
// at random so a lingering process of an aborted run does not collide.
func freeListeners() listeners {
	for {
		base := 20000 + rand.IntN(12000)
		ok := true
		for i := range 3 {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			a := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", base+i) }
			return listeners{a(0), a(1), a(2)}
		}
	}
}

// header is the log/registry/worker part of a pipeline on an embedded log.
func (l listeners) header(dataDir string) string {
	return fmt.Sprintf(`log:
  data_dir: %s
  listen: %s
registry:
  listen: %s
worker:
  http: %s
`, dataDir, l.log, l.registry, l.http)
}

// start runs `tributary <args...>` with its output in dir/tributary.log.
func (b *bench) start(ctx context.Context, dir, httpAddr string, args ...string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "tributary-"+args[0]+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = dir
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", b.bin, err)
	}
	p := &proc{cmd: cmd, metrics: "http://" + httpAddr + "/metrics", done: make(chan struct{}), logPath: logPath, started: time.Now()}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	go p.samplePeak()
	return p, nil
}

// runPipeline writes yaml to dir/pipeline.yaml and starts `tributary run`.
func (b *bench) runPipeline(ctx context.Context, dir, yaml, httpAddr string) (*proc, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, "", err
	}
	p, err := b.start(ctx, dir, httpAddr, "run", "-f", cfg)
	return p, cfg, err
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
	data, _ := os.ReadFile(p.logPath)
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

// samplePeak reads VmHWM every 50 ms while the process lives. The rusage
// of the exited child would be wrong: Linux carries the parent's RSS at
// fork into the child's ru_maxrss across exec, and this bench holds the
// exported rows in memory.
func (p *proc) samplePeak() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if hwm, err := vmHWM(p.cmd.Process.Pid); err == nil && hwm > p.peak.Load() {
			p.peak.Store(hwm)
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

// stop reads the peak RSS, sends SIGTERM and waits for the exit.
func (p *proc) stop() (int64, error) {
	if p.exited() {
		return p.maxRSS(), nil
	}
	hwm, herr := vmHWM(p.cmd.Process.Pid)
	hwm = max(hwm, p.peak.Load())
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return hwm, herr
}

// cpu is the CPU time of an exited process.
func (p *proc) cpu() time.Duration {
	if p.cmd.ProcessState == nil {
		return 0
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// maxRSS is the peak RSS of an exited process: the last VmHWM sampled, at
// most 50 ms before the exit.
func (p *proc) maxRSS() int64 { return p.peak.Load() }

var httpc = &http.Client{Timeout: 2 * time.Second}

// metricSums sums each named metric over all its series.
func metricSums(ctx context.Context, metricsURL string, names ...string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", metricsURL, resp.Status)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
				f := strings.Fields(line)
				v, err := strconv.ParseFloat(f[len(f)-1], 64)
				if err != nil {
					return nil, fmt.Errorf("metrics line %q: %w", line, err)
				}
				out[n] += v
			}
		}
	}
	return out, sc.Err()
}

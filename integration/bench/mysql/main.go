// Command mysql measures the MySQL/MariaDB source against the baselines of
// issue 4: a binlog backlog drained by the real binary into the embedded log
// versus a bare go-mysql BinlogSyncer that reads the same range and discards
// it; a snapshot versus `mysql -e 'SELECT * FROM t' > /dev/null`; and the peak
// RSS of the tributary process. It prints one table with PASS/MISS and
// appends it to bin/bench-results.md. It needs the test services
// (integration/services/up.sh) and TRIBUTARY_BIN; `make bench` sets both up.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	gosql "github.com/go-sql-driver/mysql"
)

type opts struct {
	streamRows   int
	snapshotRows int
	out          string
	keep         bool
	// pprofDir, when set, receives a CPU profile of the worker taken from
	// its first event on (drain.pprof, snapshot.pprof).
	pprofDir     string
	pprofSeconds int
	trace        bool
	skipDrain    bool
	skipSnapshot bool
	// logExtra is extra YAML of the log section, for experiments only.
	logExtra    string
	workerExtra string
}

type row struct {
	measure, figure, baseline, ratio, target, verdict string
}

type bench struct {
	o     opts
	dsn   string // go-sql-driver DSN of the server (no database)
	cfg   *gosql.Config
	bin   string
	runID string
	work  string
	db    string
	rows  []row
	notes []string
	admin *sql.DB
}

func main() {
	var o opts
	flag.IntVar(&o.streamRows, "stream-rows", 1_000_000, "row changes in the binlog backlog (1000-row transactions)")
	flag.IntVar(&o.snapshotRows, "snapshot-rows", 2_000_000, "rows of the snapshot table")
	flag.StringVar(&o.out, "out", "bin/bench-results.md", "append the result table here (empty: don't)")
	flag.BoolVar(&o.keep, "keep", false, "keep the bench database and work folder")
	flag.StringVar(&o.pprofDir, "pprof", "", "write CPU profiles of the worker (from its first event) into this folder")
	flag.IntVar(&o.pprofSeconds, "pprof-seconds", 3, "length of each CPU profile")
	flag.BoolVar(&o.trace, "trace", false, "with -pprof, also write a one-second execution trace (it slows the worker down)")
	flag.StringVar(&o.logExtra, "log-extra", "", "extra settings of the log section, e.g. 'compression: lz4,sync_writes: false' (for experiments; the measured run uses the defaults)")
	flag.StringVar(&o.workerExtra, "worker-extra", "", "extra settings of the worker section, e.g. 'max_in_flight_bytes: 32MiB' (for experiments; the measured run uses the defaults)")
	flag.BoolVar(&o.skipDrain, "skip-drain", false, "skip the binlog drain measure")
	flag.BoolVar(&o.skipSnapshot, "skip-snapshot", false, "skip the snapshot measure")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench mysql:", err)
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
	if b.dsn, err = need("TRIBUTARY_TEST_MYSQL_URL"); err != nil {
		return err
	}
	if b.cfg, err = gosql.ParseDSN(b.dsn); err != nil {
		return fmt.Errorf("TRIBUTARY_TEST_MYSQL_URL: %w", err)
	}
	if b.bin, err = need("TRIBUTARY_BIN"); err != nil {
		return err
	}
	if b.bin, err = filepath.Abs(b.bin); err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp("", "tributary-bench-mysql-"); err != nil {
		return fmt.Errorf("work folder: %w", err)
	}
	if !o.keep {
		defer os.RemoveAll(b.work)
	}
	if b.admin, err = sql.Open("mysql", b.dsn); err != nil {
		return err
	}
	defer b.admin.Close()
	b.admin.SetMaxOpenConns(1) // keeps the USE below
	b.db = "bench_my_" + b.runID
	for _, q := range []string{"CREATE DATABASE " + b.db, "USE " + b.db} {
		if _, err := b.admin.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if !o.keep {
		defer func() { _, _ = b.admin.Exec("DROP DATABASE IF EXISTS " + b.db) }()
	}

	start := time.Now()
	var errs []error
	if !o.skipDrain {
		if err := b.drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("binlog drain: %w", err))
			b.logf("binlog drain FAILED: %v", err)
		}
	}
	if !o.skipSnapshot {
		if err := b.snapshot(ctx); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: %w", err))
			b.logf("snapshot FAILED: %v", err)
		}
	}
	b.notes = append(b.notes, fmt.Sprintf("whole MySQL bench: %s; server %s", time.Since(start).Round(time.Second), b.serverVersion(ctx)))
	table := b.render()
	fmt.Println()
	fmt.Print(table)
	if o.out != "" {
		if err := appendFile(o.out, "\n## MySQL source ("+time.Now().UTC().Format(time.RFC3339)+")\n\n"+table); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", o.out, err))
		} else {
			fmt.Printf("\n(table appended to %s)\n", o.out)
		}
	}
	return errors.Join(errs...)
}

func appendFile(path, s string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *bench) serverVersion(ctx context.Context) string {
	var v string
	if err := b.admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return "?"
	}
	return v
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) render() string {
	var sb strings.Builder
	sb.WriteString("| measure (MySQL source, embedded log) | tributary | baseline | ratio | target | result |\n")
	sb.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s |\n", r.measure, r.figure, r.baseline, r.ratio, r.target, r.verdict)
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

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// payloadSQL is about 200 bytes of text per row that does not compress to
// nothing (md5s of the id).
const payloadSQL = "LEFT(CONCAT(MD5(seq),MD5(seq+1),MD5(seq+2),MD5(seq+3),MD5(seq+4),MD5(seq+5),MD5(seq+6)),200)"

// fill inserts rows lo..n into table in 1000-row transactions through
// MariaDB's sequence engine.
func (b *bench) fill(ctx context.Context, table string, n int) error {
	for lo := 1; lo <= n; lo += 1000 {
		hi := min(lo+999, n)
		q := fmt.Sprintf("INSERT INTO %s SELECT seq, %s FROM seq_%d_to_%d", table, payloadSQL, lo, hi)
		if _, err := b.admin.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("insert rows %d-%d into %s: %w", lo, hi, table, err)
		}
	}
	return nil
}

// binlogPos is the server's current binlog end.
func (b *bench) binlogPos(ctx context.Context) (mysql.Position, error) {
	rows, err := b.admin.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return mysql.Position{}, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return mysql.Position{}, fmt.Errorf("SHOW MASTER STATUS returned no row (log_bin off?)")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return mysql.Position{}, err
	}
	pos, err := strconv.ParseUint(vals[1].String, 10, 32)
	if err != nil {
		return mysql.Position{}, fmt.Errorf("SHOW MASTER STATUS position %q: %w", vals[1].String, err)
	}
	return mysql.Position{Name: vals[0].String, Pos: uint32(pos)}, nil
}

// --- binlog drain ---

func (b *bench) drain(ctx context.Context) error {
	if _, err := b.admin.ExecContext(ctx, "CREATE TABLE t (id BIGINT PRIMARY KEY, payload VARCHAR(200) NOT NULL)"); err != nil {
		return fmt.Errorf("create table t: %w", err)
	}
	base := basePort()
	yaml := b.pipeline("drain", base, "t", "never")

	// First run: records the table shape and commits the current position,
	// which becomes the start of the backlog.
	p, err := b.startTributary(ctx, "drain", yaml, base+2)
	if err != nil {
		return err
	}
	if err := p.waitLog("streaming the binlog", time.Minute); err != nil {
		p.stop()
		return err
	}
	p.stop()
	if p.waitErr != nil {
		return fmt.Errorf("first run exited with %v:\n%s", p.waitErr, p.tail())
	}

	n := b.o.streamRows
	from, err := b.binlogPos(ctx)
	if err != nil {
		return fmt.Errorf("binlog start: %w", err)
	}
	b.logf("drain: generating %d inserts in 1000-row transactions in %s.t", n, b.db)
	t := time.Now()
	if err := b.fill(ctx, "t", n); err != nil {
		return err
	}
	to, err := b.binlogPos(ctx)
	if err != nil {
		return fmt.Errorf("binlog end: %w", err)
	}
	b.logf("drain: backlog ready in %s, binlog %s:%d .. %s:%d", time.Since(t).Round(time.Millisecond), from.Name, from.Pos, to.Name, to.Pos)

	// Baseline: a bare BinlogSyncer over the same range, events discarded,
	// run before, between and after tributary's runs; the fastest counts, so
	// a busy moment of the machine does not flatter tributary. Like tributary's
	// figure, its rate runs from its first row event.
	var bs syncResult
	var syncEl, rowsEl time.Duration
	var syncRate float64
	baseline := func() error {
		t := time.Now()
		r, err := b.bareSync(ctx, from, to)
		if err != nil {
			return fmt.Errorf("bare BinlogSyncer: %w", err)
		}
		el := time.Since(t)
		if r.rows < int64(n) {
			return fmt.Errorf("bare BinlogSyncer saw %d rows of %s.t, want %d", r.rows, b.db, n)
		}
		rel := r.last.Sub(r.first)
		rate := float64(r.rows-r.firstRows) / rel.Seconds()
		b.logf("drain: bare BinlogSyncer read %d rows (%s of binlog) in %s (%s from its first row event): %.0f rows/s, %.1f MB/s",
			r.rows, mb(r.bytes), el.Round(time.Millisecond), rel.Round(time.Millisecond), rate, float64(r.bytes)/(1<<20)/rel.Seconds())
		if rate > syncRate {
			bs, syncEl, rowsEl, syncRate = r, el, rel, rate
		}
		return nil
	}
	if err := baseline(); err != nil {
		return err
	}

	// tributary gets the same treatment as the baseline: two runs over the
	// same backlog (the log folder is restored to its state before the
	// backlog between them), alternating with the baseline's, and the
	// faster counts. Its peak RSS is the higher of the two.
	logDir := filepath.Join(b.work, "drain", "log")
	saved := logDir + ".before-backlog"
	if err := copyTree(logDir, saved); err != nil {
		return fmt.Errorf("saving the log folder: %w", err)
	}
	var rate float64
	var el, whole time.Duration
	var rss int64
	for i := range 2 {
		if i > 0 {
			if err := os.RemoveAll(logDir); err != nil {
				return err
			}
			if err := copyTree(saved, logDir); err != nil {
				return fmt.Errorf("restoring the log folder: %w", err)
			}
		}
		p, err = b.startTributary(ctx, fmt.Sprintf("drain%d", i+2), yaml, base+2)
		if err != nil {
			return err
		}
		r, e, w, derr := b.measure(ctx, p, int64(n), "drain")
		hwm, herr := p.stop()
		if derr != nil {
			return derr
		}
		if herr != nil {
			return fmt.Errorf("peak RSS: %w", herr)
		}
		b.logf("drain: tributary run %d: %.0f events/s (%s from first event), peak RSS %s", i+1, r, e.Round(time.Millisecond), mb(hwm))
		if r > rate {
			rate, el, whole = r, e, w
		}
		rss = max(rss, hwm)
		if err := baseline(); err != nil {
			return err
		}
	}
	bytes := bs.bytes
	mbps := float64(bytes) / (1 << 20) / el.Seconds()
	b.logf("drain: tributary %.0f events/s, %.1f MB/s (%s from first event, %s from process start), peak RSS %s",
		rate, mbps, el.Round(time.Millisecond), whole.Round(time.Millisecond), mb(rss))
	ratio := rate / syncRate
	b.rows = append(b.rows, row{
		measure:  fmt.Sprintf("binlog drain, %d row changes (%s binlog)", n, mb(bytes)),
		figure:   fmt.Sprintf("%.0f ev/s, %.1f MB/s", rate, mbps),
		baseline: fmt.Sprintf("%.0f ev/s, %.1f MB/s bare BinlogSyncer", syncRate, float64(bytes)/(1<<20)/rowsEl.Seconds()),
		ratio:    fmt.Sprintf("%.2f×", ratio), target: "≥ 0.7×", verdict: verdict(ratio >= 0.7),
	})
	b.rows = append(b.rows, rssRow("peak RSS, binlog drain", rss))
	b.notes = append(b.notes, fmt.Sprintf("drain: BinlogSyncer (fastest of three runs, alternating with tributary's) %s from its first row event (%s incl. connect); tributary (faster of two runs over the same backlog) %s from its first event to %d events (%s from process start, %.0f ev/s on that basis)",
		rowsEl.Round(time.Millisecond), syncEl.Round(time.Millisecond), el.Round(time.Millisecond), n, whole.Round(time.Millisecond), float64(n)/whole.Seconds()))
	if !b.o.keep {
		_, _ = b.admin.ExecContext(ctx, "DROP TABLE t")
	}
	return nil
}

func rssRow(measure string, rss int64) row {
	return row{measure: measure, figure: mb(rss), baseline: "-", ratio: "-", target: "< 150 MB", verdict: verdict(rss < 150<<20)}
}

type syncResult struct {
	rows, bytes int64
	// first and last are when the first and last row events of the table
	// arrived; firstRows is the rows of the first one.
	first, last time.Time
	firstRows   int64
}

// bareSync reads the binlog from..to with go-mysql and nothing else: rows
// events are parsed (as any consumer must, with the library's defaults)
// and dropped.
func (b *bench) bareSync(ctx context.Context, from, to mysql.Position) (syncResult, error) {
	var res syncResult
	host, port, err := net.SplitHostPort(b.cfg.Addr)
	if err != nil {
		return res, err
	}
	pn, _ := strconv.Atoi(port)
	sy := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: uint32(3_000_000_000 + rand.IntN(1_000_000)), Flavor: "mariadb",
		Host: host, Port: uint16(pn), User: b.cfg.User, Password: b.cfg.Passwd,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer sy.Close()
	st, err := sy.StartSync(from)
	if err != nil {
		return res, err
	}
	file := from.Name
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			return res, err
		}
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
			continue // also sent (fake) at the start; not part of the range
		case *replication.RowsEvent:
			if string(e.Table.Schema) == b.db && string(e.Table.Table) == "t" {
				res.last = time.Now()
				if res.rows == 0 {
					res.first, res.firstRows = res.last, int64(len(e.Rows))
				}
				res.rows += int64(len(e.Rows))
			}
		}
		res.bytes += int64(ev.Header.EventSize)
		if (file == to.Name && ev.Header.LogPos >= to.Pos) || file > to.Name {
			return res, nil
		}
	}
}

// --- snapshot ---

func (b *bench) snapshot(ctx context.Context) error {
	if _, err := b.admin.ExecContext(ctx, "CREATE TABLE s (id BIGINT PRIMARY KEY, payload VARCHAR(200) NOT NULL)"); err != nil {
		return fmt.Errorf("create table s: %w", err)
	}
	n := b.o.snapshotRows
	b.logf("snapshot: generating %d rows in %s.s", n, b.db)
	t := time.Now()
	if err := b.fill(ctx, "s", n); err != nil {
		return err
	}
	if _, err := b.admin.ExecContext(ctx, "ANALYZE TABLE s"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	b.logf("snapshot: table ready in %s", time.Since(t).Round(time.Second))

	// Baseline: the mysql client, result to /dev/null; the second pass reads
	// a warm buffer pool, as tributary does after it.
	host, port, _ := net.SplitHostPort(b.cfg.Addr)
	var cliEl time.Duration
	for range 2 {
		cmd := exec.CommandContext(ctx, "mysql", "--no-defaults", "-h", host, "-P", port, "-u", b.cfg.User,
			"-e", "SELECT * FROM "+b.db+".s")
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+b.cfg.Passwd)
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = devnull, &stderr
		t = time.Now()
		err = cmd.Run()
		cliEl = time.Since(t)
		devnull.Close()
		if err != nil {
			return fmt.Errorf("mysql -e SELECT: %w: %s", err, stderr.String())
		}
	}
	cliRate := float64(n) / cliEl.Seconds()
	b.logf("snapshot: mysql -e 'SELECT * FROM s' > /dev/null: %d rows in %s (%.0f rows/s)", n, cliEl.Round(time.Millisecond), cliRate)

	base := basePort()
	p, err := b.startTributary(ctx, "snapshot", b.pipeline("snap", base, "s", "initial"), base+2)
	if err != nil {
		return err
	}
	rate, el, whole, derr := b.measure(ctx, p, int64(n), "snapshot")
	rss, herr := p.stop()
	if derr != nil {
		return derr
	}
	if herr != nil {
		return fmt.Errorf("peak RSS: %w", herr)
	}
	b.logf("snapshot: tributary %.0f rows/s (%s from first row, %s from process start), peak RSS %s", rate, el.Round(time.Millisecond), whole.Round(time.Millisecond), mb(rss))
	ratio := rate / cliRate
	b.rows = append(b.rows, row{
		measure: fmt.Sprintf("snapshot, %d rows", n), figure: fmt.Sprintf("%.0f rows/s", rate),
		baseline: fmt.Sprintf("%.0f rows/s mysql -e SELECT > /dev/null", cliRate),
		ratio:    fmt.Sprintf("%.2f×", ratio), target: "≥ 0.6×", verdict: verdict(ratio >= 0.6),
	})
	b.rows = append(b.rows, rssRow("peak RSS, snapshot", rss))
	b.notes = append(b.notes, fmt.Sprintf("snapshot: mysql client %s (second, warm pass); tributary %s from its first row (%s from process start, %.0f rows/s on that basis)",
		cliEl.Round(time.Millisecond), el.Round(time.Millisecond), whole.Round(time.Millisecond), float64(n)/whole.Seconds()))
	return nil
}

// --- tributary process ---

func (b *bench) pipeline(name string, base int, table, snapshot string) string {
	host, port, _ := net.SplitHostPort(b.cfg.Addr)
	var extra, wextra string
	for _, kv := range strings.Split(b.o.logExtra, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			extra += "  " + kv + "\n"
		}
	}
	for _, kv := range strings.Split(b.o.workerExtra, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			wextra += "  " + kv + "\n"
		}
	}
	return fmt.Sprintf(`log:
  data_dir: %s
  listen: 127.0.0.1:%d
%sregistry:
  listen: 127.0.0.1:%d
worker:
  http: 127.0.0.1:%d
%ssources:
  - name: bench%s%s
    type: mysql
    host: %s
    port: %s
    user: %s
    password: ${BENCH_MYSQL_PASSWORD}
    tables: [%s.%s]
    topic_prefix: bench%s%s
    snapshot: %s
`, filepath.Join(b.work, name, "log"), base, extra, base+1, base+2, wextra, name, b.runID, host, port, b.cfg.User, b.db, table, name, b.runID, snapshot)
}

// basePort picks a port block below the ephemeral range, varying per run so
// a lingering process from an aborted run does not collide.
func basePort() int { return 21000 + rand.IntN(300)*30 }

type proc struct {
	cmd     *exec.Cmd
	http    string
	metrics string
	done    chan struct{}
	started time.Time
	waitErr error
	logPath string
}

func (b *bench) startTributary(ctx context.Context, name, yaml string, httpPort int) (*proc, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "tributary.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, b.bin, "run", "-f", cfg)
	cmd.Env = append(os.Environ(), "BENCH_MYSQL_PASSWORD="+b.cfg.Passwd)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", b.bin, err)
	}
	p := &proc{cmd: cmd, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort), http: fmt.Sprintf("http://127.0.0.1:%d", httpPort), done: make(chan struct{}), logPath: logPath, started: time.Now()}
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

func (p *proc) tail() string {
	data, _ := os.ReadFile(p.logPath)
	if len(data) > 1500 {
		data = data[len(data)-1500:]
	}
	return string(data)
}

func (p *proc) waitLog(what string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if data, _ := os.ReadFile(p.logPath); strings.Contains(string(data), what) {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("tributary exited (%v) before %q:\n%s", p.waitErr, what, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no %q in the tributary log within %s:\n%s", what, within, p.tail())
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

// stop reads the peak RSS, sends SIGTERM and waits for the exit.
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

// measure runs drain and, with -pprof, a CPU profile of the worker from its
// first event on.
func (b *bench) measure(ctx context.Context, p *proc, target int64, name string) (float64, time.Duration, time.Duration, error) {
	var onFirst func()
	var profDone chan struct{}
	if b.o.pprofDir != "" {
		profDone = make(chan struct{})
		onFirst = func() {
			go func() {
				defer close(profDone)
				if err := b.profile(ctx, p, name); err != nil {
					b.logf("%s: CPU profile: %v", name, err)
				}
			}()
		}
	}
	rate, el, whole, err := drain(ctx, p, target, 5*time.Minute, onFirst)
	if profDone != nil && err == nil {
		select {
		case <-profDone:
		case <-time.After(time.Duration(b.o.pprofSeconds+5) * time.Second):
		}
	}
	return rate, el, whole, err
}

func (b *bench) profile(ctx context.Context, p *proc, name string) error {
	if err := os.MkdirAll(b.o.pprofDir, 0o755); err != nil {
		return err
	}
	// An execution trace of the first second shows which goroutine waits
	// for which.
	traceDone := make(chan struct{})
	go func() {
		defer close(traceDone)
		if !b.o.trace {
			return
		}
		if err := b.fetch(ctx, p.http+"/debug/pprof/trace?seconds=1", filepath.Join(b.o.pprofDir, name+".trace")); err != nil {
			b.logf("%s: trace: %v", name, err)
		}
	}()
	defer func() { <-traceDone }()
	if err := b.fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.http, b.o.pprofSeconds), filepath.Join(b.o.pprofDir, name+".pprof")); err != nil {
		return err
	}
	// Allocations since the worker started (go tool pprof -sample_index=alloc_space).
	return b.fetch(ctx, p.http+"/debug/pprof/allocs", filepath.Join(b.o.pprofDir, name+".allocs.pprof"))
}

func (b *bench) fetch(ctx context.Context, url, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Timeout: time.Duration(b.o.pprofSeconds+10) * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	b.logf("%s written", path)
	return f.Close()
}

// drain polls the metrics every 50 ms until target events were produced and
// returns the rate from the first observed event to target. onFirst, when
// set, runs once when the first event is seen.
func drain(ctx context.Context, p *proc, target int64, timeout time.Duration, onFirst func()) (rate float64, elapsed, sinceStart time.Duration, err error) {
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
			if onFirst != nil {
				onFirst()
			}
		}
		if n >= target {
			el := now.Sub(t0)
			if el <= 0 || n == c0 {
				return 0, el, 0, fmt.Errorf("all %d events were produced before the first poll; raise the row count", n)
			}
			return float64(target-c0) / el.Seconds(), el, now.Sub(p.started), nil
		}
	}
}

// copyTree copies the folder src to dst (regular files and folders only, as
// the embedded log writes them).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

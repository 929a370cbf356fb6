package postgres

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSnapshotBinaryVsCopy runs the whole path the way users do: the
// real binary, `tributary run` with snapshot: initial_only on the embedded
// broker and registry (which exits when the snapshot is done), against a
// bare `COPY (SELECT * FROM t) TO STDOUT` of the same table, timed in the
// same run. Rows are ~200 bytes (bigint key, 200-char md5 text, as
// integration/bench). It needs the test PostgreSQL:
//
//	go test ./connectors/postgres -run X -bench SnapshotBinaryVsCopy -benchtime 1x
//
// TRIBUTARY_SNAPBENCH_ROWS (default 2000000) sets the table size and
// TRIBUTARY_SNAPBENCH_COMPRESSION (zstd, lz4, snappy, none) log.compression.
// snapshot_rows/s is counted over the connector's own snapshot duration (from
// its log), process_rows/s over the whole process; peak_rss_MB is VmHWM.
func BenchmarkSnapshotBinaryVsCopy(b *testing.B) {
	rows := 2_000_000
	if v := os.Getenv("TRIBUTARY_SNAPBENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("TRIBUTARY_SNAPBENCH_ROWS=%q: want a positive integer", v)
		}
		rows = n
	}
	compression := os.Getenv("TRIBUTARY_SNAPBENCH_COMPRESSION")
	if compression == "" {
		compression = "zstd"
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "tributary")
	build := exec.Command("go", "build", "-o", bin, "github.com/tributary-cdc/tributary/cmd/tributary")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	d := newTestDB(b)
	d.exec(`CREATE TABLE t (id bigint PRIMARY KEY, payload text NOT NULL)`)
	for lo := 1; lo <= rows; lo += 1_000_000 {
		d.exec(`INSERT INTO t SELECT g, substr(md5(g::text) || md5((g+1)::text) || md5((g+2)::text) || md5((g+3)::text) || md5((g+4)::text) || md5((g+5)::text) || md5((g+6)::text), 1, 200)
			FROM generate_series($1::bigint, $2::bigint) g`, lo, min(lo+999_999, rows))
	}
	d.exec(`VACUUM ANALYZE t`)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Baseline, second pass on a warm cache as the snapshot gets.
		var copyEl time.Duration
		for range 2 {
			began := time.Now()
			tag, err := d.conn.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT * FROM t) TO STDOUT")
			if err != nil {
				b.Fatal(err)
			}
			copyEl = time.Since(began)
			if tag.RowsAffected() != int64(rows) {
				b.Fatalf("COPY returned %d rows, want %d", tag.RowsAffected(), rows)
			}
		}

		run := filepath.Join(dir, fmt.Sprintf("run%d", i))
		cfg := fmt.Sprintf(`log:
  data_dir: %s
  listen: %s
  compression: %s
registry:
  listen: %s
worker:
  http: %s
sources:
  - name: snapbench
    type: postgres
    url: %s
    tables: [public.t]
    topic_prefix: snapbench
    slot: snapbench_%d
    snapshot: initial_only
`, filepath.Join(run, "log"), snapBenchAddr(b), compression, snapBenchAddr(b), snapBenchAddr(b), d.url, i)
		if err := os.MkdirAll(run, 0o750); err != nil {
			b.Fatal(err)
		}
		cfgPath := filepath.Join(run, "pipeline.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "run", "-f", cfgPath)
		logPath := filepath.Join(run, "tributary.log")
		lf, err := os.Create(logPath)
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = lf, lf
		began := time.Now()
		err = cmd.Run()
		procEl := time.Since(began)
		_ = lf.Close()
		logText, _ := os.ReadFile(logPath)
		if err != nil {
			b.Fatalf("tributary run: %v\n%s", err, snapBenchTail(logText, 3000))
		}
		m := regexp.MustCompile(`snapshot completed.* rows=(\d+) duration=(\S+)`).FindSubmatch(logText)
		if m == nil {
			b.Fatalf("no 'snapshot completed' line in the log:\n%s", snapBenchTail(logText, 3000))
		}
		if got, _ := strconv.Atoi(string(m[1])); got != rows {
			b.Fatalf("snapshot emitted %d rows, want %d", got, rows)
		}
		snapEl, err := time.ParseDuration(string(m[2]))
		if err != nil {
			b.Fatalf("snapshot duration %q: %v", m[2], err)
		}
		var rss float64
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = float64(ru.Maxrss) / 1024 // KiB on Linux
		}
		copyRate := float64(rows) / copyEl.Seconds()
		b.ReportMetric(copyRate, "copy_rows/s")
		b.ReportMetric(float64(rows)/snapEl.Seconds(), "snapshot_rows/s")
		b.ReportMetric(float64(rows)/procEl.Seconds(), "process_rows/s")
		b.ReportMetric(float64(rows)/snapEl.Seconds()/copyRate, "ratio")
		b.ReportMetric(rss, "peak_rss_MB")
		b.ReportMetric(cmd.ProcessState.UserTime().Seconds()+cmd.ProcessState.SystemTime().Seconds(), "cpu_s")
	}
}

// snapBenchAddr returns a loopback address nobody listens on right now.
func snapBenchAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func snapBenchTail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Invariant 6: memory is bounded by configuration, whatever the size of a
// table, a transaction or a backlog. These cases push several times the bound
// through the real binary in embedded mode, where the broker lives in the
// worker process and its memory counts too, and compare the worker's peak
// resident set (VmHWM) with the bound once every event is in the log.
const (
	memRows      = 400_000
	memRowBytes  = 1600 // 50 distinct md5 hex strings: little for snappy to squeeze
	memBoundMiB  = 200
	memWorkerCfg = "  memory_limit: 64MiB\n  max_in_flight_bytes: 16MiB\n"
	// The cases that do not test compaction keep it out of their way; the
	// embedded_compaction_and_restart case runs it (third_party/kfake's
	// bounded cleaner; upstream kfake peaked at 707 MiB for a 612 MiB topic).
	memCompaction = time.Hour
	memSettle     = 5 * time.Second
)

// memLogEnv is an embedded log with the memory bounds under test and a known
// compaction period.
func memLogEnv(t *testing.T) *logEnv {
	t.Helper()
	le := newLogEnv(t, mode{"embedded", true})
	const harness = "compaction_interval: 10s"
	if !strings.Contains(le.yaml, harness) {
		t.Fatalf("harness log yaml has no compaction_interval to set:\n%s", le.yaml)
	}
	le.yaml = strings.Replace(le.yaml, harness, "compaction_interval: "+memCompaction.String(), 1) + memWorkerCfg
	return le
}

// startMemWorker starts the worker and kills it before the test binary's
// own timeout: a worker orphaned by a timed-out test would keep running and
// keep the shared services lock its parent inherited.
func startMemWorker(t *testing.T, le *logEnv, cfg string) (*proc, *memWatch) {
	t.Helper()
	w := startWorker(t, le, cfg)
	if dl, ok := t.Deadline(); ok {
		timer := time.AfterFunc(time.Until(dl)-15*time.Second, func() { _ = w.cmd.Process.Kill() })
		t.Cleanup(func() { timer.Stop() })
	}
	return w, watchMem(t, le, w)
}

// memPayloadPG builds each row's payload from distinct md5s, so the bytes
// held anywhere along the way are not shrunk by compression into a false pass.
const memPayloadPG = `(SELECT string_agg(md5((g * 50 + i)::text), '') FROM generate_series(1, 50) i)`

func TestMemoryBounded(t *testing.T) {
	dataBytes := int64(memRows) * memRowBytes
	if dataBytes < 5*memBoundMiB<<20/2 {
		t.Fatalf("data %d bytes is less than 2.5x the %d MiB bound: the cases would prove nothing", dataBytes, memBoundMiB)
	}

	t.Run("postgres_large_transaction", func(t *testing.T) {
		le := memLogEnv(t)
		dbURL := pgDB(t)
		c := pgConn(t, dbURL)
		pgExec(t, c, "CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL)")
		prefix, slot := uniq("mem"), uniq("mem")
		w, mw := startMemWorker(t, le, pgPipeline(t, le, dbURL, prefix, slot, []string{"public.big"}, ""))
		topic := prefix + ".public.big"
		// A first row proves the empty snapshot is over and streaming runs, so
		// the big transaction below is decoded from the WAL, not snapshotted.
		pgExec(t, c, "INSERT INTO big VALUES (0, 'marker')")
		waitTopicCount(t, le, w, topic, 1, 2*time.Minute)

		start := time.Now()
		// One transaction far beyond logical_decoding_work_mem, so pgoutput
		// streams it in segments (protocol v2) before its commit.
		pgExec(t, c, fmt.Sprintf("INSERT INTO big SELECT g, %s FROM generate_series(1, %d) g", memPayloadPG, memRows))
		committed := time.Since(start)
		waitTopicCount(t, le, w, topic, memRows+1, 3*time.Minute)
		checkPeakRSS(t, mw, "one PostgreSQL transaction", tableBytesPG(t, c), committed, time.Since(start))
		// The connector logs this only for a transaction pgoutput streamed in
		// segments; without it the case would not test the spool at all.
		if !waitOutput(w, "emitted a large streamed transaction", 10*time.Second) {
			t.Fatalf("the %d-row transaction was not received as a streamed (protocol v2) transaction; worker output:\n%s", memRows, tail([]byte(w.output()), 4096))
		}
		w.stop(t)
	})

	t.Run("mariadb_large_transaction", func(t *testing.T) {
		le := memLogEnv(t)
		_, db, c := mysqlDB(t)
		mustExec := func(q string) {
			t.Helper()
			if _, err := c.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		mustExec("CREATE TABLE big (id INT PRIMARY KEY, payload MEDIUMTEXT NOT NULL)")
		base := env(t, "TRIBUTARY_TEST_MYSQL_URL")
		url := "mysql://" + strings.NewReplacer("tcp(", "", ")/", "").Replace(base)
		prefix := uniq("mem")
		cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sources:
  - name: %s
    type: mysql
    url: %s
    tables: [%s.big]
    topic_prefix: %s
`, prefix, url, db, prefix))
		w, mw := startMemWorker(t, le, cfg)
		topic := prefix + "." + db + ".big"
		mustExec("INSERT INTO big VALUES (0, 'marker')")
		waitTopicCount(t, le, w, topic, 1, 2*time.Minute)

		start := time.Now()
		// INSERT ... SELECT is one statement, hence one binlog transaction
		// (autocommit). seq_1_to_N is MariaDB's Sequence engine.
		var payload strings.Builder
		payload.WriteString("CONCAT(")
		for i := range memRowBytes / 32 {
			if i > 0 {
				payload.WriteString(",")
			}
			fmt.Fprintf(&payload, "MD5(seq*%d+%d)", memRowBytes/32, i)
		}
		payload.WriteString(")")
		mustExec(fmt.Sprintf("INSERT INTO big SELECT seq, %s FROM seq_1_to_%d", payload.String(), memRows))
		committed := time.Since(start)
		var size int64
		if err := c.QueryRow("SELECT SUM(LENGTH(payload)) + 4*COUNT(*) FROM big").Scan(&size); err != nil {
			t.Fatalf("measuring table big in %s: %v", db, err)
		}
		waitTopicCount(t, le, w, topic, memRows+1, 3*time.Minute)
		checkPeakRSS(t, mw, "one MariaDB binlog transaction", size, committed, time.Since(start))
		w.stop(t)
	})

	t.Run("postgres_snapshot", func(t *testing.T) {
		le := memLogEnv(t)
		dbURL := pgDB(t)
		c := pgConn(t, dbURL)
		pgExec(t, c, "CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL)")
		start := time.Now()
		pgExec(t, c, fmt.Sprintf("INSERT INTO big SELECT g, %s FROM generate_series(1, %d) g", memPayloadPG, memRows))
		filled := time.Since(start)
		size := tableBytesPG(t, c)
		prefix, slot := uniq("mem"), uniq("mem")
		start = time.Now()
		w, mw := startMemWorker(t, le, pgPipeline(t, le, dbURL, prefix, slot, []string{"public.big"}, ""))
		waitTopicCount(t, le, w, prefix+".public.big", memRows, 3*time.Minute)
		checkPeakRSS(t, mw, "a PostgreSQL snapshot", size, filled, time.Since(start))
		w.stop(t)
	})
}

// TestMemoryBoundedEmbeddedLog pushes the embedded log's own housekeeping
// through the bound: compacting a topic whose every row was superseded, and
// reloading it after a kill -9 (no clean-shutdown snapshot, so every segment
// is scanned).
func TestMemoryBoundedEmbeddedLog(t *testing.T) {
	le := memLogEnv(t)
	dbURL := pgDB(t)
	c := pgConn(t, dbURL)
	pgExec(t, c, "CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL)")
	pgExec(t, c, fmt.Sprintf("INSERT INTO big SELECT g, %s FROM generate_series(1, %d) g", memPayloadPG, memRows))
	size := tableBytesPG(t, c)
	prefix, slot := uniq("mem"), uniq("mem")
	noCompaction := pgPipeline(t, le, dbURL, prefix, slot, []string{"public.big"}, "")
	topic := prefix + ".public.big"

	// Two versions of every row, with compaction held off.
	w, _ := startMemWorker(t, le, noCompaction)
	waitTopicCount(t, le, w, topic, memRows, 3*time.Minute)
	pgExec(t, c, "UPDATE big SET payload = reverse(payload)")
	waitTopicCount(t, le, w, topic, 2*memRows, 3*time.Minute)
	w.stop(t)
	written := topicDiskBytes(t, le, topic)
	if written < size*6/5 { // snappy squeezes the hex payload by about a third
		t.Fatalf("%s holds %d bytes on disk, too little for two versions of %d bytes of rows", topic, written, size)
	}

	// The same log with compaction every 2s: it drops the first version,
	// about half of what was written.
	le.yaml = strings.Replace(le.yaml, "compaction_interval: "+memCompaction.String(), "compaction_interval: 2s", 1)
	compacting := pgPipeline(t, le, dbURL, prefix, slot, []string{"public.big"}, "")
	start := time.Now()
	w, mw := startMemWorker(t, le, compacting)
	deadline := time.Now().Add(3 * time.Minute)
	for topicDiskBytes(t, le, topic) > written*6/10 {
		if time.Now().After(deadline) || w.exited() {
			for _, l := range strings.Split(w.output(), "\n") {
				if strings.Contains(l, "compacted "+topic) {
					t.Log(l)
				}
			}
			t.Fatalf("%s still holds %d bytes on disk after %v of compaction every 2s (%d bytes of rows, %d before compaction; worker exited: %v)",
				topic, topicDiskBytes(t, le, topic), time.Since(start).Round(time.Second), size, written, w.exited())
		}
		time.Sleep(time.Second)
	}
	t.Logf("compaction: %s went from %d to %d bytes on disk", topic, written, topicDiskBytes(t, le, topic))
	checkPeakRSS(t, mw, "loading a two-version log and compacting the first version", size, 0, time.Since(start))

	// kill -9 leaves no clean-shutdown snapshot: the restart scans the log.
	w.kill(t)
	start = time.Now()
	w, mw = startMemWorker(t, le, compacting)
	pgExec(t, c, "INSERT INTO big VALUES (0, 'after the restart')")
	waitTopicCount(t, le, w, topic, 2*memRows+1, 3*time.Minute)
	checkPeakRSS(t, mw, "reloading the compacted log after kill -9", size, 0, time.Since(start))
	w.stop(t)
}

// topicDiskBytes sums the embedded log's segment files of a topic.
func topicDiskBytes(t *testing.T, le *logEnv, topic string) int64 {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(le.dataDir, "kfake", "partitions", topic+"-*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no partition folder for %s under %s (%v)", topic, le.dataDir, err)
	}
	var n int64
	for _, d := range dirs {
		segs, _ := filepath.Glob(filepath.Join(d, "*.dat"))
		for _, f := range segs {
			if st, err := os.Stat(f); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

// tableBytesPG is the row data the source holds: the payload text plus the
// 4-byte key of every row (not the heap's page overhead).
func tableBytesPG(t *testing.T, c *pgx.Conn) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), "SELECT sum(octet_length(payload)) + 4*count(*) FROM big").Scan(&n); err != nil {
		t.Fatalf("measuring table big: %v", err)
	}
	return n
}

// waitTopicCount waits until the topic's end offset reaches want: the
// worker produces without transactions here, so the end offset is the
// number of events, and reading it costs nothing next to decoding them.
func waitTopicCount(t *testing.T, le *logEnv, w *proc, topic string, want int64, within time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(within)
	var got int64
	for {
		if w.exited() {
			t.Fatalf("worker exited with %v while %s had %d of %d events", w.err, topic, got, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		offs, err := adm.ListEndOffsets(ctx, topic)
		cancel()
		if err == nil {
			got = 0
			offs.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					got += o.Offset
				}
			})
		}
		if got == want {
			return
		}
		if got > want {
			t.Fatalf("%s has %d events, more than the %d rows written (duplicates?)", topic, got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d of %d events after %v (last error: %v)", topic, got, want, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// memWatch samples the worker's resident set while a case runs and, once it
// is over the bound, keeps a heap profile taken near its highest value, so a
// failure names what held the memory at the peak rather than afterwards.
type memWatch struct {
	le      *logEnv
	w       *proc
	stopc   chan struct{}
	done    chan struct{}
	profile string // heap profile taken at profRSS KiB, "" when none
	profRSS int64
	profErr error
}

func watchMem(t *testing.T, le *logEnv, w *proc) *memWatch {
	t.Helper()
	m := &memWatch{le: le, w: w, stopc: make(chan struct{}), done: make(chan struct{})}
	path := filepath.Join(t.TempDir(), "heap-at-peak.pb.gz")
	go func() {
		defer close(m.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stopc:
				return
			case <-tick.C:
			}
			_, rss, err := readProcMem(w.cmd.Process.Pid)
			if err != nil || rss < memBoundMiB<<10 || rss < m.profRSS*6/5 {
				continue
			}
			if err := fetchTo("http://"+le.httpAddr+"/debug/pprof/heap", path); err != nil {
				m.profErr = err
				continue
			}
			m.profile, m.profRSS = path, rss
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *memWatch) stop() {
	select {
	case <-m.stopc:
	default:
		close(m.stopc)
	}
	<-m.done
}

// checkPeakRSS lets the worker settle a few seconds, then compares its peak resident set (VmHWM, which
// counts the broker too) with the bound.
func checkPeakRSS(t *testing.T, m *memWatch, what string, dataBytes int64, sourceTime, total time.Duration) {
	t.Helper()
	time.Sleep(memSettle)
	if m.w.exited() {
		t.Fatalf("worker exited with %v after the events reached the log", m.w.err)
	}
	hwm, rss, err := readProcMem(m.w.cmd.Process.Pid)
	m.stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %.0f MiB of row data (source side took %v, in the log after %v); worker VmHWM %.0f MiB, VmRSS %.0f MiB after %v more, bound %d MiB",
		what, float64(dataBytes)/(1<<20), sourceTime.Round(time.Millisecond), total.Round(time.Millisecond),
		float64(hwm)/1024, float64(rss)/1024, memSettle, memBoundMiB)
	if dataBytes < 5*memBoundMiB<<20/2 {
		t.Fatalf("only %d bytes of row data: less than 2.5x the bound, the case proves nothing", dataBytes)
	}
	if hwm >= memBoundMiB<<10 {
		switch {
		case m.profile != "":
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("tributary-memtest-heap-%d.pb.gz", m.w.cmd.Process.Pid))
			if b, err := os.ReadFile(m.profile); err == nil && os.WriteFile(keep, b, 0o644) == nil {
				t.Logf("heap profile taken at RSS %.0f MiB kept in %s (go tool pprof -sample_index=inuse_space -top %s)", float64(m.profRSS)/1024, keep, keep)
			}
		case m.profErr != nil:
			t.Logf("heap profile at the peak: %v", m.profErr)
		}
		t.Errorf("worker peak RSS %.0f MiB is over the %d MiB bound for %.0f MiB of %s: memory grows with the data (invariant 6)",
			float64(hwm)/1024, memBoundMiB, float64(dataBytes)/(1<<20), what)
	}
}

func waitOutput(p *proc, substr string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(p.output(), substr) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// readProcMem reads the peak and current resident set of a process, in KiB.
func readProcMem(pid int) (hwm, rss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading memory of worker pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s %q: %w", pid, k, v, err)
		}
		if k == "VmHWM" {
			hwm = n
		} else {
			rss = n
		}
	}
	if hwm == 0 || rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmHWM/VmRSS", pid)
	}
	return hwm, rss, nil
}

func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

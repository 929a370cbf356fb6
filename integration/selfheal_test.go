package integration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// privatePG is a PostgreSQL cluster of one test's own, so the test can
// restart or stop it without disturbing the shared test server.
type privatePG struct {
	bin, dir string
	port     int
}

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bin := env(t, "TRIBUTARY_PG_BIN")
	root, err := os.MkdirTemp("", "tributary-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privatePG{bin: bin, dir: filepath.Join(root, "data"), port: freePort(t)}
	asPG := func(args ...string) *exec.Cmd {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	if out, err := exec.Command("chown", "postgres:", root).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", root, err, out)
	}
	if out, err := asPG(filepath.Join(bin, "initdb"), "-D", p.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nwal_level = logical\nmax_replication_slots = 8\nmax_wal_senders = 8\nfsync = off\n", p.port, p.dir)
	if err := os.WriteFile(filepath.Join(p.dir, "postgresql.auto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = exec.Command("chown", "postgres:", filepath.Join(p.dir, "postgresql.auto.conf")).Run()
	p.ctl(t, "start")
	t.Cleanup(func() {
		_ = asPG(filepath.Join(bin, "pg_ctl"), "-D", p.dir, "-m", "immediate", "-w", "stop").Run()
		_ = os.RemoveAll(root)
	})
	return p
}

// ctl runs pg_ctl with args (start, stop -m fast, restart -m immediate, ...).
func (p *privatePG) ctl(t *testing.T, args ...string) {
	t.Helper()
	full := append([]string{"-u", "postgres", "--", filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "60"}, args...)
	cmd := exec.Command("runuser", full...)
	cmd.Stdin = nil
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
	}
}

func (p *privatePG) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// journalWriter inserts ids 1, 2, 3, ... into items, reconnecting through
// outages; committed holds every id whose COMMIT succeeded.
type journalWriter struct {
	stop      chan struct{}
	wg        sync.WaitGroup
	committed sync.Map
	n         atomic.Int64
}

func startJournal(t *testing.T, url string) *journalWriter {
	w := &journalWriter{stop: make(chan struct{})}
	w.wg.Go(func() {
		ctx := context.Background()
		var c *pgx.Conn
		id := int64(0)
		for {
			select {
			case <-w.stop:
				if c != nil {
					c.Close(ctx)
				}
				return
			default:
			}
			if c == nil {
				var err error
				if c, err = pgx.Connect(ctx, url); err != nil {
					c = nil
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			id++
			if _, err := c.Exec(ctx, "INSERT INTO items VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", id, fmt.Sprintf("v%d", id)); err != nil {
				// The outcome of a commit cut by the restart is unknown: the
				// id is not in the journal, and the final check compares
				// with the source table itself.
				c.Close(ctx)
				c = nil
				continue
			}
			w.committed.Store(id, true)
			w.n.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	return w
}

func (w *journalWriter) halt() { close(w.stop); w.wg.Wait() }

func idsOf(t *testing.T, c *pgx.Conn, table string) map[int64]string {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT id, v FROM "+table)
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	defer rows.Close()
	m := map[int64]string{}
	for rows.Next() {
		var id int64
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		m[id] = v
	}
	return m
}

func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, m := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(?:\{[^}]*\})? ([0-9.e+]+)$`).FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v
	}
	return sum
}

// chaosScale reads a count or duration of the chaos test from the
// environment, so `make chaos` can run the same test with larger numbers.
func chaosScale(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestSelfHealing is the bounded chaos test: under a journal writer, the
// worker is killed -9 ten times (restarted by the test only after its own
// kill), the source's PostgreSQL is restarted (fast, then immediate) and
// the sink's PostgreSQL is down for 20 s. The worker heals each outage by
// itself from its last durable position; at the end every committed
// journal id is in the log and both copies equal the source, by the test's
// own reading and by `tributary verify`. `make chaos` runs it with 100
// kills and a 60 s outage (TRIBUTARY_CHAOS_KILLS, TRIBUTARY_CHAOS_OUTAGE_S).
func TestSelfHealing(t *testing.T) {
	kills := chaosScale("TRIBUTARY_CHAOS_KILLS", 10)
	outage := time.Duration(chaosScale("TRIBUTARY_CHAOS_OUTAGE_S", 20)) * time.Second
	le := newLogEnv(t, modes[0])
	srcPG, dstPG := startPrivatePG(t), startPrivatePG(t)
	sc := pgConn(t, srcPG.url("postgres"))
	pgExec(t, sc, "CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL)")
	prefix, slot := uniq("heal"), uniq("slot")
	topic := prefix + ".public.items"
	sq := filepath.Join(t.TempDir(), "copy.db")
	pgSink, sqSink := uniq("pgcopy"), uniq("sqcopy")
	yaml := strings.Replace(le.yaml, "worker:\n", "worker:\n  restart_backoff: 200ms\n  restart_backoff_max: 2s\n  restart_after_up: 2s\n", 1)
	cfg := writeFile(t, t.TempDir(), "pipeline.yaml", yaml+fmt.Sprintf(`sources:
  - name: %s
    type: postgres
    url: %s
    tables: [items]
    topic_prefix: %s
    slot: %s
sinks:
  - name: %s
    type: postgres
    url: %s
    topics: [%s]
  - name: %s
    type: sqlite
    path: %s
    topics: [%s]
`, slot, srcPG.url("postgres"), prefix, slot, pgSink, dstPG.url("postgres"), topic, sqSink, sq, topic))
	w := startWorker(t, le, cfg)
	jw := startJournal(t, srcPG.url("postgres"))
	alive := func(what string) {
		t.Helper()
		if w.exited() {
			t.Fatalf("worker exited after %s: %v\n%s", what, w.err, tail([]byte(w.output()), 6000))
		}
	}
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		alive("its start")
		w.kill(t)
		w = startWorker(t, le, cfg)
	}
	time.Sleep(4 * time.Second)
	srcPG.ctl(t, "restart", "-m", "fast")
	time.Sleep(5 * time.Second)
	alive("a fast restart of the source's PostgreSQL")
	srcPG.ctl(t, "restart", "-m", "immediate")
	time.Sleep(5 * time.Second)
	alive("an immediate restart of the source's PostgreSQL")
	dstPG.ctl(t, "stop", "-m", "fast")
	time.Sleep(outage)
	alive("an outage of the sink's PostgreSQL")
	dstPG.ctl(t, "start")
	time.Sleep(3 * time.Second)
	jw.halt()
	if jw.n.Load() < 300 {
		t.Fatalf("the journal writer committed only %d rows", jw.n.Load())
	}

	// The setup connection died with the restarts: read through a new one.
	want := idsOf(t, pgConn(t, srcPG.url("postgres")), "items")
	cc := pgConn(t, dstPG.url("postgres"))
	sqdb := openSQLite(t, sq)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		alive("the outages")
		got := idsOf(t, cc, "public.items")
		gotSQ, _ := sqliteItemsKV(sqdb)
		if len(got) == len(want) && len(gotSQ) == len(want) {
			same := true
			for id, v := range want {
				if got[id] != v || gotSQ[id] != v {
					same = false
					break
				}
			}
			if same {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("copies did not converge: source %d rows, PostgreSQL copy %d, SQLite copy %d\n%s", len(want), len(got), len(gotSQ), tail([]byte(w.output()), 6000))
		}
		time.Sleep(500 * time.Millisecond)
	}
	missing := 0
	jw.committed.Range(func(k, _ any) bool {
		if _, ok := want[k.(int64)]; !ok {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d committed journal ids are not in the source table", missing)
	}
	if n := metricValue(t, le.httpAddr, "tributary_connector_restarts_total"); n < 3 {
		t.Errorf("tributary_connector_restarts_total = %v, want at least 3 (two source restarts, one sink outage)", n)
	}
	out := w.output()
	for _, name := range []string{slot, pgSink} {
		if !regexp.MustCompile(`restarting it from its last durable position" connector=` + name).MatchString(out) {
			t.Errorf("no retry line for connector %s in the worker's log", name)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "goroutine ") || strings.HasPrefix(strings.TrimSpace(l), "github.com/") {
			t.Errorf("stack trace in the worker's log: %s", l)
			break
		}
	}
	// Every committed journal id is in the log.
	inLog := map[int64]bool{}
	r := newReader(t, le, topic)
	r.pollUntil(t, time.Minute, func(evs []event) bool {
		inLog = map[int64]bool{}
		for _, e := range evs {
			if a := e.after(); a != nil {
				if id, err := strconv.ParseInt(fmt.Sprint(a["id"]), 10, 64); err == nil {
					inLog[id] = true
				}
			}
		}
		return len(inLog) >= len(want)
	})
	jw.committed.Range(func(k, _ any) bool {
		if !inLog[k.(int64)] {
			t.Errorf("committed journal id %d is not in the log", k.(int64))
			return false
		}
		return true
	})
	for _, name := range []string{pgSink, sqSink} {
		code, vout := runCLI(t, 3*time.Minute, "verify", "-f", cfg, name)
		if code != 0 || !strings.Contains(vout, "1 tables compared, 1 equal, 0 different") {
			t.Errorf("verify %s exited %d:\n%s", name, code, tail([]byte(vout), 3000))
		}
	}
	restarts := metricValue(t, le.httpAddr, "tributary_connector_restarts_total")
	w.stop(t)
	t.Logf("%d journal rows committed through %d kill -9, two source restarts and a %v sink outage; %v restarts after the last kill", jw.n.Load(), kills, outage, restarts)
}

func sqliteItemsKV(db *sql.DB) (map[int64]string, error) {
	rows, err := db.Query("SELECT id, v FROM public_items")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[int64]string{}
	for rows.Next() {
		var id int64
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		m[id] = v
	}
	return m, rows.Err()
}

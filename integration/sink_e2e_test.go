package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// sinkItemsDDL is the source table the sink tests copy: a numeric, a
// nullable column and a text column, so value normalisation is exercised.
const sinkItemsDDL = "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL, price numeric(10,2) NOT NULL, note text)"

// sqliteSinkYAML is a `sinks:` section copying topic into the SQLite file at path.
func sqliteSinkYAML(name, path, topic string, batch int) string {
	return fmt.Sprintf("sinks:\n  - name: %s\n    type: sqlite\n    path: %s\n    topics: [%s]\n    batch_size: %d\n    flush_interval: 20ms\n",
		name, path, topic, batch)
}

// pgItems is id -> "name|qty|price|note" of the source table.
func pgItems(t *testing.T, c *pgx.Conn) map[int64]string {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT id, name, qty::text, price::text, coalesce(note, '<null>') FROM items")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	st := map[int64]string{}
	for rows.Next() {
		var id int64
		var name, qty, price, note string
		if err := rows.Scan(&id, &name, &qty, &price, &note); err != nil {
			t.Fatal(err)
		}
		st[id] = strings.Join([]string{name, qty, price, note}, "|")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return st
}

// sqliteItems is the copy in the same shape as pgItems; an error means the
// copy is not readable yet (file or table not created).
func sqliteItems(db *sql.DB) (map[int64]string, error) {
	rows, err := db.Query("SELECT id, name, CAST(qty AS TEXT), CAST(price AS TEXT), coalesce(note, '<null>') FROM public_items")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	st := map[int64]string{}
	for rows.Next() {
		var id int64
		var name, qty, price, note string
		if err := rows.Scan(&id, &name, &qty, &price, &note); err != nil {
			return nil, err
		}
		st[id] = strings.Join([]string{name, qty, price, note}, "|")
	}
	return st, rows.Err()
}

func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// copyDiff describes how copy differs from want, briefly.
func copyDiff(want, got map[int64]string) string {
	var b strings.Builder
	n := 0
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			if n < 5 {
				fmt.Fprintf(&b, " id %d: source %q copy %q;", id, w, g)
			}
			n++
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			if n < 5 {
				fmt.Fprintf(&b, " id %d only in copy (%q);", id, g)
			}
			n++
		}
	}
	return fmt.Sprintf("%d rows in source, %d in copy, %d differ:%s", len(want), len(got), n, b.String())
}

// waitConverged polls the copy until it equals the source table.
func waitConverged(t *testing.T, c *pgx.Conn, db *sql.DB, within time.Duration, w *proc) {
	t.Helper()
	want := pgItems(t, c)
	deadline := time.Now().Add(within)
	last := "copy not readable yet"
	for time.Now().Before(deadline) {
		if w != nil && w.exited() {
			t.Fatalf("worker exited while the copy converged: %v\n%s", w.err, tail([]byte(w.output()), 4096))
		}
		got, err := sqliteItems(db)
		if err != nil {
			last = err.Error()
		} else if sameState(want, got) {
			return
		} else {
			last = copyDiff(want, got)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("SQLite copy did not converge within %v: %s", within, last)
}

func sameState(a, b map[int64]string) bool {
	if len(a) != len(b) {
		return false
	}
	for id, v := range a {
		if w, ok := b[id]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkOffsets asserts the copy stored a position for topic.
func checkOffsets(t *testing.T, db *sql.DB, sinkName, topic string) {
	t.Helper()
	var n int
	var maxNext int64
	err := db.QueryRow("SELECT count(*), coalesce(max(next_offset), 0) FROM tributary_offsets WHERE sink_name = ? AND topic = ? AND kafka_partition >= 0",
		sinkName, topic).Scan(&n, &maxNext)
	if err != nil {
		t.Fatalf("reading tributary_offsets: %v", err)
	}
	if n == 0 || maxNext <= 0 {
		t.Fatalf("tributary_offsets has %d rows for sink %s topic %s, max next_offset %d; want a row with next_offset > 0", n, sinkName, topic, maxNext)
	}
}

// prefill inserts ids 1..n.
func prefill(t *testing.T, c *pgx.Conn, n int) {
	t.Helper()
	pgExec(t, c, `INSERT INTO items SELECT g, 'item'||g, g % 17, (g * 1.25)::numeric(10,2), CASE WHEN g % 3 = 0 THEN NULL ELSE 'n'||g END
		FROM generate_series(1, $1::int) g`, n)
}

// itemsWriter runs inserts, updates and deletes against items until stopped.
type itemsWriter struct {
	stop chan struct{}
	wg   sync.WaitGroup
	ops  int
}

func startWriter(t *testing.T, dbURL string, firstID int64) *itemsWriter {
	w := &itemsWriter{stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("writer: %v", err)
			return
		}
		defer c.Close(ctx)
		next := firstID
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			var q string
			var args []any
			switch r := rand.IntN(10); {
			case r < 4:
				q, args = "INSERT INTO items VALUES ($1, $2, $3, $4, $5)", []any{next, fmt.Sprintf("new%d", next), rand.IntN(100), fmt.Sprintf("%d.%02d", rand.IntN(1000), rand.IntN(100)), nil}
				next++
			case r < 8:
				q, args = "UPDATE items SET qty = qty + 1, price = price + 0.01, note = $2 WHERE id = $1", []any{1 + rand.Int64N(next-1), fmt.Sprintf("u%d", w.ops)}
			default:
				q, args = "DELETE FROM items WHERE id = $1", []any{1 + rand.Int64N(next-1)}
			}
			if _, err := c.Exec(ctx, q, args...); err != nil {
				t.Errorf("writer: %s: %v", q, err)
				return
			}
			w.ops++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *itemsWriter) halt() int {
	close(w.stop)
	w.wg.Wait()
	return w.ops
}

// TestSinkPGToSQLite: PostgreSQL source -> log -> SQLite copy, under
// concurrent inserts, updates and deletes; the copy equals the source and
// its offsets table holds the topic's position.
func TestSinkPGToSQLite(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, sinkItemsDDL)
			prefill(t, c, 500)
			prefix, slot, sinkName := uniq("sink"), uniq("slot"), uniq("copy")
			topic := prefix + ".public.items"
			path := filepath.Join(t.TempDir(), "copy.db")
			cfg := pgPipeline(t, le, db, prefix, slot, []string{"items"}, sqliteSinkYAML(sinkName, path, topic, 200))

			w := startWorker(t, le, cfg)
			wr := startWriter(t, db, 501)
			time.Sleep(4 * time.Second)
			ops := wr.halt()
			if ops < 50 {
				t.Fatalf("writer too slow to test anything: %d operations", ops)
			}
			sq := openSQLite(t, path)
			waitConverged(t, c, sq, 2*time.Minute, w)
			checkOffsets(t, sq, sinkName, topic)
			w.stop(t)
			t.Logf("%d concurrent operations; copy equals source (%d rows)", ops, len(pgItems(t, c)))
		})
	}
}

// TestSinkCrash: kill -9 the worker while the sink is applying, restart it;
// the copy converges to the source.
func TestSinkCrash(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, sinkItemsDDL)
			const n = 20000
			prefill(t, c, n)
			prefix, slot, sinkName := uniq("sinkcrash"), uniq("slot"), uniq("copy")
			topic := prefix + ".public.items"
			path := filepath.Join(t.TempDir(), "copy.db")
			cfg := pgPipeline(t, le, db, prefix, slot, []string{"items"}, sqliteSinkYAML(sinkName, path, topic, 100))

			w := startWorker(t, le, cfg)
			wr := startWriter(t, db, n+1)
			sq := openSQLite(t, path)
			// Kill once the copy is partly applied (batches of 100 under a
			// write workload leave the sink mid-apply) and the source's
			// initial snapshot is durable: the slot's confirmed position
			// moved past its consistent point, which the source does only
			// after the completed-snapshot offset is written. A kill during
			// the initial snapshot is the subject of issue 10 (the redone
			// snapshot leaves rows deleted meanwhile in the log); the sink
			// starts applying during the snapshot since it picks up the
			// source's new topics at once.
			deadline := time.Now().Add(60 * time.Second)
			var seen int
			var startLSN string
			for {
				if time.Now().After(deadline) {
					t.Fatalf("the copy never started filling past the snapshot (%d rows, slot at %q)", seen, startLSN)
				}
				if w.exited() {
					t.Fatalf("worker exited: %v\n%s", w.err, tail([]byte(w.output()), 4096))
				}
				var lsn string
				if err := c.QueryRow(context.Background(), "SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lsn); err == nil && lsn != "" && startLSN == "" {
					startLSN = lsn
				}
				var moved bool
				if startLSN != "" {
					if err := c.QueryRow(context.Background(), "SELECT confirmed_flush_lsn > $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", slot, startLSN).Scan(&moved); err != nil {
						moved = false
					}
				}
				if err := sq.QueryRow("SELECT count(*) FROM public_items").Scan(&seen); err == nil && seen > 0 && moved {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			w.kill(t)
			if seen >= n {
				t.Logf("copy already had %d rows when killed", seen)
			}
			time.Sleep(time.Second)
			w = startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			ops := wr.halt()
			waitConverged(t, c, sq, 2*time.Minute, w)
			checkOffsets(t, sq, sinkName, topic)
			w.stop(t)
			t.Logf("killed with %d of %d+ rows applied; %d concurrent operations; copy converged", seen, n, ops)
		})
	}
}

// TestSinkRejectedRecordFailsSinkAlone: a record the target rejects stops
// that sink, failed in /status with an error naming the sink, topic, offset
// and key, and /readyz not ready; the worker's source goes on producing.
// At SIGTERM the worker exits non-zero, because a connector failed.
func TestSinkRejectedRecordFailsSinkAlone(t *testing.T) {
	le := newLogEnv(t, modes[0])
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, sinkItemsDDL)
	prefill(t, c, 10)
	prefix, slot, sinkName := uniq("sinkbad"), uniq("slot"), uniq("copy")
	topic := prefix + ".public.items"
	path := filepath.Join(t.TempDir(), "copy.db")
	// A copy whose table refuses one value: the sink must stop on it, not skip it.
	pre := openSQLite(t, path)
	if _, err := pre.Exec("CREATE TABLE public_items (id BIGINT NOT NULL PRIMARY KEY, name TEXT CHECK (name <> 'poison'), qty INTEGER, price TEXT, note TEXT)"); err != nil {
		t.Fatal(err)
	}
	pre.Close()
	cfg := pgPipeline(t, le, db, prefix, slot, []string{"items"}, sqliteSinkYAML(sinkName, path, topic, 100))
	w := startWorker(t, le, cfg)
	r := newReader(t, le, topic)
	pgExec(t, c, "INSERT INTO items VALUES (4242, 'poison', 1, 1.00, NULL)")

	var st workerStatusJSON
	deadline := time.Now().Add(time.Minute)
	for {
		if w.exited() {
			t.Fatalf("worker exited after one sink failed: %v\n%s", w.err, tail([]byte(w.output()), 4096))
		}
		st = getStatus(t, le.httpAddr)
		if st.Connectors[sinkName].State == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink not failed within a minute: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{sinkName, topic, "4242"} {
		if !strings.Contains(st.Connectors[sinkName].Error, want) {
			t.Errorf("the sink's error in /status does not name %q: %s", want, st.Connectors[sinkName].Error)
		}
	}
	if s := st.Connectors[slot].State; s != "running" {
		t.Errorf("source state %q after the sink failed, want running", s)
	}
	if resp, err := http.Get("http://" + le.httpAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a failed sink: %v %v, want 503", resp, err)
	}
	// The source goes on: a row inserted after the failure reaches the log.
	pgExec(t, c, "INSERT INTO items VALUES (4343, 'after', 1, 1.00, NULL)")
	r.pollUntil(t, time.Minute, func(evs []event) bool {
		for _, e := range evs {
			if a := e.after(); a != nil && fmt.Sprint(a["id"]) == "4343" {
				return true
			}
		}
		return false
	})
	sq := openSQLite(t, path)
	var n int
	if err := sq.QueryRow("SELECT count(*) FROM public_items WHERE name = 'poison'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("poison row count %d (err %v); want 0", n, err)
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if code := w.exitCode(t, time.Minute); code == 0 {
		t.Fatalf("worker exited 0 at SIGTERM with a failed sink")
	}
}

type workerStatusJSON struct {
	Connectors map[string]struct {
		State string `json:"state"`
		Error string `json:"error"`
	} `json:"connectors"`
}

func getStatus(t *testing.T, addr string) workerStatusJSON {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatalf("/status: %v", err)
	}
	defer resp.Body.Close()
	var st workerStatusJSON
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	return st
}

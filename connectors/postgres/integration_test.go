package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Integration tests against the PostgreSQL of `make test`
// (TRIBUTARY_TEST_PG_URL). Each test works in a database of its own.

func envURL(t testing.TB, name string) string {
	t.Helper()
	u := os.Getenv(name)
	if u == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which starts the test services and exports it (or source /tmp/tributary-services/env.sh)", name)
	}
	return u
}

func randSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// withDatabase replaces the database of a URL (and optionally adds params).
func withDatabase(t testing.TB, raw, db string, params map[string]string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	// Encoded by hand: pgx does not read '+' in a query as a space.
	q := u.RawQuery
	for k, v := range params {
		if q != "" {
			q += "&"
		}
		q += url.QueryEscape(k) + "=" + strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
	}
	u.RawQuery = q
	return u.String()
}

type testDB struct {
	t     testing.TB
	name  string
	url   string
	admin string // URL of the server's postgres database
	conn  *pgx.Conn
}

// newTestDB creates a fresh database and drops it (and its slots) at the end.
func newTestDB(t testing.TB) *testDB {
	t.Helper()
	admin := envURL(t, "TRIBUTARY_TEST_PG_URL")
	name := "trib_pg_" + randSuffix()
	ctx := context.Background()
	ac, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	if _, err := ac.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	_ = ac.Close(ctx)
	d := &testDB{t: t, name: name, url: withDatabase(t, admin, name, nil), admin: admin}
	d.conn, err = pgx.Connect(ctx, d.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.conn.Close(ctx)
		ac, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer ac.Close(ctx)
		for i := 0; i < 50; i++ {
			_, _ = ac.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active`, name)
			_, _ = ac.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
			if _, err := ac.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return d
}

func (d *testDB) exec(sql string, args ...any) {
	d.t.Helper()
	if _, err := d.conn.Exec(context.Background(), sql, args...); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
}

func (d *testDB) config(tables ...string) *Config {
	c := NewConfig()
	c.URL = d.url
	c.Tables = tables
	c.TopicPrefixValue = "tp"
	c.StatusInterval = 100 * time.Millisecond
	c.HeartbeatInterval = time.Second
	return c
}

// running is a connector started in the background.
type running struct {
	t      *testing.T
	rt     *fakeRuntime
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, name string, cfg *Config, rt *fakeRuntime) *running {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	conn, err := driver{}.Open(name, cfg, rt.log)
	if err != nil {
		t.Fatal(err)
	}
	conn.(*connector).progressEvery = 500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, rt: rt, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- conn.Run(ctx, rt) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels the connector and returns Run's error (nil for a clean stop).
func (r *running) stop() error {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if !ok {
			return nil
		}
		close(r.done)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-time.After(30 * time.Second):
		r.t.Fatal("connector did not stop within 30s")
		return nil
	}
}

// failed reports Run's error if it returned.
func (r *running) failed() error {
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil {
			return errors.New("Run returned nil")
		}
		return err
	default:
		return nil
	}
}

// runToError runs a connector that must fail at start and returns its error.
func runToError(t *testing.T, name string, cfg *Config) error {
	return runToErrorFrom(t, name, cfg, nil)
}

func runToErrorFrom(t *testing.T, name string, cfg *Config, offset map[string]any) error {
	t.Helper()
	conn, err := driver{}.Open(name, cfg, newFakeRuntime(t, nil).log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = conn.Run(ctx, newFakeRuntime(t, offset))
	if err == nil {
		t.Fatal("Run returned nil, want an error")
	}
	return err
}

// eventsOf waits until the decoded events satisfy cond and returns them.
func (r *running) waitEvents(timeout time.Duration, what string, cond func([]event) bool) []event {
	r.t.Helper()
	var evs []event
	deadline := time.Now().Add(timeout)
	for {
		if err := r.failed(); err != nil {
			r.t.Fatalf("connector failed while waiting for %s: %v", what, err)
		}
		evs = r.rt.decodeAll(r.t, r.rt.snapshotRecords())
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %s waiting for %s (%d events)", timeout, what, len(evs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasEvent(evs []event, topic, op string, id any) bool {
	for _, e := range evs {
		if e.Topic != topic || e.Op != op {
			continue
		}
		row := e.After
		if row == nil {
			row = e.Before
		}
		if row != nil && row["id"] == id {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------

// rowState is what the events say a row is.
type rowState struct{ n int64 }

// replay applies events of one topic in order, checking that each one is
// consistent with what came before: a snapshot read or create for a new key,
// an update of n by exactly +1 for an existing key, a delete of an existing
// key. A lost or duplicated change breaks one of these.
func replay(t *testing.T, evs []event, topic string) map[int64]rowState {
	t.Helper()
	state := map[int64]rowState{}
	for i, e := range evs {
		if e.Topic != topic || e.Value == nil {
			continue
		}
		switch e.Op {
		case "r", "c":
			id := e.After["id"].(int64)
			if _, ok := state[id]; ok {
				t.Fatalf("event %d: %s of id %d that already exists (duplicate)", i, e.Op, id)
			}
			state[id] = rowState{n: e.After["n"].(int64)}
		case "u":
			id := e.After["id"].(int64)
			prev, ok := state[id]
			if !ok {
				t.Fatalf("event %d: update of id %d never seen (lost insert)", i, id)
			}
			n := e.After["n"].(int64)
			if n != prev.n+1 {
				t.Fatalf("event %d: update of id %d to n=%d after n=%d (lost or duplicated update)", i, id, n, prev.n)
			}
			state[id] = rowState{n: n}
		case "d":
			id := e.Before["id"].(int64)
			if _, ok := state[id]; !ok {
				t.Fatalf("event %d: delete of id %d never seen", i, id)
			}
			delete(state, id)
		case "t":
			state = map[int64]rowState{}
		}
	}
	return state
}

func dbState(t *testing.T, d *testDB, table string) map[int64]rowState {
	t.Helper()
	rows, err := d.conn.Query(context.Background(), "SELECT id, n FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]rowState{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = rowState{n: n}
	}
	return out
}

func sameState(t *testing.T, what string, got, want map[int64]rowState) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows from events, %d in the database", what, len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			t.Fatalf("%s: id %d: events say %+v (present %v), database %+v", what, id, g, ok, w)
		}
	}
}

// writer runs random inserts, updates (n = n + 1) and deletes until stopped.
type writer struct {
	stop chan struct{}
	wg   sync.WaitGroup
	err  error
	ops  atomic.Int64
}

func startWriter(t *testing.T, dbURL, table string, firstNewID int64) *writer {
	w := &writer{stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			w.err = err
			return
		}
		defer c.Close(ctx)
		next := firstNewID
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			var sql string
			switch i % 4 {
			case 0:
				sql = fmt.Sprintf("INSERT INTO %s (id, val, n) VALUES (%d, 'new', 0)", table, next)
				next++
			case 1, 2:
				sql = fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = (SELECT id FROM %s ORDER BY random() LIMIT 1)", table, table)
			case 3:
				sql = fmt.Sprintf("DELETE FROM %s WHERE id = (SELECT id FROM %s ORDER BY random() LIMIT 1)", table, table)
			}
			if _, err := c.Exec(ctx, sql); err != nil {
				w.err = err
				return
			}
			w.ops.Add(1)
		}
	}()
	return w
}

func (w *writer) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
}

func TestIntegrationSnapshotWithConcurrentWritesThenStream(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, val text, n bigint NOT NULL)`)
	d.exec(`INSERT INTO items SELECT g, repeat('v', 50) || g, 0 FROM generate_series(1, 20000) g`)
	d.exec(`CREATE TABLE nokey (a int, b text)`)
	d.exec(`INSERT INTO nokey SELECT g, 'b' || g FROM generate_series(1, 1500) g`)
	d.exec(`CREATE TABLE empty_tbl (id int PRIMARY KEY)`)
	d.exec(`ANALYZE`)

	cfg := d.config("items", "nokey", "empty_*")
	cfg.SnapshotChunkRows = 1000
	cfg.SnapshotParallelism = 2
	rt := newFakeRuntime(t, nil)
	// Slow the log down so the snapshot takes a few seconds while the
	// writer changes the tables.
	rt.setSlow(1000, 100*time.Millisecond)
	w := startWriter(t, d.url, "items", 100000)
	r := start(t, "snap_"+d.name, cfg, rt)

	// The snapshot completes with the writer still running.
	waitFor(t, 120*time.Second, "snapshot completion checkpoint", func() bool {
		if err := r.failed(); err != nil {
			t.Fatalf("connector failed: %v", err)
		}
		for _, cp := range rt.checkpointsCopy() {
			if cp["last_snapshot_record"] == true {
				return true
			}
		}
		return false
	})
	opsDuringSnapshot := w.ops.Load()
	rt.setSlow(0, 0)
	time.Sleep(500 * time.Millisecond)
	w.halt(t)
	if opsDuringSnapshot < 50 {
		t.Fatalf("writer made only %d changes during the snapshot", opsDuringSnapshot)
	}
	d.exec(`INSERT INTO items (id, val, n) VALUES (-1, 'sentinel', 0)`)
	evs := r.waitEvents(60*time.Second, "sentinel", func(evs []event) bool { return hasEvent(evs, "tp.public.items", "c", int64(-1)) })

	// Snapshot records: each row once, 'last' exactly once and on the very
	// last snapshot record, all before any streamed event.
	var reads, lasts, nokey int
	lastRead, firstStream := -1, -1
	for i, e := range evs {
		if e.Value == nil {
			continue
		}
		if e.Op == "r" {
			reads++
			lastRead = i
			if e.Source["snapshot"] == "last" {
				lasts++
				if i != len(evs)-1 && evs[i+1].Op == "r" {
					t.Fatalf("'last' snapshot record at %d is followed by another read", i)
				}
			} else if m := e.Source["snapshot"]; m != "true" && m != "first" && m != "first_in_data_collection" && m != "last_in_data_collection" {
				t.Fatalf("snapshot record with source.snapshot %v", m)
			}
			if e.Topic == "tp.public.nokey" {
				nokey++
				if e.RawKey != nil {
					t.Fatal("keyless table event has a key")
				}
			}
		} else if firstStream < 0 {
			firstStream = i
			if e.Source["snapshot"] != "false" {
				t.Fatalf("streamed event with source.snapshot %v", e.Source["snapshot"])
			}
		}
	}
	if lasts != 1 || firstStream >= 0 && firstStream < lastRead {
		t.Fatalf("%d 'last' records; last read at %d, first streamed at %d", lasts, lastRead, firstStream)
	}
	if nokey != 1500 {
		t.Fatalf("nokey: %d snapshot records, want 1500", nokey)
	}
	got := replay(t, evs, "tp.public.items")
	sameState(t, "items", got, dbState(t, d, "items"))
	t.Logf("%d snapshot reads, %d writer ops during the snapshot (%d in all), %d events", reads, opsDuringSnapshot, w.ops.Load(), len(evs))

	// Offsets: progress checkpoints during the snapshot (at its consistent
	// point, with the tables left), then the snapshot completion with
	// Debezium's fields; later checkpoints move forward.
	cps := rt.checkpointsCopy()
	var prev float64
	completion := -1
	for i, cp := range cps {
		lsn := cp["lsn"].(float64)
		if lsn < prev {
			t.Fatalf("checkpoint %d goes back: %v after %v", i, lsn, prev)
		}
		prev = lsn
		if completion < 0 {
			if cp["snapshot"] != true || cp["lsn_commit"] != cp["lsn"] {
				t.Fatalf("checkpoint %d during the snapshot: %v", i, cp)
			}
			if cp["last_snapshot_record"] == true {
				completion = i
				if n := len(cp["tributary_snapshot"].([]any)); n != 0 {
					t.Fatalf("snapshot completion offset has %d tables left: %v", n, cp)
				}
			} else if _, ok := cp["tributary_snapshot"].([]any); !ok || i > 0 && cp["lsn"] != cps[0]["lsn"] {
				t.Fatalf("progress checkpoint %d: %v", i, cp)
			}
		}
	}
	if completion < 1 {
		t.Fatalf("want progress checkpoints, then the snapshot completion; completion at %d of %v", completion, cps)
	}
	// The slot's confirmed position follows the durable checkpoints.
	waitFor(t, 10*time.Second, "confirmed_flush_lsn to reach the last checkpoint", func() bool {
		var confirmed int64
		err := d.conn.QueryRow(context.Background(), `SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = $1`,
			defaultObjectName("snap_"+d.name)).Scan(&confirmed)
		return err == nil && float64(confirmed) >= rt.lastCheckpoint()["lsn"].(float64)
	})
	if v := gaugeValue(t, rt.metrics.SnapshotRows.WithLabelValues("snap_"+d.name, "public.nokey")); v != 1500 {
		t.Fatalf("snapshot rows gauge for nokey: %v", v)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// The slot is kept on a clean stop.
	var n int
	_ = d.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, defaultObjectName("snap_"+d.name)).Scan(&n)
	if n != 1 {
		t.Fatal("slot dropped on clean stop")
	}
}

func (f *fakeRuntime) checkpointsCopy() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.checkpoints...)
}

func TestIntegrationResumeAfterStop(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, val text, n bigint NOT NULL)`)
	d.exec(`INSERT INTO items SELECT g, 'x', 0 FROM generate_series(1, 500) g`)
	cfg := d.config("items")
	name := "resume_" + d.name

	rt1 := newFakeRuntime(t, nil)
	r1 := start(t, name, cfg, rt1)
	w := startWriter(t, d.url, "items", 10000)
	time.Sleep(1500 * time.Millisecond)
	w.halt(t)
	d.exec(`INSERT INTO items (id, val, n) VALUES (-1, 'sentinel', 0)`)
	r1.waitEvents(60*time.Second, "sentinel 1", func(evs []event) bool { return hasEvent(evs, "tp.public.items", "c", int64(-1)) })
	if err := r1.stop(); err != nil {
		t.Fatal(err)
	}
	if rt1.flushes == 0 {
		t.Fatal("no Flush on shutdown")
	}
	off := rt1.lastCheckpoint()

	// Changes while stopped, then a restart from the committed offset.
	w = startWriter(t, d.url, "items", 20000)
	time.Sleep(500 * time.Millisecond)
	w.halt(t)
	rt2 := newFakeRuntime(t, off)
	// The second runtime must share schema ids with the first to decode both.
	rt2.share(rt1)
	r2 := start(t, name, cfg, rt2)
	d.exec(`INSERT INTO items (id, val, n) VALUES (-2, 'sentinel', 0)`)
	evs2 := r2.waitEvents(60*time.Second, "sentinel 2", func(evs []event) bool { return hasEvent(evs, "tp.public.items", "c", int64(-2)) })
	for _, e := range evs2 {
		if e.Op == "r" {
			t.Fatal("restart with a committed offset took a snapshot")
		}
	}
	all := append(rt1.decodeAll(t, rt1.snapshotRecords()), evs2...)
	sameState(t, "items after restart", replay(t, all, "tp.public.items"), dbState(t, d, "items"))
}

// share makes f use o's schema registry.
func (f *fakeRuntime) share(o *fakeRuntime) {
	f.schemas, f.ids, f.subjects = o.schemas, o.ids, o.subjects
}

func TestIntegrationChangeEvents(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE docs (id int PRIMARY KEY, title text, body text, n int)`)
	d.exec(`ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL`) // out of line, uncompressed
	d.exec(`CREATE TABLE full_docs (id int PRIMARY KEY, body text, n int)`)
	d.exec(`ALTER TABLE full_docs REPLICA IDENTITY FULL`)
	d.exec(`ALTER TABLE full_docs ALTER COLUMN body SET STORAGE EXTERNAL`)
	cfg := d.config("docs", "full_docs")
	rt := newFakeRuntime(t, nil)
	r := start(t, "events_"+d.name, cfg, rt)
	r.waitEvents(30*time.Second, "snapshot done", func([]event) bool { return rt.lastCheckpoint() != nil })

	big := strings.Repeat("0123456789abcdef", 1000) // 16 kB: TOASTed
	d.exec(`INSERT INTO docs VALUES (1, 'one', $1, 1)`, big)
	d.exec(`UPDATE docs SET title = 'uno' WHERE id = 1`)   // body unchanged and TOASTed
	d.exec(`UPDATE docs SET id = 2 WHERE id = 1`)          // key change
	d.exec(`DELETE FROM docs WHERE id = 2`)                // delete + tombstone
	d.exec(`INSERT INTO full_docs VALUES (1, $1, 1)`, big) //
	d.exec(`UPDATE full_docs SET n = 2 WHERE id = 1`)      // FULL: before complete, body from old row
	d.exec(`INSERT INTO docs VALUES (3, 'three', 'small', 3)`)
	d.exec(`TRUNCATE docs`)
	evs := r.waitEvents(30*time.Second, "truncate", func(evs []event) bool {
		for _, e := range evs {
			if e.Op == "t" {
				return true
			}
		}
		return false
	})
	var docs, full []event
	for _, e := range evs {
		switch e.Topic {
		case "tp.public.docs":
			docs = append(docs, e)
		case "tp.public.full_docs":
			full = append(full, e)
		}
	}
	ops := func(evs []event) string {
		var s []string
		for _, e := range evs {
			if e.Value == nil {
				s = append(s, "tomb")
			} else {
				s = append(s, e.Op)
			}
		}
		return strings.Join(s, ",")
	}
	if got := ops(docs); got != "c,u,d,tomb,c,d,tomb,c,t" {
		t.Fatalf("docs ops %s", got)
	}
	if docs[0].After["body"] != big || docs[0].After["n"] != 1 {
		t.Fatal("insert lost the body")
	}
	if docs[1].After["body"] != "__debezium_unavailable_value" || docs[1].After["title"] != "uno" || docs[1].Before != nil {
		t.Fatalf("TOAST update under DEFAULT: before %v after title %v body %.40v", docs[1].Before, docs[1].After["title"], docs[1].After["body"])
	}
	if docs[2].Key["id"] != 1 || docs[2].Before["id"] != 1 || docs[3].Key["id"] != 1 || docs[4].Key["id"] != 2 {
		t.Fatalf("key change events: %v %v %v", docs[2].Key, docs[3].Key, docs[4].Key)
	}
	if docs[5].Before["id"] != 2 || docs[5].Before["title"] != nil || docs[5].After != nil || string(docs[6].RawKey) != string(docs[5].RawKey) {
		t.Fatalf("delete under DEFAULT: %+v", docs[5].Before)
	}
	// Compacted topics refuse null keys: a truncate carries the zero-valued key.
	if docs[8].Key["id"] != 0 || docs[8].Before != nil || docs[8].After != nil {
		t.Fatalf("truncate: %+v", docs[8])
	}
	if got := ops(full); got != "c,u" {
		t.Fatalf("full_docs ops %s", got)
	}
	if full[1].Before["body"] != big || full[1].Before["n"] != 1 || full[1].After["body"] != big || full[1].After["n"] != 2 {
		t.Fatal("REPLICA IDENTITY FULL update lacks full before/after")
	}
	// Transaction metadata and positions.
	for _, e := range docs {
		if e.Value == nil {
			continue
		}
		if e.Source["txId"].(int64) <= 0 || e.Source["lsn"].(int64) <= 0 || e.Source["ts_ms"].(int64) <= 0 {
			t.Fatalf("source %v", e.Source)
		}
	}
}

func TestIntegrationLargeStreamedTransaction(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, val text, n bigint NOT NULL)`)
	cfg := d.config("items")
	// The walsender's own logical_decoding_work_mem: 64kB makes the server
	// stream the transaction in segments.
	cfg.URL = withDatabase(t, envURL(t, "TRIBUTARY_TEST_PG_URL"), d.name, map[string]string{"options": "-c logical_decoding_work_mem=64kB"})
	name := "large_" + d.name
	rt := newFakeRuntime(t, nil)
	r := start(t, name, cfg, rt)
	r.waitEvents(30*time.Second, "snapshot done", func([]event) bool { return rt.lastCheckpoint() != nil })

	ctx := context.Background()
	tx, err := d.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustTx := func(sql string) {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustTx(`INSERT INTO items SELECT g, repeat('x', 100), 0 FROM generate_series(1, 10000) g`)
	mustTx(`SAVEPOINT s1`)
	mustTx(`INSERT INTO items SELECT g, repeat('y', 100), 0 FROM generate_series(50001, 52000) g`)
	mustTx(`ROLLBACK TO SAVEPOINT s1`)
	// A small transaction commits while the large one is open.
	other, err := pgx.Connect(ctx, d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, `INSERT INTO items VALUES (-5, 'small', 0)`); err != nil {
		t.Fatal(err)
	}
	mustTx(`INSERT INTO items SELECT g, repeat('z', 100), 0 FROM generate_series(10001, 20000) g`)
	mustTx(`UPDATE items SET n = n + 1 WHERE id <= 100`)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A large transaction that aborts leaves nothing.
	tx2, _ := d.conn.Begin(ctx)
	if _, err := tx2.Exec(ctx, `INSERT INTO items SELECT g, repeat('a', 100), 0 FROM generate_series(70001, 80000) g`); err != nil {
		t.Fatal(err)
	}
	_ = tx2.Rollback(ctx)
	d.exec(`INSERT INTO items VALUES (-1, 'sentinel', 0)`)
	evs := r.waitEvents(120*time.Second, "sentinel", func(evs []event) bool { return hasEvent(evs, "tp.public.items", "c", int64(-1)) })

	sameState(t, "items", replay(t, evs, "tp.public.items"), dbState(t, d, "items"))
	// Order: the small transaction first, then the large one in statement order.
	var ids []int64
	var bigTx int64
	for _, e := range evs {
		if e.Op == "c" {
			id := e.After["id"].(int64)
			ids = append(ids, id)
			if id == 1 {
				bigTx = e.Source["txId"].(int64)
			}
		}
	}
	if ids[0] != -5 || ids[1] != 1 || ids[10001] != 10001 || ids[len(ids)-1] != -1 {
		t.Fatalf("order: first %v, [10001]=%d, last %d", ids[:3], ids[10001], ids[len(ids)-1])
	}
	for _, e := range evs {
		if e.Op == "c" && e.After["id"].(int64) > 0 && e.Source["txId"].(int64) != bigTx {
			t.Fatalf("large transaction event with txId %v, want %d", e.Source["txId"], bigTx)
		}
	}
	var streamed int64
	if err := d.conn.QueryRow(ctx, `SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = $1`, defaultObjectName(name)).Scan(&streamed); err != nil {
		t.Fatal(err)
	}
	if streamed < 1 {
		t.Fatalf("the server streamed %d transactions; the test did not exercise streaming", streamed)
	}
}

func TestIntegrationSchemaChanges(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, val text, n int)`)
	d.exec(`INSERT INTO items VALUES (1, 'a', 1)`)
	cfg := d.config("items")
	rt := newFakeRuntime(t, nil)
	r := start(t, "schema_"+d.name, cfg, rt)
	r.waitEvents(30*time.Second, "snapshot", func(evs []event) bool { return len(evs) == 1 && rt.lastCheckpoint() != nil })
	d.exec(`INSERT INTO items VALUES (2, 'b', 2)`)
	d.exec(`ALTER TABLE items ADD COLUMN extra text`)
	d.exec(`INSERT INTO items VALUES (3, 'c', 3, 'x')`)
	d.exec(`ALTER TABLE items DROP COLUMN val`)
	d.exec(`INSERT INTO items VALUES (4, 4, 'y')`)
	d.exec(`ALTER TABLE items ALTER COLUMN n TYPE bigint`)
	d.exec(`INSERT INTO items VALUES (5, 5000000000, 'z')`)
	evs := r.waitEvents(30*time.Second, "5 events", func(evs []event) bool { return len(evs) == 5 })
	if evs[0].ValueID != evs[1].ValueID {
		t.Fatal("snapshot and stream of the same shape use different schemas")
	}
	if evs[2].After["extra"] != "x" || evs[2].ValueID == evs[1].ValueID {
		t.Fatalf("ADD COLUMN: %v", evs[2].After)
	}
	if _, ok := evs[3].After["val"]; ok || evs[3].After["extra"] != "y" {
		t.Fatalf("DROP COLUMN: %v", evs[3].After)
	}
	if evs[4].After["n"] != int64(5000000000) {
		t.Fatalf("type change: %v (%T)", evs[4].After["n"], evs[4].After["n"])
	}
	if len(rt.subjects["tp.public.items-value"]) != 4 {
		t.Fatalf("value versions: %d, want 4", len(rt.subjects["tp.public.items-value"]))
	}

	// An incompatible change stops the connector with an error naming the
	// table and column.
	d.exec(`ALTER TABLE items ALTER COLUMN n TYPE text`)
	d.exec(`INSERT INTO items VALUES (6, 'six', 'w')`)
	deadline := time.Now().Add(30 * time.Second)
	for r.failed() == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	err := r.failed()
	if err == nil || !strings.Contains(err.Error(), "public.items") || !strings.Contains(err.Error(), "column n changed type") {
		t.Fatalf("incompatible change: %v", err)
	}
}

func TestIntegrationSlotAdvancesWhenIdle(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, n int)`)
	d.exec(`CREATE TABLE noise (id serial PRIMARY KEY, x text)`)
	cfg := d.config("items")
	name := "idle_" + d.name
	rt := newFakeRuntime(t, nil)
	r := start(t, name, cfg, rt)
	r.waitEvents(30*time.Second, "snapshot", func([]event) bool { return rt.lastCheckpoint() != nil })
	// WAL moves on a table that is not captured.
	d.exec(`INSERT INTO noise (x) SELECT repeat('n', 100) FROM generate_series(1, 2000)`)
	var target int64
	if err := d.conn.QueryRow(context.Background(), `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "slot to advance past idle WAL", func() bool {
		var confirmed int64
		err := d.conn.QueryRow(context.Background(), `SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = $1`, defaultObjectName(name)).Scan(&confirmed)
		return err == nil && confirmed >= target
	})
	if len(rt.snapshotRecords()) != 0 {
		t.Fatal("events for a table that is not captured")
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationRestartDuringSnapshotStartsOver(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, n int)`)
	d.exec(`INSERT INTO items SELECT g, 0 FROM generate_series(1, 300) g`)
	name := "crash_" + d.name
	// A slot left by a snapshot that never completed (no offset committed).
	d.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, defaultObjectName(name))
	rt := newFakeRuntime(t, nil)
	r := start(t, name, d.config("items"), rt)
	evs := r.waitEvents(30*time.Second, "snapshot", func(evs []event) bool { return len(evs) == 300 && rt.lastCheckpoint() != nil })
	ids := map[any]bool{}
	for _, e := range evs {
		ids[e.After["id"]] = true
	}
	if len(ids) != 300 {
		t.Fatalf("%d distinct rows", len(ids))
	}
}

func TestIntegrationInitialOnlyAndWhenNeeded(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, n int)`)
	d.exec(`INSERT INTO items SELECT g, 0 FROM generate_series(1, 50) g`)
	name := "modes_" + d.name
	cfg := d.config("items")
	cfg.Snapshot = SnapshotInitialOnly
	rt := newFakeRuntime(t, nil)
	conn, err := driver{}.Open(name, cfg, rt.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := conn.Run(ctx, rt); err != nil {
		t.Fatalf("initial_only: %v", err)
	}
	if n := len(rt.snapshotRecords()); n != 50 {
		t.Fatalf("initial_only emitted %d records", n)
	}
	var slots int
	waitFor(t, 10*time.Second, "temporary slot to go", func() bool {
		_ = d.conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, defaultObjectName(name)).Scan(&slots)
		return slots == 0
	})

	// An offset without its slot: initial refuses, when_needed snapshots again.
	off := rt.lastCheckpoint()
	cfg.Snapshot = SnapshotInitial
	err = runToErrorFrom(t, name, cfg, off)
	if !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "when_needed") {
		t.Fatalf("initial with a missing slot: %v", err)
	}
	cfg.Snapshot = SnapshotWhenNeeded
	rt2 := newFakeRuntime(t, off)
	r := start(t, name, cfg, rt2)
	r.waitEvents(30*time.Second, "second snapshot", func(evs []event) bool { return len(evs) == 50 && rt2.lastCheckpoint() != nil })
	d.exec(`UPDATE items SET n = 1 WHERE id = 7`)
	r.waitEvents(30*time.Second, "stream after when_needed snapshot", func(evs []event) bool { return hasEvent(evs, "tp.public.items", "u", int64(7)) })
}

func TestIntegrationPublicationCreatedAndAltered(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	d.exec(`CREATE TABLE b (id int PRIMARY KEY)`)
	d.exec(`CREATE PUBLICATION tributary_pubtest FOR TABLE a`)
	cfg := d.config("b")
	cfg.Publication = "tributary_pubtest"
	cfg.Snapshot = SnapshotNever
	rt := newFakeRuntime(t, nil)
	r := start(t, "pub_"+d.name, cfg, rt)
	waitFor(t, 30*time.Second, "publication altered", func() bool {
		var tables string
		_ = d.conn.QueryRow(context.Background(), `SELECT string_agg(tablename, ',') FROM pg_publication_tables WHERE pubname = 'tributary_pubtest'`).Scan(&tables)
		return tables == "b"
	})
	time.Sleep(300 * time.Millisecond)
	d.exec(`INSERT INTO a VALUES (1)`)
	d.exec(`INSERT INTO b VALUES (1)`)
	evs := r.waitEvents(30*time.Second, "insert into b", func(evs []event) bool { return hasEvent(evs, "tp.public.b", "c", int32v(1)) })
	for _, e := range evs {
		if e.Topic != "tp.public.b" {
			t.Fatalf("event for %s", e.Topic)
		}
	}
}

func int32v(v int) any { return v }

func TestIntegrationBadInputs(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id int PRIMARY KEY)`)
	base := envURL(t, "TRIBUTARY_TEST_PG_URL")

	t.Run("wrong password", func(t *testing.T) {
		u, _ := url.Parse(withDatabase(t, base, d.name, nil))
		u.User = url.UserPassword(u.User.Username(), "definitely-wrong-pw")
		cfg := d.config("items")
		cfg.URL = u.String()
		err := runToError(t, "bad_"+d.name, cfg)
		msg := err.Error()
		t.Log(msg)
		if !strings.Contains(msg, "127.0.0.1:55432") && !strings.Contains(msg, u.Host) || !strings.Contains(msg, u.User.Username()) ||
			!strings.Contains(msg, "authentication failed") || strings.Contains(msg, "definitely-wrong-pw") {
			t.Fatalf("wrong password error: %v", err)
		}
	})
	t.Run("wal_level not logical", func(t *testing.T) {
		cfg := d.config("items")
		cfg.URL = envURL(t, "TRIBUTARY_TEST_PG_NOLOGICAL_URL")
		err := runToError(t, "bad_"+d.name, cfg)
		if !strings.Contains(err.Error(), `wal_level is "replica"`) || !strings.Contains(err.Error(), "wal_level = logical") {
			t.Fatalf("wal_level error: %v", err)
		}
	})
	t.Run("missing table", func(t *testing.T) {
		err := runToError(t, "bad_"+d.name, d.config("items", "public.nosuch"))
		if !strings.Contains(err.Error(), "tables[1]") || !strings.Contains(err.Error(), "public.nosuch does not exist") {
			t.Fatalf("missing table error: %v", err)
		}
	})
	t.Run("pattern matches nothing", func(t *testing.T) {
		err := runToError(t, "bad_"+d.name, d.config("zzz_*"))
		if !strings.Contains(err.Error(), `pattern "zzz_*" matches no table`) {
			t.Fatalf("pattern error: %v", err)
		}
	})
	t.Run("user without REPLICATION", func(t *testing.T) {
		role := "norepl_" + randSuffix()
		d.exec(`CREATE ROLE ` + role + ` LOGIN PASSWORD 'pw_norepl'`)
		t.Cleanup(func() {
			_, _ = d.conn.Exec(context.Background(), `DROP OWNED BY `+role)
			_, _ = d.conn.Exec(context.Background(), `DROP ROLE `+role)
		})
		u, _ := url.Parse(withDatabase(t, base, d.name, nil))
		u.User = url.UserPassword(role, "pw_norepl")
		cfg := d.config("items")
		cfg.URL = u.String()
		err := runToError(t, "bad_"+d.name, cfg)
		if !strings.Contains(err.Error(), role) || !strings.Contains(err.Error(), "REPLICATION") || !strings.Contains(err.Error(), "ALTER ROLE") {
			t.Fatalf("no-replication error: %v", err)
		}
	})
	t.Run("key_columns names a missing column", func(t *testing.T) {
		cfg := d.config("items")
		cfg.KeyColumns = map[string][]string{"items": {"nope"}}
		err := runToError(t, "bad_"+d.name, cfg)
		if !strings.Contains(err.Error(), "key_columns.items") || !strings.Contains(err.Error(), `no column "nope"`) {
			t.Fatalf("key_columns error: %v", err)
		}
	})
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func TestIntegrationSnapshotKeysetPaginationOddKeys(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE kv (k text, i int, ts timestamptz, v text, PRIMARY KEY (k, i, ts))`)
	keys := []string{"plain", "it's", `back\slash`, "tab\there", "new\nline", "ünïcødé", `\N`, "", " lead", "trail ", `quote"d`, `\\x00`}
	want := map[string]bool{}
	for _, k := range keys {
		for i := 1; i <= 3; i++ {
			ts := fmt.Sprintf("2024-01-0%d 10:00:00.123456+02", i)
			d.exec(`INSERT INTO kv VALUES ($1, $2, $3, $4)`, k, i, ts, "v:"+k)
			want[fmt.Sprintf("%q/%d", k, i)] = true
		}
	}
	cfg := d.config("kv")
	cfg.SnapshotChunkRows = 4 // many chunks, keys split inside a k
	rt := newFakeRuntime(t, nil)
	r := start(t, "keyset_"+d.name, cfg, rt)
	evs := r.waitEvents(30*time.Second, "snapshot", func([]event) bool { return rt.lastCheckpoint() != nil })
	got := map[string]bool{}
	for _, e := range evs {
		k := e.After["k"].(string)
		id := fmt.Sprintf("%q/%d", k, e.After["i"])
		if got[id] {
			t.Fatalf("row %s read twice", id)
		}
		got[id] = true
		if e.After["v"] != "v:"+k || e.Key["k"] != k {
			t.Fatalf("row %s: value %q key %v", id, e.After["v"], e.Key)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows read, want %d", len(got), len(want))
	}
}

// The slot's confirmed position moves only to checkpoints the runtime
// reported durable (invariant 2).
func TestIntegrationSlotWaitsForDurability(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, n int)`)
	name := "durable_" + d.name
	slot := defaultObjectName(name)
	rt := newFakeRuntime(t, nil)
	rt.withholdDurable = true
	r := start(t, name, d.config("items"), rt)
	r.waitEvents(30*time.Second, "snapshot checkpoint", func([]event) bool { return rt.lastCheckpoint() != nil })
	confirmed := func() int64 {
		var c int64
		if err := d.conn.QueryRow(context.Background(), `SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	initial := confirmed()
	for i := 1; i <= 20; i++ {
		d.exec(`INSERT INTO items VALUES ($1, 0)`, i)
	}
	r.waitEvents(30*time.Second, "20 inserts", func(evs []event) bool { return len(evs) == 20 })
	waitFor(t, 10*time.Second, "a checkpoint past the inserts", func() bool {
		return rt.lastCheckpoint()["lsn"].(float64) > float64(initial)
	})
	time.Sleep(500 * time.Millisecond) // several status intervals
	if c := confirmed(); c != initial {
		t.Fatalf("confirmed_flush_lsn moved from %d to %d with nothing durable", initial, c)
	}
	rt.releaseDurable()
	want := int64(rt.lastCheckpoint()["lsn"].(float64))
	waitFor(t, 10*time.Second, "confirmed_flush_lsn to follow the durable checkpoint", func() bool { return confirmed() >= want })
}

package mysql

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// caughtUp waits until the connector checkpointed the server's current end.
func (d *testDB) caughtUp(r *running) {
	d.t.Helper()
	end, err := binlogEnd(d.conn, flavorMariaDB)
	if err != nil {
		d.t.Fatal(err)
	}
	waitFor(d.t, 60*time.Second, "connector to reach "+end.String(), func() bool {
		cp := r.rt.lastCheckpoint()
		if cp == nil {
			return false
		}
		p, err := parseOffset(cp)
		return err == nil && compareFilePos(p.File, p.Pos, end.File, end.Pos) >= 0
	})
}

// rowState is a row as the events describe it.
type rowState struct {
	v     int64
	alive bool
	seen  bool
}

// replay applies events to per-table row maps, checking that every row's
// counter v moves by exactly one per update: a doubled event repeats a
// value, a missed one skips one.
func replay(t *testing.T, evs []event) map[string]map[int64]*rowState {
	t.Helper()
	state := map[string]map[int64]*rowState{}
	for i, e := range evs {
		if e.Value == nil {
			continue // tombstone
		}
		rows := state[e.Topic]
		if rows == nil {
			rows = map[int64]*rowState{}
			state[e.Topic] = rows
		}
		img := e.After
		if e.Op == "d" {
			img = e.Before
		}
		id := toInt64(img["id"])
		v := toInt64(img["v"])
		rs := rows[id]
		switch e.Op {
		case "r", "c":
			if rs != nil && rs.seen {
				t.Fatalf("event %d: %s row %d created twice (op %s)", i, e.Topic, id, e.Op)
			}
			rows[id] = &rowState{v: v, alive: true, seen: true}
		case "u":
			if rs == nil || !rs.alive {
				t.Fatalf("event %d: %s update of row %d that is not there", i, e.Topic, id)
			}
			if toInt64(e.Before["v"]) != rs.v || v != rs.v+1 {
				t.Fatalf("event %d: %s row %d update v %d->%d, but the stream had v=%d (doubled or missed change)",
					i, e.Topic, id, toInt64(e.Before["v"]), v, rs.v)
			}
			rs.v = v
		case "d":
			if rs == nil || !rs.alive {
				t.Fatalf("event %d: %s delete of row %d that is not there", i, e.Topic, id)
			}
			rs.alive = false
		default:
			t.Fatalf("event %d: unexpected op %q", i, e.Op)
		}
	}
	return state
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	}
	panic(fmt.Sprintf("not an int: %T %v", v, v))
}

// dbRows reads id -> v of a table.
func dbRows(t *testing.T, conn *client.Conn, table string) map[int64]int64 {
	t.Helper()
	rows, err := query(conn, "SELECT id, v FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]int64{}
	for _, r := range rows {
		id, _ := strconv.ParseInt(r[0], 10, 64)
		v, _ := strconv.ParseInt(r[1], 10, 64)
		out[id] = v
	}
	return out
}

// writer runs random multi-table transactions until stopped.
type writer struct {
	conn   *client.Conn
	tables []string
	next   atomic.Int64
	txns   atomic.Int64
	stop   chan struct{}
	done   chan error
}

func startWriter(d *testDB, tables []string, firstNewID int64) *writer {
	w := &writer{conn: d.other(), tables: tables, stop: make(chan struct{}), done: make(chan error, 1)}
	w.next.Store(firstNewID)
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			var stmts []string
			for k := 0; k < 1+rng.IntN(4); k++ {
				tb := w.tables[rng.IntN(len(w.tables))]
				switch op := rng.IntN(10); {
				case op < 6:
					stmts = append(stmts, fmt.Sprintf("UPDATE %s SET v = v + 1 WHERE id = %d", tb, 1+rng.IntN(int(firstNewID))))
				case op < 8:
					stmts = append(stmts, fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%d, 0)", tb, w.next.Add(1)))
				default:
					stmts = append(stmts, fmt.Sprintf("DELETE FROM %s WHERE id = %d", tb, 1+rng.IntN(int(firstNewID))))
				}
			}
			if _, err := w.conn.Execute("BEGIN"); err != nil {
				w.done <- err
				return
			}
			for _, s := range stmts {
				if _, err := w.conn.Execute(s); err != nil {
					w.done <- fmt.Errorf("%s: %w", s, err)
					return
				}
			}
			if _, err := w.conn.Execute("COMMIT"); err != nil {
				w.done <- err
				return
			}
			w.txns.Add(1)
		}
	}()
	return w
}

func (w *writer) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	if err := <-w.done; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

func checkCopy(t *testing.T, d *testDB, evs []event, tables []string) {
	t.Helper()
	state := replay(t, evs)
	for _, tb := range tables {
		topic := "tp." + d.name + "." + tb
		want := dbRows(t, d.conn, tb)
		got := map[int64]int64{}
		for id, rs := range state[topic] {
			if rs.alive {
				got[id] = rs.v
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: the events leave %d rows, the table has %d", tb, len(got), len(want))
		}
		var diffs []string
		for id, v := range want {
			if g, ok := got[id]; !ok || g != v {
				diffs = append(diffs, fmt.Sprintf("id %d: events %d (present %v), table %d", id, g, ok, v))
			}
		}
		sort.Strings(diffs)
		if len(diffs) > 0 {
			t.Errorf("%s: %d rows differ, e.g. %s", tb, len(diffs), strings.Join(diffs[:min(5, len(diffs))], "; "))
		}
	}
}

// TestSnapshotWithConcurrentWritesThenStream fills three tables, keeps
// writing multi-table transactions while a parallel, chunked snapshot runs
// and afterwards, and checks that replaying the events gives exactly the
// tables' final contents with every change seen once.
func TestSnapshotWithConcurrentWritesThenStream(t *testing.T) {
	for _, par := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", par), func(t *testing.T) {
			d := newTestDB(t)
			tables := []string{"a", "b", "c"}
			const n = 3000
			for _, tb := range tables {
				d.exec(fmt.Sprintf("CREATE TABLE %s (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(100))", tb))
				var vals []string
				for i := 1; i <= n; i++ {
					vals = append(vals, fmt.Sprintf("(%d, 0, REPEAT('x', 50))", i))
				}
				d.exec("INSERT INTO " + tb + " (id, v, pad) VALUES " + strings.Join(vals, ","))
			}
			w := startWriter(d, tables, n)
			waitFor(t, 10*time.Second, "writer warm-up", func() bool { return w.txns.Load() > 20 })
			cfg := d.config(tables...)
			cfg.SnapshotChunkRows = 97
			cfg.SnapshotParallelism = par
			r := d.start(cfg, &MemoryHistory{}, nil)
			waitFor(t, 60*time.Second, "snapshot to finish", func() bool {
				return strings.Contains(r.rt.logBuf.String(), "streaming the binlog")
			})
			during := w.txns.Load()
			time.Sleep(500 * time.Millisecond)
			w.finish(t)
			if w.txns.Load() <= during {
				t.Fatalf("the writer made no transactions after the snapshot")
			}
			d.caughtUp(r)
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			evs := r.rt.decode(t, r.rt.recs())
			reads := 0
			for _, e := range evs {
				if e.Op == "r" {
					reads++
				}
			}
			t.Logf("%d events (%d snapshot reads), writer made %d transactions", len(evs), reads, w.txns.Load())
			checkCopy(t, d, evs, tables)
			if par > 1 && !strings.Contains(r.rt.logBuf.String(), "readers="+strconv.Itoa(par)) {
				t.Logf("log:\n%s", r.rt.logBuf.String())
				t.Errorf("the snapshot did not run with %d readers", par)
			}
		})
	}
}

// TestCrashMidStreamAndResume emulates kill -9 while streaming: only what
// the last checkpoint covered survives (records and offset), a DDL runs
// before and after the crash, the writer never pauses, and a new run from
// the surviving offset must complete the copy with every change once.
func TestCrashMidStreamAndResume(t *testing.T) {
	d := newTestDB(t)
	tables := []string{"a", "b"}
	const n = 1000
	for _, tb := range tables {
		d.exec(fmt.Sprintf("CREATE TABLE %s (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)", tb))
		var vals []string
		for i := 1; i <= n; i++ {
			vals = append(vals, fmt.Sprintf("(%d, 0)", i))
		}
		d.exec("INSERT INTO " + tb + " (id, v) VALUES " + strings.Join(vals, ","))
	}
	w := startWriter(d, tables, n)
	cfg := d.config(tables...)
	hist := &MemoryHistory{}
	a := d.start(cfg, hist, nil)
	waitFor(t, 60*time.Second, "streaming", func() bool { return strings.Contains(a.rt.logBuf.String(), "streaming the binlog") })
	time.Sleep(300 * time.Millisecond)
	d.exec("ALTER TABLE a ADD COLUMN extra INT NULL")
	time.Sleep(300 * time.Millisecond)
	survivors, off := a.rt.durableRecords() // kill -9: the rest is lost
	if off == nil {
		t.Fatal("no checkpoint before the crash")
	}
	_ = a.stop()
	d.exec("ALTER TABLE b ADD COLUMN note VARCHAR(10) NULL")
	time.Sleep(300 * time.Millisecond)

	b := d.start(cfg, hist, off)
	time.Sleep(500 * time.Millisecond)
	w.finish(t)
	d.caughtUp(b)
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	evs := append(a.rt.decode(t, survivors), b.rt.decode(t, b.rt.recs())...)
	t.Logf("%d events survived the crash, %d after the restart; writer made %d transactions", len(survivors), b.rt.count(), w.txns.Load())
	checkCopy(t, d, evs, tables)
}

package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/source"
)

// Debezium's per-table snapshot marks (RelationalSnapshotChangeEventSource):
// each table's first row "first_in_data_collection", its last
// "last_in_data_collection", a one-row table's only row the latter; the
// snapshot's first row "first" and its last "last"; every other "true". A
// table's first row is emitted before its other rows and the snapshot's
// first before every other, though blocks are encoded in parallel.
func TestIntegrationSnapshotMarkers(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE big (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 3000) g`)
	d.exec(`CREATE TABLE mid (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO mid SELECT g, 'v' || g FROM generate_series(1, 700) g`)
	d.exec(`CREATE TABLE nokey (id int, v text)`)
	d.exec(`INSERT INTO nokey SELECT g, 'v' || g FROM generate_series(1, 300) g`)
	d.exec(`CREATE TABLE one (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO one VALUES (1, 'only')`)
	d.exec(`CREATE TABLE empty (id int PRIMARY KEY, v text)`)
	d.exec(`ANALYZE`)
	cfg := d.config("big", "mid", "nokey", "one", "empty")
	cfg.SnapshotChunkRows = 500 // several chunks and blocks per table
	cfg.SnapshotParallelism = 3
	rt := newFakeRuntime(t, nil)
	r := start(t, "marks_"+d.name, cfg, rt)
	r.waitEvents(60*time.Second, "snapshot", func([]event) bool { return rt.lastCheckpoint() != nil })
	evs := rt.decodeAll(t, rt.snapshotRecords())

	type tally struct {
		n           int
		firstAt     int
		marks       map[string]int
		firstMarkID any
		lastMarkID  any
	}
	per := map[string]*tally{}
	total := 0
	for i, e := range evs {
		if e.Op != "r" {
			continue
		}
		total++
		tt := per[e.Topic]
		if tt == nil {
			tt = &tally{firstAt: i, marks: map[string]int{}}
			per[e.Topic] = tt
		}
		tt.n++
		m, _ := e.Source["snapshot"].(string)
		tt.marks[m]++
		switch m {
		case "first", "first_in_data_collection":
			tt.firstMarkID = e.After["id"]
			if tt.n != 1 {
				t.Errorf("%s: %s row emitted as the table's row %d, want 1", e.Topic, m, tt.n)
			}
		case "last", "last_in_data_collection":
			tt.lastMarkID = e.After["id"]
		}
		if m == "first" && total != 1 {
			t.Errorf("%s: the snapshot's first row was emitted %dth", e.Topic, total)
		}
		if m == "last" && i != len(evs)-1 {
			t.Errorf("%s: the snapshot's last row is not the last record", e.Topic)
		}
	}
	if total != 3000+700+300+1 {
		t.Fatalf("%d snapshot rows, want 4001", total)
	}
	if per["tp.public.empty"] != nil {
		t.Errorf("rows from the empty table")
	}
	firsts, lasts := 0, 0
	for topic, tt := range per {
		firsts += tt.marks["first"]
		lasts += tt.marks["last"]
		if topic == "tp.public.one" {
			if tt.marks["last_in_data_collection"]+tt.marks["last"]+tt.marks["first"] != 1 || tt.marks["first_in_data_collection"] != 0 {
				t.Errorf("one-row table: marks %v", tt.marks)
			}
			continue
		}
		if tt.marks["first"]+tt.marks["first_in_data_collection"] != 1 || tt.marks["last"]+tt.marks["last_in_data_collection"] != 1 ||
			tt.marks["true"] != tt.n-2 {
			t.Errorf("%s: marks %v for %d rows", topic, tt.marks, tt.n)
		}
		if topic != "tp.public.nokey" {
			// Keyed tables are read in key order.
			if fmt.Sprint(tt.firstMarkID) != "1" || fmt.Sprint(tt.lastMarkID) != fmt.Sprint(tt.n) {
				t.Errorf("%s: first/last marks on ids %v/%v, want 1/%d", topic, tt.firstMarkID, tt.lastMarkID, tt.n)
			}
		}
	}
	if firsts != 1 || lasts != 1 {
		t.Errorf("%d rows marked first and %d last, want 1 each", firsts, lasts)
	}
	// The largest table is read first and opens the snapshot.
	if per["tp.public.big"].marks["first"] != 1 {
		t.Errorf("big: marks %v, want its first row marked first", per["tp.public.big"].marks)
	}
}

// source.origin and origin_lsn (Debezium 3.6): a transaction applied under
// a replication origin (as a logical replication subscriber applies them)
// carries the origin's name and the commit LSN on the origin; any other
// transaction nulls.
func TestIntegrationSourceOrigin(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE o (id int PRIMARY KEY)`)
	rt := newFakeRuntime(t, nil)
	r := start(t, "origin_"+d.name, d.config("o"), rt)
	r.waitEvents(30*time.Second, "snapshot done", func([]event) bool { return rt.lastCheckpoint() != nil })

	origin := "trib_origin_" + d.name
	d.exec(`SELECT pg_replication_origin_create($1)`, origin)
	t.Cleanup(func() {
		_, _ = d.conn.Exec(context.Background(), `SELECT pg_replication_origin_session_reset()`)
		_, _ = d.conn.Exec(context.Background(), `SELECT pg_replication_origin_drop($1)`, origin)
	})
	d.exec(`INSERT INTO o VALUES (1)`)
	d.exec(`SELECT pg_replication_origin_session_setup($1)`, origin)
	d.exec(`BEGIN`)
	d.exec(`SELECT pg_replication_origin_xact_setup('0/1234', now())`)
	d.exec(`INSERT INTO o VALUES (2)`)
	d.exec(`COMMIT`)
	d.exec(`SELECT pg_replication_origin_session_reset()`)
	d.exec(`INSERT INTO o VALUES (3)`)
	evs := r.waitEvents(30*time.Second, "three inserts", func(evs []event) bool {
		n := 0
		for _, e := range evs {
			if e.Op == "c" {
				n++
			}
		}
		return n == 3
	})
	for _, e := range evs {
		if e.Op != "c" {
			continue
		}
		id := fmt.Sprint(e.After["id"])
		if _, ok := e.Source["origin"]; !ok {
			t.Fatalf("row %s: source block has no origin field: %v", id, e.Source)
		}
		switch id {
		case "2":
			if e.Source["origin"] != origin || e.Source["origin_lsn"] != int64(0x1234) {
				t.Errorf("row 2: origin %v origin_lsn %v, want %s and %d", e.Source["origin"], e.Source["origin_lsn"], origin, 0x1234)
			}
		default:
			if e.Source["origin"] != nil || e.Source["origin_lsn"] != nil {
				t.Errorf("row %s: origin %v origin_lsn %v, want nulls", id, e.Source["origin"], e.Source["origin_lsn"])
			}
		}
	}
}

// The emitter puts batches that the encoders finished out of order back in
// Debezium's order: the snapshot's first row first, each table's first row
// before its other rows; each table's final row is held until the next
// table ends, and the last one is left for "last".
func TestSnapEmitterOrder(t *testing.T) {
	a := &snapTable{firstOfSnapshot: true}
	b := &snapTable{}
	rec := func(label string) source.Record { return source.Record{Topic: label} }
	batch := func(t *snapTable, opens, done bool, labels ...string) snapBatch {
		sb := snapBatch{t: t}
		for _, l := range labels {
			sb.recs = append(sb.recs, rec(l))
		}
		if opens {
			sb.opens = t
		}
		if done {
			last, lastLast := rec(labels[0]+"-lastIn"), rec(labels[0]+"-last")
			sb.tableDone, sb.lastInTable, sb.lastLast = t, &last, &lastLast
			sb.recs = nil
		}
		return sb
	}
	rt := newFakeRuntime(t, nil)
	var errs []error
	em := &snapEmitter{ctx: context.Background(), rt: rt, fail: func(err error) { errs = append(errs, err) }, maxWaiting: 8}
	for _, sb := range []snapBatch{
		batch(b, false, false, "b2", "b3"), // b's rows before b's first, before the snapshot's first
		batch(a, false, false, "a2"),
		batch(b, true, false, "b1"), // b's first row, still before the snapshot's first
		batch(a, true, false, "a1"), // the snapshot's first row: everything waiting may go
		batch(a, false, true, "a9"), // a ends: its final row is held
		batch(b, false, false, "b4"),
		batch(b, false, true, "b9"), // b ends: a's final row goes, b's is held
	} {
		em.take(sb)
	}
	em.flush()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, r := range rt.snapshotRecords() {
		got = append(got, r.Topic)
	}
	if want := "a1 a2 b1 b2 b3 b4 a9-lastIn"; strings.Join(got, " ") != want {
		t.Errorf("emitted %s, want %s", strings.Join(got, " "), want)
	}
	if em.held == nil || em.held.lastLast.Topic != "b9-last" || em.emitted != 7 {
		t.Errorf("held %v, emitted %d", em.held, em.emitted)
	}

	// Beyond the bound, order gives way rather than memory.
	rt = newFakeRuntime(t, nil)
	em = &snapEmitter{ctx: context.Background(), rt: rt, fail: func(err error) { errs = append(errs, err) }, maxWaiting: 1}
	c := &snapTable{firstOfSnapshot: true}
	em.take(batch(c, false, false, "c2"))
	em.take(batch(c, false, false, "c3"))
	em.take(batch(c, true, false, "c1"))
	got = got[:0]
	for _, r := range rt.snapshotRecords() {
		got = append(got, r.Topic)
	}
	if want := "c3 c1 c2"; strings.Join(got, " ") != want {
		t.Errorf("bounded: emitted %s, want %s", strings.Join(got, " "), want)
	}
}

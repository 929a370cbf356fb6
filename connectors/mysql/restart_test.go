package mysql

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

func fieldNames(m map[string]any) string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

// streamed runs the connector once to snapshot t, then stops it cleanly and
// returns the committed offset.
func snapshotAndStop(t *testing.T, d *testDB, cfg *Config, hist HistoryStore) (map[string]any, *running) {
	t.Helper()
	r := d.start(cfg, hist, nil)
	waitFor(t, 30*time.Second, "streaming", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	d.exec("INSERT INTO t VALUES (3, 'three')")
	d.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	return r.rt.lastCheckpoint(), r
}

// ddlWhileStopped changes t's shape several times between rows, while no
// connector runs.
func ddlWhileStopped(d *testDB) {
	d.exec(
		"INSERT INTO t VALUES (4, 'old shape')",
		"ALTER TABLE t ADD COLUMN w INT",
		"INSERT INTO t VALUES (5, 'with w', 50)",
		"ALTER TABLE t MODIFY v VARCHAR(50)",
		"UPDATE t SET v = 'a longer value than ten' WHERE id = 5",
		"ALTER TABLE t DROP COLUMN w",
		"INSERT INTO t VALUES (6, 'w dropped')",
		"RENAME TABLE t TO t_renamed",
		"INSERT INTO t_renamed VALUES (7, 'renamed')",
		"TRUNCATE TABLE t_renamed",
	)
}

// checkAfterDDL checks the events of the restarted connector: each row is
// decoded with the shape the table had when it was written.
func checkAfterDDL(t *testing.T, d *testDB, r *running) {
	t.Helper()
	evs := r.rt.decode(t, r.rt.recs())
	var got []string
	for _, e := range evs {
		if e.Value == nil {
			continue
		}
		tb := strings.TrimPrefix(e.Topic, "tp."+d.name+".")
		switch e.Op {
		case "t":
			got = append(got, tb+" t")
		case "u":
			got = append(got, fmt.Sprintf("%s u %v [%s] %v", tb, e.After["id"], fieldNames(e.After), e.After["v"]))
		default:
			got = append(got, fmt.Sprintf("%s %s %v [%s]", tb, e.Op, e.After["id"], fieldNames(e.After)))
		}
	}
	want := []string{
		"t c 4 [id,v]",
		"t c 5 [id,v,w]",
		"t u 5 [id,v,w] a longer value than ten",
		"t c 6 [id,v]",
		"t_renamed c 7 [id,v]",
		"t_renamed t",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events after restart:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// t-value: (id,v) from the first run, then +w, v widened, w dropped.
	if n := r.rt.versions("tp." + d.name + ".t-value"); n != 4 {
		t.Errorf("t-value has %d schema versions in the restarted run, want 4 (old shape, +w, v(50), -w)", n)
	}
}

func TestRestartAcrossDDLWhileStopped(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1,'one'),(2,'two')")
	cfg := d.config("t*")
	hist := &MemoryHistory{}
	off, _ := snapshotAndStop(t, d, cfg, hist)
	ddlWhileStopped(d)
	r := d.start(cfg, hist, off)
	waitFor(t, 30*time.Second, "events after restart", func() bool { return r.rt.count() >= 6 })
	d.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.rt.logBuf.String(), "schema history replayed") {
		t.Error("the restart did not use the schema history")
	}
	checkAfterDDL(t, d, r)

	// A third run resumes after all of it with the history's latest shapes.
	r3 := d.start(cfg, hist, r.rt.lastCheckpoint())
	waitFor(t, 30*time.Second, "streaming", func() bool { return strings.Contains(r3.rt.logBuf.String(), "streaming the binlog") })
	d.exec("INSERT INTO t_renamed VALUES (8, 'third run')")
	waitFor(t, 30*time.Second, "row 8", func() bool { return r3.rt.count() >= 1 })
	if err := r3.stop(); err != nil {
		t.Fatal(err)
	}
	evs := r3.rt.decode(t, r3.rt.recs())
	if len(evs) != 1 || evs[0].Op != "c" || toInt64(evs[0].After["id"]) != 8 || fieldNames(evs[0].After) != "id,v" {
		t.Errorf("third run events: %+v", evs)
	}
}

func TestLostHistoryWithDDLSinceNeedsSnapshot(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1,'one'),(2,'two')")
	cfg := d.config("t*")
	off, _ := snapshotAndStop(t, d, cfg, &MemoryHistory{})
	ddlWhileStopped(d)

	// The history is gone and DDL ran since the offset: information_schema
	// cannot stand in, so the connector refuses.
	err := d.runToError(cfg, &MemoryHistory{}, off)
	wantErr(t, err, "schema-history", "DDL ran after the resume position", "ALTER TABLE t ADD COLUMN w INT", "take a new snapshot")

	// A damaged history is treated the same way.
	hist := &MemoryHistory{}
	_ = hist.Append(t.Context(), []byte("k"), []byte("{not json"))
	err = d.runToError(cfg, hist, off)
	wantErr(t, err, "damaged", "DDL ran after the resume position")

	// snapshot: when_needed takes a new snapshot instead.
	cfg2 := d.config("t*")
	cfg2.Snapshot = SnapshotWhenNeeded
	r := d.start(cfg2, &MemoryHistory{}, off)
	waitFor(t, 30*time.Second, "new snapshot", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range r.rt.decode(t, r.rt.recs()) {
		ops = append(ops, fmt.Sprintf("%s:%v", e.Op, e.After["id"]))
	}
	// t_renamed was truncated: the new snapshot has nothing to read.
	if len(ops) != 0 {
		t.Errorf("new snapshot events %v, want none (the table is empty)", ops)
	}
	if !strings.Contains(r.rt.logBuf.String(), "when_needed takes a new snapshot") {
		t.Error("no log line about the new snapshot")
	}
}

func TestLostHistoryWithoutDDLRecoversFromInformationSchema(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1,'one'),(2,'two')")
	cfg := d.config("t")
	off, _ := snapshotAndStop(t, d, cfg, &MemoryHistory{})
	// DDL in another database does not matter.
	other := d.other()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS " + d.name + "_x", "CREATE TABLE " + d.name + "_x.u (a int)"} {
		if _, err := other.Execute(q); err != nil {
			t.Fatal(err)
		}
	}
	defer other.Execute("DROP DATABASE IF EXISTS " + d.name + "_x") //nolint:errcheck
	d.exec("INSERT INTO t VALUES (4, 'four')", "UPDATE t SET v = 'uno' WHERE id = 1")

	hist := &MemoryHistory{}
	r := d.start(cfg, hist, off)
	waitFor(t, 30*time.Second, "events", func() bool { return r.rt.count() >= 2 })
	d.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.rt.logBuf.String(), "rebuilt from information_schema") {
		t.Fatalf("no recovery; log:\n%s", r.rt.logBuf.String())
	}
	var got []string
	for _, e := range r.rt.decode(t, r.rt.recs()) {
		if e.Value != nil {
			got = append(got, fmt.Sprintf("%s %v %v", e.Op, e.After["id"], e.After["v"]))
		}
	}
	if want := "c 4 four|u 1 uno"; strings.Join(got, "|") != want {
		t.Errorf("events %q, want %q", strings.Join(got, "|"), want)
	}
	if hist.Len() == 0 {
		t.Error("the recovered shapes were not written to the history")
	}
}

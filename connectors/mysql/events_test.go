package mysql

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestEventShapes covers the source block, snapshot markers, keys of
// tables with and without a primary key, tombstones, an update that moves
// the key, offsets and snapshot metrics.
func TestEventShapes(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE k (id INT PRIMARY KEY, v VARCHAR(10))",
		"CREATE TABLE nokey (a INT, b VARCHAR(10))",
		"CREATE TABLE keycols (a INT, b VARCHAR(10))",
		"INSERT INTO k VALUES (1,'one'),(2,'two'),(3,'three')",
		"INSERT INTO nokey VALUES (1,'x')",
		"INSERT INTO keycols VALUES (1,'y')")
	cfg := d.config("k", "nokey", "keycols")
	cfg.KeyColumns = map[string][]string{d.name + ".keycols": {"a"}}
	cfg.SnapshotParallelism = 2 // quiet server: the readers line up without a lock
	r := d.start(cfg, &MemoryHistory{}, nil)
	waitFor(t, 30*time.Second, "snapshot", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	snapN := r.rt.count()
	d.exec("UPDATE k SET id = 10 WHERE id = 1", // key change: delete + tombstone + create
		"DELETE FROM k WHERE id = 2",
		"DELETE FROM nokey",
		"BEGIN", "INSERT INTO k VALUES (20,'a')", "INSERT INTO k VALUES (21,'b')", "COMMIT")
	d.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	log := r.rt.logBuf.String()
	if strings.Contains(log, "FLUSH TABLES WITH READ LOCK") || !strings.Contains(log, "readers=2") {
		t.Errorf("two readers on a quiet server should start without the global read lock; log:\n%s", log)
	}
	evs := r.rt.decode(t, r.rt.recs())
	if snapN != 5 {
		t.Fatalf("snapshot emitted %d records, want 5", snapN)
	}
	// Snapshot markers: first, then per-table last, "last" at the very end.
	var marks []string
	for _, e := range evs[:snapN] {
		marks = append(marks, fmt.Sprintf("%s:%s", strings.TrimPrefix(e.Topic, "tp."+d.name+"."), e.Source["snapshot"]))
		if e.Op != "r" || e.Source["gtid"] != nil || e.Source["file"] == "" || e.Source["db"] != d.name {
			t.Errorf("snapshot event %+v", e)
		}
	}
	counts := map[string]int{}
	for _, m := range marks {
		counts[m[strings.Index(m, ":")+1:]]++
	}
	if counts["first"] != 1 || counts["last"] != 1 || counts["last_in_data_collection"] != 2 || !strings.HasSuffix(marks[len(marks)-1], ":last") {
		t.Errorf("snapshot markers %v", marks)
	}
	for _, e := range evs[:snapN] {
		switch {
		case strings.HasSuffix(e.Topic, ".nokey"):
			if e.Key != nil {
				t.Errorf("table without key got key %v", e.Key)
			}
		case strings.HasSuffix(e.Topic, ".keycols"):
			if fmt.Sprint(e.Key) != "map[a:1]" {
				t.Errorf("key_columns key %v", e.Key)
			}
		}
	}

	var got []string
	gtidRe := regexp.MustCompile(`^0-\d+-\d+$`)
	for _, e := range evs[snapN:] {
		tb := strings.TrimPrefix(e.Topic, "tp."+d.name+".")
		if e.Value == nil {
			got = append(got, fmt.Sprintf("%s tombstone %v", tb, e.Key))
			continue
		}
		s := e.Source
		if s["snapshot"] != "false" || !gtidRe.MatchString(fmt.Sprint(s["gtid"])) || !strings.HasPrefix(fmt.Sprint(s["file"]), "mariadb-bin.") ||
			toInt64(s["pos"]) <= 0 || s["table"] != tb || s["db"] != d.name || s["connector"] != "mysql" || s["name"] != "tp" || toInt64(s["server_id"]) <= 0 {
			t.Errorf("source block %v", s)
		}
		img := e.After
		if e.Op == "d" {
			img = e.Before
		}
		got = append(got, fmt.Sprintf("%s %s %v row=%v", tb, e.Op, img, s["row"]))
	}
	want := []string{
		"k d map[id:1 v:one] row=0", "k tombstone map[id:1]", "k c map[id:10 v:one] row=0",
		"k d map[id:2 v:two] row=0", "k tombstone map[id:2]",
		"nokey d map[a:1 b:x] row=0", // no key: no tombstone
		"k c map[id:20 v:a] row=0", "k c map[id:21 v:b] row=0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stream events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Both inserts of the last transaction share its GTID; the checkpoint
	// after it is the offset, with Debezium's fields.
	last := evs[len(evs)-1].Source["gtid"]
	if evs[len(evs)-2].Source["gtid"] != last {
		t.Errorf("one transaction, two GTIDs: %v %v", evs[len(evs)-2].Source["gtid"], last)
	}
	off := r.rt.lastCheckpoint()
	if off["gtids"] != last || off["row"] != 0.0 || off["event"] != 0.0 || off["file"] == "" {
		t.Errorf("offset %v after gtid %v", off, last)
	}
	if v := gauge(t, r.rt.metrics.SnapshotRows.WithLabelValues(r.c.name, d.name+".k")); v != 3 {
		t.Errorf("snapshot rows gauge for k = %v, want 3", v)
	}
	if v := gauge(t, r.rt.metrics.SnapshotRunning.WithLabelValues(r.c.name)); v != 0 {
		t.Errorf("snapshot running gauge = %v after the snapshot", v)
	}
	if v := gauge(t, r.rt.metrics.CommittedOffset.WithLabelValues(r.c.name)); v <= 0 {
		t.Errorf("committed offset gauge = %v", v)
	}
	// The lag is measured as soon as streaming starts; other tests write to
	// the shared server, so only its presence and sanity are checked.
	waitFor(t, 10*time.Second, "lag gauge", func() bool { return collected(r.rt.metrics.LagBytes) == 1 })
	if v := gauge(t, r.rt.metrics.LagBytes.WithLabelValues(r.c.name)); v < 0 || v > 1<<30 {
		t.Errorf("binlog lag gauge = %v", v)
	}
}

func TestSnapshotModes(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1),(2)")

	// initial_only: snapshot, then Run returns by itself.
	cfg := d.config("t")
	cfg.Snapshot = SnapshotInitialOnly
	hist := &MemoryHistory{}
	r := d.start(cfg, hist, nil)
	if err := r.wait(30 * time.Second); err != nil {
		t.Fatalf("initial_only: %v", err)
	}
	if r.rt.count() != 2 || r.rt.lastCheckpoint() == nil {
		t.Errorf("initial_only: %d records, checkpoint %v", r.rt.count(), r.rt.lastCheckpoint())
	}
	// A second start has nothing to do.
	r2 := d.start(cfg, hist, r.rt.lastCheckpoint())
	if err := r2.wait(30 * time.Second); err != nil || r2.rt.count() != 0 {
		t.Errorf("initial_only again: %v, %d records", err, r2.rt.count())
	}

	// never: no rows, only changes from now on.
	cfg = d.config("t")
	cfg.Snapshot = SnapshotNever
	r3 := d.start(cfg, &MemoryHistory{}, nil)
	waitFor(t, 30*time.Second, "streaming", func() bool { return strings.Contains(r3.rt.logBuf.String(), "streaming the binlog") })
	d.exec("INSERT INTO t VALUES (3)")
	waitFor(t, 30*time.Second, "insert", func() bool { return r3.rt.count() >= 1 })
	if err := r3.stop(); err != nil {
		t.Fatal(err)
	}
	evs := r3.rt.decode(t, r3.rt.recs())
	if len(evs) != 1 || evs[0].Op != "c" || toInt64(evs[0].After["id"]) != 3 {
		t.Errorf("never: events %+v", evs)
	}
}

func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// collected counts the series a collector has.
func collected(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// Tables of one row: each row is its table's last, held back to the end;
// the first of them still opens the snapshot ("first") and the final one
// closes it ("last"), as Debezium's SnapshotMarker resolves them.
func TestSnapshotMarkersOneRowTables(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE a (id INT PRIMARY KEY)", "CREATE TABLE b (id INT PRIMARY KEY)",
		"CREATE TABLE c (id INT PRIMARY KEY)", "CREATE TABLE e (id INT PRIMARY KEY)",
		"INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (1)", "INSERT INTO c VALUES (1)")
	r := d.start(d.config("a", "b", "c", "e"), &MemoryHistory{}, nil)
	waitFor(t, 30*time.Second, "snapshot", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	evs := r.rt.decode(t, r.rt.recs())
	var marks []string
	for _, e := range evs {
		if e.Op == "r" {
			marks = append(marks, fmt.Sprint(e.Source["snapshot"]))
		}
	}
	if got := strings.Join(marks, ","); got != "first,last_in_data_collection,last" {
		t.Errorf("snapshot marks %s, want first,last_in_data_collection,last", got)
	}
}

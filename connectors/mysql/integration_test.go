package mysql

import (
	"fmt"
	"testing"
	"time"
)

func TestSmokeSnapshotThenStream(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO t VALUES (1,'a'),(2,'b')")
	hist := &MemoryHistory{}
	r := d.start(d.config("t"), hist, nil)
	waitFor(t, 30*time.Second, "2 snapshot rows", func() bool { return r.rt.count() >= 2 })
	d.exec("INSERT INTO t VALUES (3,'c')", "UPDATE t SET v='bb' WHERE id=2", "DELETE FROM t WHERE id=1")
	waitFor(t, 30*time.Second, "stream events", func() bool { return r.rt.count() >= 6 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	for _, e := range r.rt.decode(t, r.rt.recs()) {
		fmt.Printf("%s op=%s key=%v before=%v after=%v src=%v\n", e.Topic, e.Op, e.Key, e.Before, e.After, e.Source)
	}
	fmt.Println(r.rt.lastCheckpoint())
}

package integration

import (
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMySQLStopAndCrash: SIGTERM and kill -9 of the real binary in the middle
// of binlog streaming, then a restart across a DDL made while it was down,
// with writes never pausing. Every committed row is in the log; rows written
// before the DDL have the old shape and rows after it the new one; after
// SIGTERM nothing is duplicated; after kill -9 duplicates form one run at the
// at-least-once boundary.
func TestMySQLStopAndCrash(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			base, db, c := mysqlDB(t)
			mustExecDB(t, c, "CREATE TABLE events (id BIGINT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
			prefix := uniq("mycrash")
			cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sources:
  - name: %s
    type: mysql
    url: %s
    tables: [%s.events]
    topic_prefix: %s
`, prefix, mysqlURLOf(base), db, prefix))

			var next atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				wc, err := sql.Open("mysql", base+db)
				if err != nil {
					t.Errorf("writer: %v", err)
					return
				}
				defer wc.Close()
				for {
					select {
					case <-stop:
						return
					default:
					}
					id := next.Load() + 1
					if _, err := wc.Exec("INSERT INTO events (id, v) VALUES (?, ?)", id, fmt.Sprintf("e%d", id)); err != nil {
						t.Errorf("writer: %v", err)
						return
					}
					next.Store(id)
					time.Sleep(time.Millisecond)
				}
			}()

			w := startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			w.stop(t)
			termAt := next.Load()
			w = startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			w.kill(t)
			killAt := next.Load()
			// While the worker is down: a DDL in the middle of the writes.
			time.Sleep(300 * time.Millisecond)
			beforeDDL := next.Load()
			mustExecDB(t, c, "ALTER TABLE events ADD COLUMN extra VARCHAR(10) NOT NULL DEFAULT 'x', MODIFY v VARCHAR(40) NOT NULL")
			afterDDL := next.Load()
			time.Sleep(300 * time.Millisecond)
			w = startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			close(stop)
			wg.Wait()
			total := next.Load()
			if total < 100 || termAt == 0 || killAt <= termAt || total <= afterDDL+10 {
				t.Fatalf("writer too slow to test anything: term at %d, kill at %d, DDL at %d..%d, total %d", termAt, killAt, beforeDDL, afterDDL, total)
			}

			topic := prefix + "." + db + ".events"
			r := newReader(t, le, topic)
			counts := map[int64]int{}
			r.pollUntil(t, 2*time.Minute, func(evs []event) bool {
				clear(counts)
				for _, e := range evs {
					if e.op() != "c" && e.op() != "r" {
						t.Fatalf("unexpected op %q at offset %d", e.op(), e.Offset)
					}
					a := e.after()
					id := num(a["id"])
					if a["v"] != fmt.Sprintf("e%d", id) {
						t.Fatalf("id %d carries v=%v", id, a["v"])
					}
					extra, has := a["extra"]
					switch {
					case id <= beforeDDL && has:
						t.Fatalf("id %d, written before the DDL (at %d), has the new column extra=%v", id, beforeDDL, extra)
					case id > afterDDL && extra != "x":
						t.Fatalf("id %d, written after the DDL (at %d), has extra=%v (present %v), want x", id, afterDDL, extra, has)
					}
					counts[id]++
				}
				for id := int64(1); id <= total; id++ {
					if counts[id] == 0 {
						return false
					}
				}
				return true
			})
			w.stop(t)

			var dups []int64
			for id, n := range counts {
				if n > 1 {
					dups = append(dups, id)
				}
			}
			sort.Slice(dups, func(i, j int) bool { return dups[i] < dups[j] })
			for _, id := range dups {
				if id <= termAt {
					t.Fatalf("id %d duplicated although it was committed before the clean stop at %d (dups %v)", id, termAt, dups)
				}
			}
			for i := 1; i < len(dups); i++ {
				if dups[i] != dups[i-1]+1 {
					t.Fatalf("duplicates are not one run at the crash boundary: %v", dups)
				}
			}
			if extra := len(counts) - int(total); extra != 0 {
				t.Fatalf("%d ids in the log that were never written", extra)
			}
			t.Logf("%d changes; clean stop at %d, kill -9 at %d, DDL at %d..%d; %d duplicates at the crash boundary", total, termAt, killAt, beforeDDL, afterDDL, len(dups))
		})
	}
}

package integration

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// myTables lists the tables of a MariaDB database other than those given.
func myTables(t *testing.T, c *sql.DB, db string, except ...string) []string {
	t.Helper()
	rows, err := c.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		keep := true
		for _, e := range except {
			keep = keep && n != e
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}

// myOffsets is the sink's next offset of topic[0] in the MariaDB copy, and
// how many offsets rows other sink names have there.
func myOffsets(t *testing.T, c *sql.DB, db, sinkName, topic string) (next int64, others int) {
	t.Helper()
	if err := c.QueryRow("SELECT next_offset FROM "+db+".tributary_offsets WHERE sink_name = ? AND topic = ? AND kafka_partition = 0",
		sinkName, topic).Scan(&next); err != nil {
		t.Fatalf("reading %s.tributary_offsets for %s %s: %v", db, sinkName, topic, err)
	}
	if err := c.QueryRow("SELECT COUNT(*) FROM "+db+".tributary_offsets WHERE sink_name <> ?", sinkName).Scan(&others); err != nil {
		t.Fatal(err)
	}
	return next, others
}

// TestReplayMariaDB: PostgreSQL source -> log -> MariaDB copy under a write
// workload; verify passes; a corrupted copy (rows deleted, altered, added)
// fails verify naming the keys; replay with the shadow swap, then in place,
// repairs it; a shadow replay killed with -9 while building leaves the live
// copy as it was and is run again to the end. After every swap the copy's
// offsets are the end of the topic (they moved with the tables), nothing of
// the shadow is left, and the worker resumes from them.
func TestReplayMariaDB(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, rvDDL)
			rvPrefill(t, c, 1, 3000)
			myDSN, myDB, myConn := mysqlSinkDB(t)
			prefix, slot := uniq("rvm"), uniq("slot")
			topic := prefix + ".public.rv_items"
			name := uniq("myc")
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"rv_items"}, fmt.Sprintf(`sinks:
  - name: %s
    type: mysql
    dsn: %s
    topics: [%s]
    table_name_format: %s.$${source.table}
    batch_size: 100
`, name, myDSN, topic, myDB))
			myExec := func(q string) {
				t.Helper()
				mustExecDB(t, myConn, fmt.Sprintf(q, myDB+".rv_items"))
			}
			var end int64 // the end of the topic, read while the worker runs
			afterSwap := func(what string) {
				t.Helper()
				if left := myTables(t, myConn, myDB, "rv_items", "tributary_offsets"); len(left) > 0 {
					t.Errorf("%s: tables left in %s: %v", what, myDB, left)
				}
				next, others := myOffsets(t, myConn, myDB, name, topic)
				if next != end {
					t.Errorf("%s: stored next offset %d, want the end of %s: %d", what, next, topic, end)
				}
				if others != 0 {
					t.Errorf("%s: %d offsets rows of other sink names (the shadow's?)", what, others)
				}
			}

			w := startWorker(t, le, cfg)
			halt := rvWriter(t, src, 3001)
			time.Sleep(3 * time.Second)
			if ops := halt(); ops < 50 {
				t.Fatalf("writer too slow: %d operations", ops)
			}
			mustVerify(t, cfg, name, 90*time.Second)
			// No more writes: the end of the topic is where a replay ends.
			// (The embedded broker lives in the worker, so read it now.)
			end = topicEnd(t, le, topic)
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if next, _ := myOffsets(t, myConn, myDB, name, topic); next == end {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the worker's stored offset never reached the end of %s (%d)", topic, end)
				}
			}
			w.stop(t)
			if !m.embedded {
				if e2 := topicEnd(t, le, topic); e2 != end {
					t.Fatalf("%s grew from %d to %d with no writes", topic, end, e2)
				}
			}

			// Corrupt, detect, repair: shadow swap, then in place.
			corruptAndCheck(t, cfg, name, myExec)
			replayCLI(t, cfg, name)
			mustVerify(t, cfg, name, 0)
			afterSwap("shadow replay")
			corruptAndCheck(t, cfg, name, myExec)
			replayCLI(t, cfg, name, "--in-place")
			mustVerify(t, cfg, name, 0)
			afterSwap("in-place replay")

			// kill -9 while the shadow is being built, then replay again.
			corruptAndCheck(t, cfg, name, myExec)
			p := startProc(t, "replay-killed", tribBin(t), "replay", "-f", cfg, name)
			deadline := time.Now().Add(2 * time.Minute)
			var shadowRows int
			for {
				if time.Now().After(deadline) || p.exited() {
					t.Fatalf("replay never started building the shadow (exited %v):\n%s", p.exited(), p.output())
				}
				err := myConn.QueryRow("SELECT COUNT(*) FROM " + myDB + ".rv_items__replay").Scan(&shadowRows)
				if err == nil && shadowRows > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			p.kill(t)
			t.Logf("replay killed with %d shadow rows built", shadowRows)
			code, out := runCLI(t, time.Minute, "verify", "-f", cfg, name)
			if code == 0 {
				t.Fatalf("verify passed after a killed replay: the live copy should still be the corrupted one:\n%s", out)
			}
			for _, want := range []string{"missing key 7", "extra key 999999"} {
				if !strings.Contains(out, want) {
					t.Errorf("after the killed replay verify lacks %q (the live copy changed?):\n%s", want, out)
				}
			}
			replayCLI(t, cfg, name)
			mustVerify(t, cfg, name, 0)
			afterSwap("shadow replay after a killed one")

			// The worker resumes from the swapped-in offsets and follows
			// the source again.
			w = startWorker(t, le, cfg)
			halt = rvWriter(t, src, 200000)
			time.Sleep(2 * time.Second)
			halt()
			mustVerify(t, cfg, name, 90*time.Second)
			w.stop(t)
		})
	}
}

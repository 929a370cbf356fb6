package integration

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackfillCommand: `tributary backfill` fills a new SQLite copy from
// the log up to its head and exits; run again after more changes, it
// continues from the copy's stored offsets instead of starting over. An
// unknown sink name is a usage error that lists the sinks.
func TestBackfillCommand(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, "CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL)")
			pgExec(t, c, "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 3000) g")
			prefix, slot := uniq("bf"), uniq("bf")
			topic := prefix + ".public.items"
			sinkName := uniq("bfcopy")
			copyPath := filepath.Join(t.TempDir(), "copy.db")
			srcOnly := pgPipeline(t, le, db, prefix, slot, []string{"items"}, "")
			withSink := pgPipeline(t, le, db, prefix, slot, []string{"items"}, sqliteSinkYAML(sinkName, copyPath, topic, 500))

			// The source fills the log; then the worker stops, as it must
			// before a backfill of the same log folder in embedded mode.
			r := newReader(t, le, topic)
			w := startWorker(t, le, srcOnly)
			r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 3000 })
			pgExec(t, c, "UPDATE items SET v = v || '!' WHERE id <= 200")
			r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 3200 })
			w.stop(t)

			count := func() int64 {
				cdb, err := sql.Open("sqlite", "file:"+copyPath+"?_pragma=busy_timeout(5000)")
				if err != nil {
					t.Fatal(err)
				}
				defer cdb.Close()
				var n, changed int64
				if err := cdb.QueryRow("SELECT count(*), sum(v LIKE '%!') FROM public_items").Scan(&n, &changed); err != nil {
					t.Fatal(err)
				}
				if changed != 200 {
					t.Fatalf("copy has %d updated rows, want 200", changed)
				}
				return n
			}
			out, code := runTrib(t, "backfill", "-f", withSink, sinkName)
			if code != 0 || !strings.Contains(out, "backfilled up to the head") || !strings.Contains(out, "caught up: 3200 records") {
				t.Fatalf("backfill exit %d:\n%s", code, out)
			}
			if n := count(); n != 3000 {
				t.Fatalf("copy has %d rows after the backfill, want 3000", n)
			}

			// Remove a row from the copy behind tributary's back: a backfill
			// that resumes from the stored offsets leaves it missing, one
			// that started over would bring it back.
			if cdb, err := sql.Open("sqlite", "file:"+copyPath+"?_pragma=busy_timeout(5000)"); err != nil {
				t.Fatal(err)
			} else {
				if _, err := cdb.Exec("DELETE FROM public_items WHERE id = 3000"); err != nil {
					t.Fatal(err)
				}
				cdb.Close()
			}

			// More changes; the second backfill starts where the first ended.
			w = startWorker(t, le, srcOnly)
			pgExec(t, c, "INSERT INTO items SELECT g, 'v' || g FROM generate_series(3001, 3500) g")
			r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 3700 })
			w.stop(t)
			out, code = runTrib(t, "backfill", "-f", withSink, sinkName)
			if code != 0 || !strings.Contains(out, "caught up: 3700 records") {
				t.Fatalf("second backfill exit %d:\n%s", code, out)
			}
			if n := count(); n != 3499 {
				t.Fatalf("copy has %d rows after the second backfill, want 3499 (3500 minus the row deleted from the copy, which a resumed backfill does not bring back)", n)
			}
			off, code := runTrib(t, "offsets", "-f", withSink, sinkName)
			if le.mode.embedded {
				// offsets reads the log through a running worker's broker.
				if code != 1 || !strings.Contains(off, "running `tributary run`") {
					t.Fatalf("offsets without a worker in embedded mode: exit %d:\n%s", code, off)
				}
			} else if code != 0 || !strings.Contains(off, "total lag: 0 records") {
				t.Fatalf("offsets after backfill: exit %d:\n%s", code, off)
			}

			out, code = runTrib(t, "backfill", "-f", withSink, "nosuch")
			if code != 2 || !strings.Contains(out, `no sink named "nosuch"`) || !strings.Contains(out, sinkName) {
				t.Fatalf("backfill of an unknown sink: exit %d:\n%s", code, out)
			}
		})
	}
}

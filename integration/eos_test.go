package integration

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPGExactlyOnce: with worker.exactly_once on Apache Kafka, kill -9 and
// SIGTERM in the middle of streaming, each followed by a restart, leave
// every change in the log exactly once for a read_committed consumer, and a
// SQLite copy fed from it converges. (The embedded log refuses
// exactly_once; config tests cover that.)
func TestPGExactlyOnce(t *testing.T) {
	for _, m := range []mode{{"kafka", false}} {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			le.yaml = replaceOnce(t, le.yaml, "worker:\n", "worker:\n  exactly_once: true\n  transaction_interval: 50ms\n")
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, "CREATE TABLE events (id bigint PRIMARY KEY, v text NOT NULL)")
			prefix, slot := uniq("eos"), uniq("eos")
			topic := prefix + ".public.events"
			copyPath := filepath.Join(t.TempDir(), "copy.db")
			cfg := pgPipeline(t, le, db, prefix, slot, []string{"events"}, sqliteSinkYAML(uniq("eoscopy"), copyPath, topic, 200))

			var next atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				wc, err := pgx.Connect(context.Background(), db)
				if err != nil {
					t.Errorf("writer: %v", err)
					return
				}
				defer wc.Close(context.Background())
				for {
					select {
					case <-stop:
						return
					default:
					}
					id := next.Load() + 1
					// Two-row transactions, so a cut inside a source
					// transaction would show.
					if _, err := wc.Exec(context.Background(), "INSERT INTO events VALUES ($1, $2), ($1 + 1000000000, $2)", id, fmt.Sprintf("e%d", id)); err != nil {
						t.Errorf("writer: %v", err)
						return
					}
					next.Store(id)
					time.Sleep(time.Millisecond)
				}
			})

			w := startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			w.kill(t)
			killAt := next.Load()
			w = startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			w.kill(t)
			w = startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			w.stop(t)
			termAt := next.Load()
			w = startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			close(stop)
			wg.Wait()
			total := next.Load()
			if killAt == 0 || termAt <= killAt || total < 200 {
				t.Fatalf("writer too slow to test anything: kill at %d, term at %d, total %d", killAt, termAt, total)
			}

			counts, dups, r := readCommittedIDs(t, le, topic, total)
			if len(dups) > 0 || int64(len(counts)) != 2*total {
				var where []string
				for _, e := range r.evs {
					if id := num(e.after()["id"]); e.Value != nil && counts[id] > 1 {
						where = append(where, fmt.Sprintf("%d@%d", id, e.Offset))
					}
				}
				t.Fatalf("read_committed consumer saw %d distinct ids (want %d) and %d duplicated ids (kill at %d, SIGTERM at %d): %v", len(counts), 2*total, len(dups), killAt, termAt, where[:min(len(where), 40)])
			}

			cdb, err := sql.Open("sqlite", "file:"+copyPath+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer cdb.Close()
			var n int64
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
				if err := cdb.QueryRow("SELECT count(*) FROM public_events").Scan(&n); err == nil && n == 2*total {
					break
				}
			}
			if n != 2*total {
				t.Fatalf("SQLite copy has %d rows, source has %d", n, 2*total)
			}
			w.stop(t)
		})
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q occurs %d times in:\n%s", old, strings.Count(s, old), s)
	}
	return strings.Replace(s, old, new, 1)
}

// readCommittedIDs reads topic as a read_committed consumer until every id
// the writers inserted (1..total and their 1e9+ twins) is there, and returns
// how many times each id was seen, the ids seen more than once, and the
// reader (its events locate the duplicates).
func readCommittedIDs(t *testing.T, le *logEnv, topic string, total int64) (counts map[int64]int, dups []int64, r *reader) {
	t.Helper()
	r = newReaderOpts(t, le, []kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted())}, topic)
	counts = map[int64]int{}
	r.pollUntil(t, 2*time.Minute, func(evs []event) bool {
		clear(counts)
		for _, e := range evs {
			if e.op() == "c" || e.op() == "r" {
				counts[num(e.after()["id"])]++
			}
		}
		for id := int64(1); id <= total; id++ {
			if counts[id] == 0 || counts[id+1000000000] == 0 {
				return false
			}
		}
		return true
	})
	for id, n := range counts {
		if n > 1 {
			dups = append(dups, id)
		}
	}
	return counts, dups, r
}

package integration

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPGStopAndCrash: SIGTERM and kill -9 in the middle of streaming, each
// followed by a restart. No committed change is missing from the log; after
// SIGTERM nothing is duplicated; after kill -9 duplicates form one run at the
// at-least-once boundary.
func TestPGStopAndCrash(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, "CREATE TABLE events (id bigint PRIMARY KEY, v text NOT NULL)")
			prefix := uniq("crash")
			slot := uniq("slot")
			cfg := pgPipeline(t, le, db, prefix, slot, []string{"events"}, "")

			var next atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
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
					if _, err := wc.Exec(context.Background(), "INSERT INTO events VALUES ($1, $2)", id, fmt.Sprintf("e%d", id)); err != nil {
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
			w = startWorker(t, le, cfg)
			time.Sleep(2 * time.Second)
			close(stop)
			wg.Wait()
			total := next.Load()
			if total < 100 || termAt == 0 || killAt <= termAt {
				t.Fatalf("writer too slow to test anything: term at %d, kill at %d, total %d", termAt, killAt, total)
			}

			topic := prefix + ".public.events"
			r := newReader(t, le, topic)
			counts := map[int64]int{}
			r.pollUntil(t, 2*time.Minute, func(evs []event) bool {
				clear(counts)
				for _, e := range evs {
					if e.op() == "c" || e.op() == "r" {
						a := e.after()
						id := num(a["id"])
						if a["v"] != fmt.Sprintf("e%d", id) {
							t.Fatalf("id %d carries v=%v", id, a["v"])
						}
						counts[id]++
					}
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
			t.Logf("%d changes; clean stop at %d, kill -9 at %d; %d duplicates at the crash boundary", total, termAt, killAt, len(dups))
		})
	}
}

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pgSinkYAML is a `sinks:` section copying topic into a PostgreSQL database.
func pgSinkYAML(name, url, topic string, batch int) string {
	return fmt.Sprintf("sinks:\n  - name: %s\n    type: postgres\n    url: %s\n    topics: [%s]\n    batch_size: %d\n    flush_interval: 20ms\n",
		name, url, topic, batch)
}

// topicEnd is the end offset of partition 0 of topic.
func topicEnd(t *testing.T, le *logEnv, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s[0]: %v", topic, o.Err)
	}
	return o.Offset
}

// storedNext is the next_offset the PostgreSQL copy stored for topic[0].
func storedNext(t *testing.T, url, sinkName, topic string) int64 {
	t.Helper()
	c := pgConn(t, url)
	var next int64
	if err := c.QueryRow(context.Background(), "SELECT next_offset FROM tributary_offsets WHERE sink_name = $1 AND topic = $2 AND kafka_partition = 0",
		sinkName, topic).Scan(&next); err != nil {
		t.Fatalf("reading tributary_offsets for %s %s: %v", sinkName, topic, err)
	}
	return next
}

// TestSinkCrashWhileApplying: the worker is killed with SIGKILL (twice) while
// the PostgreSQL sink applies a large backlog in small batches. After a
// restart the copy equals the source, the stored offset is the end of the
// topic, and a trigger in the copy that logged every row application shows
// that no event was applied twice: each update carries a unique note, so a
// batch applied again after its commit would log an (id, note) pair twice.
//
// Counting applications per key against the number of events is only an
// upper bound, because the sink folds several changes of one key within a
// batch into one statement (the last one wins); the unique notes are what
// make a double application visible.
func TestSinkCrashWhileApplying(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, sinkItemsDDL)
			prefill(t, c, 1)
			copyURL := pgDB(t)
			prefix, slot, sinkName := uniq("crashapply"), uniq("slot"), uniq("copy")
			topic := prefix + ".public.items"
			// The source and the sink run in separate workers, so that only
			// the sink is killed: a killed source may write events to the
			// log again (at least once), which would blur what the sink did.
			srcCfg := pgPipeline(t, le, src, prefix, slot, []string{"items"}, "")
			sinkCfg := writeFile(t, t.TempDir(), "sink.yaml", le.yaml+pgSinkYAML(sinkName, copyURL, topic, 50))
			produce := func(wantEnd int64) {
				t.Helper()
				w := startWorker(t, le, srcCfg)
				deadline := time.Now().Add(2 * time.Minute)
				for topicEndMaybe(le, topic) < wantEnd {
					if time.Now().After(deadline) {
						t.Fatalf("topic %s did not reach offset %d within 2 minutes (at %d)", topic, wantEnd, topicEndMaybe(le, topic))
					}
					if w.exited() {
						t.Fatalf("source worker exited: %v\n%s", w.err, tail([]byte(w.output()), 4096))
					}
					time.Sleep(100 * time.Millisecond)
				}
				w.stop(t)
			}
			produce(1)

			// First run of the sink: it creates the copy table, then stops cleanly.
			w := startWorker(t, le, sinkCfg)
			cc := pgConn(t, copyURL)
			waitPGCopy(t, c, cc, time.Minute, w)
			w.stop(t)
			n0 := storedNext(t, copyURL, sinkName, topic)

			// Every row application in the copy from now on is logged.
			pgExec(t, cc, "CREATE TABLE applied (seq bigserial PRIMARY KEY, id bigint NOT NULL, note text, xid bigint NOT NULL DEFAULT txid_current())")
			pgExec(t, cc, `CREATE FUNCTION log_apply() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN INSERT INTO applied (id, note) VALUES (NEW.id, NEW.note); RETURN NULL; END $$`)
			pgExec(t, cc, "CREATE TRIGGER log_apply AFTER INSERT OR UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION log_apply()")

			// A backlog: 20000 inserts, 3 rounds of updates with a unique
			// note per version, and deletes (each a delete and a tombstone).
			const n = 20000
			pgExec(t, c, `INSERT INTO items SELECT g, 'item'||g, g % 17, (g * 1.25)::numeric(10,2), 'ins'||g FROM generate_series(2, $1::int) g`, n)
			want := int64(n - 1)
			for round := 1; round <= 3; round++ {
				pgExec(t, c, fmt.Sprintf("UPDATE items SET qty = qty + 1, note = 'r%d-'||id WHERE id %% %d = 0", round, round+1))
				want += int64(n / (round + 1))
			}
			pgExec(t, c, "DELETE FROM items WHERE id % 7 = 0")
			want += 2 * int64(n/7)
			produce(n0 + want)

			kills := 0
			for kills < 2 {
				w = startWorker(t, le, sinkCfg)
				// Kill once this run has applied some batches but not all.
				before := appliedCount(t, cc)
				deadline := time.Now().Add(2 * time.Minute)
				for {
					if time.Now().After(deadline) {
						t.Fatalf("the sink applied nothing within 2 minutes (kill %d)", kills+1)
					}
					if w.exited() {
						t.Fatalf("worker exited: %v\n%s", w.err, tail([]byte(w.output()), 4096))
					}
					if appliedCount(t, cc) > before+500 {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				w.kill(t)
				kills++
				if same(t, c, cc) {
					t.Logf("kill %d came after the copy had caught up", kills)
				}
			}
			w = startWorker(t, le, sinkCfg)
			waitPGCopy(t, c, cc, 3*time.Minute, w)
			// The offsets are committed with the rows, so once the copy
			// equals the source its offset is the end of the topic.
			var next, end int64
			deadline := time.Now().Add(30 * time.Second)
			for {
				next, end = storedNext(t, copyURL, sinkName, topic), topicEnd(t, le, topic)
				if next == end || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if next != end {
				t.Fatalf("tributary_offsets next_offset %d, topic end offset %d", next, end)
			}

			// What the log says was to be applied from n0 to next.
			evs := newReader(t, le, topic).pollUntil(t, 2*time.Minute, func(evs []event) bool {
				return len(evs) > 0 && evs[len(evs)-1].Offset >= next-1
			})
			events := map[string]int64{} // "id|note" -> offset
			perKey := map[int64]int{}
			for _, e := range evs {
				if e.Offset < n0 || e.Offset >= next {
					continue
				}
				switch e.op() {
				case "c", "u", "r":
					a := e.after()
					id := num(a["id"])
					pair := fmt.Sprintf("%d|%v", id, a["note"])
					if prev, dup := events[pair]; dup {
						t.Fatalf("the workload wrote %s twice (offsets %d and %d): notes must be unique", pair, prev, e.Offset)
					}
					events[pair] = e.Offset
					perKey[id]++
				}
			}
			w.stop(t)
			rows, err := cc.Query(context.Background(), "SELECT id, coalesce(note, '<nil>'), count(*), count(DISTINCT xid) FROM applied GROUP BY id, note")
			if err != nil {
				t.Fatal(err)
			}
			applied := map[int64]int{}
			total := 0
			for rows.Next() {
				var id int64
				var note string
				var cnt, xids int
				if err := rows.Scan(&id, &note, &cnt, &xids); err != nil {
					t.Fatal(err)
				}
				pair := fmt.Sprintf("%d|%s", id, note)
				if cnt > 1 {
					t.Errorf("%s was applied %d times (in %d transactions): a committed batch was applied again", pair, cnt, xids)
				}
				if _, ok := events[pair]; !ok {
					t.Errorf("the copy applied %s, which is not an event between offsets %d and %d", pair, n0, next)
				}
				applied[id] += cnt
				total += cnt
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			for id, k := range applied {
				if k > perKey[id] {
					t.Errorf("key %d applied %d times, but the log has only %d c/u/r events for it up to offset %d", id, k, perKey[id], next)
				}
			}
			if total < n-1 {
				t.Fatalf("only %d row applications logged for a backlog of %d+ inserts", total, n)
			}
			t.Logf("killed %d times while applying; %d events in [%d, %d), %d row applications, none twice; next_offset = end = %d",
				kills, len(events), n0, next, total, end)
		})
	}
}

func appliedCount(t *testing.T, cc *pgx.Conn) int {
	t.Helper()
	var n int
	if err := cc.QueryRow(context.Background(), "SELECT count(*) FROM applied").Scan(&n); err != nil {
		t.Fatalf("counting applications: %v", err)
	}
	return n
}

// pgCopyItems reads the copy's items like pgItems; an error means it is not
// readable yet.
func pgCopyItems(cc *pgx.Conn) (map[int64]string, error) {
	rows, err := cc.Query(context.Background(), "SELECT id, name, qty::text, price::text, coalesce(note, '<null>') FROM public.items")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	st := map[int64]string{}
	for rows.Next() {
		var id int64
		var name, qty, price, note string
		if err := rows.Scan(&id, &name, &qty, &price, &note); err != nil {
			return nil, err
		}
		st[id] = strings.Join([]string{name, qty, price, note}, "|")
	}
	return st, rows.Err()
}

// same reports whether the copy equals the source now.
func same(t *testing.T, c, cc *pgx.Conn) bool {
	got, err := pgCopyItems(cc)
	return err == nil && sameState(pgItems(t, c), got)
}

// waitPGCopy polls the PostgreSQL copy until it equals the source.
func waitPGCopy(t *testing.T, c, cc *pgx.Conn, within time.Duration, w *proc) {
	t.Helper()
	waitCopy(t, "PostgreSQL", pgItems(t, c), func() (map[int64]string, error) { return pgCopyItems(cc) }, within, w)
}

// topicEndMaybe is the end offset of topic[0], or -1 while it does not exist
// or the log is not reachable.
func topicEndMaybe(le *logEnv, topic string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers))
	if err != nil {
		return -1
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		return -1
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return -1
	}
	return o.Offset
}

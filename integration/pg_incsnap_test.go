package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Incremental, resumable snapshots (issue 10) through the binary.

const isDDL = `CREATE TABLE %s (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL,
	price numeric(10,2), note text, at timestamptz)`

func isFill(t *testing.T, c *pgx.Conn, table string, n int) {
	t.Helper()
	pgExec(t, c, fmt.Sprintf(`INSERT INTO %s SELECT g, 'row'||g, g %% 97, (g * 1.25)::numeric(10,2),
		CASE WHEN g %% 5 = 0 THEN NULL ELSE repeat('n', g %% 300) END, timestamptz '2024-01-01' + g * interval '1 second'
		FROM generate_series(1, %d) g`, table, n))
}

// isWorkload inserts, updates, deletes and moves primary keys of the given
// tables (filled with ids up to maxID[table]; new ids from 10M up) until
// halted; it returns the number of deletes and key moves done.
func isWorkload(t *testing.T, dbURL string, maxID map[string]int64, deleteShare int) func() (int64, int64) {
	var tables []string
	for tbl := range maxID {
		tables = append(tables, tbl)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var deletes, moves atomic.Int64
	var next atomic.Int64
	const newIDs = 10_000_000
	next.Store(newIDs)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			c, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Errorf("workload: %v", err)
				return
			}
			defer c.Close(ctx)
			for {
				select {
				case <-stop:
					return
				default:
				}
				tbl := tables[rand.IntN(len(tables))]
				id := 1 + rand.Int64N(maxID[tbl])
				if n := next.Load() - newIDs; n > 0 && rand.IntN(4) == 0 {
					id = newIDs + 1 + rand.Int64N(n) // a row the workload inserted
				}
				var q string
				var args []any
				switch r := rand.IntN(100); {
				case r < deleteShare:
					q, args = "DELETE FROM "+tbl+" WHERE id = $1", []any{id}
					deletes.Add(1)
				case r < deleteShare+10:
					// Move the key: a delete of the old key and a create of the new.
					q, args = "UPDATE "+tbl+" SET id = $2 WHERE id = $1", []any{id, next.Add(1)}
					moves.Add(1)
				case r < deleteShare+30:
					q, args = "INSERT INTO "+tbl+" VALUES ($1, 'new', 1, 2.50, 'ins', now()) ON CONFLICT DO NOTHING", []any{next.Add(1)}
				default:
					q, args = "UPDATE "+tbl+" SET qty = qty + 1, note = $2, price = price + 0.01 WHERE id = $1", []any{id, fmt.Sprintf("u%d", rand.IntN(1000))}
				}
				if _, err := c.Exec(ctx, q, args...); err != nil {
					t.Errorf("workload: %s: %v", q, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var once sync.Once
	halt := func() (int64, int64) {
		once.Do(func() { close(stop); wg.Wait() })
		return deletes.Load(), moves.Load()
	}
	// Stopped before the database is dropped when a test fails early.
	t.Cleanup(func() { halt() })
	return halt
}

// offWatch follows a connector's records in the offsets topic.
type offWatch struct {
	cl   *kgo.Client
	key  []byte
	last map[string]any
}

func newOffWatch(t *testing.T, le *logEnv, connector string) *offWatch {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers), kgo.ConsumeTopics("tributary-offsets"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &offWatch{cl: cl, key: []byte(`["` + connector + `",`)}
}

func (w *offWatch) poll(t *testing.T, seen func(*kgo.Record)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	fs := w.cl.PollFetches(ctx)
	cancel()
	fs.EachRecord(func(r *kgo.Record) {
		if seen != nil {
			seen(r)
		}
		if !bytes.HasPrefix(r.Key, w.key) || r.Value == nil {
			return
		}
		d := json.NewDecoder(bytes.NewReader(r.Value))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("offset record %s: %v", r.Value, err)
		}
		w.last = m
	})
}

// waitFor reads offset records until pred holds for the latest one.
func (w *offWatch) waitFor(t *testing.T, within time.Duration, what string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if w.last != nil && pred(w.last) {
			return w.last
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets: %s not seen within %v; latest %v", what, within, w.last)
		}
		w.poll(t, nil)
	}
}

// snapAfter is the key after which the offset's first pending snapshot
// resumes: 0 before its first chunk, -1 when no snapshot is pending.
func snapAfter(off map[string]any) int64 {
	snaps, _ := off["tributary_snapshot"].([]any)
	if len(snaps) == 0 {
		return -1
	}
	task, _ := snaps[0].(map[string]any)
	after, _ := task["after"].([]any)
	if len(after) == 0 {
		return 0
	}
	s, _ := after[0].(string)
	k, _ := strconv.ParseInt(s, 10, 64)
	return k
}

// checkProgress: /status and /metrics show the running snapshot of
// public.b (200k rows) with rows read, the estimate and an ETA.
func checkProgress(t *testing.T, le *logEnv, connector string) {
	t.Helper()
	get := func(path string) []byte {
		resp, err := http.Get("http://" + le.httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var st struct {
		Snapshots map[string][]struct {
			Table    string `json:"table"`
			Kind     string `json:"kind"`
			Rows     int64  `json:"rows"`
			Estimate int64  `json:"estimate"`
			ETA      string `json:"eta"`
			Done     bool   `json:"done"`
		} `json:"snapshots"`
	}
	body := get("/status")
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/status: %v: %s", err, body)
	}
	found := false
	for _, p := range st.Snapshots[connector] {
		if p.Table == "public.b" {
			found = true
			if p.Kind != "added" || p.Rows <= 0 || p.Estimate < 190_000 || p.ETA == "" || p.Done {
				t.Errorf("/status progress of public.b: %+v", p)
			}
		}
	}
	if !found {
		t.Errorf("/status has no snapshot progress of public.b: %s", body)
	}
	metrics := string(get("/metrics"))
	for _, m := range []string{`tributary_snapshot_rows{connector="` + connector + `",table="public.b"}`,
		`tributary_snapshot_rows_estimate{connector="` + connector + `",table="public.b"}`,
		`tributary_snapshot_running{connector="` + connector + `"} 1`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// startedAfter waits for the worker to start its incremental snapshot and
// returns the key it resumed after (0: the first row).
func startedAfter(t *testing.T, w *proc) int64 {
	t.Helper()
	waitLog(t, w, "incremental snapshot of table started", 60*time.Second)
	ks := resumedKeys(w.output())
	if len(ks) != 1 {
		t.Fatalf("want one incremental snapshot start, got %v", ks)
	}
	return ks[0]
}

// snapDone reports an offset whose captured tables include table and
// whose snapshots are all done.
func snapDone(off map[string]any, table string) bool {
	tables, _ := off["tributary_tables"].([]any)
	for _, x := range tables {
		if x == table {
			return snapAfter(off) < 0
		}
	}
	return false
}

// slowCompaction keeps the embedded log from compacting during a test that
// restarts the worker (and its sinks) many times: a sink skips tombstones,
// so when compaction removes a delete event before a lagging sink reads it
// (only its tombstone left), the copy keeps the row. That is a sink issue
// of its own (reported), not what these tests measure.
func slowCompaction(le *logEnv) {
	le.yaml = strings.Replace(le.yaml, "compaction_interval: 10s", "compaction_interval: 10m", 1)
}

// waitLog waits until the process output contains s.
func waitLog(t *testing.T, p *proc, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.output(), s) {
		if p.exited() {
			t.Fatalf("%s exited while waiting for %q: %v\n%s", p.name, s, p.err, tail([]byte(p.output()), 4096))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged within %v:\n%s", s, within, tail([]byte(p.output()), 4096))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// compareTables checks that the copy holds exactly the source's rows; it
// returns the ids of a few rows that differ.
func compareTables(t *testing.T, src, dst *pgx.Conn, table string) []int64 {
	t.Helper()
	q := "SELECT id, name, qty, price::text, coalesce(note, '<null>'), at FROM " + table + " ORDER BY id"
	read := func(c *pgx.Conn) map[int64]string {
		rows, err := c.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		m := map[int64]string{}
		for rows.Next() {
			var id int64
			var name, price, note string
			var qty int
			var at time.Time
			if err := rows.Scan(&id, &name, &qty, &price, &note, &at); err != nil {
				t.Fatal(err)
			}
			m[id] = fmt.Sprintf("%s|%d|%s|%s|%d", name, qty, price, note, at.UnixMicro())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	want, got := read(src), read(dst)
	missing, extra, diff := 0, 0, 0
	var bad []int64
	for id, r := range want {
		g, ok := got[id]
		switch {
		case !ok:
			missing++
			if missing <= 3 {
				t.Errorf("%s id %d: missing in the copy", table, id)
				bad = append(bad, id)
			}
		case g != r:
			diff++
			if diff <= 3 {
				t.Errorf("%s id %d: copy %q, source %q", table, id, g, r)
				bad = append(bad, id)
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra++
			if extra <= 3 {
				t.Errorf("%s id %d: in the copy, deleted at the source", table, id)
				bad = append(bad, id)
			}
		}
	}
	if missing+extra+diff > 0 {
		t.Errorf("%s: copy differs from source: %d missing, %d extra, %d different (source %d rows)", table, missing, extra, diff, len(want))
	}
	return bad
}

// keyHistory logs every event of key id in topic (partition 0), to tell a
// wrong log from a wrong copy when a comparison fails.
func keyHistory(t *testing.T, le *logEnv, topic string, ids ...int64) {
	t.Helper()
	end := topicEnd(t, le, topic)
	r := newReader(t, le, topic)
	evs := r.pollUntil(t, 60*time.Second, func(evs []event) bool { return len(evs) > 0 && evs[len(evs)-1].Offset >= end-1 })
	for _, e := range evs {
		k, _ := e.Key["id"].(int64)
		for _, id := range ids {
			if k != id {
				continue
			}
			src, _ := e.Value["source"].(map[string]any)
			t.Logf("%s id %d @%d: op=%q snapshot=%v lsn=%v txId=%v after=%v", topic, id, e.Offset, e.op(), src["snapshot"], src["lsn"], src["txId"], e.after())
		}
	}
}

// isWaitCopy polls until the copy equals the source (the sink catches up).
func isWaitCopy(t *testing.T, le *logEnv, topic string, src, dst *pgx.Conn, table string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if copyEqual(src, dst, table) {
			if bad := compareTables(t, src, dst, table); len(bad) > 0 {
				keyHistory(t, le, topic, bad...)
				t.FailNow()
			}
			return
		}
		if time.Now().After(deadline) {
			if bad := compareTables(t, src, dst, table); len(bad) > 0 {
				keyHistory(t, le, topic, bad...)
			}
			t.Fatalf("%s: copy did not converge within %v", table, within)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// copyEqual compares row digests of a table in two databases.
func copyEqual(src, dst *pgx.Conn, table string) bool {
	q := "SELECT count(*), coalesce(sum(hashtext(id::text||name||qty::text||coalesce(price::text,'')||coalesce(note,'')||coalesce(extract(epoch from at)::text,''))::bigint), 0) FROM " + table
	var n1, h1, n2, h2 int64
	if err := src.QueryRow(context.Background(), q).Scan(&n1, &h1); err != nil {
		return false
	}
	if err := dst.QueryRow(context.Background(), q).Scan(&n2, &h2); err != nil {
		return false
	}
	return n1 == n2 && h1 == h2
}

var resumedRe = regexp.MustCompile(`incremental snapshot of table started.*?resumed_after_key=\[?([0-9]*)\]?`)

// resumedKeys lists the key each start of the table's incremental snapshot
// resumed after (0: from the first row).
func resumedKeys(out string) []int64 {
	var keys []int64
	for _, m := range resumedRe.FindAllStringSubmatch(out, -1) {
		k, _ := strconv.ParseInt(m[1], 10, 64)
		keys = append(keys, k)
	}
	return keys
}

// TestPGInitialSnapshotKilled: kill -9 during the initial snapshot of a
// 200k-row table (first in its exported-snapshot phase, then several times
// while the rest is read incrementally) under a workload that deletes,
// updates, inserts and moves keys. Every restart resumes after the last
// completed chunk (the key never goes back, the exported snapshot's chunks
// are not read again), and the copy ends equal to the source: no row deleted
// at the source survives.
func TestPGInitialSnapshotKilled(t *testing.T) {
	const rows = 200_000
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			slowCompaction(le)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, fmt.Sprintf(isDDL, "big"))
			isFill(t, c, "big", rows)
			pgExec(t, c, "ANALYZE big")
			copyURL := pgDB(t)
			cc := pgConn(t, copyURL)
			prefix, slot := uniq("is"), uniq("slot")
			topic := prefix + ".public.big"
			sinkName := uniq("pgc")
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"big"},
				"    snapshot_chunk_rows: 500\n    snapshot_parallelism: 1\n"+pgSinkYAML(sinkName, copyURL, topic, 500))

			halt := isWorkload(t, src, map[string]int64{"big": rows}, 40)
			ow := newOffWatch(t, le, slot)
			var outs []string
			// Kill 1: in the exported-snapshot phase, once a chunk is
			// recorded in the offsets.
			w := startWorker(t, le, cfg)
			ow.waitFor(t, 60*time.Second, "a completed chunk", func(o map[string]any) bool { return snapAfter(o) > 0 })
			if strings.Contains(w.output(), "snapshot completed") {
				t.Fatalf("the initial snapshot of %d rows completed before the kill; nothing tested", rows)
			}
			w.kill(t)
			outs = append(outs, w.output())
			// The other kills: while the rest is read incrementally.
			const kills = 7
			for i := 1; i < kills; i++ {
				// Killed once the run recorded a chunk of its own.
				w = startWorker(t, le, cfg)
				prev := startedAfter(t, w)
				// A client of its own per run: the embedded broker restarted.
				ow = newOffWatch(t, le, slot)
				ow.waitFor(t, 60*time.Second, "a chunk after the restart", func(o map[string]any) bool { return snapAfter(o) > prev || snapDone(o, "public.big") })
				if snapDone(ow.last, "public.big") {
					t.Fatalf("restart %d: the snapshot completed before the kill; nothing tested", i)
				}
				time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
				if strings.Contains(w.output(), "incremental snapshots complete") {
					t.Fatalf("restart %d: the incremental snapshot completed before the kill; nothing tested", i)
				}
				w.kill(t)
				outs = append(outs, w.output())
			}
			w = startWorker(t, le, cfg)
			waitLog(t, w, "incremental snapshots complete", 90*time.Second)
			time.Sleep(time.Second)
			deletes, moves := halt()
			outs = append(outs, w.output())
			if deletes < 100 || moves < 20 {
				t.Fatalf("workload too slow: %d deletes, %d key moves", deletes, moves)
			}

			// Each restart said the snapshot was interrupted and resumed
			// after a key no lower than the one before: completed chunks
			// are not read again.
			var keys []int64
			for i, out := range outs[1:] {
				if i == 0 && !strings.Contains(out, "the initial snapshot was interrupted") {
					t.Errorf("restart %d did not resume the interrupted snapshot:\n%s", i+1, tail([]byte(out), 3000))
				}
				if !strings.Contains(out, "table=public.big kind=initial") {
					t.Errorf("restart %d did not go on with the initial snapshot's chunks:\n%s", i+1, tail([]byte(out), 3000))
				}
				if strings.Contains(out, "dropping replication slot") || strings.Contains(out, "snapshot started") {
					t.Errorf("restart %d dropped the slot or started the snapshot over:\n%s", i+1, tail([]byte(out), 3000))
				}
				ks := resumedKeys(out)
				if len(ks) != 1 {
					t.Fatalf("restart %d: want one incremental start of table public.big, got %v:\n%s", i+1, ks, tail([]byte(out), 3000))
				}
				keys = append(keys, ks[0])
			}
			t.Logf("resumed after keys %v (%d deletes, %d key moves)", keys, deletes, moves)
			if keys[0] == 0 {
				t.Errorf("the first restart read the table from its first row: the exported snapshot's chunks were not kept")
			}
			// Each run was killed after recording a chunk of its own, so the
			// next one resumes strictly further.
			for i := 1; i < len(keys); i++ {
				if keys[i] <= keys[i-1] {
					t.Errorf("restart %d resumed after key %d, not after the earlier %d: chunks read again", i+1, keys[i], keys[i-1])
				}
			}
			isWaitCopy(t, le, topic, c, cc, "big", 90*time.Second)
			mustVerify(t, cfg, sinkName, 30*time.Second)
			w.stop(t)
		})
	}
}

// TestPGAddTableIncremental: a table of 200k rows added to `tables` of a
// running pipeline is snapshotted incrementally while streaming goes on and
// a workload writes to it (inserts, updates, deletes, key moves) and to the
// table captured before; the worker is killed 10 times during the snapshot
// and resumes each time after the last completed chunk; both copies end
// equal to their sources.
func TestPGAddTableIncremental(t *testing.T) {
	const rows = 200_000
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			slowCompaction(le)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, fmt.Sprintf(isDDL, "a"))
			pgExec(t, c, fmt.Sprintf(isDDL, "b"))
			isFill(t, c, "a", 1000)
			isFill(t, c, "b", rows)
			pgExec(t, c, "ANALYZE b")
			copyURL := pgDB(t)
			cc := pgConn(t, copyURL)
			prefix, slot := uniq("ia"), uniq("slot")
			sinkName := uniq("pgc")
			sinks := fmt.Sprintf("sinks:\n  - name: %s\n    type: postgres\n    url: %s\n    topics_regex: %s\n    batch_size: 500\n    flush_interval: 20ms\n",
				sinkName, copyURL, strings.ReplaceAll(prefix, ".", `\.`)+`\..*`)
			extra := "    snapshot_chunk_rows: 300\n" + sinks
			cfgA := pgPipeline(t, le, src, prefix, slot, []string{"a"}, extra)
			cfgAB := pgPipeline(t, le, src, prefix, slot, []string{"a", "b"}, extra)

			w := startWorker(t, le, cfgA)
			halt := isWorkload(t, src, map[string]int64{"a": 1000, "b": rows}, 20)
			waitLog(t, w, "snapshot completed", 60*time.Second)
			time.Sleep(2 * time.Second) // streaming a and the workload
			w.stop(t)

			var outs []string
			const kills = 10
			var ow *offWatch
			for i := 0; i < kills; i++ {
				// Killed once the run recorded a chunk of its own.
				w = startWorker(t, le, cfgAB)
				prev := startedAfter(t, w)
				// A client of its own per run: the embedded broker restarted.
				ow = newOffWatch(t, le, slot)
				ow.waitFor(t, 60*time.Second, "a chunk of b", func(o map[string]any) bool { return snapAfter(o) > prev || snapDone(o, "public.b") })
				if snapDone(ow.last, "public.b") {
					t.Fatalf("kill %d: the snapshot of b completed before it; nothing tested", i+1)
				}
				if i == 0 {
					checkProgress(t, le, slot)
				}
				time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
				if strings.Contains(w.output(), "incremental snapshots complete") {
					t.Fatalf("kill %d: the incremental snapshot completed before it; nothing tested", i+1)
				}
				w.kill(t)
				outs = append(outs, w.output())
			}
			w = startWorker(t, le, cfgAB)
			waitLog(t, w, "incremental snapshots complete", 90*time.Second)
			time.Sleep(time.Second)
			deletes, moves := halt()
			outs = append(outs, w.output())
			if deletes < 50 || moves < 20 {
				t.Fatalf("workload too slow: %d deletes, %d key moves", deletes, moves)
			}
			if !strings.Contains(outs[0], "table added to tables: snapshotting it incrementally while streaming") {
				t.Errorf("the first start with b did not log the added table:\n%s", tail([]byte(outs[0]), 3000))
			}
			var keys []int64
			for i, out := range outs {
				ks := resumedKeys(out)
				if len(ks) != 1 {
					t.Fatalf("start %d: want one incremental start of table public.b, got %v", i+1, ks)
				}
				keys = append(keys, ks[0])
			}
			t.Logf("resumed after keys %v (%d deletes, %d key moves)", keys, deletes, moves)
			if keys[0] != 0 {
				t.Errorf("the first snapshot of b did not start at its first row: %v", keys)
			}
			// Each run was killed after recording a chunk of its own, so the
			// next one resumes strictly further.
			for i := 1; i < len(keys); i++ {
				if keys[i] <= keys[i-1] {
					t.Errorf("start %d resumed after key %d, not after the earlier %d: chunks read again", i+1, keys[i], keys[i-1])
				}
			}
			isWaitCopy(t, le, prefix+".public.a", c, cc, "a", 90*time.Second)
			isWaitCopy(t, le, prefix+".public.b", c, cc, "b", 90*time.Second)
			code, out := runCLI(t, time.Minute, "status", "-f", cfgAB)
			if code != 0 || !regexp.MustCompile(`(?m)^`+slot+` +public\.b +added +\d+ +\d+ +done`).MatchString(out) {
				t.Fatalf("tributary status exited %d without the finished snapshot of b:\n%s", code, out)
			}
			code, out = runCLI(t, 3*time.Minute, "verify", "-f", cfgAB, sinkName, "--wait", "30s")
			if code != 0 || !strings.Contains(out, "2 tables compared, 2 equal, 0 different") {
				t.Fatalf("verify exited %d:\n%s", code, tail([]byte(out), 4096))
			}
			w.stop(t)
		})
	}
}

// TestPGIncrementalSnapshotErrors: a table added to `tables` that cannot be
// snapshotted incrementally stops the connector with an error naming it and
// saying how to fix it: a table without key, a table that does not exist,
// and a user who may not write the watermarks.
func TestPGIncrementalSnapshotErrors(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})
	src := pgDB(t)
	c := pgConn(t, src)
	role := uniq("wm")
	pgExec(t, c, fmt.Sprintf("CREATE ROLE %s LOGIN REPLICATION PASSWORD 'wmpw'", role))
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = c.Exec(ctx, "DROP OWNED BY "+role)
		if base, err := pgx.Connect(ctx, env(t, "TRIBUTARY_TEST_PG_URL")); err == nil {
			// The worker's sessions may linger a moment after it exits.
			for i := 0; i < 50; i++ {
				if _, err := base.Exec(ctx, "DROP ROLE IF EXISTS "+role); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			base.Close(ctx)
		}
	})
	var dbName string
	if err := c.QueryRow(context.Background(), "SELECT current_database()").Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	pgExec(t, c, fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s", dbName, role))
	for _, tbl := range []string{"t1", "t2"} {
		pgExec(t, c, fmt.Sprintf(isDDL, tbl))
		isFill(t, c, tbl, 100)
		pgExec(t, c, fmt.Sprintf("ALTER TABLE %s OWNER TO %s", tbl, role))
	}
	pgExec(t, c, "CREATE TABLE nokey (a int, b text)")
	pgExec(t, c, "INSERT INTO nokey SELECT g, 'x' FROM generate_series(1, 10) g")
	pgExec(t, c, "ALTER TABLE nokey OWNER TO "+role)
	// The watermark function is PUBLIC by default; an administrator may
	// have revoked it.
	pgExec(t, c, "REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) FROM PUBLIC")
	roleURL := strings.Replace(src, "postgres:postgres@", role+":wmpw@", 1)

	prefix, slot := uniq("ie"), uniq("slot")
	cfg1 := pgPipeline(t, le, roleURL, prefix, slot, []string{"t1"}, "")
	w := startWorker(t, le, cfg1)
	waitLog(t, w, "streaming changes", 60*time.Second)
	w.stop(t)

	cases := []struct {
		name   string
		tables []string
		want   []string
	}{
		{"keyless table", []string{"t1", "nokey"}, []string{"table public.nokey has no primary key and no key_columns", "key_columns"}},
		{"unknown table", []string{"t1", "no_such_table"}, []string{"no_such_table", "does not exist"}},
		{"no watermark privilege", []string{"t1", "t2"}, []string{"pg_logical_emit_message", `GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO "` + role + `"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pgPipeline(t, le, roleURL, prefix, slot, tc.tables, "")
			out := runExpectFailure(t, 1, tc.want, "run", "-f", cfg)
			if strings.Contains(out, "wmpw") {
				t.Fatalf("output leaks the password:\n%s", out)
			}
		})
	}
	// Granted, the added table is snapshotted.
	pgExec(t, c, "GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO "+role)
	w = startWorker(t, le, pgPipeline(t, le, roleURL, prefix, slot, []string{"t1", "t2"}, ""))
	waitLog(t, w, "incremental snapshot of table completed", 60*time.Second)
	if !strings.Contains(w.output(), "table=public.t2 kind=added rows=100") {
		t.Fatalf("t2 not snapshotted with its 100 rows:\n%s", tail([]byte(w.output()), 3000))
	}
	w.stop(t)

	// Removed from tables: no longer captured, with a log line; its topic
	// is kept.
	w = startWorker(t, le, pgPipeline(t, le, roleURL, prefix, slot, []string{"t2"}, ""))
	waitLog(t, w, "streaming changes", 60*time.Second)
	if !strings.Contains(w.output(), `msg="table removed from tables: it is no longer captured (its topic is kept)" source=`+slot) ||
		!strings.Contains(w.output(), "table=public.t1") {
		t.Fatalf("no log line for the removed table:\n%s", tail([]byte(w.output()), 3000))
	}
	t1Topic := prefix + ".public.t1"
	before := topicEnd(t, le, t1Topic)
	pgExec(t, c, "UPDATE t1 SET qty = qty + 1 WHERE id <= 10")
	pgExec(t, c, "UPDATE t2 SET qty = qty + 1 WHERE id <= 10")
	// t2's changes arrive; t1's do not.
	t2Topic := prefix + ".public.t2"
	t2Before := topicEnd(t, le, t2Topic)
	pgExec(t, c, "UPDATE t2 SET qty = qty + 1 WHERE id <= 5")
	deadline := time.Now().Add(30 * time.Second)
	for topicEnd(t, le, t2Topic) < t2Before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("changes of t2 did not arrive")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := topicEnd(t, le, t1Topic); after != before {
		t.Fatalf("the removed table's topic got %d records", after-before)
	}
	w.stop(t)
}

// TestPGOnDemandSnapshot: `tributary snapshot` re-reads a table (or the
// rows a --where selects) through the running worker, incrementally, while
// a workload writes; with no worker running the request is recorded in the
// offsets and done at the next start; a table the source does not capture
// is refused.
func TestPGOnDemandSnapshot(t *testing.T) {
	const rows = 5000
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, fmt.Sprintf(isDDL, "t"))
			pgExec(t, c, fmt.Sprintf(isDDL, "other"))
			isFill(t, c, "t", rows)
			copyURL := pgDB(t)
			cc := pgConn(t, copyURL)
			prefix, slot := uniq("od"), uniq("slot")
			topic := prefix + ".public.t"
			sinkName := uniq("pgc")
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"t"}, "    snapshot_chunk_rows: 700\n"+pgSinkYAML(sinkName, copyURL, topic, 500))

			w := startWorker(t, le, cfg)
			waitLog(t, w, "snapshot completed", 60*time.Second)
			isWaitCopy(t, le, topic, c, cc, "t", 60*time.Second)
			halt := isWorkload(t, src, map[string]int64{"t": rows}, 10)

			// Rows the copy lost track of (as after a bug in a consumer):
			// the workload never touches ids up to 100 but through moves
			// and deletes, which the snapshot must not undo.
			tamper := func() { pgExec(t, cc, "UPDATE public.t SET name = 'tampered' WHERE id <= 100") }
			tampered := func() int {
				var n int
				if err := cc.QueryRow(context.Background(), "SELECT count(*) FROM public.t WHERE name = 'tampered'").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			tamper()
			code, out := runCLI(t, time.Minute, "snapshot", "-f", cfg, slot, "t", "--where", "id <= 100")
			if code != 0 || !strings.Contains(out, "requested from the running worker") {
				t.Fatalf("snapshot --where exited %d:\n%s", code, out)
			}
			waitLog(t, w, "incremental snapshot of table completed", 60*time.Second)
			if !strings.Contains(w.output(), `table=public.t kind=on_demand`) {
				t.Fatalf("no on-demand snapshot in the log:\n%s", tail([]byte(w.output()), 3000))
			}
			deadline := time.Now().Add(60 * time.Second)
			for tampered() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d tampered rows left after the on-demand snapshot --where", tampered())
				}
				time.Sleep(200 * time.Millisecond)
			}
			// Only the selected rows were read: the log has at most 100
			// incremental reads so far.
			r := newReader(t, le, topic)
			end := topicEnd(t, le, topic)
			evs := r.pollUntil(t, 60*time.Second, func(evs []event) bool { return len(evs) > 0 && evs[len(evs)-1].Offset >= end-1 })
			incremental := func(evs []event) (n int) {
				for _, e := range evs {
					if src, _ := e.Value["source"].(map[string]any); e.op() == "r" && src["snapshot"] == "incremental" {
						n++
						if id, _ := e.Key["id"].(int64); id > 100 {
							t.Fatalf("incremental read of id %d, outside --where id <= 100", id)
						}
					}
				}
				return n
			}
			if n := incremental(evs); n == 0 || n > 100 {
				t.Fatalf("%d incremental reads for --where id <= 100", n)
			}

			// Refused: a table the source does not capture.
			code, out = runCLI(t, time.Minute, "snapshot", "-f", cfg, slot, "other")
			if code != 1 || !strings.Contains(out, "public.other is not captured") {
				t.Fatalf("snapshot of an uncaptured table exited %d:\n%s", code, out)
			}

			// No worker: recorded in the offsets, done at the next start.
			w.stop(t)
			tamper()
			code, out = runCLI(t, 2*time.Minute, "snapshot", "-f", cfg, slot, "t")
			if code != 0 || !strings.Contains(out, "recorded in the offset") {
				t.Fatalf("snapshot with no worker exited %d:\n%s", code, out)
			}
			w = startWorker(t, le, cfg)
			waitLog(t, w, "incremental snapshot of table completed", 90*time.Second)
			if !strings.Contains(w.output(), "table=public.t kind=on_demand resumed_after_key=[] rows_so_far=0") {
				t.Fatalf("the recorded snapshot did not start at the next start:\n%s", tail([]byte(w.output()), 3000))
			}
			halt()
			isWaitCopy(t, le, topic, c, cc, "t", 90*time.Second)
			if n := tampered(); n != 0 {
				t.Fatalf("%d tampered rows left after the recorded snapshot", n)
			}
			w.stop(t)
		})
	}
}

// TestPGResnapshotDeletesVanishedRows: when the slot is lost and
// snapshot: when_needed takes a new full snapshot, the rows deleted while
// no slot recorded the deletes get a delete and a tombstone (the new
// snapshot reads the topic's keys back), so the copies lose them too.
func TestPGResnapshotDeletesVanishedRows(t *testing.T) {
	const rows = 20_000
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, fmt.Sprintf(isDDL, "t"))
			isFill(t, c, "t", rows)
			copyURL := pgDB(t)
			cc := pgConn(t, copyURL)
			prefix, slot := uniq("rs"), uniq("slot")
			topic := prefix + ".public.t"
			sinkName := uniq("pgc")
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"t"}, "    snapshot: when_needed\n"+pgSinkYAML(sinkName, copyURL, topic, 500))

			w := startWorker(t, le, cfg)
			waitLog(t, w, "snapshot completed", 60*time.Second)
			isWaitCopy(t, le, topic, c, cc, "t", 60*time.Second)
			w.stop(t)

			// The slot is lost while rows are deleted, moved and changed.
			// (the server may hold the stopped worker's walsender a moment)
			for i := 0; ; i++ {
				_, err := c.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", slot)
				if err == nil {
					break
				}
				if i == 100 {
					t.Fatalf("drop slot %s: %v", slot, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			pgExec(t, c, "DELETE FROM t WHERE id % 7 = 0")
			pgExec(t, c, "UPDATE t SET id = id + 1000000 WHERE id % 11 = 0")
			pgExec(t, c, "UPDATE t SET name = 'changed' WHERE id % 13 = 0")
			var gone int
			if err := c.QueryRow(context.Background(), "SELECT count(*) FROM generate_series(1, $1::int) g WHERE NOT EXISTS (SELECT 1 FROM t WHERE id = g)", rows).Scan(&gone); err != nil {
				t.Fatal(err)
			}

			w = startWorker(t, le, cfg)
			waitLog(t, w, "snapshot completed", 60*time.Second)
			out := w.output()
			if !strings.Contains(out, "when_needed: taking a new snapshot") {
				t.Fatalf("no new snapshot:\n%s", tail([]byte(out), 3000))
			}
			if want := fmt.Sprintf("table=public.t deleted=%d", gone); !strings.Contains(out, want) {
				t.Fatalf("want %q in the log (%d ids gone):\n%s", want, gone, tail([]byte(out), 3000))
			}
			isWaitCopy(t, le, topic, c, cc, "t", 90*time.Second)
			mustVerify(t, cfg, sinkName, 30*time.Second)
			w.stop(t)
		})
	}
}

// TestPGDebeziumSignal: a Debezium execute-snapshot signal on the signal
// topic (signal_kafka_topic, Debezium's signal.kafka.topic format) re-reads
// the rows its additional condition selects; a signal for another
// connector is ignored; after a restart the signal is not run again.
func TestPGDebeziumSignal(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, fmt.Sprintf(isDDL, "t"))
			isFill(t, c, "t", 3000)
			copyURL := pgDB(t)
			cc := pgConn(t, copyURL)
			prefix, slot := uniq("sg"), uniq("slot")
			topic, signals := prefix+".public.t", uniq("signals")
			sinkName := uniq("pgc")
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"t"}, "    signal_kafka_topic: "+signals+"\n"+pgSinkYAML(sinkName, copyURL, topic, 500))
			w := startWorker(t, le, cfg)
			waitLog(t, w, "reading Debezium signals", 60*time.Second)
			isWaitCopy(t, le, topic, c, cc, "t", 60*time.Second)
			pgExec(t, cc, "UPDATE public.t SET name = 'tampered' WHERE id <= 300")

			cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			send := func(key, value string) {
				t.Helper()
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: signals, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
					t.Fatalf("produce signal: %v", err)
				}
			}
			send("another-connector", `{"id":"x1","type":"execute-snapshot","data":{"data-collections":["public.t"],"type":"incremental"}}`)
			send(prefix, `{"id":"s1","type":"execute-snapshot","data":{"data-collections":["public.t"],"type":"INCREMENTAL",`+
				`"additional-conditions":[{"data-collection":"public.t","filter":"id <= 200"}]}}`)
			waitLog(t, w, "incremental snapshot of table completed", 60*time.Second)
			out := w.output()
			if !strings.Contains(out, `msg="signal accepted" source=`+slot) || strings.Count(out, "signal accepted") != 1 {
				t.Fatalf("want exactly one accepted signal:\n%s", tail([]byte(out), 3000))
			}
			if !strings.Contains(out, "table=public.t kind=on_demand rows=200") {
				t.Fatalf("the signal's snapshot did not read the 200 rows of its condition:\n%s", tail([]byte(out), 3000))
			}
			var left int
			deadline := time.Now().Add(60 * time.Second)
			for {
				if err := cc.QueryRow(context.Background(), "SELECT count(*) FROM public.t WHERE name = 'tampered'").Scan(&left); err != nil {
					t.Fatal(err)
				}
				if left == 100 { // ids 201..300 were outside the condition
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d tampered rows left, want the 100 outside the condition", left)
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(time.Second) // an offset carrying the signal position
			w.stop(t)
			w = startWorker(t, le, cfg)
			waitLog(t, w, "reading Debezium signals", 60*time.Second)
			time.Sleep(3 * time.Second)
			if strings.Contains(w.output(), "signal accepted") || strings.Contains(w.output(), "incremental snapshot of table started") {
				t.Fatalf("the signal ran again after a restart:\n%s", tail([]byte(w.output()), 3000))
			}
			w.stop(t)
		})
	}
}

// TestPGIncrementalExactlyOnce: with worker.exactly_once on Apache Kafka, a
// read_committed consumer sees each row of an incremental snapshot at most
// once, although the worker is killed 5 times during it: a chunk's rows
// and the offset recording it commit in one transaction.
func TestPGIncrementalExactlyOnce(t *testing.T) {
	const rows = 60_000
	le := newLogEnv(t, mode{"kafka", false})
	le.yaml = replaceOnce(t, le.yaml, "worker:\n", "worker:\n  exactly_once: true\n  transaction_interval: 50ms\n")
	src := pgDB(t)
	c := pgConn(t, src)
	pgExec(t, c, fmt.Sprintf(isDDL, "a"))
	pgExec(t, c, fmt.Sprintf(isDDL, "b"))
	isFill(t, c, "a", 100)
	isFill(t, c, "b", rows)
	pgExec(t, c, "ANALYZE b")
	prefix, slot := uniq("ix"), uniq("slot")
	extra := "    snapshot_chunk_rows: 300\n"
	w := startWorker(t, le, pgPipeline(t, le, src, prefix, slot, []string{"a"}, extra))
	waitLog(t, w, "snapshot completed", 60*time.Second)
	w.stop(t)

	cfgAB := pgPipeline(t, le, src, prefix, slot, []string{"a", "b"}, extra)
	halt := isWorkload(t, src, map[string]int64{"a": 100, "b": rows}, 20)
	ow := newOffWatch(t, le, slot)
	for i := 0; i < 5; i++ {
		w = startWorker(t, le, cfgAB)
		prev := startedAfter(t, w)
		ow.waitFor(t, 60*time.Second, "a chunk of b", func(o map[string]any) bool { return snapAfter(o) > prev })
		time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
		w.kill(t)
	}
	w = startWorker(t, le, cfgAB)
	waitLog(t, w, "incremental snapshots complete", 120*time.Second)
	halt()
	w.stop(t)

	topic := prefix + ".public.b"
	end := topicEnd(t, le, topic)
	r := newReaderOpts(t, le, []kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted())}, topic)
	evs := r.pollUntil(t, 2*time.Minute, func(evs []event) bool { return len(evs) > 0 && evs[len(evs)-1].Offset >= end-2 })
	reads := map[int64]int{}
	for _, e := range evs {
		if src, _ := e.Value["source"].(map[string]any); e.op() == "r" && src["snapshot"] == "incremental" {
			id, _ := e.Key["id"].(int64)
			reads[id]++
		}
	}
	twice := 0
	for id, n := range reads {
		if n > 1 {
			twice++
			if twice <= 3 {
				t.Errorf("id %d: %d incremental reads seen by read_committed", id, n)
			}
		}
	}
	if twice > 0 {
		t.Fatalf("%d rows read more than once", twice)
	}
	if len(reads) < rows/2 {
		t.Fatalf("only %d rows of %d read", len(reads), rows)
	}
	t.Logf("%d rows read once each", len(reads))
}

package integration

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgPipeline writes a pipeline file with one postgres source.
func pgPipeline(t *testing.T, le *logEnv, dbURL, prefix, slot string, tables []string, extra string) string {
	t.Helper()
	y := le.yaml + fmt.Sprintf(`sources:
  - name: %s
    type: postgres
    url: %s
    tables: [%s]
    topic_prefix: %s
    slot: %s
    publication: %s_pub
%s`, slot, dbURL, strings.Join(tables, ", "), prefix, slot, slot, extra)
	return writeFile(t, t.TempDir(), "pipeline.yaml", y)
}

func startWorker(t *testing.T, le *logEnv, cfg string) *proc {
	t.Helper()
	p := startProc(t, "worker", tribBin(t), "run", "-f", cfg)
	waitHTTP(t, "http://"+le.httpAddr+"/healthz", 60*time.Second, p)
	return p
}

type row struct {
	name    string
	balance string
	note    string
}

func dbState(t *testing.T, c *pgx.Conn) map[int64]row {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT id, name, balance::text, coalesce(note,'') FROM accounts")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	st := map[int64]row{}
	for rows.Next() {
		var id int64
		var r row
		if err := rows.Scan(&id, &r.name, &r.balance, &r.note); err != nil {
			t.Fatal(err)
		}
		st[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return st
}

// materialize applies change events in log order, as a sink would.
func materialize(t *testing.T, evs []event) map[int64]row {
	st := map[int64]row{}
	for _, e := range evs {
		switch e.op() {
		case "r", "c", "u":
			a := e.after()
			note, _ := a["note"].(string)
			st[num(a["id"])] = row{name: a["name"].(string), balance: decimalString(a["balance"], 2), note: note}
		case "d":
			delete(st, num(e.before()["id"]))
		case "t":
			clear(st)
		case "":
			if e.Key == nil {
				t.Fatalf("tombstone without key at %s@%d", e.Topic, e.Offset)
			}
		default:
			t.Fatalf("unexpected op %q at %s@%d", e.op(), e.Topic, e.Offset)
		}
	}
	return st
}

func diffStates(want, got map[int64]row) string {
	var b strings.Builder
	n := 0
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			if n < 5 {
				fmt.Fprintf(&b, "id %d: want %+v got %+v (present %v); ", id, w, g, ok)
			}
			n++
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			if n < 5 {
				fmt.Fprintf(&b, "id %d: in log but deleted in source; ", id)
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d differences: %s", n, b.String())
}

const accountsDDL = `CREATE TABLE accounts (
	id bigserial PRIMARY KEY,
	name text NOT NULL,
	balance numeric(12,2) NOT NULL,
	note text
);`

// writer runs random inserts, updates and deletes until stopped.
func writer(t *testing.T, dbURL string, stop <-chan struct{}, wg *sync.WaitGroup, maxID int64) {
	defer wg.Done()
	c, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Errorf("writer: %v", err)
		return
	}
	defer c.Close(context.Background())
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		var sql string
		switch i % 4 {
		case 0, 1:
			sql = fmt.Sprintf("INSERT INTO accounts(name, balance, note) VALUES ('w%d', %d.25, 'ins%d')", i, i, i)
		case 2:
			sql = fmt.Sprintf("UPDATE accounts SET balance = balance + 1, note = 'upd%d' WHERE id = %d", i, 1+rand.Int64N(maxID))
		case 3:
			sql = fmt.Sprintf("DELETE FROM accounts WHERE id = %d", 1+rand.Int64N(maxID))
		}
		if _, err := c.Exec(context.Background(), sql); err != nil {
			t.Errorf("writer %s: %v", sql, err)
			return
		}
	}
}

// TestPGSnapshotThenStream: a pre-filled table is snapshotted while writes
// run, then streaming continues; the log, replayed as a copy would, equals
// the source, and changes after the snapshot all arrive in commit order.
func TestPGSnapshotThenStream(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, accountsDDL)
			const prefill = 100000
			pgExec(t, c, fmt.Sprintf("INSERT INTO accounts(name, balance) SELECT 'n'||g, g::numeric/100 FROM generate_series(1,%d) g", prefill))
			prefix := uniq("snap")
			slot := uniq("slot")
			cfg := pgPipeline(t, le, db, prefix, slot, []string{"public.accounts"}, "")

			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go writer(t, db, stop, &wg, prefill)
			w := startWorker(t, le, cfg)
			time.Sleep(3 * time.Second)
			close(stop)
			wg.Wait()

			topic := prefix + ".public.accounts"
			want := dbState(t, c)
			r := newReader(t, le, topic)
			var last string
			evs := r.pollUntil(t, 3*time.Minute, func(evs []event) bool {
				last = diffStates(want, materialize(t, evs))
				return last == ""
			})
			// One table: its first row is marked first, its last row last
			// (Debezium's marks), every other snapshot row true.
			reads := 0
			marks := map[string]int{}
			var firstMark, lastMark string
			for _, e := range evs {
				if e.op() == "r" {
					reads++
					s, _ := e.Value["source"].(map[string]any)["snapshot"].(string)
					marks[s]++
					if reads == 1 {
						firstMark = s
					}
					lastMark = s
				}
			}
			if marks["first"] != 1 || marks["last"] != 1 || firstMark != "first" || lastMark != "last" || marks["true"] != reads-2 {
				t.Fatalf("snapshot marks %v (first row %q, last row %q), want one first, one last and %d true", marks, firstMark, lastMark, reads-2)
			}
			if reads < prefill/2 {
				t.Fatalf("only %d snapshot reads for %d pre-filled rows", reads, prefill)
			}

			// Streaming phase: tracked changes arrive, each once, in commit order.
			base := len(evs)
			for i := 0; i < 200; i++ {
				pgExec(t, c, "UPDATE accounts SET note = $1 WHERE id = (SELECT min(id) FROM accounts)", fmt.Sprintf("seq%03d", i))
			}
			evs = r.pollUntil(t, time.Minute, func(evs2 []event) bool {
				n := 0
				for _, e := range evs2 {
					if e.op() == "u" && strings.HasPrefix(fmt.Sprint(e.after()["note"]), "seq") {
						n++
					}
				}
				return n >= 200
			})
			_ = base
			seq := 0
			for _, e := range evs {
				if e.op() == "u" {
					if note := fmt.Sprint(e.after()["note"]); strings.HasPrefix(note, "seq") {
						if want := fmt.Sprintf("seq%03d", seq); note != want {
							t.Fatalf("streamed update out of order or duplicated: got %s, want %s", note, want)
						}
						seq++
					}
				}
			}
			checkWorkerEndpoints(t, le, topic)
			w.stop(t)

			// A clean stop acknowledged the streamed position to PostgreSQL.
			var confirmed, current string
			if err := c.QueryRow(context.Background(),
				"SELECT confirmed_flush_lsn::text, pg_current_wal_lsn()::text FROM pg_replication_slots WHERE slot_name=$1", slot).Scan(&confirmed, &current); err != nil {
				t.Fatalf("slot %s after stop: %v", slot, err)
			}
			if confirmed == "" || confirmed == "0/0" {
				t.Fatalf("slot confirmed_flush_lsn not advanced: %s", confirmed)
			}
		})
	}
}

// checkWorkerEndpoints: /healthz, /readyz and /metrics answer on the worker's
// loopback port, and the metrics the issue names are there with real values.
func checkWorkerEndpoints(t *testing.T, le *logEnv, topic string) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz", "/status"} {
		resp, err := http.Get("http://" + le.httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
	}
	resp, err := http.Get("http://" + le.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(body)
	for _, want := range []string{
		`tributary_source_events_produced_total{connector=`,
		`tributary_source_bytes_produced_total{connector=`,
		`tributary_source_producer_errors_total{connector=`,
		`tributary_snapshot_rows{connector=`,
		`tributary_snapshot_rows_estimate{connector=`,
		`tributary_source_lag_bytes{connector=`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	re := regexp.MustCompile(`tributary_source_events_produced_total\{connector="[^"]+",topic="` + regexp.QuoteMeta(topic) + `"\} (\S+)`)
	if mm := re.FindStringSubmatch(m); mm == nil || mm[1] == "0" {
		t.Errorf("events produced for %s not counted: %v", topic, mm)
	}
}

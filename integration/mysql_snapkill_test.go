package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMySQLSnapshotKilledDeletes: kill -9 three times during the initial
// snapshot of a 200k-row MariaDB table while rows are deleted between the
// runs. Each restart takes the snapshot again (the MySQL source does not
// resume it by chunks yet) and sends deletes and tombstones for the keys
// of the earlier runs' rows that are gone, so the copy ends equal to the
// source with no extra row (before, deleted rows stayed in the copy).
func TestMySQLSnapshotKilledDeletes(t *testing.T) {
	const rows = 200_000
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			slowCompaction(le)
			_, db, c := mysqlDB(t)
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := c.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec("CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, note VARCHAR(300))")
			exec(fmt.Sprintf("INSERT INTO big SELECT seq, CONCAT('row', seq), seq %% 97, REPEAT('n', seq %% 300) FROM seq_1_to_%d", rows))
			copyDB := pgDB(t)
			base := env(t, "TRIBUTARY_TEST_MYSQL_URL")
			url := "mysql://" + strings.NewReplacer("tcp(", "", ")/", "").Replace(base)
			prefix, sinkName := uniq("mk"), uniq("pgc")
			topic := prefix + "." + db + ".big"
			cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sources:
  - name: %s
    type: mysql
    url: %s
    tables: [%s.big]
    topic_prefix: %s
    snapshot_chunk_rows: 2000
sinks:
  - name: %s
    type: postgres
    url: %s
    topics: [%s.%s.big]
    batch_size: 1000
`, prefix, url, db, prefix, sinkName, copyDB, prefix, db))

			deleted := 0
			for i := 0; i < 3; i++ {
				start := int64(0)
				if i > 0 {
					start = endOrZero(t, le, topic)
				}
				w := startWorker(t, le, cfg)
				waitLog(t, w, "consistent snapshot opened", 60*time.Second)
				// Killed once some of this run's rows are in the log.
				want := start + int64(10_000+rand.IntN(20_000))
				deadline := time.Now().Add(60 * time.Second)
				for endOrZero(t, le, topic) < want {
					if time.Now().After(deadline) {
						t.Fatalf("run %d: no rows reach the log", i+1)
					}
					time.Sleep(5 * time.Millisecond)
				}
				if strings.Contains(w.output(), "snapshot read") {
					t.Fatalf("run %d: the snapshot of %d rows ended before the kill; nothing tested", i+1, rows)
				}
				w.kill(t)
				if i > 0 && !strings.Contains(w.output(), "the committed offset is from an unfinished snapshot") {
					t.Fatalf("run %d did not see the interrupted snapshot:\n%s", i+1, tail([]byte(w.output()), 3000))
				}
				// Rows of the first chunks, already in the log, go away.
				res, err := c.Exec(fmt.Sprintf("DELETE FROM big WHERE id %% 11 = %d AND id <= 60000", i))
				if err != nil {
					t.Fatal(err)
				}
				n, _ := res.RowsAffected()
				deleted += int(n)
				exec(fmt.Sprintf("UPDATE big SET name = 'changed%d' WHERE id %% 13 = %d", i, i))
			}
			w := startWorker(t, le, cfg)
			waitLog(t, w, "streaming the binlog", 120*time.Second)
			code, vout := runCLI(t, 3*time.Minute, "verify", "-f", cfg, sinkName, "--wait", "60s")
			if code != 0 || !strings.Contains(vout, "1 tables compared, 1 equal, 0 different") {
				t.Fatalf("verify exited %d (%d rows deleted between the runs):\n%s", code, deleted, tail([]byte(vout), 4096))
			}
			out := w.output()
			if !strings.Contains(out, "the committed offset is from an unfinished snapshot") {
				t.Fatalf("the last run did not see the interrupted snapshot:\n%s", tail([]byte(out), 3000))
			}
			if !strings.Contains(out, "earlier snapshot's rows checked") || strings.Contains(out, "table="+db+".big deleted=0") {
				t.Fatalf("no deletes sent though %d rows were deleted between the runs:\n%s", deleted, tail([]byte(out), 3000))
			}
			w.stop(t)
		})
	}
}

// endOrZero is the end offset of partition 0 of topic, 0 while the topic
// does not exist.
func endOrZero(t *testing.T, le *logEnv, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		return 0
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return 0
	}
	return o.Offset
}

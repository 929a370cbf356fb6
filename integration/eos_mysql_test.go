package integration

import (
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMySQLExactlyOnce: the MariaDB source with worker.exactly_once on
// Apache Kafka, killed twice and stopped once mid-stream, leaves every row
// change in the log exactly once for a read_committed consumer.
func TestMySQLExactlyOnce(t *testing.T) {
	le := newLogEnv(t, mode{"kafka", false})
	le.yaml = replaceOnce(t, le.yaml, "worker:\n", "worker:\n  exactly_once: true\n  transaction_interval: 50ms\n")
	base, db, c := mysqlDB(t)
	mustExecDB(t, c, "CREATE TABLE events (id BIGINT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	prefix := uniq("myeos")
	topic := prefix + "." + db + ".events"
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
	wg.Go(func() {
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
			// Two rows per transaction, so a cut inside one would show.
			if _, err := wc.Exec("INSERT INTO events (id, v) VALUES (?, ?), (? + 1000000000, ?)", id, fmt.Sprintf("e%d", id), id, fmt.Sprintf("e%d", id)); err != nil {
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
	w = startWorker(t, le, cfg)
	time.Sleep(2 * time.Second)
	w.kill(t)
	w = startWorker(t, le, cfg)
	time.Sleep(2 * time.Second)
	w.stop(t)
	w = startWorker(t, le, cfg)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	total := next.Load()
	if total < 200 {
		t.Fatalf("writer too slow to test anything: %d transactions", total)
	}

	counts, dups, _ := readCommittedIDs(t, le, topic, total)
	if len(dups) > 0 || int64(len(counts)) != 2*total {
		t.Fatalf("read_committed consumer saw %d distinct ids (want %d) and %d duplicated ids, e.g. %v", len(counts), 2*total, len(dups), dups[:min(len(dups), 10)])
	}
	w.stop(t)
}

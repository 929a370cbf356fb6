package integration

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMySQLToPostgresCopyVerifies: MariaDB → log → PostgreSQL copy under a
// write workload, then `tributary verify` proves the copy equals the source.
func TestMySQLToPostgresCopyVerifies(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})
	_, db, c := mysqlDB(t)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := c.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(60) NOT NULL, price DECIMAL(10,2),
		stock SMALLINT UNSIGNED, added DATETIME(3), tags SET('a','b','c'), kind ENUM('x','y'), doc JSON, raw VARBINARY(16))`)
	for i := 1; i <= 300; i++ {
		exec("INSERT INTO products VALUES (?, ?, ?, ?, '2024-01-02 03:04:05.678', 'a,c', 'y', '{\"k\": 1}', X'00ff')", i, fmt.Sprintf("p%d", i), fmt.Sprintf("%d.%02d", i, i%100), i%1000)
	}
	copyDB := pgDB(t)
	base := env(t, "TRIBUTARY_TEST_MYSQL_URL")
	url := "mysql://" + strings.NewReplacer("tcp(", "", ")/", "").Replace(base)
	prefix := uniq("mv")
	sinkName := uniq("pgcopy")
	cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sources:
  - name: %s
    type: mysql
    url: %s
    tables: [%s.products]
    topic_prefix: %s
sinks:
  - name: %s
    type: postgres
    url: %s
    topics: [%s.%s.products]
`, prefix, url, db, prefix, sinkName, copyDB, prefix, db))
	w := startWorker(t, le, cfg)

	var ops atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1000; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			switch i % 3 {
			case 0:
				_, err = c.Exec("INSERT INTO products (id, name, price, stock) VALUES (?, ?, 1.50, 5)", i, fmt.Sprintf("new%d", i))
			case 1:
				_, err = c.Exec("UPDATE products SET price = price + 1, name = CONCAT(name, '+') WHERE id = ?", 1+i%300)
			default:
				_, err = c.Exec("DELETE FROM products WHERE id = ?", 1+(i*7)%300)
			}
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			ops.Add(1)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	if ops.Load() < 50 {
		t.Fatalf("writer too slow: %d operations", ops.Load())
	}
	code, out := runCLI(t, 3*time.Minute, "verify", "-f", cfg, sinkName, "--wait", "90s")
	if code != 0 || !strings.Contains(out, "1 tables compared, 1 equal, 0 different") {
		t.Fatalf("verify exited %d:\n%s", code, tail([]byte(out), 4096))
	}
	w.stop(t)

	// The comparison can fail: a row removed from the copy is named.
	var victim int64
	cc := pgConn(t, copyDB)
	if err := cc.QueryRow(t.Context(), "SELECT min(id) FROM "+db+".products").Scan(&victim); err != nil {
		t.Fatalf("reading the copy: %v", err)
	}
	pgExec(t, cc, fmt.Sprintf("DELETE FROM %s.products WHERE id = %d", db, victim))
	code, out = runCLI(t, 3*time.Minute, "verify", "-f", cfg, sinkName)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("missing key %d", victim)) {
		t.Fatalf("verify after deleting key %d from the copy exited %d:\n%s", victim, code, tail([]byte(out), 4096))
	}
}

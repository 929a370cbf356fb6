package integration

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

func mysqlDB(t *testing.T) (dsnBase, db string, conn *sql.DB) {
	t.Helper()
	base := env(t, "TRIBUTARY_TEST_MYSQL_URL")
	c, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	db = uniq("e2e")
	if _, err := c.Exec("CREATE DATABASE " + db); err != nil {
		t.Fatalf("creating MariaDB database: %v", err)
	}
	t.Cleanup(func() { _, _ = c.Exec("DROP DATABASE IF EXISTS " + db) })
	if _, err := c.Exec("USE " + db); err != nil {
		t.Fatal(err)
	}
	c.SetMaxOpenConns(1) // keep the USE above on the one connection
	return base, db, c
}

// TestMySQLSourceThroughBinary: the real binary snapshots a MariaDB table,
// streams the binlog, persists the schema history in its topic, and resumes
// after a restart across a DDL made while it was down.
func TestMySQLSourceThroughBinary(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			_, db, c := mysqlDB(t)
			mustExec := func(q string) {
				t.Helper()
				if _, err := c.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			mustExec("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2))")
			mustExec("INSERT INTO items VALUES (1,'one',1.10),(2,'two',2.20)")
			// root:mariadb@tcp(127.0.0.1:33306)/ → mysql://root:mariadb@127.0.0.1:33306
			base := env(t, "TRIBUTARY_TEST_MYSQL_URL")
			url := "mysql://" + strings.NewReplacer("tcp(", "", ")/", "").Replace(base)
			prefix := uniq("my")
			cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sources:
  - name: %s
    type: mysql
    url: %s
    tables: [%s.items]
    topic_prefix: %s
`, prefix, url, db, prefix))
			w := startWorker(t, le, cfg)
			topic := prefix + "." + db + ".items"
			r := newReader(t, le, topic)
			r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 2 })
			mustExec("INSERT INTO items VALUES (3,'three',3.30)")
			mustExec("UPDATE items SET name='uno' WHERE id=1")
			r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 4 })
			w.stop(t)

			// DDL while the worker is down, then a row using the new column.
			mustExec("ALTER TABLE items ADD COLUMN color VARCHAR(10)")
			mustExec("INSERT INTO items VALUES (4,'four',4.40,'red')")
			w = startWorker(t, le, cfg)
			evs := r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 5 })
			found := false
			for _, tp := range topicsOf(t, le) {
				if strings.HasPrefix(tp, prefix) && strings.Contains(tp, "history") {
					found = true
				}
			}
			if !found {
				t.Fatalf("no schema history topic for %s among %v", prefix, topicsOf(t, le))
			}
			w.stop(t)

			ops := []string{}
			for _, e := range evs {
				ops = append(ops, e.op())
			}
			if got := strings.Join(ops, ","); got != "r,r,c,u,c" {
				t.Fatalf("ops %s, want r,r,c,u,c (no loss, no duplicate across the restart)", got)
			}
			last := evs[4].after()
			if last["color"] != "red" || num(last["id"]) != 4 || decimalString(last["price"], 2) != "4.40" {
				t.Fatalf("row after DDL: %v", last)
			}
			if u := evs[3].after(); u["name"] != "uno" {
				t.Fatalf("update: %v", u)
			}
		})
	}
}

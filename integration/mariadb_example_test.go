package integration

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMariaDBExamplePipeline runs configs/mariadb-to-sqlite.yaml (its
// sources and sinks; the log part is the test's) through the binary on a
// fresh pipeline: the sink's topics_regex matches the source's schema
// history topic, which it skips and names in its log instead of stopping
// on its JSON records; the snapshot's rows reach the copy well before the
// sink's 10 s topic_refresh_interval, because the source's new topics are
// picked up at once; and the copy follows inserts, updates, deletes and an
// ADD COLUMN (whose DDL goes to the history topic).
func TestMariaDBExamplePipeline(t *testing.T) {
	example, err := os.ReadFile("../configs/mariadb-to-sqlite.yaml")
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(example), "\nsources:")
	if at < 0 {
		t.Fatal("configs/mariadb-to-sqlite.yaml has no sources: section")
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			_, db, c := mysqlDB(t)
			mustExecDB(t, c, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(8,2))")
			mustExecDB(t, c, "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT)")
			for i := 1; i <= 50; i++ {
				mustExecDB(t, c, fmt.Sprintf("INSERT INTO items VALUES (%d, 'item%d', %d.25)", i, i, i))
			}
			mustExecDB(t, c, "INSERT INTO notes VALUES (1, 'first'), (2, 'second')")
			base := env(t, "TRIBUTARY_TEST_MYSQL_URL")
			dir := t.TempDir()
			prefix := uniq("shop")
			t.Setenv("MYSQL_URL", "mysql://"+strings.NewReplacer("tcp(", "", ")/", "").Replace(base))
			t.Setenv("SHOP_DB", db)
			t.Setenv("SHOP_PREFIX", prefix)
			t.Setenv("TRIBUTARY_DATA_DIR", dir)
			cfg := writeFile(t, dir, "pipeline.yaml", le.yaml+string(example[at+1:]))

			copyPath := filepath.Join(dir, "copy.db")
			count := func(table string) (int, error) {
				cdb, err := sql.Open("sqlite", "file:"+copyPath+"?_pragma=busy_timeout(5000)&mode=ro")
				if err != nil {
					return 0, err
				}
				defer cdb.Close()
				var n int
				err = cdb.QueryRow("SELECT count(*) FROM " + db + "_" + table).Scan(&n)
				return n, err
			}
			began := time.Now()
			w := startProc(t, "worker", tribBin(t), "run", "-f", cfg)
			for {
				n1, err1 := count("items")
				n2, err2 := count("notes")
				if err1 == nil && err2 == nil && n1 == 50 && n2 == 2 {
					break
				}
				if w.exited() {
					t.Fatalf("worker exited: %v\n%s", w.err, tail([]byte(w.output()), 4096))
				}
				if time.Since(began) > time.Minute {
					t.Fatalf("snapshot not in the copy after a minute (items %d %v, notes %d %v)\n%s", n1, err1, n2, err2, tail([]byte(w.output()), 4096))
				}
				time.Sleep(50 * time.Millisecond)
			}
			took := time.Since(began)
			t.Logf("first rows of a fresh pipeline in the copy %v after the worker started", took)
			if took > 5*time.Second {
				t.Fatalf("the snapshot reached the copy %v after the worker started, want < 5s (new topics of the worker's own source must be picked up at once)\n%s", took, tail([]byte(w.output()), 4096))
			}

			mustExecDB(t, c, "ALTER TABLE items ADD COLUMN color VARCHAR(10)")
			mustExecDB(t, c, "INSERT INTO items VALUES (51, 'new', 5.50, 'red')")
			mustExecDB(t, c, "UPDATE items SET name = 'renamed', color = 'blue' WHERE id = 7")
			mustExecDB(t, c, "DELETE FROM items WHERE id = 9")
			mustExecDB(t, c, "UPDATE notes SET body = 'changed' WHERE id = 2")
			want := map[string]string{}
			rows, err := c.Query("SELECT id, name, CAST(price AS CHAR), coalesce(color, '<null>') FROM items")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id, name, price, color string
				if err := rows.Scan(&id, &name, &price, &color); err != nil {
					t.Fatal(err)
				}
				want[id] = name + "|" + price + "|" + color
			}
			rows.Close()
			deadline := time.Now().Add(time.Minute)
			for {
				got := map[string]string{}
				cdb, err := sql.Open("sqlite", "file:"+copyPath+"?_pragma=busy_timeout(5000)&mode=ro")
				if err != nil {
					t.Fatal(err)
				}
				rows, err := cdb.Query("SELECT id, name, printf('%.2f', price), coalesce(color, '<null>') FROM " + db + "_items")
				if err == nil {
					for rows.Next() {
						var id, name, price, color string
						if err := rows.Scan(&id, &name, &price, &color); err != nil {
							t.Fatal(err)
						}
						got[id] = name + "|" + price + "|" + color
					}
					rows.Close()
				}
				var note string
				noteErr := cdb.QueryRow("SELECT body FROM " + db + "_notes WHERE id = 2").Scan(&note)
				cdb.Close()
				if fmt.Sprint(got) == fmt.Sprint(want) && noteErr == nil && note == "changed" {
					break
				}
				if w.exited() {
					t.Fatalf("worker exited: %v\n%s", w.err, tail([]byte(w.output()), 4096))
				}
				if time.Now().After(deadline) {
					t.Fatalf("copy did not converge:\n got  %v (note %q %v)\n want %v", got, note, noteErr, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
			out := w.output()
			history := prefix + ".schema-history"
			if !strings.Contains(out, "carries no change events; not consumed") || !strings.Contains(out, "topic="+history) {
				t.Fatalf("the sink did not name the skipped schema history topic %s in its log:\n%s", history, tail([]byte(out), 4096))
			}
			if strings.Contains(out, "not Confluent-framed") {
				t.Fatalf("a sink read the history topic:\n%s", tail([]byte(out), 4096))
			}
			found := false
			for _, tp := range topicsOf(t, le) {
				if tp == history {
					found = true
				}
			}
			if !found {
				t.Fatalf("no history topic %s: the test does not exercise the skip", history)
			}
			w.stop(t)
		})
	}
}

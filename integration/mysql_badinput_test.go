package integration

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mysqlURLOf turns the go-sql-driver DSN the services script exports
// (root:mariadb@tcp(127.0.0.1:33306)/) into the connector's URL form.
func mysqlURLOf(dsn string) string {
	return "mysql://" + strings.NewReplacer("tcp(", "", ")/", "").Replace(dsn)
}

func mysqlOpen(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	c, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(); err != nil {
		t.Fatalf("connecting to MariaDB %s: %v", strings.SplitN(dsn, "@", 2)[1], err)
	}
	return c
}

func mustExecDB(t testing.TB, c *sql.DB, q string) {
	t.Helper()
	if _, err := c.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// badBinlogLock serialises the cases that set globals on the bad-binlog
// server, across test processes too (several `go test` runs may share it).
func badBinlogLock(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "tributary-test-badbinlog.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
}

// TestMySQLBadInput: each server or credential problem stops `tributary run`
// with a non-zero exit and an error naming it, and no password in the output.
func TestMySQLBadInput(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})
	good := env(t, "TRIBUTARY_TEST_MYSQL_URL")
	noBinlog := env(t, "TRIBUTARY_TEST_MYSQL_NOBINLOG_URL")
	badBinlog := env(t, "TRIBUTARY_TEST_MYSQL_BADBINLOG_URL")
	admin := mysqlOpen(t, good)

	// One database of the same name on every server the cases use.
	db := uniq("bad")
	for _, dsn := range []string{good, noBinlog, badBinlog} {
		c := mysqlOpen(t, dsn)
		mustExecDB(t, c, "CREATE DATABASE "+db)
		mustExecDB(t, c, "CREATE TABLE "+db+".t1 (id INT PRIMARY KEY, v VARCHAR(10))")
		mustExecDB(t, c, "INSERT INTO "+db+".t1 VALUES (1,'a')")
		t.Cleanup(func() { _, _ = c.Exec("DROP DATABASE IF EXISTS " + db) })
	}

	// A user who may read the table but not the binlog.
	user := uniq("norepl")
	mustExecDB(t, admin, fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY 'noreplpw'", user))
	t.Cleanup(func() { _, _ = admin.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'127.0.0.1'", user)) })
	mustExecDB(t, admin, fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'127.0.0.1'", db, user))

	pipeline := func(name, dsn string, extra string) string {
		return le.yaml + fmt.Sprintf("sources:\n  - name: %s\n    type: mysql\n    url: %s\n    tables: [%s.t1]\n    topic_prefix: %s\n%s",
			name, mysqlURLOf(dsn), db, name, extra)
	}
	wrongPass := strings.Replace(good, "root:mariadb@", "root:wrongpw@", 1)
	noRepl := strings.Replace(good, "root:mariadb@", user+":noreplpw@", 1)
	dir := t.TempDir()

	cases := []struct {
		name    string
		yaml    string
		globals string // SET GLOBAL on the bad-binlog server first
		want    []string
	}{
		{"wrong password", pipeline("wp", wrongPass, ""), "", []string{"Access denied", "root", "127.0.0.1:33306"}},
		{"binlog off", pipeline("nobin", noBinlog, ""), "", []string{"log_bin=OFF", "binary log is off"}},
		{"binlog_format=STATEMENT", pipeline("stmt", badBinlog, ""),
			"SET GLOBAL binlog_format='STATEMENT', binlog_row_image='MINIMAL'", []string{"binlog_format is STATEMENT", "ROW"}},
		{"binlog_row_image=MINIMAL", pipeline("minimal", badBinlog, ""),
			"SET GLOBAL binlog_format='ROW', binlog_row_image='MINIMAL'", []string{"binlog_row_image is MINIMAL", "FULL"}},
		{"no replication privilege", pipeline("norepl", noRepl, ""), "", []string{user, "REPLICATION SLAVE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.globals != "" {
				badBinlogLock(t)
				c := mysqlOpen(t, badBinlog)
				mustExecDB(t, c, tc.globals)
				// Back to the server's configured state for the other cases.
				t.Cleanup(func() {
					_, _ = c.Exec("SET GLOBAL binlog_format='STATEMENT', binlog_row_image='MINIMAL'")
				})
			}
			cfg := writeFile(t, dir, "pipeline.yaml", tc.yaml)
			out := runExpectFailure(t, 1, tc.want, "run", "-f", cfg)
			for _, secret := range []string{"wrongpw", ":mariadb@", "noreplpw"} {
				if strings.Contains(out, secret) {
					t.Fatalf("output leaks a password (%q):\n%s", secret, out)
				}
			}
		})
	}

	t.Run("duplicate server_id", func(t *testing.T) {
		// A first connector streams with server_id 4242xx; a second one with a
		// different name but the same server_id must be refused, not take the
		// id over (the server would drop the first one's connection).
		id := 424200 + time.Now().UnixNano()%99
		first := newLogEnv(t, mode{"embedded", true})
		cfg1 := writeFile(t, t.TempDir(), "pipeline.yaml", first.yaml+fmt.Sprintf(
			"sources:\n  - name: dupa\n    type: mysql\n    url: %s\n    tables: [%s.t1]\n    topic_prefix: dupa\n    server_id: %d\n", mysqlURLOf(good), db, id))
		w := startWorker(t, first, cfg1)
		newReader(t, first, "dupa."+db+".t1").pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 1 })
		// Wait until the first one is registered as a replica.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var n int
			rows, err := admin.Query("SHOW SLAVE HOSTS")
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]sql.NullString, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				if vals[0].String == fmt.Sprint(id) {
					n++
				}
			}
			rows.Close()
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server_id %d never showed up in SHOW SLAVE HOSTS", id)
			}
			time.Sleep(200 * time.Millisecond)
		}
		cfg2 := writeFile(t, dir, "pipeline.yaml", pipeline("dupb", good, fmt.Sprintf("    server_id: %d\n", id)))
		runExpectFailure(t, 1, []string{fmt.Sprintf("server_id %d is already used", id)}, "run", "-f", cfg2)
		if w.exited() {
			t.Fatalf("the first connector stopped: %s", tail([]byte(w.output()), 2048))
		}
		w.stop(t)
	})
}

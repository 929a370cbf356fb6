package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// runExpectFailure runs `tributary args...` and checks it exits non-zero
// with every wanted fragment in its output.
func runExpectFailure(t *testing.T, wantCode int, want []string, args ...string) string {
	t.Helper()
	p := startProc(t, "tributary", tribBin(t), args...)
	code := p.exitCode(t, 90*time.Second)
	out := p.output()
	if code == 0 {
		t.Fatalf("tributary %v exited 0; output:\n%s", args, out)
	}
	if wantCode > 0 && code != wantCode {
		t.Fatalf("tributary %v exited %d, want %d; output:\n%s", args, code, wantCode, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("tributary %v output lacks %q:\n%s", args, w, out)
		}
	}
	return out
}

// TestPGBadInput: every bad input gets a clear error naming what and where,
// a non-zero exit, and leaves nothing half-written (no slot, no topics).
func TestPGBadInput(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, "CREATE TABLE t1 (id int PRIMARY KEY)")
	dir := t.TempDir()
	good := func(url, tables string) string {
		return le.yaml + fmt.Sprintf("sources:\n  - name: bad\n    type: postgres\n    url: %s\n    tables: [%s]\n    topic_prefix: bad\n", url, tables)
	}
	noLogical := env(t, "TRIBUTARY_TEST_PG_NOLOGICAL_URL")
	wrongPass := strings.Replace(db, "postgres:postgres@", "postgres:wrong@", 1)

	pgExec(t, c, "DROP ROLE IF EXISTS norepl")
	pgExec(t, c, "CREATE ROLE norepl LOGIN PASSWORD 'norepl'")
	noRepl := strings.Replace(db, "postgres:postgres@", "norepl:norepl@", 1)

	cases := []struct {
		name string
		yaml string
		env  map[string]string
		code int
		want []string
	}{
		{"malformed yaml", "log:\n  data_dir: [unclosed\n", nil, 2, []string{"pipeline.yaml:2"}},
		{"unknown key", le.yaml + "sources:\n  - name: s\n    type: postgres\n    url: x\n    tables: [t]\n    topic_prefix: p\n    slott: x\n", nil, 2, []string{"slott", ":"}},
		{"missing env var", strings.Replace(good(db, "t1"), db, "${TRIBUTARY_NOT_SET_ANYWHERE}", 1), nil, 2, []string{"TRIBUTARY_NOT_SET_ANYWHERE"}},
		{"wrong password", good(wrongPass, "t1"), nil, 1, []string{"password", "127.0.0.1"}},
		{"no wal_level=logical", good(noLogical, "t1"), nil, 1, []string{"wal_level"}},
		{"missing table", good(db, "public.no_such_table"), nil, 1, []string{"no_such_table"}},
		{"no replication privilege", good(noRepl, "t1"), nil, 1, []string{"REPLICATION"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "pipeline.yaml", tc.yaml)
			out := runExpectFailure(t, tc.code, tc.want, "run", "-f", cfg)
			if strings.Contains(out, "wrong@") || strings.Contains(out, ":postgres@") || strings.Contains(out, "norepl:norepl") {
				t.Fatalf("output leaks a password:\n%s", out)
			}
		})
	}
	// Nothing half-written: no slot was left behind by the failed runs.
	var slots int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()").Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots != 0 {
		t.Fatalf("%d replication slots left behind by failed runs", slots)
	}
}

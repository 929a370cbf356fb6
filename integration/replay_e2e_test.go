package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// rvDDL is the source table of the replay/verify tests: types whose text
// differs between engines, so verify's normalisation is exercised.
const rvDDL = `CREATE TABLE rv_items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL,
	price numeric(10,2) NOT NULL, at timestamptz, flag boolean, data bytea, doc jsonb, note text)`

func rvPrefill(t *testing.T, c *pgx.Conn, from, to int) {
	t.Helper()
	pgExec(t, c, `INSERT INTO rv_items SELECT g, 'item'||g, g % 17, (g * 1.25)::numeric(10,2),
		timestamptz '2024-03-01 10:00:00.123456+02' + g * interval '1 minute', g % 2 = 0,
		decode(lpad(to_hex(g), 8, '0'), 'hex'), jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)),
		CASE WHEN g % 3 = 0 THEN NULL ELSE 'n'||g END
		FROM generate_series($1::int, $2::int) g`, from, to)
}

// rvWriter inserts, updates and deletes rows of rv_items until halted.
func rvWriter(t *testing.T, dbURL string, firstID int64) func() int {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ops := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("writer: %v", err)
			return
		}
		defer c.Close(ctx)
		next := firstID
		for {
			select {
			case <-stop:
				return
			default:
			}
			var q string
			var args []any
			switch r := rand.IntN(10); {
			case r < 4:
				q = `INSERT INTO rv_items VALUES ($1::bigint, 'new'||$1::bigint::text, $2, $3::numeric, now(), true, '\x00ff'::bytea, '{"new": 1.50}', NULL)`
				args = []any{next, rand.IntN(100), fmt.Sprintf("%d.%02d", rand.IntN(1000), rand.IntN(100))}
				next++
			case r < 8:
				q, args = "UPDATE rv_items SET qty = qty + 1, price = price + 0.01, note = $2, flag = NOT coalesce(flag, false), at = now() WHERE id = $1",
					[]any{101 + rand.Int64N(next-101), fmt.Sprintf("u%d", ops)}
			default:
				// Ids up to 100 are left alone: corruptAndCheck tampers with 7, 11 and 13.
				q, args = "DELETE FROM rv_items WHERE id = $1", []any{101 + rand.Int64N(next-101)}
			}
			if _, err := c.Exec(ctx, q, args...); err != nil {
				t.Errorf("writer: %s: %v", q, err)
				return
			}
			ops++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() int { close(stop); wg.Wait(); return ops }
}

// runCLI runs a tributary command to its end and returns its exit code and
// output.
func runCLI(t *testing.T, within time.Duration, args ...string) (int, string) {
	t.Helper()
	p := startProc(t, args[0], tribBin(t), args...)
	code := p.exitCode(t, within)
	return code, p.output()
}

func mustVerify(t *testing.T, cfg, sinkName string, wait time.Duration) string {
	t.Helper()
	code, out := runCLI(t, wait+2*time.Minute, "verify", "-f", cfg, sinkName, "--wait", wait.String())
	if code != 0 {
		t.Fatalf("verify %s exited %d, want 0:\n%s", sinkName, code, tail([]byte(out), 4096))
	}
	if !strings.Contains(out, "1 tables compared, 1 equal, 0 different") {
		t.Fatalf("verify %s summary missing:\n%s", sinkName, out)
	}
	return out
}

// corruptAndCheck deletes, alters and adds rows of the copy through exec,
// then checks that verify exits non-zero naming each key.
func corruptAndCheck(t *testing.T, cfg, sinkName string, exec func(q string)) {
	t.Helper()
	exec("DELETE FROM %s WHERE id = 7")
	exec("UPDATE %s SET name = 'tampered' WHERE id = 11")
	exec("UPDATE %s SET price = price + 1 WHERE id = 13")
	exec("INSERT INTO %s (id, name, qty, price) VALUES (999999, 'ghost', 1, 1)")
	code, out := runCLI(t, 2*time.Minute, "verify", "-f", cfg, sinkName)
	if code == 0 {
		t.Fatalf("verify %s exited 0 on a corrupted copy:\n%s", sinkName, out)
	}
	for _, want := range []string{"DIFFERENT", "missing key 7", "different key 11: name: source \"item11\", copy \"tampered\"",
		"different key 13: price", "extra key 999999", "1 missing, 1 extra, 2 different"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify %s output lacks %q:\n%s", sinkName, want, out)
		}
	}
}

func replayCLI(t *testing.T, cfg, sinkName string, extra ...string) string {
	t.Helper()
	args := append([]string{"replay", "-f", cfg, sinkName}, extra...)
	code, out := runCLI(t, 3*time.Minute, args...)
	if code != 0 {
		t.Fatalf("replay %v exited %d:\n%s", extra, code, tail([]byte(out), 4096))
	}
	if !strings.Contains(out, "caught up:") || !strings.Contains(out, "replayed from offset zero") {
		t.Fatalf("replay %v output lacks progress or result:\n%s", extra, tail([]byte(out), 4096))
	}
	return out
}

func sqliteExec(t *testing.T, path string) func(string) {
	return func(q string) {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(fmt.Sprintf(q, "public_rv_items")); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func pgCopyExec(t *testing.T, c *pgx.Conn) func(string) {
	return func(q string) {
		t.Helper()
		pgExec(t, c, fmt.Sprintf(q, "public.rv_items"))
	}
}

func offsetRows(t *testing.T, c *pgx.Conn, like string) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM public.tributary_offsets WHERE sink_name LIKE $1 AND kafka_partition >= 0", like).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplayVerify: PostgreSQL source -> log -> SQLite and PostgreSQL copies
// under a write workload; verify passes; a corrupted copy fails verify,
// naming the keys; replay (shadow and in place) repairs it; a replay killed
// with -9 is run again and finishes; a new sink with start: earliest
// backfills an empty database and then follows the source.
func TestReplayVerify(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, rvDDL)
			rvPrefill(t, c, 1, 3000)
			copyURL := pgDB(t)
			cc := pgConn(t, copyURL)
			prefix, slot := uniq("rv"), uniq("slot")
			topic := prefix + ".public.rv_items"
			sqName, pgName := uniq("sq"), uniq("pgc")
			path := filepath.Join(t.TempDir(), "copy.db")
			sinks := fmt.Sprintf(`sinks:
  - name: %s
    type: sqlite
    path: %s
    topics: [%s]
    batch_size: 200
  - name: %s
    type: postgres
    url: %s
    topics_regex: %s
    batch_size: 100
`, sqName, path, topic, pgName, copyURL, strings.ReplaceAll(prefix, ".", `\.`)+`\..*`)
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"rv_items"}, sinks)

			w := startWorker(t, le, cfg)
			halt := rvWriter(t, src, 3001)
			time.Sleep(3 * time.Second)
			if ops := halt(); ops < 50 {
				t.Fatalf("writer too slow: %d operations", ops)
			}
			mustVerify(t, cfg, sqName, 90*time.Second)
			mustVerify(t, cfg, pgName, 90*time.Second)
			w.stop(t)

			// Corrupt, detect, repair: shadow swap then in place, on both.
			corruptAndCheck(t, cfg, sqName, sqliteExec(t, path))
			replayCLI(t, cfg, sqName)
			mustVerify(t, cfg, sqName, 0)
			if _, err := os.Stat(path + ".replay"); err == nil {
				t.Errorf("shadow file %s.replay left behind", path)
			}
			corruptAndCheck(t, cfg, sqName, sqliteExec(t, path))
			replayCLI(t, cfg, sqName, "--in-place")
			mustVerify(t, cfg, sqName, 0)

			corruptAndCheck(t, cfg, pgName, pgCopyExec(t, cc))
			replayCLI(t, cfg, pgName, "--in-place")
			mustVerify(t, cfg, pgName, 0)
			corruptAndCheck(t, cfg, pgName, pgCopyExec(t, cc))
			replayCLI(t, cfg, pgName)
			mustVerify(t, cfg, pgName, 0)
			if n := offsetRows(t, cc, pgName+"__replay"); n != 0 {
				t.Errorf("%d offsets rows of the shadow sink left after the swap", n)
			}
			if n := offsetRows(t, cc, pgName); n == 0 {
				t.Errorf("no offsets rows for sink %s after the swap", pgName)
			}

			// kill -9 in the middle of a shadow replay, then replay again.
			corruptAndCheck(t, cfg, pgName, pgCopyExec(t, cc))
			p := startProc(t, "replay-killed", tribBin(t), "replay", "-f", cfg, pgName)
			deadline := time.Now().Add(2 * time.Minute)
			var shadowRows int
			for {
				if time.Now().After(deadline) || p.exited() {
					t.Fatalf("replay never started building the shadow (exited %v):\n%s", p.exited(), p.output())
				}
				err := cc.QueryRow(context.Background(), `SELECT count(*) FROM "public__tributary_replay".rv_items`).Scan(&shadowRows)
				if err == nil && shadowRows > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			p.kill(t)
			t.Logf("replay killed with %d shadow rows built", shadowRows)
			code, _ := runCLI(t, time.Minute, "verify", "-f", cfg, pgName)
			if code == 0 {
				t.Fatalf("verify passed after a killed replay: the live copy should still be the corrupted one")
			}
			replayCLI(t, cfg, pgName)
			mustVerify(t, cfg, pgName, 0)

			// Backfill: a new sink with start: earliest fills an empty
			// database from the compacted topic, then follows the source.
			bfURL := pgDB(t)
			bfName := uniq("backfill")
			cfg2 := pgPipeline(t, le, src, prefix, slot, []string{"rv_items"}, sinks+fmt.Sprintf(`  - name: %s
    type: postgres
    url: %s
    topics: [%s]
    start: earliest
`, bfName, bfURL, topic))
			w = startWorker(t, le, cfg2)
			mustVerify(t, cfg2, bfName, 90*time.Second)
			halt = rvWriter(t, src, 100000)
			time.Sleep(2 * time.Second)
			halt()
			mustVerify(t, cfg2, bfName, 90*time.Second)
			mustVerify(t, cfg2, sqName, 90*time.Second)
			mustVerify(t, cfg2, pgName, 90*time.Second)
			w.stop(t)
		})
	}
}

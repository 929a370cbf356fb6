package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// toastPlaceholder is Debezium's unavailable.value.placeholder.
const toastPlaceholder = "__debezium_unavailable_value"

// toastRow is one film row as the TOAST tests compare it: n, md5 of the
// large text, bytea and array columns (NULL as <null>), and points where
// the row was updated after points was added (the default an ADD COLUMN
// gives the rows it did not touch is another matter: see issue 9 item 1);
// tags is a text[] and nums an int[], each joined with commas.
type toastRow string

// toastState reads id -> row through rows of (id, n, body, pic, tags,
// points), tags rendered by tagsText.
func toastState(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}, tagsText func(raw []byte) (string, error)) (map[int64]toastRow, error) {
	out := map[int64]toastRow{}
	for rows.Next() {
		var id int64
		var n, points sql.NullInt64
		var body, pic, tags, nums []byte
		if err := rows.Scan(&id, &n, &body, &pic, &tags, &nums, &points); err != nil {
			return nil, err
		}
		sum := func(b []byte) string {
			if b == nil {
				return "<null>"
			}
			if strings.Contains(string(b), toastPlaceholder) {
				return "<placeholder>"
			}
			s := md5.Sum(b)
			return hex.EncodeToString(s[:4])
		}
		list := func(what string, raw []byte) (string, error) {
			if raw == nil {
				return "<null>", nil
			}
			s, err := tagsText(raw)
			if err != nil {
				return "", fmt.Errorf("id %d %s %q: %w", id, what, raw, err)
			}
			return sum([]byte(s)), nil
		}
		tg, err := list("tags", tags)
		if err != nil {
			return nil, err
		}
		ns, err := list("nums", nums)
		if err != nil {
			return nil, err
		}
		p := "-"
		if points.Valid && (id <= 100 || id == 120 || id == 121) {
			p = strconv.FormatInt(points.Int64, 10)
		}
		out[id] = toastRow(fmt.Sprintf("n=%d body=%s pic=%s tags=%s nums=%s points=%s", n.Int64, sum(body), sum(pic), tg, ns, p))
	}
	return out, rows.Err()
}

// pgTags: the test's own query renders text[] with array_to_string.
func pgTags(raw []byte) (string, error) { return string(raw), nil }

// jsonTags: SQLite and MariaDB copies hold arrays as JSON text.
func jsonTags(raw []byte) (string, error) {
	var a []any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // numbers as written, as array_to_string writes them
	if err := d.Decode(&a); err != nil {
		return "", err
	}
	parts := make([]string, len(a))
	for i, e := range a {
		parts[i] = fmt.Sprint(e)
	}
	return strings.Join(parts, ","), nil
}

const toastPGQuery = `SELECT id, n, convert_to(body, 'UTF8'), pic, convert_to(array_to_string(tags, ','), 'UTF8'),
	convert_to(array_to_string(nums, ','), 'UTF8'), %s FROM %s`

// toastPoints is the points column in the readers' queries: NULL until the
// test adds it.
var toastPoints = "NULL"

func toastPG(c *pgx.Conn, table string) func() (map[int64]toastRow, error) {
	return func() (map[int64]toastRow, error) {
		rows, err := c.Query(context.Background(), fmt.Sprintf(toastPGQuery, toastPoints, table))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return toastState(rows, pgTags)
	}
}

func toastSQL(db *sql.DB, table string) func() (map[int64]toastRow, error) {
	return func() (map[int64]toastRow, error) {
		rows, err := db.Query("SELECT id, n, body, pic, tags, nums, " + toastPoints + " FROM " + table)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return toastState(rows, jsonTags)
	}
}

// toastSQLite opens the file for each read, so no connection stays open
// when a replay swaps the file.
func toastSQLite(path string) func() (map[int64]toastRow, error) {
	return func() (map[int64]toastRow, error) {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			return nil, err
		}
		defer db.Close()
		return toastSQL(db, "public_film")()
	}
}

func toastDiff(want, got map[int64]toastRow) string {
	var ids []int64
	for id := range want {
		ids = append(ids, id)
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	n := 0
	for _, id := range ids {
		w, okw := want[id]
		g, okg := got[id]
		if okw && okg && w == g {
			continue
		}
		n++
		if n <= 8 {
			fmt.Fprintf(&b, "\n  id %d: source %q, copy %q", id, w, g)
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d rows differ:%s", n, b.String())
}

func waitToast(t *testing.T, what string, want map[int64]toastRow, read func() (map[int64]toastRow, error), within time.Duration, w *proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		got, err := read()
		if err == nil {
			if last = toastDiff(want, got); last == "" {
				return
			}
		} else {
			last = err.Error()
		}
		if w != nil && w.exited() {
			t.Fatalf("%s: worker exited: %v\n%s", what, w.err, tail([]byte(w.output()), 4096))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: copy differs from the source after %v: %s", what, within, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// toastRandom is SQL for n kB of random hex text that does not compress.
func toastRandom(kb int) string {
	return fmt.Sprintf("(SELECT string_agg(md5(random()::text || i), '') FROM generate_series(1, %d) i)", kb*1000/32)
}

// TestToastAcrossAddColumn: a PostgreSQL table under REPLICA IDENTITY
// DEFAULT with large text, bytea and array values stored out of line.
// int[] placeholders (Debezium's: the placeholder's bytes as numbers) are
// part of it. Case 1: ADD COLUMN with a default, then an UPDATE of another column of
// 100 rows (the events carry the placeholder for the large values and one
// column more than before). Case 2, in one transaction: the large values
// of a row change, ADD COLUMN, another column of the same row changes.
// PostgreSQL, MariaDB and SQLite copies, kept live, replayed (shadow and
// in place) and backfilled into new databases, must equal the source,
// checked by the test's own queries on both sides; the placeholder never
// reaches a copy. A sink started at the latest offset cannot know the
// values of rows it never saw: it counts them in
// tributary_sink_unavailable_values_total and logs it once per table.
func TestToastAcrossAddColumn(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			toastPoints = "NULL"
			le := newLogEnv(t, m)
			// Compaction would drop the snapshot record of a row whose
			// latest record holds a placeholder, and a replay could then not
			// know the value (the log's latest state lacks it; a source-side
			// matter). Kafka does not compact the active segment either.
			le.yaml = strings.Replace(le.yaml, "compaction_interval: 10s", "compaction_interval: 1h", 1)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, `CREATE TABLE film (id bigint PRIMARY KEY, n int NOT NULL, title text, body text, pic bytea, tags text[], nums int[])`)
			// EXTERNAL: stored out of line without compression.
			pgExec(t, c, `ALTER TABLE film ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN pic SET STORAGE EXTERNAL,
				ALTER COLUMN tags SET STORAGE EXTERNAL, ALTER COLUMN nums SET STORAGE EXTERNAL`)
			pgExec(t, c, fmt.Sprintf(`INSERT INTO film SELECT g, 0, 'film '||g, %s, decode(%s, 'hex'),
				ARRAY(SELECT md5(g::text || i || random()) FROM generate_series(1, 300) i),
				ARRAY(SELECT (random() * 2e9)::int + g * 0 FROM generate_series(1, 3000) i) FROM generate_series(1, 150) g`,
				toastRandom(20), toastRandom(20)))
			var toastBytes int64
			if err := c.QueryRow(context.Background(), `SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'film'::regclass`).Scan(&toastBytes); err != nil || toastBytes < 150*20000 {
				t.Fatalf("the large values are not stored out of line: TOAST relation %d bytes (err %v)", toastBytes, err)
			}

			pgCopy := pgDB(t)
			myDSN, myDB, myConn := mysqlSinkDB(t)
			dir := t.TempDir()
			litePath := filepath.Join(dir, "copy.db")
			prefix, slot := uniq("toast"), uniq("toast")
			topic := prefix + ".public.film"
			sinkYAML := func(suffix, pgURL, myDSN, myDB, litePath, extra string) string {
				return fmt.Sprintf(`  - name: %[1]s_pg%[2]s
    type: postgres
    url: %[3]s
    topics: [%[4]s]
    batch_size: 500
    flush_interval: 20ms%[8]s
  - name: %[1]s_my%[2]s
    type: mysql
    dsn: %[5]s
    topics: [%[4]s]
    table_name_format: %[6]s.$${source.table}
    batch_size: 500
    flush_interval: 20ms%[8]s
  - name: %[1]s_lite%[2]s
    type: sqlite
    path: %[7]s
    topics: [%[4]s]
    batch_size: 500
    flush_interval: 20ms%[8]s
`, prefix, suffix, pgURL, topic, myDSN, myDB, litePath, extra)
			}
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"film"}, "sinks:\n"+sinkYAML("", pgCopy, myDSN, myDB, litePath, ""))
			w := startWorker(t, le, cfg)

			pc := pgConn(t, pgCopy)
			copies := []struct {
				name string
				sink string
				read func() (map[int64]toastRow, error)
			}{
				{"PostgreSQL", prefix + "_pg", toastPG(pc, "public.film")},
				{"MariaDB", prefix + "_my", toastSQL(myConn, myDB+".film")},
				{"SQLite", prefix + "_lite", toastSQLite(litePath)},
			}
			source := toastPG(c, "film")
			checkAll := func(stage string, within time.Duration, w *proc) {
				t.Helper()
				want, err := source()
				if err != nil {
					t.Fatal(err)
				}
				if len(want) != 150 {
					t.Fatalf("source has %d rows", len(want))
				}
				for _, cp := range copies {
					waitToast(t, stage+": "+cp.name+" copy", want, cp.read, within, w)
				}
			}
			checkAll("snapshot", 2*time.Minute, w)

			// Case 1.
			pgExec(t, c, "ALTER TABLE film ADD COLUMN points int NOT NULL DEFAULT 7")
			toastPoints = "points"
			t.Cleanup(func() { toastPoints = "NULL" })
			pgExec(t, c, "UPDATE film SET n = n + 1 WHERE id <= 100")
			// Case 2, one transaction, twice: the large text, then the bytea
			// and the array.
			tx, err := c.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				"UPDATE film SET body = " + toastRandom(20) + " WHERE id = 120",
				"UPDATE film SET pic = decode(" + toastRandom(20) + ", 'hex'), tags = ARRAY(SELECT md5(i || random()::text) FROM generate_series(1, 300) i), nums = ARRAY(SELECT (random() * 2e9)::int FROM generate_series(1, 3000) i) WHERE id = 121",
				"ALTER TABLE film ADD COLUMN extra text",
				"UPDATE film SET n = n + 10 WHERE id IN (120, 121)",
			} {
				if _, err := tx.Exec(context.Background(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if err := tx.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkAll("live", 2*time.Minute, w)
			if out := w.output(); !strings.Contains(out, toastPlaceholder) {
				t.Fatalf("the source never sent the placeholder: the test does not exercise unchanged TOASTed values\n%s", tail([]byte(out), 2048))
			}
			w.stop(t)

			// Replay every copy from offset zero, in a shadow copy, then in
			// place.
			for _, inPlace := range []bool{false, true} {
				for _, cp := range copies {
					var extra []string
					if inPlace {
						extra = append(extra, "--in-place")
					}
					out := replayCLI(t, cfg, cp.sink, extra...)
					if strings.Contains(out, "did not send an unchanged TOASTed value") {
						t.Errorf("replay of %s reports unknown values:\n%s", cp.sink, tail([]byte(out), 2048))
					}
				}
				checkAll(fmt.Sprintf("replay (in place %v)", inPlace), 10*time.Second, nil)
			}

			// Backfill new databases from the log.
			pgNew := pgDB(t)
			myDSN2, myDB2, _ := mysqlSinkDB(t)
			litePath2 := filepath.Join(dir, "backfill.db")
			cfg2 := pgPipeline(t, le, src, prefix, slot, []string{"film"},
				"sinks:\n"+sinkYAML("", pgCopy, myDSN, myDB, litePath, "")+sinkYAML("_bf", pgNew, myDSN2, myDB2, litePath2, ""))
			for _, s := range []string{"_pg_bf", "_my_bf", "_lite_bf"} {
				out, code := runTrib(t, "backfill", "-f", cfg2, prefix+s)
				if code != 0 || !strings.Contains(out, "backfilled up to the head") {
					t.Fatalf("backfill %s: exit %d:\n%s", prefix+s, code, tail([]byte(out), 4096))
				}
			}
			pn := pgConn(t, pgNew)
			copies = copies[:0]
			copies = append(copies,
				struct {
					name string
					sink string
					read func() (map[int64]toastRow, error)
				}{"PostgreSQL (backfill)", prefix + "_pg_bf", toastPG(pn, "public.film")},
				struct {
					name string
					sink string
					read func() (map[int64]toastRow, error)
				}{"MariaDB (backfill)", prefix + "_my_bf", toastSQL(myConn, myDB2+".film")},
				struct {
					name string
					sink string
					read func() (map[int64]toastRow, error)
				}{"SQLite (backfill)", prefix + "_lite_bf", toastSQLite(litePath2)})
			checkAll("backfill", 10*time.Second, nil)

			// A sink started at the latest offset never saw the rows: an
			// update of another column cannot give it their large values.
			latePath := filepath.Join(dir, "late.db")
			late := prefix + "_late"
			cfg3 := pgPipeline(t, le, src, prefix, slot, []string{"film"}, fmt.Sprintf(`sinks:
  - name: %s
    type: sqlite
    path: %s
    topics: [%s]
    start: latest
    flush_interval: 20ms
`, late, latePath, topic))
			w = startWorker(t, le, cfg3)
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(w.output(), "consuming partitions") {
				if time.Now().After(deadline) {
					t.Fatalf("late sink never started consuming:\n%s", tail([]byte(w.output()), 4096))
				}
				time.Sleep(100 * time.Millisecond)
			}
			pgExec(t, c, "UPDATE film SET n = n + 100 WHERE id IN (1, 2, 3)")
			lateRows := func() (map[int64]toastRow, error) { return toastSQLite(latePath)() }
			deadline = time.Now().Add(time.Minute)
			for {
				got, err := lateRows()
				if err == nil && len(got) == 3 {
					for id, r := range got {
						if !strings.Contains(string(r), "body=<null> pic=<null> tags=<null> nums=<null>") || !strings.HasPrefix(string(r), "n=10") {
							t.Fatalf("late copy id %d: %q, want n=101.. and no large values (unknown, never the placeholder)", id, r)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("late copy: %v %v", got, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			metric := fmt.Sprintf(`tributary_sink_unavailable_values_total{column="body",sink="%s",table="public_film"} 3`, late)
			deadline = time.Now().Add(30 * time.Second)
			for {
				body := httpGet(t, "http://"+le.httpAddr+"/metrics")
				if strings.Contains(body, metric) {
					break
				}
				if time.Now().After(deadline) {
					re := regexp.MustCompile(`(?m)^tributary_sink_unavailable.*$`)
					t.Fatalf("metrics lack %s; have %q", metric, re.FindAllString(body, -1))
				}
				time.Sleep(200 * time.Millisecond)
			}
			if n := strings.Count(w.output(), "did not send an unchanged TOASTed value"); n != 1 {
				t.Fatalf("the unknown values are logged %d times, want once per table:\n%s", n, tail([]byte(w.output()), 4096))
			}
			w.stop(t)
		})
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

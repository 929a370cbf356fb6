package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// typedDDL is the source table of the three-target test: types whose copy
// must keep their value exactly (numeric, timestamptz, uuid, jsonb, int[]).
const typedDDL = `CREATE TABLE items (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	qty int NOT NULL,
	price numeric(10,2) NOT NULL,
	ts timestamptz NOT NULL,
	u uuid NOT NULL,
	doc jsonb,
	tags int[],
	note text)`

// typedCol says how a column's text is normalised so that values read from
// PostgreSQL, MariaDB and SQLite compare fairly.
type typedCol struct {
	name string
	kind string // int, text, dec2, ts, uuid, json
}

var typedCols = []typedCol{
	{"name", "text"}, {"qty", "int"}, {"price", "dec2"}, {"ts", "ts"}, {"u", "uuid"},
	{"doc", "json"}, {"tags", "json"}, {"note", "text"}, {"extra", "int"},
}

// normValue brings one column's text to a database-independent form.
func normValue(kind string, v sql.NullString) (string, error) {
	if !v.Valid {
		return "<null>", nil
	}
	s := v.String
	switch kind {
	case "int":
		n, err := strconv.ParseInt(s, 10, 64)
		return strconv.FormatInt(n, 10), err
	case "dec2":
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return "", fmt.Errorf("not a decimal: %q", s)
		}
		return r.FloatString(2), nil
	case "ts":
		for _, layout := range []string{"2006-01-02T15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05.999999Z07:00", "2006-01-02 15:04:05.999999"} {
			if tm, err := time.Parse(layout, s); err == nil {
				return strconv.FormatInt(tm.UTC().UnixMicro(), 10), nil
			}
		}
		return "", fmt.Errorf("not a timestamp: %q", s)
	case "uuid":
		return strings.ToLower(s), nil
	case "json":
		var x any
		if err := json.Unmarshal([]byte(s), &x); err != nil {
			return "", fmt.Errorf("not JSON: %q: %w", s, err)
		}
		b, err := json.Marshal(x) // map keys sorted: a canonical form
		return string(b), err
	}
	return s, nil
}

// rowsQuerier is what *sql.DB and a pgx adapter both offer.
type rowsQuerier func(q string) (ids []int64, vals [][]sql.NullString, err error)

func sqlQuerier(db *sql.DB) rowsQuerier {
	return func(q string) ([]int64, [][]sql.NullString, error) {
		rows, err := db.Query(q)
		if err != nil {
			return nil, nil, err
		}
		defer rows.Close()
		var ids []int64
		var vals [][]sql.NullString
		for rows.Next() {
			var id int64
			v := make([]sql.NullString, len(typedCols))
			dst := []any{&id}
			for i := range v {
				dst = append(dst, &v[i])
			}
			if err := rows.Scan(dst...); err != nil {
				return nil, nil, err
			}
			ids, vals = append(ids, id), append(vals, v)
		}
		return ids, vals, rows.Err()
	}
}

func pgQuerier(c *pgx.Conn) rowsQuerier {
	return func(q string) ([]int64, [][]sql.NullString, error) {
		rows, err := c.Query(context.Background(), q)
		if err != nil {
			return nil, nil, err
		}
		defer rows.Close()
		var ids []int64
		var vals [][]sql.NullString
		for rows.Next() {
			var id int64
			v := make([]sql.NullString, len(typedCols))
			dst := []any{&id}
			for i := range v {
				dst = append(dst, &v[i])
			}
			if err := rows.Scan(dst...); err != nil {
				return nil, nil, err
			}
			ids, vals = append(ids, id), append(vals, v)
		}
		return ids, vals, rows.Err()
	}
}

// Per-database queries returning id and the typedCols as text.
const (
	pgTypedQuery = `SELECT id, name, qty::text, price::text,
		to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), u::text, doc::text,
		array_to_json(tags)::text, note, extra::text FROM %s`
	mysqlTypedQuery = `SELECT id, name, CAST(qty AS CHAR), CAST(price AS CHAR),
		DATE_FORMAT(ts, '%%Y-%%m-%%dT%%H:%%i:%%s.%%f'), u, CAST(doc AS CHAR), CAST(tags AS CHAR),
		note, CAST(extra AS CHAR) FROM %s`
	sqliteTypedQuery = `SELECT id, name, CAST(qty AS TEXT), CAST(price AS TEXT), ts, u, doc, tags,
		note, CAST(extra AS TEXT) FROM %s`
)

// typedState reads a table as id -> normalised row.
func typedState(q rowsQuerier, query string) (map[int64]string, error) {
	ids, vals, err := q(query)
	if err != nil {
		return nil, err
	}
	st := make(map[int64]string, len(ids))
	for i, id := range ids {
		parts := make([]string, len(typedCols))
		for j, c := range typedCols {
			s, err := normValue(c.kind, vals[i][j])
			if err != nil {
				return nil, fmt.Errorf("id %d column %s: %w", id, c.name, err)
			}
			parts[j] = s
		}
		st[id] = strings.Join(parts, "|")
	}
	return st, nil
}

// waitCopy polls a copy until it equals want.
func waitCopy(t *testing.T, what string, want map[int64]string, read func() (map[int64]string, error), within time.Duration, w *proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := "copy not readable yet"
	for time.Now().Before(deadline) {
		if w != nil && w.exited() {
			t.Fatalf("worker exited while the %s copy converged: %v\n%s", what, w.err, tail([]byte(w.output()), 4096))
		}
		got, err := read()
		if err != nil {
			last = err.Error()
		} else if sameState(want, got) {
			return
		} else {
			last = copyDiff(want, got)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s copy did not converge within %v: %s", what, within, last)
}

// typedWriter runs inserts, updates and deletes on the typed items table;
// once extra is set it also fills the column added mid-stream.
type typedWriter struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	ops   atomic.Int64
	extra atomic.Bool
	next  atomic.Int64
}

func startTypedWriter(t *testing.T, dbURL string, firstID int64) *typedWriter {
	w := &typedWriter{stop: make(chan struct{})}
	w.next.Store(firstID)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("writer: %v", err)
			return
		}
		defer c.Close(ctx)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			var q string
			var args []any
			next := w.next.Load()
			switch r := rand.IntN(10); {
			case r < 5:
				ts := time.Date(2020+rand.IntN(5), time.Month(1+rand.IntN(12)), 1+rand.IntN(28), rand.IntN(24), rand.IntN(60), rand.IntN(60), rand.IntN(1e6)*1000, time.UTC)
				doc := fmt.Sprintf(`{"k": %d, "s": "v%d", "nested": {"a": [1, 2, %d]}}`, i, i, i)
				tags := []int32{int32(i), int32(rand.IntN(100))}
				if w.extra.Load() {
					q, args = "INSERT INTO items (id, name, qty, price, ts, u, doc, tags, note, extra) VALUES ($1, $2, $3, $4, $5, gen_random_uuid(), $6, $7, NULL, $8)",
						[]any{next, fmt.Sprintf("new%d", next), rand.IntN(100), fmt.Sprintf("%d.%02d", rand.IntN(100000), rand.IntN(100)), ts, doc, tags, i}
				} else {
					q, args = "INSERT INTO items (id, name, qty, price, ts, u, doc, tags, note) VALUES ($1, $2, $3, $4, $5, gen_random_uuid(), $6, $7, NULL)",
						[]any{next, fmt.Sprintf("new%d", next), rand.IntN(100), fmt.Sprintf("%d.%02d", rand.IntN(100000), rand.IntN(100)), ts, doc, tags}
				}
				w.next.Add(1)
			case r < 8:
				if w.extra.Load() {
					q, args = "UPDATE items SET qty = qty + 1, price = price + 0.01, note = $2, ts = ts + interval '1 second', extra = coalesce(extra, 0) + 1 WHERE id = $1", []any{1 + rand.Int64N(next-1), fmt.Sprintf("u%d", i)}
				} else {
					q, args = "UPDATE items SET qty = qty + 1, price = price + 0.01, note = $2, ts = ts + interval '1 second' WHERE id = $1", []any{1 + rand.Int64N(next-1), fmt.Sprintf("u%d", i)}
				}
			default:
				q, args = "DELETE FROM items WHERE id = $1", []any{1 + rand.Int64N(next-1)}
			}
			if _, err := c.Exec(ctx, q, args...); err != nil {
				t.Errorf("writer: %s: %v", q, err)
				return
			}
			w.ops.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *typedWriter) halt() int64 {
	close(w.stop)
	w.wg.Wait()
	return w.ops.Load()
}

// mysqlSinkDB creates a MariaDB database for a copy and returns its DSN.
func mysqlSinkDB(t *testing.T) (dsn, db string, conn *sql.DB) {
	t.Helper()
	base := env(t, "TRIBUTARY_TEST_MYSQL_URL")
	c := mysqlOpen(t, base)
	db = uniq("copy")
	mustExecDB(t, c, "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = c.Exec("DROP DATABASE IF EXISTS " + db) })
	return base + db, db, c
}

// TestSinkPGToAllTargets: one pipeline copies a PostgreSQL table into
// PostgreSQL, MariaDB and SQLite while inserts, updates, deletes, a TRUNCATE
// and an ALTER TABLE ADD COLUMN run; every copy converges to the source, and
// the PostgreSQL copy has the source's native types.
func TestSinkPGToAllTargets(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			src := pgDB(t)
			c := pgConn(t, src)
			pgExec(t, c, typedDDL)
			pgExec(t, c, `INSERT INTO items SELECT g, 'item'||g, g % 17, (g * 1.25)::numeric(10,2),
				timestamptz '2024-02-29 23:59:59.123456+05:30' + g * interval '1 minute', gen_random_uuid(),
				jsonb_build_object('g', g, 'arr', jsonb_build_array(g, 'x')), ARRAY[g::int, 2, 3],
				CASE WHEN g % 3 = 0 THEN NULL ELSE 'n'||g END FROM generate_series(1, 300) g`)

			pgCopy := pgDB(t)
			myDSN, myDB, myConn := mysqlSinkDB(t)
			sqlitePath := filepath.Join(t.TempDir(), "copy.db")
			prefix, slot := uniq("tgt"), uniq("slot")
			topic := prefix + ".public.items"
			sinks := fmt.Sprintf(`sinks:
  - name: %[1]s_pg
    type: postgres
    url: %[2]s
    topics: [%[3]s]
    batch_size: 100
    flush_interval: 20ms
  - name: %[1]s_my
    type: mysql
    dsn: %[4]s
    topics: [%[3]s]
    table_name_format: %[5]s.$${source.table}
    batch_size: 100
    flush_interval: 20ms
  - name: %[1]s_lite
    type: sqlite
    path: %[6]s
    topics: [%[3]s]
    batch_size: 100
    flush_interval: 20ms
`, prefix, pgCopy, topic, myDSN, myDB, sqlitePath)
			cfg := pgPipeline(t, le, src, prefix, slot, []string{"items"}, sinks)
			w := startWorker(t, le, cfg)

			wr := startTypedWriter(t, src, 301)
			time.Sleep(2 * time.Second)
			pgExec(t, c, "TRUNCATE items")
			time.Sleep(1500 * time.Millisecond)
			pgExec(t, c, "ALTER TABLE items ADD COLUMN extra int")
			wr.extra.Store(true)
			time.Sleep(2 * time.Second)
			ops := wr.halt()
			if ops < 100 {
				t.Fatalf("writer too slow to test anything: %d operations", ops)
			}
			// Rows written after the ALTER use the new column for sure.
			pgExec(t, c, "UPDATE items SET extra = id * 7 WHERE id % 2 = 0")

			want, err := typedState(pgQuerier(c), fmt.Sprintf(pgTypedQuery, "items"))
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatal("source is empty after the workload; nothing to compare")
			}
			withExtra := 0
			for _, v := range want {
				if !strings.HasSuffix(v, "|<null>") {
					withExtra++
				}
			}
			if withExtra == 0 {
				t.Fatal("no source row uses the column added mid-stream")
			}

			pc := pgConn(t, pgCopy)
			waitCopy(t, "PostgreSQL", want, func() (map[int64]string, error) {
				return typedState(pgQuerier(pc), fmt.Sprintf(pgTypedQuery, "public.items"))
			}, 3*time.Minute, w)
			waitCopy(t, "MariaDB", want, func() (map[int64]string, error) {
				return typedState(sqlQuerier(myConn), fmt.Sprintf(mysqlTypedQuery, myDB+".items"))
			}, 3*time.Minute, w)
			sq := openSQLite(t, sqlitePath)
			waitCopy(t, "SQLite", want, func() (map[int64]string, error) {
				return typedState(sqlQuerier(sq), fmt.Sprintf(sqliteTypedQuery, "public_items"))
			}, 3*time.Minute, w)

			// PostgreSQL to PostgreSQL keeps the native types.
			wantTypes := pgColumnTypes(t, c, "public", "items")
			gotTypes := pgColumnTypes(t, pc, "public", "items")
			for col, ty := range wantTypes {
				if gotTypes[col] != ty {
					t.Errorf("PostgreSQL copy column %s is %q, source %q", col, gotTypes[col], ty)
				}
			}
			for _, must := range []string{"price numeric(10,2)", "ts timestamp with time zone", "u uuid", "doc jsonb", "tags ARRAY _int4"} {
				col, _, _ := strings.Cut(must, " ")
				if got := col + " " + gotTypes[col]; got != must {
					t.Errorf("PostgreSQL copy: %s, want %s", got, must)
				}
			}
			var pk string
			if err := pc.QueryRow(context.Background(), `SELECT string_agg(a.attname, ',') FROM pg_index i
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
				WHERE i.indrelid = 'public.items'::regclass AND i.indisprimary`).Scan(&pk); err != nil || pk != "id" {
				t.Errorf("PostgreSQL copy primary key %q (err %v), want id", pk, err)
			}
			// MariaDB gets the closest faithful types.
			myTypes := map[string]string{}
			rows, err := myConn.Query("SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = ? AND table_name = 'items'", myDB)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n, ty string
				if err := rows.Scan(&n, &ty); err != nil {
					t.Fatal(err)
				}
				myTypes[n] = ty
			}
			rows.Close()
			for col, ty := range map[string]string{"price": "decimal(10,2)", "ts": "datetime(6)", "u": "char(36)", "id": "bigint(20)"} {
				if myTypes[col] != ty {
					t.Errorf("MariaDB copy column %s is %q, want %q (all: %v)", col, myTypes[col], ty, myTypes)
				}
			}

			checkPGOffsets(t, pc, prefix+"_pg", topic)
			w.stop(t)
			t.Logf("%d concurrent operations (with TRUNCATE and ADD COLUMN); three copies equal the source (%d rows, %d with the new column)", ops, len(want), withExtra)
		})
	}
}

// pgColumnTypes is column -> "data_type[(p,s)] udt" of a table.
func pgColumnTypes(t *testing.T, c *pgx.Conn, schemaName, table string) map[string]string {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT column_name,
		CASE WHEN data_type = 'numeric' THEN format('numeric(%s,%s)', numeric_precision, numeric_scale)
		     WHEN data_type = 'ARRAY' THEN 'ARRAY ' || udt_name
		     ELSE data_type END
		FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, schemaName, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		m[n] = ty
	}
	if len(m) == 0 {
		t.Fatalf("table %s.%s has no columns", schemaName, table)
	}
	return m
}

// checkPGOffsets asserts the PostgreSQL copy stored the topic's position
// and that it is the end of the topic.
func checkPGOffsets(t *testing.T, c *pgx.Conn, sinkName, topic string) {
	t.Helper()
	var n int
	var next int64
	if err := c.QueryRow(context.Background(), "SELECT count(*), coalesce(max(next_offset), 0) FROM tributary_offsets WHERE sink_name = $1 AND topic = $2 AND kafka_partition >= 0",
		sinkName, topic).Scan(&n, &next); err != nil {
		t.Fatalf("reading tributary_offsets: %v", err)
	}
	if n == 0 || next <= 0 {
		t.Fatalf("tributary_offsets has %d rows for %s/%s (next_offset %d)", n, sinkName, topic, next)
	}
}

// TestSinkBadTargets: a target the sink cannot use stops the worker with a
// non-zero exit and an error naming the target, never its password.
func TestSinkBadTargets(t *testing.T) {
	const secret = "s3cr3t-Pw-9"
	sinkOnly := func(t *testing.T, le *logEnv, sinkYAML string) string {
		return writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+"sinks:\n"+sinkYAML)
	}
	t.Run("unreachable_postgres", func(t *testing.T) {
		le := newLogEnv(t, modes[0])
		port := freePort(t)
		cfg := sinkOnly(t, le, fmt.Sprintf("  - name: pgdown\n    type: postgres\n    url: postgres://copier:%s@127.0.0.1:%d/copy?sslmode=disable\n    topics: [x.public.items]\n", secret, port))
		out := runExpectFailure(t, 0, []string{"pgdown", fmt.Sprintf("127.0.0.1:%d", port)}, "run", "-f", cfg)
		if strings.Contains(out, secret) {
			t.Fatalf("output reveals the password:\n%s", out)
		}
	})
	t.Run("unreachable_mysql", func(t *testing.T) {
		le := newLogEnv(t, modes[0])
		port := freePort(t)
		cfg := sinkOnly(t, le, fmt.Sprintf("  - name: mydown\n    type: mysql\n    dsn: copier:%s@tcp(127.0.0.1:%d)/copy\n    topics: [x.public.items]\n", secret, port))
		out := runExpectFailure(t, 0, []string{"mydown", fmt.Sprintf("127.0.0.1:%d", port)}, "run", "-f", cfg)
		if strings.Contains(out, secret) {
			t.Fatalf("output reveals the password:\n%s", out)
		}
	})
	t.Run("postgres_no_create", func(t *testing.T) {
		// The role may write its offsets (in a schema it owns) but may not
		// create the copy's table in public: the first batch fails, naming
		// the table and the missing privilege.
		le, copyURL, topic := usersSinkSetup(t)
		admin := pgConn(t, copyURL)
		role := uniq("copier")
		pgExec(t, admin, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, secret))
		t.Cleanup(func() {
			c, err := pgx.Connect(context.Background(), copyURL)
			if err == nil {
				defer c.Close(context.Background())
				_, _ = c.Exec(context.Background(), "DROP OWNED BY "+role)
			}
			base, err := pgx.Connect(context.Background(), env(t, "TRIBUTARY_TEST_PG_URL"))
			if err == nil {
				defer base.Close(context.Background())
				// The database is dropped by pgDB's cleanup, registered earlier, so later.
				_, _ = base.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			}
		})
		pgExec(t, admin, fmt.Sprintf("CREATE SCHEMA offs AUTHORIZATION %s", role))
		pgExec(t, admin, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
		pgExec(t, admin, fmt.Sprintf("GRANT USAGE ON SCHEMA public TO %s", role))
		roleURL := strings.Replace(copyURL, "postgres:postgres@", role+":"+secret+"@", 1)
		cfg := sinkOnly(t, le, fmt.Sprintf("  - name: noperm\n    type: postgres\n    url: %s\n    offsets_schema: offs\n    topics: [%s]\n    table_name_format: public.$${source.table}\n    topic_refresh_interval: 300ms\n", roleURL, topic))
		w := startWorker(t, le, cfg)
		p := usersProducer(t, le, topic)
		p.send(topic, userCreate(p, topic, 1, "a"))
		if code := w.exitCode(t, time.Minute); code == 0 {
			t.Fatalf("worker exited 0 without permission to create the table:\n%s", w.output())
		}
		out := w.output()
		for _, want := range []string{"noperm", "public.users", "permission denied"} {
			if !strings.Contains(out, want) {
				t.Errorf("worker output lacks %q:\n%s", want, tail([]byte(out), 4096))
			}
		}
		if strings.Contains(out, secret) {
			t.Fatalf("output reveals the password:\n%s", out)
		}
	})
}

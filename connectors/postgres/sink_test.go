package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tributary-cdc/tributary/connectors/postgres"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

// sinkTestDB creates a fresh database on TRIBUTARY_TEST_PG_URL, dropped at
// the end of the test, and returns its URL and a connection to it.
func sinkTestDB(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	raw := os.Getenv("TRIBUTARY_TEST_PG_URL")
	if raw == "" {
		t.Fatal("TRIBUTARY_TEST_PG_URL is not set: run the tests with `make test`, which starts PostgreSQL and exports it")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatalf("connecting to TRIBUTARY_TEST_PG_URL: %v", err)
	}
	db := fmt.Sprintf("tributary_sink_%x", time.Now().UnixNano()&0xffffffffffff)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("creating database %s: %v", db, err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close(context.Background())
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	return u.String(), conn
}

type sinkPGHarness struct {
	url  string
	conn *pgx.Conn
	// postgis is set when the database has the PostGIS extension.
	postgis bool
}

func (h *sinkPGHarness) NewTarget(t *testing.T) sink.Target {
	return postgres.NewSinkTarget("conformance", postgres.SinkConfig{URL: h.url}, sinktest.Logger())
}
func (h *sinkPGHarness) TableNameFormat() string { return "${source.schema}.${source.table}" }
func (h *sinkPGHarness) Table(schema, table string) string {
	return pgx.Identifier{schema, table}.Sanitize()
}
func (h *sinkPGHarness) OffsetsTable() string   { return "public." + sink.OffsetsTable }
func (h *sinkPGHarness) Text(col string) string { return pgx.Identifier{col}.Sanitize() + "::text" }
func (h *sinkPGHarness) WKBHex(col string) string {
	if h.postgis {
		return "encode(ST_AsBinary(" + pgx.Identifier{col}.Sanitize() + "), 'hex')"
	}
	return "encode(" + pgx.Identifier{col}.Sanitize() + ", 'hex')" // bytea
}
func (h *sinkPGHarness) CreateNamespace(t *testing.T, schema string) {
	h.Exec(t, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
}

func (h *sinkPGHarness) Query(t *testing.T, q string) []string {
	t.Helper()
	rows, err := h.conn.Query(context.Background(), q)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		return nil // the sink has not created the table yet
	}
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		if errors.As(err, &pe) && pe.Code == "42P01" {
			return nil
		}
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func (h *sinkPGHarness) Exec(t *testing.T, q string) {
	t.Helper()
	if _, err := h.conn.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (h *sinkPGHarness) Nullable(t *testing.T, schema, table, col string) bool {
	t.Helper()
	var nullable string
	err := h.conn.QueryRow(context.Background(), `SELECT is_nullable FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`, schema, table, col).Scan(&nullable)
	if err != nil {
		t.Fatalf("column %s of %s.%s: %v", col, schema, table, err)
	}
	return nullable == "YES"
}

// TestSinkShapePostGIS: with PostGIS installed in the target database a
// Debezium Geometry becomes a PostGIS geometry that keeps its SRID.
func TestSinkShapePostGIS(t *testing.T) {
	url, conn := sinkTestDB(t)
	if _, err := conn.Exec(context.Background(), "CREATE EXTENSION postgis"); err != nil {
		t.Fatalf("creating the PostGIS extension (integration/services/up.sh installs postgresql-15-postgis-3): %v", err)
	}
	h := &sinkPGHarness{url: url, conn: conn, postgis: true}
	sinktest.Shape(t, h)
	var nsp, typ string
	if err := conn.QueryRow(context.Background(), `SELECT n.nspname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = 'My Table "quoted"' AND a.attname = 'geom'`).Scan(&nsp, &typ); err != nil || typ != "geometry" {
		t.Fatalf("geometry column is %q (err %v), want geometry", typ, err)
	}
	var srid int
	var text string
	if err := conn.QueryRow(context.Background(), "SELECT ST_SRID(geom), ST_AsText(geom) FROM "+pgx.Identifier{nsp, `My Table "quoted"`}.Sanitize()+" WHERE id = 3").Scan(&srid, &text); err != nil || srid != 4326 || text != "POINT(1 2)" {
		t.Errorf("geometry of row 3: SRID %d, %s (err %v); want 4326, POINT(1 2)", srid, text, err)
	}
}

func TestSinkTypeChangeStops(t *testing.T) {
	url, conn := sinkTestDB(t)
	sinktest.TypeChangeStops(t, &sinkPGHarness{url: url, conn: conn})
}

func TestSinkConformance(t *testing.T) {
	u, conn := sinkTestDB(t)
	sinktest.Conformance(t, &sinkPGHarness{url: u, conn: conn})
}

// TestSinkNativeTypes replays PostgreSQL events into PostgreSQL: every
// column is recreated with its source type, and every value reads back
// equal to the source's text form.
func TestSinkNativeTypes(t *testing.T) {
	u, conn := sinkTestDB(t)
	h := &sinkPGHarness{url: u, conn: conn}
	cluster := sinktest.NewCluster(t)
	reg := sinktest.NewRegistry()
	reg.Unwrap = true
	topic := "pg.inv.all_types"
	type col struct {
		c        sinktest.Col
		value    any
		wantType string
		wantText string
	}
	ts := time.Date(2016, 11, 4, 13, 51, 30, 123456000, time.UTC)
	cols := []col{
		{sinktest.Col{Name: "id", Type: sinktest.Int32("INT4", "10", "0")}, 1, "integer", "1"},
		{sinktest.Col{Name: "c_int2", Type: sinktest.Int16("INT2", "5", "0"), Optional: true}, -32768, "smallint", "-32768"},
		{sinktest.Col{Name: "c_int8", Type: sinktest.Int64("INT8", "19", "0"), Optional: true}, int64(-9223372036854775808), "bigint", "-9223372036854775808"},
		{sinktest.Col{Name: "c_float8", Type: sinktest.Float64("FLOAT8", "17", "17"), Optional: true}, 3.141592653589793, "double precision", "3.141592653589793"},
		{sinktest.Col{Name: "c_bool", Type: sinktest.Boolean("BOOL", "1", "0"), Optional: true}, true, "boolean", "true"},
		{sinktest.Col{Name: "c_num", Type: sinktest.Decimal(10, 2, "NUMERIC", "10", "2"), Optional: true}, sinktest.Dec("-1234.50"), "numeric(10,2)", "-1234.50"},
		{sinktest.Col{Name: "c_numv", Type: sinktest.VariableScaleDecimal("NUMERIC", "131089", "0"), Optional: true}, sinktest.VarDec(1500, 3), "numeric", "1.500"},
		{sinktest.Col{Name: "c_varchar", Type: sinktest.String("VARCHAR", "20", "0"), Optional: true}, "abc", "character varying(20)", "abc"},
		{sinktest.Col{Name: "c_bpchar", Type: sinktest.String("BPCHAR", "5", "0"), Optional: true}, "ab   ", "character(5)", "ab"},
		{sinktest.Col{Name: "c_text", Type: sinktest.String("TEXT"), Optional: true}, "h\u00e9llo\tworld\\back\nline", "text", "h\u00e9llo\tworld\\back\nline"},
		{sinktest.Col{Name: "c_date", Type: sinktest.Date("DATE"), Optional: true}, 19724, "date", "2024-01-02"},
		{sinktest.Col{Name: "c_time", Type: sinktest.MicroTime("TIME"), Optional: true}, int64(49890123456), "time without time zone", "13:51:30.123456"},
		{sinktest.Col{Name: "c_ts", Type: sinktest.MicroTimestamp("TIMESTAMP"), Optional: true}, sinktest.Micros(ts), "timestamp without time zone", "2016-11-04 13:51:30.123456"},
		{sinktest.Col{Name: "c_ts_inf", Type: sinktest.MicroTimestamp("TIMESTAMP"), Optional: true}, int64(9223372036825200000), "timestamp without time zone", "infinity"},
		{sinktest.Col{Name: "c_tstz", Type: sinktest.ZonedTimestamp("TIMESTAMPTZ"), Optional: true}, "2016-11-04T11:51:30.123456Z", "timestamp with time zone", "2016-11-04 11:51:30.123456+00"},
		{sinktest.Col{Name: "c_interval", Type: sinktest.MicroDuration("INTERVAL"), Optional: true}, int64(86_400_000_000 + 1_500_000), "interval", "24:00:01.5"},
		{sinktest.Col{Name: "c_uuid", Type: sinktest.UUID("UUID"), Optional: true}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{sinktest.Col{Name: "c_jsonb", Type: sinktest.JSON("JSONB"), Optional: true}, `{"bar": "baz"}`, "jsonb", `{"bar": "baz"}`},
		{sinktest.Col{Name: "c_bytea", Type: sinktest.Bytes("BYTEA"), Optional: true}, []byte{1, 2, 255}, "bytea", `\x0102ff`},
		{sinktest.Col{Name: "c_bit", Type: sinktest.Bits(10, "BIT", "10"), Optional: true}, []byte{0x00, 0x02}, "bit(10)", "1000000000"},
		{sinktest.Col{Name: "c_inet", Type: sinktest.String("INET"), Optional: true}, "192.168.2.0/12", "inet", "192.168.2.0/12"},
		{sinktest.Col{Name: "c_enum", Type: sinktest.Enum("sad,ok,happy", "MOOD"), Optional: true}, "happy", "text", "happy"},
		{sinktest.Col{Name: "c_int4a", Type: sinktest.Array(sinktest.Int32(), "_INT4"), Optional: true}, []any{1, nil, 3}, "integer[]", "{1,NULL,3}"},
		{sinktest.Col{Name: "c_texta", Type: sinktest.Array(sinktest.String(), "_TEXT"), Optional: true},
			[]any{"one", "two words", `with "quote"`, `back\slash`, nil, "NULL", ""}, "text[]", `{one,"two words","with \"quote\"","back\\slash",NULL,"NULL",""}`},
		{sinktest.Col{Name: "c_numa", Type: sinktest.Array(sinktest.Decimal(10, 2), "_NUMERIC", "10", "2"), Optional: true}, []any{sinktest.Dec("1.2"), sinktest.Dec("3.4")}, "numeric(10,2)[]", "{1.20,3.40}"},
	}
	var tcols []sinktest.Col
	row := map[string]any{}
	for _, c := range cols {
		tcols = append(tcols, c.c)
		row[c.c.Name] = c.value
	}
	enc, err := sinktest.NewEncoder(reg, &sinktest.Table{Topic: topic, DB: "inv", Schema: "inv", Name: "all_types", Columns: tcols, Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := enc.Record("r", nil, row)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := enc.Record("c", nil, map[string]any{"id": 2}) // all NULL
	if err != nil {
		t.Fatal(err)
	}
	cluster.Produce(context.Background(), t, r1, r2)
	spec := sink.DefaultSpec()
	spec.Name, spec.Topics, spec.FlushInterval = "types", []string{topic}, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, spec, h.NewTarget(t), sink.Deps{NewClient: cluster.NewClient, Decoder: reg, Logger: sinktest.Logger()})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for len(h.Query(t, "SELECT next_offset FROM public.tributary_offsets WHERE sink_name = 'types' AND next_offset = 2")) == 0 {
		select {
		case err := <-done:
			t.Fatalf("sink stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("rows not applied within 60s")
		}
		time.Sleep(25 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		var typ string
		var text, null *string
		err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT format_type(a.atttypid, a.atttypmod),
			(SELECT %[1]s::text FROM inv.all_types WHERE id = 1), (SELECT %[1]s::text FROM inv.all_types WHERE id = 2)
			FROM pg_attribute a WHERE a.attrelid = 'inv.all_types'::regclass AND a.attname = $1`, pgx.Identifier{c.c.Name}.Sanitize()), c.c.Name).Scan(&typ, &text, &null)
		if err != nil {
			t.Fatalf("%s: %v", c.c.Name, err)
		}
		if typ != c.wantType {
			t.Errorf("%s: type %q, want %q", c.c.Name, typ, c.wantType)
		}
		if text == nil || *text != c.wantText {
			t.Errorf("%s: value %v, want %q", c.c.Name, deref(text), c.wantText)
		}
		if c.c.Name != "id" && null != nil {
			t.Errorf("%s: null row has %q", c.c.Name, *null)
		}
	}
	var pk string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(a.attname, ',') FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = 'inv.all_types'::regclass AND i.indisprimary`).Scan(&pk); err != nil || pk != "id" {
		t.Fatalf("primary key = %q, %v", pk, err)
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func TestSinkBadTarget(t *testing.T) {
	u, conn := sinkTestDB(t)
	ctx := context.Background()

	// Unreachable: the error names where, never the password.
	bad := postgres.NewSinkTarget("s", postgres.SinkConfig{URL: "postgres://app:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}, nil)
	err := bad.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1/x") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unreachable target: %v", err)
	}

	// A user who may not create tables.
	role := fmt.Sprintf("sink_ro_%x", time.Now().UnixNano()&0xffffff)
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'pw'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	pu, _ := url.Parse(u)
	pu.User = url.UserPassword(role, "pw")
	ro := postgres.NewSinkTarget("s", postgres.SinkConfig{URL: pu.String()}, nil)
	err = ro.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "tributary_offsets") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("no CREATE on public: %v", err)
	}
	ro.Close()
	// With the offsets table allowed but no right to create a schema.
	if _, err := conn.Exec(ctx, "GRANT CREATE ON SCHEMA public TO "+role); err != nil {
		t.Fatal(err)
	}
	ro = postgres.NewSinkTarget("s", postgres.SinkConfig{URL: pu.String()}, nil)
	if err := ro.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	id := &sink.ColumnSpec{Name: "id", Type: sink.ColumnType{Kind: sink.KindInt32}, Key: true}
	err = ro.EnsureTable(ctx, &sink.TableSpec{Schema: "sales", Name: "orders", Columns: []*sink.ColumnSpec{id}, Key: []*sink.ColumnSpec{id}})
	if err == nil || !strings.Contains(err.Error(), "sales") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("no CREATE on the database: %v", err)
	}
}

func TestSinkConfigValidate(t *testing.T) {
	d, ok := sink.Lookup("postgres")
	if !ok {
		t.Fatal("postgres sink not registered")
	}
	cfg := d.NewConfig().(*postgres.SinkConfig)
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "url:") {
		t.Fatalf("missing url: %v", err)
	}
	cfg.URL = "postgres://u:topsecret@host:notaport/db"
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("bad url: %v", err)
	}
}

// BenchmarkSinkApply compares the sink's apply path (staging COPY + merge,
// in batches of 5000 with offsets) against a bare COPY of the same rows
// into an empty table, on TRIBUTARY_TEST_PG_URL.
func BenchmarkSinkApply(b *testing.B) {
	raw := os.Getenv("TRIBUTARY_TEST_PG_URL")
	if raw == "" {
		b.Fatal("TRIBUTARY_TEST_PG_URL is not set: run `make bench`")
	}
	ctx := context.Background()
	tg := postgres.NewSinkTarget("bench", postgres.SinkConfig{URL: raw}, sinktest.Logger())
	if err := tg.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	schemaName := fmt.Sprintf("bench_%x", time.Now().UnixNano()&0xffffff)
	defer tg.Conn().Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schemaName+" CASCADE")
	id := &sink.ColumnSpec{Name: "id", Type: sink.ColumnType{Kind: sink.KindInt64}, Key: true}
	cols := []*sink.ColumnSpec{id,
		{Name: "name", Type: sink.ColumnType{Kind: sink.KindString}},
		{Name: "amount", Type: sink.ColumnType{Kind: sink.KindDecimal, Precision: 12, DecimalScale: 2}},
		{Name: "at", Type: sink.ColumnType{Kind: sink.KindTimestamp}},
		{Name: "note", Type: sink.ColumnType{Kind: sink.KindString}, Optional: true},
	}
	spec := &sink.TableSpec{Schema: schemaName, Name: "rows", Columns: cols, Key: []*sink.ColumnSpec{id}}
	if err := tg.EnsureTable(ctx, spec); err != nil {
		b.Fatal(err)
	}
	cs := &sink.ColSet{Columns: cols}
	now := time.Now().UTC()
	row := func(i int) []any {
		return []any{int64(i), fmt.Sprintf("name-%d", i), "1234.56", now, "a note of about fifty bytes, give or take a few"}
	}
	const batch = 5000
	b.Run("sink", func(b *testing.B) {
		if _, err := tg.Conn().Exec(ctx, "TRUNCATE "+schemaName+".rows"); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			n := min(batch, b.N-i)
			changes := make([]sink.Change, n)
			for j := range changes {
				r := row(i + j)
				changes[j] = sink.Change{Op: sink.OpUpsert, Key: r[:1], Cols: cs, Row: r}
			}
			tx, err := tg.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := tx.Apply(ctx, spec, changes); err != nil {
				b.Fatal(err)
			}
			if err := tx.StoreOffsets(ctx, "bench", map[sink.TopicPartition]int64{{Topic: "t", Partition: 0}: int64(i + n)}); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("copy", func(b *testing.B) {
		conn := tg.Conn()
		tbl := schemaName + ".bare"
		if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+tbl+" (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamp, note text); TRUNCATE "+tbl); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			n := min(batch, b.N-i)
			rows := make([][]any, n)
			for j := range rows {
				r := row(i + j)
				rows[j] = []any{r[0], r[1], r[2], r[3], r[4]}
			}
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{schemaName, "bare"}, []string{"id", "name", "amount", "at", "note"}, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	pgxtype "github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// The expressions are what pg_get_expr prints for these defaults on
// PostgreSQL 15 (see TestIntegrationColumnDefaults for the real thing).
func TestPGColumnDefaults(t *testing.T) {
	const moodOID = 90001
	const posintOID = 90002
	cat := pgtypeMapCatalog{
		moodOID:   {Name: "mood", Type: 'e', EnumLabels: []string{"sad", "happy"}},
		posintOID: {Name: "posint", Type: 'd', BaseOID: pgxtype.Int4OID, BaseTypmod: -1},
	}
	numeric := func(p, s int32) int32 { return (p<<16 | s) + 4 }
	cases := []struct {
		oid    uint32
		typmod int32
		expr   string
		want   any
		reason string
	}{
		{pgxtype.Int4OID, -1, "7", int32(7), ""},
		{pgxtype.Int4OID, -1, "'-3'::integer", int32(-3), ""},
		{pgxtype.Int2OID, -1, "'-3'::smallint", int32(-3), ""},
		{pgxtype.Int8OID, -1, "'9223372036854775807'::bigint", int64(9223372036854775807), ""},
		{pgxtype.NumericOID, numeric(10, 2), "1.5", schema.DecimalBytes(big.NewInt(150)), ""},
		{pgxtype.NumericOID, numeric(10, 2), "'-2.25'::numeric", schema.DecimalBytes(big.NewInt(-225)), ""},
		{pgxtype.TextOID, -1, "'it''s'::text", "it's", ""},
		{pgxtype.TextOID, -1, "''::text", "", ""},
		{pgxtype.TextOID, -1, `'back\slash'::text`, `back\slash`, ""},
		{pgxtype.VarcharOID, 14, "'abc'::character varying", "abc", ""},
		{pgxtype.BPCharOID, 9, "'ab'::bpchar", "ab", ""},
		{pgxtype.BoolOID, -1, "true", true, ""},
		{pgxtype.BoolOID, -1, "false", false, ""},
		{pgxtype.Float4OID, -1, "'-15000000000'::numeric", float32(-1.5e10), ""},
		{pgxtype.Float8OID, -1, "1.25", 1.25, ""},
		{pgxtype.DateOID, -1, "'2020-02-03'::date", int32(18295), ""},
		{pgxtype.TimestampOID, -1, "'2020-01-01 10:00:00.5'::timestamp without time zone", int64(1577872800500000), ""},
		{pgxtype.TimestamptzOID, -1, "'2020-01-01 08:00:00+00'::timestamp with time zone", "2020-01-01T08:00:00.000000Z", ""},
		{pgxtype.TimeOID, -1, "'10:11:12'::time without time zone", int64(36672000000), ""},
		{pgxtype.UUIDOID, -1, "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", ""},
		{pgxtype.JSONBOID, -1, `'{"a": [1, 2]}'::jsonb`, `{"a": [1, 2]}`, ""},
		{moodOID, -1, "'happy'::mood", "happy", ""},
		{pgxtype.BitOID, 1, `'1'::"bit"`, true, ""},
		// No default: NULL, or none at all.
		{pgxtype.TextOID, -1, "NULL::text", nil, ""},
		{pgxtype.TextOID, -1, "", nil, ""},
		// Not constants: no schema default (Debezium writes a placeholder).
		{pgxtype.Int4OID, -1, "nextval('t_id_seq'::regclass)", nil, source.ReasonNonConstantDefault},
		{pgxtype.TimestamptzOID, -1, "now()", nil, source.ReasonNonConstantDefault},
		{pgxtype.TimestampOID, -1, "CURRENT_TIMESTAMP", nil, source.ReasonNonConstantDefault},
		{pgxtype.Float8OID, -1, "random()", nil, source.ReasonNonConstantDefault},
		{pgxtype.Int4OID, -1, "(1 + 2)", nil, source.ReasonNonConstantDefault},
		{pgxtype.TextOID, -1, "('x'::text || 'y'::text)", nil, source.ReasonNonConstantDefault},
		// Constants the schema does not carry, as Debezium.
		{pgxtype.Float8OID, -1, "'NaN'::double precision", nil, source.ReasonDefaultNotCarried},
		{pgxtype.Int4ArrayOID, -1, "'{1,2}'::integer[]", nil, source.ReasonDefaultNotCarried},
		{pgxtype.ByteaOID, -1, `'\x00ff'::bytea`, nil, source.ReasonDefaultNotCarried},
		{posintOID, -1, "5", nil, source.ReasonDefaultNotCarried},
		{pgxtype.NumericOID, -1, "1.5", nil, source.ReasonDefaultNotCarried},
	}
	for _, tc := range cases {
		col := colSpec{Name: "c", TypeOID: tc.oid, TypMod: tc.typmod, Default: tc.expr}
		sh, err := buildShape("tp", tableID{"public", "t"}, []colSpec{{Name: "id", TypeOID: pgxtype.Int4OID, TypMod: -1}, col}, []string{"id"}, cat)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		got := sh.table.Columns[1].Type.Default
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q (type %d): default %#v, want %#v", tc.expr, tc.oid, got, tc.want)
		}
		reason := ""
		if sh.noDefault != nil {
			reason = sh.noDefault[1].reason
			if reason != "" && !strings.Contains(sh.noDefault[1].detail, tc.expr) {
				t.Errorf("%q: detail %q does not show the expression", tc.expr, sh.noDefault[1].detail)
			}
		}
		if reason != tc.reason {
			t.Errorf("%q: reason %q, want %q", tc.expr, reason, tc.reason)
		}
		if _, err := schema.NewCodec(&sh.table, schema.PostgresSource()); err != nil {
			t.Errorf("%q: schema: %v", tc.expr, err)
		}
	}
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Column defaults reach the value schema from the snapshot's catalog and,
// for a column added while streaming, from the catalog read again when the
// Relation message shows the new shape. A column added with a non-constant
// default gets none, and the connector warns and asks for a re-read.
func TestIntegrationColumnDefaults(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE film (id serial PRIMARY KEY, title text NOT NULL DEFAULT 'untitled', rate numeric(4,2) DEFAULT 4.99, created timestamptz DEFAULT now())`)
	d.exec(`INSERT INTO film (title) VALUES ('a')`)
	rt := newFakeRuntime(t, nil)
	logs := &syncBuf{}
	rt.log = slog.New(slog.NewTextHandler(logs, nil))
	r := start(t, "defaults_"+d.name, d.config("film"), rt)
	r.waitEvents(30*time.Second, "snapshot", func(evs []event) bool { return rt.lastCheckpoint() != nil })

	d.exec(`ALTER TABLE film ADD COLUMN points int NOT NULL DEFAULT 7`)
	d.exec(`INSERT INTO film (title) VALUES ('b')`)
	d.exec(`ALTER TABLE film ADD COLUMN seen timestamptz DEFAULT clock_timestamp()`)
	d.exec(`INSERT INTO film (title) VALUES ('c')`)
	evs := r.waitEvents(30*time.Second, "3 events", func(evs []event) bool { return len(evs) == 3 })

	field := func(e event, name string) map[string]any {
		t.Helper()
		text, err := rt.SchemaByID(context.Background(), e.ValueID)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Fields []struct {
				Name string
				Type json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(text), &env); err != nil {
			t.Fatal(err)
		}
		var before []json.RawMessage // ["null", Value]
		if err := json.Unmarshal(env.Fields[0].Type, &before); err != nil {
			t.Fatal(err)
		}
		var value struct{ Fields []map[string]any }
		if err := json.Unmarshal(before[1], &value); err != nil {
			t.Fatal(err)
		}
		for _, f := range value.Fields {
			if f["name"] == name {
				return f
			}
		}
		t.Fatalf("value schema %d has no field %s: %s", e.ValueID, name, text)
		return nil
	}
	if f := field(evs[0], "title"); f["default"] != "untitled" {
		t.Errorf("snapshot: title field %v, want default untitled", f)
	}
	if f := field(evs[0], "rate"); f["default"] != "\u0001\u00f3" { // Avro bytes default: 499 = 0x01 0xf3, one code point per byte
		t.Errorf("snapshot: rate field %v, want the decimal 4.99 as default", f)
	}
	for _, name := range []string{"id", "created"} {
		if f := field(evs[0], name); f["default"] != nil {
			t.Errorf("snapshot: %s field %v has a default; nextval()/now() are not constants", name, f)
		}
	}
	if f := field(evs[1], "points"); f["default"] != float64(7) {
		t.Errorf("after ADD COLUMN points DEFAULT 7: field %v, want default 7", f)
	}
	if f := field(evs[2], "seen"); f["default"] != nil {
		t.Errorf("after ADD COLUMN seen DEFAULT clock_timestamp(): field %v, want no default", f)
	}
	if evs[1].After["points"] != 7 {
		t.Errorf("row b: points %v", evs[1].After["points"])
	}
	log := logs.String()
	if !strings.Contains(log, "non-constant default; existing rows need a re-read of the table") ||
		!strings.Contains(log, "table=public.film column=seen") || !strings.Contains(log, "clock_timestamp()") {
		t.Errorf("no warning naming table, column and default; log:\n%s", log)
	}
	if strings.Contains(log, "column=points") {
		t.Errorf("a constant default asked for a re-read; log:\n%s", log)
	}
	var m dto.Metric
	if err := rt.metrics.ResnapshotRequests.WithLabelValues("defaults_"+d.name, "public.film", source.ReasonNonConstantDefault).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.GetCounter().GetValue() != 1 {
		t.Errorf("resnapshot requests %v, want 1", m.GetCounter().GetValue())
	}
}

// A default set on an existing column reaches the schema with the Relation
// message PostgreSQL sends before the table's next change.
func TestIntegrationSetDefault(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE s (id int PRIMARY KEY, n int)`)
	rt := newFakeRuntime(t, nil)
	r := start(t, "setdefault_"+d.name, d.config("s"), rt)
	r.waitEvents(30*time.Second, "snapshot", func([]event) bool { return rt.lastCheckpoint() != nil })
	d.exec(`INSERT INTO s VALUES (1, 1)`)
	d.exec(`ALTER TABLE s ALTER COLUMN n SET DEFAULT 42`)
	d.exec(`INSERT INTO s (id) VALUES (2)`)
	evs := r.waitEvents(30*time.Second, "2 events", func(evs []event) bool { return len(evs) == 2 })
	if evs[1].After["n"] != 42 {
		t.Fatalf("row 2: n %v", evs[1].After["n"])
	}
	versions := rt.subjects["tp.public.s-value"]
	if len(versions) != 2 || strings.Contains(versions[0], `"default":42`) || !strings.Contains(versions[1], `"connect.default":42},"null"],"default":42`) {
		t.Errorf("value schema versions: %q", versions)
	}
}

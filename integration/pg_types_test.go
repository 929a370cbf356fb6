package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// typeCase is one column of the type matrix: its PostgreSQL type, the
// literal inserted, and the value Debezium's default mapping produces,
// worked out by hand from Debezium's documentation.
type typeCase struct {
	col, typ, literal string
	want              any
	srcType           string // __debezium.source.column.type
}

var pgTypeMatrix = []typeCase{
	{"c_int2", "smallint", "-32768", int64(-32768), "INT2"},
	{"c_int4", "integer", "2147483647", int64(2147483647), "INT4"},
	{"c_int8", "bigint", "9223372036854775807", int64(math.MaxInt64), "INT8"},
	{"c_real", "real", "1.5", 1.5, "FLOAT4"},
	{"c_double", "double precision", "-2.25", -2.25, "FLOAT8"},
	{"c_bool", "boolean", "true", true, "BOOL"},
	{"c_num", "numeric(10,2)", "-1234.50", "dec:-1234.50", "NUMERIC"},
	{"c_numvar", "numeric", "1.500", "vsd:1.5", "NUMERIC"},
	{"c_money", "money", "12.34", "dec:12.34", "MONEY"},
	{"c_text", "text", "'hello'", "hello", "TEXT"},
	{"c_varchar", "varchar(10)", "'vc'", "vc", "VARCHAR"},
	{"c_char", "char(5)", "'ab'", "ab   ", "BPCHAR"},
	{"c_date", "date", "'2024-01-02'", int64(19724), "DATE"},
	{"c_time3", "time(3)", "'13:51:30.123'", int64(49890123), "TIME"},
	{"c_time", "time", "'13:51:30.123456'", int64(49890123456), "TIME"},
	{"c_timetz", "timetz", "'13:51:30.123789+02'", "11:51:30.123789Z", "TIMETZ"},
	{"c_ts3", "timestamp(3)", "'2024-01-02 03:04:05.123'", int64(1704164645123), "TIMESTAMP"},
	{"c_ts", "timestamp", "'2024-01-02 03:04:05.123456'", int64(1704164645123456), "TIMESTAMP"},
	{"c_tstz", "timestamptz", "'2024-01-02 03:04:05.123456+00'", "2024-01-02T03:04:05.123456Z", "TIMESTAMPTZ"},
	{"c_interval", "interval", "'1 day 02:00:00'", int64(93600000000), "INTERVAL"},
	{"c_uuid", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "UUID"},
	{"c_json", "json", `'{"a": 1}'`, `{"a": 1}`, "JSON"},
	{"c_jsonb", "jsonb", `'{"b":2}'`, `{"b": 2}`, "JSONB"},
	{"c_xml", "xml", "'<a>1</a>'", "<a>1</a>", "XML"},
	{"c_bytea", "bytea", `'\x0102ff'`, []byte{1, 2, 0xff}, "BYTEA"},
	{"c_bit1", "bit(1)", "B'1'", true, "BIT"},
	{"c_bits", "bit(10)", "B'1000000000'", []byte{0x00, 0x02}, "BIT"},
	{"c_varbit", "varbit", "B'101'", []byte{0x05}, "VARBIT"},
	{"c_inet", "inet", "'192.168.0.1'", "192.168.0.1", "INET"},
	{"c_cidr", "cidr", "'10.0.0.0/8'", "10.0.0.0/8", "CIDR"},
	{"c_macaddr", "macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03", "MACADDR"},
	{"c_enum", "mood", "'happy'", "happy", "MOOD"},
	{"c_intarr", "integer[]", "'{1,NULL,3}'", []any{int64(1), nil, int64(3)}, "_INT4"},
	{"c_textarr", "text[]", `'{"a b",c}'`, []any{"a b", "c"}, "_TEXT"},
	{"c_tsv", "tsvector", "'cat a'", "'a' 'cat'", "TSVECTOR"},
	{"c_unknown", "xid", "'123'", "123", "XID"},
	// Debezium's io.debezium.data.geometry.Point: x, y, a WKB point, no SRID.
	{"c_point", "point", "'(1.5,-2.25)'", map[string]any{"x": 1.5, "y": -2.25,
		"wkb": []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0, 0, 0, 0, 0, 0, 2, 0xc0}, "srid": nil}, "POINT"},
	// Names Avro cannot spell: the field name is adjusted, the column's own
	// name travels in __debezium.source.column.name.
	{`"select"`, "text", "'kw'", "kw", "TEXT"},
	{`"col with space"`, "int", "5", int64(5), "INT4"},
	{`"ünïcödé 列"`, "text", "'u'", "u", "TEXT"},
}

// avroField is the Avro field name of a matrix column: Debezium's
// field.name.adjustment.mode=avro of its name.
func avroField(col string) string {
	switch col {
	case `"select"`:
		return "select"
	case `"col with space"`:
		return "col_with_space"
	case `"ünïcödé 列"`:
		return "_n_c_d___"
	}
	return col
}

// sourceName is a matrix column's name as the source spells it.
func sourceName(col string) string { return strings.Trim(col, `"`) }

// normalize turns decoded Avro values into comparable forms.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case *big.Rat:
		return "dec:" + x.FloatString(2)
	case map[string]any:
		if sc, ok := x["scale"]; ok {
			if val, ok := x["value"].([]byte); ok {
				i := new(big.Int).SetBytes(val)
				r := new(big.Rat).SetFrac(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(num(sc)), nil))
				f, _ := r.Float64()
				return fmt.Sprintf("vsd:%g", f)
			}
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

func TestPGTypeMatrix(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, "CREATE TYPE mood AS ENUM ('sad', 'happy')")
			var cols, vals []string
			for _, tc := range pgTypeMatrix {
				cols = append(cols, tc.col+" "+tc.typ)
				vals = append(vals, tc.literal)
			}
			pgExec(t, c, "CREATE TABLE typematrix (id int PRIMARY KEY, "+strings.Join(cols, ", ")+
				", c_dflt int NOT NULL DEFAULT 7, c_dflt_now timestamptz DEFAULT now())")
			// Row 1 goes through the snapshot, row 2 through streaming.
			pgExec(t, c, "INSERT INTO typematrix VALUES (1, "+strings.Join(vals, ", ")+")")
			// A table name Kafka and Avro cannot spell: the topic and the
			// schema names are adjusted, the column names travel in
			// __debezium.source.column.name.
			pgExec(t, c, `CREATE TABLE "My Table ""quoted""" (id int PRIMARY KEY, "select" text, "col with space" int, "ünïcödé 列" text)`)
			pgExec(t, c, `INSERT INTO "My Table ""quoted""" VALUES (1, 'kw', 5, 'u')`)
			prefix := uniq("types")
			w := startWorker(t, le, pgPipeline(t, le, db, prefix, uniq("slot"), []string{"typematrix", `'public.My Table "quoted"'`}, ""))
			topic := prefix + ".public.typematrix"
			r := newReader(t, le, topic)
			r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 1 })
			pgExec(t, c, "INSERT INTO typematrix VALUES (2, "+strings.Join(vals, ", ")+")")
			evs := r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 2 })
			for _, e := range evs[:2] {
				a := e.after()
				for _, tc := range pgTypeMatrix {
					got := normalize(a[avroField(tc.col)])
					if b, ok := tc.want.([]byte); ok {
						if gb, _ := got.([]byte); !bytes.Equal(gb, b) {
							t.Errorf("op=%s %s %s: got %v (%T), want % x", e.op(), tc.col, tc.typ, got, got, b)
						}
						continue
					}
					if !reflect.DeepEqual(got, tc.want) {
						t.Errorf("op=%s %s %s: got %#v (%T), want %#v", e.op(), tc.col, tc.typ, got, got, tc.want)
					}
				}
			}

			// Every column carries its source type as schema parameters.
			resp, err := http.Get(le.registryURL + "/subjects/" + topic + "-value/versions/latest/schema")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			params := map[string]map[string]any{}
			var walk func(v any)
			walk = func(v any) {
				switch x := v.(type) {
				case map[string]any:
					if name, ok := x["name"].(string); ok {
						if p := findParams(x["type"]); p != nil {
							params[name] = p
						}
					}
					for _, y := range x {
						walk(y)
					}
				case []any:
					for _, y := range x {
						walk(y)
					}
				}
			}
			var sch any
			if err := json.Unmarshal(raw, &sch); err != nil {
				t.Fatalf("value schema: %v: %s", err, raw)
			}
			walk(sch)
			for _, tc := range pgTypeMatrix {
				p := params[avroField(tc.col)]
				if p == nil || p["__debezium.source.column.type"] != tc.srcType {
					t.Errorf("%s: source type params %v, want __debezium.source.column.type=%s", tc.col, p, tc.srcType)
				}
				if p["__debezium.source.column.name"] != sourceName(tc.col) {
					t.Errorf("%s: __debezium.source.column.name %v, want %s", tc.col, p["__debezium.source.column.name"], sourceName(tc.col))
				}
			}
			// Constant defaults are field defaults; now() is none.
			defaults := map[string]any{}
			for _, f := range sch.(map[string]any)["fields"].([]any)[0].(map[string]any)["type"].([]any)[1].(map[string]any)["fields"].([]any) {
				fm := f.(map[string]any)
				defaults[fm["name"].(string)] = fm["default"]
			}
			if defaults["c_dflt"] != float64(7) || defaults["c_dflt_now"] != nil {
				t.Errorf("defaults: c_dflt %v (want 7), c_dflt_now %v (want none)", defaults["c_dflt"], defaults["c_dflt_now"])
			}
			// Key fields carry no __debezium.source.column.* parameters.
			resp, err = http.Get(le.registryURL + "/subjects/" + topic + "-key/versions/latest/schema")
			if err != nil {
				t.Fatal(err)
			}
			keyRaw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(keyRaw) != `{"type":"record","name":"Key","namespace":"`+topic+`","fields":[{"name":"id","type":"int"}],"connect.name":"`+topic+`.Key"}` {
				t.Errorf("key schema %s", keyRaw)
			}
			// The snapshot's one row opens and closes it: "last" wins; the
			// streamed row is "false"; the PostgreSQL source block has
			// origin and origin_lsn, null without a replication origin.
			for i, want := range []string{"last", "false"} {
				src, _ := evs[i].Value["source"].(map[string]any)
				if src["snapshot"] != want {
					t.Errorf("event %d: source.snapshot %v, want %s", i, src["snapshot"], want)
				}
				if o, ok := src["origin"]; !ok || o != nil {
					t.Errorf("event %d: source.origin %v (present %v), want null", i, o, ok)
				}
				if o, ok := src["origin_lsn"]; !ok || o != nil {
					t.Errorf("event %d: source.origin_lsn %v (present %v), want null", i, o, ok)
				}
			}
			if p := params["c_num"]; p["__debezium.source.column.length"] != "10" || p["__debezium.source.column.scale"] != "2" {
				t.Errorf("c_num length/scale params: %v", p)
			}
			oddTopic := prefix + ".public.My_Table__quoted_"
			odd := newReader(t, le, oddTopic).pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 1 })
			if a := odd[0].after(); a["select"] != "kw" || normalize(a["col_with_space"]) != int64(5) || a["_n_c_d___"] != "u" {
				t.Errorf("%s: after %v", oddTopic, a)
			}
			resp, err = http.Get(le.registryURL + "/subjects/" + oddTopic + "-value/versions/latest/schema")
			if err != nil {
				t.Fatal(err)
			}
			oddRaw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, frag := range []string{`"__debezium.source.column.name":"select"`, `"__debezium.source.column.name":"col with space"`,
				`"__debezium.source.column.name":"ünïcödé 列"`, `"name":"Envelope","namespace":"` + oddTopic + `"`} {
				if !strings.Contains(string(oddRaw), frag) {
					t.Errorf("%s value schema lacks %s: %s", oddTopic, frag, oddRaw)
				}
			}
			w.stop(t)
			if out := w.output(); !strings.Contains(out, "c_unknown") {
				t.Errorf("no warning names the unknown-type column c_unknown:\n%s", out)
			}
		})
	}
}

// findParams digs connect.parameters out of a field type (possibly a union).
func findParams(t any) map[string]any {
	switch x := t.(type) {
	case map[string]any:
		if p, ok := x["connect.parameters"].(map[string]any); ok {
			return p
		}
	case []any:
		for _, y := range x {
			if p := findParams(y); p != nil {
				return p
			}
		}
	}
	return nil
}

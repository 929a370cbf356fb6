package sink

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// A value row schema in Debezium 3.6's shape: adjusted field names with
// the source's spelling as a parameter, and field defaults of logical
// types as the Confluent converter writes them.
const shapeRowSchema = `{"type":"record","name":"Envelope","namespace":"srv.public.t","fields":[
 {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
  {"name":"id","type":{"type":"int","connect.parameters":{"__debezium.source.column.type":"INT4","__debezium.source.column.name":"id"}}},
  {"name":"col_with_space","type":["null",{"type":"string","connect.parameters":{"__debezium.source.column.type":"VARCHAR","__debezium.source.column.length":"128","__debezium.source.column.name":"col with space"}}],"default":null},
  {"name":"_n_c_d___","type":{"type":"int","connect.parameters":{"__debezium.source.column.name":"ünïcödé 列"}},"default":0},
  {"name":"credit","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":2,"connect.name":"org.apache.kafka.connect.data.Decimal","connect.parameters":{"scale":"2","connect.decimal.precision":"5"}},"default":"\u0000\u0096"},
  {"name":"since","type":{"type":"int","connect.name":"io.debezium.time.Date"},"default":19723},
  {"name":"at","type":[{"type":"long","connect.name":"io.debezium.time.MicroTimestamp"},"null"],"default":1700000000000000},
  {"name":"tier","type":["string","null"],"default":"bronze"},
  {"name":"ratio","type":"double","default":1.5},
  {"name":"flag","type":"boolean","default":true},
  {"name":"qty","type":{"type":"int","connect.default":5}},
  {"name":"geom","type":["null",{"type":"record","name":"Geometry","namespace":"io.debezium.data.geometry","fields":[
    {"name":"wkb","type":"bytes"},{"name":"srid","type":["null","int"],"default":null}],"connect.name":"io.debezium.data.geometry.Geometry"}],"default":null}
 ]}],"default":null},
 {"name":"after","type":["null","Value"],"default":null},
 {"name":"op","type":"string"}]}`

func TestParseEnvelopeNamesAndDefaults(t *testing.T) {
	s, err := avro.ParseWithCache(shapeRowSchema, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := parseEnvelope(s)
	if err != nil {
		t.Fatal(err)
	}
	byField := map[string]fieldInfo{}
	for _, f := range env.fields {
		byField[f.name] = f
	}
	for field, want := range map[string]string{"id": "id", "col_with_space": "col with space", "_n_c_d___": "ünïcödé 列", "credit": "credit"} {
		if got := byField[field].column; got != want {
			t.Errorf("field %s: column %q, want %q", field, got, want)
		}
	}
	defaults := map[string]any{
		"_n_c_d___": int64(0),
		"credit":    "1.50",
		"since":     time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"at":        time.UnixMicro(1700000000000000).UTC(),
		"tier":      "bronze",
		"ratio":     1.5,
		"flag":      true,
		"qty":       int64(5),
	}
	for field, want := range defaults {
		f := byField[field]
		if !f.hasDef || f.def != want {
			t.Errorf("field %s: default %#v (has %v), want %#v", field, f.def, f.hasDef, want)
		}
	}
	for _, field := range []string{"id", "col_with_space", "geom"} {
		if byField[field].hasDef {
			t.Errorf("field %s has a default %#v; it has none (or null)", field, byField[field].def)
		}
	}
	if k := byField["geom"].typ.Kind; k != KindGeometry {
		t.Errorf("geometry struct is kind %s", k)
	}
}

func TestDistinctColumns(t *testing.T) {
	err := distinctColumns([]fieldInfo{{name: "a_b", column: "a b"}, {name: "a_b_", column: "a b"}})
	if err == nil {
		t.Fatal("two fields naming one source column: no error")
	}
	if distinctColumns([]fieldInfo{{name: "a_b", column: "a b"}, {name: "a_b_", column: "a-b"}}) != nil {
		t.Error("distinct source columns with colliding adjusted names are fine")
	}
}

func TestMergeType(t *testing.T) {
	vc := func(n int) ColumnType {
		return ColumnType{Kind: KindString, Native: "VARCHAR", Length: n, Scale: -1, Dialect: DialectMySQL}
	}
	dec := func(p, s int) ColumnType {
		return ColumnType{Kind: KindDecimal, Native: "DECIMAL", Length: p, Scale: s, Precision: p, DecimalScale: s, Dialect: DialectMySQL}
	}
	enum := func(allowed string) ColumnType {
		return ColumnType{Kind: KindEnum, Native: "ENUM", Length: -1, Scale: -1, Dialect: DialectMySQL, Params: map[string]string{"allowed": allowed}}
	}
	in := func(k Kind, native string) ColumnType {
		return ColumnType{Kind: k, Native: native, Length: -1, Scale: -1, Dialect: DialectMySQL}
	}
	cases := []struct {
		name     string
		old, new ColumnType
		changed  bool
		want     string
	}{
		{"varchar widened", vc(128), vc(200), true, "string VARCHAR(200)"},
		{"varchar narrowed", vc(200), vc(128), false, "string VARCHAR(200)"},
		{"varchar to text", vc(128), in(KindString, "TEXT"), true, "string TEXT"},
		{"text to varchar", in(KindString, "TEXT"), vc(100), false, "string TEXT"},
		{"int to bigint", in(KindInt32, "INT"), in(KindInt64, "BIGINT"), true, "int64 BIGINT"},
		{"bigint to int", in(KindInt64, "BIGINT"), in(KindInt32, "INT"), false, "int64 BIGINT"},
		{"float to double", in(KindFloat32, "FLOAT"), in(KindFloat64, "DOUBLE"), true, "float64 DOUBLE"},
		{"decimal widened", dec(10, 2), dec(12, 4), true, "decimal DECIMAL(12,4)"},
		{"decimal narrowed", dec(12, 4), dec(10, 2), false, "decimal DECIMAL(12,4)"},
		{"enum value added", enum("a,b"), enum("a,b,c"), true, "enum ENUM {a,b,c}"},
		{"enum value dropped", enum("a,b,c"), enum("a,c"), false, "enum ENUM {a,b,c}"},
		{"enum value swapped", enum("a,b"), enum("a,c"), true, "enum ENUM {a,c,b}"},
		{"enum value inserted", enum("a,b"), enum("a,x,b"), true, "enum ENUM {a,x,b}"},
		{"int to string", in(KindInt32, "INT"), vc(10), true, "string VARCHAR(10)"},
	}
	for _, c := range cases {
		got, changed := mergeType(&c.old, &c.new)
		if changed != c.changed || got.String() != c.want {
			t.Errorf("%s: mergeType(%s, %s) = %s, %v; want %s, %v", c.name, c.old.String(), c.new.String(), got.String(), changed, c.want, c.changed)
		}
	}
}

func TestGeometryForms(t *testing.T) {
	// POINT(1 2), little-endian WKB.
	wkb, _ := hex.DecodeString("0101000000000000000000f03f0000000000000040")
	v, err := nativeValue(map[string]any{"wkb": wkb, "srid": 4326}, &ColumnType{Kind: KindGeometry, ConnectName: cnGeometry})
	if err != nil {
		t.Fatal(err)
	}
	g := v.(Geometry)
	if !g.HasSRID || g.SRID != 4326 {
		t.Fatalf("srid %d (%v)", g.SRID, g.HasSRID)
	}
	if got := hex.EncodeToString(g.EWKB()); got != "0101000020e6100000000000000000f03f0000000000000040" {
		t.Errorf("EWKB %s", got)
	}
	if got := hex.EncodeToString(g.MySQLInternal()); got != "e6100000"+hex.EncodeToString(wkb) {
		t.Errorf("MySQL internal form %s", got)
	}
	// A Point without wkb gets one from x and y.
	v, err = nativeValue(map[string]any{"x": 1.0, "y": 2.0, "wkb": nil, "srid": nil}, &ColumnType{Kind: KindGeometry, ConnectName: cnPoint})
	if err != nil {
		t.Fatal(err)
	}
	if p := v.(Geometry); !p.IsPoint || hex.EncodeToString(p.WKB) != hex.EncodeToString(wkb) || p.HasSRID {
		t.Errorf("point %+v", p)
	}
	if _, err := nativeValue(map[string]any{"srid": 1}, &ColumnType{Kind: KindGeometry, ConnectName: cnGeometry}); err == nil {
		t.Error("a geometry without wkb must be an error")
	}
}

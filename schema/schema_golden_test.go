package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertSameSchema compares structurally (field order matters, JSON object
// key order and whitespace do not) and then byte for byte after compacting
// the fixture, since the fixtures keep Avro Java's property order.
func assertSameSchema(t *testing.T, got string, fixture []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("generated schema is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(fixture, &w); err != nil {
		t.Fatalf("fixture is not JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", " ")
		wi, _ := json.MarshalIndent(w, "", " ")
		t.Fatalf("schema differs structurally\n--- got\n%s\n--- want\n%s", gi, wi)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, fixture); err != nil {
		t.Fatal(err)
	}
	if got != compact.String() {
		t.Errorf("schema text differs from the converter's (property order)\n got: %s\nwant: %s", got, compact.String())
	}
	if _, err := avro.ParseWithCache(got, "", &avro.SchemaCache{}); err != nil {
		t.Errorf("hamba/avro rejects the generated schema: %v", err)
	}
}

func mysqlUsersTable() *Table {
	return &Table{
		Topic: "dbserver1.demo.users",
		Columns: []Column{
			{Name: "id", Type: Type{Kind: Int32}},
			{Name: "name", Type: Type{Kind: String}, Optional: true},
			{Name: "age", Type: Type{Kind: Int32}, Optional: true},
			{Name: "created_at", Type: Type{Kind: String, Name: ZonedTimestampName}, Optional: true},
		},
		Key: []int{0},
	}
}

func TestGoldenDebezium3MySQL(t *testing.T) {
	c, err := NewCodec(mysqlUsersTable(), MySQLSource())
	if err != nil {
		t.Fatal(err)
	}
	assertSameSchema(t, c.KeySchema(), readFixture(t, "dbz3_mysql_users_key.avsc"))
	assertSameSchema(t, c.ValueSchema(), readFixture(t, "dbz3_mysql_users_value.avsc"))
}

func TestGoldenDebezium2Postgres(t *testing.T) {
	// Debezium 2.x's PostgreSQL source block: no connect.version and the
	// shorter snapshot enum; everything else is what PostgresSource gives.
	src := PostgresSource()
	src.Version = 0
	src.Fields = src.Fields[:PGSrcXmin+1] // origin and origin_lsn came with 3.x
	src.Fields[SrcSnapshot].Type.Params = map[string]string{EnumAllowedParam: "true,last,false,incremental"}
	text := func() *Type { return &Type{Kind: String} }
	tbl := &Table{
		Topic: "changefeed.pg.testtenant_teststore_abc_kv.public.kvs",
		Columns: []Column{
			{Name: "tenant", Type: *text()},
			{Name: "store", Type: *text()},
			{Name: "partition_key", Type: *text()},
			{Name: "sort_key", Type: *text()},
			{Name: "version", Type: *text()},
			{Name: "updated_at", Type: Type{Kind: String, Name: ZonedTimestampName, Version: 1}},
			{Name: "tags", Type: Type{Kind: Array, Items: text(), ItemsOptional: true}, Optional: true},
			{Name: "data", Type: *text(), Optional: true},
			{Name: "encoding", Type: *text(), Optional: true},
			{Name: "schema", Type: Type{Kind: Int64}, Optional: true},
			{Name: "lookup_keys", Type: Type{Kind: Array, Items: text(), ItemsOptional: true}, Optional: true},
		},
		Key: []int{0, 1, 2, 3},
	}
	c, err := NewCodec(tbl, src)
	if err != nil {
		t.Fatal(err)
	}
	assertSameSchema(t, c.ValueSchema(), readFixture(t, "dbz2_pg_kvs_value.avsc"))
}

// The property layouts below are what AvroData.fromConnectSchema writes for
// these Connect schemas (Decimal's scale/precision first and logicalType
// last; connect.type after connect.name; a struct's doc as connect.doc).
func TestSchemaPropertyLayout(t *testing.T) {
	tbl := &Table{
		Topic: "srv.public.t",
		Columns: []Column{
			{Name: "price", Type: func() Type {
				d := DecimalType(10, 2)
				d.Params[SourceColumnTypeParam] = "NUMERIC"
				d.Params[SourceColumnLengthParam] = "10"
				d.Params[SourceColumnScaleParam] = "2"
				return d
			}()},
			{Name: "small", Type: Type{Kind: Int16}},
			{Name: "tiny", Type: Type{Kind: Int8}, Optional: true},
			{Name: "n", Type: VariableScaleDecimalType(), Optional: true},
			{Name: "n2", Type: VariableScaleDecimalType()},
			{Name: "status", Type: func() Type { e := EnumType([]string{"a", "b"}); e.Default = "a"; return e }(), Optional: true},
			{Name: "qty", Type: Type{Kind: Int32, Default: int32(7)}},
			{Name: "blob", Type: Type{Kind: Bytes, Default: []byte{0x00, 0xff}}},
			{Name: "unbounded", Type: DecimalType(0, 3)},
		},
		Key: []int{1},
	}
	c, err := NewCodec(tbl, PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"price": `{"name":"price","type":{"type":"bytes","scale":2,"precision":10,"connect.version":1,"connect.parameters":{"scale":"2","connect.decimal.precision":"10","__debezium.source.column.type":"NUMERIC","__debezium.source.column.length":"10","__debezium.source.column.scale":"2","__debezium.source.column.name":"price"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}}`,
		"small": `{"name":"small","type":{"type":"int","connect.type":"int16"}}`,
		"tiny":  `{"name":"tiny","type":["null",{"type":"int","connect.type":"int8"}],"default":null}`,
		"n":     `{"name":"n","type":["null",{"type":"record","name":"VariableScaleDecimal","namespace":"io.debezium.data","fields":[{"name":"scale","type":"int"},{"name":"value","type":"bytes"}],"connect.doc":"Variable scaled decimal","connect.version":1,"connect.name":"io.debezium.data.VariableScaleDecimal"}],"default":null}`,
		// The second use of the record refers to it by full name.
		"n2":        `{"name":"n2","type":"io.debezium.data.VariableScaleDecimal"}`,
		"status":    `{"name":"status","type":[{"type":"string","connect.version":1,"connect.parameters":{"allowed":"a,b"},"connect.default":"a","connect.name":"io.debezium.data.Enum"},"null"],"default":"a"}`,
		"qty":       `{"name":"qty","type":{"type":"int","connect.default":7},"default":7}`,
		"blob":      `{"name":"blob","type":{"type":"bytes","connect.default":"AP8="},"default":"\u0000ÿ"}`,
		"unbounded": `{"name":"unbounded","type":{"type":"bytes","scale":3,"precision":64,"connect.version":1,"connect.parameters":{"scale":"3"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}}`,
	}
	vs := c.ValueSchema()
	for col, frag := range want {
		if !bytes.Contains([]byte(vs), []byte(frag)) {
			t.Errorf("column %s: schema lacks\n%s\nin\n%s", col, frag, vs)
		}
	}
	if ks := c.KeySchema(); ks != `{"type":"record","name":"Key","namespace":"srv.public.t","fields":[{"name":"small","type":{"type":"int","connect.type":"int16"}}],"connect.name":"srv.public.t.Key"}` {
		t.Errorf("key schema: %s", ks)
	}
	if _, err := avro.ParseWithCache(vs, "", &avro.SchemaCache{}); err != nil {
		t.Fatalf("hamba/avro rejects: %v", err)
	}
}

func TestSchemaDeterministic(t *testing.T) {
	mk := func() *Table {
		d := DecimalType(12, 4)
		// Many parameters, so map iteration order would show if it leaked.
		for _, k := range []string{"z", "y", "x", "w", "v", "u", SourceColumnTypeParam, SourceColumnLengthParam, "__debezium.source.column.comment"} {
			d.Params[k] = k + "!"
		}
		return &Table{Topic: "a.b.c", Columns: []Column{{Name: "id", Type: Type{Kind: Int64}}, {Name: "d", Type: d}}, Key: []int{0}}
	}
	c0, err := NewCodec(mk(), PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		c, err := NewCodec(mk(), PostgresSource())
		if err != nil {
			t.Fatal(err)
		}
		if c.ValueSchema() != c0.ValueSchema() || c.KeySchema() != c0.KeySchema() {
			t.Fatalf("schema text not deterministic:\n%s\n%s", c.ValueSchema(), c0.ValueSchema())
		}
	}
	// __debezium.* come after the type's own parameters; the rest sorted.
	if !bytes.Contains([]byte(c0.ValueSchema()), []byte(`{"scale":"4","connect.decimal.precision":"12","u":"u!","v":"v!","w":"w!","x":"x!","y":"y!","z":"z!","__debezium.source.column.type":"__debezium.source.column.type!","__debezium.source.column.length":"__debezium.source.column.length!","__debezium.source.column.comment":"__debezium.source.column.comment!","__debezium.source.column.name":"d"}`)) {
		t.Errorf("parameter order: %s", c0.ValueSchema())
	}
}

func TestSchemaNamesSanitised(t *testing.T) {
	tbl := &Table{
		Topic: "my-server.public.2024 orders",
		Columns: []Column{
			{Name: "order-id", Type: Type{Kind: Int64}},
			{Name: "1st", Type: Type{Kind: String}, Optional: true},
			{Name: "ünï", Type: Type{Kind: String}, Optional: true},
		},
		Key: []int{0},
	}
	c, err := NewCodec(tbl, PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	s, err := avro.ParseWithCache(c.ValueSchema(), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("hamba rejects sanitised schema: %v\n%s", err, c.ValueSchema())
	}
	rs := s.(*avro.RecordSchema)
	if rs.FullName() != "my_server.public._024_orders.Envelope" {
		t.Errorf("envelope name %q", rs.FullName())
	}
	var names []string
	for _, f := range rs.Fields()[0].Type().(*avro.UnionSchema).Types()[1].(*avro.RecordSchema).Fields() {
		names = append(names, f.Name())
	}
	// Debezium's field.name.adjustment.mode=avro: a leading digit is kept
	// after the '_' that replaces it.
	if !reflect.DeepEqual(names, []string{"order_id", "_1st", "_n_"}) {
		t.Errorf("field names %v", names)
	}
	if !bytes.Contains([]byte(c.KeySchema()), []byte(`"connect.name":"my_server.public._024_orders.Key"`)) {
		t.Errorf("key connect.name: %s", c.KeySchema())
	}
}

func TestSchemaErrors(t *testing.T) {
	cases := []struct {
		name string
		tbl  Table
		want string
	}{
		{"dup field after sanitising", Table{Topic: "t.x", Columns: []Column{{Name: "a-b", Type: Type{Kind: Int32}}, {Name: "a_b", Type: Type{Kind: Int32}}}},
			`column "a_b": Avro field name "a_b" is also the name of column "a-b"`},
		{"key out of range", Table{Topic: "t.x", Columns: []Column{{Name: "a", Type: Type{Kind: Int32}}}, Key: []int{3}},
			"key index 3 out of range"},
		{"decimal without scale", Table{Topic: "t.x", Columns: []Column{{Name: "d", Type: Type{Kind: Bytes, Name: DecimalName}}}},
			`column "d": org.apache.kafka.connect.data.Decimal needs the "scale" parameter`},
		{"bad default type", Table{Topic: "t.x", Columns: []Column{{Name: "q", Type: Type{Kind: Int32, Default: 5}}}},
			`column "q": default: want Go type int32, got int`},
		{"array without items", Table{Topic: "t.x", Columns: []Column{{Name: "arr", Type: Type{Kind: Array}}}},
			`column "arr": array type has no Items`},
		{"unnamed struct", Table{Topic: "t.x", Columns: []Column{{Name: "s", Type: Type{Kind: Struct}}}},
			`column "s": struct type needs a Name or StructName`},
		{"conflicting struct", Table{Topic: "t.x", Columns: []Column{
			{Name: "g1", Type: GeometryType()},
			{Name: "g2", Type: func() Type {
				g := GeometryType()
				g.Fields = g.Fields[:1]
				return g
			}()},
		}}, `column "g2": struct io.debezium.data.geometry.Geometry differs`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCodec(&tc.tbl, PostgresSource())
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(`topic "t.x"`)) {
				t.Errorf("error does not name the topic: %v", err)
			}
		})
	}
}

// Debezium 3.6 (PropagateSourceMetadataToSchemaParameter, applied to value
// fields only): value fields carry __debezium.source.column.name with the
// source's own spelling, key fields no __debezium.source.column.* at all
// but keep their type's own parameters.
func TestSourceColumnParams(t *testing.T) {
	src := func(typ string, extra map[string]string) map[string]string {
		p := map[string]string{SourceColumnTypeParam: typ, SourceColumnLengthParam: "10", SourceColumnScaleParam: "0"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	dec := DecimalType(10, 2)
	for k, v := range src("NUMERIC", nil) {
		dec.Params[k] = v
	}
	geo := func(typ string) Type { g := GeometryType(); g.Params = src(typ, nil); return g }
	tbl := &Table{
		Topic: "srv.public.My_Table__quoted_",
		Columns: []Column{
			{Name: "select", Type: Type{Kind: Int32, Params: src("INT4", nil)}},
			{Name: "col with space", Type: dec},
			{Name: "ünïcödé 列", Type: Type{Kind: String, Params: src("TEXT", nil)}, Optional: true},
			{Name: "g1", Type: geo("GEOMETRY"), Optional: true},
			{Name: "g 2", Type: geo("POINT"), Optional: true},
			{Name: "plain", Type: Type{Kind: String}, Optional: true},
		},
		Key: []int{0, 1},
	}
	c, err := NewCodec(tbl, PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	wantKey := `{"type":"record","name":"Key","namespace":"srv.public.My_Table__quoted_","fields":[` +
		`{"name":"select","type":"int"},` +
		`{"name":"col_with_space","type":{"type":"bytes","scale":2,"precision":10,"connect.version":1,"connect.parameters":{"scale":"2","connect.decimal.precision":"10"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}}],` +
		`"connect.name":"srv.public.My_Table__quoted_.Key"}`
	if ks := c.KeySchema(); ks != wantKey {
		t.Errorf("key schema\n got: %s\nwant: %s", ks, wantKey)
	}
	vs := c.ValueSchema()
	for _, frag := range []string{
		`{"name":"select","type":{"type":"int","connect.parameters":{"__debezium.source.column.type":"INT4","__debezium.source.column.length":"10","__debezium.source.column.scale":"0","__debezium.source.column.name":"select"}}}`,
		`{"name":"col_with_space","type":{"type":"bytes","scale":2,"precision":10,"connect.version":1,"connect.parameters":{"scale":"2","connect.decimal.precision":"10","__debezium.source.column.type":"NUMERIC","__debezium.source.column.length":"10","__debezium.source.column.scale":"0","__debezium.source.column.name":"col with space"},`,
		`{"name":"_n_c_d___","type":["null",{"type":"string","connect.parameters":{"__debezium.source.column.type":"TEXT","__debezium.source.column.length":"10","__debezium.source.column.scale":"0","__debezium.source.column.name":"ünïcödé 列"}}],"default":null}`,
		// The first Geometry column defines the record with its parameters;
		// the second refers to it, as the AvroConverter writes it.
		`"connect.parameters":{"__debezium.source.column.type":"GEOMETRY","__debezium.source.column.length":"10","__debezium.source.column.scale":"0","__debezium.source.column.name":"g1"},"connect.name":"io.debezium.data.geometry.Geometry"}],"default":null}`,
		`{"name":"g_2","type":["null","io.debezium.data.geometry.Geometry"],"default":null}`,
		// No source type, no column.propagate.source.type parameters.
		`{"name":"plain","type":["null","string"],"default":null}`,
	} {
		if !bytes.Contains([]byte(vs), []byte(frag)) {
			t.Errorf("value schema lacks\n%s\nin\n%s", frag, vs)
		}
	}
	if _, err := avro.ParseWithCache(vs, "", &avro.SchemaCache{}); err != nil {
		t.Fatalf("hamba/avro rejects: %v", err)
	}
	// The Table itself is not changed by writing its schemas.
	if _, ok := tbl.Columns[0].Type.Params[SourceColumnNameParam]; ok {
		t.Error("NewCodec wrote into the table's parameter map")
	}
}

func TestAvroFieldNameDebezium(t *testing.T) {
	for in, want := range map[string]string{
		"select": "select", "col with space": "col_with_space", "ünïcödé 列": "_n_c_d___",
		"1st": "_1st", "a1": "a1", "a.b": "a_b", "x😀": "x__", "_ok": "_ok",
	} {
		if got := AvroFieldName(in); got != want {
			t.Errorf("AvroFieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

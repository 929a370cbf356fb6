package mysql

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// matrixDDL has one column of every type the issue lists.
const matrixDDL = `CREATE TABLE tm (
 id int PRIMARY KEY,
 ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint, miu mediumint unsigned,
 i int, iu int unsigned, bi bigint, biu bigint unsigned,
 d decimal(10,2), d0 decimal, f float, f72 float(7,2), f30 float(30), db double,
 b1 bit(1), b10 bit(10), bo boolean,
 c char(5), vc varchar(100), tt tinytext, t text, mt mediumtext, lt longtext,
 bn binary(4), vb varbinary(10), tb tinyblob, bl blob, mb mediumblob, lb longblob,
 dt date, tm0 time, tm6 time(6), dt0 datetime, dt3 datetime(3), dt6 datetime(6),
 ts0 timestamp NULL, ts6 timestamp(6) NULL, y year,
 e enum('a','b''q','c,d'), s set('x','y','z'), j json, g geometry, p point,
 l1 varchar(10) character set latin1, ip inet6, u uuid
)`

// matrixValues are the SQL literals of row id, in column order after id.
const matrixValues = `-128, 255, -32768, 65535, -8388608, 16777215,
 -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
 -12345678.91, 1234567890, 1.5, 12345.67, 1.25e300, 3.141592653589793,
 b'1', b'1000000011', true,
 'ab', 'héllo €😀', 'tiny', 'text', 'medium', 'long',
 X'0102', X'00FF10', X'AB', X'CD', X'EF', X'0000',
 '2024-02-29', '-838:59:59', '12:34:56.789012', '2024-02-29 13:14:15', '1969-12-31 23:59:59.123', '2038-01-19 03:14:08.000001',
 '2024-02-29 13:14:15', '2001-02-03 04:05:06.0708', 2155,
 'b''q', 'z,x', '{"a": [1, 2.5, "x"], "b": null}', ST_GeomFromText('LINESTRING(0 0,1 1)', 4326), POINT(1.5, -2.25),
 'café', '::ffff:1.2.3.4', '123e4567-e89b-12d3-a456-426614174000'`

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// matrixWant is the expected Debezium value of each column, worked out by
// hand from Debezium's default MySQL mappings and decoded the way
// schema.Decoder returns Avro values (int as int, long as int64, Decimal
// as *big.Rat, float as float32, double as float64).
var matrixWant = map[string]any{
	"ti":  -128,
	"tiu": 255,
	"si":  -32768,
	"siu": 65535,                        // SMALLINT UNSIGNED is INT32
	"mi":  -8388608,                     // MEDIUMINT is INT32
	"miu": 16777215,                     // MEDIUMINT UNSIGNED is INT32
	"i":   -2147483648,                  // INT is INT32
	"iu":  int64(4294967295),            // INT UNSIGNED is INT64
	"bi":  int64(-9223372036854775808),  // BIGINT
	"biu": int64(-1),                    // 2^64-1 in bigint.unsigned.handling.mode=long wraps
	"d":   big.NewRat(-1234567891, 100), // DECIMAL(10,2)
	"d0":  big.NewRat(1234567890, 1),
	"f":   float32(1.5),
	"f72": float64(float32(12345.67)), // FLOAT(M,D) is FLOAT64 of the stored float (12345.669921875), as in Debezium
	"f30": float64(1.25e300),          // FLOAT(30) is DOUBLE
	"db":  float64(3.141592653589793),
	"b1":  true,
	"b10": []byte{0x03, 0x02}, // 0b1000000011 = 0x203, little-endian
	"bo":  1,                  // BOOLEAN is TINYINT(1): INT16
	"c":   "ab",
	"vc":  "héllo €😀",
	"tt":  "tiny",
	"t":   "text",
	"mt":  "medium",
	"lt":  "long",
	"bn":  []byte{1, 2, 0, 0}, // BINARY(4) is zero-padded
	"vb":  []byte{0, 0xff, 0x10},
	"tb":  []byte{0xab},
	"bl":  []byte{0xcd},
	"mb":  []byte{0xef},
	"lb":  []byte{0, 0},
	"dt":  19782,                         // days since 1970-01-01
	"tm0": int64(-3020399000000),         // MicroTime of -838:59:59
	"tm6": int64(45296789012),            // 12:34:56.789012
	"dt0": int64(1709212455000),          // Timestamp (ms)
	"dt3": int64(-877),                   // 1969-12-31 23:59:59.123 in ms
	"dt6": int64(2147483648000001),       // MicroTimestamp (us)
	"ts0": "2024-02-29T13:14:15Z",        // ZonedTimestamp
	"ts6": "2001-02-03T04:05:06.070800Z", // fraction padded to the column's 6 digits
	"y":   2155,
	"e":   "b'q",
	"s":   "x,z", // SET values in definition order
	"j":   `{"a": [1, 2.5, "x"], "b": null}`,
	"g": map[string]any{"wkb": mustHex("01020000000200000000000000000000000000000000000000000000000000f03f000000000000f03f"),
		"srid": 4326},
	// SRID 0 (none) is null, as Debezium's BinlogGeometry.
	"p":  map[string]any{"x": 1.5, "y": -2.25, "wkb": mustHex("0101000000000000000000f83f00000000000002c0"), "srid": nil},
	"l1": "café",
	"ip": "::ffff:1.2.3.4",
	"u":  "123e4567-e89b-12d3-a456-426614174000", // no Debezium mapping: text
}

// wantParams are the column.propagate.source.type parameters of a few
// columns, plus the semantic type's own parameters.
var wantParams = map[string]map[string]string{
	"d":   {"__debezium.source.column.type": "DECIMAL", "__debezium.source.column.length": "10", "__debezium.source.column.scale": "2", "scale": "2", "connect.decimal.precision": "10", "__debezium.source.column.name": "d"},
	"vc":  {"__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "100", "__debezium.source.column.name": "vc"},
	"g":   {"__debezium.source.column.type": "GEOMETRY", "__debezium.source.column.name": "g"},
	"p":   {"__debezium.source.column.type": "POINT", "__debezium.source.column.name": "p"},
	"iu":  {"__debezium.source.column.type": "INT UNSIGNED"},
	"dt6": {"__debezium.source.column.type": "DATETIME", "__debezium.source.column.length": "6"},
	"b10": {"__debezium.source.column.type": "BIT", "__debezium.source.column.length": "10", "length": "10"},
	"e":   {"__debezium.source.column.type": "ENUM", "allowed": `a,b'q,c\,d`}, // a comma in a value escaped, as Debezium writes it
	"s":   {"__debezium.source.column.type": "SET", "allowed": "x,y,z"},
	"bo":  {"__debezium.source.column.type": "TINYINT", "__debezium.source.column.length": "1"},
	"ip":  {"__debezium.source.column.type": "INET6"},
	"u":   {"__debezium.source.column.type": "UUID"},
	"j":   {"__debezium.source.column.type": "JSON"},
}

var wantConnectName = map[string]string{
	"d": "org.apache.kafka.connect.data.Decimal", "b10": "io.debezium.data.Bits", "dt": "io.debezium.time.Date",
	"tm6": "io.debezium.time.MicroTime", "dt0": "io.debezium.time.Timestamp", "dt3": "io.debezium.time.Timestamp",
	"dt6": "io.debezium.time.MicroTimestamp", "ts6": "io.debezium.time.ZonedTimestamp", "y": "io.debezium.time.Year",
	"e": "io.debezium.data.Enum", "s": "io.debezium.data.EnumSet", "j": "io.debezium.data.Json",
	"g": "io.debezium.data.geometry.Geometry", "p": "io.debezium.data.geometry.Point",
}

func checkMatrixRow(t *testing.T, what string, after map[string]any) {
	t.Helper()
	for col, want := range matrixWant {
		got, ok := after[col]
		if !ok {
			t.Errorf("%s: column %s missing", what, col)
			continue
		}
		if !sameValue(got, want) {
			t.Errorf("%s: column %s = %T %v, want %T %v", what, col, got, got, want, want)
		}
	}
}

func sameValue(got, want any) bool {
	switch w := want.(type) {
	case *big.Rat:
		g, ok := got.(*big.Rat)
		return ok && g.Cmp(w) == 0
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k := range w {
			if !sameValue(g[k], w[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

// fieldSchemas maps the after-record's field names to their Avro type
// (the non-null branch of the union).
func fieldSchemas(t *testing.T, valueSchema string) map[string]map[string]any {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal([]byte(valueSchema), &env); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, f := range env["fields"].([]any) {
		fm := f.(map[string]any)
		if fm["name"] != "before" {
			continue
		}
		var rec map[string]any
		for _, br := range fm["type"].([]any) {
			if m, ok := br.(map[string]any); ok {
				rec = m
			}
		}
		for _, cf := range rec["fields"].([]any) {
			cm := cf.(map[string]any)
			typ := cm["type"]
			if u, ok := typ.([]any); ok {
				for _, br := range u {
					if br != "null" {
						typ = br
					}
				}
			}
			if m, ok := typ.(map[string]any); ok {
				out[cm["name"].(string)] = m
			} else {
				out[cm["name"].(string)] = map[string]any{"type": typ}
			}
		}
	}
	return out
}

func TestTypeMatrix(t *testing.T) {
	d := newTestDB(t)
	d.exec(matrixDDL,
		"INSERT INTO tm VALUES (1, "+matrixValues+")",
		"INSERT INTO tm (id) VALUES (3)")
	r := d.start(d.config("tm"), &MemoryHistory{}, nil)
	waitFor(t, 30*time.Second, "snapshot rows", func() bool { return r.rt.count() >= 2 })
	d.exec("INSERT INTO tm VALUES (2, " + matrixValues + ")")
	waitFor(t, 30*time.Second, "streamed row", func() bool { return r.rt.count() >= 3 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	evs := r.rt.decode(t, r.rt.recs())
	byID := map[int]event{}
	for _, e := range evs {
		byID[e.After["id"].(int)] = e
	}
	if e := byID[1]; e.Op != "r" {
		t.Fatalf("row 1: op %q, want r", e.Op)
	}
	checkMatrixRow(t, "snapshot", byID[1].After)
	if e := byID[2]; e.Op != "c" {
		t.Fatalf("row 2: op %q, want c", e.Op)
	}
	checkMatrixRow(t, "binlog", byID[2].After)
	for col, v := range byID[3].After {
		if col != "id" && v != nil {
			t.Errorf("NULL row: column %s = %v, want null", col, v)
		}
	}
	// Snapshot and binlog must agree value for value.
	for col := range byID[1].After {
		if col == "id" {
			continue
		}
		if !sameValue(byID[1].After[col], byID[2].After[col]) {
			t.Errorf("column %s: snapshot %v != binlog %v", col, byID[1].After[col], byID[2].After[col])
		}
	}
	if !strings.Contains(r.rt.logBuf.String(), "without a Debezium mapping") || !strings.Contains(r.rt.logBuf.String(), "u uuid") {
		t.Errorf("no warning about the UUID column's unknown type in the log")
	}

	schemaText, err := r.rt.SchemaByID(t.Context(), r.rt.ids[lastValueSchema(r.rt, "tp."+d.name+".tm-value")])
	if err != nil {
		t.Fatal(err)
	}
	fields := fieldSchemas(t, schemaText)
	for col, want := range wantParams {
		got, _ := fields[col]["connect.parameters"].(map[string]any)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("column %s: connect.parameters[%s] = %v, want %s (all: %v)", col, k, got[k], v, got)
			}
		}
	}
	for col, want := range wantConnectName {
		if got := fields[col]["connect.name"]; got != want {
			t.Errorf("column %s: connect.name = %v, want %s", col, got, want)
		}
	}
	// Debezium's key fields carry no column.propagate.source.type
	// parameters.
	keyText, err := r.rt.SchemaByID(t.Context(), r.rt.ids[lastValueSchema(r.rt, "tp."+d.name+".tm-key")])
	if err != nil {
		t.Fatal(err)
	}
	if keyText != `{"type":"record","name":"Key","namespace":"tp.`+d.name+`.tm","fields":[{"name":"id","type":"int"}],"connect.name":"tp.`+d.name+`.tm.Key"}` {
		t.Errorf("key schema %s", keyText)
	}
}

func lastValueSchema(f *fakeRuntime, subject string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.subjects[subject]
	return v[len(v)-1]
}

// TestDDLAndInformationSchemaAgree checks that a table's shape parsed from
// its CREATE TABLE (the binlog path) equals the shape read from
// information_schema (the snapshot path): otherwise a restart across the
// two would register a spurious schema version or misdecode rows.
func TestDDLAndInformationSchemaAgree(t *testing.T) {
	d := newTestDB(t)
	d.exec(matrixDDL)
	f := testFilter(t, d.name+".tm")
	dp := newDDLParser("utf8mb4")
	fromDDL := newCatalog()
	fromDDL.dbCharset[d.name] = "utf8mb4"
	if _, err := dp.apply(fromDDL, f, d.name, matrixDDL); err != nil {
		t.Fatal(err)
	}
	fromIS, _, err := readCatalog(d.conn, f, dp, flavorMariaDB)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fromDDL.tables[tableID{d.name, "tm"}], fromIS.tables[tableID{d.name, "tm"}]
	if a == nil || b == nil {
		t.Fatalf("table missing: ddl %v, information_schema %v", a != nil, b != nil)
	}
	if len(a.Columns) != len(b.Columns) {
		t.Fatalf("columns: ddl %d, information_schema %d", len(a.Columns), len(b.Columns))
	}
	for i := range a.Columns {
		ca, cb := a.Columns[i], b.Columns[i]
		// Nullability and defaults do not reach the schema (non-key columns
		// are always optional); compare what does.
		cola, colb := compileColumn(ca, false), compileColumn(cb, false)
		ta, tb := cola.connectType(), colb.connectType()
		if !reflect.DeepEqual(ta, tb) || ca.Charset != cb.Charset || !reflect.DeepEqual(ca.EnumValues, cb.EnumValues) {
			t.Errorf("column %s:\n ddl               %+v %+v\n information_schema %+v %+v", ca.Name, ca, ta, cb, tb)
		}
	}
	if !reflect.DeepEqual(a.PK, b.PK) {
		t.Errorf("pk: ddl %v, information_schema %v", a.PK, b.PK)
	}

	// Defaults: what the CREATE TABLE says and what information_schema
	// prints give the same schema default.
	const dfltDDL = `CREATE TABLE dflt (id int PRIMARY KEY, a int DEFAULT -3, b decimal(10,2) DEFAULT 1.5, c varchar(20) DEFAULT 'it''s \\ ok',
 e tinyint(1) DEFAULT true, f double DEFAULT -1.5e10, g date DEFAULT '2020-02-03', h datetime(3) DEFAULT '2020-01-01 10:00:00.5',
 i timestamp NULL DEFAULT '2020-01-01 10:00:00', j time DEFAULT '10:11:12', k enum('x','y') DEFAULT 'y', l bit(3) DEFAULT b'101',
 m datetime DEFAULT CURRENT_TIMESTAMP, n int DEFAULT (1 + 2), o varchar(5) DEFAULT NULL, p year DEFAULT 2020, q varchar(5) DEFAULT '')`
	d.exec(dfltDDL)
	f = testFilter(t, d.name+".dflt")
	if _, err := dp.apply(fromDDL, f, d.name, dfltDDL); err != nil {
		t.Fatal(err)
	}
	if fromIS, _, err = readCatalog(d.conn, f, dp, flavorMariaDB); err != nil {
		t.Fatal(err)
	}
	a, b = fromDDL.tables[tableID{d.name, "dflt"}], fromIS.tables[tableID{d.name, "dflt"}]
	for i := range a.Columns {
		ca, cb := compileColumn(a.Columns[i], false), compileColumn(b.Columns[i], false)
		va, ra, _ := ca.defaultValue()
		vb, rb, _ := cb.defaultValue()
		if !reflect.DeepEqual(va, vb) || ra != rb {
			t.Errorf("column %s default: ddl %#v (%s), information_schema %#v (%s)", a.Columns[i].Name, va, ra, vb, rb)
		}
		if name := a.Columns[i].Name; (va == nil) != (name == "id" || name == "m" || name == "n" || name == "o") {
			t.Errorf("column %s: default %#v", name, va)
		}
	}
}

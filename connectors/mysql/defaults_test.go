package mysql

import (
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Defaults read from DDL and from information_schema (as MariaDB 10.11
// prints COLUMN_DEFAULT) give the same schema default.
func TestColumnDefaultsFromDDLAndInfoSchema(t *testing.T) {
	cases := []struct {
		typ, ddl, info string // info "" is SQL NULL
		want           any
		reason         string
	}{
		{"int", "7", "7", int32(7), ""},
		{"int", "-3", "-3", int32(-3), ""},
		{"int unsigned", "4000000000", "4000000000", int64(4000000000), ""},
		{"tinyint(1)", "true", "1", int32(1), ""},
		{"decimal(10,2)", "1.5", "1.50", schema.DecimalBytes(big.NewInt(150)), ""},
		{"double", "-1.5e10", "-15000000000", -1.5e10, ""},
		{"float", "1.25", "1.25", float32(1.25), ""},
		{"varchar(20)", "'it''s'", "'it''s'", "it's", ""},
		{"varchar(20)", `'back\\slash'`, `'back\\slash'`, `back\slash`, ""},
		{"varchar(20)", "''", "''", "", ""},
		{"varchar(20)", "'NULL'", "'NULL'", "NULL", ""},
		{"char(5)", "_utf8mb4'ab'", "'ab'", "ab", ""},
		{"date", "'2020-02-03'", "'2020-02-03'", int32(18295), ""},
		{"datetime(3)", "'2020-01-01 10:00:00.5'", "'2020-01-01 10:00:00.500'", int64(1577872800500), ""},
		{"datetime", "'2020-01-01'", "'2020-01-01 00:00:00'", int64(1577836800000), ""},
		{"timestamp", "'2020-01-01 10:00:00'", "'2020-01-01 10:00:00'", "2020-01-01T10:00:00Z", ""},
		{"time", "'10:11:12'", "'10:11:12'", int64(36672000000), ""},
		{"year", "2020", "2020", int32(2020), ""},
		{"enum('sad','happy')", "'happy'", "'happy'", "happy", ""},
		{"set('a','b')", "'a,b'", "'a,b'", "a,b", ""},
		{"bit(3)", "b'101'", "b'101'", []byte{5}, ""},
		{"bit(1)", "b'1'", "b'1'", true, ""},
		// No default, or a NULL one, or a zero date (null in an optional column).
		{"varchar(5)", "NULL", "NULL", nil, ""},
		{"date", "'0000-00-00'", "'0000-00-00'", nil, ""},
		// Not constants: no schema default (Debezium writes the epoch).
		{"datetime", "CURRENT_TIMESTAMP", "current_timestamp()", nil, source.ReasonNonConstantDefault},
		{"timestamp", "now()", "current_timestamp()", nil, source.ReasonNonConstantDefault},
		{"int", "(1 + 2)", "(1 + 2)", nil, source.ReasonNonConstantDefault},
		{"double", "rand()", "rand()", nil, source.ReasonNonConstantDefault},
		{"varchar(36)", "uuid()", "uuid()", nil, source.ReasonNonConstantDefault},
		// Constants the schema does not carry.
		{"varbinary(4)", "x'00ff'", `'\0?'`, nil, source.ReasonDefaultNotCarried},
	}
	d := newDDLParser("")
	f := testFilter(t, "db.*")
	for _, tc := range cases {
		cat := newCatalog()
		res, err := d.apply(cat, f, "db", "CREATE TABLE db.t (id int primary key, c "+tc.typ+" DEFAULT "+tc.ddl+")")
		if err != nil || len(res.changes) != 1 {
			t.Fatalf("%s DEFAULT %s: %v", tc.typ, tc.ddl, err)
		}
		fromDDL := res.changes[0].Table.Columns[1]
		fromInfo := d.columnFromInfoSchema("c", tc.typ, "utf8mb4", "")
		info := tc.info
		infoSchemaDefault(&fromInfo, &info)
		for _, src := range []struct {
			name string
			def  colDef
		}{{"ddl", fromDDL}, {"information_schema", fromInfo}} {
			c := compileColumn(src.def, false)
			v, reason, _ := c.defaultValue()
			if !reflect.DeepEqual(v, tc.want) || reason != tc.reason {
				t.Errorf("%s DEFAULT %s (%s): default %#v reason %q, want %#v %q", tc.typ, tc.ddl, src.name, v, reason, tc.want, tc.reason)
			}
		}
	}
	// ALTER COLUMN SET DEFAULT / DROP DEFAULT, and an INSTANT add.
	cat := newCatalog()
	for _, q := range []string{
		"CREATE TABLE db.t (id int primary key, n int)",
		"ALTER TABLE db.t ALTER COLUMN n SET DEFAULT 5",
		"ALTER TABLE db.t ADD COLUMN p int NOT NULL DEFAULT 7, ALGORITHM=INSTANT",
	} {
		if _, err := d.apply(cat, f, "db", q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tb := cat.tables[tableID{"db", "t"}]
	if n, p := tb.Columns[1], tb.Columns[2]; n.DefaultExpr == nil || *n.DefaultExpr != "5" || p.DefaultExpr == nil || *p.DefaultExpr != "7" {
		t.Fatalf("after SET DEFAULT and ADD COLUMN: %+v %+v", n, p)
	}
	if _, err := d.apply(cat, f, "db", "ALTER TABLE db.t ALTER COLUMN n DROP DEFAULT"); err != nil {
		t.Fatal(err)
	}
	if n := cat.tables[tableID{"db", "t"}].Columns[1]; n.HasDefault {
		t.Fatalf("after DROP DEFAULT: %+v", n)
	}
	// The history record keeps Debezium's names.
	b, _ := json.Marshal(cat.tables[tableID{"db", "t"}].Columns[2])
	if !strings.Contains(string(b), `"hasDefaultValue":true,"defaultValueExpression":"7"`) {
		t.Errorf("history column JSON %s", b)
	}
}

// End to end through the connector: defaults from information_schema at
// snapshot, from the binlog's ALTER TABLE afterwards; a column added with a
// non-constant default gets none, a warning and a re-read request.
func TestIntegrationColumnDefaults(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE film (id INT PRIMARY KEY, title VARCHAR(50) NOT NULL DEFAULT 'untitled', created DATETIME DEFAULT CURRENT_TIMESTAMP)",
		"INSERT INTO film (id) VALUES (1)")
	r := d.start(d.config("film"), &MemoryHistory{}, nil)
	waitFor(t, 30*time.Second, "snapshot", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	d.exec("ALTER TABLE film ADD COLUMN points INT NOT NULL DEFAULT 7, ALGORITHM=INSTANT",
		"INSERT INTO film (id) VALUES (2)",
		"ALTER TABLE film ADD COLUMN seen DATETIME(6) DEFAULT NOW(6)",
		"INSERT INTO film (id) VALUES (3)")
	d.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	subj := "tp." + d.name + ".film-value"
	versions := r.rt.subjects[subj]
	if len(versions) != 3 {
		t.Fatalf("%d value schema versions, want 3", len(versions))
	}
	field := func(version int, name string) map[string]any {
		t.Helper()
		var env struct {
			Fields []struct {
				Type json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(versions[version]), &env); err != nil {
			t.Fatal(err)
		}
		var before []json.RawMessage
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
		t.Fatalf("version %d has no field %s", version, name)
		return nil
	}
	if f := field(0, "title"); f["default"] != "untitled" {
		t.Errorf("snapshot: title %v, want default untitled", f)
	}
	if f := field(0, "created"); f["default"] != nil {
		t.Errorf("snapshot: created %v has a default; CURRENT_TIMESTAMP is not a constant", f)
	}
	if f := field(1, "points"); f["default"] != float64(7) {
		t.Errorf("after ADD COLUMN points DEFAULT 7: %v", f)
	}
	if f := field(2, "seen"); f["default"] != nil {
		t.Errorf("after ADD COLUMN seen DEFAULT NOW(6): %v", f)
	}
	log := r.rt.logBuf.String()
	if !strings.Contains(log, "non-constant default; existing rows need a re-read of the table") ||
		!strings.Contains(log, "table="+d.name+".film column=seen") {
		t.Errorf("no warning naming table and column; log:\n%s", log)
	}
	var m dto.Metric
	if err := r.rt.metrics.ResnapshotRequests.WithLabelValues("c-"+d.name, d.name+".film", source.ReasonNonConstantDefault).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.GetCounter().GetValue() != 1 {
		t.Errorf("resnapshot requests %v, want 1", m.GetCounter().GetValue())
	}
}

// A table and columns Avro cannot spell: the topic and field names are
// adjusted as Debezium's, the columns' own names travel in
// __debezium.source.column.name on value fields (never on key fields).
func TestIntegrationOddNames(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE `My Table \"quoted\"` (id INT PRIMARY KEY, `select` TEXT, `col with space` INT, `ünïcödé 列` TEXT)",
		"INSERT INTO `My Table \"quoted\"` VALUES (1, 'kw', 5, 'u')")
	r := d.start(d.config(`My Table "quoted"`), &MemoryHistory{}, nil)
	waitFor(t, 30*time.Second, "snapshot", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	d.exec("INSERT INTO `My Table \"quoted\"` VALUES (2, 'kw2', 6, 'u2')")
	d.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	topic := "tp." + d.name + ".My_Table__quoted_"
	evs := r.rt.decode(t, r.rt.recs())
	if len(evs) != 2 || evs[0].Topic != topic || evs[1].After["select"] != "kw2" || evs[1].After["col_with_space"] != 6 || evs[1].After["_n_c_d___"] != "u2" {
		t.Fatalf("events %+v", evs)
	}
	value := lastValueSchema(r.rt, topic+"-value")
	for _, frag := range []string{`"__debezium.source.column.name":"select"`, `"__debezium.source.column.name":"col with space"`,
		`"__debezium.source.column.name":"ünïcödé 列"`, `"__debezium.source.column.name":"id"`} {
		if !strings.Contains(value, frag) {
			t.Errorf("value schema lacks %s: %s", frag, value)
		}
	}
	if key := lastValueSchema(r.rt, topic+"-key"); strings.Contains(key, "__debezium") {
		t.Errorf("key schema has source column parameters: %s", key)
	}
}

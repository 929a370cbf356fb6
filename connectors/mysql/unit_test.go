package mysql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

func TestConfigValidate(t *testing.T) {
	ok := func() *Config {
		c := NewConfig()
		c.URL = "mysql://cdc:secret@db:3307"
		c.Tables = []string{"shop.orders", "shop.line_*"}
		c.TopicPrefixValue = "shop"
		return c
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	ep, err := ok().endpoint()
	if err != nil || ep != (endpoint{Host: "db", Port: 3307, User: "cdc", Password: "secret"}) {
		t.Errorf("endpoint %+v %v", ep, err)
	}
	c := ok()
	c.URL = "root:mariadb@tcp(127.0.0.1:33306)/"
	if ep, err := c.endpoint(); err != nil || ep != (endpoint{Host: "127.0.0.1", Port: 33306, User: "root", Password: "mariadb"}) {
		t.Errorf("DSN endpoint %+v %v", ep, err)
	}
	cases := []struct {
		mod  func(*Config)
		key  string
		text string
	}{
		{func(c *Config) { c.URL = "" }, "url", "is required"},
		{func(c *Config) { c.URL = "postgres://a:b@h" }, "url", "not mysql://"},
		{func(c *Config) { c.URL = "mysql://h:3306" }, "url", "no user"},
		{func(c *Config) { c.URL, c.Host = "", "h" }, "user", "is required with host"},
		{func(c *Config) { c.Tables = nil }, "tables", "at least one"},
		{func(c *Config) { c.Tables = []string{"orders"} }, "tables[0]", `"database.table"`},
		{func(c *Config) { c.TopicPrefixValue = "" }, "topic_prefix", "is required"},
		{func(c *Config) { c.TopicPrefixValue = "a b" }, "topic_prefix", "may only contain"},
		{func(c *Config) { c.Snapshot = "sometimes" }, "snapshot", "not one of"},
		{func(c *Config) { c.SnapshotChunkRows = 0 }, "snapshot_chunk_rows", "at least 1"},
		{func(c *Config) { c.SnapshotParallelism = 0 }, "snapshot_parallelism", "between 1 and 64"},
		{func(c *Config) { c.KeyColumns = map[string][]string{"shop.*": {"a"}} }, "key_columns.shop.*", "not a pattern"},
		{func(c *Config) { c.KeyColumns = map[string][]string{"shop.t": {"a", "A"}} }, "key_columns.shop.t", "twice"},
	}
	for _, tc := range cases {
		c := ok()
		tc.mod(c)
		err := c.Validate()
		var fe *source.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a FieldError", tc.key, err)
			continue
		}
		found := false
		for _, e := range unwrapAll(err) {
			if errors.As(e, &fe) && fe.Key == tc.key && strings.Contains(fe.Msg, tc.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("want %s: %q, got %v", tc.key, tc.text, err)
		}
	}
	// The password never appears in a URL error.
	c = ok()
	c.URL = "mysql://u:topsecret@host:notaport"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("bad port error %v (must not show the password)", err)
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestServerIDDerivation(t *testing.T) {
	c := NewConfig()
	a, b := c.serverID("orders-cdc"), c.serverID("orders-cdc")
	if a != b {
		t.Errorf("derived server_id not stable: %d %d", a, b)
	}
	if a < 1<<30 || a >= 1<<31 {
		t.Errorf("derived server_id %d outside 1073741824..2147483646", a)
	}
	if c.serverID("other") == a {
		t.Errorf("two names gave the same id")
	}
	c.ServerID = 42
	if c.serverID("x") != 42 {
		t.Error("configured server_id ignored")
	}
}

func col(typeName string, mod func(*colDef)) *column {
	d := colDef{Name: "c", TypeName: typeName, TypeExpression: strings.ToLower(typeName)}
	if mod != nil {
		mod(&d)
	}
	c := compileColumn(d, false)
	return &c
}

func TestBinlogValueConversions(t *testing.T) {
	cases := []struct {
		c    *column
		in   any
		want any
	}{
		// Without signedness metadata go-mysql hands unsigned columns signed values.
		{col("TINYINT UNSIGNED", nil), int8(-1), int32(255)},
		{col("SMALLINT UNSIGNED", nil), int16(-1), int32(65535)},
		{col("MEDIUMINT UNSIGNED", nil), int32(-1), int32(16777215)},
		{col("INT UNSIGNED", nil), int32(-1), int64(4294967295)},
		{col("BIGINT UNSIGNED", nil), int64(-1), int64(-1)},
		{col("BIGINT UNSIGNED", nil), uint64(1 << 63), int64(-1 << 63)},
		{col("INT UNSIGNED", nil), uint32(4294967295), int64(4294967295)},
		{col("SMALLINT", nil), int16(-5), int32(-5)},
		{col("DECIMAL", func(d *colDef) { d.Length, d.Scale = intp(10), intp(3) }), "-1.5", schema.DecimalBytes(big.NewInt(-1500))},
		{col("DECIMAL", func(d *colDef) { d.Length, d.Scale = intp(5), intp(0) }), "00042", schema.DecimalBytes(big.NewInt(42))},
		{col("FLOAT", nil), float32(0.1), float32(0.1)},
		{col("FLOAT", func(d *colDef) { d.Length, d.Scale = intp(7), intp(2) }), float32(0.1), float64(float32(0.1))}, // the stored float widened, as real Debezium writes it (TestDebeziumDiffMariaDB)
		{col("BIT", func(d *colDef) { d.Length = intp(1) }), int64(0), false},
		{col("BIT", func(d *colDef) { d.Length = intp(17) }), int64(0x10203), []byte{0x03, 0x02, 0x01}},
		{col("DATE", nil), "1969-12-31", int32(-1)},
		{col("DATE", nil), "0000-00-00", nil},
		{col("DATETIME", nil), "0000-00-00 00:00:00", nil},
		{col("DATETIME", func(d *colDef) { d.Length = intp(6) }), "1970-01-01 00:00:01.000002", int64(1000002)},
		{col("TIME", func(d *colDef) { d.Length = intp(3) }), "-00:00:01.500", int64(-1500000)},
		{col("TIMESTAMP", func(d *colDef) { d.Length = intp(3) }), "2020-01-02 03:04:05.600", "2020-01-02T03:04:05.600Z"},
		{col("TIMESTAMP", nil), "0000-00-00 00:00:00", nil},
		{col("YEAR", nil), 1999, int32(1999)},
		{col("ENUM", func(d *colDef) { d.EnumValues = []string{"x", "y"} }), int64(2), "y"},
		{col("ENUM", func(d *colDef) { d.EnumValues = []string{"x", "y"} }), int64(0), ""},
		{col("SET", func(d *colDef) { d.EnumValues = []string{"a", "b", "c"} }), int64(5), "a,c"},
		{col("VARCHAR", func(d *colDef) { d.Charset = "latin1" }), "caf\xe9 \x80", "café €"},
		{col("BINARY", func(d *colDef) { d.Length = intp(3) }), "a", []byte{'a', 0, 0}},
		{col("JSON", nil), `{"k":1}`, `{"k":1}`},
		{col("INET6", nil), string([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), "2001:db8::1"},
		{col("UUID", nil), string([]byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40}), "123e4567-e89b-12d3-a456-426614174000"},
		{col("VECTOR", nil), []byte{0xff, 0x00}, "ff00"}, // unknown type: text (hex when not UTF-8)
	}
	for _, tc := range cases {
		got, err := tc.c.fromBinlog(tc.in)
		if err != nil {
			t.Errorf("%s %v: %v", tc.c.def.TypeName, tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %#v: got %T %#v, want %T %#v", tc.c.def.TypeName, tc.in, got, got, tc.want, tc.want)
		}
	}
	// A zero date in a key column cannot be null.
	k := compileColumn(colDef{Name: "k", TypeName: "DATE"}, true)
	if v, _ := k.fromBinlog("0000-00-00"); v != int32(0) {
		t.Errorf("zero date key: %v", v)
	}
	if _, err := col("INT", nil).fromBinlog("text"); err == nil {
		t.Error("a string for an INT column was accepted")
	}
}

func TestTextValueConversions(t *testing.T) {
	bits := col("BIT", func(d *colDef) { d.Length = intp(10) })
	if v, _ := bits.fromText(textValue{b: []byte{0x02, 0x03}}); !bytes.Equal(v.([]byte), []byte{0x03, 0x02}) {
		t.Errorf("BIT(10) text: %v", v)
	}
	u := col("INT UNSIGNED", nil)
	if v, _ := u.fromText(textValue{isInt: true, unsigned: true, u: 4294967295}); v != int64(4294967295) {
		t.Errorf("INT UNSIGNED text: %v", v)
	}
	f := col("FLOAT", nil)
	if v, _ := f.fromText(textValue{isFloat: true, f: 0.1}); v != float32(0.1) {
		t.Errorf("FLOAT text: %v", v)
	}
	if v, _ := col("VARCHAR", nil).fromText(textValue{null: true}); v != nil {
		t.Errorf("NULL: %v", v)
	}
}

func TestKeyLiteral(t *testing.T) {
	ts, err := newTableState("p", &tableDef{DB: "d", Name: "t", PK: []string{"a", "b", "c"}, Columns: []colDef{
		{Name: "a", TypeName: "INT"}, {Name: "b", TypeName: "VARCHAR", Charset: "utf8mb4"}, {Name: "c", TypeName: "VARBINARY"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ts.afterKey([]textValue{{isInt: true, i: 7}, {b: []byte("it's")}, {b: []byte{0, 0xff}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "(`a` > 7) OR (`a` = 7 AND `b` > 'it''s') OR (`a` = 7 AND `b` = 'it''s' AND `c` > X'00ff')"
	if w != want {
		t.Errorf("afterKey:\n got %s\nwant %s", w, want)
	}
}

func TestOffsetRoundTripAndCompare(t *testing.T) {
	p := position{File: "mysql-bin.000012", Pos: 4567, GTIDs: "0-1-100,1-2-5", ServerID: 7, TsSec: 1700000000}
	b, _ := json.Marshal(p.offset())
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"file", "pos", "row", "event", "gtids", "ts_sec", "server_id"} {
		if _, ok := m[k]; !ok {
			t.Errorf("offset lacks Debezium field %q: %s", k, b)
		}
	}
	if _, ok := m["snapshot"]; ok {
		t.Errorf("a finished position carries snapshot: %s", b)
	}
	q, err := parseOffset(m)
	if err != nil || q != p {
		t.Errorf("round trip: %+v %v", q, err)
	}
	// Debezium's own offsets (numbers as JSON numbers or strings).
	dbz := map[string]any{"transaction_id": nil, "ts_sec": 1698175034.0, "file": "mysql_bin_log.008984", "pos": "219", "row": 148.0, "server_id": 1.0, "event": 12.0}
	if q, err := parseOffset(dbz); err != nil || q.File != "mysql_bin_log.008984" || q.Pos != 219 {
		t.Errorf("Debezium offset: %+v %v", q, err)
	}
	if q, _ := parseOffset(map[string]any{"file": "f.1", "pos": 4, "snapshot": true}); !q.Snapshot {
		t.Error("snapshot flag lost")
	}

	at := func(gtids, file string, pos uint32) position { return position{GTIDs: gtids, File: file, Pos: pos} }
	cmp := []struct {
		a, b   position
		flavor string
		want   bool
	}{
		{at("0-1-5", "x.1", 100), at("0-1-6", "x.1", 50), flavorMariaDB, true}, // GTIDs decide over file/pos
		{at("0-1-7", "", 0), at("0-1-6", "", 0), flavorMariaDB, false},
		{at("0-1-5,1-1-3", "", 0), at("0-1-9", "", 0), flavorMariaDB, false}, // domain 1 unknown to b
		{at("", "x.000009", 900), at("", "x.000010", 4), flavorMariaDB, true},
		{at("", "x.000010", 900), at("", "x.000010", 4), flavorMariaDB, false},
		{at("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "", 0), at("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-9", "", 0), flavorMySQL, true},
		{at("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-10", "", 0), at("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-9", "", 0), flavorMySQL, false},
	}
	for _, c := range cmp {
		if got := c.a.atOrBefore(c.b, c.flavor); got != c.want {
			t.Errorf("%s atOrBefore %s = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestHistoryRebuild(t *testing.T) {
	ctx := context.Background()
	store := &MemoryHistory{}
	h := &history{store: store, server: "p", flavor: flavorMariaDB}
	dp := newDDLParser("utf8mb4")
	f := testFilter(t, "db.*")
	cat := newCatalog()
	applyAll(t, dp, cat, f, "db", "CREATE TABLE t (id int primary key)")
	p1 := position{File: "b.000001", Pos: 100, GTIDs: "0-1-10"}
	if err := h.writeBaseline(ctx, cat, p1, baselineDDL(cat)); err != nil {
		t.Fatal(err)
	}
	res := applyAll(t, dp, cat, f, "db", "ALTER TABLE t ADD COLUMN v int")[0]
	p2 := position{File: "b.000001", Pos: 200, GTIDs: "0-1-11"}
	if err := h.append(ctx, &historyRecord{Position: p2.offset(), DDL: "ALTER TABLE t ADD COLUMN v int", TableChanges: res.changes}); err != nil {
		t.Fatal(err)
	}
	shape := func(pos position) string {
		c, _, err := h.rebuild(ctx, pos)
		if err != nil {
			return err.Error()
		}
		return colSummary(c.tables[tableID{"db", "t"}])
	}
	if got := shape(position{File: "b.000001", Pos: 150, GTIDs: "0-1-10"}); got != "id:INT pk=id" {
		t.Errorf("before the ALTER: %s", got)
	}
	if got := shape(position{File: "b.000001", Pos: 250, GTIDs: "0-1-11"}); got != "id:INT v:INT pk=id" {
		t.Errorf("after the ALTER: %s", got)
	}
	if got := shape(position{GTIDs: "0-1-9"}); !strings.Contains(got, "no baseline") {
		t.Errorf("before the baseline: %s", got)
	}
	// A baseline cut short by a crash is damaged, not silently partial.
	cat.tables[tableID{"db", "u"}] = cat.tables[tableID{"db", "t"}].clone()
	cat.tables[tableID{"db", "u"}].Name = "u"
	n := store.Len()
	if err := h.writeBaseline(ctx, cat, position{GTIDs: "0-1-12"}, nil); err != nil {
		t.Fatal(err)
	}
	store.Truncate(n + 2) // reset record + one of two tables
	if _, _, err := h.rebuild(ctx, position{GTIDs: "0-1-12"}); !errors.Is(err, errHistoryDamaged) {
		t.Errorf("partial baseline: %v", err)
	}
	// Other connectors' records in a shared topic are skipped.
	other := &history{store: store, server: "q", flavor: flavorMariaDB}
	if _, _, err := other.rebuild(ctx, position{GTIDs: "0-1-11"}); !errors.Is(err, errHistoryMissing) {
		t.Errorf("foreign records used: %v", err)
	}
	store.Corrupt(0, []byte("garbage"))
	if _, _, err := h.rebuild(ctx, position{GTIDs: "0-1-11"}); !errors.Is(err, errHistoryDamaged) {
		t.Errorf("corrupt record: %v", err)
	}
}

func TestRedactHandler(t *testing.T) {
	buf := &lockedBuf{}
	rt := newFakeRuntime(t, nil)
	_ = rt
	log := libLogger(newTestLogger(buf), "s3cr3t-pw")
	log.Info("create BinlogSyncer", "config", "{Password:s3cr3t-pw}")
	log.Error("failed with s3cr3t-pw", "dsn", "u:s3cr3t-pw@h")
	out := buf.String()
	if strings.Contains(out, "s3cr3t-pw") {
		t.Errorf("password in the log: %s", out)
	}
	if !strings.Contains(out, "level=ERROR") || strings.Contains(out, "level=INFO") {
		t.Errorf("levels: errors kept, chatter demoted to DEBUG: %s", out)
	}
}

func TestCheckTableMap(t *testing.T) {
	ts, err := newTableState("p", &tableDef{DB: "d", Name: "t", PK: []string{"id"}, Columns: []colDef{
		{Name: "id", TypeName: "INT"}, {Name: "v", TypeName: "VARCHAR", Charset: "utf8mb4"}, {Name: "e", TypeName: "ENUM", EnumValues: []string{"a"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	enumMeta := uint16(gomysql.MYSQL_TYPE_ENUM)<<8 | 1
	ok := &replication.TableMapEvent{ColumnCount: 3, ColumnType: []byte{gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_STRING},
		ColumnMeta: []uint16{0, 400, enumMeta}}
	if err := checkTableMap(ts, ok); err != nil {
		t.Errorf("matching table map: %v", err)
	}
	short := &replication.TableMapEvent{ColumnCount: 2, ColumnType: ok.ColumnType[:2], ColumnMeta: ok.ColumnMeta[:2]}
	if err := checkTableMap(ts, short); err == nil || !strings.Contains(err.Error(), "2 columns but the schema history knows 3") {
		t.Errorf("column count: %v", err)
	}
	wrong := &replication.TableMapEvent{ColumnCount: 3, ColumnType: []byte{gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_STRING},
		ColumnMeta: ok.ColumnMeta}
	if err := checkTableMap(ts, wrong); err == nil || !strings.Contains(err.Error(), "column 1 (id)") {
		t.Errorf("type: %v", err)
	}
	named := *ok
	named.ColumnName = [][]byte{[]byte("id"), []byte("w"), []byte("e")}
	if err := checkTableMap(ts, &named); err == nil || !strings.Contains(err.Error(), `names it "w"`) {
		t.Errorf("names: %v", err)
	}
}

func TestLagBytes(t *testing.T) {
	sizes := map[string]uint64{"b.000001": 1000, "b.000002": 5000, "b.000003": 300}
	order := []string{"b.000001", "b.000002", "b.000003"}
	cases := []struct {
		pos  position
		want int64
		ok   bool
	}{
		{position{File: "b.000003", Pos: 300}, 0, true},
		{position{File: "b.000003", Pos: 100}, 200, true},
		{position{File: "b.000002", Pos: 4000}, 1000 + 300, true},
		{position{File: "b.000001", Pos: 4}, 996 + 5000 + 300, true},
		{position{File: "b.000000", Pos: 4}, 0, false}, // purged
	}
	for _, tc := range cases {
		got, ok := lagBytes(sizes, order, tc.pos)
		if got != tc.want || ok != tc.ok {
			t.Errorf("lagBytes(%s) = %d, %v; want %d, %v", tc.pos, got, ok, tc.want, tc.ok)
		}
	}
}

package sink

import (
	"fmt"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

func TestDecimalText(t *testing.T) {
	cases := []struct {
		b     []byte
		scale int
		want  string
	}{
		{[]byte{0x30, 0x39}, 2, "123.45"},
		{[]byte{0xcf, 0xc7}, 2, "-123.45"},
		{[]byte{0x05}, 3, "0.005"},
		{[]byte{0xfb}, 3, "-0.005"},
		{[]byte{0x00}, 0, "0"},
		{[]byte{0x01}, -2, "100"},
		{[]byte{}, 2, "0.00"},
	}
	for _, c := range cases {
		got, err := decimalText(c.b, c.scale)
		if err != nil || got != c.want {
			t.Errorf("decimalText(%x, %d) = %q, %v; want %q", c.b, c.scale, got, err, c.want)
		}
	}
	r, _ := new(big.Rat).SetString("-1234.5")
	if got, _ := decimalText(r, 2); got != "-1234.50" {
		t.Errorf("decimal from *big.Rat = %q", got)
	}
}

func TestBitString(t *testing.T) {
	// Debezium sends bits little-endian: byte 0 holds bits 0..7.
	if got := bitString([]byte{0x0a}, 4); got != "1010" {
		t.Errorf("bitString = %q", got)
	}
	if got := bitString([]byte{0x01, 0x01}, 10); got != "0100000001" {
		t.Errorf("bitString 10 = %q", got)
	}
	// An unbounded varbit carries pgjdbc's unknown length 2^31-1: the value
	// is its significant bits, not a 2 GiB string of zeros.
	for _, c := range []struct {
		b    []byte
		want string
	}{{[]byte{0x05}, "101"}, {[]byte{0x00}, "0"}, {[]byte{0x01, 0x80}, "1000000000000001"}} {
		if got := bitString(c.b, 1<<31-1); got != c.want {
			t.Errorf("bitString(% x, 2^31-1) = %.40q, want %q", c.b, got, c.want)
		}
	}
	if n, err := BitsUint64("1010"); err != nil || n != 10 {
		t.Errorf("BitsUint64 = %d, %v", n, err)
	}
}

func TestNativeValues(t *testing.T) {
	ts := time.Date(2020, 5, 6, 7, 8, 9, 123456000, time.UTC)
	cases := []struct {
		typ  ColumnType
		in   any
		want any
	}{
		{ColumnType{Kind: KindDate, ConnectName: cnDate}, 18388, time.Date(2020, 5, 6, 0, 0, 0, 0, time.UTC)},
		{ColumnType{Kind: KindTimestamp, ConnectName: cnMicroTimestamp}, ts.UnixMicro(), ts},
		{ColumnType{Kind: KindTimestamp, ConnectName: cnTimestamp}, ts.UnixMilli(), ts.Truncate(time.Millisecond)},
		{ColumnType{Kind: KindTimestamp, ConnectName: cnNanoTimestamp}, ts.UnixNano(), ts},
		{ColumnType{Kind: KindTime, ConnectName: cnTime}, 1500, 1500 * time.Millisecond},
		{ColumnType{Kind: KindTime, ConnectName: cnMicroTime}, int64(1500), 1500 * time.Microsecond},
		{ColumnType{Kind: KindTimestampTZ, ConnectName: cnZonedTimestamp}, "2020-05-06T07:08:09.123456Z", ts},
		{ColumnType{Kind: KindInterval}, int64(2_000_000), 2 * time.Second},
		{ColumnType{Kind: KindInt16}, 7, int64(7)},
		{ColumnType{Kind: KindVarDecimal}, map[string]any{"scale": 3, "value": []byte{0x04, 0xd2}}, "1.234"},
		// A union value as hamba/avro's generic decoder wraps it.
		{ColumnType{Kind: KindString}, map[string]any{"string": "x"}, "x"},
		{ColumnType{Kind: KindArray, Elem: &ColumnType{Kind: KindInt32}}, []any{1, nil, map[string]any{"int": 3}}, []any{int64(1), nil, int64(3)}},
		{ColumnType{Kind: KindBits, BitLength: 3}, []byte{0x05}, "101"},
	}
	for _, c := range cases {
		got, err := nativeValue(c.in, &c.typ)
		if err != nil {
			t.Errorf("%v(%v): %v", c.typ.Kind, c.in, err)
			continue
		}
		if gt, ok := got.(time.Time); ok {
			if !gt.Equal(c.want.(time.Time)) {
				t.Errorf("%v(%v) = %v, want %v", c.typ.Kind, c.in, got, c.want)
			}
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v(%v) = %#v, want %#v", c.typ.Kind, c.in, got, c.want)
		}
	}
	if _, err := nativeValue("yesterday", &ColumnType{Kind: KindTimestampTZ, ConnectName: cnZonedTimestamp}); err == nil {
		t.Error("a bad ZonedTimestamp must fail")
	}
	if _, err := nativeValue("x", &ColumnType{Kind: KindInt64}); err == nil {
		t.Error("a string for an int64 column must fail")
	}
}

func TestColumnTypeFromDebeziumSchema(t *testing.T) {
	s := avro.MustParse(`{"type":"bytes","scale":2,"precision":10,"connect.version":1,
		"connect.parameters":{"scale":"2","connect.decimal.precision":"10","__debezium.source.column.type":"numeric","__debezium.source.column.length":"10","__debezium.source.column.scale":"2"},
		"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}`)
	ct, err := columnType(s, DialectPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if ct.Kind != KindDecimal || ct.Native != "NUMERIC" || ct.Length != 10 || ct.Scale != 2 || ct.Precision != 10 || ct.DecimalScale != 2 {
		t.Fatalf("decimal column type = %+v", ct)
	}
	s = avro.MustParse(`{"type":"int","connect.type":"int16"}`)
	if ct, _ := columnType(s, ""); ct.Kind != KindInt16 || ct.Length != -1 {
		t.Fatalf("int16 = %+v", ct)
	}
	s = avro.MustParse(`{"type":"array","items":["null",{"type":"string","connect.version":1,"connect.name":"io.debezium.data.Uuid"}]}`)
	if ct, _ := columnType(s, ""); ct.Kind != KindArray || ct.Elem.Kind != KindUUID {
		t.Fatalf("uuid[] = %+v", ct)
	}
}

func TestReduce(t *testing.T) {
	ts := &tableState{spec: &TableSpec{}, colsets: map[string]*ColSet{}, keyed: true}
	id := &ColumnSpec{Name: "id", Key: true}
	a := &ColumnSpec{Name: "a"}
	big := &ColumnSpec{Name: "big"}
	full := ts.intern([]*ColumnSpec{id, a, big})
	partial := ts.intern([]*ColumnSpec{id, a})
	up := func(k int64, av string, bv any) Change {
		if bv == nil {
			return Change{Op: OpUpsert, Key: []any{k}, Cols: partial, Row: []any{k, av}}
		}
		return Change{Op: OpUpsert, Key: []any{k}, Cols: full, Row: []any{k, av, bv}}
	}
	del := func(k int64) Change { return Change{Op: OpDelete, Key: []any{k}} }
	show := func(cs []Change) []string {
		var out []string
		for _, c := range cs {
			s := c.Op.String()
			if c.Key != nil {
				s += " " + keyString(c.Key)
			}
			if c.Cols != nil {
				for i, col := range c.Cols.Columns {
					s += " " + col.Name + "=" + anyString(c.Row[i])
				}
			}
			out = append(out, s)
		}
		return out
	}
	got := show(reduce(ts, []Change{
		up(1, "x", "B1"), up(2, "y", "B2"), up(1, "x2", nil), // TOAST column unchanged: keeps B1
		del(2), up(3, "z", "B3"), del(3), up(3, "z2", "B3b"),
	}))
	want := []string{"upsert 1 id=1 a=x2 big=B1", "delete 2", "upsert 3 id=3 a=z2 big=B3b"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reduce:\n got  %q\n want %q", got, want)
	}
	trunc := Change{Op: OpTruncate}
	got = show(reduce(ts, []Change{up(1, "x", "B"), del(2), trunc, up(4, "w", "B4")}))
	want = []string{"truncate", "upsert 4 id=4 a=w big=B4"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reduce with truncate:\n got  %q\n want %q", got, want)
	}
	// insert.mode insert: a delete then an insert of the same key must
	// replace the row, since the delete is dropped.
	ins := up(5, "v", "B5")
	ins.Op = OpInsert
	got = show(reduce(ts, []Change{del(5), ins}))
	if want := []string{"upsert 5 id=5 a=v big=B5"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delete+insert: got %q want %q", got, want)
	}
}

func keyString(k []any) string {
	s := ""
	for _, v := range k {
		s += anyString(v)
	}
	return s
}

func anyString(v any) string {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x).String()
	case string:
		return x
	}
	return "?"
}

func TestTableName(t *testing.T) {
	d := &decoder{format: "${source.schema}.${source.table}"}
	src := map[string]any{"db": "shop", "schema": "public", "table": "orders"}
	if n, err := d.tableName("p.public.orders", src); err != nil || n != "public.orders" {
		t.Fatalf("pg: %q %v", n, err)
	}
	// MySQL events have no schema: the database stands in.
	if n, _ := d.tableName("p.shop.orders", map[string]any{"db": "shop", "table": "orders"}); n != "shop.orders" {
		t.Fatalf("mysql: %q", n)
	}
	d.format = "${topic}"
	if n, _ := d.tableName("a.b.c", nil); n != "a.b.c" {
		t.Fatalf("topic: %q", n)
	}
	d.format = "x_${source.table}"
	if _, err := d.tableName("single", nil); err == nil {
		t.Fatal("want an error when the table cannot be known")
	}
}

// TestReduceMergesByName: an update whose schema version added a column
// (so it has as many columns as the earlier full row although one is a
// placeholder) and lists its fields in another order takes the missing
// value from the earlier change of the key by column name. Placeholders
// neither change can fill stay in Unavail, from either side.
func TestReduceMergesByName(t *testing.T) {
	ts := &tableState{spec: &TableSpec{}, colsets: map[string]*ColSet{}, keyed: true}
	id := &ColumnSpec{Name: "id", Key: true}
	n := &ColumnSpec{Name: "n"}
	body := &ColumnSpec{Name: "body"}
	pic := &ColumnSpec{Name: "pic"}
	points := &ColumnSpec{Name: "points"}
	v1 := ts.intern([]*ColumnSpec{id, n, body, pic})
	v2ph := ts.intern([]*ColumnSpec{id, points, pic, n}) // body unavailable
	v1ph := ts.intern([]*ColumnSpec{id, n})              // body, pic unavailable
	show := func(c Change) string {
		s := ""
		for i, col := range c.Cols.Columns {
			s += fmt.Sprintf("%s=%v ", col.Name, c.Row[i])
		}
		s += "unavail="
		for _, u := range c.Unavail {
			s += u.Name + ","
		}
		return s
	}
	got := reduce(ts, []Change{
		{Op: OpUpsert, Key: []any{int64(1)}, Cols: v1, Row: []any{int64(1), int64(1), "B1", "P1"}},
		{Op: OpUpsert, Key: []any{int64(1)}, Cols: v2ph, Row: []any{int64(1), int64(7), "P1", int64(2)}, Unavail: []*ColumnSpec{body}},
	})
	if len(got) != 1 || show(got[0]) != "id=1 points=7 pic=P1 n=2 body=B1 unavail=" {
		t.Fatalf("same column count across an ADD COLUMN: got %q", show(got[0]))
	}
	// Both placeholders: nothing to take, body stays unavailable; pic,
	// unavailable in the first, is sent by the second.
	got = reduce(ts, []Change{
		{Op: OpUpsert, Key: []any{int64(2)}, Cols: v1ph, Row: []any{int64(2), int64(1)}, Unavail: []*ColumnSpec{body, pic}},
		{Op: OpUpsert, Key: []any{int64(2)}, Cols: v2ph, Row: []any{int64(2), int64(7), "P2", int64(3)}, Unavail: []*ColumnSpec{body}},
	})
	if s := show(got[0]); s != "id=2 points=7 pic=P2 n=3 unavail=body," {
		t.Fatalf("placeholders on both sides: got %q", s)
	}
	// The later change lacks a column (its schema version has none) the
	// earlier one had a placeholder for: still unknown.
	got = reduce(ts, []Change{
		{Op: OpUpsert, Key: []any{int64(3)}, Cols: v1ph, Row: []any{int64(3), int64(1)}, Unavail: []*ColumnSpec{body, pic}},
		{Op: OpUpsert, Key: []any{int64(3)}, Cols: v1, Row: []any{int64(3), int64(2), "B3", "P3"}},
		{Op: OpUpsert, Key: []any{int64(3)}, Cols: v1ph, Row: []any{int64(3), int64(4)}, Unavail: []*ColumnSpec{body, pic}},
	})
	if s := show(got[0]); s != "id=3 n=4 body=B3 pic=P3 unavail=" {
		t.Fatalf("a full row between two placeholders: got %q", s)
	}
}

// TestSkipReason: a topics_regex never selects the pipeline's own topics
// that carry no change events, named by the worker or by fixed rules.
func TestSkipReason(t *testing.T) {
	s := Spec{Name: "copy", DLQTopic: "copy.dlq", InternalTopics: map[string]string{
		"shop.ddl": "schema history topic of source my", "my-offsets": "source offsets topic (log.offsets_topic)",
	}}
	for topic, skip := range map[string]bool{
		"shop.ddl": true, "my-offsets": true, "copy.dlq": true, "other.dlq": true,
		"shop.schema-history": true, "tributary-offsets": true, "_schemas": true, "_tributary-group-g": true,
		"__consumer_offsets": true, "connect-offsets": true,
		"shop.public.orders": false, "shop.shop.film": false, "shop.public.dlq_items": false,
	} {
		if got := s.skipReason(topic) != ""; got != skip {
			t.Errorf("skipReason(%q) = %q, want skipped %v", topic, s.skipReason(topic), skip)
		}
	}
}

// TestIsUnavailableShapes: Debezium's placeholder in every shape its
// PostgreSQL connector gives it (UnchangedToastedPlaceholder), and values
// that merely resemble it.
func TestIsUnavailableShapes(t *testing.T) {
	ph := "__debezium_unavailable_value"
	nums := func(wrap func(b byte) any) []any {
		out := make([]any, len(ph))
		for i := range len(ph) {
			out[i] = wrap(ph[i])
		}
		return out
	}
	// Java's UUID.nameUUIDFromBytes("__debezium_unavailable_value".getBytes()).
	const uuid = "b68a35a7-17ad-35b3-af2a-ae46edb4545a"
	for name, v := range map[string]any{
		"text": ph, "bytea": []byte(ph), "text[]": []any{ph}, "bytea[]": []any{[]byte(ph)},
		"int4[]":     nums(func(b byte) any { return int(b) }),
		"int8[]":     nums(func(b byte) any { return int64(b) }),
		"int4[] gen": nums(func(b byte) any { return map[string]any{"int": int(b)} }),
		"uuid[]":     []any{uuid},
		"hstore map": map[string]any{ph: ph}, "hstore json": `{"` + ph + `":"` + ph + `"}`,
		"wrapped": map[string]any{"string": ph},
	} {
		if !isUnavailable(v) {
			t.Errorf("%s placeholder %v not recognised", name, v)
		}
	}
	short := nums(func(b byte) any { return int64(b) })[1:]
	off := nums(func(b byte) any { return int64(b) })
	off[3] = int64(0)
	for name, v := range map[string]any{
		"text": ph + " ", "text[] of two": []any{ph, ph}, "int[] short": short, "int[] other": off,
		"uuid": uuid, "hstore other": map[string]any{ph: "x"}, "empty": []any{},
	} {
		if isUnavailable(v) {
			t.Errorf("%s value %v taken for the placeholder", name, v)
		}
	}
}

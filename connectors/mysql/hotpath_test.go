package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// TestArena checks that records carved from one chunk never overlap or
// grow into each other, and that a record too large for the chunk still
// comes out whole.
func TestArena(t *testing.T) {
	var a arena
	var kept [][]byte
	var want [][]byte
	for i := range 3000 {
		n := 1 + i%700
		if i == 1500 {
			n = 3 * arenaChunk // larger than a chunk
		}
		b := a.dst(100)
		for j := range n {
			b = append(b, byte(i+j))
		}
		b = a.keep(b)
		if cap(b) != len(b) {
			t.Fatalf("record %d: cap %d > len %d: appending to it would overwrite the next record", i, cap(b), len(b))
		}
		kept = append(kept, b)
		want = append(want, bytes.Clone(b))
	}
	for i := range kept {
		if !bytes.Equal(kept[i], want[i]) {
			t.Fatalf("record %d was overwritten by a later one", i)
		}
	}
	var nilArena *arena
	if b := nilArena.keep(append(nilArena.dst(10), 1, 2)); !bytes.Equal(b, []byte{1, 2}) {
		t.Fatalf("nil arena: %v", b)
	}
}

// TestEmitWithArenaMatchesPlain encodes the same events with and without
// an arena and reused source block: the records must be identical.
func TestEmitWithArenaMatchesPlain(t *testing.T) {
	def := &tableDef{DB: "d", Name: "t", PK: []string{"id"}, Columns: []colDef{
		{Name: "id", TypeName: "BIGINT", TypeExpression: "bigint"},
		{Name: "s", TypeName: "VARCHAR", TypeExpression: "varchar(20)", Charset: "utf8mb4", Length: intp(20), Optional: true},
		{Name: "b", TypeName: "VARBINARY", TypeExpression: "varbinary(8)", Length: intp(8), Optional: true},
	}}
	run := func(withArena bool) [][2][]byte {
		rt := newFakeRuntime(t, nil)
		em := &emitter{rt: rt, name: "tp", srcDef: schema.MySQLSource()}
		ts, err := newTableState("tp", def, nil)
		if err != nil {
			t.Fatal(err)
		}
		var a *arena
		if withArena {
			a = &arena{}
		}
		src := em.sourceBlock(ts.id, "false", 1000)
		var before, after []any
		for i := range 500 {
			b := bytes.Repeat([]byte{byte(i)}, i%9)
			if before, err = ts.rowFromBinlogInto(before, []any{int64(i), "x", string(b)}); err != nil {
				t.Fatal(err)
			}
			newID := int64(i)
			if i%7 == 0 {
				newID = -int64(i) - 1 // a key change: delete + tombstone + create
			}
			if after, err = ts.rowFromBinlogInto(after, []any{newID, string(rune('a' + i%26)), b}); err != nil {
				t.Fatal(err)
			}
			src[schema.MySQLSrcRow] = int32(i)
			if _, err := em.emitWith(context.Background(), a, ts, schema.OpUpdate, before, after, src, 123456); err != nil {
				t.Fatal(err)
			}
		}
		var out [][2][]byte
		for _, r := range rt.recs() {
			out = append(out, [2][]byte{bytes.Clone(r.Key), bytes.Clone(r.Value)})
		}
		return out
	}
	plain, fast := run(false), run(true)
	if len(plain) != len(fast) || len(plain) < 500 {
		t.Fatalf("%d records plain, %d with arena", len(plain), len(fast))
	}
	if !reflect.DeepEqual(plain, fast) {
		t.Fatal("records encoded with an arena differ from plain ones")
	}
}

// TestSnapshotRowSlots checks that a row copied into a slot keeps its
// values after the driver's buffer changes, and that aliased conversion
// gives the same values as copying conversion.
func TestSnapshotRowSlots(t *testing.T) {
	def := &tableDef{DB: "d", Name: "t", PK: []string{"id"}, Columns: []colDef{
		{Name: "id", TypeName: "INT UNSIGNED", TypeExpression: "int unsigned"},
		{Name: "s", TypeName: "VARCHAR", TypeExpression: "varchar(20)", Charset: "utf8mb4", Optional: true},
		{Name: "b", TypeName: "VARBINARY", TypeExpression: "varbinary(8)", Optional: true},
		{Name: "d", TypeName: "DECIMAL", TypeExpression: "decimal(6,2)", Length: intp(6), Scale: intp(2), Optional: true},
		{Name: "n", TypeName: "INT", TypeExpression: "int", Optional: true},
	}}
	ts, err := newTableState("tp", def, nil)
	if err != nil {
		t.Fatal(err)
	}
	driverBuf := []byte("héllo\x00\x01-12.50")
	row := []gomysql.FieldValue{
		gomysql.NewFieldValue(gomysql.FieldValueTypeUnsigned, 4294967295, nil),
		gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, driverBuf[0:6]),
		gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, driverBuf[6:8]),
		gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, driverBuf[8:]),
		gomysql.NewFieldValue(gomysql.FieldValueTypeNull, 0, nil),
	}
	var slot rawRow
	slot.set(row)
	for i := range driverBuf {
		driverBuf[i] = 'z' // the driver reuses its buffer for the next row
	}
	aliased, err := ts.rowFromTextInto(nil, slot.vals, true)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := ts.rowFromTextInto(nil, slot.vals, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(4294967295), "héllo", []byte{0, 1}, schema.DecimalBytes(big.NewInt(-1250)), nil}
	if !reflect.DeepEqual(aliased, want) || !reflect.DeepEqual(copied, want) {
		t.Fatalf("aliased %#v\ncopied  %#v\nwant    %#v", aliased, copied, want)
	}
	if unsafe.StringData(copied[1].(string)) == &slot.buf[0] {
		t.Fatal("copying conversion shares the slot's memory")
	}
	// An empty VARBINARY is an empty value, not null.
	copy(driverBuf, "héllo\x00\x01-12.50")
	slot.set([]gomysql.FieldValue{row[0], row[1], gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, []byte{}), row[3], row[4]})
	got, err := ts.rowFromTextInto(nil, slot.vals, true)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := got[2].([]byte); !ok || b == nil || len(b) != 0 {
		t.Fatalf("empty VARBINARY: %#v", got[2])
	}
	bc := compileColumn(def.Columns[2], false)
	if b, _ := bc.fromBinlog(""); b == nil || len(b.([]byte)) != 0 {
		t.Fatalf("empty VARBINARY from the binlog: %#v", b)
	}
}

// TestStreamerSourceReuse checks the reused source block against one
// built from scratch, across a change of file, GTID and commit time.
func TestStreamerSourceReuse(t *testing.T) {
	em := &emitter{rt: newFakeRuntime(t, nil), name: "tp", srcDef: schema.MySQLSource()}
	s := &streamer{r: &run{em: em}}
	id := tableID{"d", "t"}
	for i, st := range []struct {
		file, gtid       string
		commitUs         uint64
		thread           int64
		hasThread        bool
		ts, logPos, evSz uint32
	}{
		{"bin.000001", "0-1-5", 0, 7, true, 1700000000, 500, 100},
		{"bin.000001", "0-1-6", 0, 7, true, 1700000001, 900, 100},
		{"bin.000002", "", 1700000002123456, 0, false, 1700000002, 300, 50},
	} {
		s.file, s.txnGTID, s.commitUs, s.thread, s.hasThread = st.file, st.gtid, st.commitUs, st.thread, st.hasThread
		h := &replication.EventHeader{Timestamp: st.ts, LogPos: st.logPos, EventSize: st.evSz, ServerID: 9}
		got := append([]any(nil), s.source(h, id, i)...)
		want := em.sourceBlock(id, "false", int64(st.ts)*1000)
		if st.commitUs > 0 {
			want[schema.SrcTsMs] = int64(st.commitUs / 1000)
			want[schema.SrcTsUs] = int64(st.commitUs)
			want[schema.SrcTsNs] = int64(st.commitUs) * 1000
		}
		want[schema.MySQLSrcServerID] = int64(9)
		if st.gtid != "" {
			want[schema.MySQLSrcGTID] = st.gtid
		}
		want[schema.MySQLSrcFile] = st.file
		want[schema.MySQLSrcPos] = int64(st.logPos - st.evSz)
		want[schema.MySQLSrcRow] = int32(i)
		if st.hasThread {
			want[schema.MySQLSrcThread] = st.thread
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d:\ngot  %#v\nwant %#v", i, got, want)
		}
	}
}

// TestRowsEncoderMatchesPlain writes rows events part by part and the plain
// way: the records must be identical, and the part-by-part path must stay
// on (it turns itself off when its first row differs).
func TestRowsEncoderMatchesPlain(t *testing.T) {
	def := &tableDef{DB: "d", Name: "t", PK: []string{"id", "k2"}, Columns: []colDef{
		{Name: "id", TypeName: "BIGINT", TypeExpression: "bigint"},
		{Name: "s", TypeName: "VARCHAR", TypeExpression: "varchar(20)", Charset: "utf8mb4", Length: intp(20), Optional: true},
		{Name: "k2", TypeName: "VARBINARY", TypeExpression: "varbinary(8)", Length: intp(8)},
		{Name: "d", TypeName: "DECIMAL", TypeExpression: "decimal(6,2)", Length: intp(6), Scale: intp(2), Optional: true},
		{Name: "ts", TypeName: "TIMESTAMP", TypeExpression: "timestamp(3)", Length: intp(3), Optional: true},
	}}
	type event struct {
		op   schema.Op
		rows [][]any // binlog images; updates in before/after pairs
	}
	row := func(i int, keyShift int64) []any {
		var d any = "12.50"
		var s any = string(rune('a' + i%26))
		if i%3 == 0 {
			d, s = nil, nil
		}
		return []any{int64(i) + keyShift, s, string([]byte{byte(i), 1}), d, "2020-01-02 03:04:05.600"}
	}
	var events []event
	for e := range 40 {
		ev := event{op: []schema.Op{schema.OpCreate, schema.OpUpdate, schema.OpDelete}[e%3]}
		for i := range 1 + e%7 {
			n := e*10 + i
			switch ev.op {
			case schema.OpUpdate:
				shift := int64(0)
				if (e+i)%4 == 0 {
					shift = 1000 // key change: delete, tombstone, create
				}
				ev.rows = append(ev.rows, row(n, 0), row(n, shift))
			default:
				ev.rows = append(ev.rows, row(n, 0))
			}
		}
		events = append(events, ev)
	}
	run := func(parts bool) ([]source.Record, *tableState) {
		rt := newFakeRuntime(t, nil)
		em := &emitter{rt: rt, name: "tp", srcDef: schema.MySQLSource()}
		ts, err := newTableState("tp", def, nil)
		if err != nil {
			t.Fatal(err)
		}
		enc := &rowsEncoder{em: em, a: &arena{}}
		ctx := context.Background()
		for e, ev := range events {
			src := em.sourceBlock(ts.id, "false", 1000+int64(e))
			src[schema.MySQLSrcFile], src[schema.MySQLSrcPos], src[schema.MySQLSrcServerID] = "bin.000001", int64(e*100), int64(1)
			nowUs := int64(1_700_000_000_000_000 + e)
			if err := enc.begin(ctx, ts, ev.op, src, nowUs); err != nil {
				t.Fatal(err)
			}
			step := 1
			if ev.op == schema.OpUpdate {
				step = 2
			}
			for i := 0; i < len(ev.rows); i += step {
				var before, after []any
				if ev.op != schema.OpCreate {
					if before, err = ts.rowFromBinlog(ev.rows[i]); err != nil {
						t.Fatal(err)
					}
				}
				if ev.op != schema.OpDelete {
					if after, err = ts.rowFromBinlog(ev.rows[i+step-1]); err != nil {
						t.Fatal(err)
					}
				}
				if parts {
					_, err = enc.row(ctx, before, after, i/step)
				} else {
					src[schema.MySQLSrcRow] = int32(i / step)
					_, err = em.emitWith(ctx, nil, ts, ev.op, before, after, src, nowUs)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := enc.flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return rt.recs(), ts
	}
	plain, _ := run(false)
	parts, ts := run(true)
	if ts.partsOff {
		t.Fatal("the part-by-part path turned itself off: its first row differed from the plain encoding")
	}
	if len(plain) != len(parts) {
		t.Fatalf("%d records plain, %d part by part", len(plain), len(parts))
	}
	for i := range plain {
		if !bytes.Equal(plain[i].Key, parts[i].Key) || !bytes.Equal(plain[i].Value, parts[i].Value) || plain[i].Topic != parts[i].Topic {
			t.Fatalf("record %d differs:\nplain key %x value %x\nparts key %x value %x", i, plain[i].Key, plain[i].Value, parts[i].Key, parts[i].Value)
		}
	}
}

// TestArenaRecycle checks that a recycled chunk is reused only after every
// batch holding records from it is done and the arena has moved on.
func TestArenaRecycle(t *testing.T) {
	a := &arena{recycle: true}
	carve := func(n, seed int) ([][]byte, [][]byte) {
		var got, want [][]byte
		for i := range n {
			b := a.dst(300)
			for j := range 300 {
				b = append(b, byte(seed+i+j))
			}
			b = a.keep(b)
			got, want = append(got, b), append(want, bytes.Clone(b))
		}
		return got, want
	}
	intact := func(name string, got, want [][]byte) {
		t.Helper()
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s record %d was overwritten while its batch was in flight", name, i)
			}
		}
	}
	gotA, wantA := carve(2000, 1) // several chunks
	doneA := a.batchDone()
	gotB, wantB := carve(2000, 7)
	doneB := a.batchDone()
	gotC, wantC := carve(3000, 3) // would reuse A's chunks if they were free
	intact("A", gotA, wantA)
	intact("B", gotB, wantB)
	doneA()
	gotD, wantD := carve(3000, 5) // may reuse A's chunks now
	intact("B", gotB, wantB)
	intact("C", gotC, wantC)
	intact("D", gotD, wantD)
	doneB()
	if doneC := a.batchDone(); doneC != nil {
		doneC()
	}
	if a.cur.refs.Load() != 2 {
		t.Fatalf("current chunk holds %d refs after every batch is done, want 2 (current and touched)", a.cur.refs.Load())
	}
}

// TestDirectRowsMatchDecoded builds binlog row images of every simple type
// (nulls, extremes, both VARCHAR length forms), then encodes them straight
// from the bytes and through go-mysql's decoder and the plain encoder: the
// records must be identical, and the direct path must stay on.
func TestDirectRowsMatchDecoded(t *testing.T) {
	def := &tableDef{DB: "d", Name: "t", PK: []string{"id"}, Columns: []colDef{
		{Name: "id", TypeName: "BIGINT", TypeExpression: "bigint"},
		{Name: "ti", TypeName: "TINYINT", TypeExpression: "tinyint", Optional: true},
		{Name: "tiu", TypeName: "TINYINT UNSIGNED", TypeExpression: "tinyint unsigned", Optional: true},
		{Name: "si", TypeName: "SMALLINT", TypeExpression: "smallint", Optional: true},
		{Name: "siu", TypeName: "SMALLINT UNSIGNED", TypeExpression: "smallint unsigned", Optional: true},
		{Name: "mi", TypeName: "MEDIUMINT", TypeExpression: "mediumint", Optional: true},
		{Name: "miu", TypeName: "MEDIUMINT UNSIGNED", TypeExpression: "mediumint unsigned", Optional: true},
		{Name: "i", TypeName: "INT", TypeExpression: "int", Optional: true},
		{Name: "iu", TypeName: "INT UNSIGNED", TypeExpression: "int unsigned", Optional: true},
		{Name: "bu", TypeName: "BIGINT UNSIGNED", TypeExpression: "bigint unsigned", Optional: true},
		{Name: "d", TypeName: "DOUBLE", TypeExpression: "double", Optional: true},
		{Name: "s", TypeName: "VARCHAR", TypeExpression: "varchar(20)", Charset: "utf8mb4", Length: intp(20), Optional: true},
		{Name: "l", TypeName: "VARCHAR", TypeExpression: "varchar(300)", Charset: "utf8mb4", Length: intp(300), Optional: true},
	}}
	tme := &replication.TableMapEvent{
		Schema: []byte("d"), Table: []byte("t"), ColumnCount: uint64(len(def.Columns)),
		ColumnType: []byte{gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT,
			gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONG,
			gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VARCHAR},
		ColumnMeta: []uint16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 80, 1200},
	}
	n := len(def.Columns)
	// One row image per i: the null bitmap, then each non-null value.
	image := func(i int) []byte {
		nulls := make([]byte, (n+7)/8)
		var b []byte
		for c := range n {
			if c > 0 && (i+c)%5 == 0 {
				nulls[c/8] |= 1 << (c % 8)
				continue
			}
			x := uint64(i)*0x9E3779B97F4A7C15 + uint64(c) // spreads over all bits
			if i%3 == 0 {
				x = ^uint64(0) // -1 / unsigned maximum
			}
			switch tme.ColumnType[c] {
			case gomysql.MYSQL_TYPE_TINY:
				b = append(b, byte(x))
			case gomysql.MYSQL_TYPE_SHORT:
				b = binary.LittleEndian.AppendUint16(b, uint16(x))
			case gomysql.MYSQL_TYPE_INT24:
				b = append(b, byte(x), byte(x>>8), byte(x>>16))
			case gomysql.MYSQL_TYPE_LONG:
				b = binary.LittleEndian.AppendUint32(b, uint32(x))
			case gomysql.MYSQL_TYPE_LONGLONG:
				if c == 0 {
					x = uint64(i) // the key
				}
				b = binary.LittleEndian.AppendUint64(b, x)
			case gomysql.MYSQL_TYPE_DOUBLE:
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(int64(x))/7))
			case gomysql.MYSQL_TYPE_VARCHAR:
				s := strings.Repeat("é", i%13)
				if tme.ColumnMeta[c] >= 256 {
					s = strings.Repeat("xy", i*7%150)
					b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
				} else {
					b = append(b, byte(len(s)))
				}
				b = append(b, s...)
			}
		}
		return append(nulls, b...)
	}
	full := bytes.Repeat([]byte{0xff}, (n+7)/8)
	for _, op := range []schema.Op{schema.OpCreate, schema.OpDelete} {
		var data []byte
		for i := range 40 {
			data = append(data, image(i)...)
		}
		encode := func(direct bool) ([]source.Record, *tableState) {
			rt := newFakeRuntime(t, nil)
			em := &emitter{rt: rt, name: "tp", srcDef: schema.MySQLSource()}
			ts, err := newTableState("tp", def, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			enc := &rowsEncoder{em: em, a: &arena{}}
			src := em.sourceBlock(ts.id, "false", 1000)
			src[schema.MySQLSrcFile], src[schema.MySQLSrcServerID] = "bin.000001", int64(1)
			if err := enc.begin(ctx, ts, op, src, 1_700_000_000_000_000); err != nil {
				t.Fatal(err)
			}
			e := &replication.RowsEvent{Table: tme, ColumnCount: uint64(n), ColumnBitmap1: full}
			if direct {
				p := ts.plan(tme)
				if !p.ok {
					t.Fatal("no direct plan for a table of simple types")
				}
				if _, handled, err := enc.direct(ctx, e, rawRows{data: data}, p); err != nil || !handled {
					t.Fatalf("direct: handled %v, %v", handled, err)
				}
			} else {
				if err := e.DecodeData(0, data); err != nil {
					t.Fatal(err)
				}
				for i, vals := range e.Rows {
					row, err := ts.rowFromBinlog(vals)
					if err != nil {
						t.Fatal(err)
					}
					before, after := row, []any(nil)
					if op == schema.OpCreate {
						before, after = nil, row
					}
					if _, err := enc.row(ctx, before, after, i); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := enc.flush(ctx); err != nil {
				t.Fatal(err)
			}
			return rt.recs(), ts
		}
		decoded, _ := encode(false)
		direct, ts := encode(true)
		if ts.directOff {
			t.Fatalf("op %c: the direct path turned itself off", op)
		}
		if len(decoded) != len(direct) || len(decoded) < 40 {
			t.Fatalf("op %c: %d records decoded, %d direct", op, len(decoded), len(direct))
		}
		for i := range decoded {
			if !bytes.Equal(decoded[i].Key, direct[i].Key) || !bytes.Equal(decoded[i].Value, direct[i].Value) {
				t.Fatalf("op %c record %d differs:\ndecoded key %x value %x\ndirect  key %x value %x", op, i, decoded[i].Key, decoded[i].Value, direct[i].Key, direct[i].Value)
			}
		}
	}
}

package mysql

import (
	"bytes"
	"context"
	"math/big"
	"reflect"
	"testing"
	"unsafe"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/tributary-cdc/tributary/schema"
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

package postgres

import (
	"context"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// Builders of pgoutput protocol v2 messages, as the server writes them.

type msgBuf []byte

func (b msgBuf) u8(v byte) msgBuf    { return append(b, v) }
func (b msgBuf) u16(v uint16) msgBuf { return binary.BigEndian.AppendUint16(b, v) }
func (b msgBuf) u32(v uint32) msgBuf { return binary.BigEndian.AppendUint32(b, v) }
func (b msgBuf) u64(v uint64) msgBuf { return binary.BigEndian.AppendUint64(b, v) }
func (b msgBuf) str(s string) msgBuf { return append(append(b, s...), 0) }

func pgMicros(t time.Time) uint64 { return uint64(t.UnixMicro() - pgEpochMicros) }

// tuple values: nil is 'n', "\x00toast" is 'u', anything else 't'.
const toast = "\x00toast"

func (b msgBuf) tuple(vals ...any) msgBuf {
	b = b.u16(uint16(len(vals)))
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			b = b.u8('n')
		case string:
			if v == toast {
				b = b.u8('u')
				continue
			}
			b = b.u8('t').u32(uint32(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

func mBegin(final pglogrepl.LSN, ts time.Time, xid uint32) []byte {
	return msgBuf{'B'}.u64(uint64(final)).u64(pgMicros(ts)).u32(xid)
}

func mCommit(commit, end pglogrepl.LSN, ts time.Time) []byte {
	return msgBuf{'C'}.u8(0).u64(uint64(commit)).u64(uint64(end)).u64(pgMicros(ts))
}

type relCol struct {
	key  bool
	name string
	oid  uint32
}

func mRelation(xid *uint32, relid uint32, ns, name string, ident byte, cols ...relCol) []byte {
	b := msgBuf{'R'}
	if xid != nil {
		b = b.u32(*xid)
	}
	b = b.u32(relid).str(ns).str(name).u8(ident).u16(uint16(len(cols)))
	for _, c := range cols {
		f := byte(0)
		if c.key {
			f = 1
		}
		b = b.u8(f).str(c.name).u32(c.oid).u32(0xFFFFFFFF)
	}
	return b
}

func mInsert(xid *uint32, relid uint32, vals ...any) []byte {
	b := msgBuf{'I'}
	if xid != nil {
		b = b.u32(*xid)
	}
	return b.u32(relid).u8('N').tuple(vals...)
}

func mUpdate(relid uint32, oldKind byte, old []any, vals ...any) []byte {
	b := msgBuf{'U'}.u32(relid)
	if oldKind != 0 {
		b = b.u8(oldKind).tuple(old...)
	}
	return b.u8('N').tuple(vals...)
}

func mDelete(relid uint32, kind byte, old ...any) []byte {
	return msgBuf{'D'}.u32(relid).u8(kind).tuple(old...)
}

func mTruncate(relids ...uint32) []byte {
	b := msgBuf{'T'}.u32(uint32(len(relids))).u8(0)
	for _, r := range relids {
		b = b.u32(r)
	}
	return b
}

func mStreamStart(xid uint32, first bool) []byte {
	f := byte(0)
	if first {
		f = 1
	}
	return msgBuf{'S'}.u32(xid).u8(f)
}

func mStreamCommit(xid uint32, commit, end pglogrepl.LSN, ts time.Time) []byte {
	return msgBuf{'c'}.u32(xid).u8(0).u64(uint64(commit)).u64(uint64(end)).u64(pgMicros(ts))
}

func mStreamAbort(xid, sub uint32) []byte { return msgBuf{'A'}.u32(xid).u32(sub) }

// newUnitStreamer is a streamer without a server: table public.t (id int4
// primary key, name text, n int4) is captured.
func newUnitStreamer(t *testing.T, skipBelow pglogrepl.LSN) (*streamer, *fakeRuntime) {
	t.Helper()
	cfg := validConfig()
	cfg.TopicPrefixValue = "tp"
	c := &connector{name: "unit", cfg: cfg, db: "db", slot: "s", publication: "p"}
	c.log = newFakeRuntime(t, nil).log
	c.byID = map[tableID]*catalogTable{{"public", "t"}: {ID: tableID{"public", "t"}, PK: []string{"id"},
		Columns: []catalogColumn{{Name: "id", TypeOID: 23, TypMod: -1}, {Name: "name", TypeOID: 25, TypMod: -1}, {Name: "n", TypeOID: 23, TypMod: -1}}}}
	rt := newFakeRuntime(t, nil)
	s := newStreamer(c, rt, nil, pgtypeMapCatalog{}, skipBelow, skipBelow)
	s.loadDefaults = func(context.Context, tableID) (map[string]string, error) { return nil, nil }
	sp, err := newSpools()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.close() })
	s.spools = sp
	return s, rt
}

func feed(t *testing.T, s *streamer, lsn pglogrepl.LSN, msgs ...[]byte) {
	t.Helper()
	for i, m := range msgs {
		if err := s.message(context.Background(), lsn+pglogrepl.LSN(i), m); err != nil {
			t.Fatalf("message %d (%c): %v", i, m[0], err)
		}
	}
}

var tCols = []relCol{{true, "id", 23}, {false, "name", 25}, {false, "n", 23}}

func TestStreamerEventsFromMessages(t *testing.T) {
	s, rt := newUnitStreamer(t, 0)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	feed(t, s, 1000,
		mBegin(1100, ts, 700),
		mRelation(nil, 16400, "public", "t", 'd', tCols...),
		mRelation(nil, 16500, "public", "other", 'd', relCol{true, "id", 23}), // not captured
		mInsert(nil, 16400, "1", "alpha", "10"),
		mInsert(nil, 16500, "9"),
		mUpdate(16400, 0, nil, "1", toast, "11"),                     // TOAST unchanged, key same
		mUpdate(16400, 'K', []any{"1", nil, nil}, "2", "beta", "11"), // key change
		mDelete(16400, 'K', "2", nil, nil),
		mCommit(1100, 1110, ts),
	)
	evs := rt.decodeAll(t, rt.snapshotRecords())
	var ops []string
	for _, e := range evs {
		if e.Value == nil {
			ops = append(ops, "tomb")
			continue
		}
		ops = append(ops, e.Op)
	}
	// insert, update, key change = delete+tombstone+create, delete+tombstone
	if got := strings.Join(ops, ","); got != "c,u,d,tomb,c,d,tomb" {
		t.Fatalf("ops %s", got)
	}
	for _, e := range evs {
		if e.Topic != "tp.public.t" {
			t.Fatalf("topic %s", e.Topic)
		}
	}
	if evs[0].After["name"] != "alpha" || evs[0].After["n"] != 10 || evs[0].Key["id"] != 1 || evs[0].Before != nil {
		t.Fatalf("insert: %+v key %+v", evs[0].After, evs[0].Key)
	}
	if evs[1].After["name"] != "__debezium_unavailable_value" || evs[1].After["n"] != 11 || evs[1].Before != nil {
		t.Fatalf("toast update: before %v after %v", evs[1].Before, evs[1].After)
	}
	if evs[2].Key["id"] != 1 || evs[2].Before["id"] != 1 || evs[3].Key["id"] != 1 || evs[4].Key["id"] != 2 || evs[4].After["name"] != "beta" {
		t.Fatalf("key change: %+v / %+v / %+v", evs[2], evs[3].Key, evs[4].After)
	}
	if string(evs[6].RawKey) != string(evs[5].RawKey) || evs[5].Before["id"] != 2 || evs[5].After != nil {
		t.Fatalf("delete: %+v", evs[5])
	}
	src := evs[0].Source
	if src["connector"] != "postgresql" || src["name"] != "tp" || src["db"] != "db" || src["schema"] != "public" ||
		src["table"] != "t" || src["txId"] != int64(700) || src["lsn"] != int64(1003) || src["snapshot"] != "false" ||
		src["ts_ms"] != ts.UnixMilli() || src["ts_us"] != ts.UnixMicro() || src["sequence"] != `[null,"1003"]` {
		t.Fatalf("source %+v", src)
	}
	cp := rt.lastCheckpoint()
	if cp["lsn"] != float64(1110) || cp["lsn_commit"] != float64(1110) || cp["txId"] != float64(700) || cp["ts_usec"] != float64(ts.UnixMicro()) {
		t.Fatalf("checkpoint %v", cp)
	}
	if s.c.durable.Load() != 1110 {
		t.Fatalf("durable %d", s.c.durable.Load())
	}

	// Next transaction: sequence carries the last commit; truncate has the zero-valued key.
	before := len(rt.snapshotRecords())
	feed(t, s, 2000, mBegin(2100, ts, 701), mTruncate(16400, 16500), mCommit(2100, 2110, ts))
	evs = rt.decodeAll(t, rt.snapshotRecords()[before:])
	if len(evs) != 1 || evs[0].Op != "t" || evs[0].Key["id"] != 0 || evs[0].Before != nil || evs[0].After != nil ||
		evs[0].Source["sequence"] != `["1110","2001"]` {
		t.Fatalf("truncate: %+v", evs)
	}
}

func TestStreamerFullIdentityFillsToastFromOldRow(t *testing.T) {
	s, rt := newUnitStreamer(t, 0)
	ts := time.Now()
	feed(t, s, 10,
		mBegin(100, ts, 5),
		mRelation(nil, 1, "public", "t", 'f', relCol{true, "id", 23}, relCol{true, "name", 25}, relCol{true, "n", 23}),
		mUpdate(1, 'O', []any{"1", "long text", "1"}, "1", toast, "2"),
		mCommit(100, 110, ts),
	)
	evs := rt.decodeAll(t, rt.snapshotRecords())
	if len(evs) != 1 || evs[0].Op != "u" || evs[0].Before["n"] != 1 || evs[0].After["name"] != "long text" || evs[0].After["n"] != 2 {
		t.Fatalf("%+v", evs)
	}
	// Under FULL every column is flagged; the key is still the primary key.
	if len(evs[0].Key) != 1 || evs[0].Key["id"] != 1 {
		t.Fatalf("key %v", evs[0].Key)
	}
}

func TestStreamerSkipsTransactionsBelowResumePoint(t *testing.T) {
	s, rt := newUnitStreamer(t, 5000)
	ts := time.Now()
	feed(t, s, 100,
		mRelation(nil, 1, "public", "t", 'd', tCols...),
		mBegin(4000, ts, 1), mInsert(nil, 1, "1", "a", "1"), mCommit(4000, 4010, ts), // replayed, already in the log
		mBegin(5000, ts, 2), mInsert(nil, 1, "2", "b", "1"), mCommit(5000, 5010, ts), // first new one
	)
	evs := rt.decodeAll(t, rt.snapshotRecords())
	if len(evs) != 1 || evs[0].After["id"] != 2 {
		t.Fatalf("%+v", evs)
	}
	if err := s.flushCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cp := rt.lastCheckpoint(); cp["lsn"] != float64(5010) {
		t.Fatalf("checkpoint %v", cp)
	}
}

func TestStreamerStreamedTransactions(t *testing.T) {
	s, rt := newUnitStreamer(t, 0)
	ts := time.Now()
	big, sub, other := uint32(900), uint32(901), uint32(950)
	feed(t, s, 100,
		mStreamStart(big, true),
		mRelation(&big, 1, "public", "t", 'd', tCols...),
		mInsert(&big, 1, "1", "a", "1"),
		mInsert(&sub, 1, "2", "rolled back", "1"),
		msgBuf{'E'},
		// a small transaction commits in between
		mBegin(150, ts, 920), mRelation(nil, 1, "public", "t", 'd', tCols...), mInsert(nil, 1, "50", "small", "1"), mCommit(150, 160, ts),
		mStreamStart(other, true), mInsert(&other, 1, "70", "aborted", "1"), msgBuf{'E'},
		mStreamStart(big, false), mInsert(&big, 1, "3", "c", "1"), msgBuf{'E'},
		mStreamAbort(big, sub),
		mStreamAbort(other, other),
		mStreamCommit(big, 300, 310, ts),
	)
	evs := rt.decodeAll(t, rt.snapshotRecords())
	var ids []int
	for _, e := range evs {
		ids = append(ids, e.After["id"].(int))
		if e.After["id"] != 50 && e.Source["txId"] != int64(big) {
			t.Fatalf("streamed event txId %v", e.Source["txId"])
		}
	}
	if len(ids) != 3 || ids[0] != 50 || ids[1] != 1 || ids[2] != 3 {
		t.Fatalf("ids %v", ids)
	}
	// Commits closer than ckptEvery are coalesced into the next checkpoint.
	if err := s.flushCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cp := rt.lastCheckpoint(); cp["lsn"] != float64(310) || cp["txId"] != float64(big) {
		t.Fatalf("checkpoint %v", cp)
	}
	if len(s.spools.m) != 0 {
		t.Fatalf("spools left: %v", s.spools.m)
	}
	ents, _ := os.ReadDir(s.spools.dir)
	if len(ents) != 0 {
		t.Fatalf("spool files left: %v", ents)
	}
}

func TestStreamerSchemaChangeGetsNewCodec(t *testing.T) {
	s, rt := newUnitStreamer(t, 0)
	ts := time.Now()
	feed(t, s, 100,
		mBegin(200, ts, 1),
		mRelation(nil, 1, "public", "t", 'd', tCols...),
		mInsert(nil, 1, "1", "a", "1"),
		mRelation(nil, 1, "public", "t", 'd', tCols...), // repeated: no new codec
		mRelation(nil, 1, "public", "t", 'd', append(tCols, relCol{false, "extra", 25})...),
		mInsert(nil, 1, "2", "b", "2", "x"),
		mRelation(nil, 1, "public", "t", 'd', tCols[0], tCols[2]),
		mInsert(nil, 1, "3", "3"),
		mCommit(200, 210, ts),
	)
	if rt.codecs != 3 {
		t.Fatalf("codecs requested: %d, want 3", rt.codecs)
	}
	evs := rt.decodeAll(t, rt.snapshotRecords())
	if evs[1].After["extra"] != "x" || evs[0].ValueID == evs[1].ValueID || evs[1].ValueID == evs[2].ValueID {
		t.Fatalf("%+v", evs)
	}
	if _, ok := evs[2].After["name"]; ok {
		t.Fatalf("dropped column still there: %v", evs[2].After)
	}
	// int4 -> text is not BACKWARD compatible: the error names table and column.
	err := s.message(context.Background(), 300, mRelation(nil, 1, "public", "t", 'd', tCols[0], relCol{false, "n", 25}))
	if err == nil || !strings.Contains(err.Error(), "public.t") || !strings.Contains(err.Error(), "column n changed type") {
		t.Fatalf("incompatible change: %v", err)
	}
}

func TestParseChangeRejectsGarbage(t *testing.T) {
	var rc rowChange
	for _, m := range [][]byte{
		{'I', 0, 0, 0, 1},
		msgBuf{'I'}.u32(1).u8('X'),
		msgBuf{'I'}.u32(1).u8('N').u16(2).u8('t').u32(100),
		msgBuf{'D'}.u32(1).u8('N').tuple("1"),
		msgBuf{'I'}.u32(1).u8('N').u16(1).u8('z'),
	} {
		if _, err := parseChange(m, false, &rc); err == nil {
			t.Errorf("accepted %x", m)
		}
	}
}

func TestSpoolReplayOrderAndSubAbort(t *testing.T) {
	ss, err := newSpools()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	sp, err := ss.get(7, true)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 200<<10) // larger than the buffers
	for i := 0; i < 1000; i++ {
		xid := uint32(7)
		if i%10 == 3 {
			xid = 8
		}
		body := []byte{byte(i), byte(i >> 8)}
		if i == 500 {
			body = append(body, big...)
		}
		if err := sp.append(pglogrepl.LSN(i), xid, 'I', body); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.append(1000, 8, 'R', []byte("rel")); err != nil {
		t.Fatal(err)
	}
	sp.abortSub(8)
	var got []int
	err = sp.replay(func(lsn pglogrepl.LSN, xid uint32, msg []byte) error {
		if msg[0] == 'R' {
			got = append(got, -1)
			return nil
		}
		i := int(msg[1]) | int(msg[2])<<8
		if pglogrepl.LSN(i) != lsn || xid != 7 {
			t.Fatalf("record %d: lsn %d xid %d", i, lsn, xid)
		}
		if i == 500 && len(msg) != 3+len(big) {
			t.Fatalf("big record length %d", len(msg))
		}
		got = append(got, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 901 || got[len(got)-1] != -1 {
		t.Fatalf("replayed %d records", len(got))
	}
	for j := 1; j < len(got)-1; j++ {
		if got[j] <= got[j-1] || got[j]%10 == 3 {
			t.Fatalf("order/abort broken at %d: %d after %d", j, got[j], got[j-1])
		}
	}
	path := sp.path
	// A new first segment for the same xid restarts the spool.
	sp2, err := ss.get(7, true)
	if err != nil {
		t.Fatal(err)
	}
	if sp2 == sp || sp2.records != 0 {
		t.Fatal("first segment did not restart the spool")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("old spool file not removed: %v", err)
	}
	dir := ss.dir
	if err := ss.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("spool dir not removed: %v", err)
	}
}

func TestStreamerHeartbeatAndKeepaliveCheckpoints(t *testing.T) {
	s, rt := newUnitStreamer(t, 0)
	ctx := context.Background()
	hb := msgBuf{'M'}.u8(0).u64(5000).str(heartbeatPrefix).u32(0)
	feed(t, s, 5000, hb)
	if cp := rt.lastCheckpoint(); cp == nil || cp["lsn"] != float64(5000) || cp["lsn_commit"] != float64(5000) {
		t.Fatalf("heartbeat checkpoint %v", cp)
	}
	// Other prefixes and transactional messages are ignored.
	feed(t, s, 6000, msgBuf{'M'}.u8(0).u64(6000).str("someone_else").u32(0))
	if cp := rt.lastCheckpoint(); cp["lsn"] != float64(5000) {
		t.Fatalf("foreign message moved the offset: %v", cp)
	}
	// A keepalive between transactions acknowledges the server's position;
	// inside a transaction it does not.
	ka := func(lsn uint64) []byte { return msgBuf{}.u64(lsn).u64(0).u8(0) }
	if err := s.keepalive(ctx, ka(7000)); err != nil {
		t.Fatal(err)
	}
	if err := s.flushCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if cp := rt.lastCheckpoint(); cp["lsn"] != float64(7000) {
		t.Fatalf("keepalive checkpoint %v", cp)
	}
	feed(t, s, 7100, mBegin(7200, time.Now(), 9))
	if err := s.keepalive(ctx, ka(8000)); err != nil {
		t.Fatal(err)
	}
	if err := s.flushCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if cp := rt.lastCheckpoint(); cp["lsn"] != float64(7000) {
		t.Fatalf("keepalive inside a transaction moved the offset: %v", cp)
	}
	if s.c.durable.Load() != 7000 {
		t.Fatalf("durable %d", s.c.durable.Load())
	}
}

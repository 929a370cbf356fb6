package postgres

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tributary-cdc/tributary/schema"
)

// snapPlanColumns has a column of each type with an appender and some
// that go through their decoder (numeric, date, timestamptz, bytea, arrays,
// an unmapped type), with a two-column key.
var snapPlanColumns = []colSpec{
	{Name: "id", TypeOID: 20, TypMod: -1},
	{Name: "name", TypeOID: 1043, TypMod: 36},
	{Name: "flag", TypeOID: 16, TypMod: -1},
	{Name: "small", TypeOID: 21, TypMod: -1},
	{Name: "n", TypeOID: 23, TypMod: -1},
	{Name: "big", TypeOID: 20, TypMod: -1},
	{Name: "o", TypeOID: 26, TypMod: -1},
	{Name: "f4", TypeOID: 700, TypMod: -1},
	{Name: "f8", TypeOID: 701, TypMod: -1},
	{Name: "body", TypeOID: 25, TypMod: -1},
	{Name: "code", TypeOID: 1042, TypMod: 8},
	{Name: "doc", TypeOID: 3802, TypMod: -1},
	{Name: "u", TypeOID: 2950, TypMod: -1},
	{Name: "amount", TypeOID: 1700, TypMod: (12<<16 | 2) + 4},
	{Name: "day", TypeOID: 1082, TypMod: -1},
	{Name: "at", TypeOID: 1184, TypMod: -1},
	{Name: "raw", TypeOID: 17, TypMod: -1},
	{Name: "ints", TypeOID: 1007, TypMod: -1},
	{Name: "box", TypeOID: 603, TypMod: -1}, // not mapped: text
}

var snapPlanRows = []string{
	`1	alice	t	-32768	2147483647	9223372036854775807	4294967295	1.5	-2.25e300	hello	ab      	{"k": [1, 2]}	a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11	12345.67	2024-02-29	2024-02-29 12:34:56.789+01	\\x00ff	{1,NULL,-3}	(1,1),(0,0)`,
	`-9223372036854775808	\N	f	32767	-2147483648	0	0	NaN	Infinity	tab\there\\back\nline	\N	\N	\N	\N	\N	\N	\N	\N	\N`,
	`2		\N	\N	\N	\N	\N	-Infinity	-0	\N	\N	null	\N	-0.01	infinity	-infinity	\\x	{}	\N`,
	`3	` + strings.Repeat("é", 300) + `	t	0	0	300	12	3.4028235e38	5e-324	` + strings.Repeat("x", 5000) + `	z	[]	00000000-0000-0000-0000-000000000000	0	1970-01-01	1970-01-01 00:00:00+00	\\xdeadbeef	{2147483647}	(0,0),(0,0)`,
}

func newPlanTable(tb testing.TB) *snapTable {
	tb.Helper()
	id := tableID{"public", "plan"}
	sh, err := buildShape("tp", id, snapPlanColumns, []string{"id", "name"}, pgtypeMapCatalog{})
	if err != nil {
		tb.Fatal(err)
	}
	codec, err := schema.NewCodec(&sh.table, schema.PostgresSource())
	if err != nil {
		tb.Fatal(err)
	}
	codec.SetIDs(5, 6)
	return &snapTable{ct: &catalogTable{ID: id}, shape: sh, codec: codec, plan: newSnapPlan(sh, codec, pgtypeMapCatalog{})}
}

// TestSnapshotPlanMatchesCodec: rows written column by column from the
// COPY text are byte for byte what decoding each value and encoding the
// row with the codec gives, keys included.
func TestSnapshotPlanMatchesCodec(t *testing.T) {
	st := newPlanTable(t)
	fast := 0
	for _, a := range st.plan.appenders {
		if a != nil {
			fast++
		}
	}
	if fast != 14 {
		t.Errorf("%d columns with an appender, want 14", fast)
	}
	c := &connector{cfg: &Config{TopicPrefixValue: "tp"}, db: "db"}
	e := c.newSnapEncoder(nil, 100, 7)
	for _, final := range []bool{false, true} {
		blk := &snapBlock{t: st, final: final}
		for _, line := range snapPlanRows {
			blk.raw = append(blk.raw, line...)
			blk.ends = append(blk.ends, len(blk.raw))
		}
		raw := append([]byte(nil), blk.raw...) // rows are decoded in place
		batch, err := e.block(blk)
		if err != nil {
			t.Fatal(err)
		}
		recs := batch.recs
		if final {
			recs = append(recs, *batch.lastInTable, *batch.lastLast)
		}
		start := 0
		for i, end := range blk.ends {
			line := raw[start:end]
			start = end
			fields, err := copySplitRow(append([]byte(nil), line...), nil)
			if err != nil {
				t.Fatal(err)
			}
			row := make([]any, len(fields))
			for j, f := range fields {
				if f != nil {
					if row[j], err = st.shape.decoders[j](f); err != nil {
						t.Fatalf("row %d column %s: %v", i, st.shape.cols[j].Name, err)
					}
				}
			}
			src := append([]any(nil), e.src...)
			src[schema.SrcSnapshot] = "true"
			snaps := []string{"true"}
			if final && i == len(blk.ends)-1 {
				snaps = []string{"last_in_data_collection", "last"}
			}
			for k, snap := range snaps {
				src[schema.SrcSnapshot] = snap
				env := &schema.Envelope{Op: schema.OpRead, After: row, Source: src, TsUs: src[schema.SrcTsUs].(int64)}
				wantV, err := st.codec.AppendEnvelope(nil, env)
				if err != nil {
					t.Fatal(err)
				}
				wantK, err := st.codec.AppendKey(nil, row)
				if err != nil {
					t.Fatal(err)
				}
				got := recs[i+k]
				if !bytes.Equal(got.Value, wantV) || !bytes.Equal(got.Key, wantK) || got.Topic != "tp.public.plan" {
					t.Errorf("final=%v row %d (%s): record differs\nkey   % x\nwant  % x\nvalue % x\nwant  % x", final, i, snap, got.Key, wantK, got.Value, wantV)
				}
				if cap(got.Value) != len(got.Value) || cap(got.Key) != len(got.Key) {
					t.Errorf("row %d: key/value capacity beyond length", i)
				}
			}
		}
	}
}

// TestSnapshotPlanErrors: a bad value names table, column and value, for
// both appenders and decoders.
func TestSnapshotPlanErrors(t *testing.T) {
	st := newPlanTable(t)
	c := &connector{cfg: &Config{TopicPrefixValue: "tp"}, db: "db"}
	e := c.newSnapEncoder(nil, 100, 7)
	good := strings.Split(snapPlanRows[0], "\t")
	for col, bad := range map[int]string{2: "yes", 3: "32768", 4: "1.5", 5: "9223372036854775808", 7: "abc", 13: "12.3.4", 14: "2024-13-01"} {
		f := append([]string(nil), good...)
		f[col] = bad
		line := strings.Join(f, "\t")
		blk := &snapBlock{t: st, raw: []byte(line), ends: []int{len(line)}}
		_, err := e.block(blk)
		if err == nil {
			t.Errorf("column %s = %q: no error", st.shape.cols[col].Name, bad)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "public.plan") || !strings.Contains(msg, "column "+st.shape.cols[col].Name) || !strings.Contains(msg, bad) {
			t.Errorf("column %s = %q: error %q does not name table, column and value", st.shape.cols[col].Name, bad, msg)
		}
	}
}

// TestAppendersMatchDecoders checks each appender against its decoder and
// the codec on valid and invalid text, for required and optional columns.
func TestAppendersMatchDecoders(t *testing.T) {
	cases := map[uint32][]string{
		16:   {"t", "f", "", "true", "T"},
		21:   {"0", "-32768", "32767", "32768", "-32769", "+5", "", "1a"},
		23:   {"2147483647", "-2147483648", "2147483648", "007", "-"},
		20:   {"9223372036854775807", "-9223372036854775808", "9223372036854775808", "123456789012"},
		26:   {"4294967295", "0"},
		700:  {"1.5", "NaN", "Infinity", "-Infinity", "3.4028235e38", "1e39", "-0", "x"},
		701:  {"1.7976931348623157e308", "5e-324", "-0", "NaN", "1e309", ""},
		25:   {"", "plain", "multi\nline", strings.Repeat("é", 100)},
		1043: {"v"},
		3802: {`{"a": 1}`},
		2950: {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		603:  {"(1,1),(0,0)"},
	}
	for oid, texts := range cases {
		for _, opt := range []bool{false, true} {
			typ, dec, _ := pgtypeLookup(oid, -1, pgtypeMapCatalog{})
			tbl := &schema.Table{Topic: "t.x", Columns: []schema.Column{{Name: "c", Type: typ, Optional: opt}}}
			codec, err := schema.NewCodec(tbl, schema.PostgresSource())
			if err != nil {
				t.Fatal(err)
			}
			app := pgtypeAppenderFor(oid, -1, pgtypeMapCatalog{})
			if app == nil {
				t.Fatalf("oid %d: no appender", oid)
			}
			isOpt, _, valIdx := codec.ColumnUnion(0)
			for _, text := range texts {
				v, decErr := dec([]byte(text))
				got := []byte{}
				if isOpt {
					got = append(got, valIdx)
				}
				got, appErr := app(got, []byte(text))
				if (decErr == nil) != (appErr == nil) {
					t.Errorf("oid %d %q: decoder error %v, appender error %v", oid, text, decErr, appErr)
					continue
				}
				if decErr != nil {
					continue
				}
				want, err := codec.AppendColumn(nil, 0, v)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("oid %d optional=%v %q: appender % x, codec % x", oid, opt, text, got, want)
				}
			}
		}
	}
	for _, oid := range []uint32{1700, 1082, 1184, 17, 1007, 1114} {
		if pgtypeAppenderFor(oid, -1, pgtypeMapCatalog{}) != nil {
			t.Errorf("oid %d has an appender; it must go through its decoder", oid)
		}
	}
}

// TestSnapArena: allocations have exactly their length as capacity, never
// overlap, fill chunks in order, and a record larger than a chunk gets its
// own memory; release empties the arena.
func TestSnapArena(t *testing.T) {
	a := snapArenaPool.Get().(*snapArena)
	var got [][]byte
	for i := 0; i < 3000; i++ {
		n := 1 + i%700
		if i == 1000 {
			n = snapChunkBytes + 1
		}
		b := a.alloc(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("alloc(%d): len %d cap %d", n, len(b), cap(b))
		}
		for j := range b {
			b[j] = byte(i)
		}
		got = append(got, b)
	}
	for i, b := range got {
		for _, c := range b {
			if c != byte(i) {
				t.Fatalf("allocation %d overwritten by a later one", i)
			}
		}
	}
	// ~1 MiB in 64 KiB chunks, the big one outside them.
	if len(a.chunks) < 15 || len(a.chunks) > 20 {
		t.Errorf("%d chunks for ~1 MiB", len(a.chunks))
	}
	a.release()
	if len(a.chunks) != 0 || a.free != nil {
		t.Errorf("release left %d chunks", len(a.chunks))
	}
}

package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-cdc/tributary/schema"
)

// unitSnapshot is a reader and a pool of encoders for public.t (id bigint
// primary key, payload text) without a server.
type unitSnapshot struct {
	w    *snapWorker
	t    *snapTable
	jobs chan *snapBlock
	out  chan snapBatch
	wg   sync.WaitGroup
	errs chan error
}

func newUnitSnapshot(tb testing.TB, encoders int) *unitSnapshot {
	tb.Helper()
	cfg := validConfig()
	cfg.TopicPrefixValue = "tp"
	c := &connector{name: "unit", cfg: cfg, db: "db", slot: "s", publication: "p"}
	id := tableID{"public", "t"}
	sh, err := buildShape("tp", id, []colSpec{{Name: "id", TypeOID: 20, TypMod: -1}, {Name: "payload", TypeOID: 25, TypMod: -1}}, []string{"id"}, pgtypeMapCatalog{})
	if err != nil {
		tb.Fatal(err)
	}
	codec, err := schema.NewCodec(&sh.table, schema.PostgresSource())
	if err != nil {
		tb.Fatal(err)
	}
	u := &unitSnapshot{
		t: &snapTable{ct: &catalogTable{ID: id, PK: []string{"id"}, Columns: []catalogColumn{{Name: "id", TypeName: "bigint"}, {Name: "payload", TypeName: "text"}}},
			shape: sh, codec: codec, pk: []int{0}, plan: newSnapPlan(sh, codec, pgtypeMapCatalog{})},
		jobs: make(chan *snapBlock, encoders),
		out:  make(chan snapBatch, 2*encoders),
		errs: make(chan error, encoders),
	}
	u.w = &snapWorker{jobs: u.jobs, chunk: 20000, ctx: context.Background(), t: u.t}
	for range encoders {
		e := c.newSnapEncoder(u.out, 100, 7)
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			if err := e.run(context.Background(), u.jobs); err != nil {
				u.errs <- err
			}
		}()
	}
	go func() { u.wg.Wait(); close(u.out); close(u.errs) }()
	return u
}

// finish marks the table's last block and closes the pipeline.
func (u *unitSnapshot) finish(tb testing.TB) {
	if u.w.blk != nil {
		u.w.blk.final = true
		if err := u.w.dispatch(); err != nil {
			tb.Fatal(err)
		}
	}
	close(u.jobs)
}

func benchLine(i int, payload string) []byte {
	return []byte(strconv.Itoa(i) + "\t" + payload + "\n")
}

// TestSnapshotEncodersParallel feeds COPY rows through one reader and three
// encoders: every row comes out exactly once, with its own key, and the
// table's final row is held back as "true" and "last" records.
func TestSnapshotEncodersParallel(t *testing.T) {
	const n = 5000
	u := newUnitSnapshot(t, 3)
	go func() {
		for i := 1; i <= n; i++ {
			// Escapes and a NULL-free text with a tab inside, split across writes.
			line := benchLine(i, `pay\tload `+strconv.Itoa(i))
			h := len(line) / 2
			if _, err := u.w.Write(line[:h]); err != nil {
				t.Error(err)
			}
			if _, err := u.w.Write(line[h:]); err != nil {
				t.Error(err)
			}
		}
		u.finish(t)
	}()
	seen := make([]int, n+1)
	var final *snapBatch
	key := func(k []byte) int {
		v, _ := binary.Varint(k[5:]) // Avro long is zigzag, as binary.Varint
		return int(v)
	}
	for b := range u.out {
		for _, r := range b.recs {
			id := key(r.Key)
			if id < 1 || id > n {
				t.Fatalf("record with key %d", id)
			}
			seen[id]++
			// Avro strings are prefixed by their zigzag length.
			mark := "\x08true"
			if id == 1 {
				mark = "\x30first_in_data_collection"
			}
			if !bytes.Contains(r.Value, []byte("pay\tload "+strconv.Itoa(id))) || !bytes.Contains(r.Value, []byte(mark)) {
				t.Fatalf("record %d: value lacks its payload or snapshot mark %q", id, mark[1:])
			}
		}
		if b.tableDone != nil {
			if final != nil {
				t.Fatal("two final batches")
			}
			bb := b
			final = &bb
		}
	}
	for err := range u.errs {
		t.Fatal(err)
	}
	if final == nil || final.lastInTable == nil || final.lastLast == nil {
		t.Fatal("no final batch with the held-back last row")
	}
	if key(final.lastInTable.Key) != n || key(final.lastLast.Key) != n || !bytes.Contains(final.lastLast.Value, []byte("\x08last")) ||
		!bytes.Contains(final.lastInTable.Value, []byte("\x2elast_in_data_collection")) {
		t.Fatalf("final row: keys %d/%d, want %d with snapshot=last", key(final.lastInTable.Key), key(final.lastLast.Key), n)
	}
	for id := 1; id < n; id++ {
		if seen[id] != 1 {
			t.Fatalf("key %d emitted %d times", id, seen[id])
		}
	}
	if seen[n] != 0 {
		t.Fatalf("final row also emitted in a plain batch")
	}
	if got := u.t.rows.Load(); got != n {
		t.Fatalf("rows progress %d, want %d", got, n)
	}
}

// BenchmarkSnapshotRows measures the reader plus encoders' cost per COPY
// row (split, decode, encode, batch) for ~200-byte rows, without a server.
func BenchmarkSnapshotRows(b *testing.B) {
	u := newUnitSnapshot(b, 2)
	done := make(chan int)
	go func() {
		n := 0
		for bt := range u.out {
			n += len(bt.recs)
			if bt.lastInTable != nil {
				n++
			}
		}
		done <- n
	}()
	payload := strings.Repeat("0123456789abcdef", 13)[:200]
	lines := make([][]byte, 1000)
	for i := range lines {
		lines[i] = benchLine(i+1, payload)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := u.w.Write(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
	u.finish(b)
	n := <-done
	b.StopTimer()
	if n != b.N {
		b.Fatalf("got %d records, want %d", n, b.N)
	}
}

// TestSnapshotEncoderErrorNamesTable: a row the encoders cannot decode
// stops the encoder with an error naming the table and the problem.
func TestSnapshotEncoderErrorNamesTable(t *testing.T) {
	u := newUnitSnapshot(t, 2)
	if _, err := u.w.Write([]byte("1\tok\n2\ttoo\tmany\n")); err != nil {
		t.Fatal(err)
	}
	u.finish(t)
	for range u.out {
	}
	var got []error
	for err := range u.errs {
		got = append(got, err)
	}
	if len(got) != 1 || !strings.Contains(got[0].Error(), "public") || !strings.Contains(got[0].Error(), "COPY row has 3 fields, want 2") {
		t.Fatalf("errors %v, want one naming the table and the field count", got)
	}
}

package postgres

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary-cdc/tributary/schema"
)

// newUnitSnapWorker builds a snapshot worker for public.t (id bigint
// primary key, payload text) without a server; batches go to the returned
// channel.
func newUnitSnapWorker(tb testing.TB) (*snapWorker, *snapTable, chan snapBatch) {
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
	st := &snapTable{ct: &catalogTable{ID: id, PK: []string{"id"}, Columns: []catalogColumn{{Name: "id", TypeName: "bigint"}, {Name: "payload", TypeName: "text"}}},
		shape: sh, codec: codec, pk: []int{0}}
	out := make(chan snapBatch, 4)
	w := &snapWorker{c: c, out: out, lsn: 100, txid: 7, chunk: 20000, src: c.sourceValues(), snapTrue: "true", snapLast: "last"}
	return w, st, out
}

// BenchmarkSnapshotRows measures the worker's cost per COPY row (split,
// decode, encode, batch) for ~200-byte rows, without a server.
func BenchmarkSnapshotRows(b *testing.B) {
	w, st, out := newUnitSnapWorker(b)
	done := make(chan int)
	go func() {
		n := 0
		for bt := range out {
			n += len(bt.recs)
		}
		done <- n
	}()
	payload := strings.Repeat("0123456789abcdef", 13)[:200]
	lines := make([][]byte, 1000)
	for i := range lines {
		lines[i] = []byte(strconv.Itoa(i+1) + "\t" + payload + "\n")
	}
	ctx := context.Background()
	w.t, w.ctx = st, ctx
	w.rows[0], w.rows[1] = make([]any, 2), make([]any, 2)
	w.src[schema.PGSrcSchema], w.src[schema.PGSrcTable] = "public", "t"
	w.src[schema.PGSrcTxID], w.src[schema.PGSrcLSN] = int64(7), int64(100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.flush(snapBatch{}); err != nil {
		b.Fatal(err)
	}
	close(out)
	n := <-done
	b.StopTimer()
	if n != b.N-1 { // the last row is held back for "last"
		b.Fatalf("got %d records, want %d", n, b.N-1)
	}
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/connectors/postgres"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

// TestSinkLargeBatches covers the paths of batches big enough for the sink
// to try a COPY straight into the table: new keys (the COPY stands), keys
// that exist (rolled back, merged through staging with ON CONFLICT), values
// that need COPY escaping, and a value the column refuses (reported as a
// rejected change, nothing half-applied).
func TestSinkLargeBatches(t *testing.T) {
	u, conn := sinkTestDB(t)
	ctx := context.Background()
	tg := postgres.NewSinkTarget("large", postgres.SinkConfig{URL: u}, sinktest.Logger())
	if err := tg.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	id := &sink.ColumnSpec{Name: "id", Type: sink.ColumnType{Kind: sink.KindInt64}, Key: true}
	cols := []*sink.ColumnSpec{id,
		{Name: "name", Type: sink.ColumnType{Kind: sink.KindString}},
		{Name: "code", Type: sink.ColumnType{Kind: sink.KindString, Dialect: sink.DialectPostgres, Native: "VARCHAR", Length: 5}, Optional: true},
		{Name: "amount", Type: sink.ColumnType{Kind: sink.KindDecimal, Precision: 12, DecimalScale: 2}},
		{Name: "at", Type: sink.ColumnType{Kind: sink.KindTimestampTZ}, Optional: true},
		{Name: "raw", Type: sink.ColumnType{Kind: sink.KindBytes}, Optional: true},
	}
	spec := &sink.TableSpec{Schema: "public", Name: "large", Columns: cols, Key: []*sink.ColumnSpec{id}}
	if err := tg.EnsureTable(ctx, spec); err != nil {
		t.Fatal(err)
	}
	cs := &sink.ColSet{Columns: cols}
	at := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	name := func(i, gen int) string {
		// Every byte COPY's text format escapes, and plain text.
		return fmt.Sprintf("n%d-%d\ttab\nnl\\bs\rcr", i, gen)
	}
	row := func(i, gen int) []any {
		r := []any{int64(i), name(i, gen), "c" + fmt.Sprint(i%100), fmt.Sprintf("%d.%02d", i, gen), at.Add(time.Duration(i) * time.Second), []byte{byte(i), '\\', '\t'}}
		if i%7 == 0 {
			r[2], r[4], r[5] = nil, nil, nil
		}
		return r
	}
	apply := func(changes []sink.Change) error {
		tx, err := tg.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Apply(ctx, spec, changes); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		return tx.Commit(ctx)
	}
	batch := func(from, to, gen int) []sink.Change {
		var out []sink.Change
		for i := from; i < to; i++ {
			r := row(i, gen)
			out = append(out, sink.Change{Op: sink.OpUpsert, Key: r[:1], Cols: cs, Row: r})
		}
		return out
	}
	check := func(what string, want map[int]int) {
		t.Helper()
		rows, err := conn.Query(ctx, "SELECT id, name, code, amount::text, at, raw FROM public.large ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var id int64
			var nm, amount string
			var code *string
			var ts *time.Time
			var raw []byte
			if err := rows.Scan(&id, &nm, &code, &amount, &ts, &raw); err != nil {
				t.Fatal(err)
			}
			gen, ok := want[int(id)]
			if !ok {
				t.Fatalf("%s: unexpected row %d", what, id)
			}
			r := row(int(id), gen)
			if nm != r[1] || amount != r[3] {
				t.Fatalf("%s: row %d = %q %q, want %q %q", what, id, nm, amount, r[1], r[3])
			}
			if (code == nil) != (r[2] == nil) || code != nil && *code != r[2] {
				t.Fatalf("%s: row %d code = %v, want %v", what, id, code, r[2])
			}
			if (ts == nil) != (r[4] == nil) || ts != nil && !ts.Equal(r[4].(time.Time)) {
				t.Fatalf("%s: row %d at = %v, want %v", what, id, ts, r[4])
			}
			if (raw == nil) != (r[5] == nil) || raw != nil && string(raw) != string(r[5].([]byte)) {
				t.Fatalf("%s: row %d raw = %x, want %x", what, id, raw, r[5])
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != len(want) {
			t.Fatalf("%s: %d rows, want %d", what, n, len(want))
		}
	}
	want := map[int]int{}
	// New keys only: the direct COPY.
	if err := apply(batch(0, 600, 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		want[i] = 1
	}
	check("new keys", want)
	staged := func() int {
		var n int
		if err := tg.Conn().QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname LIKE 'tributary_stage_%' AND relnamespace = pg_my_temp_schema()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := staged(); n != 0 {
		t.Fatalf("a batch of new keys went through %d staging tables, want a direct COPY", n)
	}
	// Half existing keys: the COPY meets them, the merge applies all.
	if err := apply(batch(300, 900, 2)); err != nil {
		t.Fatal(err)
	}
	for i := 300; i < 900; i++ {
		want[i] = 2
	}
	check("existing keys", want)
	if n := staged(); n != 1 {
		t.Fatalf("a batch of existing keys went through %d staging tables, want 1", n)
	}
	// After the back-off, new keys take the direct COPY again; the last
	// batch has a value too long for varchar(5) and is refused whole.
	for b := 0; b < 40; b++ {
		lo := 1000 + b*300
		if err := apply(batch(lo, lo+300, 3)); err != nil {
			t.Fatal(err)
		}
		for i := lo; i < lo+300; i++ {
			want[i] = 3
		}
	}
	check("many batches", want)
	bad := batch(20000, 20400, 4)
	bad[250].Row[2] = "too long"
	err := apply(bad)
	if err == nil || !tg.Rejected(err) || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("a value too long for varchar(5): got %v, want a rejected change", err)
	}
	var ve *sink.ValueError
	_ = errors.As(err, &ve)
	check("after the refused batch", want)
}

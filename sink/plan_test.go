package sink

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestPlanSort(t *testing.T) {
	a, b := newColSet(nil), newColSet(nil)
	k := func(i int) []any { return []any{int64(i)} }
	changes := []Change{
		{Op: OpTruncate},
		{Op: OpUpsert, Cols: a, Key: k(1)},
		{Op: OpDelete, Key: k(2)},
		{Op: OpUpsert, Cols: b, Key: k(3)},
		{Op: OpInsert, Cols: a},
		{Op: OpUpsert, Cols: a, Key: k(5)},
		{Op: OpDelete, Key: k(6)},
		{Op: OpUpsert, Cols: b, Key: k(7)},
	}
	var p Plan
	for round := range 3 {
		p.Sort(changes)
		if !p.Truncate {
			t.Errorf("round %d: truncate not seen", round)
		}
		if !reflect.DeepEqual(p.Deletes, [][]any{k(2), k(6)}) {
			t.Errorf("round %d: deletes %v", round, p.Deletes)
		}
		want := []WriteGroup{{Op: OpUpsert, Cols: a, Rows: []int{1, 5}}, {Op: OpUpsert, Cols: b, Rows: []int{3, 7}}, {Op: OpInsert, Cols: a, Rows: []int{4}}}
		if len(p.Writes) != len(want) {
			t.Fatalf("round %d: %d groups, want %d", round, len(p.Writes), len(want))
		}
		for i, g := range p.Writes {
			if g.Op != want[i].Op || g.Cols != want[i].Cols || !reflect.DeepEqual(g.Rows, want[i].Rows) {
				t.Errorf("round %d: group %d = %v %p %v, want %v %p %v", round, i, g.Op, g.Cols, g.Rows, want[i].Op, want[i].Cols, want[i].Rows)
			}
		}
	}
	spec := &TableSpec{Schema: "s", Name: "t"}
	if err := p.MissingTable(spec); err == nil || err.Error() != "table s.t does not exist" {
		t.Errorf("MissingTable with writes = %v", err)
	}
	// A later, smaller batch leaves nothing of the earlier one behind.
	p.Sort(changes[2:3])
	if p.Truncate || len(p.Writes) != 0 || len(p.Deletes) != 1 {
		t.Errorf("after a delete-only batch: truncate %v, writes %v, deletes %v", p.Truncate, p.Writes, p.Deletes)
	}
	p.Sort(changes[:1])
	if err := p.MissingTable(spec); err != nil || !p.Truncate {
		t.Errorf("truncate only: MissingTable = %v, Truncate = %v; want nil, true", err, p.Truncate)
	}
}

// Many shapes go through the map and keep first-seen order.
func TestPlanManyShapes(t *testing.T) {
	sets := make([]*ColSet, 3*planScanShapes)
	for i := range sets {
		sets[i] = newColSet(nil)
	}
	var changes []Change
	for round := range 3 {
		for i, cs := range sets {
			changes = append(changes, Change{Op: OpUpsert, Cols: cs, Key: []any{int64(round*100 + i)}})
		}
	}
	var p Plan
	p.Sort(changes)
	if len(p.Writes) != len(sets) {
		t.Fatalf("%d groups, want %d", len(p.Writes), len(sets))
	}
	for i, g := range p.Writes {
		want := []int{i, len(sets) + i, 2*len(sets) + i}
		if g.Cols != sets[i] || !reflect.DeepEqual(g.Rows, want) {
			t.Errorf("group %d: rows %v, want %v", i, g.Rows, want)
		}
	}
}

// The apply path is hot: a reused plan sorts without allocating.
func TestPlanSortAllocs(t *testing.T) {
	a, b := newColSet(nil), newColSet(nil)
	changes := make([]Change, 5000)
	for i := range changes {
		switch {
		case i%10 == 0:
			changes[i] = Change{Op: OpDelete, Key: []any{int64(i)}}
		case i%3 == 0:
			changes[i] = Change{Op: OpUpsert, Cols: b}
		default:
			changes[i] = Change{Op: OpUpsert, Cols: a}
		}
	}
	var p Plan
	p.Sort(changes)
	if n := testing.AllocsPerRun(20, func() { p.Sort(changes) }); n != 0 {
		t.Errorf("Sort allocates %.0f times per batch, want 0", n)
	}
}

func BenchmarkPlanSort(b *testing.B) {
	a := newColSet(nil)
	changes := make([]Change, 5000)
	for i := range changes {
		changes[i] = Change{Op: OpUpsert, Cols: a}
	}
	var p Plan
	b.ReportAllocs()
	for b.Loop() {
		p.Sort(changes)
	}
}

func TestOffsetsSQL(t *testing.T) {
	pg := OffsetsSQL{Table: `"s".tributary_offsets`, TextType: "text", TimeType: "timestamptz", Numbered: true}
	my := OffsetsSQL{Table: "`d`.tributary_offsets", TextType: "VARCHAR(255)", TimeType: "DATETIME(6)", TableOptions: " ENGINE=InnoDB", OnDuplicateKey: true}
	if got := pg.Select(); got != `SELECT topic, kafka_partition, next_offset FROM "s".tributary_offsets WHERE sink_name = $1` {
		t.Errorf("pg select: %s", got)
	}
	if got := my.Rename(); got != "UPDATE `d`.tributary_offsets SET sink_name = ? WHERE sink_name = ?" {
		t.Errorf("mysql rename: %s", got)
	}
	if got := my.CreateTable(); !strings.Contains(got, "topic VARCHAR(255) NOT NULL") || !strings.HasSuffix(got, ") ENGINE=InnoDB") {
		t.Errorf("mysql create: %s", got)
	}

	type stmt struct {
		q    string
		args []any
	}
	record := func(out *[]stmt) func(context.Context, string, ...any) error {
		return func(_ context.Context, q string, args ...any) error {
			*out = append(*out, stmt{q, append([]any(nil), args...)})
			return nil
		}
	}
	var got []stmt
	next := map[TopicPartition]int64{{"t", 0}: 7}
	if err := pg.Store(context.Background(), record(&got), "s1", next, "now"); err != nil {
		t.Fatal(err)
	}
	want := `INSERT INTO "s".tributary_offsets (sink_name, topic, kafka_partition, next_offset, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sink_name, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at`
	if len(got) != 1 || got[0].q != want || !reflect.DeepEqual(got[0].args, []any{"s1", "t", int32(0), int64(7), "now"}) {
		t.Errorf("pg store: %+v", got)
	}

	// Many partitions: several statements, every partition stored once,
	// parameters numbered from 1 in each.
	next = map[TopicPartition]int64{}
	for i := range 2500 {
		next[TopicPartition{"t", int32(i)}] = int64(i)
	}
	got = nil
	if err := pg.Store(context.Background(), record(&got), "s1", next, "now"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d statements for 2500 partitions, want 3", len(got))
	}
	seen := map[int32]bool{}
	for _, s := range got {
		if !strings.Contains(s.q, "VALUES ($1, $2, $3, $4, $5), ") || strings.Contains(s.q, "$5001") {
			t.Errorf("statement parameters misnumbered: %.120s", s.q)
		}
		for i := 0; i < len(s.args); i += 5 {
			p := s.args[i+2].(int32)
			if seen[p] || s.args[i+3].(int64) != int64(p) {
				t.Errorf("partition %d stored twice or with the wrong offset", p)
			}
			seen[p] = true
		}
	}
	if len(seen) != 2500 {
		t.Errorf("%d partitions stored, want 2500", len(seen))
	}

	got = nil
	if err := my.Store(context.Background(), record(&got), "s1", map[TopicPartition]int64{{"t", 1}: 3}, "now"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.HasSuffix(got[0].q, "VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), updated_at = VALUES(updated_at)") {
		t.Errorf("mysql store: %+v", got)
	}
	boom := errors.New("boom")
	if err := my.Store(context.Background(), func(context.Context, string, ...any) error { return boom }, "s1", next, "now"); !errors.Is(err, boom) {
		t.Errorf("store error %v, want %v", err, boom)
	}
}

type fakeOffsetRows struct {
	rows [][3]any
	i    int
	err  error
}

func (r *fakeOffsetRows) Next() bool { r.i++; return r.i <= len(r.rows) }
func (r *fakeOffsetRows) Err() error { return r.err }
func (r *fakeOffsetRows) Scan(dest ...any) error {
	row := r.rows[r.i-1]
	*dest[0].(*string), *dest[1].(*int32), *dest[2].(*int64) = row[0].(string), row[1].(int32), row[2].(int64)
	return nil
}

func TestScanOffsets(t *testing.T) {
	got, err := ScanOffsets(&fakeOffsetRows{rows: [][3]any{{"a", int32(0), int64(5)}, {"", int32(-1), int64(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[TopicPartition]int64{{"a", 0}: 5, {"", -1}: 0}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ScanOffsets = %v, want %v", got, want)
	}
	if _, err := ScanOffsets(&fakeOffsetRows{err: fmt.Errorf("lost")}); err == nil {
		t.Error("ScanOffsets hid the rows' error")
	}
}

func TestPlanRun(t *testing.T) {
	a := newColSet(nil)
	changes := []Change{{Op: OpTruncate}, {Op: OpUpsert, Cols: a}, {Op: OpDelete, Key: []any{int64(1)}}, {Op: OpInsert, Cols: a}}
	var p Plan
	p.Sort(changes)
	var steps []string
	err := p.Run(
		func() error { steps = append(steps, "truncate"); return nil },
		func(keys [][]any) error { steps = append(steps, fmt.Sprintf("delete %v", keys)); return nil },
		func(g *WriteGroup) error { steps = append(steps, fmt.Sprintf("%s %v", g.Op, g.Rows)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"truncate", "delete [[1]]", "upsert [1]", "insert [3]"}; !reflect.DeepEqual(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	boom := errors.New("boom")
	err = p.Run(func() error { return boom }, nil, nil)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "truncating: ") {
		t.Errorf("truncate error = %v", err)
	}
	p.Sort(changes[1:2])
	if err := p.Run(nil, nil, func(*WriteGroup) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("write error = %v", err)
	}
}

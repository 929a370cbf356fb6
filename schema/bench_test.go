package schema

import (
	"context"
	"strings"
	"testing"
)

// benchTable is a typical 10-column row of about 200 bytes.
func benchTable() *Table {
	return &Table{
		Topic: "bench.public.orders",
		Columns: []Column{
			{Name: "id", Type: Type{Kind: Int64}},
			{Name: "customer_id", Type: Type{Kind: Int64}},
			{Name: "status", Type: Type{Kind: String}},
			{Name: "amount", Type: DecimalType(12, 2)},
			{Name: "currency", Type: Type{Kind: String}, Optional: true},
			{Name: "note", Type: Type{Kind: String}, Optional: true},
			{Name: "created_at", Type: Type{Kind: Int64, Name: MicroTimestampName}},
			{Name: "updated_at", Type: Type{Kind: Int64, Name: MicroTimestampName}, Optional: true},
			{Name: "active", Type: Type{Kind: Boolean}},
			{Name: "score", Type: Type{Kind: Float64}, Optional: true},
		},
		Key: []int{0},
	}
}

func benchEnvelope() *Envelope {
	row := []any{int64(123456789), int64(987654), "shipped", dec("12345.67", 2), "EUR",
		strings.Repeat("n", 120), int64(1700000000123456), int64(1700000000654321), true, 0.875}
	return &Envelope{Op: OpCreate, After: row, TsUs: 1700000000999999,
		Source: []any{"3.0.0.tributary", "postgresql", "bench", int64(1700000000999), "false", "benchdb", nil,
			int64(1700000000999999), int64(1700000000999999000), "public", "orders", int64(123456), int64(24023128), nil},
		Txn: &TxnBlock{ID: "123456:24023128", TotalOrder: 17, DataCollectionOrder: 9}}
}

func BenchmarkAppendEnvelope(b *testing.B) {
	c, err := NewCodec(benchTable(), PostgresSource())
	if err != nil {
		b.Fatal(err)
	}
	c.SetIDs(1, 2)
	e := benchEnvelope()
	buf, err := c.AppendEnvelope(nil, e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, err = c.AppendEnvelope(buf[:0], e)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendKey(b *testing.B) {
	c, err := NewCodec(benchTable(), PostgresSource())
	if err != nil {
		b.Fatal(err)
	}
	row := benchEnvelope().After
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, err = c.AppendKey(buf[:0], row)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	c, err := NewCodec(benchTable(), PostgresSource())
	if err != nil {
		b.Fatal(err)
	}
	msg, err := c.AppendEnvelope(nil, benchEnvelope())
	if err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(&mapFetcher{schemas: map[int]string{0: c.ValueSchema()}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Decode(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

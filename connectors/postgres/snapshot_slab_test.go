package postgres

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tributary-cdc/tributary/schema"
)

// TestRecordSlab checks that records carved from shared blocks are byte for
// byte what the codec encodes on its own, that each owns its bytes (exact
// capacity: appending to one cannot touch its neighbour), and that a record
// bigger than a block gets a block of its own.
func TestRecordSlab(t *testing.T) {
	tbl := &schema.Table{Topic: "p.public.t", Key: []int{0}, Columns: []schema.Column{
		{Name: "id", Type: schema.Type{Kind: schema.Int64}},
		{Name: "payload", Type: schema.Type{Kind: schema.String}, Optional: true},
	}}
	codec, err := schema.NewCodec(tbl, schema.PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	codec.SetIDs(7, 8)
	c := &connector{cfg: &Config{TopicPrefixValue: "p"}, db: "db"}
	src := c.sourceValues()
	src[schema.PGSrcSchema], src[schema.PGSrcTable], src[schema.PGSrcTxID], src[schema.PGSrcLSN] = "public", "t", int64(1), int64(2)
	src[schema.SrcTsMs], src[schema.SrcTsUs], src[schema.SrcTsNs] = int64(3), int64(4), int64(5)

	var slab recordSlab
	type want struct{ key, value []byte }
	var wants []want
	var got []struct{ key, value []byte }
	for i := range 2000 {
		payload := strings.Repeat("x", i%300)
		if i == 1500 {
			payload = strings.Repeat("y", 3*snapSlabBytes) // bigger than a block
		}
		row := []any{int64(i), payload}
		env := &schema.Envelope{Op: schema.OpRead, After: row, Source: src, TsUs: 4}
		k, err := codec.AppendKey(nil, row)
		if err != nil {
			t.Fatal(err)
		}
		v, err := codec.AppendEnvelope(nil, env)
		if err != nil {
			t.Fatal(err)
		}
		wants = append(wants, want{k, v})
		rec, err := slab.encode(codec, tbl.Topic, row, env)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if rec.Topic != tbl.Topic || cap(rec.Key) != len(rec.Key) || cap(rec.Value) != len(rec.Value) {
			t.Fatalf("row %d: topic %q, key len/cap %d/%d, value len/cap %d/%d", i, rec.Topic, len(rec.Key), cap(rec.Key), len(rec.Value), cap(rec.Value))
		}
		got = append(got, struct{ key, value []byte }{rec.Key, rec.Value})
	}
	// Checked after all encodes: a later record must not overwrite an earlier one.
	for i := range wants {
		if !bytes.Equal(got[i].key, wants[i].key) || !bytes.Equal(got[i].value, wants[i].value) {
			t.Fatalf("row %d: slab record differs from the codec's own encoding", i)
		}
	}
}

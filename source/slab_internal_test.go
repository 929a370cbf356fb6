package source

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The record slabs of acknowledged batches are reused by class, and the
// free list never holds more than maxFreeRecords records.
func TestRecordSlabsReusedAndBounded(t *testing.T) {
	rt := &runtime{}
	a := rt.getSlab(100)
	if cap(*a) != 128 || len(*a) != 0 {
		t.Fatalf("slab for 100 records: len %d cap %d, want an empty slab of class 128", len(*a), cap(*a))
	}
	rt.putSlab(a)
	if b := rt.getSlab(70); b != a {
		t.Fatal("a batch of the same class did not reuse the returned slab")
	}
	if c := rt.getSlab(70); c == a {
		t.Fatal("a slab in use was handed out twice")
	}
	big := rt.getSlab(5000)
	if cap(*big) != 5000 {
		t.Fatalf("slab for 5000 records has cap %d", cap(*big))
	}
	rt.putSlab(big)
	if rt.freeRecords != 0 {
		t.Fatalf("a slab beyond the largest class was kept (%d records free)", rt.freeRecords)
	}
	for range 1000 {
		s := make([]kgo.Record, 0, 4096)
		rt.putSlab(&s)
	}
	if rt.freeRecords > maxFreeRecords || rt.freeRecords < maxFreeRecords-4096 {
		t.Fatalf("%d records kept free, want at most %d and close to it", rt.freeRecords, maxFreeRecords)
	}
}

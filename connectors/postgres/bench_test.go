package postgres

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/tributary-cdc/tributary/source"
)

// discardRuntime is a fakeRuntime whose Emit keeps nothing, to measure the
// connector's own cost per event.
type discardRuntime struct {
	*fakeRuntime
	n     int
	bytes int
}

func (d *discardRuntime) Emit(ctx context.Context, r source.Record) error {
	d.n++
	d.bytes += len(r.Key) + len(r.Value)
	return nil
}

// BenchmarkStreamInsert measures parse + decode + encode + Emit of streamed
// inserts of ~200-byte rows in 1000-row transactions, without a server.
func BenchmarkStreamInsert(b *testing.B) {
	t := &testing.T{}
	s, frt := newUnitStreamer(t, 0)
	rt := &discardRuntime{fakeRuntime: frt}
	s.rt = rt
	ctx := context.Background()
	ts := time.Now()
	cols := []relCol{{true, "id", 20}, {false, "name", 25}, {false, "n", 23}, {false, "created", 1184}, {false, "amount", 1700}, {false, "flag", 16}}
	if err := s.message(ctx, 1, mRelation(nil, 1, "public", "t", 'd', cols...)); err != nil {
		b.Fatal(err)
	}
	name := strings.Repeat("n", 120)
	msgs := make([][]byte, 1000)
	for i := range msgs {
		msgs[i] = mInsert(nil, 1, strconv.Itoa(i+1), name, "42", "2024-05-06 07:08:09.123456+00", "12345.67", "t")
	}
	b.ReportAllocs()
	b.ResetTimer()
	lsn := pglogrepl.LSN(100)
	for i := 0; i < b.N; {
		if err := s.message(ctx, lsn, mBegin(lsn+2000, ts, uint32(i))); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < len(msgs) && i < b.N; j++ {
			if err := s.message(ctx, lsn+pglogrepl.LSN(j), msgs[j]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		if err := s.message(ctx, lsn+2000, mCommit(lsn+2000, lsn+2001, ts)); err != nil {
			b.Fatal(err)
		}
		lsn += 3000
	}
	b.StopTimer()
	if rt.n != b.N {
		b.Fatalf("emitted %d, want %d", rt.n, b.N)
	}
	b.ReportMetric(float64(rt.bytes)/float64(rt.n), "bytes/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

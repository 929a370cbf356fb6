package sink_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/connectors/sqlite"
	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

// BenchmarkSinkSQLite measures the whole sink path (fetch, decode, reduce,
// apply, commit) into SQLite: b.N distinct-key upserts.
func BenchmarkSinkSQLite(b *testing.B) {
	cluster := sinktest.NewCluster(b)
	reg := sinktest.NewRegistry()
	topic := "bench.public.rows"
	enc, err := sinktest.NewEncoder(reg, &sinktest.Table{
		Topic: topic, DB: "bench", Schema: "public", Name: "rows",
		Columns: []sinktest.Col{
			{Name: "id", Type: sinktest.Int64("INT8")},
			{Name: "name", Type: sinktest.String("TEXT")},
			{Name: "amount", Type: sinktest.Decimal(12, 2, "NUMERIC", "12", "2")},
			{Name: "at", Type: sinktest.MicroTimestamp("TIMESTAMP")},
			{Name: "note", Type: sinktest.String("TEXT"), Optional: true},
		},
		Key: []string{"id"},
	})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, 0, b.N)
	for i := range b.N {
		r, err := enc.Record("c", nil, map[string]any{
			"id": int64(i), "name": fmt.Sprintf("name-%d", i), "amount": sinktest.Dec("1234.56"),
			"at": time.Now().UnixMicro(), "note": "a note of about fifty bytes, give or take a few",
		})
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, r)
	}
	cluster.Produce(context.Background(), b, recs...)
	tgt := sqlite.NewTarget("bench", sqlite.Config{Path: filepath.Join(b.TempDir(), "b.db")}, sinktest.Logger())
	spec := sink.DefaultSpec()
	spec.Name, spec.Topics = "bench", []string{topic}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, spec, tgt, sink.Deps{NewClient: cluster.NewClient, Decoder: schema.NewDecoder(reg), Logger: sinktest.Logger()})
	}()
	for {
		var n int64
		if db := tgt.DB(); db != nil {
			_ = db.QueryRow("SELECT COALESCE(MAX(next_offset), 0) FROM tributary_offsets WHERE sink_name = 'bench' AND kafka_partition >= 0").Scan(&n)
		}
		if n >= int64(b.N) {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("sink stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	cancel()
	<-done
}

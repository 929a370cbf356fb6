package source_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/source"
)

// EmitBatch and Emit mixed: every record reaches the log in emit order,
// batch records carry their batch's timestamp, and once everything is
// acknowledged the event and byte counters are exact (they are added in
// bulk), per topic.
func TestEmitBatchOrderAndCounters(t *testing.T) {
	deps, cl := newDeps(t)
	const batches, per = 7, 300
	var bytesWant int
	var batchesDone atomic.Int64
	began := time.Now()
	conn := connFunc(func(ctx context.Context, rt source.Runtime) error {
		be, ok := rt.(source.BatchDoneEmitter)
		if !ok {
			t.Fatal("the runtime is not a BatchDoneEmitter")
		}
		if _, ok := rt.(source.BatchEmitter); !ok {
			t.Fatal("the runtime is not a BatchEmitter")
		}
		n := 0
		for b := 0; b < batches; b++ {
			rs := make([]source.Record, per)
			for i := range rs {
				k, v := []byte(strconv.Itoa(n)), []byte("v"+strconv.Itoa(n))
				rs[i] = source.Record{Topic: "events", Key: k, Value: v}
				bytesWant += len(k) + len(v)
				n++
			}
			if b%3 == 2 {
				if err := rt.(source.BatchEmitter).EmitBatch(ctx, rs); err != nil {
					return err
				}
			} else if err := be.EmitBatchDone(ctx, rs, func() { batchesDone.Add(1) }); err != nil {
				return err
			}
			clear(rs) // the slice may be reused once EmitBatchDone returns
			k, v := []byte(strconv.Itoa(n)), []byte("single")
			if err := rt.Emit(ctx, source.Record{Topic: "events", Key: k, Value: v}); err != nil {
				return err
			}
			bytesWant += len(k) + len(v)
			n++
		}
		if err := be.EmitBatchDone(ctx, nil, func() { batchesDone.Add(1) }); err != nil {
			return err
		}
		if err := rt.Checkpoint(ctx, map[string]any{"cp": 1}, nil); err != nil {
			return err
		}
		return rt.Flush(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := source.Run(ctx, "c", "p", conn, deps); err != nil {
		t.Fatal(err)
	}
	total := batches * (per + 1)
	wantDone := int64(batches - batches/3 + 1)
	// done runs right after the last acknowledgement is counted, so it may
	// trail Flush by a moment.
	for deadline := time.Now().Add(5 * time.Second); batchesDone.Load() < wantDone && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := batchesDone.Load(); got != wantDone {
		t.Errorf("done ran for %d batches, want %d (one per EmitBatchDone, the empty one included)", got, wantDone)
	}
	if got := counterValue(t, deps.Metrics.EventsProduced.WithLabelValues("c", "events")); got != float64(total) {
		t.Errorf("events produced counter %v, want %d", got, total)
	}
	if got := counterValue(t, deps.Metrics.BytesProduced.WithLabelValues("c")); got != float64(bytesWant) {
		t.Errorf("bytes produced counter %v, want %d", got, bytesWant)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := 0
	for next < total {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != strconv.Itoa(next) {
				t.Fatalf("record %d has key %q: out of order", next, r.Key)
			}
			if r.Timestamp.Before(began.Truncate(time.Millisecond)) || r.Timestamp.After(time.Now()) {
				t.Fatalf("record %d timestamp %v not within the run", next, r.Timestamp)
			}
			next++
		})
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

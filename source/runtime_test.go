package source_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/broker"
	"github.com/tributary-cdc/tributary/offsets"
	"github.com/tributary-cdc/tributary/source"
)

// connFunc adapts a function to source.Connector.
type connFunc func(ctx context.Context, rt source.Runtime) error

func (f connFunc) Run(ctx context.Context, rt source.Runtime) error { return f(ctx, rt) }

func newDeps(t *testing.T) (source.Deps, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events", offsets.DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := broker.NewClient(broker.ClientConfig{Brokers: c.ListenAddrs(), Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return source.Deps{
		Client:  cl,
		Topics:  broker.NewTopics(cl),
		Offsets: offsets.NewStore(cl, ""),
		Metrics: source.NewMetrics(nil),
		Logger:  slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
	}, cl
}

// Durable callbacks run in checkpoint order, only after the records before
// them and the offset record are acknowledged; a restart sees the offset.
func TestCheckpointsBecomeDurableInOrder(t *testing.T) {
	deps, _ := newDeps(t)
	var mu sync.Mutex
	var durable []int
	conn := connFunc(func(ctx context.Context, rt source.Runtime) error {
		for cp := 1; cp <= 20; cp++ {
			for i := 0; i < 50; i++ {
				if err := rt.Emit(ctx, source.Record{Topic: "events", Key: []byte{byte(i)}, Value: []byte("v")}); err != nil {
					return err
				}
			}
			if err := rt.Checkpoint(ctx, map[string]any{"cp": cp}, func() {
				mu.Lock()
				durable = append(durable, cp)
				mu.Unlock()
			}); err != nil {
				return err
			}
		}
		return rt.Flush(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := source.Run(ctx, "c", "p", conn, deps); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(durable) != 20 {
		t.Fatalf("durable callbacks %v, want 1..20", durable)
	}
	for i, cp := range durable {
		if cp != i+1 {
			t.Fatalf("durable callbacks out of order: %v", durable)
		}
	}
	off, err := deps.Offsets.Load(ctx, "c", "p")
	if err != nil || off == nil || off["cp"].(interface{ String() string }).String() != "20" {
		t.Fatalf("committed offset %v (%v), want cp 20", off, err)
	}
}

// A record the log refuses stops acknowledgement at the checkpoint before it:
// later checkpoints never become durable and the source fails.
func TestRefusedRecordBlocksLaterCheckpoints(t *testing.T) {
	deps, _ := newDeps(t)
	var durable []int
	var mu sync.Mutex
	mark := func(n int) func() {
		return func() { mu.Lock(); durable = append(durable, n); mu.Unlock() }
	}
	conn := connFunc(func(ctx context.Context, rt source.Runtime) error {
		if err := rt.Emit(ctx, source.Record{Topic: "events", Key: []byte("a"), Value: []byte("ok")}); err != nil {
			return err
		}
		_ = rt.Checkpoint(ctx, map[string]any{"cp": 1}, mark(1))
		if err := rt.Flush(ctx); err != nil {
			return err
		}
		// Larger than the producer's batch limit: refused without retry.
		_ = rt.Emit(ctx, source.Record{Topic: "events", Key: []byte("b"), Value: bytes.Repeat([]byte("x"), 9<<20)})
		_ = rt.Checkpoint(ctx, map[string]any{"cp": 2}, mark(2))
		return rt.Flush(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := source.Run(ctx, "c", "p", conn, deps); err == nil {
		t.Fatal("Run succeeded although the log refused a record")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(durable) != 1 || durable[0] != 1 {
		t.Fatalf("durable %v, want only checkpoint 1", durable)
	}
	off, _ := deps.Offsets.Load(ctx, "c", "p")
	if off == nil || off["cp"].(interface{ String() string }).String() != "1" {
		t.Fatalf("committed offset %v, want cp 1", off)
	}
}

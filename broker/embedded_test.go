package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func loopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A second broker on the same data folder is refused while the first runs,
// and the folder is usable again once the first stops.
func TestEmbeddedLocksDataDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, Listen: loopbackAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, Listen: loopbackAddr(t)})
	if !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second broker on %s: got %v, want ErrDataDirLocked", dir, err)
	}
	first.Close()
	again, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, Listen: loopbackAddr(t)})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	again.Close()
}

func TestEmbeddedRefusesNonLoopback(t *testing.T) {
	_, err := StartEmbedded(context.Background(), EmbeddedConfig{DataDir: t.TempDir(), Listen: "0.0.0.0:0"})
	if err == nil {
		t.Fatal("a non-loopback listen address was accepted")
	}
}

// Compaction runs on tributary's schedule, not kfake's one-hour default:
// older versions of a key disappear from a compacted topic.
func TestEmbeddedCompactsOnSchedule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emb, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: t.TempDir(), Listen: loopbackAddr(t), CompactionInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	cl, err := NewClient(ClientConfig{Brokers: []string{emb.Addr()}, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := NewTopics(cl).Ensure(ctx, TopicSpec{Name: "c", Partitions: 1, Compacted: true}); err != nil {
		t.Fatal(err)
	}
	// One batch per ProduceSync; kfake never compacts a partition's last batch.
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "c", Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "c", Key: []byte("other"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := countRecords(t, ctx, emb.Addr(), "c")
		if n == 2 { // the latest "k" and "other"
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic still holds %d records after compaction was due", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func countRecords(t *testing.T, ctx context.Context, addr, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		got := 0
		fs.EachRecord(func(*kgo.Record) { got++ })
		if got == 0 {
			return n
		}
		n += got
	}
}

// CloseDiscardingUnused removes the folders StartEmbedded created when the
// log holds no record, and keeps a log with records.
func TestEmbeddedDiscardsUnusedFolders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "log")
	emb, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, Listen: loopbackAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	emb.CloseDiscardingUnused()
	if _, err := os.Stat(filepath.Join(base, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unused log folder kept: %v", err)
	}

	emb, err = StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, Listen: loopbackAddr(t), SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	emb.CloseDiscardingUnused()
	if _, err := os.Stat(filepath.Join(dir, "kfake")); err != nil {
		t.Fatalf("a log holding a record was removed: %v", err)
	}
}

// The embedded broker takes no frame above RequestBytesFor (16 MiB by
// default): a larger one is closed before its body is read, since parsing a
// hostile request can allocate many times its size.
func TestEmbeddedRequestLimit(t *testing.T) {
	emb, err := StartEmbedded(context.Background(), EmbeddedConfig{DataDir: t.TempDir(), Listen: loopbackAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	for _, size := range []uint32{16<<20 + 1, 64 << 20} {
		conn, err := net.Dial("tcp", emb.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte{byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)}); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 8))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("a %d-byte frame was not refused (read: %v)", size, err)
		}
		conn.Close()
	}
	if got := RequestBytesFor(64 << 20); got != 65<<20 {
		t.Fatalf("RequestBytesFor(64 MiB) = %d, want 65 MiB", got)
	}
}

package offsets

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The key is byte for byte what Kafka Connect (and so Debezium) writes, so
// offsets move between the two.
func TestKeyIsKafkaConnectForm(t *testing.T) {
	if got, want := string(Key("inventory-connector", "dbserver1")), `["inventory-connector",{"server":"dbserver1"}]`; got != want {
		t.Fatalf("key %s, want %s", got, want)
	}
}

func TestLoadReturnsLatestOffsetOfTheConnector(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := NewStore(cl, "")
	if off, err := s.Load(ctx, "a", "p"); err != nil || off != nil {
		t.Fatalf("empty topic: %v %v", off, err)
	}
	// A Debezium-written record for another connector, then two of ours.
	for _, o := range []struct {
		conn string
		lsn  uint64
	}{{"other", 1}, {"a", 100}, {"a", 18446744073709551615}} {
		rec, err := s.Record(o.conn, "p", map[string]any{"lsn": o.lsn, "txId": 7})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	off, err := s.Load(ctx, "a", "p")
	if err != nil {
		t.Fatal(err)
	}
	// Numbers keep every digit of a 64-bit LSN.
	if n, ok := off["lsn"].(json.Number); !ok || n.String() != "18446744073709551615" {
		t.Fatalf("lsn %#v", off["lsn"])
	}
	if off, _ := s.Load(ctx, "a", "other-prefix"); off != nil {
		t.Fatalf("another server's offset leaked: %v", off)
	}
}

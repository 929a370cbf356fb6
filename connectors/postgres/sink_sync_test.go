package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tributary-cdc/tributary/connectors/postgres"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

// The sink's commits do not wait for the WAL flush, except the first one of
// a sink (its marker row) and a replay's swap; the URL can ask for
// synchronous commits.
func TestSinkSynchronousCommit(t *testing.T) {
	ctx := context.Background()
	url, _ := sinkTestDB(t)
	show := func(target *postgres.SinkTarget) string {
		t.Helper()
		var v string
		if err := target.Conn().QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	target := postgres.NewSinkTarget("s", postgres.SinkConfig{URL: url}, sinktest.Logger())
	if err := target.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if v := show(target); v != "off" {
		t.Errorf("synchronous_commit = %s by default, want off", v)
	}
	tp := sink.TopicPartition{Topic: "t", Partition: 0}
	for _, c := range []struct {
		next map[sink.TopicPartition]int64
		want string
	}{
		{map[sink.TopicPartition]int64{tp: 5}, "off"},
		{map[sink.TopicPartition]int64{tp: 5, {Topic: "", Partition: -1}: 0}, "on"},
	} {
		tx, err := target.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.StoreOffsets(ctx, "s", c.next); err != nil {
			t.Fatal(err)
		}
		if v := show(target); v != c.want {
			t.Errorf("storing %v: synchronous_commit = %s in the transaction, want %s", c.next, v, c.want)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if v := show(target); v != "off" {
		t.Errorf("synchronous_commit = %s after the marker's transaction, want off again", v)
	}

	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	on := postgres.NewSinkTarget("s", postgres.SinkConfig{URL: url + sep + "synchronous_commit=on"}, sinktest.Logger())
	if err := on.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer on.Close()
	if v := show(on); v != "on" {
		t.Errorf("synchronous_commit = %s with ?synchronous_commit=on, want on", v)
	}
}

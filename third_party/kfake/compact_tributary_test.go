package kfake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Tests of the tributary patch in compact_tributary.go.

const (
	ctKeys     = 3000 // with three versions each, more than one dedupe pass
	ctVersions = 3
)

type ctRec struct {
	key, value string
	tombstone  bool
}

func ctCreateTopic(t *testing.T, c *Cluster, topic string) {
	t.Helper()
	adm := kadm.NewClient(newPlainClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	compact, seg, ret := "compact", "8192", "86400000"
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy":      &compact,
		"segment.bytes":       &seg,
		"delete.retention.ms": &ret,
	}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
}

// ctProduce writes every key ctVersions times (each round in batches of 100),
// deletes every tenth key in the last round, and ends with one fresh key.
// It returns the value at every offset.
func ctProduce(t *testing.T, c *Cluster, topic string) map[int64]ctRec {
	t.Helper()
	cl := newPlainClient(t, c, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	byOffset := make(map[int64]ctRec)
	send := func(recs []*kgo.Record) {
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			byOffset[r.Record.Offset] = ctRec{key: string(r.Record.Key), value: string(r.Record.Value), tombstone: r.Record.Value == nil}
		}
	}
	for v := range ctVersions {
		var recs []*kgo.Record
		for k := range ctKeys {
			r := &kgo.Record{Key: fmt.Appendf(nil, "k%05d", k), Value: fmt.Appendf(nil, "k%05d-v%d", k, v)}
			if v == ctVersions-1 && k%10 == 0 {
				r.Value = nil
			}
			recs = append(recs, r)
			if len(recs) == 100 {
				send(recs)
				recs = nil
			}
		}
		send(recs)
	}
	send([]*kgo.Record{{Key: []byte("last"), Value: []byte("last")}})
	return byOffset
}

// ctConsume reads the whole partition.
func ctConsume(t *testing.T, c *Cluster, topic string) map[int64]ctRec {
	t.Helper()
	cl := newPlainClient(t, c, kgo.ConsumeTopics(topic), kgo.FetchMaxWait(100*time.Millisecond))
	adm := kadm.NewClient(newPlainClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	got := make(map[int64]ctRec)
	last := int64(-1)
	for last < end.Offset-1 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s: %v (at offset %d of %d)", topic, err, last, end.Offset)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Offset] = ctRec{key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil}
			last = r.Offset
		})
	}
	return got
}

// ctCheckCompacted checks that got is produced with every superseded record
// removed: one record per key, the latest, at its original offset.
func ctCheckCompacted(t *testing.T, produced, got map[int64]ctRec) {
	t.Helper()
	latest := make(map[string]int64)
	for off, r := range produced {
		if prev, ok := latest[r.key]; !ok || off > prev {
			latest[r.key] = off
		}
	}
	for off, r := range got {
		if produced[off] != r {
			t.Fatalf("offset %d: got %+v, produced %+v", off, r, produced[off])
		}
		if latest[r.key] != off {
			t.Fatalf("offset %d: key %s survived although offset %d supersedes it", off, r.key, latest[r.key])
		}
	}
	for k, off := range latest {
		if _, ok := got[off]; !ok {
			t.Fatalf("key %s: latest record at offset %d is missing", k, off)
		}
	}
}

// ctCheckValid checks that got is a valid state of the log, compacted or
// not: every record is the one produced at that offset, and the latest
// record of every key is there.
func ctCheckValid(t *testing.T, produced, got map[int64]ctRec) {
	t.Helper()
	latest := make(map[string]int64)
	for off, r := range produced {
		if prev, ok := latest[r.key]; !ok || off > prev {
			latest[r.key] = off
		}
	}
	for off, r := range got {
		if produced[off] != r {
			t.Fatalf("offset %d: got %+v, produced %+v", off, r, produced[off])
		}
	}
	for k, off := range latest {
		if _, ok := got[off]; !ok {
			t.Fatalf("key %s: latest record at offset %d is missing", k, off)
		}
	}
}

func TestTributaryCompactBoundedPasses(t *testing.T) {
	t.Parallel()
	for _, persisted := range []bool{false, true} {
		t.Run(fmt.Sprintf("persisted=%v", persisted), func(t *testing.T) {
			opts := []Opt{NumBrokers(1), BrokerConfigs(map[string]string{
				// the smallest map: 1024 records a pass
				"log.cleaner.dedupe.buffer.size": "1",
			})}
			dir := t.TempDir()
			if persisted {
				opts = append(opts, DataDir(dir))
			}
			c := newCluster(t, opts...)
			const topic = "ct-bounded"
			ctCreateTopic(t, c, topic)
			produced := ctProduce(t, c, topic)
			c.Compact()
			got := ctConsume(t, c, topic)
			ctCheckCompacted(t, produced, got)
			if len(got) != ctKeys+1 {
				t.Fatalf("%d records after compaction, want %d", len(got), ctKeys+1)
			}
			if !persisted {
				return
			}
			// The compacted segments are what a restart loads.
			c.Close()
			c2 := newCluster(t, NumBrokers(1), DataDir(dir))
			ctCheckCompacted(t, produced, ctConsume(t, c2, topic))
			// New writes after a compaction land after the survivors.
			cl := newPlainClient(t, c2, kgo.DefaultProduceTopic(topic))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// (The last batch is never cleaned nor read into the map, so
			// a fresh key follows the update.)
			for _, kv := range [][2]string{{"k00001", "after"}, {"last2", "last2"}} {
				res := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(kv[0]), Value: []byte(kv[1])})
				if err := res.FirstErr(); err != nil {
					t.Fatal(err)
				}
				r, _ := res.First()
				produced[r.Offset] = ctRec{key: kv[0], value: kv[1]}
			}
			c2.Compact()
			ctCheckCompacted(t, produced, ctConsume(t, c2, topic))
		})
	}
}

// TestTributaryCompactCrash copies the data dir at each step of the segment
// swap, as a kill -9 there would leave it, and loads each copy.
func TestTributaryCompactCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	crashRoot := t.TempDir()
	var mu sync.Mutex
	copied := make(map[string]string)
	hook := opt{func(cfg *cfg) {
		cfg.compactHook = func(stage string) {
			mu.Lock()
			defer mu.Unlock()
			if _, done := copied[stage]; done {
				return
			}
			dst := filepath.Join(crashRoot, stage)
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Error(err)
				return
			}
			copyDir(t, dir, dst)
			copied[stage] = dst
		}
	}}
	c := newCluster(t, NumBrokers(1), DataDir(dir), hook)
	const topic = "ct-crash"
	ctCreateTopic(t, c, topic)
	produced := ctProduce(t, c, topic)
	c.Compact()
	ctCheckCompacted(t, produced, ctConsume(t, c, topic))
	c.Close()

	for _, stage := range []string{"cleaned", "manifest", "pair", "swapped"} {
		t.Run(stage, func(t *testing.T) {
			crashDir, ok := copied[stage]
			if !ok {
				t.Fatalf("compaction never reached stage %q", stage)
			}
			c2 := newCluster(t, NumBrokers(1), DataDir(crashDir))
			got := ctConsume(t, c2, topic)
			ctCheckValid(t, produced, got)
			switch stage {
			case "cleaned":
				if len(got) != len(produced) {
					t.Fatalf("crash before the manifest: %d records, want all %d produced", len(got), len(produced))
				}
			default:
				if len(got) >= len(produced) {
					t.Fatalf("crash after the manifest: %d records, the swap was not finished", len(got))
				}
			}
			err := filepath.Walk(crashDir, func(path string, info os.FileInfo, err error) error {
				if err == nil && (strings.HasSuffix(path, cleanedSuffix) || info.Name() == compactManifestName) {
					t.Errorf("left behind after load: %s", path)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			// The recovered log compacts to the right result.
			c2.Compact()
			ctCheckCompacted(t, produced, ctConsume(t, c2, topic))
		})
	}
}

// TestTributaryCompactSkipsOpenTransaction checks that records of an open
// transaction neither get cleaned nor supersede committed records.
func TestTributaryCompactSkipsOpenTransaction(t *testing.T) {
	t.Parallel()
	c := newCluster(t, NumBrokers(1))
	const topic = "ct-txn"
	ctCreateTopic(t, c, topic)
	plain := newPlainClient(t, c, kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("a"), Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn := newPlainClient(t, c, kgo.DefaultProduceTopic(topic), kgo.TransactionalID("ct-txn"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte("a"), Value: []byte("uncommitted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := plain.ProduceSync(ctx, &kgo.Record{Key: fmt.Appendf(nil, "b%d", i), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.Compact()
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	c.Compact()
	rc := newPlainClient(t, c, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	var values []string
	for len(values) < 4 {
		fs := rc.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v (values so far %v)", err, values)
		}
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Key)+"="+string(r.Value)) })
	}
	if values[0] != "a=committed" {
		t.Fatalf("the committed record of key a was lost to an aborted transaction: %v", values)
	}
}

// TestTributaryCompactTicks checks the background path: one bounded pass per
// tick cleans a backlog through, and a few new records (under
// min.cleanable.dirty.ratio) wait for more.
func TestTributaryCompactTicks(t *testing.T) {
	t.Parallel()
	c := newCluster(t, NumBrokers(1), BrokerConfigs(map[string]string{"log.cleaner.dedupe.buffer.size": "1"}))
	const topic = "ct-ticks"
	ctCreateTopic(t, c, topic)
	produced := ctProduce(t, c, topic)
	for range 20 {
		c.admin(func() { c.compactAll() })
	}
	ctCheckCompacted(t, produced, ctConsume(t, c, topic))

	cl := newPlainClient(t, c, kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, kv := range [][2]string{{"k00002", "new"}, {"last3", "last3"}} {
		res := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(kv[0]), Value: []byte(kv[1])})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		r, _ := res.First()
		produced[r.Offset] = ctRec{key: kv[0], value: kv[1]}
	}
	c.admin(func() { c.compactAll() })
	versions := 0
	for _, r := range ctConsume(t, c, topic) {
		if r.key == "k00002" {
			versions++
		}
	}
	if versions != 2 {
		t.Fatalf("a tick with a dirty ratio far under 0.5 cleaned anyway: key k00002 has %d versions, want 2", versions)
	}
	c.Compact()
	ctCheckCompacted(t, produced, ctConsume(t, c, topic))
}

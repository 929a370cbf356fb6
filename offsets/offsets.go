// Package offsets stores source positions in a compacted Kafka topic, in the
// exact form Kafka Connect uses, so offsets written by Debezium can be read
// by tributary and the other way round.
package offsets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the offsets topic when the config names none.
const DefaultTopic = "tributary-offsets"

// Store reads and builds offset records for one offsets topic.
type Store struct {
	cl    *kgo.Client
	topic string
}

// NewStore uses cl (whose producer settings apply: acks=all, idempotent).
func NewStore(cl *kgo.Client, topic string) *Store {
	if topic == "" {
		topic = DefaultTopic
	}
	return &Store{cl: cl, topic: topic}
}

// Topic is the offsets topic name.
func (s *Store) Topic() string { return s.topic }

// Key is Kafka Connect's offset key: ["<connector>",{"server":"<topic_prefix>"}].
func Key(connector, server string) []byte {
	k, _ := json.Marshal([]any{connector, map[string]string{"server": server}})
	return k
}

// Record builds the offset record to produce for a connector position.
func (s *Store) Record(connector, server string, offset map[string]any) (*kgo.Record, error) {
	v, err := json.Marshal(offset)
	if err != nil {
		return nil, fmt.Errorf("encoding offset of %s: %w", connector, err)
	}
	return &kgo.Record{Topic: s.topic, Key: Key(connector, server), Value: v}, nil
}

// Load returns the latest offset of the connector, or nil if none. It reads
// the compacted topic up to its high watermark at call time; a tombstone
// (Connect's way to reset) means none. Numbers decode as json.Number so
// 64-bit LSNs and positions keep every digit.
func (s *Store) Load(ctx context.Context, connector, server string) (map[string]any, error) {
	want := Key(connector, server)
	adm := kadm.NewClient(s.cl)
	// Up to the last stable offset, read committed: with exactly_once an
	// offset record of an open or aborted transaction is not a position.
	ends, err := adm.ListCommittedOffsets(ctx, s.topic)
	if err != nil {
		return nil, fmt.Errorf("reading end offsets of %s: %w", s.topic, err)
	}
	if err := ends.Error(); err != nil {
		// A missing topic simply means nothing was ever committed.
		return nil, nil //nolint:nilerr // see above
	}
	starts := map[int32]kgo.Offset{}
	stops := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			starts[o.Partition] = kgo.NewOffset().AtStart()
			stops[o.Partition] = o.Offset
		}
	})
	if len(starts) == 0 {
		return nil, nil
	}
	rd, err := kgo.NewClient(append(s.cl.Opts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: starts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers take offsets too: kept, so the read can tell
		// that it reached the end even when the last offset is a marker.
		kgo.KeepControlRecords())...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.topic, err)
	}
	defer rd.Close()
	var latest []byte
	found := false
	for len(stops) > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= stops[r.Partition] {
				delete(stops, r.Partition)
			}
			if !r.Attrs.IsControl() && bytes.Equal(r.Key, want) {
				latest, found = r.Value, true
			}
		})
	}
	if !found || latest == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(latest))
	dec.UseNumber()
	var off map[string]any
	if err := dec.Decode(&off); err != nil {
		return nil, fmt.Errorf("offset of %s in %s is not a JSON object: %w", connector, s.topic, err)
	}
	return off, nil
}

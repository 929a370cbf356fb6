package source

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/broker"
)

// Debezium's Kafka signal channel (signal.kafka.topic): records keyed by
// the connector's logical name (topic_prefix) whose value is
// {"id": ..., "type": "execute-snapshot" | "stop-snapshot", "data": {...}}.
// execute-snapshot data: "data-collections" (table names), "type"
// ("incremental"; "blocking" is run incrementally too), and
// "additional-conditions" [{"data-collection": ..., "filter": ...}] (or the
// older "additional-condition"). The offset of the next signal to read is
// kept in the source's offset (OffsetSignal), as Debezium keeps it in its
// own, so a restart does not run a signal twice.

// SignalTopicConfig is implemented by source configs that name a signal
// topic.
type SignalTopicConfig interface {
	SignalTopic() string
}

// OffsetSignal is the offset field holding the next signal to read.
const OffsetSignal = "tributary_signal_offset"

type signal struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type signalData struct {
	DataCollections      []string `json:"data-collections"`
	Type                 string   `json:"type"`
	AdditionalCondition  string   `json:"additional-condition"`
	AdditionalConditions []struct {
		DataCollection string `json:"data-collection"`
		Filter         string `json:"filter"`
	} `json:"additional-conditions"`
}

// runSignals reads the signal topic and turns signals into requests until
// ctx is done.
func (rt *runtime) runSignals(ctx context.Context, topic string) {
	log := rt.log.With("signal_topic", topic)
	if err := rt.d.Topics.Ensure(ctx, broker.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: rt.d.ReplicationFactor}); err != nil {
		log.Warn("signal topic cannot be created; signals are not read", "error", err)
		return
	}
	start := kgo.NewOffset().AtStart()
	if v, ok := rt.offset[OffsetSignal]; ok {
		var n int64
		switch x := v.(type) {
		case json.Number:
			n, _ = x.Int64()
		case float64:
			n = int64(x)
		}
		start = kgo.NewOffset().At(n)
		rt.signalNext.Store(n)
	}
	cl, err := kgo.NewClient(append(rt.d.Client.Opts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: start}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		log.Warn("signal topic cannot be read", "error", err)
		return
	}
	defer cl.Close()
	log.Info("reading Debezium signals (execute-snapshot, stop-snapshot)")
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			rt.signal(ctx, r, log)
			rt.signalNext.Store(r.Offset + 1)
		})
	}
}

func (rt *runtime) signal(ctx context.Context, r *kgo.Record, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) {
	if string(r.Key) != rt.server {
		return // another connector's signal
	}
	var s signal
	if err := json.Unmarshal(r.Value, &s); err != nil {
		log.Warn("signal skipped: not JSON", "offset", r.Offset, "error", err)
		return
	}
	var d signalData
	if len(s.Data) > 0 {
		// Debezium's source channel stores data as a JSON string.
		var str string
		if json.Unmarshal(s.Data, &str) == nil {
			s.Data = json.RawMessage(str)
		}
		if err := json.Unmarshal(s.Data, &d); err != nil {
			log.Warn("signal skipped: data is not the expected object", "id", s.ID, "offset", r.Offset, "error", err)
			return
		}
	}
	var reqs []SnapshotRequest
	switch s.Type {
	case "execute-snapshot":
		if len(d.DataCollections) == 0 {
			log.Warn("execute-snapshot signal skipped: no data-collections", "id", s.ID)
			return
		}
		if t := strings.ToLower(d.Type); t != "" && t != "incremental" {
			log.Warn("execute-snapshot signal of type "+d.Type+" runs as an incremental snapshot", "id", s.ID)
		}
		// One request per distinct condition.
		byFilter := map[string][]string{}
		var order []string
		for _, tbl := range d.DataCollections {
			tbl = strings.TrimSpace(tbl)
			f := d.AdditionalCondition
			for _, ac := range d.AdditionalConditions {
				if strings.EqualFold(ac.DataCollection, tbl) {
					f = ac.Filter
				}
			}
			if _, ok := byFilter[f]; !ok {
				order = append(order, f)
			}
			byFilter[f] = append(byFilter[f], tbl)
		}
		for _, f := range order {
			reqs = append(reqs, SnapshotRequest{Tables: byFilter[f], Where: f})
		}
	case "stop-snapshot":
		reqs = append(reqs, SnapshotRequest{Tables: d.DataCollections, Stop: true})
	default:
		return // other signal types (log, pause, ...) are not supported
	}
	for _, req := range reqs {
		req.Reply = make(chan error, 1)
		select {
		case rt.requests <- req:
		case <-ctx.Done():
			return
		}
		select {
		case err := <-req.Reply:
			if err != nil {
				log.Warn("signal refused", "id", s.ID, "type", s.Type, "tables", req.Tables, "error", err)
			} else {
				log.Info("signal accepted", "id", s.ID, "type", s.Type, "tables", req.Tables, "where", req.Where)
			}
		case <-time.After(time.Minute):
			log.Warn("signal queued; the source takes it once it streams", "id", s.ID, "type", s.Type)
		case <-ctx.Done():
			return
		}
	}
}

// withSignal adds the next signal offset to an offset about to be
// committed.
func (rt *runtime) withSignal(offset map[string]any) map[string]any {
	if n := rt.signalNext.Load(); n > 0 && offset != nil {
		offset[OffsetSignal] = n
	}
	return offset
}

type atomicInt64 = atomic.Int64

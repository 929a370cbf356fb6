package offsets

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// History is a schema-history store on a one-partition topic that is never
// compacted or expired (the worker creates it with retention.ms=-1).
type History struct {
	cl    *kgo.Client
	topic string
}

// NewHistory stores history records in topic through cl (acks=all).
func NewHistory(cl *kgo.Client, topic string) *History { return &History{cl: cl, topic: topic} }

// Append produces one record and waits for the log to acknowledge it.
func (h *History) Append(ctx context.Context, key, value []byte) error {
	if err := h.cl.ProduceSync(ctx, &kgo.Record{Topic: h.topic, Partition: 0, Key: key, Value: value}).FirstErr(); err != nil {
		return fmt.Errorf("appending to schema history topic %s: %w", h.topic, err)
	}
	return nil
}

// ReadAll reads the topic from its start to the high watermark at call time.
func (h *History) ReadAll(ctx context.Context, fn func(key, value []byte) error) error {
	ends, err := kadm.NewClient(h.cl).ListEndOffsets(ctx, h.topic)
	if err != nil {
		return fmt.Errorf("reading end of schema history topic %s: %w", h.topic, err)
	}
	end := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Partition == 0 && o.Err == nil {
			end = o.Offset
		}
	})
	if end == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append(h.cl.Opts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		h.topic: {0: kgo.NewOffset().AtStart()},
	}))...)
	if err != nil {
		return fmt.Errorf("reading schema history topic %s: %w", h.topic, err)
	}
	defer rd.Close()
	for {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		done := false
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if err := fn(r.Key, r.Value); err != nil {
				return fmt.Errorf("schema history %s at offset %d: %w", h.topic, r.Offset, err)
			}
			if r.Offset+1 >= end {
				done = true
				break
			}
		}
		if done {
			return nil
		}
	}
}

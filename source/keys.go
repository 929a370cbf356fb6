package source

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KeyReader is implemented by the Runtime that Run hands to connectors
// (check with a type assertion). ReadKeys calls fn with the key of every
// committed record of topic, from its start up to its end when called,
// partition by partition in log order; deleted is true for a tombstone.
// A topic that does not exist has no keys. Memory stays at one fetch.
//
// A source redoing a full snapshot over topics that already hold rows uses
// it to find the keys the new snapshot no longer has (DESIGN invariant 4:
// no row deleted at the source may survive in the log's latest state).
type KeyReader interface {
	ReadKeys(ctx context.Context, topic string, fn func(key []byte, deleted bool) error) error
}

var _ KeyReader = (*runtime)(nil)

func (rt *runtime) ReadKeys(ctx context.Context, topic string, fn func(key []byte, deleted bool) error) error {
	adm := kadm.NewClient(rt.d.Client)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if ends.Error() != nil {
		return nil // no such topic: nothing written yet
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
		return nil
	}
	cl, err := kgo.NewClient(append(rt.d.Client.Opts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", topic, err)
	}
	defer cl.Close()
	for len(stops) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		var cbErr error
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= stops[r.Partition] {
				delete(stops, r.Partition)
			}
			if cbErr != nil || r.Attrs.IsControl() || r.Key == nil {
				return
			}
			cbErr = fn(r.Key, r.Value == nil)
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}

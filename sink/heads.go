package sink

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Heads returns the head a read_committed consumer of spec's topics can
// reach right now (the last stable offset) for every non-empty partition:
// where a backfill or a replay is done.
func Heads(ctx context.Context, adm *kadm.Client, spec Spec) (map[TopicPartition]int64, error) {
	return replayHeads(ctx, adm, spec.withDefaults())
}

package broker

import "github.com/twmb/franz-go/pkg/kgo"

// onePartitionFast wraps franz-go's default partitioner (sticky uniform
// bytes, murmur2 of the key for keyed records, as the Java client) and
// answers 0 at once for a topic of one partition, the embedded default:
// hashing every key there picks partition 0 anyway, at a visible cost per
// event in a snapshot. Topics with more partitions get the wrapped
// partitioner's choice unchanged.
type onePartitionFast struct{ inner kgo.Partitioner }

func defaultPartitioner() kgo.Partitioner {
	return onePartitionFast{kgo.UniformBytesPartitioner(64<<10, true, true, nil)}
}

func (p onePartitionFast) ForTopic(topic string) kgo.TopicPartitioner {
	return &onePartitionTopic{inner: p.inner.ForTopic(topic)}
}

type onePartitionTopic struct {
	inner kgo.TopicPartitioner
}

var (
	_ kgo.TopicBackupPartitioner     = (*onePartitionTopic)(nil)
	_ kgo.TopicPartitionerOnNewBatch = (*onePartitionTopic)(nil)
)

func (t *onePartitionTopic) RequiresConsistency(r *kgo.Record) bool {
	return t.inner.RequiresConsistency(r)
}

func (t *onePartitionTopic) Partition(r *kgo.Record, n int) int {
	if n == 1 {
		return 0
	}
	return t.inner.Partition(r, n)
}

func (t *onePartitionTopic) PartitionByBackup(r *kgo.Record, n int, it kgo.TopicBackupIter) int {
	if n == 1 {
		return 0
	}
	if b, ok := t.inner.(kgo.TopicBackupPartitioner); ok {
		return b.PartitionByBackup(r, n, it)
	}
	return t.inner.Partition(r, n)
}

func (t *onePartitionTopic) OnNewBatch() {
	if b, ok := t.inner.(kgo.TopicPartitionerOnNewBatch); ok {
		b.OnNewBatch()
	}
}

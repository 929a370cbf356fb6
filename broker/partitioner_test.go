package broker

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgo calls PartitionByBackup, as on the default partitioner. The wrapper picks what franz-go's default partitioner picks (murmur2 of
// the key, as the Java client) for every partition count, 1 included.
func TestPartitionerMatchesDefault(t *testing.T) {
	ours := defaultPartitioner().ForTopic("t").(kgo.TopicBackupPartitioner)
	ref := kgo.UniformBytesPartitioner(64<<10, true, true, nil).ForTopic("t").(kgo.TopicBackupPartitioner)
	for _, n := range []int{1, 2, 3, 12} {
		for i := 0; i < 500; i++ {
			r := &kgo.Record{Key: []byte("key-" + strconv.Itoa(i))}
			if !ours.RequiresConsistency(r) {
				t.Fatal("keyed records must be partitioned consistently")
			}
			want := ref.PartitionByBackup(r, n, nil) // keyed: the hash, no backlog needed
			if n == 1 && ours.Partition(r, n) != 0 {
				t.Fatalf("n=1: Partition %d", ours.Partition(r, n))
			}
			if got := ours.PartitionByBackup(r, n, nil); got != want {
				t.Fatalf("n=%d key %q: PartitionByBackup %d, default %d", n, r.Key, got, want)
			}
		}
	}
}

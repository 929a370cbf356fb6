package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ClientConfig is what every tributary Kafka client shares.
type ClientConfig struct {
	Brokers     []string
	ClientID    string
	Compression string // snappy (also when empty), zstd, lz4, gzip, none
	TLS         bool
	SASL        *SASL
	// MaxBufferedBytes bounds records produced but not yet acknowledged;
	// Produce blocks beyond it, which is how sources get backpressure.
	MaxBufferedBytes int64
	// MaxRecordBytes is log.max_record_bytes: the largest record (key plus
	// value, uncompressed) the producer accepts; 0 means DefaultMaxRecordBytes.
	MaxRecordBytes int64
}

// DefaultMaxRecordBytes is log.max_record_bytes' default (1 MiB), below
// Kafka's default max.message.bytes (1048588).
const DefaultMaxRecordBytes = 1 << 20

// kafkaDefaultMaxMessageBytes is Kafka's (and kfake's) default
// message.max.bytes / max.message.bytes.
const kafkaDefaultMaxMessageBytes = 1048588

// RequestBytesFor is the largest request tributary's clients write, and the
// largest the embedded broker reads, for records of up to maxRecord bytes:
// 16 MiB, or a record plus 1 MiB when records are larger. Not Kafka's
// 100 MiB socket.request.max.bytes: parsing a hostile request can allocate
// about 32 times its size (arrays of small elements decoded into large
// structs), so the embedded broker takes no larger frame than tributary
// needs. A produce request of many partitions is split by the client.
func RequestBytesFor(maxRecord int64) int64 {
	return max(16<<20, maxRecord+1<<20)
}

// responseBytesFor is the largest response tributary's clients read: Kafka's
// 100 MiB default, or a record plus 1 MiB (a fetch returns at least one
// whole batch, however large).
func responseBytesFor(maxRecord int64) int64 {
	return max(100<<20, maxRecord+1<<20)
}

func maxRecord(n int64) int64 {
	if n <= 0 {
		return DefaultMaxRecordBytes
	}
	return n
}

// SASL credentials. Password comes from the environment or a file through config interpolation.
type SASL struct {
	Mechanism, User, Password string
}

// NewClient builds a franz-go client producing with acks=all and idempotence
// (franz-go's defaults, stated here so nobody weakens them by accident).
func NewClient(cfg ClientConfig, extra ...kgo.Opt) (*kgo.Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka client: no brokers")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		// A batch holds at most one record of the largest size; a larger
		// record fails with MESSAGE_TOO_LARGE (source/runtime.go says which).
		kgo.ProducerBatchMaxBytes(int32(maxRecord(cfg.MaxRecordBytes))),
		kgo.BrokerMaxWriteBytes(int32(RequestBytesFor(maxRecord(cfg.MaxRecordBytes)))),
		kgo.BrokerMaxReadBytes(int32(responseBytesFor(maxRecord(cfg.MaxRecordBytes)))),
		// When batches queue up (a snapshot, a backlog), merge them into
		// one compressed batch of up to ProducerBatchMaxBytes: several times
		// fewer batches to write, and the embedded broker fsyncs each
		// (sync_writes), which was the bench's largest wait. Consumers then
		// get batches of up to 1 MiB compressed rather than uncompressed.
		kgo.StreamingCompression(),
		kgo.RecordPartitioner(defaultPartitioner()),
		kgo.RecordRetries(1 << 30), // never give up on a record while the client lives: loss is worse than stalling
		kgo.ProduceRequestTimeout(30 * time.Second),
	}
	if cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	codec, err := compression(cfg.Compression)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec...))
	if cfg.MaxBufferedBytes > 0 {
		// kgo fails a record larger than the buffer outright: the buffer
		// holds at least one record of the largest size.
		opts = append(opts, kgo.MaxBufferedBytes(int(max(cfg.MaxBufferedBytes, maxRecord(cfg.MaxRecordBytes)))))
	}
	if cfg.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if cfg.SASL != nil {
		switch strings.ToLower(cfg.SASL.Mechanism) {
		case "plain":
			opts = append(opts, kgo.SASL(plain.Auth{User: cfg.SASL.User, Pass: cfg.SASL.Password}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASL.User, Pass: cfg.SASL.Password}.AsSha256Mechanism()))
		case "scram-sha-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASL.User, Pass: cfg.SASL.Password}.AsSha512Mechanism()))
		default:
			return nil, fmt.Errorf("kafka client: log.sasl.mechanism %q: want plain, scram-sha-256 or scram-sha-512", cfg.SASL.Mechanism)
		}
	}
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	return cl, nil
}

func compression(name string) ([]kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "zstd":
		// Level 1 (fastest): measured about 30% more snapshot throughput
		// than franz-go's default level for the same size on disk.
		return []kgo.CompressionCodec{kgo.ZstdCompression().WithLevel(1), kgo.NoCompression()}, nil
	case "", "snappy":
		// The default (log.compression): the least CPU per event; see
		// BenchmarkCompressSnapshotBatch.
		return []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.NoCompression()}, nil
	case "lz4":
		return []kgo.CompressionCodec{kgo.Lz4Compression(), kgo.NoCompression()}, nil
	case "gzip":
		return []kgo.CompressionCodec{kgo.GzipCompression(), kgo.NoCompression()}, nil
	case "none":
		return []kgo.CompressionCodec{kgo.NoCompression()}, nil
	}
	return nil, fmt.Errorf("kafka client: log.compression %q: want zstd, lz4, snappy, gzip or none", name)
}

// TopicSpec describes a topic tributary creates when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16 // -1: broker default
	Compacted         bool
	Configs           map[string]string // extra topic configs
	// Records marks a topic of source records, which must accept records
	// of log.max_record_bytes (internal topics hold small records).
	Records bool
}

// Topics creates topics on first use and remembers which exist, so the hot
// path pays for a metadata round trip once per topic and process.
type Topics struct {
	adm *kadm.Client
	mu  sync.Mutex
	ok  map[string]bool
	// maxRecord is log.max_record_bytes, which each record topic's
	// max.message.bytes must allow; 0 skips the check (see
	// WithMaxRecordBytes).
	maxRecord int64
	check     bool
}

// NewTopics wraps an admin client.
func NewTopics(cl *kgo.Client) *Topics {
	return &Topics{adm: kadm.NewClient(cl), ok: map[string]bool{}}
}

// WithMaxRecordBytes makes Ensure create topics that accept records of n
// bytes and, with check, refuse an existing record topic (TopicSpec.Records)
// whose max.message.bytes is smaller. The check is for Kafka clusters: the
// embedded broker's own message.max.bytes follows n, and it covers every
// topic without an override (kfake describes those with Kafka's default).
func (t *Topics) WithMaxRecordBytes(n int64, check bool) *Topics {
	t.maxRecord, t.check = n, check
	return t
}

// Ensure creates the topic if it does not exist. An existing topic is left
// as it is (its partition count is the operator's choice).
func (t *Topics) Ensure(ctx context.Context, spec TopicSpec) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ok[spec.Name] {
		return nil
	}
	parts := spec.Partitions
	if parts <= 0 {
		parts = 1
	}
	rf := spec.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	cfgs := map[string]*string{}
	if spec.Compacted {
		compact := "compact"
		cfgs["cleanup.policy"] = &compact
	}
	if t.maxRecord > kafkaDefaultMaxMessageBytes {
		mmb := strconv.FormatInt(t.maxRecord, 10)
		cfgs["max.message.bytes"] = &mmb
	}
	for k, v := range spec.Configs {
		cfgs[k] = &v
	}
	resp, err := t.adm.CreateTopic(ctx, parts, rf, cfgs, spec.Name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		if spec.Records && t.check {
			if err := t.checkMaxMessageBytes(ctx, spec.Name); err != nil {
				return err
			}
		}
	case err != nil:
		return fmt.Errorf("creating topic %s (%d partitions, compacted=%v): %w", spec.Name, parts, spec.Compacted, err)
	}
	t.ok[spec.Name] = true
	return nil
}

// checkMaxMessageBytes refuses a topic that would refuse records
// log.max_record_bytes allows: better at start, with the fix, than a
// MESSAGE_TOO_LARGE on the first large row.
func (t *Topics) checkMaxMessageBytes(ctx context.Context, topic string) error {
	if t.maxRecord <= 0 {
		return nil
	}
	rcs, err := t.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("topic %s: reading its max.message.bytes: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("topic %s: reading its max.message.bytes: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key != "max.message.bytes" || c.Value == nil {
			continue
		}
		n, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil || n >= t.maxRecord {
			return nil
		}
		return fmt.Errorf("topic %s has max.message.bytes=%d, below log.max_record_bytes (%d): raise the topic's limit "+
			"(kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config max.message.bytes=%d) or lower log.max_record_bytes",
			topic, n, t.maxRecord, topic, t.maxRecord)
	}
	return nil
}

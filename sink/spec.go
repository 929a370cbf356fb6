package sink

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// Spec is the target-independent part of one entry of `sinks:` in the
// pipeline YAML. The target's own keys (url, path, ...) live in the Config
// its Driver returns; SpecKeys lists the keys that belong here so a config
// loader can split one YAML mapping between the two and still reject
// unknown keys.
type Spec struct {
	// Name is the sink's unique name: the key of its rows in
	// tributary_offsets, the consumer group "tributary-sink-<name>" and the
	// default dead-letter topic "<name>.dlq".
	Name string `yaml:"name" required:"true" desc:"Unique sink name: the key of its rows in tributary_offsets, the consumer group tributary-sink-<name> (lag only) and the dead-letter topic <name>.dlq."`
	// Topics to consume, by name. Exactly one of Topics and TopicsRegex is set.
	Topics []string `yaml:"topics" desc:"Topics to consume, by name. Give topics or topics_regex. A topic that does not exist yet is consumed from its start once created."`
	// TopicsRegex selects topics by a Go regular expression (RE2), matched
	// against the whole topic name. The pipeline's own non-change topics
	// never match (see skipReason): names starting with _ (_schemas,
	// __consumer_offsets, _tributary-*), the offsets topic, schema history
	// topics, dead-letter topics; they are logged as skipped at start.
	TopicsRegex string `yaml:"topics_regex" desc:"Go (RE2) regular expression matched against whole topic names, e.g. shop\\..*. The pipeline's own topics that carry no change events never match, and are logged as skipped: names starting with _ (_schemas, _tributary-*), the offsets topic (log.offsets_topic, tributary-offsets), schema history topics (<topic_prefix>.schema-history or the configured schema_history_topic), dead-letter topics (<sink>.dlq or the configured one), Debezium's schema change, transaction and signal topics of each source's prefix (<prefix>, <prefix>.transaction, <prefix>-signal) and Kafka Connect's connect-offsets/-configs/-status."`
	// Start is where a partition with no stored offset begins: "earliest"
	// (default) or "latest". It applies to partitions that exist when the
	// sink first starts; partitions created later always start at their
	// beginning, so nothing written after the sink started is skipped. The
	// "latest" positions are stored at once, so a restart never skips
	// records written while the sink was down.
	Start string `yaml:"start" default:"earliest" enum:"earliest,latest" desc:"Where partitions begin on the sink's very first start (no offsets stored in the target): earliest (backfill from the compacted topics) or latest. Later starts always resume from the stored offsets, and partitions that appear later start at their beginning."`
	// BatchSize is the most records applied in one target transaction.
	BatchSize int `yaml:"batch_size" default:"5000" desc:"Most records applied in one target transaction (with their offsets)."`
	// FlushInterval is the longest a consumed record waits before its batch
	// is applied.
	FlushInterval time.Duration `yaml:"flush_interval" default:"50ms" desc:"Longest time a consumed record waits before its batch is applied."`
	// MaxPollRecords caps the records taken from the client per poll.
	MaxPollRecords int `yaml:"max_poll_records" default:"5000" desc:"Most records taken from the Kafka client per poll."`
	// FetchMaxBytes caps what the Kafka client buffers per fetch; together
	// with BatchSize it bounds the sink's memory.
	FetchMaxBytes int32 `yaml:"fetch_max_bytes" default:"4194304" desc:"Bytes the Kafka client fetches and buffers at most per fetch request; with batch_size it bounds the sink's memory."`
	// InsertMode is "upsert" (default): c, r and u replace the row by key;
	// or "insert": they are plain INSERTs and a duplicate key is a rejected
	// record.
	InsertMode string `yaml:"insert.mode" default:"upsert" enum:"upsert,insert" desc:"upsert: c, r and u events insert or replace the row by primary key. insert: they are plain INSERTs, and a duplicate key is a rejected record."`
	// TableNameFormat builds the target table name from placeholders
	// ${topic}, ${source.db}, ${source.schema} (the database for MySQL
	// events, which have no schema) and ${source.table}. A dot separates the
	// schema (PostgreSQL) or database (MySQL) from the table. Default: the
	// target's DefaultTableNameFormat.
	TableNameFormat string `yaml:"table_name_format" desc:"Target table name built from ${topic}, ${source.db}, ${source.schema} (the database for MySQL events) and ${source.table}; a dot separates schema (PostgreSQL) or database (MySQL) from table. Default: ${source.schema}.${source.table} for postgres and mysql, ${source.schema}_${source.table} for sqlite."`
	// FieldsInclude / FieldsExclude list columns to keep / drop, each
	// "column" (any table) or "<topic>:column". Key columns are always kept.
	FieldsInclude []string `yaml:"fields.include" desc:"Columns to copy, each column or <topic>:column; key columns are always copied. Default: all."`
	FieldsExclude []string `yaml:"fields.exclude" desc:"Columns not to copy, each column or <topic>:column; key columns cannot be excluded."`
	// ErrorsTolerance is "none" (default: a record the target rejects stops
	// the sink with an error naming it) or "all" (it goes to the dead-letter
	// topic with __connect.errors.* headers and the sink goes on).
	ErrorsTolerance string `yaml:"errors.tolerance" default:"none" enum:"none,all" desc:"none: a record the target rejects (or that cannot be decoded) stops the sink with an error naming topic, partition, offset, key and cause. all: it goes to the dead-letter topic with Kafka Connect __connect.errors.* headers and the sink goes on."`
	// DLQTopic overrides the dead-letter topic name "<name>.dlq".
	DLQTopic string `yaml:"errors.deadletterqueue.topic.name" desc:"Dead-letter topic. Default <name>.dlq."`
	// TopicRefreshInterval is how often new topics and partitions are looked
	// for.
	TopicRefreshInterval time.Duration `yaml:"topic_refresh_interval" default:"10s" desc:"How often new topics and partitions are looked for. Topics created by a source of the same worker are picked up at once."`
	// InternalTopics names the pipeline's own topics that never carry
	// change events (topic -> why), as the worker knows them from its
	// config: the offsets topic, each source's schema history topic, each
	// sink's dead-letter topic. A topics_regex never selects them, nor the
	// fixed names of sink/topics.go. Not a YAML key.
	InternalTopics map[string]string `yaml:"-"`
	// ShutdownTimeout bounds the final flush when the sink is stopped.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" default:"30s" desc:"Bound on applying the last consumed records when the sink stops."`
}

// Defaults of Spec.
const (
	DefaultBatchSize            = 5000
	DefaultFlushInterval        = 50 * time.Millisecond
	DefaultFetchMaxBytes        = 4 << 20
	DefaultTopicRefreshInterval = 10 * time.Second
	DefaultShutdownTimeout      = 30 * time.Second
)

// DefaultSpec returns a Spec with every default filled in.
func DefaultSpec() Spec {
	return Spec{
		Start:                "earliest",
		BatchSize:            DefaultBatchSize,
		FlushInterval:        DefaultFlushInterval,
		MaxPollRecords:       DefaultBatchSize,
		FetchMaxBytes:        DefaultFetchMaxBytes,
		InsertMode:           "upsert",
		ErrorsTolerance:      "none",
		TopicRefreshInterval: DefaultTopicRefreshInterval,
		ShutdownTimeout:      DefaultShutdownTimeout,
	}
}

// SpecKeys lists the YAML keys of Spec.
func SpecKeys() []string {
	t := reflect.TypeOf(Spec{})
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// withDefaults fills zero values, so a Spec built in code works too.
func (s Spec) withDefaults() Spec {
	d := DefaultSpec()
	if s.Start == "" {
		s.Start = d.Start
	}
	if s.BatchSize <= 0 {
		s.BatchSize = d.BatchSize
	}
	if s.FlushInterval <= 0 {
		s.FlushInterval = d.FlushInterval
	}
	if s.MaxPollRecords <= 0 {
		s.MaxPollRecords = s.BatchSize
	}
	if s.FetchMaxBytes <= 0 {
		s.FetchMaxBytes = d.FetchMaxBytes
	}
	if s.InsertMode == "" {
		s.InsertMode = d.InsertMode
	}
	if s.ErrorsTolerance == "" {
		s.ErrorsTolerance = d.ErrorsTolerance
	}
	if s.DLQTopic == "" {
		s.DLQTopic = s.Name + ".dlq"
	}
	if s.TopicRefreshInterval <= 0 {
		s.TopicRefreshInterval = d.TopicRefreshInterval
	}
	if s.ShutdownTimeout <= 0 {
		s.ShutdownTimeout = d.ShutdownTimeout
	}
	return s
}

var placeholderRe = regexp.MustCompile(`\$\{([^}]*)\}`)

// Validate checks the spec; errors are *FieldError joined.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Name == "" {
		bad("name", "is required")
	} else if strings.ContainsAny(s.Name, " \t\n/") {
		bad("name", "%q must not contain spaces or slashes", s.Name)
	}
	switch {
	case len(s.Topics) == 0 && s.TopicsRegex == "":
		bad("topics", "give topics (a list) or topics_regex")
	case len(s.Topics) > 0 && s.TopicsRegex != "":
		bad("topics_regex", "give either topics or topics_regex, not both")
	}
	for i, t := range s.Topics {
		if strings.TrimSpace(t) == "" {
			bad(fmt.Sprintf("topics[%d]", i), "is empty")
		}
	}
	if s.TopicsRegex != "" {
		if _, err := regexp.Compile(s.TopicsRegex); err != nil {
			bad("topics_regex", "invalid regular expression: %v", err)
		}
	}
	switch s.Start {
	case "", "earliest", "latest":
	default:
		bad("start", "%q: want earliest or latest", s.Start)
	}
	if s.BatchSize < 0 {
		bad("batch_size", "must be positive")
	}
	if s.FlushInterval < 0 {
		bad("flush_interval", "must be positive")
	}
	if s.MaxPollRecords < 0 {
		bad("max_poll_records", "must be positive")
	}
	if s.FetchMaxBytes < 0 {
		bad("fetch_max_bytes", "must be positive")
	}
	switch s.InsertMode {
	case "", "upsert", "insert":
	default:
		bad("insert.mode", "%q: want upsert or insert", s.InsertMode)
	}
	switch s.ErrorsTolerance {
	case "", "none", "all":
	default:
		bad("errors.tolerance", "%q: want none or all", s.ErrorsTolerance)
	}
	if s.TableNameFormat != "" {
		for _, m := range placeholderRe.FindAllStringSubmatch(s.TableNameFormat, -1) {
			switch m[1] {
			case "topic", "source.db", "source.schema", "source.table":
			default:
				bad("table_name_format", "unknown placeholder ${%s}: want ${topic}, ${source.db}, ${source.schema} or ${source.table}", m[1])
			}
		}
	}
	if len(s.FieldsInclude) > 0 && len(s.FieldsExclude) > 0 {
		bad("fields.exclude", "give either fields.include or fields.exclude, not both")
	}
	return errors.Join(errs...)
}

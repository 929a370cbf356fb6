// Package sink is the runtime every sink connector runs inside: it consumes
// Debezium-format topics, decodes the change events, batches them, and applies
// each batch to a target database in ONE transaction together with the
// consumed Kafka offsets (invariant 3 of DESIGN.md). On start it resumes from
// the offsets stored in the target, never from the Kafka consumer group, so a
// copy is always exactly "the log up to offset N" and replay is idempotent.
//
// A sink connector (connectors/sqlite, connectors/postgres, connectors/mysql)
// only implements Target and Tx: table creation and evolution, applying a
// reduced batch of changes for one table, and reading/writing its offsets row.
package sink

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// Driver opens sink targets of one type ("sqlite", "postgres", "mysql").
type Driver interface {
	// NewConfig returns a pointer to the target's typed config struct with
	// its defaults filled in; the config package decodes YAML into it.
	NewConfig() Config
	// Open builds a target without connecting; Target.Connect connects. name
	// is the sink's unique name (the key of its rows in tributary_offsets).
	Open(name string, cfg Config, log *slog.Logger) (Target, error)
}

// Config is a target's typed configuration.
type Config interface {
	// Validate checks values after decoding. It returns *FieldError (or an
	// errors.Join of them) so the YAML key and line can be reported.
	Validate() error
}

// FieldError names the config key (dotted path relative to the sink's
// config, as written in YAML) that is wrong. Same shape as source.FieldError;
// sink does not import source so the two runtimes stay independent.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Msg) }

// Target is one database a sink writes into.
//
// The runtime never calls a Target concurrently; it may call it from
// different goroutines in turn (batches apply in the background while the
// next one is decoded), with each call ordered after the previous one.
type Target interface {
	// Connect opens the connection and creates the offsets table if needed.
	// Errors name the database (never its password) and the cause.
	Connect(ctx context.Context) error
	// DefaultTableNameFormat is the table_name_format used when the config
	// gives none, e.g. "${source.schema}.${source.table}".
	DefaultTableNameFormat() string
	// EnsureTable creates the table from spec when it is missing (with its
	// primary key), adds columns that spec has and the table lacks, and makes
	// nullable every existing column spec marks Optional (a column dropped at
	// the source stays in the copy as nullable). It never drops or retypes a
	// column. It runs OUTSIDE the data transaction because MySQL commits
	// implicitly on DDL; it must therefore be idempotent.
	EnsureTable(ctx context.Context, spec *TableSpec) error
	// Begin starts the transaction that carries one batch and its offsets.
	Begin(ctx context.Context) (Tx, error)
	// Rejected reports whether err means the target refused the data of the
	// change(s) being applied (constraint violation, value out of range,
	// impossible conversion), as opposed to a failure of the connection or
	// the server. Only rejected changes may go to the dead-letter topic.
	Rejected(err error) bool
	Close() error
}

// Tx is one transaction of a Target.
type Tx interface {
	// Apply applies changes to one table, in order. The runtime guarantees
	// that within one call each key appears at most once and that a
	// Truncate, if any, is the first change: a target may therefore apply the
	// deletes and the upserts in any order it likes (e.g. grouped by
	// statement). Changes of a keyless table are only OpInsert and OpTruncate.
	// A truncate of a table that does not exist is a no-op (it may be the
	// only event of a table in a batch, so EnsureTable did not run for it).
	Apply(ctx context.Context, t *TableSpec, changes []Change) error
	// LoadOffsets returns the next offset to consume of every partition the
	// sink stored.
	LoadOffsets(ctx context.Context, sink string) (map[TopicPartition]int64, error)
	// StoreOffsets upserts the next offsets of the given partitions.
	StoreOffsets(ctx context.Context, sink string, next map[TopicPartition]int64) error
	// Savepoint, RollbackTo and Release isolate one change when a batch must
	// be retried change by change to find the record the target rejects.
	Savepoint(ctx context.Context, name string) error
	RollbackTo(ctx context.Context, name string) error
	Release(ctx context.Context, name string) error
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// MissingKeysTx is implemented by the Tx of targets that can tell which
// rows a table holds. The runtime asks it, before Apply, about the upserts
// that carry a placeholder for a value the source did not send (an
// unchanged TOASTed column, Change.Unavail) and that no earlier change of
// the batch could fill: such a value is known only to the copy's current
// row. A key the table lacks means the value is truly unknown (e.g. a sink
// started with start: latest); the runtime counts and logs it, never
// silently, and the upsert leaves the column out.
type MissingKeysTx interface {
	// MissingKeys returns the indexes, in keys, of the keys (values of
	// t.Key, in order) the table has no row for.
	MissingKeys(ctx context.Context, t *TableSpec, keys [][]any) ([]int, error)
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s[%d]", tp.Topic, tp.Partition) }

// OffsetsTable is the table, in every target, holding the next Kafka offset
// to consume for each (sink, topic, partition). It is written in the same
// transaction as the rows. Its columns are sink_name, topic,
// kafka_partition, next_offset and updated_at ("partition" is reserved in
// MySQL). One extra row per sink, topic "" and kafka_partition -1, marks
// that the sink has started once (so "start: latest" applies only to its
// first start); readers of real positions filter kafka_partition >= 0.
const OffsetsTable = "tributary_offsets"

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a driver available by name, the way database/sql drivers do.
// It panics on a duplicate name, which is a programming error.
func Register(name string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[name]; dup {
		panic("sink: Register called twice for driver " + name)
	}
	drivers[name] = d
}

// Lookup returns the driver registered under name.
func Lookup(name string) (Driver, bool) {
	driversMu.RLock()
	defer driversMu.RUnlock()
	d, ok := drivers[name]
	return d, ok
}

// Drivers lists registered driver names, sorted.
func Drivers() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

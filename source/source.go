// Package source is the runtime every source connector runs inside: it owns
// producing to the log, ordering acknowledgements, writing offset records and
// telling the connector when a position is durable so it may acknowledge it to
// its database (invariant 2 of DESIGN.md).
package source

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/tributary-cdc/tributary/schema"
)

// Connector captures changes from one database.
type Connector interface {
	// Run snapshots and/or streams until ctx is done or a fatal error occurs.
	// On ctx cancellation it must return after its last Checkpoint call, so the
	// runtime can flush and commit; it returns ctx.Err() or nil in that case.
	Run(ctx context.Context, rt Runtime) error
}

// Runtime is what the source runtime offers a running connector.
type Runtime interface {
	// Offset is the last committed Debezium-style offset of this connector,
	// or nil when none was ever committed.
	Offset() map[string]any
	// Codec returns an encoder for the table's current shape, registering
	// new key/value schema versions in the registry when the shape changed.
	// An incompatible change returns an error naming the subject.
	Codec(ctx context.Context, t *schema.Table, src *schema.SourceBlock) (*schema.Codec, error)
	// Emit queues one record for the log. It blocks while the in-flight
	// buffer is full (memory is bounded by config), and returns an error if
	// producing has failed.
	Emit(ctx context.Context, r Record) error
	// Checkpoint marks that every record emitted before this call is covered
	// by offset. Once all of them are acknowledged by the log and the offset
	// record itself is durable, durable is called (from another goroutine),
	// in checkpoint order. Later checkpoints may subsume earlier ones: durable
	// of an earlier checkpoint may be skipped when a later one is durable.
	Checkpoint(ctx context.Context, offset map[string]any, durable func()) error
	// Flush waits until every record emitted so far is acknowledged, the
	// latest checkpoint's offset record is durable and its durable callback
	// has run. Connectors call it on shutdown before acknowledging their
	// final position to the database (e.g. the last standby status update).
	Flush(ctx context.Context) error
	// Metrics reports progress for /metrics and logs.
	Metrics() *Metrics
	Logger() *slog.Logger
}

// Record is one Kafka record. Value nil is a tombstone.
type Record struct {
	Topic string
	Key   []byte
	Value []byte
}

// Driver opens connectors of one type ("postgres", "mysql").
type Driver interface {
	// NewConfig returns a pointer to the connector's typed config struct with
	// its defaults filled in; the config package decodes YAML into it.
	NewConfig() Config
	// Open builds a connector. name is the connector's unique name, used in
	// offset keys and the Debezium source.name field.
	Open(name string, cfg Config, log *slog.Logger) (Connector, error)
}

// Config is a connector's typed configuration.
type Config interface {
	// Validate checks values after decoding. It returns *FieldError (or a
	// errors.Join of them) so the YAML key and line can be reported.
	Validate() error
	// TopicPrefix is the Debezium topic.prefix / offset-key "server".
	TopicPrefix() string
}

// FieldError names the config key (dotted path relative to the connector's
// config, as written in YAML) that is wrong.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Msg) }

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
		panic("source: Register called twice for driver " + name)
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

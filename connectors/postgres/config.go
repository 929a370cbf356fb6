package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-cdc/tributary/source"
)

// Snapshot modes (Debezium's snapshot.mode names).
const (
	SnapshotInitial     = "initial"
	SnapshotNever       = "never"
	SnapshotInitialOnly = "initial_only"
	SnapshotWhenNeeded  = "when_needed"
)

// Config is the `type: postgres` source configuration.
type Config struct {
	URL                 string              `yaml:"url" required:"true" desc:"PostgreSQL connection URL (postgres://user:password@host:port/db?sslmode=...). Put the password in an environment variable: postgres://app:${PGPASSWORD}@db:5432/app. The user needs the REPLICATION attribute (or superuser) and SELECT on the tables."`
	Tables              []string            `yaml:"tables" required:"true" desc:"Tables to capture: \"schema.table\" or \"table\" (schema public), or patterns where * matches any run of characters and ? one character, e.g. \"public.order_*\" or \"sales.*\". A plain name that does not exist, or a pattern that matches nothing, is an error. A table added here later is snapshotted incrementally while streaming goes on; a table removed is no longer captured (its topic is kept)."`
	TopicPrefixValue    string              `yaml:"topic_prefix" required:"true" desc:"Debezium topic.prefix: events of schema.table go to <topic_prefix>.<schema>.<table>. Also the offset key's server and the events' source.name."`
	Slot                string              `yaml:"slot" desc:"Logical replication slot name (letters, digits, underscore). Default tributary_<connector name>. It is kept when the connector stops so a restart resumes; drop it with pg_drop_replication_slot() when you remove the connector, or WAL piles up."`
	Publication         string              `yaml:"publication" desc:"Publication name. Default tributary_<connector name>. Created FOR TABLE the resolved tables if missing; if it exists with another table set it is altered to match (logged)."`
	Snapshot            string              `yaml:"snapshot" default:"initial" enum:"initial,never,initial_only,when_needed" desc:"initial: snapshot the tables when no offset was ever committed, then stream. never: only stream changes. initial_only: snapshot, then stop without streaming (the slot is temporary). when_needed: like initial, and snapshot again when the slot is gone or invalid."`
	SnapshotChunkRows   int                 `yaml:"snapshot_chunk_rows" default:"20000" desc:"Rows read per snapshot query of a table with a primary key (keyset pagination in key order). Bounds the work a retried query repeats and a snapshot resumed after a crash reads again. An incremental snapshot (added table, tributary snapshot, the rest of an interrupted initial snapshot) holds one chunk in memory between its watermarks."`
	SnapshotParallelism int                 `yaml:"snapshot_parallelism" default:"2" desc:"Tables snapshotted at the same time, each on its own connection sharing the exported snapshot."`
	KeyColumns          map[string][]string `yaml:"key_columns" desc:"Message key columns for tables without a primary key, as table -> [columns] (table written like in tables). Tables with neither get a null key, and cannot be snapshotted incrementally (chunks are read and matched in key order)."`
	HeartbeatInterval   time.Duration       `yaml:"heartbeat_interval" default:"10s" desc:"When no change became durable for this long while the server's WAL moved, write a pg_logical_emit_message heartbeat so the slot advances on idle tables. 0 disables."`
	StatusInterval      time.Duration       `yaml:"status_interval" default:"1s" desc:"How often the acknowledged (durable) position is reported to the server."`
	SignalKafkaTopic    string              `yaml:"signal_kafka_topic" desc:"Debezium's signal.kafka.topic: a topic (created if missing) read for Debezium execute-snapshot and stop-snapshot signals, records keyed by topic_prefix with a JSON value {\"type\": \"execute-snapshot\", \"data\": {\"data-collections\": [\"schema.table\"], \"type\": \"incremental\", \"additional-conditions\": [{\"data-collection\": \"schema.table\", \"filter\": \"SQL condition\"}]}}. The tables are read again incrementally, as with tributary snapshot. Empty: no signal topic."`
	ReplicaIdentityWarn bool                `yaml:"replica_identity_warn" default:"true" desc:"Log a warning at start for captured tables whose REPLICA IDENTITY limits the events: no key (updates and deletes fail on the server once published) or DEFAULT with TOAST-able columns (unchanged large values arrive as __debezium_unavailable_value)."`
}

// NewConfig returns a Config with the defaults of the struct tags.
func NewConfig() *Config {
	return &Config{
		Snapshot:            SnapshotInitial,
		SnapshotChunkRows:   20000,
		SnapshotParallelism: 2,
		HeartbeatInterval:   10 * time.Second,
		StatusInterval:      time.Second,
		ReplicaIdentityWarn: true,
	}
}

// SignalTopic implements source.SignalTopicConfig.
func (c *Config) SignalTopic() string { return c.SignalKafkaTopic }

// TopicPrefix implements source.Config.
func (c *Config) TopicPrefix() string { return c.TopicPrefixValue }

var (
	identRe       = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	topicPrefixRe = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
)

// Validate implements source.Config. Errors name the YAML key.
func (c *Config) Validate() error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, &source.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.URL) == "" {
		fail("url", "is required")
	} else if _, err := pgx.ParseConfig(c.URL); err != nil {
		fail("url", "is not a valid PostgreSQL URL: %s", redact(err.Error(), c.URL))
	}
	if len(c.Tables) == 0 {
		fail("tables", "needs at least one table name or pattern")
	}
	for i, t := range c.Tables {
		if _, err := parseTablePattern(t); err != nil {
			fail(fmt.Sprintf("tables[%d]", i), "%v", err)
		}
	}
	switch {
	case c.TopicPrefixValue == "":
		fail("topic_prefix", "is required")
	case !topicPrefixRe.MatchString(c.TopicPrefixValue):
		fail("topic_prefix", "%q may only contain letters, digits, '.', '_' and '-' (it starts Kafka topic names)", c.TopicPrefixValue)
	}
	if c.Slot != "" && !identRe.MatchString(c.Slot) {
		fail("slot", "%q is not a valid replication slot name: use 1 to 63 lower-case letters, digits and underscores", c.Slot)
	}
	if c.Publication != "" && !identRe.MatchString(c.Publication) {
		fail("publication", "%q is not a valid publication name: use 1 to 63 lower-case letters, digits and underscores", c.Publication)
	}
	switch c.Snapshot {
	case SnapshotInitial, SnapshotNever, SnapshotInitialOnly, SnapshotWhenNeeded:
	default:
		fail("snapshot", "%q is not one of initial, never, initial_only, when_needed", c.Snapshot)
	}
	if c.SnapshotChunkRows < 1 {
		fail("snapshot_chunk_rows", "must be at least 1, got %d", c.SnapshotChunkRows)
	}
	if c.SnapshotParallelism < 1 || c.SnapshotParallelism > 64 {
		fail("snapshot_parallelism", "must be between 1 and 64, got %d", c.SnapshotParallelism)
	}
	keys := make([]string, 0, len(c.KeyColumns))
	for k := range c.KeyColumns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, err := parseTablePattern(k)
		if err != nil {
			fail("key_columns."+k, "%v", err)
			continue
		}
		if p.isPattern() {
			fail("key_columns."+k, "must name one table, not a pattern")
		}
		cols := c.KeyColumns[k]
		if len(cols) == 0 {
			fail("key_columns."+k, "needs at least one column")
		}
		seen := map[string]bool{}
		for _, col := range cols {
			if col == "" {
				fail("key_columns."+k, "has an empty column name")
			} else if seen[col] {
				fail("key_columns."+k, "lists column %q twice", col)
			}
			seen[col] = true
		}
	}
	if c.HeartbeatInterval < 0 {
		fail("heartbeat_interval", "must not be negative")
	}
	if c.StatusInterval <= 0 {
		fail("status_interval", "must be positive")
	}
	return errors.Join(errs...)
}

// resolved holds the defaults that depend on the connector name.
func (c *Config) slotName(connector string) string {
	if c.Slot != "" {
		return c.Slot
	}
	return defaultObjectName(connector)
}

func (c *Config) publicationName(connector string) string {
	if c.Publication != "" {
		return c.Publication
	}
	return defaultObjectName(connector)
}

// defaultObjectName turns a connector name into a valid slot/publication name:
// slot names allow only lower-case letters, digits and underscores.
func defaultObjectName(connector string) string {
	var b strings.Builder
	b.WriteString("tributary_")
	for _, r := range strings.ToLower(connector) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// keyColumnsFor returns the configured key columns of schema.table, if any.
func (c *Config) keyColumnsFor(schemaName, table string) []string {
	for k, cols := range c.KeyColumns {
		p, err := parseTablePattern(k)
		if err != nil || p.isPattern() {
			continue
		}
		if p.schema == schemaName && p.table == table {
			return cols
		}
	}
	return nil
}

// redact removes the password of url from s, so errors that echo a
// connection string never leak it.
func redact(s, url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err == nil && cfg.Password != "" {
		s = strings.ReplaceAll(s, cfg.Password, "xxxxx")
	}
	if i := strings.Index(url, "://"); i >= 0 {
		rest := url[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				pw := rest[colon+1 : at]
				if pw != "" {
					s = strings.ReplaceAll(s, pw, "xxxxx")
				}
			}
		}
	}
	return s
}

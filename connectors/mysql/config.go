package mysql

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tributary-cdc/tributary/source"
)

// Snapshot modes (Debezium's snapshot.mode names).
const (
	SnapshotInitial     = "initial"
	SnapshotNever       = "never"
	SnapshotInitialOnly = "initial_only"
	SnapshotWhenNeeded  = "when_needed"
)

// Config is the `type: mysql` source configuration (MySQL 8 and MariaDB).
type Config struct {
	URL      string `yaml:"url" desc:"Server URL mysql://user:password@host:port (mariadb:// is accepted too, as is the go-sql-driver form user:password@tcp(host:port)/). Put the password in an environment variable: mysql://cdc:${MYSQL_PASSWORD}@db:3306. Either url or host/user is required."`
	Host     string `yaml:"host" desc:"Server host, when url is not used."`
	Port     int    `yaml:"port" default:"3306" desc:"Server port, when url is not used."`
	User     string `yaml:"user" desc:"User, when url is not used. It needs REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: BINLOG MONITOR) and SELECT on the tables; RELOAD for snapshot_parallelism > 1 on a busy server and for every snapshot on MySQL."`
	Password string `yaml:"password" desc:"Password, when url is not used (never logged)."`
	// ServerID is the replica id this connector registers with; 0 derives one.
	ServerID uint32   `yaml:"server_id" desc:"Replica server_id, unique among all replicas and connectors of the server. Default: derived from the connector name (stable across restarts) in 1073741824..2147483646."`
	Tables   []string `yaml:"tables" required:"true" desc:"Tables to capture as \"database.table\"; * matches any run of characters and ? one character, e.g. \"shop.order_*\" or \"shop.*\". A plain name that does not exist is an error."`
	// TopicPrefixValue is Debezium's topic.prefix.
	TopicPrefixValue    string              `yaml:"topic_prefix" required:"true" desc:"Debezium topic.prefix: events of database.table go to <topic_prefix>.<database>.<table>. Also the offset key's server."`
	Snapshot            string              `yaml:"snapshot" default:"initial" enum:"initial,never,initial_only,when_needed" desc:"initial: snapshot when no offset was ever committed, then stream. never: record the current table schemas and stream from the current position, no rows. initial_only: snapshot, then stop. when_needed: like initial, and snapshot again when the saved binlog position is no longer on the server (purged) or the schema history cannot be rebuilt."`
	SnapshotChunkRows   int                 `yaml:"snapshot_chunk_rows" default:"10000" desc:"Rows read per snapshot query of a table with a primary key (keyset pagination in key order)."`
	SnapshotParallelism int                 `yaml:"snapshot_parallelism" default:"1" desc:"Tables read at the same time. Above 1 every reader must see the same snapshot: the readers start their consistent snapshots together and the connector checks they report the same binlog position; on a busy server that needs a brief FLUSH TABLES WITH READ LOCK (RELOAD privilege), without which it falls back to one reader."`
	SchemaHistoryTopic  string              `yaml:"schema_history_topic" desc:"Topic keeping every DDL with its binlog position, needed to decode the binlog after a restart. Default <topic_prefix>.schema-history. One partition, never deleted (records are keyed uniquely, so compaction keeps them all)."`
	KeyColumns          map[string][]string `yaml:"key_columns" desc:"Message key columns for tables without a primary key, as \"database.table\" -> [columns]. Tables with neither get a null key."`
	HeartbeatSeconds    int                 `yaml:"heartbeat_seconds" default:"10" desc:"Server heartbeat period on the replication connection, so a dead connection is noticed on an idle server."`
}

// NewConfig returns a Config with the defaults of the struct tags.
func NewConfig() *Config {
	return &Config{
		Port:                3306,
		Snapshot:            SnapshotInitial,
		SnapshotChunkRows:   10000,
		SnapshotParallelism: 1,
		HeartbeatSeconds:    10,
	}
}

// TopicPrefix implements source.Config.
func (c *Config) TopicPrefix() string { return c.TopicPrefixValue }

var topicPrefixRe = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Validate implements source.Config. Errors name the YAML key.
func (c *Config) Validate() error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, &source.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case strings.TrimSpace(c.URL) != "":
		if c.Host != "" || c.User != "" || c.Password != "" {
			fail("url", "set either url or host/user/password, not both")
		}
		if _, err := c.endpoint(); err != nil {
			fail("url", "%v", err)
		}
	case c.Host == "":
		fail("url", "is required (or set host and user)")
	default:
		if c.User == "" {
			fail("user", "is required with host")
		}
		if c.Port < 1 || c.Port > 65535 {
			fail("port", "must be between 1 and 65535, got %d", c.Port)
		}
	}
	if len(c.Tables) == 0 {
		fail("tables", "needs at least one \"database.table\" name or pattern")
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
	if c.SchemaHistoryTopic != "" && !topicPrefixRe.MatchString(c.SchemaHistoryTopic) {
		fail("schema_history_topic", "%q is not a valid topic name: use letters, digits, '.', '_' and '-'", c.SchemaHistoryTopic)
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
	if c.HeartbeatSeconds < 0 || c.HeartbeatSeconds > 4294967 {
		fail("heartbeat_seconds", "must be between 0 and 4294967, got %d", c.HeartbeatSeconds)
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
			lc := strings.ToLower(col)
			if col == "" {
				fail("key_columns."+k, "has an empty column name")
			} else if seen[lc] {
				fail("key_columns."+k, "lists column %q twice", col)
			}
			seen[lc] = true
		}
	}
	return errors.Join(errs...)
}

// endpoint is where and as whom to connect.
type endpoint struct {
	Host     string
	Port     uint16
	User     string
	Password string
}

func (e endpoint) addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))) }

// dsnRe is the go-sql-driver DSN form user:password@tcp(host:port)/db.
var dsnRe = regexp.MustCompile(`^([^:@/]*)(?::(.*))?@tcp\(([^)]*)\)/?[^/]*$`)

// endpoint resolves url or host/port/user/password.
func (c *Config) endpoint() (endpoint, error) {
	if strings.TrimSpace(c.URL) == "" {
		return endpoint{Host: c.Host, Port: uint16(c.Port), User: c.User, Password: c.Password}, nil
	}
	raw := strings.TrimSpace(c.URL)
	if m := dsnRe.FindStringSubmatch(raw); m != nil && !strings.Contains(raw, "://") {
		host, port, err := splitHostPort(m[3])
		if err != nil {
			return endpoint{}, fmt.Errorf("is not a valid DSN: %v", err)
		}
		return endpoint{Host: host, Port: port, User: m[1], Password: m[2]}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("is not a valid URL: %s", redactURL(err.Error(), raw))
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return endpoint{}, fmt.Errorf("scheme %q is not mysql:// or mariadb://", u.Scheme)
	}
	if u.Hostname() == "" {
		return endpoint{}, errors.New("has no host")
	}
	if u.User == nil || u.User.Username() == "" {
		return endpoint{}, errors.New("has no user (mysql://user:password@host:port)")
	}
	e := endpoint{Host: u.Hostname(), Port: 3306, User: u.User.Username()}
	e.Password, _ = u.User.Password()
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return endpoint{}, fmt.Errorf("port %q is not a number between 1 and 65535", p)
		}
		e.Port = uint16(n)
	}
	return e, nil
}

func splitHostPort(hp string) (string, uint16, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 3306, nil //nolint:nilerr // a bare host means the default port
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("port %q is not a number between 1 and 65535", p)
	}
	return host, uint16(n), nil
}

// redactURL removes the password of raw from s.
func redactURL(s, raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		raw = raw[i+3:]
	}
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		if colon := strings.Index(raw[:at], ":"); colon >= 0 && colon+1 < at {
			s = strings.ReplaceAll(s, raw[colon+1:at], "xxxxx")
		}
	}
	return s
}

// serverID is the configured id or one derived from the connector name. The
// derived range stays clear of the small ids people give real servers.
func (c *Config) serverID(connector string) uint32 {
	if c.ServerID != 0 {
		return c.ServerID
	}
	h := fnv.New32a()
	h.Write([]byte(connector))
	return 1<<30 + h.Sum32()%(1<<30-1)
}

func (c *Config) historyTopic() string {
	if c.SchemaHistoryTopic != "" {
		return c.SchemaHistoryTopic
	}
	return c.TopicPrefixValue + ".schema-history"
}

// keyColumnsFor returns the configured key columns of db.table, if any.
func (c *Config) keyColumnsFor(db, table string) []string {
	for k, cols := range c.KeyColumns {
		p, err := parseTablePattern(k)
		if err != nil || p.isPattern() {
			continue
		}
		if p.db == db && p.table == table {
			return cols
		}
	}
	return nil
}

// tablePattern is one entry of tables: database and table parts, each a
// glob (* and ?). Names are compared exactly, as MySQL does on Linux.
type tablePattern struct {
	raw       string
	db, table string
}

func parseTablePattern(s string) (tablePattern, error) {
	s = strings.TrimSpace(s)
	db, table, ok := strings.Cut(s, ".")
	if !ok || db == "" || table == "" || strings.Contains(table, ".") {
		return tablePattern{}, fmt.Errorf("%q is not \"database.table\" (patterns may use * and ?)", s)
	}
	db, table = strings.Trim(db, "`"), strings.Trim(table, "`")
	for _, part := range []string{db, table} {
		if _, err := path.Match(part, ""); err != nil {
			return tablePattern{}, fmt.Errorf("%q is not a valid pattern: %v", s, err)
		}
	}
	return tablePattern{raw: s, db: db, table: table}, nil
}

func (p tablePattern) isPattern() bool { return strings.ContainsAny(p.raw, "*?[") }

func (p tablePattern) matches(db, table string) bool {
	okDB, _ := path.Match(p.db, db)
	okT, _ := path.Match(p.table, table)
	return okDB && okT
}

func (p tablePattern) matchesDB(db string) bool {
	ok, _ := path.Match(p.db, db)
	return ok
}

// filter decides which tables are captured and which databases are tracked
// (every table of a tracked database has its schema kept, because a RENAME
// can turn any of them into a captured one).
type filter struct{ patterns []tablePattern }

func newFilter(tables []string) (filter, error) {
	var f filter
	for _, t := range tables {
		p, err := parseTablePattern(t)
		if err != nil {
			return f, err
		}
		f.patterns = append(f.patterns, p)
	}
	return f, nil
}

func (f filter) captured(db, table string) bool {
	for _, p := range f.patterns {
		if p.matches(db, table) {
			return true
		}
	}
	return false
}

func (f filter) trackedDB(db string) bool {
	for _, p := range f.patterns {
		if p.matchesDB(db) {
			return true
		}
	}
	return false
}

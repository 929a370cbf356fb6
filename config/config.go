// Package config loads a tributary pipeline file: YAML with ${VAR},
// ${VAR:-default} and ${file:PATH} interpolation, typed sections with
// defaults, unknown keys rejected everywhere, and every error naming the file,
// line, column and key path ("pipeline.yaml:12:5: sources[0].slot: ...").
//
// Connector-specific keys are left as raw YAML in a Connector; the connector's
// driver supplies a typed struct and Connector.Decode fills it with the same
// rules. This package never imports connectors.
//
// Struct tags read on config fields (top-level sections and connector
// configs alike):
//
//	yaml:"key"        the key; "-" skips the field; ",inline" flattens an embedded struct
//	default:"value"   used when the key is absent or null, written like a YAML value
//	                  ("10s", "64MiB", "a,b" for a list of strings)
//	required:"true"   the key must be present and not null
//	enum:"a,b,c"      allowed values of a string field
//	desc:"text"       documentation, for Docs and DocsFor
//
// Field types: string, bool, integers, floats, time.Duration, Duration,
// ByteSize, Secret, any encoding.TextUnmarshaler, pointers (nil when the key
// is absent), slices, maps with string keys, nested structs and any.
// After a struct is decoded without error its Validate() error method, if
// any, runs; *source.FieldError values it returns (alone, wrapped or
// errors.Join-ed) are reported at the line of the key they name.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Pipeline is one pipeline file.
type Pipeline struct {
	// File is the name the pipeline was loaded from, as given.
	File     string       `yaml:"-"`
	Log      Log          `yaml:"log" desc:"Where the log lives. Without brokers tributary runs an embedded Kafka-protocol broker (embedded mode); with brokers it uses that cluster (cluster mode), and the embedded-mode keys (data_dir, listen, compaction_interval, sync_writes) are refused."`
	Registry Registry     `yaml:"registry" desc:"The Confluent-compatible schema registry. Without url tributary serves an embedded registry, persisted in the log's _schemas topic."`
	Worker   Worker       `yaml:"worker" desc:"This worker process: its name, HTTP endpoints, memory bound and logging."`
	Sources  []*Connector `yaml:"sources" desc:"Source connectors: each captures changes from one database into the log."`
	Sinks    []*Connector `yaml:"sinks" desc:"Sink connectors: each applies topics of the log to one target database."`
}

// Log configures the log (Kafka protocol), embedded or external.
type Log struct {
	Brokers            []string      `yaml:"brokers" desc:"Bootstrap brokers (host:port) of a Kafka cluster. Absent: embedded mode. A comma-separated string is accepted too, e.g. from ${KAFKA_BROKERS}."`
	DataDir            string        `yaml:"data_dir" default:"./data/log" desc:"Embedded mode: folder that persists the log. tributary locks it, so one worker uses it at a time."`
	Listen             string        `yaml:"listen" default:"127.0.0.1:9092" desc:"Embedded mode: loopback host:port where the broker serves Kafka clients such as kcat."`
	Partitions         int           `yaml:"partitions" default:"1" desc:"Partition count of topics tributary creates."`
	ReplicationFactor  int           `yaml:"replication_factor" default:"-1" desc:"Replication factor of topics tributary creates; -1 uses the broker's default."`
	CompactionInterval time.Duration `yaml:"compaction_interval" default:"10m" desc:"Embedded mode: how often the cleaner looks at compacted topics. A partition is cleaned when at least half of it is new since the last pass (Kafka's min.cleanable.dirty.ratio); a pass reads the whole partition with a 16 MiB dedupe map and rewrites only segments that lose records."`
	SyncWrites         bool          `yaml:"sync_writes" default:"true" desc:"Embedded mode: fsync every batch before acknowledging it, so an acknowledged event survives power loss."`
	OffsetsTopic       string        `yaml:"offsets_topic" default:"tributary-offsets" desc:"Compacted topic holding source offsets (Kafka Connect key format)."`
	Compression        string        `yaml:"compression" default:"snappy" enum:"zstd,lz4,snappy,gzip,none" desc:"Compression of produced batches. snappy costs the least CPU per event (a third of zstd's in the snapshot benchmark, where compression was the largest single cost); zstd stores about half the bytes of snappy for that CPU."`
	MaxRecordBytes     ByteSize      `yaml:"max_record_bytes" default:"1MiB" desc:"Largest record (key plus value, before compression) a source may produce, up to 256MiB. The producer's batch limit and the embedded broker's message.max.bytes follow it; on a Kafka cluster each topic's max.message.bytes must be at least this (checked before the first record to it, and set on topics tributary creates). A larger record stops the source with an error naming table, key, column and size; raise the limit and restart."`
	ClientID           string        `yaml:"client_id" default:"tributary" desc:"Kafka client id, as seen in broker logs and quotas."`
	TLS                *TLS          `yaml:"tls" desc:"Cluster mode: connect to brokers over TLS. Present (even as {}) means enabled."`
	SASL               *SASL         `yaml:"sasl" desc:"Cluster mode: SASL authentication."`
}

// Embedded reports whether tributary runs the log in-process.
func (l *Log) Embedded() bool { return len(l.Brokers) == 0 }

// TLS is a client TLS setup; system roots are used when CAFile is empty.
type TLS struct {
	CAFile             string `yaml:"ca_file" desc:"PEM file of the CA certificates to trust instead of the system roots."`
	CertFile           string `yaml:"cert_file" desc:"PEM client certificate, for mutual TLS (needs key_file)."`
	KeyFile            string `yaml:"key_file" desc:"PEM private key of cert_file."`
	ServerName         string `yaml:"server_name" desc:"Host name to verify instead of the one dialed."`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" desc:"Skip certificate verification. For tests only."`
}

// SASL holds broker credentials.
type SASL struct {
	Mechanism string `yaml:"mechanism" required:"true" enum:"plain,scram-sha-256,scram-sha-512" desc:"SASL mechanism."`
	User      string `yaml:"user" required:"true" desc:"SASL user name."`
	Password  Secret `yaml:"password" required:"true" desc:"SASL password; use ${VAR} or ${file:PATH} rather than writing it here."`
}

// Registry configures the schema registry, embedded or external.
type Registry struct {
	URL       string     `yaml:"url" desc:"URL of a Confluent-compatible registry (Confluent, Karapace, Apicurio ccompat, Redpanda). Absent: embedded registry."`
	Listen    string     `yaml:"listen" default:"127.0.0.1:8081" desc:"Embedded registry: host:port of its HTTP API."`
	BasicAuth *BasicAuth `yaml:"basic_auth" desc:"HTTP basic authentication for url."`
	TLS       *TLS       `yaml:"tls" desc:"TLS settings for an https url, when the system roots are not enough."`
}

// Embedded reports whether tributary serves the registry itself.
func (r *Registry) Embedded() bool { return r.URL == "" }

// BasicAuth is an HTTP user and password.
type BasicAuth struct {
	User     string `yaml:"user" required:"true" desc:"User name."`
	Password Secret `yaml:"password" desc:"Password; use ${VAR} or ${file:PATH}."`
}

// Worker configures this process.
type Worker struct {
	Name                string        `yaml:"name" default:"tributary" desc:"Worker name, shown in logs and metrics."`
	Group               string        `yaml:"group" desc:"Cluster mode: workers started with the same group (and the same file) share its connectors through Kafka's consumer-group protocol: each source and each sink runs on exactly one worker at a time and moves to another when that worker stops or dies (after group_session_timeout). Unset: this worker runs every connector of its file. Not allowed with the embedded log."`
	GroupSessionTimeout time.Duration `yaml:"group_session_timeout" default:"10s" desc:"Cluster mode with group: how long a silent worker keeps its connectors before the group hands them to another worker. The broker bounds it (group.min.session.timeout.ms, 6s by default)."`
	HTTP                string        `yaml:"http" default:"127.0.0.1:8083" desc:"host:port serving /healthz, /readyz and Prometheus /metrics."`
	MaxInFlightBytes    ByteSize      `yaml:"max_in_flight_bytes" default:"32MiB" desc:"Bound on event bytes produced but not yet acknowledged by the log; sources wait beyond it (32MiB like the Java producer's buffer.memory: more only brings the live heap near memory_limit, where the garbage collector slows the source down). Accepts 65536, 512KiB, 64MiB."`
	LogLevel            string        `yaml:"log_level" default:"info" enum:"debug,info,warn,error" desc:"Log level."`
	LogFormat           string        `yaml:"log_format" default:"text" enum:"text,json" desc:"Log format on stderr."`
	ExactlyOnce         bool          `yaml:"exactly_once" desc:"Sources write their events and offsets in Kafka transactions (transactional.id tributary-source-<name>), so a read_committed consumer (every tributary sink) sees each change once, even after kill -9. Off: at least once, with duplicates only at a crash boundary. Consumers that read uncommitted also see aborted events."`
	TransactionInterval time.Duration `yaml:"transaction_interval" default:"100ms" desc:"With exactly_once: how long a transaction stays open at most; it ends at the first checkpoint after that. Events become visible to read_committed consumers when it ends."`
	FlushInterval       time.Duration `yaml:"flush_interval" default:"5ms" desc:"Longest time an event waits in a batch before it is sent."`
	RestartBackoff      time.Duration `yaml:"restart_backoff" default:"1s" desc:"A connector that fails with a transient error (connection lost or refused, server restarting, too many connections, deadlock, broker not available) is restarted from its last durable position after this long, doubling at each failure in a row up to restart_backoff_max, with jitter. Fatal errors (authentication, privileges, a missing slot, data the target rejects) stop only that connector: failed in /status, the others go on."`
	RestartBackoffMax   time.Duration `yaml:"restart_backoff_max" default:"60s" desc:"Longest wait between two restarts of a failing connector."`
	RestartAfterUp      time.Duration `yaml:"restart_after_up" default:"10s" desc:"A connector is restarted after a transient error only once one of its runs has lasted this long; before that (a wrong host or port at start) its first error stops it, so a configuration problem is not hidden behind retries."`
	MemoryLimit         ByteSize      `yaml:"memory_limit" default:"100MiB" desc:"Soft limit of the Go heap (GOMEMLIMIT): the garbage collector works harder near it instead of letting the heap double. 0 turns it off; the GOMEMLIMIT environment variable takes precedence."`
}

// Connector is one entry of sources or sinks. Only name and type are decoded
// here; the rest belongs to the connector and is decoded by Decode into the
// driver's typed config.
type Connector struct {
	Name string
	Type string
	// Path is "sources[0]" or "sinks[2]", used in error messages.
	Path string
	File string
	Line int
	Col  int
	// Node is the entry's raw YAML mapping.
	Node ast.Node

	doc *document
}

var (
	connectorName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	connectorType = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

func (c *Connector) unmarshalNode(d *decoder, n ast.Node, path string, at *token.Position) {
	c.Path, c.File, c.Node, c.doc = path, d.doc.file, n, d.doc
	if at != nil {
		c.Line, c.Col = at.Line, at.Column
	}
	es, ok := d.entries(n)
	if !ok {
		d.fail(at, path, "expected a mapping with name, type and the connector's keys, got %s", describe(n))
		return
	}
	for _, key := range []string{"name", "type"} {
		var e *entry
		for i := range es {
			if es[i].key == key {
				e = &es[i]
			}
		}
		p := joinPath(path, key)
		if e == nil || isNull(d.resolve(e.value)) {
			d.fail(at, p, "required key is missing")
			continue
		}
		var s string
		before := len(d.errs)
		d.decode(e.value, reflect.ValueOf(&s).Elem(), p, e.pos)
		if len(d.errs) > before {
			continue
		}
		switch key {
		case "name":
			if !connectorName.MatchString(s) {
				d.fail(e.pos, p, "%q must match [a-zA-Z0-9_-]+", s)
			}
			c.Name = s
		case "type":
			if !connectorType.MatchString(s) {
				d.fail(e.pos, p, "%q must match [a-z0-9_-]+", s)
			}
			c.Type = s
		}
	}
}

// Decode fills into, a pointer to the connector's config struct (typically
// from Driver.NewConfig), from this entry's keys: `default` tags fill absent
// keys, unknown keys are rejected, and then into.Validate() runs when it
// exists. name and type are decoded only when into declares them.
//
// Several structs may share one entry: Decode(&spec, targetCfg) gives each
// struct the keys it declares (a key declared by two goes to both), and
// rejects a key that none declares. This is how a sink's runtime settings
// (topics, batch_size) and its target's own keys (url) live side by side.
//
// Every error is a *Error (several are errors.Join-ed) naming the file, line
// and key, e.g. "pipeline.yaml:12:5: sources[0].slot: must match [a-z0-9_]+".
// Decode only reads the parsed file, so connectors may decode concurrently.
func (c *Connector) Decode(into ...any) error {
	if len(into) == 0 {
		return fmt.Errorf("config: %s: Decode needs a pointer to a struct", c.Path)
	}
	vals := make([]reflect.Value, len(into))
	for i, x := range into {
		v := reflect.ValueOf(x)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return fmt.Errorf("config: %s: Decode needs non-nil pointers to structs, got %T", c.Path, x)
		}
		vals[i] = v.Elem()
	}
	if c.doc == nil {
		return fmt.Errorf("config: %s: connector was not produced by Parse", c.Path)
	}
	d := &decoder{doc: c.doc}
	at := &token.Position{Line: c.Line, Column: c.Col}
	es, ok := d.entries(d.resolve(c.Node))
	if !ok {
		d.fail(at, c.Path, "expected a mapping, got %s", describe(c.Node))
		return d.errs.err()
	}
	declared := make([]map[string]bool, len(vals))
	var valid []string
	seen := map[string]bool{}
	for i, v := range vals {
		declared[i] = map[string]bool{}
		for _, f := range structFields(v.Type()) {
			declared[i][f.key] = true
			if !seen[f.key] {
				seen[f.key] = true
				valid = append(valid, f.key)
			}
		}
	}
	for _, e := range es {
		if !seen[e.key] && e.key != "name" && e.key != "type" {
			d.fail(e.pos, joinPath(c.Path, e.key), "unknown key (valid keys: %s)", strings.Join(valid, ", "))
		}
	}
	for i, v := range vals {
		skip := map[string]bool{}
		for _, e := range es {
			if !declared[i][e.key] {
				skip[e.key] = true
			}
		}
		d.decodeStruct(c.Node, v, c.Path, at, skip)
	}
	return d.errs.err()
}

// Errorf returns a *Error positioned at the connector, for problems found
// outside Decode (e.g. an unknown type).
func (c *Connector) Errorf(key, format string, args ...any) error {
	e := &Error{File: c.File, Line: c.Line, Col: c.Col, Path: c.Path, Msg: fmt.Sprintf(format, args...)}
	if key != "" {
		e.Path = joinPath(c.Path, key)
		if c.doc != nil {
			d := &decoder{doc: c.doc}
			if pos, _ := d.lookup(c.Node, key); pos != nil {
				e.Line, e.Col = pos.Line, pos.Column
			}
		}
	}
	return e
}

// Load reads and parses a pipeline file.
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read config: %v", err), Err: err}
	}
	return Parse(path, data)
}

// Parse parses a pipeline from data; name is used in error messages and to
// resolve relative ${file:PATH} references.
func Parse(name string, data []byte) (*Pipeline, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, err)
	}
	doc := &document{
		file:    name,
		baseDir: filepath.Dir(name),
		anchors: map[string]ast.Node{},
		values:  map[ast.Node]string{},
	}
	var body ast.Node
	for _, dn := range f.Docs {
		if dn == nil || dn.Body == nil {
			continue
		}
		if _, isComment := dn.Body.(*ast.CommentGroupNode); isComment {
			continue
		}
		if body != nil {
			pos := dn.Body.GetToken().Position
			return nil, &Error{File: name, Line: pos.Line, Col: pos.Column, Msg: "a pipeline file holds one YAML document; found a second one"}
		}
		body = dn.Body
	}
	if body == nil {
		return nil, &Error{File: name, Msg: "config is empty: expected a mapping with log, registry, worker, sources and sinks"}
	}
	d := &decoder{doc: doc}
	d.prepare(body, "")
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	p := &Pipeline{File: name}
	applyDefaults(reflect.ValueOf(p).Elem())
	// Top-level "x-" keys are ignored, as in Compose files, so that they
	// can hold YAML anchors shared by several connectors.
	extensions := map[string]bool{}
	if es, ok := d.entries(d.resolve(body)); ok {
		for _, e := range es {
			if strings.HasPrefix(e.key, "x-") {
				extensions[e.key] = true
			}
		}
	}
	d.decodeStruct(d.resolve(body), reflect.ValueOf(p).Elem(), "", d.position(body), extensions)
	d.checkNames(p)
	d.checkGroup(body, p)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// prepare records anchors and interpolates every scalar value, in document
// order, so that all ${...} problems are found at load time.
func (d *decoder) prepare(n ast.Node, path string) {
	switch v := n.(type) {
	case nil:
	case *ast.AnchorNode:
		if v.Name != nil {
			d.doc.anchors[v.Name.GetToken().Value] = v.Value
		}
		d.prepare(v.Value, path)
	case *ast.TagNode:
		d.prepare(v.Value, path)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			d.prepare(mv, path)
		}
	case *ast.MappingValueNode:
		key := ""
		if v.Key != nil {
			key = v.Key.GetToken().Value
			if s, ok := rawScalar(v.Key); ok {
				key = s
			}
		}
		d.prepare(v.Value, joinPath(path, key))
	case *ast.SequenceNode:
		for i, item := range v.Values {
			d.prepare(item, fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		raw, ok := rawScalar(n)
		if !ok {
			return
		}
		s, err := interpolate(raw, d.doc.baseDir)
		if err != nil {
			d.fail(n.GetToken().Position, path, "%v", err)
			return
		}
		d.doc.values[n] = s
	}
}

func (d *decoder) checkNames(p *Pipeline) {
	seen := map[string]*Connector{}
	for _, list := range [][]*Connector{p.Sources, p.Sinks} {
		for _, c := range list {
			if c == nil || c.Name == "" {
				continue
			}
			if prev, dup := seen[c.Name]; dup {
				pos, _ := d.lookup(c.Node, "name")
				d.fail(pos, joinPath(c.Path, "name"), "name %q is already used by %s (line %d); connector names must be unique", c.Name, prev.Path, prev.Line)
				continue
			}
			seen[c.Name] = c
		}
	}
}

// checkGroup refuses worker.group and worker.exactly_once with the embedded
// log. A group: the embedded broker lives inside one process and locks its
// folder, so there is nothing to share.
func (d *decoder) checkGroup(body ast.Node, p *Pipeline) {
	if !p.Log.Embedded() {
		// A key of the embedded broker next to log.brokers says the
		// user expects a local log that will not exist (issue 11: a
		// data_dir was silently ignored).
		for _, key := range []string{"log.data_dir", "log.listen", "log.compaction_interval", "log.sync_writes"} {
			if pos, found := d.lookup(body, key); found {
				d.fail(pos, key, "applies to the embedded log only, and log.brokers selects a Kafka cluster: remove one of them")
			}
		}
		return
	}
	if p.Worker.Group != "" {
		pos, _ := d.lookup(body, "worker.group")
		d.fail(pos, "worker.group", "needs a Kafka cluster (log.brokers): with the embedded log one process owns the log and all its connectors")
	}
	// The embedded broker dies with the worker on kill -9, and kfake does
	// not always recover the state of the transaction that was open: we saw
	// both duplicates and a read_committed consumer stuck behind a
	// transaction that never ended. Refuse rather than promise.
	if p.Worker.ExactlyOnce {
		pos, _ := d.lookup(body, "worker.exactly_once")
		d.fail(pos, "worker.exactly_once", "needs a Kafka cluster (log.brokers): the embedded broker does not reliably recover an open transaction after a crash")
	}
}

func yamlError(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		return &Error{File: name, Line: pos.Line, Col: pos.Column, Msg: "invalid YAML: " + ye.GetMessage(), Err: err}
	}
	return &Error{File: name, Msg: "invalid YAML: " + strings.TrimSpace(err.Error()), Err: err}
}

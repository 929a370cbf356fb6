// Package sinktest builds Debezium-format change events (Avro, Confluent
// framing) and an in-process Kafka cluster for sink tests. The schemas follow
// what Debezium's PostgreSQL and MySQL connectors emit through the Confluent
// AvroConverter: <topic>.Key / <topic>.Value / <topic>.Envelope records,
// connect.name / connect.version / connect.parameters properties, the
// connector's Source block, and __debezium.source.column.* parameters.
package sinktest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Registry is a map-backed schema store implementing sink.Decoder.
type Registry struct {
	mu      sync.Mutex
	next    int
	schemas map[int]avro.Schema
	apis    map[int]avro.API
	texts   map[string]int
	byID    map[int]string
	// Unwrap makes Decode return union values unwrapped (as the schema
	// package's decoder does) instead of hamba/avro's {"branch": value}.
	Unwrap bool
}

// NewRegistry returns an empty registry; ids start at 1.
func NewRegistry() *Registry {
	return &Registry{next: 1, schemas: map[int]avro.Schema{}, apis: map[int]avro.API{}, texts: map[string]int{}, byID: map[int]string{}}
}

// Register parses and stores a schema, returning its id (the same id for the
// same text).
func (r *Registry) Register(schemaJSON string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.texts[schemaJSON]; ok {
		return id, nil
	}
	s, err := avro.ParseWithCache(schemaJSON, "", &avro.SchemaCache{})
	if err != nil {
		return 0, err
	}
	id := r.next
	r.next++
	r.schemas[id] = s
	// hamba/avro caches codecs by fingerprint, and a named reference
	// fingerprints by name only: a fresh API per schema keeps versions of
	// the same record name apart.
	r.apis[id] = avro.Config{MaxByteSliceSize: 64 << 20}.Freeze()
	r.texts[schemaJSON] = id
	r.byID[id] = schemaJSON
	return id, nil
}

// Schema implements sink.Decoder.
func (r *Registry) Schema(_ context.Context, id int) (avro.Schema, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.schemas[id]
	if !ok {
		return nil, fmt.Errorf("schema id %d not found (40403)", id)
	}
	return s, nil
}

// SchemaByID returns a schema's text, as a registry does (it makes the
// Registry a schema.SchemaFetcher).
func (r *Registry) SchemaByID(_ context.Context, id int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	if !ok {
		return "", fmt.Errorf("schema id %d not found (40403)", id)
	}
	return s, nil
}

// Decode implements sink.Decoder.
func (r *Registry) Decode(ctx context.Context, data []byte) (int, any, error) {
	if len(data) < 5 || data[0] != 0 {
		return 0, nil, fmt.Errorf("not Confluent-framed Avro")
	}
	id := int(binary.BigEndian.Uint32(data[1:5]))
	s, err := r.Schema(ctx, id)
	if err != nil {
		return id, nil, err
	}
	r.mu.Lock()
	api := r.apis[id]
	r.mu.Unlock()
	var v any
	if err := api.Unmarshal(s, data[5:], &v); err != nil {
		return id, nil, err
	}
	if r.Unwrap {
		v = unwrap(v)
	}
	return id, v, nil
}

func unwrap(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, e := range x {
				if strings.Contains(k, ".") || isPrimitive(k) {
					return unwrap(e)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = unwrap(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = unwrap(x[i])
		}
	}
	return v
}

func isPrimitive(k string) bool {
	switch k {
	case "boolean", "int", "long", "float", "double", "string", "bytes", "array", "map", "bytes.decimal", "int.date", "long.timestamp-millis":
		return true
	}
	return false
}

// Encode frames an Avro value of a registered schema with the Confluent header.
func (r *Registry) Encode(id int, v any) ([]byte, error) {
	r.mu.Lock()
	s, api := r.schemas[id], r.apis[id]
	r.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("schema id %d not registered", id)
	}
	b, err := api.Marshal(s, v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:5], uint32(id))
	return append(out, b...), nil
}

// Col is one column of a fixture table: its Avro type (as a JSON-able
// value) and whether it may be null.
type Col struct {
	Name     string
	Type     any
	Optional bool
	// Source is the source's spelling of the column name, written as the
	// __debezium.source.column.name parameter (Debezium 3.6) when set.
	Source string
	// Default is the field's Avro default (a JSON value) when set.
	Default any
}

// Avro type builders, in Debezium's shape. params are the
// __debezium.source.column.* values: type, then optional length and scale.
func params(src []string) map[string]any {
	if len(src) == 0 {
		return nil
	}
	p := map[string]any{"__debezium.source.column.type": src[0]}
	if len(src) > 1 {
		p["__debezium.source.column.length"] = src[1]
	}
	if len(src) > 2 {
		p["__debezium.source.column.scale"] = src[2]
	}
	return p
}

func prim(t string, src []string) any {
	if p := params(src); p != nil {
		return map[string]any{"type": t, "connect.parameters": p}
	}
	return t
}

func named(t, name string, src []string, extra map[string]any) any {
	m := map[string]any{"type": t, "connect.version": 1, "connect.name": name}
	p := params(src)
	for k, v := range extra {
		if p == nil {
			p = map[string]any{}
		}
		p[k] = v
	}
	if p != nil {
		m["connect.parameters"] = p
	}
	return m
}

func Boolean(src ...string) any { return prim("boolean", src) }
func Int32(src ...string) any   { return prim("int", src) }
func Int64(src ...string) any   { return prim("long", src) }
func Float64(src ...string) any { return prim("double", src) }
func String(src ...string) any  { return prim("string", src) }
func Bytes(src ...string) any   { return prim("bytes", src) }
func Int16(src ...string) any {
	m := map[string]any{"type": "int", "connect.type": "int16"}
	if p := params(src); p != nil {
		m["connect.parameters"] = p
	}
	return m
}

// Decimal is org.apache.kafka.connect.data.Decimal with the Avro decimal
// logical type, as the Confluent converter writes it.
func Decimal(precision, scale int, src ...string) any {
	m := named("bytes", "org.apache.kafka.connect.data.Decimal", src, map[string]any{
		"scale": fmt.Sprint(scale), "connect.decimal.precision": fmt.Sprint(precision),
	}).(map[string]any)
	m["logicalType"] = "decimal"
	m["precision"] = precision
	m["scale"] = scale
	return m
}

func VariableScaleDecimal(src ...string) any {
	m := map[string]any{
		"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
		"fields": []any{
			map[string]any{"name": "scale", "type": "int"},
			map[string]any{"name": "value", "type": "bytes"},
		},
		"connect.doc": "Variable scaled decimal", "connect.version": 1, "connect.name": "io.debezium.data.VariableScaleDecimal",
	}
	if p := params(src); p != nil {
		m["connect.parameters"] = p
	}
	return m
}

func Date(src ...string) any      { return named("int", "io.debezium.time.Date", src, nil) }
func MicroTime(src ...string) any { return named("long", "io.debezium.time.MicroTime", src, nil) }
func Timestamp(src ...string) any { return named("long", "io.debezium.time.Timestamp", src, nil) }
func MicroTimestamp(src ...string) any {
	return named("long", "io.debezium.time.MicroTimestamp", src, nil)
}
func ZonedTimestamp(src ...string) any {
	return named("string", "io.debezium.time.ZonedTimestamp", src, nil)
}
func MicroDuration(src ...string) any {
	return named("long", "io.debezium.time.MicroDuration", src, nil)
}
func JSON(src ...string) any { return named("string", "io.debezium.data.Json", src, nil) }
func UUID(src ...string) any { return named("string", "io.debezium.data.Uuid", src, nil) }
func Enum(allowed string, src ...string) any {
	return named("string", "io.debezium.data.Enum", src, map[string]any{"allowed": allowed})
}
func Bits(n int, src ...string) any {
	return named("bytes", "io.debezium.data.Bits", src, map[string]any{"length": fmt.Sprint(n)})
}

// Geometry is Debezium's io.debezium.data.geometry.Geometry struct {wkb,
// srid}.
func Geometry(src ...string) any {
	m := map[string]any{
		"type": "record", "name": "Geometry", "namespace": "io.debezium.data.geometry",
		"fields": []any{
			map[string]any{"name": "wkb", "type": "bytes"},
			map[string]any{"name": "srid", "type": []any{"null", "int"}, "default": nil},
		},
		"connect.doc": "Geometry", "connect.version": 1, "connect.name": "io.debezium.data.geometry.Geometry",
	}
	if p := params(src); p != nil {
		m["connect.parameters"] = p
	}
	return m
}

// Array is an array column whose items are optional, as Connect writes
// arrays of nullable elements.
func Array(items any, src ...string) any {
	m := map[string]any{"type": "array", "items": []any{"null", items}}
	if p := params(src); p != nil {
		m["connect.parameters"] = p
	}
	return m
}

// Value helpers for the Go values hamba/avro encodes.

// Dec parses decimal text for a Decimal column.
func Dec(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("bad decimal " + s)
	}
	return r
}

// VarDec builds a VariableScaleDecimal value.
func VarDec(unscaled int64, scale int) map[string]any {
	return map[string]any{"scale": scale, "value": TwosComplement(big.NewInt(unscaled))}
}

// TwosComplement is the big-endian two's complement form Connect uses for
// decimals.
func TwosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = ~(n-1): pick a width whose top bit is set.
	l := (n.BitLen() + 8) / 8
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*l)), n)
	b := m.Bytes()
	for len(b) < l {
		b = append([]byte{0xff}, b...)
	}
	return b
}

// Days is an io.debezium.time.Date value.
func Days(t time.Time) int { return int(t.Unix() / 86400) }

// Micros is an io.debezium.time.MicroTimestamp value.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// Table is one captured table and its topic.
type Table struct {
	Topic string
	// Connector is "postgresql" (default) or "mysql": it picks the Source block.
	Connector string
	DB        string
	Schema    string // PostgreSQL schema; ignored for MySQL
	Name      string
	Columns   []Col
	// Key names the key columns; empty means a keyless table (null keys).
	Key []string
}

func (t *Table) connector() string {
	if t.Connector == "" {
		return "postgresql"
	}
	return t.Connector
}

func field(c Col) map[string]any {
	typ := c.Type
	if c.Source != "" {
		typ = withParam(typ, "__debezium.source.column.name", c.Source)
	}
	switch {
	case c.Optional && c.Default != nil:
		// Avro wants the default's type first in the union.
		return map[string]any{"name": c.Name, "type": []any{typ, "null"}, "default": c.Default}
	case c.Optional:
		return map[string]any{"name": c.Name, "type": []any{"null", typ}, "default": nil}
	case c.Default != nil:
		return map[string]any{"name": c.Name, "type": typ, "default": c.Default}
	}
	return map[string]any{"name": c.Name, "type": typ}
}

// withParam returns a copy of an Avro type with one more connect parameter.
func withParam(typ any, k, v string) any {
	var m map[string]any
	switch x := typ.(type) {
	case string:
		m = map[string]any{"type": x}
	case map[string]any:
		m = make(map[string]any, len(x)+1)
		for a, b := range x {
			m[a] = b
		}
	default:
		return typ
	}
	p := map[string]any{}
	if old, ok := m["connect.parameters"].(map[string]any); ok {
		for a, b := range old {
			p[a] = b
		}
	}
	p[k] = v
	m["connect.parameters"] = p
	return m
}

// KeySchema is the <topic>.Key record.
func (t *Table) KeySchema() string {
	var fields []any
	for _, k := range t.Key {
		for _, c := range t.Columns {
			if c.Name == k {
				fields = append(fields, field(Col{Name: c.Name, Type: c.Type}))
			}
		}
	}
	return mustJSON(map[string]any{
		"type": "record", "name": "Key", "namespace": t.Topic, "fields": fields,
		"connect.name": t.Topic + ".Key",
	})
}

func (t *Table) sourceSchema() any {
	snapshot := []any{map[string]any{
		"type": "string", "connect.version": 1, "connect.parameters": map[string]any{"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
		"connect.default": "false", "connect.name": "io.debezium.data.Enum",
	}, "null"}
	opt := func(name, typ string) any {
		return map[string]any{"name": name, "type": []any{"null", typ}, "default": nil}
	}
	req := func(name, typ string) any { return map[string]any{"name": name, "type": typ} }
	common := []any{
		req("version", "string"), req("connector", "string"), req("name", "string"), req("ts_ms", "long"),
		map[string]any{"name": "snapshot", "type": snapshot, "default": "false"},
		req("db", "string"), opt("sequence", "string"),
	}
	if t.connector() == "mysql" {
		fields := append(common, opt("table", "string"), req("server_id", "long"), opt("gtid", "string"),
			req("file", "string"), req("pos", "long"), req("row", "int"), opt("thread", "long"), opt("query", "string"))
		return map[string]any{"type": "record", "name": "Source", "namespace": "io.debezium.connector.mysql",
			"fields": fields, "connect.name": "io.debezium.connector.mysql.Source"}
	}
	fields := append(common, req("schema", "string"), req("table", "string"), opt("txId", "long"), opt("lsn", "long"), opt("xmin", "long"))
	return map[string]any{"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
		"fields": fields, "connect.name": "io.debezium.connector.postgresql.Source"}
}

// ValueSchema is the <topic>.Envelope record.
func (t *Table) ValueSchema() string {
	var cols []any
	for _, c := range t.Columns {
		cols = append(cols, field(c))
	}
	value := map[string]any{"type": "record", "name": "Value", "namespace": t.Topic, "fields": cols, "connect.name": t.Topic + ".Value"}
	block := map[string]any{"type": "record", "name": "block", "namespace": "event", "fields": []any{
		map[string]any{"name": "id", "type": "string"},
		map[string]any{"name": "total_order", "type": "long"},
		map[string]any{"name": "data_collection_order", "type": "long"},
	}, "connect.version": 1, "connect.name": "event.block"}
	return mustJSON(map[string]any{
		"type": "record", "name": "Envelope", "namespace": t.Topic, "connect.version": 1,
		"connect.name": t.Topic + ".Envelope",
		"fields": []any{
			map[string]any{"name": "before", "type": []any{"null", value}, "default": nil},
			map[string]any{"name": "after", "type": []any{"null", t.Topic + ".Value"}, "default": nil},
			map[string]any{"name": "source", "type": t.sourceSchema()},
			map[string]any{"name": "op", "type": "string"},
			map[string]any{"name": "ts_ms", "type": []any{"null", "long"}, "default": nil},
			map[string]any{"name": "ts_us", "type": []any{"null", "long"}, "default": nil},
			map[string]any{"name": "ts_ns", "type": []any{"null", "long"}, "default": nil},
			map[string]any{"name": "transaction", "type": []any{"null", block}, "default": nil},
		},
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Encoder encodes events of one version of a table's schema.
type Encoder struct {
	T              *Table
	reg            *Registry
	keyID, valueID int
}

// NewEncoder registers the table's schemas.
func NewEncoder(reg *Registry, t *Table) (*Encoder, error) {
	e := &Encoder{T: t, reg: reg}
	var err error
	if len(t.Key) > 0 {
		if e.keyID, err = reg.Register(t.KeySchema()); err != nil {
			return nil, fmt.Errorf("key schema: %w", err)
		}
	}
	if e.valueID, err = reg.Register(t.ValueSchema()); err != nil {
		return nil, fmt.Errorf("value schema: %w", err)
	}
	return e, nil
}

// ValueID is the registered id of the envelope schema.
func (e *Encoder) ValueID() int { return e.valueID }

func (e *Encoder) source() map[string]any {
	t := e.T
	s := map[string]any{
		"version": "2.7.0.Final", "connector": t.connector(), "name": strings.SplitN(t.Topic, ".", 2)[0],
		"ts_ms": int64(1700000000000), "snapshot": "false", "db": t.DB, "sequence": nil,
	}
	if t.connector() == "mysql" {
		s["table"] = t.Name
		s["server_id"] = int64(1)
		s["gtid"] = nil
		s["file"] = "mysql-bin.000003"
		s["pos"] = int64(154)
		s["row"] = 0
		s["thread"] = nil
		s["query"] = nil
	} else {
		s["schema"] = t.Schema
		s["table"] = t.Name
		s["txId"] = int64(555)
		s["lsn"] = int64(24023128)
		s["xmin"] = nil
	}
	return s
}

// Key encodes the key of row (nil for a keyless table).
func (e *Encoder) Key(row map[string]any) ([]byte, error) {
	if len(e.T.Key) == 0 {
		return nil, nil
	}
	k := map[string]any{}
	for _, n := range e.T.Key {
		k[n] = row[n]
	}
	return e.reg.Encode(e.keyID, k)
}

// Event encodes an envelope; before/after may be nil.
func (e *Encoder) Event(op string, before, after map[string]any) ([]byte, error) {
	env := map[string]any{
		"before": e.wrapRow(before), "after": e.wrapRow(after), "source": e.source(), "op": op,
		"ts_ms": int64(1700000000123), "ts_us": nil, "ts_ns": nil, "transaction": nil,
	}
	return e.reg.Encode(e.valueID, env)
}

// wrapRow puts a row, and its optional record-typed columns, in the
// {"<full name>": value} form hamba/avro needs to encode a union of a record.
func (e *Encoder) wrapRow(m map[string]any) any {
	if m == nil {
		return nil
	}
	row := make(map[string]any, len(m))
	for k, v := range m {
		row[k] = v
	}
	for _, c := range e.T.Columns {
		v, ok := row[c.Name]
		if !ok || v == nil || !c.Optional {
			continue
		}
		if t, ok := c.Type.(map[string]any); ok && t["type"] == "record" {
			row[c.Name] = map[string]any{t["namespace"].(string) + "." + t["name"].(string): v}
		}
	}
	return map[string]any{e.T.Topic + ".Value": row}
}

// Record builds the Kafka record of an event: c/r/u use after's key, d uses
// before's, t has a null key.
func (e *Encoder) Record(op string, before, after map[string]any) (*kgo.Record, error) {
	v, err := e.Event(op, before, after)
	if err != nil {
		return nil, err
	}
	var k []byte
	switch op {
	case "c", "r", "u":
		k, err = e.Key(after)
	case "d":
		k, err = e.Key(before)
	}
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: e.T.Topic, Key: k, Value: v}, nil
}

// Tombstone is the null-value record that follows a delete.
func (e *Encoder) Tombstone(before map[string]any) (*kgo.Record, error) {
	k, err := e.Key(before)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: e.T.Topic, Key: k}, nil
}

// Cluster is an in-process kfake cluster.
type Cluster struct {
	*kfake.Cluster
	Addrs []string
}

// NewCluster starts a kfake cluster closed at test end. Producing to a
// missing topic creates it with one partition.
func NewCluster(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}, opts...)...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Cluster: c, Addrs: c.ListenAddrs()}
}

// NewClient is a Deps.NewClient for this cluster.
func (c *Cluster) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs...)}, opts...)...)
}

// Produce writes records synchronously.
func (c *Cluster) Produce(ctx context.Context, t testing.TB, rs ...*kgo.Record) {
	t.Helper()
	cl, err := c.NewClient(kgo.DefaultProduceTopic("unused"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

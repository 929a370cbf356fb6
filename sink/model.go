package sink

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Kind is the semantic type of a column, recovered from the Avro type and
// its Kafka Connect name (connect.name). Targets map it, together with the
// source's native type (ColumnType.Native), to a column type of their own.
type Kind uint8

const (
	KindBool Kind = iota + 1
	KindInt8
	KindInt16
	KindInt32
	KindInt64
	KindFloat32
	KindFloat64
	// KindDecimal is org.apache.kafka.connect.data.Decimal: fixed scale.
	KindDecimal
	// KindVarDecimal is io.debezium.data.VariableScaleDecimal (numeric
	// without precision/scale).
	KindVarDecimal
	KindString
	KindBytes
	// KindDate is io.debezium.time.Date or Connect Date.
	KindDate
	// KindTime is io.debezium.time.Time, MicroTime, NanoTime or Connect Time.
	KindTime
	// KindTimestamp is a wall-clock timestamp without zone:
	// io.debezium.time.Timestamp, MicroTimestamp, NanoTimestamp, Connect Timestamp.
	KindTimestamp
	// KindTimestampTZ is io.debezium.time.ZonedTimestamp (an instant).
	KindTimestampTZ
	// KindTimeTZ is io.debezium.time.ZonedTime, carried as its string.
	KindTimeTZ
	KindJSON
	KindUUID
	KindEnum
	// KindEnumSet is io.debezium.data.EnumSet (MySQL SET), a comma list.
	KindEnumSet
	// KindBits is io.debezium.data.Bits, carried as a '0'/'1' string.
	KindBits
	// KindInterval is io.debezium.time.MicroDuration (microseconds).
	KindInterval
	KindXML
	KindYear
	KindArray
	// KindStruct is a nested record other than the ones below.
	KindStruct
	// KindGeometry is io.debezium.data.geometry.Geometry {wkb, srid} or
	// io.debezium.data.geometry.Point {x, y, wkb, srid}; values are Geometry.
	KindGeometry
)

var kindNames = [...]string{
	KindBool: "boolean", KindInt8: "int8", KindInt16: "int16", KindInt32: "int32", KindInt64: "int64",
	KindFloat32: "float32", KindFloat64: "float64", KindDecimal: "decimal", KindVarDecimal: "variable-scale decimal",
	KindString: "string", KindBytes: "bytes", KindDate: "date", KindTime: "time", KindTimestamp: "timestamp",
	KindTimestampTZ: "timestamptz", KindTimeTZ: "timetz", KindJSON: "json", KindUUID: "uuid", KindEnum: "enum",
	KindEnumSet: "set", KindBits: "bits", KindInterval: "interval", KindXML: "xml", KindYear: "year",
	KindArray: "array", KindStruct: "struct", KindGeometry: "geometry",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Dialect is the family of the database an event came from, taken from the
// Debezium source block's "connector" field. Native type names are only
// meaningful within their dialect.
type Dialect string

const (
	DialectPostgres Dialect = "postgresql"
	DialectMySQL    Dialect = "mysql"
)

// ColumnType describes one column's type as the events carry it.
//
// Values in Change rows follow these Go conventions:
//
//	nil                 SQL NULL
//	bool                KindBool
//	int64               KindInt8..KindInt64, KindYear
//	float32 / float64   KindFloat32 / KindFloat64
//	string              KindDecimal, KindVarDecimal (plain decimal text,
//	                    e.g. "-12.340"), KindString, KindJSON, KindUUID,
//	                    KindEnum, KindEnumSet, KindXML, KindTimeTZ,
//	                    KindBits ('0'/'1' digits, most significant first)
//	[]byte              KindBytes
//	time.Time (UTC)     KindDate (midnight), KindTimestamp (wall clock read
//	                    as UTC), KindTimestampTZ (the instant)
//	time.Duration       KindTime (since midnight), KindInterval
//	[]any               KindArray (elements follow Elem)
//	map[string]any      KindStruct
//	Geometry            KindGeometry
type ColumnType struct {
	Kind Kind
	// ConnectName is the connect.name of the Avro type ("" for primitives).
	ConnectName string
	// Native is __debezium.source.column.type upper-cased ("NUMERIC",
	// "VARCHAR", "TIMESTAMPTZ", "_INT4"), or "" when absent.
	Native string
	// Length and Scale are __debezium.source.column.length / .scale, -1 when
	// absent.
	Length int
	Scale  int
	// Precision and DecimalScale describe a KindDecimal (from the Avro
	// decimal logical type or connect.parameters); Precision is 0 when
	// unknown.
	Precision    int
	DecimalScale int
	// BitLength is the number of bits of a KindBits, 0 when unknown.
	BitLength int
	// Dialect is the source family the Native name belongs to.
	Dialect Dialect
	// Elem is the element type of a KindArray.
	Elem *ColumnType
	// Params are the raw connect.parameters (e.g. "allowed" of an Enum).
	Params map[string]string
}

// NativeIs reports whether the source type of a column of dialect d is one
// of names (upper-case).
func (t *ColumnType) NativeIs(d Dialect, names ...string) bool {
	if t.Dialect != d || t.Native == "" {
		return false
	}
	for _, n := range names {
		if t.Native == n {
			return true
		}
	}
	return false
}

func (t *ColumnType) equalShape(o *ColumnType) bool {
	if t.Kind != o.Kind || t.Native != o.Native || t.Length != o.Length || t.Scale != o.Scale ||
		t.Precision != o.Precision || t.DecimalScale != o.DecimalScale || t.BitLength != o.BitLength {
		return false
	}
	if (t.Kind == KindEnum || t.Kind == KindEnumSet) && t.Params["allowed"] != o.Params["allowed"] {
		return false
	}
	if (t.Elem == nil) != (o.Elem == nil) {
		return false
	}
	return t.Elem == nil || t.Elem.equalShape(o.Elem)
}

// String renders the type in full for messages: the semantic kind, then
// the source type with its length and scale (or the decimal's precision
// and scale, an enum's values), e.g. "string VARCHAR(128)".
func (t *ColumnType) String() string {
	var b strings.Builder
	b.WriteString(t.Kind.String())
	if t.Native != "" {
		b.WriteByte(' ')
		b.WriteString(t.Native)
	} else if t.ConnectName != "" {
		b.WriteByte(' ')
		b.WriteString(t.ConnectName)
	}
	switch {
	case t.Length >= 0 && t.Scale >= 0:
		fmt.Fprintf(&b, "(%d,%d)", t.Length, t.Scale)
	case t.Length >= 0:
		fmt.Fprintf(&b, "(%d)", t.Length)
	case t.Kind == KindDecimal && t.Precision > 0:
		fmt.Fprintf(&b, "(%d,%d)", t.Precision, t.DecimalScale)
	case t.Kind == KindBits && t.BitLength > 0:
		fmt.Fprintf(&b, "(%d)", t.BitLength)
	}
	if a, ok := t.Params["allowed"]; ok && (t.Kind == KindEnum || t.Kind == KindEnumSet) {
		fmt.Fprintf(&b, " {%s}", a)
	}
	if t.Elem != nil {
		b.WriteString(" of " + t.Elem.String())
	}
	return b.String()
}

// Geometry is the value of a KindGeometry column: Debezium's
// io.debezium.data.geometry.Geometry (WKB and SRID) or Point (X, Y and
// maybe WKB).
type Geometry struct {
	// WKB is the OGC well-known binary form, without SRID.
	WKB []byte
	// SRID is the spatial reference id; HasSRID is false when the event
	// carried none.
	SRID    int32
	HasSRID bool
	// X and Y are a Point's coordinates (IsPoint set).
	X, Y    float64
	IsPoint bool
}

// EWKB is the PostGIS extended WKB: the WKB with the SRID flag and value
// in its header, when the geometry has an SRID.
func (g Geometry) EWKB() []byte {
	if !g.HasSRID || len(g.WKB) < 5 {
		return g.WKB
	}
	var order binary.AppendByteOrder = binary.LittleEndian
	if g.WKB[0] == 0 {
		order = binary.BigEndian
	}
	out := make([]byte, 0, len(g.WKB)+4)
	out = append(out, g.WKB[0])
	var typ uint32
	if g.WKB[0] == 0 {
		typ = binary.BigEndian.Uint32(g.WKB[1:5])
	} else {
		typ = binary.LittleEndian.Uint32(g.WKB[1:5])
	}
	out = order.AppendUint32(out, typ|0x20000000)
	out = order.AppendUint32(out, uint32(g.SRID))
	return append(out, g.WKB[5:]...)
}

// MySQLInternal is MySQL's and MariaDB's internal form of a geometry: the
// SRID as 4 little-endian bytes, then the WKB. A GEOMETRY column takes it
// as it is, as mysqldump's hex dumps rely on.
func (g Geometry) MySQLInternal() []byte {
	out := make([]byte, 4, 4+len(g.WKB))
	binary.LittleEndian.PutUint32(out, uint32(g.SRID))
	return append(out, g.WKB...)
}

// pointWKB is the little-endian WKB of a point.
func pointWKB(x, y float64) []byte {
	b := make([]byte, 0, 21)
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(y))
}

// ColumnSpec is one column of a target table.
type ColumnSpec struct {
	// Name is the column's name in the copy: the source's own spelling
	// (__debezium.source.column.name) when the events carry it, else the
	// Avro field name.
	Name string
	Type ColumnType
	// Default is the column's default value (a value of the Go convention
	// documented on ColumnType) when HasDefault: the field default of the
	// schema version the column first appeared in. A target creates and
	// adds the column with it, so rows the copy already holds get it, as
	// the source's existing rows did.
	Default    any
	HasDefault bool
	// FormerName is the column's name in the copy before events began to
	// carry the source's spelling (an Avro field name such as
	// col_with_space, from older Debezium or tributary versions): a target
	// renames that column to Name, so the values it holds stay.
	FormerName string
	// TypeChanged is set when a newer schema version changed the column's
	// type (see PrevType): a target alters its column to follow, or stops
	// with an error when it cannot.
	TypeChanged bool
	PrevType    *ColumnType
	// Optional is true when the column may hold NULL: the field is optional
	// in the schema, or the column no longer exists in the latest schema.
	Optional bool
	// Key is true for primary-key columns.
	Key bool
}

// TableSpec is a target table as the sink derives it from the topics' schemas.
// Columns only ever grow: a column seen in any schema version stays.
type TableSpec struct {
	// Schema is the namespace (PostgreSQL schema, MySQL database); "" when
	// the formatted table name has no dot.
	Schema string
	Name   string
	// Columns in order of first appearance.
	Columns []*ColumnSpec
	// Key lists the primary-key columns in key-schema order; empty for a
	// keyless table.
	Key []*ColumnSpec
}

// QualifiedName is "schema.name" or "name", for messages.
func (t *TableSpec) QualifiedName() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Column returns the column named name, or nil.
func (t *TableSpec) Column(name string) *ColumnSpec {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Op is what a change does to its table.
type Op uint8

const (
	// OpUpsert inserts the row or replaces the existing row with the same key.
	OpUpsert Op = iota + 1
	// OpInsert inserts the row and fails on a duplicate key.
	OpInsert
	// OpDelete deletes the row with the key; a missing row is not an error.
	OpDelete
	// OpTruncate deletes every row of the table.
	OpTruncate
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpInsert:
		return "insert"
	case OpDelete:
		return "delete"
	case OpTruncate:
		return "truncate"
	}
	return "unknown"
}

// ColSet is the set of columns a row carries, in order. Rows decoded from
// the same schema version share one *ColSet, so targets can group rows with
// identical columns into one statement by comparing pointers.
type ColSet struct {
	Columns []*ColumnSpec
	sig     string
}

func newColSet(cols []*ColumnSpec) *ColSet {
	var b strings.Builder
	for _, c := range cols {
		b.WriteString(c.Name)
		b.WriteByte(0)
	}
	return &ColSet{Columns: cols, sig: b.String()}
}

// Change is one row operation on one table.
type Change struct {
	Op Op
	// Key holds the values of TableSpec.Key, in order (nil for a truncate
	// and for a keyless table).
	Key []any
	// Cols and Row are the columns and values written by an upsert or insert.
	Cols *ColSet
	Row  []any
	// Unavail lists the columns the source did not send a value for
	// (Debezium's __debezium_unavailable_value placeholder, an unchanged
	// TOASTed value): they are absent from Cols, so an upsert leaves the
	// row's current value alone. reduce fills them, by column name, from an
	// earlier change of the same key in the batch; those left are known
	// only to the target's current row (see Tx.Apply and MissingKeys).
	Unavail []*ColumnSpec
	// Rec is the Kafka record the change came from.
	Rec *Record
}

// Record is the Kafka provenance of a change, used for errors and the
// dead-letter topic.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	// KeyText is the decoded key as JSON, for error messages. The runtime
	// renders it only when a message needs it (see Record.keyText).
	KeyText string

	keyInfo *keyInfo
	keyRaw  []any
}

// keyText renders the decoded key into KeyText on first use: marshalling
// JSON for every record only for the rare error message cost more than
// decoding the record.
func (r *Record) keyText() string {
	if r.KeyText == "" && r.keyInfo != nil && len(r.keyRaw) == len(r.keyInfo.fields) {
		m := make(map[string]any, len(r.keyRaw))
		for i, f := range r.keyInfo.fields {
			m[f.name] = r.keyRaw[i]
		}
		r.KeyText = keyText(m)
	}
	return r.KeyText
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

func (r *Record) where() string {
	k := r.keyText()
	if k == "" {
		k = "null"
	}
	return "topic " + r.Topic + " partition " + itoa(int64(r.Partition)) + " offset " + itoa(r.Offset) + " key " + k
}

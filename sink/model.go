package sink

import (
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
	// KindStruct is a nested record (e.g. io.debezium.data.geometry.*).
	KindStruct
)

var kindNames = [...]string{
	KindBool: "boolean", KindInt8: "int8", KindInt16: "int16", KindInt32: "int32", KindInt64: "int64",
	KindFloat32: "float32", KindFloat64: "float64", KindDecimal: "decimal", KindVarDecimal: "variable-scale decimal",
	KindString: "string", KindBytes: "bytes", KindDate: "date", KindTime: "time", KindTimestamp: "timestamp",
	KindTimestampTZ: "timestamptz", KindTimeTZ: "timetz", KindJSON: "json", KindUUID: "uuid", KindEnum: "enum",
	KindEnumSet: "set", KindBits: "bits", KindInterval: "interval", KindXML: "xml", KindYear: "year",
	KindArray: "array", KindStruct: "struct",
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
		t.Precision != o.Precision || t.DecimalScale != o.DecimalScale {
		return false
	}
	if (t.Elem == nil) != (o.Elem == nil) {
		return false
	}
	return t.Elem == nil || t.Elem.equalShape(o.Elem)
}

// ColumnSpec is one column of a target table.
type ColumnSpec struct {
	Name string
	Type ColumnType
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

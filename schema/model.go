// Package schema describes captured tables in a database-neutral way and
// turns them into Debezium-compatible Avro schemas and Avro binary payloads.
//
// Connectors describe a table once (Table) and then hand rows as []any whose
// elements follow the Go representation of each column's Kind (see Kind).
// The package builds the <topic>.Key and <topic>.Envelope schemas exactly as
// Debezium with the Confluent AvroConverter does, and encodes rows without
// reflection on the hot path.
package schema

// Kind is the Avro (Kafka Connect) primitive a column is carried as.
// The Go value a connector passes for each kind is fixed:
//
//	Boolean -> bool
//	Int8, Int16, Int32 -> int32 (Connect int8/int16 are Avro "int")
//	Int64   -> int64
//	Float32 -> float32
//	Float64 -> float64
//	String  -> string
//	Bytes   -> []byte (Decimal: big-endian two's complement unscaled value)
//	Array   -> []any (elements follow Items)
//	Struct  -> []any (elements follow Fields, in order)
//
// nil is null and is only valid for Optional columns.
type Kind uint8

const (
	Boolean Kind = iota + 1
	Int8
	Int16
	Int32
	Int64
	Float32
	Float64
	String
	Bytes
	Array
	Struct
)

// Type is a Kafka Connect schema: a primitive kind plus the optional semantic
// name (connect.name, e.g. "io.debezium.time.MicroTimestamp" or
// "org.apache.kafka.connect.data.Decimal"), version and parameters.
type Type struct {
	Kind Kind
	// Name is the Connect logical/semantic type name; empty for plain primitives.
	Name    string
	Version int
	// Params become connect.parameters (and, for Decimal, the Avro logicalType
	// decimal attributes). Debezium's __debezium.source.column.type,
	// __debezium.source.column.length and __debezium.source.column.scale live here.
	Params map[string]string
	// Items is the element type of an Array.
	Items *Type
	// Fields are the members of a Struct (e.g. io.debezium.data.geometry.Geometry).
	Fields []Column
	// StructName is the Avro record name of a Struct type.
	StructName string

	// Doc is the Connect schema doc (connect.doc), e.g. "Variable scaled
	// decimal" on io.debezium.data.VariableScaleDecimal.
	Doc string
	// ItemsOptional makes the elements of an Array nullable (Avro items
	// ["null",T]); Debezium's PostgreSQL arrays have optional elements.
	ItemsOptional bool
	// Default is the Connect schema default value (connect.default and the
	// Avro field default), in the Go representation of Kind; nil means none.
	// Only primitive kinds (not Array or Struct) may have one. An Optional
	// column with a Default becomes the Avro union [T,"null"], as the
	// Confluent AvroConverter writes it.
	Default any
}

// Column is one field of a row.
type Column struct {
	Name     string
	Type     Type
	Optional bool
	// An Optional column gets the Avro default null, so adding it is a
	// BACKWARD-compatible change; a non-null default lives in Type.Default.
}

// Table is a captured table as one topic sees it.
type Table struct {
	// Topic is the Kafka topic; it is also the Avro namespace of Key, Value and Envelope.
	Topic   string
	Columns []Column
	// Key lists indexes into Columns of the primary-key (or key_columns) columns.
	// Empty means the table has no key: records carry a null key.
	Key []int
}

// Op is the Debezium operation code.
type Op byte

const (
	OpCreate   Op = 'c'
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpRead     Op = 'r'
	OpTruncate Op = 't'
)

// UnavailableValue is Debezium's default unavailable.value.placeholder, sent
// for an unchanged TOASTed column that PostgreSQL did not include in the WAL.
const UnavailableValue = "__debezium_unavailable_value"

package schema

// SourceBlock is the connector-specific Debezium "source" record, e.g.
// io.debezium.connector.postgresql.Source with version, connector, name,
// ts_ms, snapshot, db, sequence, schema, table, txId, lsn, xmin.
type SourceBlock struct {
	// Name is the full Avro/Connect name, e.g. "io.debezium.connector.postgresql.Source".
	Name string
	// Version is the Connect schema version (connect.version); 0 omits it.
	Version int
	Fields  []Column
}

// Envelope is one change event for a table.
type Envelope struct {
	Op     Op
	Before []any // nil when absent (create, read, truncate)
	After  []any // nil when absent (delete, truncate)
	// Source holds the values of SourceBlock.Fields, in order.
	Source []any
	// TsUs is the processing time in microseconds; ts_ms, ts_us and ts_ns derive from it.
	TsUs int64
	// Txn is the optional transaction block; nil writes null.
	Txn *TxnBlock
}

// TxnBlock is Debezium's event.block transaction metadata.
type TxnBlock struct {
	ID                  string
	TotalOrder          int64
	DataCollectionOrder int64
}

// Codec encodes the key and envelope of one version of a table's schema into
// the Confluent wire format (magic 0, 4-byte big-endian schema id, Avro binary).
// A Codec keeps no state between calls: once SetIDs has run, AppendKey and
// AppendEnvelope are safe for concurrent use (snapshot workers encode one
// table on several goroutines). SetIDs must not run concurrently with them.
//
// See codec_impl.go for the implementation.
//
//	func NewCodec(t *Table, src *SourceBlock) (*Codec, error)
//	func (c *Codec) KeySchema() string    // "" when the table has no key
//	func (c *Codec) ValueSchema() string  // the <topic>.Envelope schema JSON
//	func (c *Codec) SetIDs(keyID, valueID int)
//	func (c *Codec) AppendKey(dst []byte, row []any) ([]byte, error)     // row is a full row; key columns picked by Table.Key; nil,nil when no key
//	func (c *Codec) AppendEnvelope(dst []byte, e *Envelope) ([]byte, error)
//
// Values must have exactly the Go type of their Kind (see Kind); anything
// else is a *ValueError naming topic, part, column and the Go type received.
// nil in a required column writes the Connect default, or else the type's
// zero value, as Debezium does for the columns PostgreSQL leaves out of a
// before image under REPLICA IDENTITY DEFAULT. nil in an optional column is
// always null, even when the column has a default.
type Codec struct {
	topic       string
	keySchema   string
	valueSchema string
	keyHdr      [5]byte
	valueHdr    [5]byte

	cols []colPlan // one per Table.Columns
	key  []int     // indexes into cols
	src  []colPlan // one per SourceBlock.Fields
}

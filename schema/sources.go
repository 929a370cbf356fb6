package schema

// SnapshotAllowed is the allowed list of the source block's snapshot enum in
// Debezium 3.x (SnapshotRecord); 2.x wrote "true,last,false,incremental".
const SnapshotAllowed = "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"

// commonSourceFields are Debezium's common source-info fields
// (SchemaFactory.sourceInfoSchemaBuilder), in order:
//
//	version string, connector string, name string, ts_ms int64,
//	snapshot string|nil (io.debezium.data.Enum, default "false"),
//	db string, sequence string|nil, ts_us int64|nil, ts_ns int64|nil
func commonSourceFields() []Column {
	return []Column{
		{Name: "version", Type: Type{Kind: String}},
		{Name: "connector", Type: Type{Kind: String}},
		{Name: "name", Type: Type{Kind: String}},
		{Name: "ts_ms", Type: Type{Kind: Int64}},
		{Name: "snapshot", Optional: true, Type: Type{Kind: String, Name: EnumName, Version: 1,
			Params: map[string]string{EnumAllowedParam: SnapshotAllowed}, Default: "false"}},
		{Name: "db", Type: Type{Kind: String}},
		{Name: "sequence", Type: Type{Kind: String}, Optional: true},
		{Name: "ts_us", Type: Type{Kind: Int64}, Optional: true},
		{Name: "ts_ns", Type: Type{Kind: Int64}, Optional: true},
	}
}

// Indexes of the common fields in Envelope.Source, for both source blocks.
const (
	SrcVersion = iota
	SrcConnector
	SrcName
	SrcTsMs
	SrcSnapshot
	SrcDB
	SrcSequence
	SrcTsUs
	SrcTsNs
)

// Indexes of the PostgreSQL-specific fields in Envelope.Source.
const (
	PGSrcSchema    = SrcTsNs + 1 + iota // string
	PGSrcTable                          // string
	PGSrcTxID                           // int64|nil
	PGSrcLSN                            // int64|nil
	PGSrcXmin                           // int64|nil
	PGSrcOrigin                         // string|nil
	PGSrcOriginLSN                      // int64|nil
)

// PostgresSource is Debezium 3.6's io.debezium.connector.postgresql.Source
// (PostgresSourceInfoStructMaker): the common fields, then schema, table,
// txId, lsn, xmin, origin, origin_lsn. origin and origin_lsn are the
// replication origin of the transaction (pgoutput's ORIGIN message), null
// when it has none. It returns a fresh value each call.
func PostgresSource() *SourceBlock {
	f := commonSourceFields()
	f = append(f,
		Column{Name: "schema", Type: Type{Kind: String}},
		Column{Name: "table", Type: Type{Kind: String}},
		Column{Name: "txId", Type: Type{Kind: Int64}, Optional: true},
		Column{Name: "lsn", Type: Type{Kind: Int64}, Optional: true},
		Column{Name: "xmin", Type: Type{Kind: Int64}, Optional: true},
		Column{Name: "origin", Type: Type{Kind: String}, Optional: true},
		Column{Name: "origin_lsn", Type: Type{Kind: Int64}, Optional: true},
	)
	return &SourceBlock{Name: "io.debezium.connector.postgresql.Source", Version: 1, Fields: f}
}

// Indexes of the MySQL-specific fields in Envelope.Source.
const (
	MySQLSrcTable    = SrcTsNs + 1 + iota // string|nil
	MySQLSrcServerID                      // int64
	MySQLSrcGTID                          // string|nil
	MySQLSrcFile                          // string
	MySQLSrcPos                           // int64
	MySQLSrcRow                           // int32
	MySQLSrcThread                        // int64|nil
	MySQLSrcQuery                         // string|nil
)

// MySQLSource is Debezium 3.x's io.debezium.connector.mysql.Source: the common
// fields, then table, server_id, gtid, file, pos, row, thread, query. It
// returns a fresh value each call.
func MySQLSource() *SourceBlock {
	f := commonSourceFields()
	f = append(f,
		Column{Name: "table", Type: Type{Kind: String}, Optional: true},
		Column{Name: "server_id", Type: Type{Kind: Int64}},
		Column{Name: "gtid", Type: Type{Kind: String}, Optional: true},
		Column{Name: "file", Type: Type{Kind: String}},
		Column{Name: "pos", Type: Type{Kind: Int64}},
		Column{Name: "row", Type: Type{Kind: Int32}},
		Column{Name: "thread", Type: Type{Kind: Int64}, Optional: true},
		Column{Name: "query", Type: Type{Kind: String}, Optional: true},
	)
	return &SourceBlock{Name: "io.debezium.connector.mysql.Source", Version: 1, Fields: f}
}

// Debezium's source.snapshot values (SnapshotRecord).
const (
	SnapshotFirst                 = "first"
	SnapshotFirstInDataCollection = "first_in_data_collection"
	SnapshotTrue                  = "true"
	SnapshotLastInDataCollection  = "last_in_data_collection"
	SnapshotLast                  = "last"
	SnapshotFalse                 = "false"
)

// SnapshotMarker is the source.snapshot value of a snapshot row, as
// Debezium 3.6's RelationalSnapshotChangeEventSource.SnapshotMarkerResolver
// picks it: the last row of the whole snapshot is "last", else its first
// row "first", else a table's last row "last_in_data_collection", else a
// table's first row "first_in_data_collection", else "true". A table of
// one row is thus "last_in_data_collection" (or "first"/"last").
func SnapshotMarker(firstInSnapshot, lastInSnapshot, firstInTable, lastInTable bool) string {
	switch {
	case lastInSnapshot:
		return SnapshotLast
	case firstInSnapshot:
		return SnapshotFirst
	case lastInTable:
		return SnapshotLastInDataCollection
	case firstInTable:
		return SnapshotFirstInDataCollection
	}
	return SnapshotTrue
}

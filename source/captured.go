package source

// CapturedTable is a table a source connector captures, named as the
// connector resolves its `tables` setting, with the topic its changes go to.
// Tools that compare a source with its copies (tributary verify) list the
// captured tables through the connector's own discovery, so they see
// exactly what the connector sends: a PostgreSQL partition is not listed
// (its changes go to the partitioned root's topic), a view is not listed.
type CapturedTable struct {
	Schema string // PostgreSQL schema, MySQL database
	Table  string
	Topic  string
	// KeyColumns are the message-key columns configured for a table
	// without a primary key (key_columns); nil when the primary key is used.
	KeyColumns []string
}

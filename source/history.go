package source

import "context"

// HistoryStore is an append-only, never-compacted record of a connector's
// schema history (MySQL DDL with positions). Records must survive as long as
// any offset may point before them.
type HistoryStore interface {
	// Append stores one record durably (acknowledged by the log) before returning.
	Append(ctx context.Context, key, value []byte) error
	// ReadAll calls fn for every stored record, in append order.
	ReadAll(ctx context.Context, fn func(key, value []byte) error) error
}

// HistoryUser is implemented by connectors that keep a schema history; the
// worker gives them a store on the topic they name before Run.
type HistoryUser interface {
	SetHistory(HistoryStore)
	HistoryTopic() string
}

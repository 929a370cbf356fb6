package mysql

// Replay support of the MySQL/MariaDB sink: a shadow copy is built in tables
// "<table>__replay" of the same database, then swapped in with one
// RENAME TABLE statement (atomic for all tables: readers see the old copy or
// the new one). MySQL commits DDL implicitly, so the offsets rows move in a
// transaction right after the rename; if the process dies between the two,
// the live offsets are older than the new copy, and the worker re-applies
// the tail of the log, which is harmless (re-delivery is idempotent).

import (
	"context"
	"fmt"
	"strings"

	"github.com/tributary-cdc/tributary/sink"
)

// ReplayTableSuffix names a shadow table.
const ReplayTableSuffix = "__replay"

// ReplayDeleteOffsets implements sink.ReplayTarget.
func (t *SinkTarget) ReplayDeleteOffsets(ctx context.Context, tx sink.Tx, name string) error {
	x, ok := tx.(*sinkTx)
	if !ok {
		return fmt.Errorf("mysql sink: transaction is %T, not one of this target", tx)
	}
	return x.exec(ctx, "DELETE FROM "+t.offsetsTable()+" WHERE sink_name = ?", name)
}

// ReplayShadow implements sink.ReplayTarget: the shadow shares the live
// target's connections.
func (t *SinkTarget) ReplayShadow(context.Context) (sink.ShadowTarget, error) {
	return replayShadow{t}, nil
}

type replayShadow struct{ *SinkTarget }

func (replayShadow) Connect(context.Context) error { return nil }
func (replayShadow) Close() error                  { return nil }

func (replayShadow) ReplayShadowName(schema, name string) (string, string) {
	return schema, name + ReplayTableSuffix
}

func replayIdent(schema, name string) string {
	if schema == "" {
		return sinkQuote(name)
	}
	return sinkQuote(schema) + "." + sinkQuote(name)
}

func (s replayShadow) ReplayDropTable(ctx context.Context, schema, name string) error {
	id := replayIdent(schema, name)
	delete(s.tables, replayQName(schema, name))
	if _, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+id); err != nil {
		return fmt.Errorf("target MySQL %s: dropping %s: %w", s.where, id, err)
	}
	return nil
}

func (s replayShadow) replayExists(ctx context.Context, schema, name string) (bool, error) {
	q := "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	args := []any{name}
	if schema != "" {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
		args = []any{schema, name}
	}
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("target MySQL %s: looking up %s: %w", s.where, replayIdent(schema, name), err)
	}
	return n > 0, nil
}

func (s replayShadow) ReplaySwap(ctx context.Context, liveSink, shadowSink string, tables []sink.ShadowTable) error {
	var renames, drops []string
	for _, st := range tables {
		ok, err := s.replayExists(ctx, st.ShadowSchema, st.ShadowName)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		live, shadow := replayIdent(st.Schema, st.Name), replayIdent(st.ShadowSchema, st.ShadowName)
		old := replayIdent(st.Schema, st.Name+"__old")
		if _, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+old); err != nil {
			return fmt.Errorf("target MySQL %s: dropping %s: %w", s.where, old, err)
		}
		liveExists, err := s.replayExists(ctx, st.Schema, st.Name)
		if err != nil {
			return err
		}
		if liveExists {
			renames = append(renames, live+" TO "+old)
			drops = append(drops, old)
		}
		renames = append(renames, shadow+" TO "+live)
		delete(s.tables, replayQName(st.Schema, st.Name))
		delete(s.tables, replayQName(st.ShadowSchema, st.ShadowName))
	}
	if len(renames) > 0 {
		if _, err := s.db.ExecContext(ctx, "RENAME TABLE "+strings.Join(renames, ", ")); err != nil {
			return fmt.Errorf("target MySQL %s: swapping the shadow tables in: %w", s.where, err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("target MySQL %s: %w", s.where, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.offsetsTable()+" WHERE sink_name = ?", liveSink); err != nil {
		return fmt.Errorf("target MySQL %s: moving offsets rows: %w", s.where, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+s.offsetsTable()+" SET sink_name = ? WHERE sink_name = ?", liveSink, shadowSink); err != nil {
		return fmt.Errorf("target MySQL %s: moving offsets rows: %w", s.where, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("target MySQL %s: moving offsets rows: %w", s.where, err)
	}
	for _, d := range drops {
		if _, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+d); err != nil {
			s.log.Warn("dropping the replaced table failed; drop it by hand", "table", d, "err", err)
		}
	}
	return nil
}

// replayQName is the key of the target's table cache (TableSpec.QualifiedName).
func replayQName(schema, name string) string {
	return (&sink.TableSpec{Schema: schema, Name: name}).QualifiedName()
}

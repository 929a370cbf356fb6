package postgres

// Replay support of the PostgreSQL sink: a shadow copy is built in a schema
// "<schema>__tributary_replay" beside each live schema (a table without a
// schema gets the prefix "tributary_replay__"), then swapped in with
// DROP TABLE / ALTER TABLE ... SET SCHEMA and the offsets rows, all in one
// transaction: PostgreSQL DDL is transactional, so readers see the old copy
// or the new one.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-cdc/tributary/sink"
)

// ReplaySchemaSuffix names the schema a shadow copy is built in.
const ReplaySchemaSuffix = "__tributary_replay"

// ReplayDeleteOffsets implements sink.ReplayTarget.
func (t *SinkTarget) ReplayDeleteOffsets(ctx context.Context, tx sink.Tx, name string) error {
	x, ok := tx.(*sinkTx)
	if !ok {
		return fmt.Errorf("postgres sink: transaction is %T, not one of this target", tx)
	}
	return x.execArgs(ctx, t.offsets.Delete(), name)
}

// ReplayShadow implements sink.ReplayTarget: the shadow shares the live
// target's connection.
func (t *SinkTarget) ReplayShadow(context.Context) (sink.ShadowTarget, error) {
	return replayShadow{t}, nil
}

type replayShadow struct{ *SinkTarget }

func (replayShadow) Connect(context.Context) error { return nil }
func (replayShadow) Close() error                  { return nil }

func (replayShadow) ReplayShadowName(schema, name string) (string, string) {
	if schema == "" {
		return "", "tributary_replay__" + name
	}
	return schema + ReplaySchemaSuffix, name
}

func (s replayShadow) ReplayDropTable(ctx context.Context, schema, name string) error {
	id := pgx.Identifier{name}
	if schema != "" {
		id = pgx.Identifier{schema, name}
	}
	delete(s.tables, replayQName(schema, name))
	if _, err := s.conn.Exec(ctx, "DROP TABLE IF EXISTS "+id.Sanitize()); err != nil {
		return fmt.Errorf("target PostgreSQL %s: dropping %s: %w", s.where, id.Sanitize(), err)
	}
	return nil
}

func (s replayShadow) ReplaySwap(ctx context.Context, liveSink, shadowSink string, tables []sink.ShadowTable) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("target PostgreSQL %s: %w", s.where, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	exec := func(q string, args ...any) error {
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("target PostgreSQL %s: %s: %w", s.where, q, err)
		}
		return nil
	}
	if err := exec(sinkSyncCommit); err != nil {
		return err
	}
	schemas := map[string]bool{}
	for _, st := range tables {
		live, shadow := pgx.Identifier{st.Name}, pgx.Identifier{st.ShadowName}
		if st.Schema != "" {
			live = pgx.Identifier{st.Schema, st.Name}
		}
		if st.ShadowSchema != "" {
			shadow = pgx.Identifier{st.ShadowSchema, st.ShadowName}
			schemas[st.ShadowSchema] = true
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", shadow.Sanitize()).Scan(&exists); err != nil {
			return fmt.Errorf("target PostgreSQL %s: looking up %s: %w", s.where, shadow.Sanitize(), err)
		}
		if !exists {
			continue
		}
		if st.Schema != "" {
			if err := exec("CREATE SCHEMA IF NOT EXISTS " + sinkQuote(st.Schema)); err != nil {
				return err
			}
		}
		if err := exec("DROP TABLE IF EXISTS " + live.Sanitize()); err != nil {
			return err
		}
		if st.ShadowSchema != st.Schema && st.Schema != "" {
			if err := exec("ALTER TABLE " + shadow.Sanitize() + " SET SCHEMA " + sinkQuote(st.Schema)); err != nil {
				return err
			}
		} else if err := exec("ALTER TABLE " + shadow.Sanitize() + " RENAME TO " + sinkQuote(st.Name)); err != nil {
			return err
		}
		delete(s.tables, replayQName(st.Schema, st.Name))
		delete(s.tables, replayQName(st.ShadowSchema, st.ShadowName))
	}
	if err := exec(s.offsets.Delete(), liveSink); err != nil {
		return err
	}
	if err := exec(s.offsets.Rename(), liveSink, shadowSink); err != nil {
		return err
	}
	for sch := range schemas {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1", sch).Scan(&n); err != nil {
			return fmt.Errorf("target PostgreSQL %s: %w", s.where, err)
		}
		if n == 0 {
			if err := exec("DROP SCHEMA IF EXISTS " + sinkQuote(sch)); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("target PostgreSQL %s: committing the swap: %w", s.where, err)
	}
	return nil
}

// replayQName is the key of the target's table cache (TableSpec.QualifiedName).
func replayQName(schema, name string) string {
	return (&sink.TableSpec{Schema: schema, Name: name}).QualifiedName()
}

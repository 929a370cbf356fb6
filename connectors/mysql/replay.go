package mysql

// Replay support of the MySQL/MariaDB sink.
//
// A shadow copy is built in tables "<table>__replay" beside the live ones,
// and its offsets go to a table of its own in the offsets database,
// tributary_offsets__replay_<h> (h: a hash of the sink name), written in
// the same InnoDB transactions as the shadow rows. The swap is ONE
// statement:
//
//	RENAME TABLE live TO live__old, live__replay TO live, ...,
//	             tributary_offsets__replay_<h> TO tributary_offsets__swap_<h>
//
// after which the swap table's rows replace the sink's rows in
// tributary_offsets (one transaction) and the swap table and the old tables
// are dropped.
//
// Why readers never see a half-built copy: the shadow tables have other
// names until the RENAME, and a multi-table RENAME TABLE is atomic: other
// sessions wait for it and then see every new table, never a mix (MariaDB
// and MySQL document this).
//
// Why the offsets always agree with the live tables, whatever instant the
// process (or the server, with MariaDB >= 10.6 or MySQL 8.0, whose DDL is
// atomic and crash-safe) dies at. The rule: while tributary_offsets__swap_<h>
// exists, it holds the sink's offsets; otherwise tributary_offsets does.
// Every opening of the target (SinkTarget.Connect: the worker's start, the
// next replay, a backfill) first finishes a pending swap, before any batch
// is applied. Then:
//   - before the RENAME, the live tables and the sink's rows in
//     tributary_offsets are untouched; the shadow and its offsets table are
//     leftovers the next replay drops;
//   - the RENAME moves the new tables in and turns the shadow offsets into
//     the swap table in one atomic step: the new tables and their offsets
//     appear together;
//   - the merge transaction commits the swap table's rows into
//     tributary_offsets; dying before it, nothing changed; dying after it,
//     the next Connect merges the same rows again (no batch is applied
//     between the merge and the DROP of the swap table), which changes
//     nothing;
//   - dying after the DROP leaves only the __old tables, which the next
//     replay drops.
//
// With MySQL 5.7 (DDL not crash-safe) the same holds for a crash of the
// process, not of the server.

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/tributary-cdc/tributary/sink"
)

// ReplayTableSuffix names a shadow table.
const ReplayTableSuffix = "__replay"

// replayOffsetsName is the offsets table of a sink's replay at a stage:
// "replay" while it is built, "swap" once swapped in.
func replayOffsetsName(sinkName, stage string) string {
	h := fnv.New64a()
	h.Write([]byte(sinkName))
	return fmt.Sprintf("%s__%s_%016x", sink.OffsetsTable, stage, h.Sum64())
}

func (t *SinkTarget) replayOffsetsTable(sinkName, stage string) string {
	return sinkQuote(t.offsetsDB) + "." + sinkQuote(replayOffsetsName(sinkName, stage))
}

// finishSwap completes a swap that moved the new tables in: the rows of
// the swap table replace sinkName's rows in tributary_offsets, then the
// swap table goes. Doing it twice is harmless, see above.
func (t *SinkTarget) finishSwap(ctx context.Context, sinkName string) error {
	name := replayOffsetsName(sinkName, "swap")
	var n int
	if err := t.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
		t.offsetsDB, name).Scan(&n); err != nil {
		return fmt.Errorf("looking up %s.%s: %w", t.offsetsDB, name, err)
	}
	if n == 0 {
		return nil
	}
	swap := t.replayOffsetsTable(sinkName, "swap")
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("moving the offsets of the replayed copy from %s: %w", swap, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, t.offsets.Delete(), sinkName); err != nil {
		return fmt.Errorf("moving the offsets of the replayed copy from %s: %w", swap, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+t.offsets.Table+" (sink_name, topic, kafka_partition, next_offset, updated_at) "+
		"SELECT ?, topic, kafka_partition, next_offset, updated_at FROM "+swap, sinkName); err != nil {
		return fmt.Errorf("moving the offsets of the replayed copy from %s: %w", swap, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("moving the offsets of the replayed copy from %s: %w", swap, err)
	}
	if err := t.step(ctx, "merged"); err != nil {
		return err
	}
	if _, err := t.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+swap); err != nil {
		return fmt.Errorf("dropping %s: %w", swap, err)
	}
	t.log.Info("offsets of the replayed copy are the sink's", "sink", sinkName)
	return nil
}

// step lets tests stop a swap at a given point, as a crash would.
func (t *SinkTarget) step(ctx context.Context, name string) error {
	if t.replayStep == nil {
		return nil
	}
	return t.replayStep(ctx, name)
}

// ReplayDeleteOffsets implements sink.ReplayTarget: tx's target is the live
// one (in place) or the shadow, each with its own offsets table.
func (t *SinkTarget) ReplayDeleteOffsets(ctx context.Context, tx sink.Tx, name string) error {
	x, ok := tx.(*sinkTx)
	if !ok {
		return fmt.Errorf("mysql sink: transaction is %T, not one of this target", tx)
	}
	return x.exec(ctx, x.t.offsets.Delete(), name)
}

// ReplayShadow implements sink.ReplayTarget: the shadow shares the live
// target's connections and writes its offsets to a new table of its own.
func (t *SinkTarget) ReplayShadow(ctx context.Context) (sink.ShadowTarget, error) {
	sh := &SinkTarget{name: t.name, cfg: t.cfg, log: t.log, db: t.db, where: t.where, offsetsDB: t.offsetsDB,
		tables: map[string]*sinkTableInfo{}, replayStep: t.replayStep, mariadb: t.mariadb,
		offsets: sinkOffsetsSQL(t.replayOffsetsTable(t.name, "replay"))}
	if _, err := t.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+sh.offsets.Table); err != nil {
		return nil, fmt.Errorf("target MySQL %s: dropping %s left by an earlier replay: %w", t.where, sh.offsets.Table, err)
	}
	if _, err := t.db.ExecContext(ctx, sh.offsets.CreateTable()); err != nil {
		return nil, fmt.Errorf("target MySQL %s: creating %s: %w", t.where, sh.offsets.Table, err)
	}
	return replayShadow{SinkTarget: sh, live: t}, nil
}

type replayShadow struct {
	*SinkTarget
	live *SinkTarget
}

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

// ReplaySwap implements sink.ShadowTarget; see the top of the file.
func (s replayShadow) ReplaySwap(ctx context.Context, liveSink, _ string, tables []sink.ShadowTable) error {
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
		for _, c := range []*SinkTarget{s.SinkTarget, s.live} {
			delete(c.tables, replayQName(st.Schema, st.Name))
			delete(c.tables, replayQName(st.ShadowSchema, st.ShadowName))
		}
	}
	renames = append(renames, s.offsets.Table+" TO "+s.live.replayOffsetsTable(liveSink, "swap"))
	if _, err := s.db.ExecContext(ctx, "RENAME TABLE "+strings.Join(renames, ", ")); err != nil {
		return fmt.Errorf("target MySQL %s: swapping the shadow tables in: %w", s.where, err)
	}
	if err := s.step(ctx, "renamed"); err != nil {
		return err
	}
	if err := s.live.finishSwap(ctx, liveSink); err != nil {
		return fmt.Errorf("target MySQL %s: %w", s.where, err)
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

package sqlite

// Replay support of the SQLite sink: the shadow copy is a new file
// "<path>.replay" (any leftover of an interrupted replay is deleted first),
// which is renamed over the live file once complete. The offsets rows move
// to the live sink name inside the new file before the rename, so the file
// that appears at <path> always holds matching rows and offsets.
//
// Before the rename the live file is switched out of WAL mode, which needs
// every other connection to it closed (busy_timeout applies): a reader
// holding it open would otherwise pair the new file with the old -wal.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tributary-cdc/tributary/sink"
)

// ReplayFileSuffix names the shadow file.
const ReplayFileSuffix = ".replay"

// ReplayDeleteOffsets implements sink.ReplayTarget.
func (t *Target) ReplayDeleteOffsets(ctx context.Context, tx sink.Tx, name string) error {
	x, ok := tx.(*txn)
	if !ok {
		return fmt.Errorf("sqlite sink: transaction is %T, not one of this target", tx)
	}
	return x.exec(ctx, offsetsSQL.Delete(), name)
}

// ReplayShadow implements sink.ReplayTarget.
func (t *Target) ReplayShadow(context.Context) (sink.ShadowTarget, error) {
	cfg := t.cfg
	cfg.Path = t.cfg.Path + ReplayFileSuffix
	for _, p := range []string{cfg.Path, cfg.Path + "-wal", cfg.Path + "-shm", cfg.Path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing %s left by an earlier replay: %w", p, err)
		}
	}
	return &replayShadow{Target: NewTarget(t.name, cfg, t.log), live: t}, nil
}

type replayShadow struct {
	*Target
	live *Target
}

func (*replayShadow) ReplayShadowName(schema, name string) (string, string) { return schema, name }

// ReplayDropTable: the shadow file is new, nothing to drop.
func (*replayShadow) ReplayDropTable(context.Context, string, string) error { return nil }

func (s *replayShadow) ReplaySwap(ctx context.Context, liveSink, shadowSink string, _ []sink.ShadowTable) error {
	if s.db == nil {
		return errors.New("sqlite shadow copy is not open")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite %s: %w", s.cfg.Path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, offsetsSQL.Delete(), liveSink); err != nil {
		return fmt.Errorf("sqlite %s: moving offsets rows: %w", s.cfg.Path, err)
	}
	if _, err := tx.ExecContext(ctx, offsetsSQL.Rename(), liveSink, shadowSink); err != nil {
		return fmt.Errorf("sqlite %s: moving offsets rows: %w", s.cfg.Path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite %s: moving offsets rows: %w", s.cfg.Path, err)
	}
	// Fold the WAL into the file so the rename moves everything.
	if _, err := s.db.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return fmt.Errorf("sqlite %s: leaving WAL mode: %w", s.cfg.Path, err)
	}
	if err := s.Target.Close(); err != nil {
		return fmt.Errorf("sqlite %s: closing: %w", s.cfg.Path, err)
	}
	livePath := s.live.cfg.Path
	if s.live.db != nil {
		if _, err := s.live.db.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
			return fmt.Errorf("sqlite %s: leaving WAL mode before the swap (close the other connections to the file): %w", livePath, err)
		}
		if err := s.live.Close(); err != nil {
			return fmt.Errorf("sqlite %s: closing: %w", livePath, err)
		}
	}
	if err := os.Rename(s.cfg.Path, livePath); err != nil {
		return fmt.Errorf("replacing %s by %s: %w", livePath, s.cfg.Path, err)
	}
	if d, err := os.Open(filepath.Dir(livePath)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

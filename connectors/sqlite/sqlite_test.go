package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-cdc/tributary/sink"
)

func TestConfigValidate(t *testing.T) {
	d, ok := sink.Lookup("sqlite")
	if !ok {
		t.Fatal("sqlite sink driver not registered")
	}
	cfg := d.NewConfig().(*Config)
	if cfg.Synchronous != "normal" {
		t.Fatalf("default synchronous = %q", cfg.Synchronous)
	}
	err := cfg.Validate()
	var fe *sink.FieldError
	if !errors.As(err, &fe) || fe.Key != "path" {
		t.Fatalf("missing path: %v", err)
	}
	cfg.Path, cfg.Synchronous = "x.db", "sometimes"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "synchronous:") {
		t.Fatalf("bad synchronous: %v", err)
	}
	cfg.Synchronous = "FULL"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConnectErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be.
	bad := filepath.Join(dir, "isadir")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	tg := NewTarget("s", Config{Path: bad}, nil)
	err := tg.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("want an error naming %s, got %v", bad, err)
	}
	// A folder that cannot be created.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tg = NewTarget("s", Config{Path: filepath.Join(file, "sub", "x.db")}, nil)
	if err := tg.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "creating folder") {
		t.Fatalf("want a folder error, got %v", err)
	}
}

func TestApplyAndRejected(t *testing.T) {
	ctx := context.Background()
	tg := NewTarget("s", Config{Path: filepath.Join(t.TempDir(), "c.db"), Synchronous: "full"}, nil)
	if err := tg.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	var mode string
	if err := tg.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	id := &sink.ColumnSpec{Name: "id", Type: sink.ColumnType{Kind: sink.KindInt64}, Key: true}
	k2 := &sink.ColumnSpec{Name: "k2", Type: sink.ColumnType{Kind: sink.KindString}, Key: true}
	v := &sink.ColumnSpec{Name: "v", Type: sink.ColumnType{Kind: sink.KindString}, Optional: true}
	spec := &sink.TableSpec{Name: "t", Columns: []*sink.ColumnSpec{id, k2, v}, Key: []*sink.ColumnSpec{id, k2}}
	if err := tg.EnsureTable(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := tg.EnsureTable(ctx, spec); err != nil {
		t.Fatalf("EnsureTable is not idempotent: %v", err)
	}
	cs := &sink.ColSet{Columns: []*sink.ColumnSpec{id, k2, v}}
	var changes []sink.Change
	for i := range int64(1200) { // several statements' worth
		changes = append(changes, sink.Change{Op: sink.OpUpsert, Key: []any{i, "a"}, Cols: cs, Row: []any{i, "a", "v1"}})
	}
	tx, err := tg.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(ctx, spec, changes); err != nil {
		t.Fatal(err)
	}
	// Composite-key deletes and an upsert over an existing row.
	var more []sink.Change
	for i := range int64(600) {
		more = append(more, sink.Change{Op: sink.OpDelete, Key: []any{i, "a"}})
	}
	more = append(more, sink.Change{Op: sink.OpUpsert, Key: []any{int64(1000), "a"}, Cols: cs, Row: []any{int64(1000), "a", "v2"}})
	if err := tx.Apply(ctx, spec, more); err != nil {
		t.Fatal(err)
	}
	if err := tx.StoreOffsets(ctx, "s", map[sink.TopicPartition]int64{{Topic: "x", Partition: 0}: 42}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	var v1000 string
	if err := tg.DB().QueryRow(`SELECT count(*), (SELECT v FROM t WHERE id = 1000) FROM t`).Scan(&n, &v1000); err != nil {
		t.Fatal(err)
	}
	if n != 600 || v1000 != "v2" {
		t.Fatalf("rows = %d, v(1000) = %q", n, v1000)
	}

	// A plain insert of an existing key is a rejected record.
	tx, _ = tg.Begin(ctx)
	err = tx.Apply(ctx, spec, []sink.Change{{Op: sink.OpInsert, Key: []any{int64(1000), "a"}, Cols: cs, Row: []any{int64(1000), "a", "dup"}}})
	if err == nil || !tg.Rejected(err) {
		t.Fatalf("duplicate insert: err %v, rejected %v", err, tg.Rejected(err))
	}
	// A value of a type SQLite has no form for is rejected too.
	err = tx.Apply(ctx, spec, []sink.Change{{Op: sink.OpUpsert, Key: []any{int64(1), "a"}, Cols: cs, Row: []any{int64(1), "a", struct{}{}}}})
	if err == nil || !tg.Rejected(err) || !strings.Contains(err.Error(), "column v") {
		t.Fatalf("bad value: err %v", err)
	}
	if tg.Rejected(errors.New("disk I/O error")) {
		t.Fatal("a generic error must not count as a rejected record")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	tx, _ = tg.Begin(ctx)
	offs, err := tx.LoadOffsets(ctx, "s")
	if err != nil || offs[sink.TopicPartition{Topic: "x", Partition: 0}] != 42 {
		t.Fatalf("offsets = %v, %v", offs, err)
	}
	_ = tx.Rollback(ctx)

	// A schema with a dot cannot be a SQLite table.
	if err := tg.EnsureTable(ctx, &sink.TableSpec{Schema: "public", Name: "x", Columns: spec.Columns}); err == nil || !strings.Contains(err.Error(), "no schemas") {
		t.Fatalf("dotted name: %v", err)
	}
}

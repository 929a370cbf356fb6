package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
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

// sqliteHarness runs the sink conformance suite on a SQLite file.
type sqliteHarness struct {
	path string
	db   *sql.DB
}

func (h *sqliteHarness) NewTarget(t *testing.T) sink.Target {
	return NewTarget("conformance", Config{Path: h.path}, sinktest.Logger())
}
func (h *sqliteHarness) TableNameFormat() string { return "${source.schema}_${source.table}" }
func (h *sqliteHarness) Table(schema, table string) string {
	return quote(schema + "_" + table)
}
func (h *sqliteHarness) OffsetsTable() string { return sink.OffsetsTable }

func (h *sqliteHarness) CreateNamespace(*testing.T, string) {}
func (h *sqliteHarness) WKBHex(col string) string           { return "lower(hex(" + quote(col) + "))" }
func (h *sqliteHarness) Text(col string) string             { return "CAST(" + quote(col) + " AS TEXT)" }
func (h *sqliteHarness) conn(t *testing.T) *sql.DB {
	if h.db == nil {
		if err := os.MkdirAll(filepath.Dir(h.path), 0o755); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", h.path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		h.db = db
	}
	return h.db
}
func (h *sqliteHarness) Query(t *testing.T, q string) []string {
	t.Helper()
	rows, err := h.conn(t).Query(q)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil
		}
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}
func (h *sqliteHarness) Exec(t *testing.T, q string) {
	t.Helper()
	if _, err := h.conn(t).Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
func (h *sqliteHarness) Nullable(t *testing.T, schema, table, col string) bool {
	t.Helper()
	var nn int
	err := h.conn(t).QueryRow(`SELECT "notnull" FROM pragma_table_info(?) WHERE name = ?`, schema+"_"+table, col).Scan(&nn)
	if err != nil {
		t.Fatalf("column %s of %s_%s: %v", col, schema, table, err)
	}
	return nn == 0
}

// CloseConns lets a replay swap the file in (sinktest.Releaser).
func (h *sqliteHarness) CloseConns() {
	if h.db != nil {
		h.db.Close()
		h.db = nil
	}
}

func TestConformance(t *testing.T) {
	h := &sqliteHarness{path: filepath.Join(t.TempDir(), "conf.db")}
	t.Cleanup(func() {
		if h.db != nil {
			h.db.Close()
		}
	})
	sinktest.Conformance(t, h)
}

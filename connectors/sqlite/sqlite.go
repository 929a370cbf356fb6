// Package sqlite is the SQLite sink: a service's embedded local copy, and the
// quickstart's default. It is pure Go (modernc.org/sqlite, no cgo).
//
// The database is one file in WAL mode, so readers never block the sink and
// never see a half-applied batch. Every batch and its offsets commit in one
// transaction (BEGIN IMMEDIATE).
//
// synchronous defaults to NORMAL: in WAL mode a crash of the process (kill -9)
// loses nothing that committed, and a power loss may roll back only the last
// batches, together with their offsets, which the sink then applies again.
// Set synchronous: full to also survive power loss without re-applying.
//
// Table names: SQLite has no schemas, so the default table_name_format is
// "${source.schema}_${source.table}" (e.g. public_customers) and a format
// producing a dot is an error.
//
// Type mapping (semantic type of the event -> declared SQLite type; value
// stored):
//
//	boolean                       BOOLEAN      0 / 1
//	int8, int16                   SMALLINT     integer
//	int32, year                   INTEGER      integer
//	int64                         BIGINT       integer
//	float32                       REAL         real
//	float64                       DOUBLE       real
//	decimal, numeric              TEXT         exact decimal text "12.30" (a NUMERIC column would round to 15 digits)
//	string, enum, set, xml, uuid  TEXT         text
//	json                          TEXT         JSON text (usable with json_extract)
//	bits                          TEXT         '0101'
//	bytes                         BLOB         bytes
//	date                          DATE         'YYYY-MM-DD'
//	time                          TIME         'HH:MM:SS[.ffffff]'
//	timestamp                     TIMESTAMP    'YYYY-MM-DD HH:MM:SS[.ffffff]'
//	timestamptz                   TIMESTAMPTZ  'YYYY-MM-DDTHH:MM:SS[.ffffff]Z' (UTC)
//	timetz                        TEXT         as sent, e.g. '10:15:30Z'
//	interval                      BIGINT       microseconds
//	array, struct                 TEXT         JSON
//	geometry, point               BLOB         the WKB (SRID not kept)
//
// Only key columns are declared NOT NULL: SQLite cannot drop a NOT NULL
// constraint later, and a column dropped at the source must become nullable.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tributary-cdc/tributary/sink"
)

func init() { sink.Register("sqlite", driver{}) }

// offsetsSQL spells the statements on tributary_offsets.
var offsetsSQL = sink.OffsetsSQL{Table: sink.OffsetsTable, TextType: "TEXT", TimeType: "TEXT"}

// Config is the sqlite sink's own configuration.
type Config struct {
	// Path of the database file; its folder is created if missing.
	Path string `yaml:"path" required:"true" desc:"SQLite database file of the copy; its folder is created if missing. The file is in WAL mode: readers never block the sink nor see a half-applied batch."`
	// Synchronous is "normal" (default) or "full"; see the package doc.
	Synchronous string `yaml:"synchronous" default:"normal" enum:"normal,full" desc:"PRAGMA synchronous. normal: a process crash loses nothing committed; a power loss may roll back the last batches together with their offsets, which are then applied again. full: also durable across power loss, slower."`
	// BusyTimeout is how long a write waits for another writer's lock.
	BusyTimeout time.Duration `yaml:"busy_timeout" default:"5s" desc:"How long a write waits for a lock held by another writer of the file."`
}

// Validate implements sink.Config.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Path) == "" {
		errs = append(errs, &sink.FieldError{Key: "path", Msg: "is required: the SQLite database file"})
	} else if strings.ContainsRune(c.Path, '?') {
		errs = append(errs, &sink.FieldError{Key: "path", Msg: fmt.Sprintf("%q must not contain '?'", c.Path)})
	}
	switch strings.ToLower(c.Synchronous) {
	case "", "normal", "full":
	default:
		errs = append(errs, &sink.FieldError{Key: "synchronous", Msg: fmt.Sprintf("%q: want normal or full", c.Synchronous)})
	}
	if c.BusyTimeout < 0 {
		errs = append(errs, &sink.FieldError{Key: "busy_timeout", Msg: "must not be negative"})
	}
	return errors.Join(errs...)
}

type driver struct{}

func (driver) NewConfig() sink.Config {
	return &Config{Synchronous: "normal", BusyTimeout: 5 * time.Second}
}

func (driver) Open(name string, cfg sink.Config, log *slog.Logger) (sink.Target, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("sqlite sink %s: config is %T, want *sqlite.Config", name, cfg)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return NewTarget(name, *c, log), nil
}

// Target is a SQLite database file being written by one sink.
type Target struct {
	name   string
	cfg    Config
	log    *slog.Logger
	db     *sql.DB
	tables map[string]*tableInfo
	// plan is reused by every Apply (calls never overlap).
	plan sink.Plan
}

type tableInfo struct {
	cols    map[string]bool
	notNull map[string]bool
	stmts   map[string]string // statement text cache by shape
}

// NewTarget builds a target; Connect opens the file.
func NewTarget(name string, cfg Config, log *slog.Logger) *Target {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Synchronous == "" {
		cfg.Synchronous = "normal"
	}
	if cfg.BusyTimeout == 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	return &Target{name: name, cfg: cfg, log: log, tables: map[string]*tableInfo{}}
}

// DB is the open database, for tests and tools (verify).
func (t *Target) DB() *sql.DB { return t.db }

func (t *Target) DefaultTableNameFormat() string { return "${source.schema}_${source.table}" }

func (t *Target) Connect(ctx context.Context) error {
	if err := createPrivate(t.cfg.Path); err != nil {
		return err
	}
	dsn := fmt.Sprintf("%s?_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=busy_timeout(%d)&_txlock=immediate",
		t.cfg.Path, strings.ToUpper(t.cfg.Synchronous), t.cfg.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("opening sqlite database %s: %w", t.cfg.Path, err)
	}
	// One writer: the sink is single-threaded and SQLite allows one writer.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("opening sqlite database %s: %w", t.cfg.Path, err)
	}
	_, err = db.ExecContext(ctx, offsetsSQL.CreateTable())
	if err != nil {
		db.Close()
		return fmt.Errorf("creating %s in sqlite database %s: %w", sink.OffsetsTable, t.cfg.Path, err)
	}
	t.db = db
	return nil
}

// createPrivate creates the database file 0600 (and missing folders 0700)
// before SQLite opens it, so the copy of production rows is readable by its
// owner only: SQLite would create it 0644, and it gives the -wal and -shm
// files the mode of the database file. An existing file keeps its mode, and
// the process umask still applies.
func createPrivate(path string) error {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating folder of sqlite database %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating sqlite database %s: %w", path, err)
	}
	return f.Close()
}

func (t *Target) Close() error {
	if t.db == nil {
		return nil
	}
	err := t.db.Close()
	t.db = nil
	return err
}

func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// columnType is the declared SQLite type of a column.
func columnType(ct *sink.ColumnType) string {
	switch ct.Kind {
	case sink.KindBool:
		return "BOOLEAN"
	case sink.KindInt8, sink.KindInt16:
		return "SMALLINT"
	case sink.KindInt32, sink.KindYear:
		return "INTEGER"
	case sink.KindInt64, sink.KindInterval:
		return "BIGINT"
	case sink.KindFloat32:
		return "REAL"
	case sink.KindFloat64:
		return "DOUBLE"
	case sink.KindBytes, sink.KindGeometry:
		return "BLOB"
	case sink.KindDate:
		return "DATE"
	case sink.KindTime:
		return "TIME"
	case sink.KindTimestamp:
		return "TIMESTAMP"
	case sink.KindTimestampTZ:
		return "TIMESTAMPTZ"
	default:
		return "TEXT"
	}
}

func (t *Target) EnsureTable(ctx context.Context, spec *sink.TableSpec) error {
	if spec.Schema != "" {
		return fmt.Errorf("table name %q has a dot, but SQLite has no schemas: use a table_name_format without '.', e.g. ${source.schema}_${source.table}", spec.Schema+"."+spec.Name)
	}
	info, err := t.loadTable(ctx, t.db, spec.Name)
	if err != nil {
		return err
	}
	if info == nil {
		var b strings.Builder
		b.WriteString("CREATE TABLE IF NOT EXISTS " + quote(spec.Name) + " (")
		for i, c := range spec.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(c.Name) + " " + columnType(&c.Type))
			if c.Key {
				b.WriteString(" NOT NULL")
			}
			def, err := defaultClause(c)
			if err != nil {
				return fmt.Errorf("creating table: %w", err)
			}
			b.WriteString(def)
		}
		if len(spec.Key) > 0 {
			b.WriteString(", PRIMARY KEY (")
			for i, c := range spec.Key {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(quote(c.Name))
			}
			b.WriteString(")")
		}
		b.WriteString(")")
		if _, err := t.db.ExecContext(ctx, b.String()); err != nil {
			return fmt.Errorf("creating table: %w", err)
		}
		t.log.Info("created table", "table", spec.Name, "columns", len(spec.Columns))
		t.tables[spec.Name] = nil
		_, err := t.loadTable(ctx, t.db, spec.Name)
		return err
	}
	for _, c := range spec.Columns {
		if !info.cols[c.Name] && c.FormerName != "" && info.cols[c.FormerName] {
			if _, err := t.db.ExecContext(ctx, "ALTER TABLE "+quote(spec.Name)+" RENAME COLUMN "+quote(c.FormerName)+" TO "+quote(c.Name)); err != nil {
				return fmt.Errorf("renaming column %s to %s: %w", c.FormerName, c.Name, err)
			}
			t.log.Info("renamed column to the source's spelling", "table", spec.Name, "was", c.FormerName, "now", c.Name)
			// Cached statements name the old column.
			delete(t.tables, spec.Name)
			info.cols[c.Name], info.notNull[c.Name] = true, info.notNull[c.FormerName]
			delete(info.cols, c.FormerName)
			info.stmts = map[string]string{}
		}
		if info.cols[c.Name] {
			if c.Optional && info.notNull[c.Name] && !c.Key {
				t.log.Warn("column is NOT NULL in the copy but optional in the events; SQLite cannot drop NOT NULL, rows without a value will be rejected",
					"table", spec.Name, "column", c.Name)
			}
			continue
		}
		// With a default the rows the copy holds read it, as the source's
		// rows did.
		def, err := defaultClause(c)
		if err != nil {
			return fmt.Errorf("adding column %s: %w", c.Name, err)
		}
		stmt := "ALTER TABLE " + quote(spec.Name) + " ADD COLUMN " + quote(c.Name) + " " + columnType(&c.Type) + def
		if _, err := t.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("adding column %s: %w", c.Name, err)
		}
		t.log.Info("added column", "table", spec.Name, "column", c.Name, "type", columnType(&c.Type)+def)
		info.cols[c.Name] = true
	}
	return nil
}

// defaultClause is the " DEFAULT <literal>" of a column, "" when it has
// none; the literal is what toSQLite stores for the value.
func defaultClause(c *sink.ColumnSpec) (string, error) {
	if !c.HasDefault || c.Key || c.Default == nil {
		return "", nil
	}
	v, err := toSQLite(c.Default, &c.Type)
	if err != nil {
		return "", fmt.Errorf("default of column %s: %w", c.Name, err)
	}
	switch x := v.(type) {
	case int64:
		return " DEFAULT " + strconv.FormatInt(x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", nil // no literal; such defaults do not occur in practice
		}
		return " DEFAULT " + strconv.FormatFloat(x, 'g', -1, 64), nil
	case string:
		return " DEFAULT '" + strings.ReplaceAll(x, "'", "''") + "'", nil
	case []byte:
		return " DEFAULT X'" + hex.EncodeToString(x) + "'", nil
	}
	return "", nil
}

// queryer is a *sql.DB or, inside a transaction (which holds the only
// connection), its *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadTable reads the columns of an existing table, nil when it is missing.
func (t *Target) loadTable(ctx context.Context, q queryer, name string) (*tableInfo, error) {
	if info := t.tables[name]; info != nil {
		return info, nil
	}
	rows, err := q.QueryContext(ctx, "SELECT name, \"notnull\" FROM pragma_table_info(?)", name)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", name, err)
	}
	defer rows.Close()
	info := &tableInfo{cols: map[string]bool{}, notNull: map[string]bool{}, stmts: map[string]string{}}
	for rows.Next() {
		var col string
		var nn int
		if err := rows.Scan(&col, &nn); err != nil {
			return nil, fmt.Errorf("reading columns of %s: %w", name, err)
		}
		info.cols[col] = true
		info.notNull[col] = nn != 0
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", name, err)
	}
	if len(info.cols) == 0 {
		return nil, nil
	}
	t.tables[name] = info
	return info, nil
}

// Rejected implements sink.Target.
func (t *Target) Rejected(err error) bool {
	var ve *sink.ValueError
	if errors.As(err, &ve) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_RANGE:
			return true
		}
	}
	return false
}

func (t *Target) Begin(ctx context.Context) (sink.Tx, error) {
	if t.db == nil {
		return nil, errors.New("sqlite target is not connected")
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("beginning transaction on %s: %w", t.cfg.Path, err)
	}
	return &txn{t: t, tx: tx}, nil
}

type txn struct {
	t  *Target
	tx *sql.Tx
}

func (x *txn) Commit(context.Context) error   { return x.tx.Commit() }
func (x *txn) Rollback(context.Context) error { return x.tx.Rollback() }

func (x *txn) Savepoint(ctx context.Context, name string) error {
	return x.exec(ctx, "SAVEPOINT "+quote(name))
}

func (x *txn) RollbackTo(ctx context.Context, name string) error {
	return x.exec(ctx, "ROLLBACK TO SAVEPOINT "+quote(name))
}

func (x *txn) Release(ctx context.Context, name string) error {
	return x.exec(ctx, "RELEASE SAVEPOINT "+quote(name))
}

func (x *txn) LoadOffsets(ctx context.Context, sinkName string) (map[sink.TopicPartition]int64, error) {
	rows, err := x.tx.QueryContext(ctx, offsetsSQL.Select(), sinkName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sink.ScanOffsets(rows)
}

func (x *txn) StoreOffsets(ctx context.Context, sinkName string, next map[sink.TopicPartition]int64) error {
	return offsetsSQL.Store(ctx, x.exec, sinkName, next, time.Now().UTC().Format(sink.LayoutTimestampTZ))
}

func (x *txn) exec(ctx context.Context, q string, args ...any) error {
	_, err := x.tx.ExecContext(ctx, q, args...)
	return err
}

// maxVars stays under SQLite's default limit of 32766 bound parameters.
const maxVars = 32000

func (x *txn) Apply(ctx context.Context, spec *sink.TableSpec, changes []sink.Change) error {
	p := &x.t.plan
	p.Sort(changes)
	// Parsing a multi-row statement costs as much as running it: each
	// shape is prepared once per Apply and run for every full chunk.
	prepared := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range prepared {
			st.Close()
		}
	}()
	var args []any
	write := func(g *sink.WriteGroup) error {
		n := len(g.Cols.Columns)
		per := min(500, max(1, maxVars/n))
		for _, ch := range sink.Chunks(len(g.Rows), per) {
			rows := g.Rows[ch[0]:ch[1]]
			text := x.writeStmt(spec, g.Op, g.Cols, len(rows))
			st := prepared[text]
			if st == nil {
				var err error
				if st, err = x.tx.PrepareContext(ctx, text); err != nil {
					return fmt.Errorf("preparing the write of %d rows: %w", len(rows), err)
				}
				prepared[text] = st
			}
			args = args[:0]
			for _, ri := range rows {
				c := &changes[ri]
				for j, col := range g.Cols.Columns {
					v, err := toSQLite(c.Row[j], &col.Type)
					if err != nil {
						return &sink.ValueError{Column: col.Name, Err: err}
					}
					args = append(args, v)
				}
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("writing %d rows: %w", len(rows), err)
			}
		}
		return nil
	}
	return p.Run(
		func() error {
			// A table never created has nothing to truncate.
			if info, err := x.t.loadTable(ctx, x.tx, spec.Name); err != nil || info == nil {
				return err
			}
			return x.exec(ctx, "DELETE FROM "+quote(spec.Name))
		},
		func(keys [][]any) error { return x.deleteKeys(ctx, spec, keys) },
		write)
}

func (x *txn) writeStmt(spec *sink.TableSpec, op sink.Op, cols *sink.ColSet, rows int) string {
	info := x.t.tables[spec.Name]
	key := fmt.Sprintf("%d/%p/%d", op, cols, rows)
	if info != nil {
		if s, ok := info.stmts[key]; ok {
			return s
		}
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + quote(spec.Name) + " (")
	for i, c := range cols.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(c.Name))
	}
	b.WriteString(") VALUES ")
	tuple := "(" + strings.Repeat("?, ", len(cols.Columns)-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	if op == sink.OpUpsert && len(spec.Key) > 0 {
		b.WriteString(" ON CONFLICT (")
		for i, k := range spec.Key {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(k.Name))
		}
		b.WriteString(") DO ")
		var set []string
		for _, c := range cols.Columns {
			if !c.Key {
				set = append(set, quote(c.Name)+" = excluded."+quote(c.Name))
			}
		}
		if len(set) == 0 {
			b.WriteString("NOTHING")
		} else {
			b.WriteString("UPDATE SET " + strings.Join(set, ", "))
		}
	}
	s := b.String()
	if info != nil && len(info.stmts) < 256 {
		info.stmts[key] = s
	}
	return s
}

func (x *txn) deleteKeys(ctx context.Context, spec *sink.TableSpec, keys [][]any) error {
	if len(keys) == 0 {
		return nil
	}
	nk := len(spec.Key)
	var lhs, tuple string
	if nk == 1 {
		lhs, tuple = quote(spec.Key[0].Name), "?"
	} else {
		names := make([]string, nk)
		for i, k := range spec.Key {
			names[i] = quote(k.Name)
		}
		lhs = "(" + strings.Join(names, ", ") + ")"
		tuple = "(" + strings.Repeat("?, ", nk-1) + "?)"
	}
	per := min(500, max(1, maxVars/nk))
	for _, ch := range sink.Chunks(len(keys), per) {
		part := keys[ch[0]:ch[1]]
		var b strings.Builder
		b.WriteString("DELETE FROM " + quote(spec.Name) + " WHERE " + lhs + " IN (")
		if nk > 1 {
			b.WriteString("VALUES ")
		}
		args := make([]any, 0, nk*len(part))
		for i, k := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			for j, v := range k {
				sv, err := toSQLite(v, &spec.Key[j].Type)
				if err != nil {
					return &sink.ValueError{Column: spec.Key[j].Name, Err: err}
				}
				args = append(args, sv)
			}
		}
		b.WriteString(")")
		if _, err := x.tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("deleting %d rows: %w", len(part), err)
		}
	}
	return nil
}

// toSQLite converts a sink value to what the declared column type stores.
func toSQLite(v any, ct *sink.ColumnType) (any, error) {
	switch x := v.(type) {
	case nil, int64, float64, string, []byte:
		return x, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case float32:
		return float64(x), nil
	case time.Time:
		switch ct.Kind {
		case sink.KindDate:
			return x.UTC().Format(sink.LayoutDate), nil
		case sink.KindTimestampTZ:
			return x.UTC().Format(sink.LayoutTimestampTZ), nil
		default:
			return x.UTC().Format(sink.LayoutTimestamp), nil
		}
	case time.Duration:
		if ct.Kind == sink.KindInterval {
			return x.Microseconds(), nil
		}
		return sink.FormatTimeOfDay(x), nil
	case sink.Geometry:
		// The WKB, as SpatiaLite-free readers (GDAL, shapely) take it.
		return x.WKB, nil
	case []any, map[string]any:
		return sink.JSONText(x)
	}
	return nil, fmt.Errorf("no SQLite form for a %T value", v)
}

// MissingKeys implements sink.MissingKeysTx: one query per chunk of keys,
// SELECT of the index of each key with no row.
func (x *txn) MissingKeys(ctx context.Context, spec *sink.TableSpec, keys [][]any) ([]int, error) {
	if info, err := x.t.loadTable(ctx, x.tx, spec.Name); err != nil {
		return nil, err
	} else if info == nil {
		all := make([]int, len(keys))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	nk := len(spec.Key)
	var cond []string
	for j, k := range spec.Key {
		cond = append(cond, fmt.Sprintf("t.%s = v.k%d", quote(k.Name), j))
	}
	var out []int
	for _, ch := range sink.Chunks(len(keys), min(500, max(1, maxVars/(nk+1)))) {
		var b strings.Builder
		b.WriteString("SELECT v.i FROM (")
		args := make([]any, 0, (nk+1)*(ch[1]-ch[0]))
		for i := ch[0]; i < ch[1]; i++ {
			if i > ch[0] {
				b.WriteString(" UNION ALL ")
			}
			b.WriteString("SELECT ? AS i")
			args = append(args, int64(i))
			for j, v := range keys[i] {
				sv, err := toSQLite(v, &spec.Key[j].Type)
				if err != nil {
					return nil, &sink.ValueError{Column: spec.Key[j].Name, Err: err}
				}
				fmt.Fprintf(&b, ", ? AS k%d", j)
				args = append(args, sv)
			}
		}
		b.WriteString(") v WHERE NOT EXISTS (SELECT 1 FROM " + quote(spec.Name) + " t WHERE " + strings.Join(cond, " AND ") + ")")
		rows, err := x.tx.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("looking up %d keys: %w", ch[1]-ch[0], err)
		}
		for rows.Next() {
			var i int
			if err := rows.Scan(&i); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, i)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

package postgres

// The PostgreSQL sink (`sinks: - type: postgres`).
//
// Each batch goes through COPY into a temporary staging table of text
// columns, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE casts the
// text to the target columns' real types and merges it; deletes are one
// DELETE per chunk of keys. The batch and its offsets commit in one
// transaction.
//
// Durability. The session runs with synchronous_commit = off unless the
// URL sets it (?synchronous_commit=on): a commit does not wait for its WAL
// to reach the disk, which takes about a fifth of the apply time. That
// trades nothing the copy needs, as SQLite's synchronous = normal does: a
// crash of tributary loses nothing committed, and a crash of the server
// may roll back only the last batches (up to about 3 x wal_writer_delay)
// together with their offsets, which the sink then applies again from
// the log. The commits whose loss the log could not redo wait for the
// disk: the first one of a sink (its marker row decides what "start:
// latest" means) and a replay's swap.
//
// Type mapping. From a PostgreSQL source (the event's source connector is
// postgresql) the column is recreated with its native type from
// __debezium.source.column.type / length / scale: int2, int4, int8, float4,
// float8, bool, numeric(p,s) or numeric, money, text, varchar(n), char(n),
// "char", name, date, time, timetz, timestamp, timestamptz, interval, uuid,
// json, jsonb, xml, bytea, bit(n), varbit(n), inet, cidr, macaddr, macaddr8,
// tsvector, oid, the range types, and one-dimensional arrays of these.
// Other sources, and types not in that list (enums, domains, extension
// types), get the closest type of the event's semantic type:
//
//	boolean -> boolean          int8/int16 -> smallint     int32, year -> integer
//	int64 -> bigint             float32 -> real            float64 -> double precision
//	decimal(p,s) -> numeric(p,s)                           variable decimal -> numeric
//	string, enum, set -> text   json -> jsonb              uuid -> uuid
//	xml -> xml                  bytes -> bytea             bits(n) -> bit varying(n)
//	date -> date                time -> time               timestamp -> timestamp
//	timestamptz -> timestamptz  timetz -> timetz           interval -> interval
//	array -> <element type>[]   struct -> jsonb
//	geometry (io.debezium.data.geometry.Geometry / Point) -> PostGIS geometry
//	  (hex EWKB, SRID kept) when the extension is installed in the target
//	  database, else bytea holding the WKB; a PostgreSQL point stays point
//
// From MySQL: TINYINT -> smallint, INT UNSIGNED -> bigint, BIGINT UNSIGNED ->
// numeric(20,0), TIME -> interval, DATETIME -> timestamp, TIMESTAMP -> timestamptz, JSON ->
// jsonb, ENUM/SET -> text, BLOB kinds -> bytea, VARCHAR(n) -> varchar(n).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tributary-cdc/tributary/sink"
)

func init() { sink.Register("postgres", sinkDriver{}) }

// SinkConfig is the postgres sink's own configuration.
type SinkConfig struct {
	URL           string `yaml:"url" required:"true" desc:"PostgreSQL connection URL of the target database (postgres://user:password@host:port/db?sslmode=...). The user needs CREATE on the schemas the tables go to (or the tables must exist) and INSERT, UPDATE, DELETE, TRUNCATE on them."`
	OffsetsSchema string `yaml:"offsets_schema" default:"public" desc:"Schema of the tributary_offsets table, created if missing."`
}

// Validate implements sink.Config.
func (c *SinkConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, &sink.FieldError{Key: "url", Msg: "is required"})
	} else if _, err := pgx.ParseConfig(c.URL); err != nil {
		errs = append(errs, &sink.FieldError{Key: "url", Msg: "is not a valid PostgreSQL URL: " + redact(err.Error(), c.URL)})
	}
	if c.OffsetsSchema == "" {
		errs = append(errs, &sink.FieldError{Key: "offsets_schema", Msg: "must not be empty"})
	}
	return errors.Join(errs...)
}

type sinkDriver struct{}

func (sinkDriver) NewConfig() sink.Config { return &SinkConfig{OffsetsSchema: "public"} }

func (sinkDriver) Open(name string, cfg sink.Config, log *slog.Logger) (sink.Target, error) {
	c, ok := cfg.(*SinkConfig)
	if !ok {
		return nil, fmt.Errorf("postgres sink %s: config is %T, want *postgres.SinkConfig", name, cfg)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return NewSinkTarget(name, *c, log), nil
}

// SinkTarget is a PostgreSQL database written by one sink.
type SinkTarget struct {
	name    string
	cfg     SinkConfig
	log     *slog.Logger
	conn    *pgx.Conn
	where   string // host:port/db, for messages
	tables  map[string]*sinkTableInfo
	offsets sink.OffsetsSQL
	// copyBuf is reused by the staging COPYs of successive batches.
	copyBuf []byte
	// plan is reused by every Apply (calls never overlap).
	plan sink.Plan
	// geomType is the column type of geometries: PostGIS's geometry when
	// the extension is installed in the target database, else bytea (the
	// WKB).
	geomType string
}

type sinkTableInfo struct {
	ident   string            // quoted schema.table
	types   map[string]string // column -> format_type
	notNull map[string]bool
	// skipPlain counts the upsert batches left that go straight to ON
	// CONFLICT after a plain INSERT of a batch met an existing key.
	skipPlain int
}

// An upsert batch first tries a COPY straight into the table under a
// savepoint: when none of its keys exist yet (a backfill, a replay, an
// insert-heavy stream) that is all the server has to do, instead of a COPY
// into staging plus INSERT ... ON CONFLICT DO UPDATE (about 3x the work),
// with the same result. A batch that meets an existing key (or any value the
// table refuses) rolls back to the savepoint and takes the staging path,
// which reports a refused value itself; the table's next sinkPlainBackoff
// batches skip the attempt, so an update-heavy stream wastes at most one
// attempt in that many.
const (
	sinkPlainMinRows = 256
	sinkPlainBackoff = 32
)

// NewSinkTarget builds a target; Connect opens the connection.
func NewSinkTarget(name string, cfg SinkConfig, log *slog.Logger) *SinkTarget {
	if log == nil {
		log = slog.Default()
	}
	if cfg.OffsetsSchema == "" {
		cfg.OffsetsSchema = "public"
	}
	return &SinkTarget{name: name, cfg: cfg, log: log, tables: map[string]*sinkTableInfo{},
		offsets: sink.OffsetsSQL{
			Table:    sinkQuote(cfg.OffsetsSchema) + "." + sink.OffsetsTable,
			TextType: "text", TimeType: "timestamptz DEFAULT now()",
			Numbered: true,
		}}
}

// Conn is the open connection, for tests and tools (verify).
func (t *SinkTarget) Conn() *pgx.Conn { return t.conn }

func (t *SinkTarget) DefaultTableNameFormat() string { return "${source.schema}.${source.table}" }

func (t *SinkTarget) Connect(ctx context.Context) error {
	pc, err := pgx.ParseConfig(t.cfg.URL)
	if err != nil {
		return fmt.Errorf("postgres sink: invalid url: %s", redact(err.Error(), t.cfg.URL))
	}
	t.where = fmt.Sprintf("%s:%d/%s", pc.Host, pc.Port, pc.Database)
	if _, set := pc.RuntimeParams["synchronous_commit"]; !set {
		pc.RuntimeParams["synchronous_commit"] = "off" // see the top of the file
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connecting to target PostgreSQL %s as %s: %s", t.where, pc.User, redact(err.Error(), t.cfg.URL))
	}
	t.conn = conn
	var postgis string
	if err := conn.QueryRow(ctx, `SELECT coalesce((SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'), '')`).Scan(&postgis); err != nil {
		return fmt.Errorf("target PostgreSQL %s: looking up PostGIS: %w", t.where, err)
	}
	t.geomType = "bytea"
	if postgis != "" {
		t.geomType = sinkQuote(postgis) + ".geometry"
	}
	if err := t.ensureSchema(ctx, t.cfg.OffsetsSchema); err != nil {
		return fmt.Errorf("target PostgreSQL %s: %w", t.where, err)
	}
	_, err = conn.Exec(ctx, t.offsets.CreateTable())
	if err != nil {
		return fmt.Errorf("target PostgreSQL %s: creating %s: %w", t.where, t.offsets.Table, err)
	}
	return nil
}

// ensureSchema creates a schema only when missing: CREATE SCHEMA IF NOT
// EXISTS needs CREATE on the database even when the schema exists.
func (t *SinkTarget) ensureSchema(ctx context.Context, schemaName string) error {
	var exists bool
	if err := t.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schemaName).Scan(&exists); err != nil {
		return fmt.Errorf("looking up schema %s: %w", schemaName, err)
	}
	if exists {
		return nil
	}
	if _, err := t.conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+sinkQuote(schemaName)); err != nil {
		return fmt.Errorf("creating schema %s: %w", schemaName, err)
	}
	return nil
}

func (t *SinkTarget) Close() error {
	if t.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := t.conn.Close(ctx)
	t.conn = nil
	return err
}

func sinkQuote(id string) string { return pgx.Identifier{id}.Sanitize() }

func sinkIdent(spec *sink.TableSpec) string {
	if spec.Schema == "" {
		return sinkQuote(spec.Name)
	}
	return pgx.Identifier{spec.Schema, spec.Name}.Sanitize()
}

// sinkNativeTypes are PostgreSQL type names a PostgreSQL source may report
// that the sink recreates as they are.
var sinkNativeTypes = map[string]string{
	"INT2": "smallint", "INT4": "integer", "INT8": "bigint", "FLOAT4": "real", "FLOAT8": "double precision",
	"BOOL": "boolean", "MONEY": "money", "TEXT": "text", "CHAR": `"char"`, "NAME": "name",
	"DATE": "date", "TIME": "time", "TIMETZ": "timetz", "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamptz",
	"INTERVAL": "interval", "UUID": "uuid", "JSON": "json", "JSONB": "jsonb", "XML": "xml", "BYTEA": "bytea",
	"INET": "inet", "CIDR": "cidr", "MACADDR": "macaddr", "MACADDR8": "macaddr8", "TSVECTOR": "tsvector",
	"TSQUERY": "tsquery", "OID": "oid", "INT4RANGE": "int4range", "INT8RANGE": "int8range", "NUMRANGE": "numrange",
	"TSRANGE": "tsrange", "TSTZRANGE": "tstzrange", "DATERANGE": "daterange", "POINT": "point",
}

// sinkColumnType is the PostgreSQL type to create a column with; geom is
// the type of geometries (see SinkTarget.geomType).
func sinkColumnType(ct *sink.ColumnType, geom string) string {
	if ct.Kind == sink.KindGeometry && !ct.NativeIs(sink.DialectPostgres, "POINT") {
		if geom == "" {
			geom = "bytea"
		}
		return geom
	}
	if ct.Dialect == sink.DialectPostgres && ct.Native != "" {
		if s := sinkNativePG(ct); s != "" {
			return s
		}
	}
	if ct.Dialect == sink.DialectMySQL && ct.Native != "" {
		if s := sinkFromMySQL(ct); s != "" {
			return s
		}
	}
	switch ct.Kind {
	case sink.KindBool:
		return "boolean"
	case sink.KindInt8, sink.KindInt16:
		return "smallint"
	case sink.KindInt32, sink.KindYear:
		return "integer"
	case sink.KindInt64:
		return "bigint"
	case sink.KindFloat32:
		return "real"
	case sink.KindFloat64:
		return "double precision"
	case sink.KindDecimal:
		if ct.Precision > 0 && ct.Precision <= 1000 && ct.DecimalScale >= 0 && ct.DecimalScale <= ct.Precision {
			return fmt.Sprintf("numeric(%d,%d)", ct.Precision, ct.DecimalScale)
		}
		return "numeric"
	case sink.KindVarDecimal:
		return "numeric"
	case sink.KindJSON, sink.KindStruct:
		return "jsonb"
	case sink.KindUUID:
		return "uuid"
	case sink.KindXML:
		return "xml"
	case sink.KindBytes:
		return "bytea"
	case sink.KindBits:
		// PostgreSQL's longest bit string is 83886080 bits; a longer
		// length is an unbounded varbit's unknown length (2^31-1).
		if ct.BitLength > 0 && ct.BitLength <= 83886080 {
			return fmt.Sprintf("bit varying(%d)", ct.BitLength)
		}
		return "bit varying"
	case sink.KindDate:
		return "date"
	case sink.KindTime:
		return "time"
	case sink.KindTimeTZ:
		return "timetz"
	case sink.KindTimestamp:
		return "timestamp"
	case sink.KindTimestampTZ:
		return "timestamptz"
	case sink.KindInterval:
		return "interval"
	case sink.KindArray:
		if ct.Elem != nil && ct.Elem.Kind != sink.KindArray {
			return sinkColumnType(ct.Elem, geom) + "[]"
		}
		return "jsonb"
	}
	return "text"
}

func sinkNativePG(ct *sink.ColumnType) string {
	n := ct.Native
	if strings.HasPrefix(n, "_") && ct.Kind == sink.KindArray && ct.Elem != nil {
		elem := *ct.Elem
		elem.Native, elem.Dialect = n[1:], sink.DialectPostgres
		elem.Length, elem.Scale = ct.Length, ct.Scale
		if s := sinkNativePG(&elem); s != "" {
			return s + "[]"
		}
		return ""
	}
	switch n {
	case "NUMERIC":
		if ct.Kind == sink.KindDecimal && ct.Length > 0 && ct.Length <= 1000 && ct.Scale >= 0 && ct.Scale <= ct.Length {
			return fmt.Sprintf("numeric(%d,%d)", ct.Length, ct.Scale)
		}
		if ct.Kind == sink.KindDecimal && ct.Precision > 0 && ct.Precision <= 1000 {
			return fmt.Sprintf("numeric(%d,%d)", ct.Precision, ct.DecimalScale)
		}
		return "numeric"
	case "VARCHAR":
		if ct.Length > 0 && ct.Length <= 10485760 {
			return fmt.Sprintf("varchar(%d)", ct.Length)
		}
		return "varchar"
	case "BPCHAR":
		if ct.Length > 0 && ct.Length <= 10485760 {
			return fmt.Sprintf("char(%d)", ct.Length)
		}
		return "char"
	case "BIT":
		if ct.Length > 0 && ct.Length <= 83886080 {
			return fmt.Sprintf("bit(%d)", ct.Length)
		}
		return "bit"
	case "VARBIT":
		if ct.Length > 0 && ct.Length <= 83886080 {
			return fmt.Sprintf("bit varying(%d)", ct.Length)
		}
		return "bit varying"
	case "POINT":
		if ct.Kind != sink.KindGeometry && ct.Kind != sink.KindStruct {
			return ""
		}
	}
	return sinkNativeTypes[n]
}

// sinkFromMySQL maps MySQL source types that the semantic type alone would
// render less faithfully.
func sinkFromMySQL(ct *sink.ColumnType) string {
	n := ct.Native
	unsigned := strings.HasSuffix(n, " UNSIGNED") || strings.HasSuffix(n, " UNSIGNED ZEROFILL")
	base := strings.Fields(n)[0]
	switch base {
	case "TINYINT", "SMALLINT":
		if unsigned && base == "SMALLINT" {
			return "integer"
		}
		if ct.Kind == sink.KindBool {
			return "boolean"
		}
		return "smallint"
	case "MEDIUMINT":
		return "integer"
	case "INT", "INTEGER":
		if unsigned {
			return "bigint"
		}
		return "integer"
	case "BIGINT":
		if unsigned && ct.Kind == sink.KindDecimal {
			return "numeric(20,0)"
		}
		return "bigint"
	case "VARCHAR", "CHAR":
		if ct.Length > 0 && ct.Length <= 10485760 {
			if base == "CHAR" {
				return fmt.Sprintf("char(%d)", ct.Length)
			}
			return fmt.Sprintf("varchar(%d)", ct.Length)
		}
		return "text"
	case "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT":
		return "text"
	case "TIME":
		// MySQL's TIME is a signed duration up to 838:59:59, which
		// PostgreSQL's time (a time of day) cannot hold.
		return "interval"
	case "DATETIME":
		return "timestamp"
	case "TIMESTAMP":
		return "timestamptz"
	case "JSON":
		return "jsonb"
	case "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB":
		return "bytea"
	case "ENUM", "SET":
		return "text"
	}
	return ""
}

func (t *SinkTarget) EnsureTable(ctx context.Context, spec *sink.TableSpec) error {
	if spec.Schema != "" {
		if err := t.ensureSchema(ctx, spec.Schema); err != nil {
			return err
		}
	}
	info, err := t.loadTable(ctx, t.conn, spec)
	if err != nil {
		return err
	}
	ident := sinkIdent(spec)
	if info == nil {
		var b strings.Builder
		b.WriteString("CREATE TABLE IF NOT EXISTS " + ident + " (")
		for i, c := range spec.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			typ := sinkColumnType(&c.Type, t.geomType)
			b.WriteString(sinkQuote(c.Name) + " " + typ)
			def, err := sinkDefault(c, typ)
			if err != nil {
				return fmt.Errorf("creating table: %w", err)
			}
			b.WriteString(def)
			if !c.Optional || c.Key {
				b.WriteString(" NOT NULL")
			}
		}
		if len(spec.Key) > 0 {
			b.WriteString(", PRIMARY KEY (")
			for i, c := range spec.Key {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(sinkQuote(c.Name))
			}
			b.WriteString(")")
		}
		b.WriteString(")")
		if _, err := t.conn.Exec(ctx, b.String()); err != nil {
			return fmt.Errorf("creating table: %w", err)
		}
		t.log.Info("created table", "table", spec.QualifiedName(), "columns", len(spec.Columns))
		_, err := t.loadTable(ctx, t.conn, spec)
		return err
	}
	changed := false
	for _, c := range spec.Columns {
		have, ok := info.types[c.Name]
		if former, had := info.types[c.FormerName]; !ok && had && c.FormerName != "" {
			if _, err := t.conn.Exec(ctx, "ALTER TABLE "+ident+" RENAME COLUMN "+sinkQuote(c.FormerName)+" TO "+sinkQuote(c.Name)); err != nil {
				return fmt.Errorf("renaming column %s to %s: %w", c.FormerName, c.Name, err)
			}
			t.log.Info("renamed column to the source's spelling", "table", spec.QualifiedName(), "was", c.FormerName, "now", c.Name)
			info.types[c.Name], info.notNull[c.Name] = former, info.notNull[c.FormerName]
			delete(info.types, c.FormerName)
			have, ok, changed = former, true, true
		}
		if !ok {
			typ := sinkColumnType(&c.Type, t.geomType)
			def, err := sinkDefault(c, typ)
			if err != nil {
				return fmt.Errorf("adding column %s %s: %w", c.Name, typ, err)
			}
			// With a default the rows the copy holds get it, as the
			// source's rows did; NOT NULL then holds for them too.
			if def != "" && !c.Optional {
				def += " NOT NULL"
			}
			if _, err := t.conn.Exec(ctx, "ALTER TABLE "+ident+" ADD COLUMN IF NOT EXISTS "+sinkQuote(c.Name)+" "+typ+def); err != nil {
				return fmt.Errorf("adding column %s %s%s: %w", c.Name, typ, def, err)
			}
			t.log.Info("added column", "table", spec.QualifiedName(), "column", c.Name, "type", typ+def)
			changed = true
			continue
		}
		// Key columns too: a widening seen first after a restart (the copy
		// still has integer, the schema now says bigint) is no change of
		// this run, yet the copy must follow it.
		{
			want := sinkColumnType(&c.Type, t.geomType)
			switch sinkCompareTypes(have, want) {
			case sinkTypeWider:
				if _, err := t.conn.Exec(ctx, "ALTER TABLE "+ident+" ALTER COLUMN "+sinkQuote(c.Name)+" TYPE "+want); err != nil {
					return fmt.Errorf("widening column %s from %s to %s: %w", c.Name, have, want, err)
				}
				t.log.Info("widened column", "table", spec.QualifiedName(), "column", c.Name, "was", have, "now", want)
				changed = true
			case sinkTypeOther:
				if !c.TypeChanged {
					break // a copy's own choice (or an older mapping): kept
				}
				// Not a widening: convert the rows as the source's ALTER
				// did; when they do not convert the copy cannot follow.
				if _, err := t.conn.Exec(ctx, "ALTER TABLE "+ident+" ALTER COLUMN "+sinkQuote(c.Name)+" TYPE "+want+" USING "+sinkQuote(c.Name)+"::"+want); err != nil {
					return sinkTypeChangeError(spec, c, have, want, err)
				}
				t.log.Warn("changed the type of a column", "table", spec.QualifiedName(), "column", c.Name, "was", have, "now", want)
				changed = true
			}
		}
		if c.Optional && !c.Key && info.notNull[c.Name] {
			if _, err := t.conn.Exec(ctx, "ALTER TABLE "+ident+" ALTER COLUMN "+sinkQuote(c.Name)+" DROP NOT NULL"); err != nil {
				return fmt.Errorf("making column %s nullable: %w", c.Name, err)
			}
			t.log.Info("column is now nullable (gone or optional at the source)", "table", spec.QualifiedName(), "column", c.Name)
			changed = true
		}
	}
	if changed {
		delete(t.tables, spec.QualifiedName())
	}
	_, err = t.loadTable(ctx, t.conn, spec)
	return err
}

// sinkTypeChangeError is the error of a column type change the copy
// cannot follow in place.
func sinkTypeChangeError(spec *sink.TableSpec, c *sink.ColumnSpec, have, want string, cause error) error {
	was := "?"
	if c.PrevType != nil {
		was = c.PrevType.String()
	}
	return fmt.Errorf("column %s of table %s changed type at the source from %s to %s, and the copy's column %s cannot be changed to %s: %w; "+
		"alter the copy's column by hand to a type that holds both, e.g. text (then restart the sink), or rebuild the copy with `tributary replay`",
		c.Name, spec.QualifiedName(), was, c.Type.String(), have, want, cause)
}

// sinkDefault is the " DEFAULT <literal>" clause of a column, "" when it
// has none.
func sinkDefault(c *sink.ColumnSpec, typ string) (string, error) {
	if !c.HasDefault || c.Key || c.Default == nil {
		return "", nil
	}
	if _, geo := c.Default.(sink.Geometry); geo {
		return "", nil
	}
	txt, null, err := sinkText(c.Default, &c.Type, typ)
	if err != nil {
		return "", fmt.Errorf("default of column %s: %w", c.Name, err)
	}
	if null {
		return "", nil
	}
	return " DEFAULT '" + strings.ReplaceAll(txt, "'", "''") + "'::" + sinkCastType(typ), nil
}

// Outcomes of comparing a column's type in the copy with the one its
// events call for.
const (
	sinkTypeSame  = iota // nothing to do
	sinkTypeWider        // the wanted type holds more: alter the column
	sinkTypeFits         // the copy's type already holds every wanted value
	sinkTypeOther        // neither: the copy cannot follow in place
)

// sinkCompareTypes compares the copy's column type have (format_type) with
// the type want the sink would create it with now.
func sinkCompareTypes(have, want string) int {
	h, w := sinkParseType(have), sinkParseType(sinkFormatType(want))
	if h == w {
		return sinkTypeSame
	}
	if h.array != w.array {
		return sinkTypeOther
	}
	rank := func(p sinkPGType) int { // integer digits a type holds
		switch p.base {
		case "smallint":
			return 5
		case "integer":
			return 10
		case "bigint":
			return 19
		case "numeric":
			if p.n < 0 {
				return 1 << 30
			}
			if p.s > 0 {
				return p.n - p.s
			}
			return p.n
		}
		return -1
	}
	if rh, rw := rank(h), rank(w); rh >= 0 && rw >= 0 {
		sh, sw := max(h.s, 0), max(w.s, 0)
		if h.base == "numeric" && h.n < 0 {
			sh = 1 << 30
		}
		if w.base == "numeric" && w.n < 0 {
			sw = 1 << 30
		}
		switch {
		case rw >= rh && sw >= sh:
			return sinkTypeWider
		case rw <= rh && sw <= sh:
			return sinkTypeFits
		}
		return sinkTypeOther
	}
	chars := func(p sinkPGType) int {
		switch p.base {
		case "text":
			return 1 << 30
		case "character varying":
			if p.n < 0 {
				return 1 << 30
			}
			return p.n
		}
		return -1
	}
	switch {
	case h.base == "real" && w.base == "double precision":
		return sinkTypeWider
	case h.base == "double precision" && w.base == "real":
		return sinkTypeFits
	case chars(h) >= 0 && chars(w) >= 0:
		if chars(w) > chars(h) {
			return sinkTypeWider
		}
		return sinkTypeFits
	case h.base == "character" && (w.base == "character" || chars(w) >= 0):
		if w.base == "character" && w.n == h.n {
			return sinkTypeSame
		}
		if (w.base == "character" && w.n > h.n) || (w.base != "character" && (chars(w) >= h.n)) {
			return sinkTypeWider
		}
		return sinkTypeOther
	case chars(h) >= 0 && w.base == "character":
		if chars(h) >= w.n {
			return sinkTypeFits
		}
		return sinkTypeOther
	case h.base == "bit varying" && w.base == "bit varying":
		if w.n < 0 || (h.n >= 0 && w.n > h.n) {
			return sinkTypeWider
		}
		return sinkTypeFits
	case h.base == "bit" && w.base == "bit varying":
		if w.n < 0 || w.n >= h.n {
			return sinkTypeWider
		}
	case h.base == "text" && !h.array && !w.array:
		// text holds the text form of any value (a column a user altered
		// to text after a type change the copy could not follow).
		return sinkTypeFits
	}
	return sinkTypeOther
}

// sinkPGType is a parsed format_type: base name, length or precision n
// (-1 none), scale s (-1 none), array.
type sinkPGType struct {
	base  string
	n, s  int
	array bool
}

func sinkParseType(t string) sinkPGType {
	p := sinkPGType{n: -1, s: -1}
	t = strings.TrimSpace(t)
	if strings.HasSuffix(t, "[]") {
		p.array = true
		t = strings.TrimSuffix(t, "[]")
	}
	if i := strings.IndexByte(t, '('); i > 0 && strings.HasSuffix(t, ")") {
		args := strings.Split(t[i+1:len(t)-1], ",")
		p.n, _ = strconv.Atoi(strings.TrimSpace(args[0]))
		if len(args) > 1 {
			p.s, _ = strconv.Atoi(strings.TrimSpace(args[1]))
		}
		t = strings.TrimSpace(t[:i])
	}
	if strings.HasSuffix(t, ".geometry") {
		t = "geometry" // PostGIS's type, named with its schema or not
	}
	p.base = t
	return p
}

// sinkFormatType spells a type as format_type does.
func sinkFormatType(t string) string {
	arr := ""
	if strings.HasSuffix(t, "[]") {
		arr, t = "[]", strings.TrimSuffix(t, "[]")
	}
	base, args := t, ""
	if i := strings.IndexByte(t, '('); i > 0 {
		base, args = t[:i], t[i:]
	}
	switch base {
	case "varchar":
		base = "character varying"
	case "char":
		base = "character"
		if args == "" {
			args = "(1)"
		}
	case "bit":
		if args == "" {
			args = "(1)"
		}
	case "timestamp":
		base = "timestamp without time zone"
	case "timestamptz":
		base = "timestamp with time zone"
	case "time":
		base = "time without time zone"
	case "timetz":
		base = "time with time zone"
	}
	return base + args + arr
}

type sinkQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadTable reads a table's columns and their exact types; nil when missing.
func (t *SinkTarget) loadTable(ctx context.Context, q sinkQuerier, spec *sink.TableSpec) (*sinkTableInfo, error) {
	key := spec.QualifiedName()
	if info := t.tables[key]; info != nil {
		return info, nil
	}
	ident := sinkIdent(spec)
	rows, err := q.Query(ctx, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, ident)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", key, err)
	}
	info := &sinkTableInfo{ident: ident, types: map[string]string{}, notNull: map[string]bool{}}
	for rows.Next() {
		var name, typ string
		var nn bool
		if err := rows.Scan(&name, &typ, &nn); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading columns of %s: %w", key, err)
		}
		info.types[name] = typ
		info.notNull[name] = nn
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", key, err)
	}
	if len(info.types) == 0 {
		return nil, nil
	}
	t.tables[key] = info
	return info, nil
}

// Rejected implements sink.Target: data exceptions (class 22), integrity
// violations (class 23) and datatype mismatches belong to the record.
func (t *SinkTarget) Rejected(err error) bool {
	var ve *sink.ValueError
	if errors.As(err, &ve) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
			return true
		case pe.Code == "42804": // datatype_mismatch
			return true
		}
	}
	return false
}

func (t *SinkTarget) Begin(ctx context.Context) (sink.Tx, error) {
	if t.conn == nil {
		return nil, errors.New("postgres target is not connected")
	}
	tx, err := t.conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("beginning transaction on %s: %w", t.where, err)
	}
	return &sinkTx{t: t, tx: tx, staged: map[string]bool{}}, nil
}

type sinkTx struct {
	t      *SinkTarget
	tx     pgx.Tx
	staged map[string]bool // staging tables created (or used) in this transaction
}

func (x *sinkTx) Commit(ctx context.Context) error   { return x.tx.Commit(ctx) }
func (x *sinkTx) Rollback(ctx context.Context) error { return x.tx.Rollback(ctx) }

func (x *sinkTx) exec(ctx context.Context, sql string) error {
	_, err := x.tx.Exec(ctx, sql)
	return err
}

func (x *sinkTx) Savepoint(ctx context.Context, name string) error {
	return x.exec(ctx, "SAVEPOINT "+sinkQuote(name))
}

func (x *sinkTx) RollbackTo(ctx context.Context, name string) error {
	return x.exec(ctx, "ROLLBACK TO SAVEPOINT "+sinkQuote(name))
}

func (x *sinkTx) Release(ctx context.Context, name string) error {
	return x.exec(ctx, "RELEASE SAVEPOINT "+sinkQuote(name))
}

func (x *sinkTx) LoadOffsets(ctx context.Context, sinkName string) (map[sink.TopicPartition]int64, error) {
	rows, err := x.tx.Query(ctx, x.t.offsets.Select(), sinkName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sink.ScanOffsets(rows)
}

func (x *sinkTx) StoreOffsets(ctx context.Context, sinkName string, next map[sink.TopicPartition]int64) error {
	if _, marker := next[sink.TopicPartition{Topic: "", Partition: -1}]; marker {
		if err := x.exec(ctx, sinkSyncCommit); err != nil {
			return err
		}
	}
	return x.t.offsets.Store(ctx, x.execArgs, sinkName, next, time.Now())
}

// sinkSyncCommit makes the transaction's commit wait for the disk, for the
// commits the log cannot redo (see the top of the file).
const sinkSyncCommit = "SET LOCAL synchronous_commit = on"

func (x *sinkTx) execArgs(ctx context.Context, sql string, args ...any) error {
	_, err := x.tx.Exec(ctx, sql, args...)
	return err
}

// sinkMaxParams stays under PostgreSQL's 65535 bind parameters.
const sinkMaxParams = 60000

func (x *sinkTx) Apply(ctx context.Context, spec *sink.TableSpec, changes []sink.Change) error {
	p := &x.t.plan
	p.Sort(changes)
	info, err := x.t.loadTable(ctx, x.tx, spec)
	if err != nil {
		return err
	}
	if info == nil {
		return p.MissingTable(spec)
	}
	return p.Run(
		func() error { return x.exec(ctx, "TRUNCATE "+info.ident) },
		func(keys [][]any) error { return x.deleteKeys(ctx, spec, info, keys) },
		func(g *sink.WriteGroup) error { return x.write(ctx, spec, info, g.Op, g.Cols, changes, g.Rows) })
}

// stage returns a temporary text-column table for cols, created on first
// use in the transaction and emptied before reuse.
func (x *sinkTx) stage(ctx context.Context, spec *sink.TableSpec, cols []*sink.ColumnSpec) (string, error) {
	h := fnv.New64a()
	h.Write([]byte(spec.QualifiedName()))
	for _, c := range cols {
		h.Write([]byte{0})
		h.Write([]byte(c.Name))
	}
	name := fmt.Sprintf("tributary_stage_%x", h.Sum64())
	if x.staged[name] {
		return name, x.exec(ctx, "TRUNCATE pg_temp."+name)
	}
	var b strings.Builder
	b.WriteString("CREATE TEMP TABLE IF NOT EXISTS " + name + " (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sinkQuote(c.Name) + " text")
	}
	b.WriteString(") ON COMMIT DELETE ROWS")
	if err := x.exec(ctx, b.String()); err != nil {
		return "", fmt.Errorf("creating staging table: %w", err)
	}
	// A staging table left from an earlier transaction that failed before
	// commit may still hold rows.
	if err := x.exec(ctx, "TRUNCATE pg_temp."+name); err != nil {
		return "", err
	}
	x.staged[name] = true
	return name, nil
}

func (x *sinkTx) write(ctx context.Context, spec *sink.TableSpec, info *sinkTableInfo, op sink.Op, cs *sink.ColSet, changes []sink.Change, idx []int) error {
	cols := cs.Columns
	names := make([]string, len(cols))
	sel := make([]string, len(cols))
	for i, c := range cols {
		typ, ok := info.types[c.Name]
		if !ok {
			return fmt.Errorf("column %s is missing from %s", c.Name, spec.QualifiedName())
		}
		names[i] = sinkQuote(c.Name)
		sel[i] = sinkQuote(c.Name) + "::" + sinkCastType(typ)
	}
	if op == sink.OpUpsert && len(spec.Key) > 0 && info.skipPlain == 0 && len(idx) >= sinkPlainMinRows {
		done, err := x.tryDirectCopy(ctx, info, cols, changes, idx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		info.skipPlain = sinkPlainBackoff + 1 // the decrement below counts this batch
	}
	stg, err := x.stage(ctx, spec, cols)
	if err != nil {
		return err
	}
	if err := x.copyStage(ctx, stg, info, cols, changes, idx); err != nil {
		return err
	}
	rows := idx
	var b strings.Builder
	b.WriteString("INSERT INTO " + info.ident + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(sel, ", ") + " FROM pg_temp." + stg)
	if op == sink.OpUpsert && len(spec.Key) > 0 {
		if info.skipPlain > 0 {
			info.skipPlain--
		}
		keys := make([]string, len(spec.Key))
		for i, k := range spec.Key {
			keys[i] = sinkQuote(k.Name)
		}
		b.WriteString(" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO ")
		var set []string
		for _, c := range cols {
			if !c.Key {
				set = append(set, sinkQuote(c.Name)+" = EXCLUDED."+sinkQuote(c.Name))
			}
		}
		if len(set) == 0 {
			b.WriteString("NOTHING")
		} else {
			b.WriteString("UPDATE SET " + strings.Join(set, ", "))
		}
	}
	if err := x.exec(ctx, b.String()); err != nil {
		return fmt.Errorf("merging %d rows: %w", len(rows), err)
	}
	return nil
}

// tryDirectCopy copies the rows straight into the table under a savepoint;
// false when that failed and was rolled back.
func (x *sinkTx) tryDirectCopy(ctx context.Context, info *sinkTableInfo, cols []*sink.ColumnSpec, changes []sink.Change, idx []int) (bool, error) {
	const sp = "tributary_plain"
	if err := x.exec(ctx, "SAVEPOINT "+sp); err != nil {
		return false, err
	}
	names := make([]string, len(cols))
	types := make([]string, len(cols))
	for i, c := range cols {
		names[i] = sinkQuote(c.Name)
		types[i] = info.types[c.Name]
	}
	sql := "COPY " + info.ident + " (" + strings.Join(names, ", ") + ") FROM STDIN"
	buf := x.t.copyBuf[:0]
	defer func() {
		if cap(buf) <= 2*sinkCopyChunk {
			x.t.copyBuf = buf[:0]
		}
	}()
	var failed error
	n := 0
	send := func() {
		if n > 0 && failed == nil {
			if _, err := x.tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), sql); err != nil {
				failed = err
			}
		}
		buf, n = buf[:0], 0
	}
	for _, ri := range idx {
		c := &changes[ri]
		for j, col := range cols {
			if j > 0 {
				buf = append(buf, '\t')
			}
			at := len(buf)
			var null bool
			var err error
			buf, null, err = sinkAppendText(buf, c.Row[j], &col.Type, types[j])
			if err != nil {
				// The staging path reports it.
				failed = err
				break
			}
			if null {
				buf = append(buf[:at], `\N`...)
				continue
			}
			buf = copyEscape(buf, at)
		}
		if failed != nil {
			break
		}
		buf = append(buf, '\n')
		n++
		if len(buf) >= sinkCopyChunk {
			send()
			if failed != nil {
				break
			}
		}
	}
	send()
	if failed != nil {
		if ctx.Err() != nil {
			return false, failed
		}
		if rerr := x.exec(ctx, "ROLLBACK TO SAVEPOINT "+sp); rerr != nil {
			return false, fmt.Errorf("copying rows: %w (then rolling back to a savepoint: %v)", failed, rerr)
		}
		return false, x.exec(ctx, "RELEASE SAVEPOINT "+sp)
	}
	return true, x.exec(ctx, "RELEASE SAVEPOINT "+sp)
}

// copyEscape escapes buf[at:] in place for COPY's text format.
func copyEscape(buf []byte, at int) []byte {
	v := buf[at:]
	special := 0
	for _, c := range v {
		switch c {
		case '\\', '\n', '\r', '\t':
			special++
		}
	}
	if special == 0 {
		return buf
	}
	tmp := append([]byte(nil), v...)
	buf = buf[:at]
	for _, c := range tmp {
		switch c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// copyStage writes the rows into the staging table with COPY in binary
// format. Every staging column is text, whose binary form is its bytes as
// they are: no escaping, and no per-value encoding plan as pgx.CopyFrom
// would look up. Large batches go in several COPYs of sinkCopyChunk bytes.
func (x *sinkTx) copyStage(ctx context.Context, stg string, info *sinkTableInfo, cols []*sink.ColumnSpec, changes []sink.Change, idx []int) error {
	names := make([]string, len(cols))
	types := make([]string, len(cols))
	for i, c := range cols {
		names[i] = sinkQuote(c.Name)
		types[i] = info.types[c.Name]
	}
	sql := "COPY pg_temp." + stg + " (" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary)"
	buf := x.t.copyBuf[:0]
	defer func() {
		if cap(buf) <= 2*sinkCopyChunk {
			x.t.copyBuf = buf[:0]
		}
	}()
	n := 0
	send := func() error {
		if n == 0 {
			return nil
		}
		buf = binary.BigEndian.AppendUint16(buf, 0xffff) // trailer: -1
		if _, err := x.tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), sql); err != nil {
			return fmt.Errorf("copying %d rows into staging: %w", n, err)
		}
		buf, n = buf[:0], 0
		return nil
	}
	for _, ri := range idx {
		if n == 0 {
			buf = append(buf, "PGCOPY\n\xff\r\n\x00"...)
			buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0) // flags, header extension length
		}
		c := &changes[ri]
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(cols)))
		for j, col := range cols {
			at := len(buf)
			buf = append(buf, 0, 0, 0, 0)
			var null bool
			var err error
			buf, null, err = sinkAppendText(buf, c.Row[j], &col.Type, types[j])
			if err != nil {
				return &sink.ValueError{Column: col.Name, Err: err}
			}
			if null {
				binary.BigEndian.PutUint32(buf[at:], 0xffffffff)
				continue
			}
			size := len(buf) - at - 4
			if size > math.MaxInt32 {
				return &sink.ValueError{Column: col.Name, Err: fmt.Errorf("value of %d bytes is too large", size)}
			}
			binary.BigEndian.PutUint32(buf[at:], uint32(size))
		}
		n++
		if len(buf) >= sinkCopyChunk {
			if err := send(); err != nil {
				return err
			}
		}
	}
	return send()
}

// sinkCopyChunk bounds the bytes buffered for one staging COPY.
const sinkCopyChunk = 4 << 20

// sinkAppendText appends sinkText's form of v to buf, without building a
// string for the common types.
func sinkAppendText(buf []byte, v any, ct *sink.ColumnType, pgType string) ([]byte, bool, error) {
	switch x := v.(type) {
	case nil:
		return buf, true, nil
	case int64:
		return strconv.AppendInt(buf, x, 10), false, nil
	case string:
		return append(buf, x...), false, nil
	case []byte:
		buf = append(buf, `\x`...)
		return hex.AppendEncode(buf, x), false, nil
	case time.Time:
		if y := x.UTC().Year(); y > 0 && y < 10000 && (ct.Kind == sink.KindDate || ct.Kind == sink.KindTimestamp || ct.Kind == sink.KindTimestampTZ) {
			if us := x.UnixMicro(); us != sinkPosInfinityMicros && us != sinkNegInfinityMicros {
				x = x.UTC()
				switch ct.Kind {
				case sink.KindDate:
					return x.AppendFormat(buf, "2006-01-02"), false, nil
				case sink.KindTimestampTZ:
					return append(x.AppendFormat(buf, "2006-01-02 15:04:05.999999"), "+00"...), false, nil
				default:
					return x.AppendFormat(buf, "2006-01-02 15:04:05.999999"), false, nil
				}
			}
		}
	}
	s, null, err := sinkText(v, ct, pgType)
	if err != nil || null {
		return buf, null, err
	}
	return append(buf, s...), false, nil
}

func (x *sinkTx) deleteKeys(ctx context.Context, spec *sink.TableSpec, info *sinkTableInfo, keys [][]any) error {
	nk := len(spec.Key)
	names := make([]string, nk)
	for i, k := range spec.Key {
		names[i] = sinkQuote(k.Name)
	}
	lhs := "(" + strings.Join(names, ", ") + ")"
	for _, ch := range sink.Chunks(len(keys), max(1, min(5000, sinkMaxParams/nk))) {
		part := keys[ch[0]:ch[1]]
		var b strings.Builder
		b.WriteString("DELETE FROM " + info.ident + " WHERE " + lhs + " IN (")
		args := make([]any, 0, nk*len(part))
		for i, k := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(")
			for j, v := range k {
				col := spec.Key[j]
				s, null, err := sinkText(v, &col.Type, info.types[col.Name])
				if err != nil || null {
					if err == nil {
						err = errors.New("null key value")
					}
					return &sink.ValueError{Column: col.Name, Err: err}
				}
				args = append(args, s)
				if j > 0 {
					b.WriteString(", ")
				}
				// Parameters go as text and are cast by the server, so one
				// code path serves every column type.
				fmt.Fprintf(&b, "$%d::text::%s", len(args), sinkCastType(info.types[col.Name]))
			}
			b.WriteString(")")
		}
		b.WriteString(")")
		if _, err := x.tx.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("deleting %d rows: %w", len(part), err)
		}
	}
	return nil
}

var (
	sinkVarcharRe = regexp.MustCompile(`character varying\(\d+\)`)
	sinkCharRe    = regexp.MustCompile(`character\(\d+\)`)
)

// sinkCastType is the type the staged text is cast to. An explicit cast to
// varchar(n) or char(n) silently truncates, so those are cast without a
// length and the assignment to the column checks it (and fails, which makes
// the record a rejected one instead of a silently shortened value).
func sinkCastType(typ string) string {
	typ = sinkVarcharRe.ReplaceAllString(typ, "varchar")
	return sinkCharRe.ReplaceAllString(typ, "bpchar")
}

// Debezium's encodings of PostgreSQL's infinite timestamps and dates (the
// dates as it streams them: LocalDate -5877611-06-21 and -06-22).
const (
	sinkPosInfinityMicros = 9223372036825200000
	sinkNegInfinityMicros = -9223372036832400000
	sinkPosInfinityDays   = -2147472692
	sinkNegInfinityDays   = -2147472691
)

// sinkText renders a sink value in PostgreSQL's text input format for a
// column of type pgType (format_type).
func sinkText(v any, ct *sink.ColumnType, pgType string) (string, bool, error) {
	if v == nil {
		return "", true, nil
	}
	isArray := strings.HasSuffix(pgType, "[]")
	switch x := v.(type) {
	case bool:
		if strings.HasPrefix(pgType, "bit") {
			return map[bool]string{true: "1", false: "0"}[x], false, nil
		}
		return map[bool]string{true: "t", false: "f"}[x], false, nil
	case int64:
		return strconv.FormatInt(x, 10), false, nil
	case float64:
		return sinkFloat(x, 64), false, nil
	case float32:
		return sinkFloat(float64(x), 32), false, nil
	case string:
		return x, false, nil
	case []byte:
		return `\x` + hex.EncodeToString(x), false, nil
	case time.Time:
		return sinkTime(x, ct), false, nil
	case time.Duration:
		if ct.Kind == sink.KindInterval || pgType == "interval" {
			return strconv.FormatInt(x.Microseconds(), 10) + " microseconds", false, nil
		}
		return sink.FormatTimeOfDay(x), false, nil
	case []any:
		if !isArray {
			s, err := sink.JSONText(x)
			return s, false, err
		}
		var b strings.Builder
		b.WriteByte('{')
		elemType := strings.TrimSuffix(pgType, "[]")
		et := ct.Elem
		if et == nil {
			et = &sink.ColumnType{Kind: sink.KindString}
		}
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			s, null, err := sinkText(e, et, elemType)
			if err != nil {
				return "", false, fmt.Errorf("element %d: %w", i, err)
			}
			if null {
				b.WriteString("NULL")
				continue
			}
			b.WriteByte('"')
			b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s))
			b.WriteByte('"')
		}
		b.WriteByte('}')
		return b.String(), false, nil
	case sink.Geometry:
		switch {
		case pgType == "point" && x.IsPoint:
			return fmt.Sprintf("(%s,%s)", sinkFloat(x.X, 64), sinkFloat(x.Y, 64)), false, nil
		case pgType == "bytea":
			return `\x` + hex.EncodeToString(x.WKB), false, nil
		case strings.HasSuffix(pgType, "geometry"):
			// PostGIS reads hex (E)WKB; the SRID travels in the EWKB header.
			return hex.EncodeToString(x.EWKB()), false, nil
		}
		s, err := sink.JSONText(x)
		return s, false, err
	case map[string]any:
		if pgType == "point" {
			if px, ok := x["x"].(float64); ok {
				if py, ok := x["y"].(float64); ok {
					return fmt.Sprintf("(%s,%s)", sinkFloat(px, 64), sinkFloat(py, 64)), false, nil
				}
			}
		}
		s, err := sink.JSONText(x)
		return s, false, err
	}
	return "", false, fmt.Errorf("no PostgreSQL text form for a %T value", v)
}

func sinkFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

func sinkTime(t time.Time, ct *sink.ColumnType) string {
	t = t.UTC()
	if ct.Kind == sink.KindTimestamp || ct.Kind == sink.KindTimestampTZ {
		switch t.UnixMicro() {
		case sinkPosInfinityMicros:
			return "infinity"
		case sinkNegInfinityMicros:
			return "-infinity"
		}
	}
	if ct.Kind == sink.KindDate && t.Unix()%86400 == 0 {
		switch t.Unix() / 86400 {
		case sinkPosInfinityDays:
			return "infinity"
		case sinkNegInfinityDays:
			return "-infinity"
		}
	}
	bc := t.Year() <= 0
	if bc {
		// 1 BC is year 0 in Go's proleptic calendar.
		t = t.AddDate(-2*t.Year()+1, 0, 0)
	}
	var s string
	switch ct.Kind {
	case sink.KindDate:
		s = t.Format("2006-01-02")
	case sink.KindTimestampTZ:
		s = t.Format("2006-01-02 15:04:05.999999") + "+00"
	default:
		s = t.Format("2006-01-02 15:04:05.999999")
	}
	if bc {
		s += " BC"
	}
	return s
}

// MissingKeys implements sink.MissingKeysTx: one query per chunk of keys,
// returning the index of each key with no row.
func (x *sinkTx) MissingKeys(ctx context.Context, spec *sink.TableSpec, keys [][]any) ([]int, error) {
	info, err := x.t.loadTable(ctx, x.tx, spec)
	if err != nil {
		return nil, err
	}
	if info == nil {
		all := make([]int, len(keys))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	nk := len(spec.Key)
	cols := []string{"i"}
	cond := make([]string, nk)
	for j, k := range spec.Key {
		cols = append(cols, fmt.Sprintf("k%d", j))
		cond[j] = fmt.Sprintf("t.%s = v.k%d", sinkQuote(k.Name), j)
	}
	var out []int
	for _, ch := range sink.Chunks(len(keys), max(1, min(5000, sinkMaxParams/nk))) {
		var b strings.Builder
		b.WriteString("SELECT v.i FROM (VALUES ")
		args := make([]any, 0, nk*(ch[1]-ch[0]))
		for i := ch[0]; i < ch[1]; i++ {
			if i > ch[0] {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "(%d", i)
			for j, v := range keys[i] {
				col := spec.Key[j]
				s, null, err := sinkText(v, &col.Type, info.types[col.Name])
				if err != nil || null {
					if err == nil {
						err = errors.New("null key value")
					}
					return nil, &sink.ValueError{Column: col.Name, Err: err}
				}
				args = append(args, s)
				fmt.Fprintf(&b, ", $%d::text::%s", len(args), sinkCastType(info.types[col.Name]))
			}
			b.WriteString(")")
		}
		b.WriteString(") AS v(" + strings.Join(cols, ", ") + ") WHERE NOT EXISTS (SELECT 1 FROM " + info.ident + " t WHERE " + strings.Join(cond, " AND ") + ")")
		rows, err := x.tx.Query(ctx, b.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("looking up %d keys: %w", ch[1]-ch[0], err)
		}
		for rows.Next() {
			var i int32
			if err := rows.Scan(&i); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, int(i))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("looking up %d keys: %w", ch[1]-ch[0], err)
		}
	}
	return out, nil
}

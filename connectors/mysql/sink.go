package mysql

// The MySQL / MariaDB sink (`sinks: - type: mysql`).
//
// Each batch is applied with multi-row INSERT ... ON DUPLICATE KEY UPDATE
// and DELETE ... WHERE key IN (...) statements in one InnoDB transaction,
// together with the offsets. Truncates are DELETE FROM (TRUNCATE TABLE
// would commit implicitly), and table DDL runs outside the data
// transaction for the same reason. The session runs in strict SQL mode, so
// a value too long or out of range is a rejected record, never a silently
// truncated one; its time zone is UTC.
//
// Type mapping. From a MySQL source the column keeps its native type
// (__debezium.source.column.type / length / scale): integer types (also
// UNSIGNED), DECIMAL(p,s), FLOAT, DOUBLE, CHAR/VARCHAR(n), BINARY/VARBINARY(n),
// the TEXT and BLOB kinds, JSON, DATE, TIME(6), DATETIME(6), TIMESTAMP(6),
// YEAR, BIT(n), ENUM and SET (from the allowed values). Other sources get the
// closest type of the event's semantic type:
//
//	boolean -> BOOLEAN          int8 -> TINYINT            int16 -> SMALLINT
//	int32, year -> INT          int64 -> BIGINT            float32 -> FLOAT
//	float64 -> DOUBLE           decimal(p,s) -> DECIMAL(p,s) when p <= 65 and s <= 30, else VARCHAR(255) text
//	variable decimal -> VARCHAR(255) exact text (DECIMAL(65,30) would round)
//	string -> VARCHAR(n) for n <= 255, else LONGTEXT (key columns: VARCHAR(n <= 768, default 255))
//	char(n) -> CHAR(n)          json -> JSON               uuid -> CHAR(36)
//	enum -> VARCHAR(255)        set, xml -> LONGTEXT       bytes -> LONGBLOB (keys: VARBINARY(255))
//	bits(n) -> BIT(n), n <= 64  date -> DATE               time -> TIME(6)
//	timestamp -> DATETIME(6)    timestamptz -> DATETIME(6) in UTC (TIMESTAMP stops in 2038)
//	timetz -> VARCHAR(32)       interval -> BIGINT microseconds
//	array, struct -> JSON       inet, cidr, macaddr -> VARCHAR(64)
//	geometry (io.debezium.data.geometry.Geometry / Point) -> the MySQL
//	  source's spatial type (GEOMETRY, POINT, POLYGON, ...), else GEOMETRY
//	  (POINT for a Point), written in the server's internal form (SRID, WKB)

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/tributary-cdc/tributary/sink"
)

func init() { sink.Register("mysql", sinkDriver{}) }

// SinkConfig is the mysql sink's own configuration.
type SinkConfig struct {
	DSN             string `yaml:"dsn" required:"true" desc:"Target server in Go MySQL driver form: user:password@tcp(host:3306)/database. Works with MySQL and MariaDB. The user needs CREATE on the databases the tables go to (or the tables must exist) and INSERT, UPDATE, DELETE on them."`
	OffsetsDatabase string `yaml:"offsets_database" desc:"Database of the tributary_offsets table, created if missing. Default: the DSN's database, or tributary when the DSN names none."`
}

// Validate implements sink.Config.
func (c *SinkConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DSN) == "" {
		errs = append(errs, &sink.FieldError{Key: "dsn", Msg: "is required, e.g. user:password@tcp(host:3306)/database"})
	} else if _, err := gomysql.ParseDSN(c.DSN); err != nil {
		errs = append(errs, &sink.FieldError{Key: "dsn", Msg: "is not a valid MySQL DSN: " + sinkRedact(err.Error(), c.DSN)})
	}
	return errors.Join(errs...)
}

// sinkRedact removes the DSN's password from a message.
func sinkRedact(msg, dsn string) string {
	if cfg, err := gomysql.ParseDSN(dsn); err == nil && cfg.Passwd != "" {
		return strings.ReplaceAll(msg, cfg.Passwd, "xxxxx")
	}
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if colon := strings.Index(dsn[:at], ":"); colon >= 0 && colon+1 < at {
			return strings.ReplaceAll(msg, dsn[colon+1:at], "xxxxx")
		}
	}
	return msg
}

type sinkDriver struct{}

func (sinkDriver) NewConfig() sink.Config { return &SinkConfig{} }

func (sinkDriver) Open(name string, cfg sink.Config, log *slog.Logger) (sink.Target, error) {
	c, ok := cfg.(*SinkConfig)
	if !ok {
		return nil, fmt.Errorf("mysql sink %s: config is %T, want *mysql.SinkConfig", name, cfg)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return NewSinkTarget(name, *c, log), nil
}

// SinkTarget is a MySQL or MariaDB server written by one sink.
type SinkTarget struct {
	name      string
	cfg       SinkConfig
	log       *slog.Logger
	db        *sql.DB
	where     string
	offsetsDB string
	offsets   sink.OffsetsSQL
	tables    map[string]*sinkTableInfo
	// mariadb is set when the server is MariaDB, whose COLUMN_DEFAULT is
	// an SQL expression (MySQL's is the bare value).
	mariadb bool
	// plan is reused by every Apply (calls never overlap).
	plan sink.Plan
	// replayStep, set by tests, runs at the steps of a replay's swap; an
	// error stops the swap there, as a crash would.
	replayStep func(ctx context.Context, step string) error
}

type sinkTableInfo struct {
	ident   string
	types   map[string]string // column -> COLUMN_TYPE
	notNull map[string]bool
	// defaults are the " DEFAULT ..." clauses of the columns that have a
	// default, for MODIFY COLUMN, which restates the whole column.
	defaults map[string]string
}

// NewSinkTarget builds a target; Connect opens the connection.
func NewSinkTarget(name string, cfg SinkConfig, log *slog.Logger) *SinkTarget {
	if log == nil {
		log = slog.Default()
	}
	return &SinkTarget{name: name, cfg: cfg, log: log, tables: map[string]*sinkTableInfo{}}
}

// DB is the connection pool, for tests and tools (verify).
func (t *SinkTarget) DB() *sql.DB { return t.db }

func (t *SinkTarget) DefaultTableNameFormat() string { return "${source.schema}.${source.table}" }

func sinkQuote(id string) string { return "`" + strings.ReplaceAll(id, "`", "``") + "`" }

func (t *SinkTarget) ident(spec *sink.TableSpec) string {
	if spec.Schema == "" {
		return sinkQuote(spec.Name)
	}
	return sinkQuote(spec.Schema) + "." + sinkQuote(spec.Name)
}

// sinkOffsetsSQL spells the statements on an offsets table (the live one,
// or a replay's; see replay.go).
func sinkOffsetsSQL(table string) sink.OffsetsSQL {
	return sink.OffsetsSQL{
		Table:    table,
		TextType: "VARCHAR(255)", TimeType: "DATETIME(6)",
		TableOptions:   " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		OnDuplicateKey: true,
	}
}

func (t *SinkTarget) Connect(ctx context.Context) error {
	mc, err := gomysql.ParseDSN(t.cfg.DSN)
	if err != nil {
		return fmt.Errorf("mysql sink: invalid dsn: %s", sinkRedact(err.Error(), t.cfg.DSN))
	}
	t.where = mc.Addr + "/" + mc.DBName
	t.offsetsDB = t.cfg.OffsetsDatabase
	if t.offsetsDB == "" {
		t.offsetsDB = mc.DBName
	}
	if t.offsetsDB == "" {
		t.offsetsDB = "tributary"
	}
	t.offsets = sinkOffsetsSQL(sinkQuote(t.offsetsDB) + "." + sink.OffsetsTable)
	mc.Loc = time.UTC
	// Client-side interpolation: one round trip per multi-row statement
	// and no limit of 65535 placeholders.
	mc.InterpolateParams = true
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	mc.Params["time_zone"] = "'+00:00'"
	mc.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
	if mc.Timeout == 0 {
		mc.Timeout = 10 * time.Second
	}
	conn, err := gomysql.NewConnector(mc)
	if err != nil {
		return fmt.Errorf("mysql sink %s: %s", t.where, sinkRedact(err.Error(), t.cfg.DSN))
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connecting to target MySQL %s as %s: %s", t.where, mc.User, sinkRedact(err.Error(), t.cfg.DSN))
	}
	t.db = db
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		db.Close()
		return fmt.Errorf("target MySQL %s: reading the server version: %w", t.where, err)
	}
	t.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	if err := t.ensureDatabase(ctx, t.offsetsDB); err != nil {
		return fmt.Errorf("target MySQL %s: %w", t.where, err)
	}
	_, err = db.ExecContext(ctx, t.offsets.CreateTable())
	if err != nil {
		return fmt.Errorf("target MySQL %s: creating %s: %w", t.where, t.offsets.Table, err)
	}
	// A replay that died after swapping its tables in left their offsets
	// to move (see replay.go); that comes before anything is applied.
	if err := t.finishSwap(ctx, t.name); err != nil {
		return fmt.Errorf("target MySQL %s: %w", t.where, err)
	}
	return nil
}

// ensureDatabase creates a database only when it is missing, so a user
// without CREATE can use existing ones.
func (t *SinkTarget) ensureDatabase(ctx context.Context, name string) error {
	var n int
	if err := t.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("looking up database %s: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := t.db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+sinkQuote(name)+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

func (t *SinkTarget) Close() error {
	if t.db == nil {
		return nil
	}
	err := t.db.Close()
	t.db = nil
	return err
}

// sinkColumnType is the MySQL type to create a column with.
func sinkColumnType(c *sink.ColumnSpec) string {
	ct := &c.Type
	if ct.Kind == sink.KindGeometry {
		if ct.Dialect == sink.DialectMySQL {
			switch n := strings.Fields(ct.Native + " x")[0]; n {
			case "GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION":
				return n
			}
		}
		if ct.ConnectName == "io.debezium.data.geometry.Point" {
			return "POINT"
		}
		return "GEOMETRY"
	}
	if ct.Dialect == sink.DialectMySQL && ct.Native != "" {
		if s := sinkNativeMySQL(ct, c.Key); s != "" {
			return s
		}
	}
	if ct.Dialect == sink.DialectPostgres {
		switch ct.Native {
		case "BPCHAR":
			if ct.Length > 0 && ct.Length <= 255 {
				return fmt.Sprintf("CHAR(%d)", ct.Length)
			}
		case "INET", "CIDR", "MACADDR", "MACADDR8":
			return "VARCHAR(64)"
		}
	}
	switch ct.Kind {
	case sink.KindBool:
		return "BOOLEAN"
	case sink.KindInt8:
		return "TINYINT"
	case sink.KindInt16:
		return "SMALLINT"
	case sink.KindInt32, sink.KindYear:
		return "INT"
	case sink.KindInt64, sink.KindInterval:
		return "BIGINT"
	case sink.KindFloat32:
		return "FLOAT"
	case sink.KindFloat64:
		return "DOUBLE"
	case sink.KindDecimal:
		if ct.Precision > 0 && ct.Precision <= 65 && ct.DecimalScale >= 0 && ct.DecimalScale <= 30 && ct.DecimalScale <= ct.Precision {
			return fmt.Sprintf("DECIMAL(%d,%d)", ct.Precision, ct.DecimalScale)
		}
		return "VARCHAR(255)"
	case sink.KindVarDecimal:
		return "VARCHAR(255)"
	case sink.KindJSON, sink.KindArray, sink.KindStruct:
		if c.Key {
			return "VARCHAR(255)"
		}
		return "JSON"
	case sink.KindUUID:
		return "CHAR(36)"
	case sink.KindEnum:
		return "VARCHAR(255)"
	case sink.KindBytes:
		if c.Key {
			return "VARBINARY(255)"
		}
		return "LONGBLOB"
	case sink.KindBits:
		if ct.BitLength > 0 && ct.BitLength <= 64 {
			return fmt.Sprintf("BIT(%d)", ct.BitLength)
		}
		return "VARCHAR(255)"
	case sink.KindDate:
		return "DATE"
	case sink.KindTime:
		return "TIME(6)"
	case sink.KindTimestamp, sink.KindTimestampTZ:
		return "DATETIME(6)"
	case sink.KindTimeTZ:
		return "VARCHAR(32)"
	}
	// Strings, sets, xml and anything else as text.
	n := ct.Length
	if c.Key {
		if n <= 0 || n > 768 {
			n = 255
		}
		return fmt.Sprintf("VARCHAR(%d)", n)
	}
	if ct.Kind == sink.KindString && n > 0 && n <= 255 && (ct.Native == "VARCHAR" || ct.Native == "") {
		return fmt.Sprintf("VARCHAR(%d)", n)
	}
	return "LONGTEXT"
}

// sinkNativeMySQL recreates a MySQL source column type.
func sinkNativeMySQL(ct *sink.ColumnType, key bool) string {
	fields := strings.Fields(ct.Native)
	if len(fields) == 0 {
		return ""
	}
	base := fields[0]
	unsigned := ""
	if strings.Contains(ct.Native, "UNSIGNED") {
		unsigned = " UNSIGNED"
	}
	switch base {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "INTEGER", "BIGINT":
		if ct.Kind == sink.KindBool {
			return "BOOLEAN"
		}
		return base + unsigned
	case "BOOLEAN", "BOOL":
		return "BOOLEAN"
	case "DECIMAL", "NUMERIC", "DEC", "FIXED":
		if ct.Length > 0 && ct.Length <= 65 && ct.Scale >= 0 && ct.Scale <= 30 {
			return fmt.Sprintf("DECIMAL(%d,%d)%s", ct.Length, ct.Scale, unsigned)
		}
		return ""
	case "FLOAT", "DOUBLE", "REAL":
		return base + unsigned
	case "CHAR", "VARCHAR", "BINARY", "VARBINARY":
		if ct.Length > 0 && ct.Length <= 16383 && (!key || ct.Length <= 768) {
			return fmt.Sprintf("%s(%d)", base, ct.Length)
		}
		return ""
	case "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB":
		if key {
			return ""
		}
		return base
	case "JSON", "DATE", "YEAR":
		return base
	case "TIME", "DATETIME", "TIMESTAMP":
		return base + "(6)"
	case "BIT":
		if ct.Length > 0 && ct.Length <= 64 {
			if ct.Kind == sink.KindBool {
				return "BIT(1)"
			}
			return fmt.Sprintf("BIT(%d)", ct.Length)
		}
		return ""
	case "ENUM", "SET":
		allowed := ct.Params["allowed"]
		if allowed == "" {
			return ""
		}
		vals := sink.SplitAllowed(allowed)
		for i, v := range vals {
			vals[i] = "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
		}
		return base + "(" + strings.Join(vals, ",") + ")"
	}
	return ""
}

func (t *SinkTarget) EnsureTable(ctx context.Context, spec *sink.TableSpec) error {
	if spec.Schema != "" {
		if err := t.ensureDatabase(ctx, spec.Schema); err != nil {
			return err
		}
	}
	info, err := t.loadTable(ctx, t.db, spec)
	if err != nil {
		return err
	}
	ident := t.ident(spec)
	if info == nil {
		var b strings.Builder
		b.WriteString("CREATE TABLE IF NOT EXISTS " + ident + " (")
		for i, c := range spec.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			typ := sinkColumnType(c)
			def, err := sinkDefault(c, typ)
			if err != nil {
				return fmt.Errorf("creating table: %w", err)
			}
			b.WriteString(sinkQuote(c.Name) + " " + typ)
			if !c.Optional || c.Key {
				b.WriteString(" NOT NULL")
			} else {
				b.WriteString(" NULL")
			}
			b.WriteString(def)
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
		b.WriteString(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
		if _, err := t.db.ExecContext(ctx, b.String()); err != nil {
			return fmt.Errorf("creating table: %w", err)
		}
		t.log.Info("created table", "table", spec.QualifiedName(), "columns", len(spec.Columns))
		_, err := t.loadTable(ctx, t.db, spec)
		return err
	}
	changed := false
	for _, c := range spec.Columns {
		typ, ok := info.types[c.Name]
		if former, had := info.types[c.FormerName]; !ok && had && c.FormerName != "" {
			if _, err := t.db.ExecContext(ctx, "ALTER TABLE "+ident+" RENAME COLUMN "+sinkQuote(c.FormerName)+" TO "+sinkQuote(c.Name)); err != nil {
				return fmt.Errorf("renaming column %s to %s: %w", c.FormerName, c.Name, err)
			}
			t.log.Info("renamed column to the source's spelling", "table", spec.QualifiedName(), "was", c.FormerName, "now", c.Name)
			info.types[c.Name], info.notNull[c.Name], info.defaults[c.Name] = former, info.notNull[c.FormerName], info.defaults[c.FormerName]
			delete(info.types, c.FormerName)
			typ, ok, changed = former, true, true
		}
		if !ok {
			ct := sinkColumnType(c)
			def, err := sinkDefault(c, ct)
			if err != nil {
				return fmt.Errorf("adding column %s %s: %w", c.Name, ct, err)
			}
			// With a default the rows the copy holds get it, as the
			// source's rows did; NOT NULL then holds for them too.
			null := " NULL"
			if def != "" && !c.Optional {
				null = " NOT NULL"
			}
			if _, err := t.db.ExecContext(ctx, "ALTER TABLE "+ident+" ADD COLUMN "+sinkQuote(c.Name)+" "+ct+null+def); err != nil {
				return fmt.Errorf("adding column %s %s%s%s: %w", c.Name, ct, null, def, err)
			}
			t.log.Info("added column", "table", spec.QualifiedName(), "column", c.Name, "type", ct+null+def)
			changed = true
			continue
		}
		nullable := !info.notNull[c.Name]
		if c.Optional && !c.Key && !nullable {
			nullable = true
			if _, err := t.db.ExecContext(ctx, "ALTER TABLE "+ident+" MODIFY COLUMN "+sinkQuote(c.Name)+" "+typ+" NULL"+info.defaults[c.Name]); err != nil {
				return fmt.Errorf("making column %s nullable: %w", c.Name, err)
			}
			t.log.Info("column is now nullable (gone or optional at the source)", "table", spec.QualifiedName(), "column", c.Name)
			changed = true
		}
		// Key columns too: a widening seen first after a restart (the copy
		// still has INT, the schema now says BIGINT) is no change of this
		// run, yet the copy must follow it.
		{
			want := sinkColumnType(c)
			switch sinkCompareTypes(typ, want) {
			case sinkTypeWider:
				// MODIFY restates the whole column: keep its nullability
				// and default.
				null := " NOT NULL"
				if nullable {
					null = " NULL"
				}
				def := info.defaults[c.Name]
				if _, err := t.db.ExecContext(ctx, "ALTER TABLE "+ident+" MODIFY COLUMN "+sinkQuote(c.Name)+" "+want+null+def); err != nil {
					return fmt.Errorf("widening column %s from %s to %s: %w", c.Name, typ, want, err)
				}
				t.log.Info("widened column", "table", spec.QualifiedName(), "column", c.Name, "was", typ, "now", want)
				changed = true
			case sinkTypeOther:
				if !c.TypeChanged {
					break // a copy's own choice (or an older mapping): kept
				}
				// Not a widening: convert the rows as the source's ALTER
				// did (strict mode refuses what does not convert); when
				// they do not convert the copy cannot follow.
				null := " NOT NULL"
				if nullable {
					null = " NULL"
				}
				if _, err := t.db.ExecContext(ctx, "ALTER TABLE "+ident+" MODIFY COLUMN "+sinkQuote(c.Name)+" "+want+null); err != nil {
					return sinkTypeChangeError(spec, c, typ, want, err)
				}
				t.log.Warn("changed the type of a column", "table", spec.QualifiedName(), "column", c.Name, "was", typ, "now", want)
				changed = true
			}
		}
	}
	if changed {
		delete(t.tables, spec.QualifiedName())
		_, err = t.loadTable(ctx, t.db, spec)
	}
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
		"alter the copy's column by hand to a type that holds both, e.g. LONGTEXT (then restart the sink), or rebuild the copy with `tributary replay`",
		c.Name, spec.QualifiedName(), was, c.Type.String(), have, want, cause)
}

// sinkDefault is the " DEFAULT <literal>" clause of a column, "" when it
// has none. BLOB, TEXT and JSON columns take their default as an
// expression in parentheses, which MariaDB 10.2+ and MySQL 8.0.13+ accept.
func sinkDefault(c *sink.ColumnSpec, typ string) (string, error) {
	if !c.HasDefault || c.Key || c.Default == nil {
		return "", nil
	}
	if _, geo := c.Default.(sink.Geometry); geo {
		return "", nil
	}
	v, _, err := sinkValue(c.Default, &c.Type, typ)
	if err != nil {
		return "", fmt.Errorf("default of column %s: %w", c.Name, err)
	}
	var lit string
	switch x := v.(type) {
	case nil:
		return "", nil
	case int64:
		lit = strconv.FormatInt(x, 10)
	case uint64:
		lit = strconv.FormatUint(x, 10)
	case float64:
		lit = strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		lit = "'" + strings.ReplaceAll(strings.ReplaceAll(x, `\`, `\\`), "'", "''") + "'"
	case []byte:
		lit = "X'" + hex.EncodeToString(x) + "'"
	default:
		return "", fmt.Errorf("default of column %s: no MySQL literal for a %T value", c.Name, v)
	}
	switch t := strings.ToUpper(typ); {
	case strings.Contains(t, "TEXT"), strings.Contains(t, "BLOB"), t == "JSON":
		return " DEFAULT (" + lit + ")", nil
	}
	return " DEFAULT " + lit, nil
}

// Outcomes of comparing a column's type in the copy with the one its
// events call for.
const (
	sinkTypeSame  = iota // nothing to do
	sinkTypeWider        // the wanted type holds more: alter the column
	sinkTypeFits         // the copy's type already holds every wanted value
	sinkTypeOther        // neither: the copy cannot follow in place
)

// sinkMyType is a parsed column type: lower-case base, arguments
// (length, or precision and scale, or ENUM/SET values), unsigned.
type sinkMyType struct {
	base     string
	n, s     int
	values   []string
	unsigned bool
}

func sinkParseMyType(t string) sinkMyType {
	p := sinkMyType{n: -1, s: -1}
	t = strings.TrimSpace(t)
	low := strings.ToLower(t)
	if strings.HasSuffix(low, " zerofill") {
		low, t = strings.TrimSuffix(low, " zerofill"), t[:len(low)-len(" zerofill")]
	}
	if strings.HasSuffix(low, " unsigned") {
		p.unsigned = true
		low, t = strings.TrimSuffix(low, " unsigned"), t[:len(low)-len(" unsigned")]
	}
	base, args := low, ""
	if i := strings.IndexByte(low, '('); i > 0 && strings.HasSuffix(low, ")") {
		base, args = strings.TrimSpace(low[:i]), t[i+1:len(t)-1]
	}
	switch base {
	case "integer":
		base = "int"
	case "boolean", "bool":
		base, args = "tinyint", "1"
	case "dec", "numeric", "fixed":
		base = "decimal"
	case "real":
		base = "double"
	case "json":
		base = "longtext" // MariaDB's JSON is LONGTEXT with a check
	}
	p.base = base
	switch base {
	case "enum", "set":
		p.values = sinkSplitValues(args)
	case "tinyint", "smallint", "mediumint", "int", "bigint":
		// The display width means nothing to the values.
		if base == "tinyint" && args == "1" {
			p.n = 1
		}
	default:
		if args != "" {
			parts := strings.Split(args, ",")
			p.n, _ = strconv.Atoi(strings.TrimSpace(parts[0]))
			if len(parts) > 1 {
				p.s, _ = strconv.Atoi(strings.TrimSpace(parts[1]))
			}
		}
	}
	return p
}

// sinkSplitValues splits 'a','b”c' into its unquoted values.
func sinkSplitValues(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case !in && c == '\'':
			in = true
		case in && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case in && c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
			cur.WriteByte('\'')
		case in && c == '\'':
			in = false
			out = append(out, cur.String())
			cur.Reset()
		case in:
			cur.WriteByte(c)
		}
	}
	return out
}

// sinkCompareTypes compares the copy's column type have (COLUMN_TYPE) with
// the type want the sink would create it with now.
func sinkCompareTypes(have, want string) int {
	h, w := sinkParseMyType(have), sinkParseMyType(want)
	if h.base == w.base && h.n == w.n && h.s == w.s && h.unsigned == w.unsigned && slices.Equal(h.values, w.values) {
		return sinkTypeSame
	}
	intRank := map[string]int{"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "bigint": 5}
	textRank := map[string]int{"tinytext": 255, "text": 65535, "mediumtext": 16 << 20, "longtext": 1 << 32}
	blobRank := map[string]int{"tinyblob": 255, "blob": 65535, "mediumblob": 16 << 20, "longblob": 1 << 32}
	cmp := func(a, b int) int {
		switch {
		case b > a:
			return sinkTypeWider
		case b == a:
			return sinkTypeSame
		}
		return sinkTypeFits
	}
	if rh, rw := intRank[h.base], intRank[w.base]; rh > 0 && rw > 0 {
		if h.n == 1 || w.n == 1 {
			return sinkTypeOther // BOOLEAN
		}
		switch {
		case h.unsigned == w.unsigned:
			return cmp(rh, rw)
		case !w.unsigned && rw > rh:
			return sinkTypeWider // unsigned to a wider signed type
		case w.unsigned && !h.unsigned && rh > rw:
			return sinkTypeFits
		}
		return sinkTypeOther
	}
	if rh := intRank[h.base]; rh > 0 && w.base == "decimal" && w.n > 0 {
		digits := map[int]int{1: 3, 2: 5, 3: 8, 4: 10, 5: 20}[rh]
		if w.n-max(w.s, 0) >= digits {
			return sinkTypeWider
		}
		return sinkTypeOther
	}
	chars := func(p sinkMyType) int {
		if p.base == "varchar" {
			return p.n
		}
		return textRank[p.base]
	}
	bytesOf := func(p sinkMyType) int {
		if p.base == "varbinary" {
			return p.n
		}
		return blobRank[p.base]
	}
	switch {
	case h.base == "decimal" && w.base == "decimal":
		hi, wi := h.n-max(h.s, 0), w.n-max(w.s, 0)
		switch {
		case wi >= hi && w.s >= h.s:
			return sinkTypeWider
		case wi <= hi && w.s <= h.s:
			return sinkTypeFits
		}
	case h.base == "float" && w.base == "double":
		return sinkTypeWider
	case h.base == "double" && w.base == "float":
		return sinkTypeFits
	case chars(h) > 0 && chars(w) > 0:
		return cmp(chars(h), chars(w))
	case h.base == "char" && (w.base == "char" || chars(w) > 0):
		if w.base == "char" {
			return cmp(h.n, w.n)
		}
		if chars(w) >= h.n {
			return sinkTypeWider
		}
	case bytesOf(h) > 0 && bytesOf(w) > 0:
		return cmp(bytesOf(h), bytesOf(w))
	case h.base == "binary" && w.base == "binary" && w.n >= h.n:
		return cmp(h.n, w.n)
	case h.base == "bit" && w.base == "bit":
		return cmp(h.n, w.n)
	case (h.base == "enum" || h.base == "set") && h.base == w.base:
		have := map[string]bool{}
		for _, v := range w.values {
			have[v] = true
		}
		for _, v := range h.values {
			if !have[v] {
				return sinkTypeOther // a value the copy's rows may hold is gone
			}
		}
		return sinkTypeWider
	case h.base == "longtext" && w.base != "enum" && w.base != "set" && bytesOf(w) == 0 && w.base != "binary":
		// LONGTEXT holds the text form of any value (a column a user
		// altered after a type change the copy could not follow).
		return sinkTypeFits
	}
	return sinkTypeOther
}

type sinkQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (t *SinkTarget) loadTable(ctx context.Context, q sinkQuerier, spec *sink.TableSpec) (*sinkTableInfo, error) {
	key := spec.QualifiedName()
	if info := t.tables[key]; info != nil {
		return info, nil
	}
	dbExpr, args := "DATABASE()", []any{spec.Name}
	if spec.Schema != "" {
		dbExpr, args = "?", []any{spec.Schema, spec.Name}
	}
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.columns
		WHERE table_schema = `+dbExpr+` AND table_name = ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", key, err)
	}
	defer rows.Close()
	info := &sinkTableInfo{ident: t.ident(spec), types: map[string]string{}, notNull: map[string]bool{}, defaults: map[string]string{}}
	for rows.Next() {
		var name, typ, nullable string
		var def sql.NullString
		if err := rows.Scan(&name, &typ, &nullable, &def); err != nil {
			return nil, fmt.Errorf("reading columns of %s: %w", key, err)
		}
		info.types[name] = typ
		info.notNull[name] = nullable == "NO"
		// MariaDB gives COLUMN_DEFAULT as an expression (a quoted literal,
		// a number or NULL); MySQL as the bare value.
		switch {
		case !def.Valid || (t.mariadb && def.String == "NULL"):
		case t.mariadb:
			info.defaults[name] = " DEFAULT (" + def.String + ")"
		default:
			info.defaults[name] = " DEFAULT '" + strings.ReplaceAll(strings.ReplaceAll(def.String, `\`, `\\`), "'", "''") + "'"
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", key, err)
	}
	if len(info.types) == 0 {
		return nil, nil
	}
	t.tables[key] = info
	return info, nil
}

// sinkRejected are server errors caused by the data of a row.
var sinkRejected = map[uint16]bool{
	1048: true, // column cannot be null
	1062: true, // duplicate entry
	1264: true, // out of range value
	1265: true, // data truncated
	1292: true, // incorrect date/time value
	1366: true, // incorrect value for column
	1367: true, // illegal value
	1406: true, // data too long
	1411: true, // incorrect value for function
	1416: true, // cannot get geometry object
	1451: true, // foreign key (parent row)
	1452: true, // foreign key (child row)
	1690: true, // value out of range
	3140: true, // invalid JSON (MySQL)
	3819: true, // check constraint (MySQL)
	4025: true, // check constraint (MariaDB)
}

// Rejected implements sink.Target.
func (t *SinkTarget) Rejected(err error) bool {
	var ve *sink.ValueError
	if errors.As(err, &ve) {
		return true
	}
	var me *gomysql.MySQLError
	return errors.As(err, &me) && sinkRejected[me.Number]
}

func (t *SinkTarget) Begin(ctx context.Context) (sink.Tx, error) {
	if t.db == nil {
		return nil, errors.New("mysql target is not connected")
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("beginning transaction on %s: %w", t.where, err)
	}
	return &sinkTx{t: t, tx: tx}, nil
}

type sinkTx struct {
	t  *SinkTarget
	tx *sql.Tx
}

func (x *sinkTx) Commit(context.Context) error   { return x.tx.Commit() }
func (x *sinkTx) Rollback(context.Context) error { return x.tx.Rollback() }

func (x *sinkTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := x.tx.ExecContext(ctx, q, args...)
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
	rows, err := x.tx.QueryContext(ctx, x.t.offsets.Select(), sinkName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sink.ScanOffsets(rows)
}

func (x *sinkTx) StoreOffsets(ctx context.Context, sinkName string, next map[sink.TopicPartition]int64) error {
	return x.t.offsets.Store(ctx, x.exec, sinkName, next, time.Now().UTC().Format(sink.LayoutTimestamp))
}

// sinkMaxStatementBytes keeps a multi-row statement well under the usual
// max_allowed_packet (16-64 MiB).
const sinkMaxStatementBytes = 4 << 20

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
		// DELETE, not TRUNCATE TABLE, which would commit implicitly.
		func() error { return x.exec(ctx, "DELETE FROM "+info.ident) },
		func(keys [][]any) error { return x.deleteKeys(ctx, spec, info, keys) },
		func(g *sink.WriteGroup) error { return x.write(ctx, spec, info, g.Op, g.Cols, changes, g.Rows) })
}

func (x *sinkTx) write(ctx context.Context, spec *sink.TableSpec, info *sinkTableInfo, op sink.Op, cs *sink.ColSet, changes []sink.Change, idx []int) error {
	cols := cs.Columns
	names := make([]string, len(cols))
	for i, c := range cols {
		if _, ok := info.types[c.Name]; !ok {
			return fmt.Errorf("column %s is missing from %s", c.Name, spec.QualifiedName())
		}
		names[i] = sinkQuote(c.Name)
	}
	head := "INSERT INTO " + info.ident + " (" + strings.Join(names, ", ") + ") VALUES "
	var tail string
	if op == sink.OpUpsert && len(spec.Key) > 0 {
		var set []string
		for _, c := range cols {
			if !c.Key {
				set = append(set, sinkQuote(c.Name)+" = VALUES("+sinkQuote(c.Name)+")")
			}
		}
		if len(set) == 0 {
			k := sinkQuote(spec.Key[0].Name)
			set = append(set, k+" = "+k)
		}
		tail = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	tuple := "(" + strings.Repeat("?, ", len(cols)-1) + "?)"
	var b strings.Builder
	var args []any
	n, size := 0, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		b.WriteString(tail)
		err := x.exec(ctx, b.String(), args...)
		if err != nil {
			return fmt.Errorf("writing %d rows: %w", n, err)
		}
		b.Reset()
		args, n, size = args[:0], 0, 0
		return nil
	}
	for _, ri := range idx {
		c := &changes[ri]
		if n == 0 {
			b.WriteString(head)
		} else {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
		for j, col := range cols {
			v, sz, err := sinkValue(c.Row[j], &col.Type, info.types[col.Name])
			if err != nil {
				return &sink.ValueError{Column: col.Name, Err: err}
			}
			args = append(args, v)
			size += sz
		}
		n++
		if size >= sinkMaxStatementBytes || n >= 5000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (x *sinkTx) deleteKeys(ctx context.Context, spec *sink.TableSpec, info *sinkTableInfo, keys [][]any) error {
	if len(keys) == 0 {
		return nil
	}
	nk := len(spec.Key)
	names := make([]string, nk)
	for i, k := range spec.Key {
		names[i] = sinkQuote(k.Name)
	}
	lhs, tuple := names[0], "?"
	if nk > 1 {
		lhs = "(" + strings.Join(names, ", ") + ")"
		tuple = "(" + strings.Repeat("?, ", nk-1) + "?)"
	}
	for _, ch := range sink.Chunks(len(keys), 2000) {
		part := keys[ch[0]:ch[1]]
		var b strings.Builder
		b.WriteString("DELETE FROM " + info.ident + " WHERE " + lhs + " IN (")
		args := make([]any, 0, nk*len(part))
		for i, k := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			for j, v := range k {
				col := spec.Key[j]
				sv, _, err := sinkValue(v, &col.Type, info.types[col.Name])
				if err != nil {
					return &sink.ValueError{Column: col.Name, Err: err}
				}
				args = append(args, sv)
			}
		}
		b.WriteString(")")
		if err := x.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("deleting %d rows: %w", len(part), err)
		}
	}
	return nil
}

// sinkValue converts a sink value for a column of MySQL type colType; it
// also returns an estimate of its size in the statement.
func sinkValue(v any, ct *sink.ColumnType, colType string) (any, int, error) {
	switch x := v.(type) {
	case nil:
		return nil, 4, nil
	case int64:
		if x < 0 && strings.Contains(strings.ToLower(colType), "unsigned") && ct.NativeIs(sink.DialectMySQL, "BIGINT UNSIGNED", "BIGINT UNSIGNED ZEROFILL") {
			// bigint.unsigned.handling.mode=long sends a BIGINT UNSIGNED
			// value of 2^63 or more as its two's complement: the column
			// is unsigned, so it gets the value back.
			return strconv.FormatUint(uint64(x), 10), 20, nil
		}
		return x, 20, nil
	case float64:
		return x, 20, nil
	case float32:
		// Through its shortest text form, so 1.1 stays 1.1 rather than
		// becoming 1.100000023841858 in a DOUBLE column.
		return strconv.FormatFloat(float64(x), 'g', -1, 32), 16, nil
	case bool:
		if x {
			return int64(1), 1, nil
		}
		return int64(0), 1, nil
	case string:
		if ct.Kind == sink.KindBits && strings.HasPrefix(strings.ToLower(colType), "bit") {
			n, err := sink.BitsUint64(x)
			if err != nil {
				return nil, 0, err
			}
			return n, 20, nil
		}
		return x, len(x) + 3, nil
	case []byte:
		return x, 2*len(x) + 3, nil
	case time.Time:
		x = x.UTC()
		if ct.Kind == sink.KindDate {
			return x.Format(sink.LayoutDate), 12, nil
		}
		return x.Format(sink.LayoutTimestamp), 28, nil
	case time.Duration:
		if ct.Kind == sink.KindInterval {
			return x.Microseconds(), 20, nil
		}
		return sink.FormatTimeOfDay(x), 18, nil
	case sink.Geometry:
		switch strings.ToLower(colType) {
		case "json", "longtext", "text", "mediumtext":
			// A copy made before geometries were stored natively.
			s, err := sink.JSONText(x)
			return s, len(s) + 3, err
		}
		// The server's internal form (SRID, then WKB) goes into a spatial
		// column as it is.
		b := x.MySQLInternal()
		return b, 2*len(b) + 3, nil
	case []any, map[string]any:
		s, err := sink.JSONText(x)
		return s, len(s) + 3, err
	}
	return nil, 0, fmt.Errorf("no MySQL form for a %T value", v)
}

// MissingKeys implements sink.MissingKeysTx: one query per chunk of keys,
// returning the index of each key with no row. Each key is compared as a
// parameter with the column, so the column's collation applies (a derived
// table of parameters would carry a collation of its own).
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
	cond := make([]string, len(spec.Key))
	for j, k := range spec.Key {
		cond[j] = sinkQuote(k.Name) + " = ?"
	}
	where := strings.Join(cond, " AND ")
	var out []int
	for _, ch := range sink.Chunks(len(keys), 500) {
		var b strings.Builder
		var args []any
		for i := ch[0]; i < ch[1]; i++ {
			if i > ch[0] {
				b.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&b, "SELECT %d FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM %s WHERE %s)", i, info.ident, where)
			for j, v := range keys[i] {
				col := spec.Key[j]
				sv, _, err := sinkValue(v, &col.Type, info.types[col.Name])
				if err != nil {
					return nil, &sink.ValueError{Column: col.Name, Err: err}
				}
				args = append(args, sv)
			}
		}
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
			return nil, fmt.Errorf("looking up %d keys: %w", ch[1]-ch[0], err)
		}
	}
	return out, nil
}

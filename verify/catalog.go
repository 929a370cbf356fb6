package verify

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// OpenPostgres opens a PostgreSQL database for comparison, in UTC.
func OpenPostgres(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL URL: %w", err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["extra_float_digits"] = "1"
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(2)
	return db, nil
}

// OpenMySQL opens a MySQL/MariaDB server for comparison (go-sql-driver DSN),
// with time_zone '+00:00'.
func OpenMySQL(dsn string) (*sql.DB, error) {
	mc, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("invalid MySQL DSN: %w", err)
	}
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	mc.Params["time_zone"] = "'+00:00'"
	mc.ParseTime = false
	conn, err := gomysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	return db, nil
}

// OpenSQLite opens a SQLite file read-only.
func OpenSQLite(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	return db, nil
}

// Describe reads the columns and primary key of a side's table; a missing
// table has no columns.
func Describe(ctx context.Context, s Side) (*Table, error) {
	switch s.Dialect {
	case Postgres:
		return describePG(ctx, s)
	case MySQL:
		return describeMySQL(ctx, s)
	case SQLite:
		return describeSQLite(ctx, s)
	}
	return nil, fmt.Errorf("unknown dialect %d", s.Dialect)
}

func describePG(ctx context.Context, s Side) (*Table, error) {
	ident := pgx.Identifier{s.Table}
	if s.Schema != "" {
		ident = pgx.Identifier{s.Schema, s.Table}
	}
	rows, err := s.DB.QueryContext(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory,
		       COALESCE(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, 0)
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, ident.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	defer rows.Close()
	t := &Table{}
	keyPos := map[int]string{}
	for rows.Next() {
		var name, typ, cat string
		var pos int
		if err := rows.Scan(&name, &typ, &cat, &pos); err != nil {
			return nil, fmt.Errorf("reading the catalog: %w", err)
		}
		q := quoteIdent(Postgres, name)
		c := Column{Name: name, Type: typ, expr: q + "::text"}
		switch {
		case cat == "A":
			c.Cat, c.expr = CatJSON, "to_jsonb("+q+")::text"
		case typ == "json" || typ == "jsonb":
			c.Cat, c.expr = CatJSON, q+"::jsonb::text"
		case typ == "money":
			// money's text has a currency symbol; its numeric value is what
			// Debezium sends.
			c.Cat, c.expr = CatDecimal, q+"::numeric::text"
		case typ == "inet":
			// inet's text cast adds the netmask of a host address
			// (192.168.0.1/32); its output form, which Debezium sends, does
			// not.
			c.expr = "CASE WHEN " + q + " IS NOT NULL THEN format('%s', " + q + ") END"
		case typ == "time with time zone":
			c.Cat = CatTimeTZ
		case typ == "point":
			// Debezium sends a point as its Geometry Point struct: copies
			// in other engines hold its WKB.
			c.Cat = CatGeometry
		case typ == "geometry" || strings.HasPrefix(typ, "geometry("):
			// PostGIS, when the copy has it.
			c.Cat, c.expr = CatGeometry, "ST_SRID("+q+")::text || ':' || encode(ST_AsBinary("+q+"), 'hex')"
		case typ == "bytea":
			c.Cat, c.expr = CatBytes, "encode("+q+", 'hex')"
		case typ == "interval":
			// Debezium's MicroDuration counts a month as 365.25/12 days
			// where extract(epoch) counts 30: months, days and the time part
			// are summed as Debezium does, so '1 mon' equals its copy.
			c.Cat, c.expr = CatInterval, "trunc((extract(year from "+q+") * 12 + extract(month from "+q+")) * 2629800000000"+
				" + extract(day from "+q+") * 86400000000"+
				" + extract(epoch from "+q+" - date_trunc('day', "+q+")) * 1000000)::numeric(30,0)::text"
		case typ == "smallint" || typ == "integer" || typ == "bigint" || typ == "oid":
			c.Cat = CatInt
		case strings.HasPrefix(typ, "numeric"):
			c.Cat = CatDecimal
		case typ == "real":
			c.Cat = CatFloat32
		case typ == "double precision":
			c.Cat = CatFloat64
		case typ == "boolean":
			c.Cat = CatBool
		case strings.HasPrefix(typ, "timestamp") && strings.HasSuffix(typ, "with time zone"):
			c.Cat = CatTimestampTZ
		case strings.HasPrefix(typ, "timestamp"):
			c.Cat = CatTimestamp
		case typ == "date":
			c.Cat = CatDate
		case strings.HasPrefix(typ, "time") && strings.HasSuffix(typ, "without time zone"):
			c.Cat = CatTime
		case typ == "uuid":
			c.Cat = CatUUID
		case typ == "character" || strings.HasPrefix(typ, "character("):
			c.Cat = CatChar
		case strings.HasPrefix(typ, "bit"):
			c.Cat = CatBits
		}
		t.Columns = append(t.Columns, c)
		if pos > 0 {
			keyPos[pos] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	for i := 1; i <= len(keyPos); i++ {
		t.Key = append(t.Key, keyPos[i])
	}
	return t, nil
}

func describeMySQL(ctx context.Context, s Side) (*Table, error) {
	schema := "DATABASE()"
	args := []any{s.Table}
	if s.Schema != "" {
		schema = "?"
		args = []any{s.Schema, s.Table}
	}
	rows, err := s.DB.QueryContext(ctx, `
		SELECT c.COLUMN_NAME, LOWER(c.DATA_TYPE), LOWER(c.COLUMN_TYPE),
		       COALESCE((SELECT k.ORDINAL_POSITION FROM information_schema.KEY_COLUMN_USAGE k
		                 WHERE k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
		                   AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'), 0),
		       (SELECT COUNT(*) FROM information_schema.CHECK_CONSTRAINTS cc
		         WHERE cc.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND cc.TABLE_NAME = c.TABLE_NAME
		           AND cc.CHECK_CLAUSE LIKE CONCAT('%json_valid(', CHAR(96), c.COLUMN_NAME, CHAR(96), ')%'))
		FROM information_schema.COLUMNS c
		WHERE c.TABLE_SCHEMA = `+schema+` AND c.TABLE_NAME = ?
		ORDER BY c.ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	defer rows.Close()
	t := &Table{}
	keyPos := map[int]string{}
	for rows.Next() {
		var name, dt, ct string
		var pos, jsonCheck int
		if err := rows.Scan(&name, &dt, &ct, &pos, &jsonCheck); err != nil {
			return nil, fmt.Errorf("reading the catalog: %w", err)
		}
		q := quoteIdent(MySQL, name)
		c := Column{Name: name, Type: ct, expr: q}
		switch dt {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
			c.Cat = CatInt
			if dt == "bigint" && strings.Contains(ct, "unsigned") {
				c.Cat = CatUint64
			}
		case "decimal", "numeric":
			c.Cat = CatDecimal
		case "float":
			// MariaDB prints a FLOAT with 6 significant digits: read the
			// float32 itself.
			c.Cat, c.expr = CatFloat32, "CAST("+q+" AS DOUBLE)"
		case "double", "real":
			c.Cat = CatFloat64
		case "bool", "boolean":
			c.Cat = CatBool
		case "datetime":
			c.Cat = CatTimestamp
		case "timestamp":
			c.Cat = CatTimestampTZ
		case "date":
			c.Cat = CatDate
		case "time":
			c.Cat = CatTime
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			c.Cat, c.expr = CatBytes, "HEX("+q+")"
		case "json":
			c.Cat = CatJSON
		case "char":
			c.Cat = CatChar
		case "bit":
			c.Cat, c.expr = CatBits, "BIN("+q+")"
		case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
			c.Cat, c.expr = CatGeometry, "CONCAT(ST_SRID("+q+"), ':', HEX(ST_AsWKB("+q+")))"
		}
		if jsonCheck > 0 {
			c.Cat = CatJSON
		}
		t.Columns = append(t.Columns, c)
		if pos > 0 {
			keyPos[pos] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	for i := 1; i <= len(keyPos); i++ {
		t.Key = append(t.Key, keyPos[i])
	}
	return t, nil
}

func describeSQLite(ctx context.Context, s Side) (*Table, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT name, lower(type), pk FROM pragma_table_info(?) ORDER BY cid`, s.Table)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	defer rows.Close()
	t := &Table{}
	keyPos := map[int]string{}
	for rows.Next() {
		var name, typ string
		var pk int
		if err := rows.Scan(&name, &typ, &pk); err != nil {
			return nil, fmt.Errorf("reading the catalog: %w", err)
		}
		c := Column{Name: name, Type: typ, expr: quoteIdent(SQLite, name)}
		switch typ {
		case "blob":
			c.Cat = CatBytes
		}
		t.Columns = append(t.Columns, c)
		if pk > 0 {
			keyPos[pk] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	for i := 1; i <= len(keyPos); i++ {
		t.Key = append(t.Key, keyPos[i])
	}
	return t, nil
}

package postgres

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
	pgxtype "github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Column defaults in the value schema, as Debezium's
// PostgresDefaultValueConverter puts them there.
//
// pgoutput Relation messages carry no defaults, so they come from the
// catalog (pg_attrdef, as pg_get_expr prints them), read with the table's
// columns at start and again whenever a Relation message shows a changed
// shape. Like Debezium, only types it has a default mapper for get one
// (bool, bit, varbit, int2/4/8, float4/8, numeric with a scale, text types,
// json, jsonb, xml, uuid, date, time, timestamp, timestamptz, interval,
// enums); the literal is parsed with the column's own decoder, so the
// default has exactly the value a row holding it would carry.
//
// Unlike Debezium, a default that is not a constant (nextval(...), now(),
// random(), CURRENT_TIMESTAMP, any expression) is not a schema default:
// Debezium writes a placeholder there (0, the epoch, ""), which is not what
// the source's rows hold, and a copy that took it would be wrong. A column
// added with such a default (or with a constant one the schema cannot carry)
// had its existing rows filled by PostgreSQL with values no change event
// carries: the connector logs a warning and asks for the table to be read
// again (requestResnapshot).

// pgDefaultMapped are the types PostgresDefaultValueConverter has a mapper
// for, by pg_type.typname (enums are mapped too).
var pgDefaultMapped = map[string]bool{
	"bit": true, "varbit": true, "bool": true, "bpchar": true, "varchar": true, "text": true,
	"numeric": true, "float4": true, "float8": true, "int2": true, "int4": true, "int8": true,
	"json": true, "jsonb": true, "xml": true, "uuid": true, "date": true, "time": true,
	"timestamp": true, "timestamptz": true, "interval": true,
}

// pgDefaultLiteral splits a default expression as pg_get_expr prints it
// into its literal text: a quoted constant with an optional cast chain
// ('abc'::text, '-1'::integer, B'101'::"bit", 'happy'::mood), a bare number
// or boolean (7, 1.5, true), or NULL::type. constant is false for anything
// else: function calls, CURRENT_TIMESTAMP and the like, operators.
func pgDefaultLiteral(expr string) (lit string, null, constant bool) {
	e := strings.TrimSpace(expr)
	if e == "" {
		return "", false, false
	}
	if strings.HasPrefix(e, "NULL::") || e == "NULL" {
		return "", true, !strings.ContainsAny(e, "()")
	}
	if e[0] == 'B' && len(e) > 1 && e[1] == '\'' {
		e = e[1:] // a bit string: its text form is the digits
	}
	if e[0] == '\'' {
		var b strings.Builder
		i := 1
		for ; i < len(e); i++ {
			if e[i] == '\'' {
				if i+1 < len(e) && e[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			b.WriteByte(e[i])
		}
		if i >= len(e) {
			return "", false, false // unterminated
		}
		rest := e[i+1:]
		// Only casts may follow: ::type, ::"type", ::schema.type, ::type[] ...
		if rest != "" && (!strings.HasPrefix(rest, "::") || strings.ContainsAny(rest, "()'+-*/|&<>=")) {
			return "", false, false
		}
		return b.String(), false, true
	}
	if e == "true" || e == "false" {
		return e, false, true
	}
	if isPGNumber(e) {
		return e, false, true
	}
	return "", false, false
}

func isPGNumber(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	digits, dot, exp := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && !exp:
			dot = true
		case (c == 'e' || c == 'E') && digits > 0 && !exp:
			exp = true
			if i+1 < len(s) && (s[i+1] == '+' || s[i+1] == '-') {
				i++
			}
		default:
			return false
		}
	}
	return digits > 0
}

// pgColumnDefault turns column c's default expression into the Go value of
// its schema type t, read with the column's decoder dec. When the schema
// carries no default it returns nil and why: reason "" when the column has
// none (or a NULL one, which is what a missing default means), else one of
// source.ReasonNonConstantDefault and source.ReasonDefaultNotCarried, with
// a detail for the log.
func pgColumnDefault(c colSpec, t schema.Type, dec pgtypeDecoder, cat pgtypeCatalog) (v any, reason, detail string) {
	if c.Default == "" {
		return nil, "", ""
	}
	v, detail = pgColumnDefaultValue(c, t, dec, cat)
	switch {
	case v != nil:
		return v, "", ""
	case detail == "":
		return nil, "", ""
	case detail == detailNonConstant:
		return nil, source.ReasonNonConstantDefault, "DEFAULT " + c.Default
	}
	return nil, source.ReasonDefaultNotCarried, "DEFAULT " + c.Default + ": " + detail
}

const detailNonConstant = "non-constant"

func pgColumnDefaultValue(c colSpec, t schema.Type, dec pgtypeDecoder, cat pgtypeCatalog) (any, string) {
	lit, null, constant := pgDefaultLiteral(c.Default)
	switch {
	case !constant:
		return nil, detailNonConstant
	case null:
		return nil, ""
	}
	name := pgtypeName(c.TypeOID, cat)
	ti, _ := pgtypeCatalogInfo(cat, c.TypeOID)
	if !pgDefaultMapped[name] && ti.Type != 'e' {
		return nil, "a default of type " + name + " is not carried in the schema (as in Debezium)"
	}
	switch t.Kind {
	case schema.Array, schema.Struct:
		// Debezium too: a Struct (a numeric without scale) cannot be a
		// Connect default (KAFKA-12694).
		return nil, "a default of type " + name + " is not carried in the schema (as in Debezium)"
	}
	if c.TypeOID == pgxtype.BoolOID {
		switch lit {
		case "true":
			lit = "t"
		case "false":
			lit = "f"
		}
	}
	v, err := dec([]byte(lit))
	if err != nil {
		return nil, fmt.Sprintf("cannot be read as %s: %v", name, err)
	}
	switch f := v.(type) {
	case float32:
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, "a NaN or infinite default cannot be written in an Avro schema"
		}
	case float64:
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, "a NaN or infinite default cannot be written in an Avro schema"
		}
	case nil, []any:
		return nil, "a default of type " + name + " is not carried in the schema"
	}
	return v, ""
}

// loadColumnDefaults reads the default expression of every column of a
// table that has one (generated columns' expressions are not defaults).
func loadColumnDefaults(ctx context.Context, conn *pgx.Conn, t tableID) (map[string]string, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname, pg_get_expr(d.adbin, d.adrelid)
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''`,
		t.Schema, t.Name)
	if err != nil {
		return nil, fmt.Errorf("read column defaults of table %s: %w", t, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name string
		var expr *string
		if err := rows.Scan(&name, &expr); err != nil {
			return nil, fmt.Errorf("read column defaults of table %s: %w", t, err)
		}
		if expr != nil {
			out[name] = *expr
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read column defaults of table %s: %w", t, err)
	}
	return out, nil
}

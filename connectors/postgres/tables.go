package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tablePattern is one entry of `tables`: schema and table parts, each a
// literal or a glob with * and ?.
type tablePattern struct {
	raw    string
	schema string
	table  string
}

func parseTablePattern(s string) (tablePattern, error) {
	raw := s
	s = strings.TrimSpace(s)
	if s == "" {
		return tablePattern{}, fmt.Errorf("empty table name")
	}
	p := tablePattern{raw: raw}
	switch parts := strings.Split(s, "."); len(parts) {
	case 1:
		p.schema, p.table = "public", parts[0]
	case 2:
		p.schema, p.table = parts[0], parts[1]
	default:
		return tablePattern{}, fmt.Errorf("%q: want \"schema.table\" or \"table\"", raw)
	}
	if p.schema == "" || p.table == "" {
		return tablePattern{}, fmt.Errorf("%q: schema and table must not be empty", raw)
	}
	return p, nil
}

func (p tablePattern) isPattern() bool {
	return strings.ContainsAny(p.schema, "*?") || strings.ContainsAny(p.table, "*?")
}

func (p tablePattern) matches(schemaName, table string) bool {
	return globMatch(p.schema, schemaName) && globMatch(p.table, table)
}

// globMatch matches s against pattern where * is any run of characters
// (possibly empty) and ? exactly one character; everything else is literal.
// It is the classic two-pointer matcher with backtracking to the last star,
// linear for practical inputs.
func globMatch(pattern, s string) bool {
	pr, sr := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pr) && (pr[pi] == '?' || pr[pi] == sr[si]):
			pi++
			si++
		case pi < len(pr) && pr[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pr) && pr[pi] == '*' {
		pi++
	}
	return pi == len(pr)
}

// tableID names a captured table.
type tableID struct {
	Schema string
	Name   string
}

func (t tableID) String() string { return t.Schema + "." + t.Name }

// quoted is the SQL form, "schema"."table".
func (t tableID) quoted() string {
	return pgx.Identifier{t.Schema, t.Name}.Sanitize()
}

// resolveTables expands the configured names and patterns against the
// catalog tables. It fails naming the entry for a plain name that does not
// exist and for a pattern that matches nothing.
func resolveTables(patterns []string, existing []tableID) ([]tableID, error) {
	seen := map[tableID]bool{}
	var out []tableID
	for i, raw := range patterns {
		p, err := parseTablePattern(raw)
		if err != nil {
			return nil, fmt.Errorf("tables[%d]: %w", i, err)
		}
		n := 0
		for _, t := range existing {
			if !p.matches(t.Schema, t.Name) {
				continue
			}
			n++
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
		if n == 0 {
			if p.isPattern() {
				return nil, fmt.Errorf("tables[%d]: pattern %q matches no table in the database", i, raw)
			}
			return nil, fmt.Errorf("tables[%d]: table %s.%s does not exist (or is not a table the user can see)", i, p.schema, p.table)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Schema != out[j].Schema {
			return out[i].Schema < out[j].Schema
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// listTables returns the ordinary and partitioned (root) tables outside the
// system schemas.
func listTables(ctx context.Context, conn *pgx.Conn) ([]tableID, error) {
	rows, err := conn.Query(ctx, `
		SELECT n.nspname, c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []tableID
	for rows.Next() {
		var t tableID
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}

// catalogColumn is a column as the catalog describes it.
type catalogColumn struct {
	Name    string
	TypeOID uint32
	TypMod  int32
	NotNull bool
	// TypeName is format_type(oid, NULL), used to cast keyset literals.
	TypeName string
	// Default is pg_get_expr of the column default, "" for none.
	Default string
}

// catalogTable is what the snapshot and the key logic need from the catalog.
type catalogTable struct {
	ID              tableID
	OID             uint32
	Columns         []catalogColumn // published columns, in attnum order
	PK              []string        // primary key column names, in key order
	ReplicaIdentity byte            // d, n, f, i
	Estimate        int64           // pg_class.reltuples, -1 when unknown
	Partitioned     bool
}

// loadCatalogTable reads one table's published columns (not dropped, not
// generated: pgoutput leaves generated columns out too) and primary key.
func loadCatalogTable(ctx context.Context, conn *pgx.Conn, t tableID) (*catalogTable, error) {
	ct := &catalogTable{ID: t}
	var relkind, ident string
	var est float64
	err := conn.QueryRow(ctx, `
		SELECT c.oid, c.relkind::text, c.relreplident::text, c.reltuples::float8
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, t.Schema, t.Name).Scan(&ct.OID, &relkind, &ident, &est)
	if err == pgx.ErrNoRows {
		return nil, fmt.Errorf("table %s does not exist", t)
	}
	if err != nil {
		return nil, fmt.Errorf("read catalog of table %s: %w", t, err)
	}
	ct.Partitioned = relkind == "p"
	if ident != "" {
		ct.ReplicaIdentity = ident[0]
	}
	ct.Estimate = int64(est)
	if est < 0 {
		ct.Estimate = -1
	}
	rows, err := conn.Query(ctx, `
		SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, format_type(a.atttypid, NULL),
		       coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, ct.OID)
	if err != nil {
		return nil, fmt.Errorf("read columns of table %s: %w", t, err)
	}
	for rows.Next() {
		var c catalogColumn
		if err := rows.Scan(&c.Name, &c.TypeOID, &c.TypMod, &c.NotNull, &c.TypeName, &c.Default); err != nil {
			return nil, fmt.Errorf("read columns of table %s: %w", t, err)
		}
		ct.Columns = append(ct.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of table %s: %w", t, err)
	}
	rows, err = conn.Query(ctx, `
		SELECT a.attname
		FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary
		ORDER BY k.ord`, ct.OID)
	if err != nil {
		return nil, fmt.Errorf("read primary key of table %s: %w", t, err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("read primary key of table %s: %w", t, err)
		}
		ct.PK = append(ct.PK, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read primary key of table %s: %w", t, err)
	}
	return ct, nil
}

func (ct *catalogTable) column(name string) (int, bool) {
	for i, c := range ct.Columns {
		if c.Name == name {
			return i, true
		}
	}
	return -1, false
}

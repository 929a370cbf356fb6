// Package verify compares a source table with its copy: row counts, then
// checksums of hash ranges of the primary key, then, in the ranges that
// differ only, the rows themselves, naming the keys that are missing,
// extra or different (with the differing columns).
//
// Keys are bucketed by a hash of their normalised values rather than by
// SQL key ranges, because PostgreSQL, MariaDB and SQLite order text (and
// most types) differently: a hash bucket holds the same keys on every
// engine. Each pass streams the table once (no ORDER BY, no large sort on
// the server) and keeps only per-bucket checksums in memory; the detail
// pass holds the source rows of a few differing buckets at a time (about
// BucketRows rows each), so memory stays bounded whatever the table size.
package verify

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sort"
	"strings"
	"time"

	"github.com/tributary-cdc/tributary/schema"
)

// Dialect is the SQL engine of a Side.
type Dialect int

const (
	Postgres Dialect = iota + 1
	MySQL
	SQLite
)

func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	case SQLite:
		return "sqlite"
	}
	return "?"
}

// Side is one table on one database. PostgreSQL connections must use the
// UTC time zone and MySQL ones time_zone '+00:00' (see OpenPostgres and
// OpenMySQL).
type Side struct {
	DB      *sql.DB
	Dialect Dialect
	Schema  string // "" for SQLite or the connection's default
	Table   string
}

func (s Side) String() string {
	if s.Schema == "" {
		return s.Table
	}
	return s.Schema + "." + s.Table
}

// Column is a column of a table as its catalog describes it.
type Column struct {
	Name string
	Type string // the engine's type name, lower case
	Cat  Category
	// expr is the SQL that selects it (a cast to text, hex, ...).
	expr string
}

// Table is what Describe finds out about a side.
type Table struct {
	Columns []Column
	Key     []string // primary-key columns, in key order
}

func (t *Table) column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// copyColumn finds the copy's column of source column name: a sink names it
// as the source spells it (from __debezium.source.column.name) or, for
// topics without that parameter, by its Avro field name, where every
// character Avro refuses is '_'. MariaDB compares column names without
// case, so a copy there may differ in case only.
func (t *Table) copyColumn(name string, d Dialect) (Column, bool) {
	if c, ok := t.column(name); ok {
		return c, true
	}
	if c, ok := t.column(schema.AvroFieldName(name)); ok {
		return c, true
	}
	if d == MySQL || d == SQLite {
		for _, c := range t.Columns {
			if strings.EqualFold(c.Name, name) {
				return c, true
			}
		}
	}
	return Column{}, false
}

// Options tune Compare.
type Options struct {
	// BucketRows is the number of rows aimed for per checksum bucket.
	BucketRows int
	// MaxDiffs is the most differing keys kept in Result.Diffs.
	MaxDiffs int
	// Exclude lists source columns not compared (not copied by the sink).
	Exclude map[string]bool
	// Key are the columns rows are matched by when the source table has no
	// primary key (the source's key_columns).
	Key []string
	// Progress is called about every second while a table is read.
	Progress func(Progress)
}

// Progress reports the rows read so far of one pass over one side.
type Progress struct {
	Table string
	Pass  string // "checksums" or "rows"
	Side  string // "source" or "copy"
	Rows  int64
	Total int64 // rows of that side, when known
}

// Diff is one key that differs.
type Diff struct {
	Key     string   // "(v1, v2)" or "v"
	Kind    string   // "missing" (in the copy), "extra" (only in the copy) or "different"
	Columns []string // the differing columns, with source and copy values
}

// Result of comparing one table.
type Result struct {
	Source, Copy         string
	SourceRows, CopyRows int64
	Buckets              int
	DiffBuckets          int
	Missing, Extra, Diff int64
	Diffs                []Diff
	// Problems are structural differences (a column missing in the copy,
	// a table without primary key...).
	Problems []string
}

// Equal reports whether the copy equals the source.
func (r *Result) Equal() bool {
	return len(r.Problems) == 0 && r.Missing == 0 && r.Extra == 0 && r.Diff == 0 && r.SourceRows == r.CopyRows
}

// Compare compares src with its copy dst.
func Compare(ctx context.Context, src, dst Side, opt Options) (*Result, error) {
	if opt.BucketRows <= 0 {
		opt.BucketRows = 10000
	}
	if opt.MaxDiffs <= 0 {
		opt.MaxDiffs = 100
	}
	res := &Result{Source: src.String(), Copy: dst.String()}
	st, err := Describe(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("source table %s: %w", src, err)
	}
	dt, err := Describe(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("copy table %s: %w", dst, err)
	}
	if len(dt.Columns) == 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("copy table %s does not exist", dst))
		res.SourceRows, err = count(ctx, src)
		return res, err
	}
	if len(st.Key) == 0 {
		st.Key = opt.Key
	}
	if len(st.Key) == 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("source table %s has no primary key and no key_columns: rows cannot be matched", src))
		return res, nil
	}
	// The columns compared, with the source's categories (a JSON column on
	// either side is compared as JSON: MariaDB keeps JSON as LONGTEXT).
	var sc, dc []Column
	for _, c := range st.Columns {
		if opt.Exclude[c.Name] || opt.Exclude[schema.AvroFieldName(c.Name)] {
			continue // fields.exclude may name the column or its Avro field
		}
		d, ok := dt.copyColumn(c.Name, dst.Dialect)
		if !ok {
			res.Problems = append(res.Problems, fmt.Sprintf("column %s of %s is missing in the copy %s", c.Name, src, dst))
			continue
		}
		if (d.Cat == CatJSON || c.Cat == CatJSON) && c.Cat != CatGeometry {
			c.Cat = CatJSON
		}
		if c.Cat == CatGeometry && d.Cat == CatBytes {
			// A copy without a geometry type (SQLite, PostgreSQL without
			// PostGIS) holds the WKB alone: the SRID cannot be compared.
			c.Cat = CatGeometryWKB
		}
		d.Cat = c.Cat
		sc = append(sc, c)
		dc = append(dc, d)
	}
	keyIdx := make([]int, 0, len(st.Key))
	for _, k := range st.Key {
		found := false
		for i, c := range sc {
			if c.Name == k {
				keyIdx = append(keyIdx, i)
				found = true
			}
		}
		if !found {
			res.Problems = append(res.Problems, fmt.Sprintf("key column %s of %s is missing in the copy %s", k, src, dst))
		}
	}
	if len(keyIdx) != len(st.Key) {
		return res, nil
	}
	n, err := count(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("counting rows of source %s: %w", src, err)
	}
	res.SourceRows = n
	if res.CopyRows, err = count(ctx, dst); err != nil {
		return nil, fmt.Errorf("counting rows of copy %s: %w", dst, err)
	}
	nb := int(max(res.SourceRows, res.CopyRows)/int64(opt.BucketRows)) + 1
	res.Buckets = nb
	c := &cmp{seed: maphash.MakeSeed(), nb: uint64(nb), keyIdx: keyIdx, opt: opt, label: src.String()}

	// Pass 1: per-bucket checksums of both sides.
	sums := make([][2]uint64, nb)
	if err := c.scan(ctx, src, sc, "checksums", "source", res.SourceRows, func(b uint64, key string, vals []string, h uint64) {
		sums[b][0] += h
	}); err != nil {
		return nil, err
	}
	if err := c.scan(ctx, dst, dc, "checksums", "copy", res.CopyRows, func(b uint64, key string, vals []string, h uint64) {
		sums[b][1] += h
	}); err != nil {
		return nil, err
	}
	var diff []uint64
	for b, s := range sums {
		if s[0] != s[1] {
			diff = append(diff, uint64(b))
		}
	}
	res.DiffBuckets = len(diff)

	// Pass 2: rows of the differing buckets, a few buckets at a time.
	const bucketsPerPass = 8
	for len(diff) > 0 {
		part := diff[:min(bucketsPerPass, len(diff))]
		diff = diff[len(part):]
		want := map[uint64]bool{}
		for _, b := range part {
			want[b] = true
		}
		rows := map[string][]string{}
		if err := c.scan(ctx, src, sc, "rows", "source", res.SourceRows, func(b uint64, key string, vals []string, _ uint64) {
			if want[b] {
				rows[key] = vals
			}
		}); err != nil {
			return nil, err
		}
		if err := c.scan(ctx, dst, dc, "rows", "copy", res.CopyRows, func(b uint64, key string, vals []string, _ uint64) {
			if !want[b] {
				return
			}
			sv, ok := rows[key]
			if !ok {
				res.Extra++
				res.add(opt.MaxDiffs, Diff{Key: showKey(c.keyVals(vals)), Kind: "extra"})
				return
			}
			delete(rows, key)
			var cols []string
			for i := range sc {
				if sv[i] != vals[i] {
					cols = append(cols, fmt.Sprintf("%s: source %s, copy %s", sc[i].Name, clip(sv[i]), clip(vals[i])))
				}
			}
			if len(cols) > 0 {
				res.Diff++
				res.add(opt.MaxDiffs, Diff{Key: showKey(c.keyVals(vals)), Kind: "different", Columns: cols})
			}
		}); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(rows))
		for k := range rows {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			res.Missing++
			res.add(opt.MaxDiffs, Diff{Key: showKey(c.keyVals(rows[k])), Kind: "missing"})
		}
	}
	return res, nil
}

func (r *Result) add(maxDiffs int, d Diff) {
	if len(r.Diffs) < maxDiffs {
		r.Diffs = append(r.Diffs, d)
	}
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	if s == nullText {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func showKey(vals []string) string {
	if len(vals) == 1 {
		return vals[0]
	}
	return "(" + strings.Join(vals, ", ") + ")"
}

type cmp struct {
	seed   maphash.Seed
	nb     uint64
	keyIdx []int
	opt    Options
	label  string
}

func (c *cmp) keyVals(vals []string) []string {
	out := make([]string, len(c.keyIdx))
	for i, k := range c.keyIdx {
		out[i] = vals[k]
	}
	return out
}

// scan streams every row of s, normalised, with its bucket, key and hash.
func (c *cmp) scan(ctx context.Context, s Side, cols []Column, pass, side string, total int64, fn func(bucket uint64, key string, vals []string, h uint64)) error {
	exprs := make([]string, len(cols))
	for i, col := range cols {
		exprs[i] = col.expr
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + qualified(s)
	rows, err := s.DB.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("reading %s table %s: %w", side, s, err)
	}
	defer rows.Close()
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	var n int64
	last := time.Now()
	var kb, hb strings.Builder
	var lenBuf [8]byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("reading %s table %s: %w", side, s, err)
		}
		vals := make([]string, len(cols))
		hb.Reset()
		for i, col := range cols {
			v, isNull := Normalize(raw[i], col.Cat, s.Dialect == SQLite)
			vals[i] = v
			// Length-prefixed, with a NULL flag: no two rows hash the same
			// text.
			binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(v)))
			hb.Write(lenBuf[:])
			if isNull {
				hb.WriteByte(0)
			} else {
				hb.WriteByte(1)
			}
			hb.WriteString(v)
		}
		kb.Reset()
		for _, k := range c.keyIdx {
			binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(vals[k])))
			kb.Write(lenBuf[:])
			kb.WriteString(vals[k])
		}
		key := kb.String()
		b := maphash.String(c.seed, key) % c.nb
		fn(b, key, vals, maphash.String(c.seed, hb.String()))
		n++
		if c.opt.Progress != nil && n%1024 == 0 && time.Since(last) >= time.Second {
			last = time.Now()
			c.opt.Progress(Progress{Table: c.label, Pass: pass, Side: side, Rows: n, Total: total})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s table %s: %w", side, s, err)
	}
	return nil
}

func count(ctx context.Context, s Side) (int64, error) {
	var n int64
	err := s.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+qualified(s)).Scan(&n)
	return n, err
}

func quoteIdent(d Dialect, id string) string {
	if d == MySQL {
		return "`" + strings.ReplaceAll(id, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
}

func qualified(s Side) string {
	if s.Schema == "" {
		return quoteIdent(s.Dialect, s.Table)
	}
	return quoteIdent(s.Dialect, s.Schema) + "." + quoteIdent(s.Dialect, s.Table)
}

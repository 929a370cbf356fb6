package mysql

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/hamba/avro/v2"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Deletes for rows that vanished between two snapshots.
//
// A snapshot taken again over topics that already hold rows (an earlier
// snapshot was interrupted, or snapshot: when_needed after the binlog was
// purged) emits every row that exists now but nothing for the rows deleted
// since: their last record in the log would stay a row, and every copy
// would keep them (DESIGN invariant 4). So after such a snapshot, still in
// its consistent-snapshot transaction, each table's topic keys are read
// back in batches (source.KeyReader, bounded memory) and looked up with an
// exact (binary) comparison; a key the table no longer has gets a delete
// and a tombstone. Key columns of integer, boolean and string kinds are
// checked; other key kinds and keys written under an older key schema are
// logged as not checked.
//
// A snapshot marks the offset (snapshot=true) before its first row, so an
// interrupted one is known to have left rows in the log.

const vanishedBatch = 1000

func (c *Connector) deleteVanished(ctx context.Context, r *run, conn *client.Conn, states []*tableState, pos position) error {
	kr, ok := r.rt.(source.KeyReader)
	if !ok {
		c.log.Warn("the runtime cannot read topics back: rows deleted since the earlier snapshot may stay in the log")
		return nil
	}
	for _, ts := range states {
		if len(ts.keyIdx) == 0 {
			continue
		}
		n, err := c.vanishedTable(ctx, r, kr, conn, ts, pos)
		if err != nil {
			return fmt.Errorf("table %s: deletes for rows gone since the earlier snapshot: %w", ts.id, err)
		}
		c.log.Info("earlier snapshot's rows checked: deletes sent for the rows gone since", "table", ts.id.String(), "deleted", n)
	}
	return nil
}

type vanishedKey struct {
	vals []any    // Go values for the codec
	text []string // as MySQL returns them
}

func (c *Connector) vanishedTable(ctx context.Context, r *run, kr source.KeyReader, conn *client.Conn, ts *tableState, pos position) (int, error) {
	if err := r.em.prepare(ctx, ts); err != nil {
		return 0, err
	}
	for _, k := range ts.keyIdx {
		col := ts.st.Columns[k]
		// Only values whose Avro form is the column's own value can be
		// looked up: a logical type (a DATETIME carried as epoch
		// milliseconds, a DATE as days) or a BIGINT UNSIGNED above 2^63
		// (carried negative) would never be found, and every row would
		// get a delete.
		_, temporal := epochKeys[col.Type.Name]
		plain := col.Type.Name == "" || col.Type.Name == "io.debezium.data.Enum" || temporal
		if ts.codec.ColumnKind(k) == schema.Int64 && strings.Contains(strings.ToUpper(col.Type.Params["__debezium.source.column.type"]), "UNSIGNED") {
			plain = false
		}
		switch ts.codec.ColumnKind(k) {
		case schema.Boolean, schema.Int8, schema.Int16, schema.Int32, schema.Int64, schema.String:
		default:
			plain = false
		}
		if !plain {
			c.log.Warn("key column kind not supported for the check of rows gone since the earlier snapshot; rows deleted meanwhile may stay in the log",
				"table", ts.id.String(), "column", ts.st.Columns[k].Name)
			return 0, nil
		}
	}
	ks, err := avro.ParseWithCache(ts.codec.KeySchema(), "", &avro.SchemaCache{})
	if err != nil {
		return 0, fmt.Errorf("key schema: %w", err)
	}
	rs, ok := ks.(*avro.RecordSchema)
	if !ok || len(rs.Fields()) != len(ts.keyIdx) {
		return 0, fmt.Errorf("key schema is not a record of the %d key columns", len(ts.keyIdx))
	}
	hdr := ts.codec.AppendKeyHeader(nil)
	// cols are compared in WHERE; sel reads them back in their Avro form,
	// so a temporal key is found by the number the log carries.
	var cols, sel []string
	lit := make([]func(string) string, len(ts.keyIdx))
	for i, k := range ts.keyIdx {
		c := quoteIdent(ts.st.Columns[k].Name)
		cols = append(cols, c)
		if ek, ok := epochKeys[ts.st.Columns[k].Type.Name]; ok {
			sel = append(sel, fmt.Sprintf(ek.sel, c))
			lit[i] = ek.lit
		} else {
			sel = append(sel, c)
		}
	}
	table := quoteIdent(ts.id.DB) + "." + quoteIdent(ts.id.Table)
	src := r.em.sourceBlock(ts.id, "true", 0)
	src[schema.MySQLSrcServerID] = int64(r.serverID)
	src[schema.MySQLSrcFile] = pos.File
	src[schema.MySQLSrcPos] = int64(pos.Pos)
	batch := map[string]vanishedKey{}
	otherSchema, deleted := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var q strings.Builder
		q.WriteString("SELECT " + strings.Join(sel, ", ") + " FROM " + table + " WHERE (" + strings.Join(cols, ", ") + ") IN (")
		first := true
		for _, k := range batch {
			if !first {
				q.WriteString(", ")
			}
			first = false
			q.WriteString("(")
			for i, v := range k.vals {
				if i > 0 {
					q.WriteString(", ")
				}
				if lit[i] != nil {
					q.WriteString(lit[i](k.text[i]))
				} else if s, ok := v.(string); ok {
					// A binary literal: the comparison is exact, whatever
					// the column's collation.
					q.WriteString("X'" + hex.EncodeToString([]byte(s)) + "'")
				} else {
					q.WriteString(k.text[i])
				}
			}
			q.WriteString(")")
		}
		q.WriteString(")")
		res, err := conn.Execute(q.String())
		if err != nil {
			return fmt.Errorf("look up %d keys: %w", len(batch), err)
		}
		found := map[string]bool{}
		if res.Resultset != nil {
			for row := range res.Values {
				vals := make([]string, len(cols))
				for i := range cols {
					if vals[i], err = res.GetString(row, i); err != nil {
						return fmt.Errorf("look up keys: %w", err)
					}
				}
				found[strings.Join(vals, "\x00")] = true
			}
		}
		for _, k := range batch {
			if found[strings.Join(k.text, "\x00")] {
				continue
			}
			before := make([]any, len(ts.st.Columns))
			for i, col := range ts.keyIdx {
				before[col] = k.vals[i]
			}
			if _, err := r.em.emit(ctx, ts, schema.OpDelete, before, nil, src); err != nil {
				return err
			}
			deleted++
		}
		clear(batch)
		return nil
	}
	err = kr.ReadKeys(ctx, ts.topic, func(key []byte, tomb bool) error {
		if tomb {
			delete(batch, string(key))
			return nil
		}
		if _, ok := batch[string(key)]; ok {
			return nil
		}
		if len(key) < len(hdr) || !bytes.Equal(key[:len(hdr)], hdr) {
			otherSchema++
			return nil
		}
		var m map[string]any
		if err := avro.Unmarshal(ks, key[len(hdr):], &m); err != nil {
			return fmt.Errorf("decode key %x: %w", key, err)
		}
		k := vanishedKey{vals: make([]any, len(ts.keyIdx)), text: make([]string, len(ts.keyIdx))}
		for i, col := range ts.keyIdx {
			v := m[rs.Fields()[i].Name()]
			var err error
			if k.vals[i], k.text[i], err = keyValue(ts.codec.ColumnKind(col), v); err != nil {
				return fmt.Errorf("key column %s: %w", ts.st.Columns[col].Name, err)
			}
		}
		batch[string(key)] = k
		if len(batch) >= vanishedBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return deleted, err
	}
	if err := flush(); err != nil {
		return deleted, err
	}
	if otherSchema > 0 {
		c.log.Warn("keys written with another key schema were not checked; rows deleted meanwhile may stay in the log", "table", ts.id.String(), "keys", otherSchema)
	}
	return deleted, nil
}

// epochKeys are the temporal logical types a key may have, with the SQL
// that reads a column as the number the log carries (Debezium counts
// DATETIME and DATE from the epoch as if they were UTC) and the literal
// that turns that number back into the column's value.
var epochKeys = map[string]struct {
	sel string
	lit func(string) string
}{
	"io.debezium.time.Timestamp": {"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', %s) DIV 1000",
		func(n string) string { return "TIMESTAMPADD(MICROSECOND, " + n + " * 1000, '1970-01-01 00:00:00')" }},
	"io.debezium.time.MicroTimestamp": {"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', %s)",
		func(n string) string { return "TIMESTAMPADD(MICROSECOND, " + n + ", '1970-01-01 00:00:00')" }},
	"io.debezium.time.Date": {"DATEDIFF(%s, '1970-01-01')",
		func(n string) string { return "DATE('1970-01-01') + INTERVAL " + n + " DAY" }},
}

// keyValue turns a decoded Avro key field into the codec's Go value and
// MySQL's text of it.
func keyValue(k schema.Kind, v any) (any, string, error) {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case bool:
		if k != schema.Boolean {
			return nil, "", fmt.Errorf("unexpected bool")
		}
		if x {
			return true, "1", nil
		}
		return false, "0", nil
	case string:
		if k != schema.String {
			return nil, "", fmt.Errorf("unexpected string %q", x)
		}
		return x, x, nil
	default:
		return nil, "", fmt.Errorf("unexpected key value %T %v", v, v)
	}
	switch k {
	case schema.Int8, schema.Int16, schema.Int32:
		return int32(n), strconv.FormatInt(n, 10), nil
	case schema.Int64:
		return n, strconv.FormatInt(n, 10), nil
	}
	return nil, "", fmt.Errorf("integer for a key of kind %d", k)
}

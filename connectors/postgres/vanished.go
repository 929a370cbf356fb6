package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Deletes for rows that vanished between two full snapshots.
//
// A full snapshot taken again over topics that already hold rows (the slot
// was lost and snapshot is when_needed, or an interrupted snapshot could not
// be resumed) emits every row that exists now, but nothing for the rows
// deleted since the earlier one: their last record in the log would stay a
// row, and every copy would keep them. So after such a snapshot, still
// inside its exported snapshot, the keys of each table's topic are read back
// (source.KeyReader), in batches of vanishedBatch keys, and looked up in the
// table; a key the snapshot does not have gets a delete event and a
// tombstone. Memory stays at one batch whatever the topic's size.
//
// The lookup turns each Avro key back into SQL values. Key columns of
// integer, text-like, uuid and boolean types are supported; a table with
// another key type, and keys written with an older key schema, are logged
// (not checked).

const vanishedBatch = 2000

// deleteVanished emits deletes for keys of the tables' topics that the
// snapshot does not have. conn is in the exported snapshot's transaction.
func (c *connector) deleteVanished(ctx context.Context, rt source.Runtime, conn *pgx.Conn, tables []*snapTable, cp pglogrepl.LSN) error {
	kr, ok := rt.(source.KeyReader)
	if !ok {
		c.log.Warn("the runtime cannot read topics back: rows deleted since the earlier snapshot may stay in the log")
		return nil
	}
	for _, t := range tables {
		if len(t.codec.KeyColumns()) == 0 {
			continue // keyless: its topic is not compacted
		}
		n, err := c.vanishedTable(ctx, kr, rt, conn, t, cp)
		if err != nil {
			return fmt.Errorf("postgres: deletes for rows gone since the earlier snapshot of table %s: %w", t.ct.ID, err)
		}
		c.log.Info("earlier snapshot's rows checked: deletes sent for the rows gone since", "table", t.ct.ID.String(), "deleted", n)
	}
	return nil
}

type vanishedKey struct {
	raw  []byte
	text []string
}

func (c *connector) vanishedTable(ctx context.Context, kr source.KeyReader, rt source.Runtime, conn *pgx.Conn, t *snapTable, cp pglogrepl.LSN) (int, error) {
	keyCols := t.codec.KeyColumns()
	for _, k := range keyCols {
		if !vanishedKeyType(t.shape.cols[k].TypeOID) {
			c.log.Warn("key column type not supported for the check of rows gone since the earlier snapshot; rows deleted meanwhile may stay in the log",
				"table", t.ct.ID.String(), "column", t.shape.cols[k].Name, "type", t.ct.Columns[k].TypeName)
			return 0, nil
		}
	}
	ks, err := avro.ParseWithCache(t.codec.KeySchema(), "", &avro.SchemaCache{})
	if err != nil {
		return 0, fmt.Errorf("key schema: %w", err)
	}
	rs, ok := ks.(*avro.RecordSchema)
	if !ok || len(rs.Fields()) != len(keyCols) {
		return 0, fmt.Errorf("key schema is not a record of the %d key columns", len(keyCols))
	}
	hdr := t.codec.AppendKeyHeader(nil)
	var cond strings.Builder
	var sel []string
	for i, k := range keyCols {
		col := pgx.Identifier{t.shape.cols[k].Name}.Sanitize()
		sel = append(sel, col+"::text")
		if i > 0 {
			cond.WriteString(", ")
		}
		cond.WriteString(col)
	}
	batch := map[string]vanishedKey{}
	otherSchema, deleted := 0, 0
	src := c.sourceValues()
	src[schema.PGSrcSchema] = t.ct.ID.Schema
	src[schema.PGSrcTable] = t.ct.ID.Name
	src[schema.PGSrcLSN] = int64(cp)
	src[schema.SrcSnapshot] = "true"
	var buf []byte
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var q strings.Builder
		q.WriteString("SELECT " + strings.Join(sel, ", ") + " FROM " + t.ct.ID.quoted() + " WHERE (" + cond.String() + ") IN (")
		args := make([]any, 0, len(batch)*len(keyCols))
		first := true
		for _, k := range batch {
			if !first {
				q.WriteString(", ")
			}
			first = false
			q.WriteString("(")
			for i, v := range k.text {
				if i > 0 {
					q.WriteString(", ")
				}
				args = append(args, v)
				q.WriteString("$" + strconv.Itoa(len(args)) + "::" + t.ct.Columns[keyCols[i]].TypeName)
			}
			q.WriteString(")")
		}
		q.WriteString(")")
		rows, err := conn.Query(ctx, q.String(), args...)
		if err != nil {
			return fmt.Errorf("look up %d keys: %w", len(batch), err)
		}
		found := map[string]bool{}
		vals := make([]string, len(keyCols))
		ptrs := make([]any, len(keyCols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return fmt.Errorf("look up keys: %w", err)
			}
			found[strings.Join(vals, "\x00")] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("look up keys: %w", err)
		}
		now := time.Now()
		src[schema.SrcTsMs] = now.UnixMilli()
		src[schema.SrcTsUs] = now.UnixMicro()
		src[schema.SrcTsNs] = now.UnixNano()
		row := make([]any, len(t.shape.cols))
		for _, k := range batch {
			if found[strings.Join(k.text, "\x00")] {
				continue
			}
			clear(row)
			for i, col := range keyCols {
				v, err := t.shape.decoders[col]([]byte(k.text[i]))
				if err != nil {
					return fmt.Errorf("key column %s value %q: %w", t.shape.cols[col].Name, k.text[i], err)
				}
				row[col] = v
			}
			env := schema.Envelope{Op: schema.OpDelete, Before: row, Source: src, TsUs: now.UnixMicro()}
			rec, b, err := encodeRecord(t.codec, t.shape.table.Topic, buf, row, &env)
			buf = b
			if err != nil {
				return fmt.Errorf("encode delete: %w", err)
			}
			if err := rt.Emit(ctx, rec); err != nil {
				return err
			}
			if err := rt.Emit(ctx, source.Record{Topic: rec.Topic, Key: rec.Key}); err != nil {
				return err
			}
			deleted++
		}
		clear(batch)
		return nil
	}
	err = kr.ReadKeys(ctx, t.shape.table.Topic, func(key []byte, tomb bool) error {
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
		text := make([]string, len(keyCols))
		for i, col := range keyCols {
			v, ok := m[rs.Fields()[i].Name()]
			if !ok {
				return fmt.Errorf("key %v lacks column %s", m, t.shape.cols[col].Name)
			}
			s, err := keyText(v)
			if err != nil {
				return fmt.Errorf("key column %s: %w", t.shape.cols[col].Name, err)
			}
			text[i] = s
		}
		batch[string(key)] = vanishedKey{raw: key, text: text}
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
		c.log.Warn("keys written with another key schema were not checked; rows deleted meanwhile may stay in the log", "table", t.ct.ID.String(), "keys", otherSchema)
	}
	return deleted, nil
}

// vanishedKeyType reports key types whose Avro form reads back as SQL text.
func vanishedKeyType(oid uint32) bool {
	switch oid {
	// bool, int8, int2, int4, text, varchar, name, uuid (not char(n):
	// its ::text drops the padding the key keeps)
	case 16, 20, 21, 23, 25, 1043, 19, 2950:
		return true
	}
	return false
}

func keyText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("unexpected key value %T %v", v, v)
}

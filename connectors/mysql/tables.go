package mysql

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Version is written in the events' source.version.
const Version = "tributary-0.1.0"

// topicName is <prefix>.<db>.<table>, with characters Kafka refuses in
// topic names replaced by '_' (as Debezium's topic naming does).
func topicName(prefix string, id tableID) string {
	sanitize := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
		return b.String()
	}
	return prefix + "." + sanitize(id.DB) + "." + sanitize(id.Table)
}

// tableState is a captured table at its current shape, ready to encode.
type tableState struct {
	id      tableID
	def     *tableDef
	cols    []column
	keyIdx  []int
	st      *schema.Table
	codec   *schema.Codec
	topic   string
	warned  map[string]bool
	chunkOK bool // primary key usable for keyset pagination
}

// newTableState compiles def; keyCols overrides a missing primary key.
func newTableState(prefix string, def *tableDef, keyCols []string) (*tableState, error) {
	ts := &tableState{id: def.id(), def: def, topic: topicName(prefix, def.id()), warned: map[string]bool{}}
	key := def.PK
	if len(key) == 0 && len(keyCols) > 0 {
		key = keyCols
	}
	isKey := map[int]bool{}
	for _, k := range key {
		i := def.colIndex(k)
		if i < 0 {
			return nil, fmt.Errorf("table %s: key column %q does not exist (columns: %s)", ts.id, k, columnNames(def))
		}
		ts.keyIdx = append(ts.keyIdx, i)
		isKey[i] = true
	}
	st := &schema.Table{Topic: ts.topic, Key: ts.keyIdx}
	for i, d := range def.Columns {
		c := compileColumn(d, isKey[i])
		ts.cols = append(ts.cols, c)
		// Non-key columns are optional whatever their NOT NULL, so adding,
		// dropping or tightening a column stays BACKWARD compatible.
		st.Columns = append(st.Columns, schema.Column{Name: d.Name, Type: c.connectType(), Optional: !isKey[i]})
	}
	ts.st = st
	ts.chunkOK = len(def.PK) > 0
	for _, i := range ts.keyIdx {
		switch ts.cols[i].kind {
		case kTinyInt, kSmallInt, kMediumInt, kInt, kBigInt, kDecimal, kString, kBytes, kDate, kDateTime, kTimestamp, kTime, kYear:
		default:
			ts.chunkOK = false
		}
	}
	return ts, nil
}

func columnNames(def *tableDef) string {
	n := make([]string, len(def.Columns))
	for i, c := range def.Columns {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

// unknownColumns lists columns whose type has no Debezium mapping.
func (ts *tableState) unknownColumns() []string {
	var out []string
	for _, c := range ts.cols {
		if c.kind == kUnknown || c.kind == kInet6 || c.kind == kUUID {
			out = append(out, c.def.Name+" "+c.def.TypeExpression)
		}
	}
	return out
}

// emitter turns rows into records for the runtime. Its codecs are used by
// one goroutine at a time (a snapshot worker owns its tables).
type emitter struct {
	rt     source.Runtime
	name   string // source.name: the topic prefix, as Debezium writes it
	srcDef *schema.SourceBlock
}

func (e *emitter) prepare(ctx context.Context, ts *tableState) error {
	if ts.codec != nil {
		return nil
	}
	c, err := e.rt.Codec(ctx, ts.st, e.srcDef)
	if err != nil {
		return fmt.Errorf("table %s: %w", ts.id, err)
	}
	ts.codec = c
	return nil
}

// sourceBlock returns the source values common to this connector.
func (e *emitter) sourceBlock(id tableID, snapshot string, tsMs int64) []any {
	src := make([]any, len(e.srcDef.Fields))
	src[schema.SrcVersion] = Version
	src[schema.SrcConnector] = "mysql"
	src[schema.SrcName] = e.name
	src[schema.SrcTsMs] = tsMs
	src[schema.SrcSnapshot] = snapshot
	src[schema.SrcDB] = id.DB
	src[schema.SrcTsUs] = tsMs * 1000
	src[schema.SrcTsNs] = tsMs * 1_000_000
	src[schema.MySQLSrcTable] = id.Table
	src[schema.MySQLSrcRow] = int32(0)
	return src
}

// emit writes one change event (and a tombstone after a delete of a keyed
// row). An update that changes the key becomes a delete of the old key and
// a create of the new one, as Debezium does.
func (e *emitter) emit(ctx context.Context, ts *tableState, op schema.Op, before, after []any, src []any) (int, error) {
	if err := e.prepare(ctx, ts); err != nil {
		return 0, err
	}
	now := time.Now().UnixMicro()
	if op == schema.OpUpdate && len(ts.keyIdx) > 0 {
		oldKey, err := ts.codec.AppendKey(nil, before)
		if err != nil {
			return 0, fmt.Errorf("table %s: encoding key: %w", ts.id, err)
		}
		newKey, err := ts.codec.AppendKey(nil, after)
		if err != nil {
			return 0, fmt.Errorf("table %s: encoding key: %w", ts.id, err)
		}
		if !bytes.Equal(oldKey, newKey) {
			n1, err := e.emit(ctx, ts, schema.OpDelete, before, nil, src)
			if err != nil {
				return n1, err
			}
			n2, err := e.emit(ctx, ts, schema.OpCreate, nil, after, src)
			return n1 + n2, err
		}
	}
	row := after
	if row == nil {
		row = before
	}
	if row == nil && op == schema.OpTruncate && len(ts.keyIdx) > 0 {
		// Compacted topics refuse null keys, so a truncate carries the key
		// record with zero values (see truncateKeyNote in README).
		row = make([]any, len(ts.st.Columns))
	}
	var key []byte
	var err error
	if row != nil {
		if key, err = ts.codec.AppendKey(nil, row); err != nil {
			return 0, fmt.Errorf("table %s: encoding key: %w", ts.id, err)
		}
	}
	val, err := ts.codec.AppendEnvelope(nil, &schema.Envelope{Op: op, Before: before, After: after, Source: src, TsUs: now})
	if err != nil {
		return 0, fmt.Errorf("table %s: encoding %c event: %w", ts.id, op, err)
	}
	if err := e.rt.Emit(ctx, source.Record{Topic: ts.topic, Key: key, Value: val}); err != nil {
		return 0, err
	}
	if op == schema.OpDelete && key != nil {
		if err := e.rt.Emit(ctx, source.Record{Topic: ts.topic, Key: key}); err != nil {
			return 1, err
		}
		return 2, nil
	}
	return 1, nil
}

// rowFromText converts a snapshot row into Go values.
func (ts *tableState) rowFromText(vals []textValue) ([]any, error) {
	row := make([]any, len(ts.cols))
	for i := range ts.cols {
		v, err := ts.cols[i].fromText(vals[i])
		if err != nil {
			return nil, fmt.Errorf("table %s column %s (%s): %w", ts.id, ts.cols[i].def.Name, ts.cols[i].def.TypeExpression, err)
		}
		row[i] = v
	}
	return row, nil
}

// rowFromBinlog converts a binlog row image into Go values.
func (ts *tableState) rowFromBinlog(vals []any) ([]any, error) {
	if len(vals) != len(ts.cols) {
		return nil, fmt.Errorf("table %s: binlog row has %d columns but the schema history knows %d (%s)",
			ts.id, len(vals), len(ts.cols), columnNames(ts.def))
	}
	row := make([]any, len(ts.cols))
	for i := range ts.cols {
		v, err := ts.cols[i].fromBinlog(vals[i])
		if err != nil {
			return nil, fmt.Errorf("table %s column %s (%s): %w", ts.id, ts.cols[i].def.Name, ts.cols[i].def.TypeExpression, err)
		}
		row[i] = v
	}
	return row, nil
}

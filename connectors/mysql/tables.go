package mysql

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Version is written in the events' source.version.
const Version = "tributary-0.1.0"

// topicName is <prefix>.<db>.<table>, with characters Kafka refuses in
// topic names replaced by '_' (as Debezium's topic naming does).
func topicName(prefix string, id tableID) string { return source.TopicName(prefix, id.DB, id.Table) }

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
	// keyHint and valueHint size the encoding buffers (bytes of the last
	// key, largest value so far).
	keyHint, valueHint int
	// partsOff turns off part-by-part encoding (see rowsEncoder).
	partsOff bool
	// direct is the direct plan for the last table map seen; directOff
	// turns the direct path off (see rowsdirect.go).
	direct    *directPlan
	directOff bool
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
		t := c.connectType()
		t.Default, _, _ = c.defaultValue()
		st.Columns = append(st.Columns, schema.Column{Name: d.Name, Type: t, Optional: !isKey[i]})
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
// row) stamped with the current time, its bytes freshly allocated.
func (e *emitter) emit(ctx context.Context, ts *tableState, op schema.Op, before, after []any, src []any) (int, error) {
	return e.emitWith(ctx, nil, ts, op, before, after, src, time.Now().UnixMicro())
}

// emitWith writes one change event (and a tombstone after a delete of a
// keyed row) with processing time nowUs. Key and value bytes are carved from
// a when it is not nil (a belongs to the calling goroutine). An update that
// changes the key becomes a delete of the old key and a create of the new
// one, as Debezium does.
func (e *emitter) emitWith(ctx context.Context, a *arena, ts *tableState, op schema.Op, before, after []any, src []any, nowUs int64) (int, error) {
	return e.emitTo(ctx, a, ts, op, before, after, src, nowUs, nil)
}

// emitTo is emitWith that appends the records to *out, when out is not
// nil, instead of emitting them.
func (e *emitter) emitTo(ctx context.Context, a *arena, ts *tableState, op schema.Op, before, after []any, src []any, nowUs int64, out *[]source.Record) (int, error) {
	if err := e.prepare(ctx, ts); err != nil {
		return 0, err
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
	if row != nil && len(ts.keyIdx) > 0 {
		if key, err = ts.codec.AppendKey(a.dst(ts.keyHint), row); err != nil {
			return 0, fmt.Errorf("table %s: encoding key: %w", ts.id, err)
		}
		key = a.keep(key)
		ts.keyHint = len(key)
		if op == schema.OpUpdate && before != nil {
			// The old key goes to a scratch buffer: it is only compared.
			oldKey, err := ts.codec.AppendKey(a.scratchBuf(), before)
			if err != nil {
				return 0, fmt.Errorf("table %s: encoding key: %w", ts.id, err)
			}
			if a != nil {
				a.scratch = oldKey
			}
			if !bytes.Equal(oldKey, key) {
				n1, err := e.emitTo(ctx, a, ts, schema.OpDelete, before, nil, src, nowUs, out)
				if err != nil {
					return n1, err
				}
				n2, err := e.emitTo(ctx, a, ts, schema.OpCreate, nil, after, src, nowUs, out)
				return n1 + n2, err
			}
		}
	}
	val, err := ts.codec.AppendEnvelope(a.dst(ts.valueHint), &schema.Envelope{Op: op, Before: before, After: after, Source: src, TsUs: nowUs})
	if err != nil {
		return 0, fmt.Errorf("table %s: encoding %c event: %w", ts.id, op, err)
	}
	val = a.keep(val)
	ts.valueHint = max(ts.valueHint, len(val))
	if out != nil {
		*out = append(*out, source.Record{Topic: ts.topic, Key: key, Value: val})
		if op == schema.OpDelete && key != nil {
			*out = append(*out, source.Record{Topic: ts.topic, Key: key})
			return 2, nil
		}
		return 1, nil
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

// arena hands out the bytes of records from large chunks, so encoding an
// event costs no allocation of its own. A chunk lives until the log has
// acknowledged every record carved from it: records are acknowledged
// roughly in order, so memory stays within the in-flight bound plus one
// chunk. An arena belongs to one goroutine. A nil arena allocates.
//
// With recycle set, chunks are reused once the log has acknowledged their
// records: the caller hands every record to the runtime through a batch
// whose done callback is batchDone's result (see rowsEncoder.flush).
type arena struct {
	buf []byte
	// scratch is reused for bytes that are not kept.
	scratch []byte

	recycle bool
	cur     *chunk
	// touched are the chunks records were carved from since the last
	// batchDone (cur included).
	touched []*chunk
}

// chunk is a recyclable arena chunk. refs counts one while it is the
// arena's current chunk, one while it is in the arena's touched list, and
// one per batch in flight holding records from it.
type chunk struct {
	buf  []byte
	refs atomic.Int32
}

const arenaChunk = 128 << 10

// chunkPool holds chunks whose records the log has acknowledged.
var chunkPool = sync.Pool{New: func() any { return &chunk{buf: make([]byte, arenaChunk)} }}

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 && cap(c.buf) == arenaChunk {
		chunkPool.Put(c)
	}
}

func (a *arena) scratchBuf() []byte {
	if a == nil {
		return nil
	}
	return a.scratch[:0]
}

// dst returns an empty slice with room for at least hint bytes (plus some
// slack); appending past it reallocates, which keep detects.
func (a *arena) dst(hint int) []byte {
	if a == nil {
		if hint <= 0 {
			return nil
		}
		return make([]byte, 0, hint+hint/4+16)
	}
	need := hint + hint/4 + 16
	if cap(a.buf)-len(a.buf) < need {
		a.newChunk(need)
	}
	return a.buf[len(a.buf):len(a.buf)]
}

func (a *arena) newChunk(need int) {
	if !a.recycle {
		a.buf = make([]byte, 0, max(arenaChunk, 4*need))
		return
	}
	var c *chunk
	if need <= arenaChunk/4 {
		c = chunkPool.Get().(*chunk)
	} else {
		c = &chunk{buf: make([]byte, 4*need)}
	}
	c.refs.Store(2) // current and touched
	if a.cur != nil {
		a.cur.release()
	}
	a.cur = c
	a.buf = c.buf[:0]
	a.touched = append(a.touched, c)
}

// batchDone returns the done callback of a batch holding every record
// carved since the previous call: it releases the chunks they came from.
func (a *arena) batchDone() func() {
	if a == nil || !a.recycle || len(a.touched) == 0 {
		return nil
	}
	// The touched list's refs pass to the batch; the current chunk may
	// receive records of the next batch, so it is touched again.
	held := slices.Clone(a.touched)
	a.touched = a.touched[:0]
	if a.cur != nil {
		a.cur.refs.Add(1)
		a.touched = append(a.touched, a.cur)
	}
	return func() {
		for _, c := range held {
			c.release()
		}
	}
}

// keep claims b, which was appended to the last dst: when it still lies in
// the chunk the chunk moves past it. The result's capacity is its length,
// so nobody appends over the next record.
func (a *arena) keep(b []byte) []byte {
	if a == nil || len(b) == 0 {
		return b
	}
	n := len(a.buf)
	if cap(a.buf)-n >= len(b) && &a.buf[n : n+1][0] == &b[0] {
		a.buf = a.buf[:n+len(b)]
	}
	return b[:len(b):len(b)]
}

// rowFromTextInto converts a snapshot row into Go values, reusing dst's
// backing array when it is large enough. With alias, strings and bytes
// share the memory of vals (see column.fromTextValue).
func (ts *tableState) rowFromTextInto(dst []any, vals []textValue, alias bool) ([]any, error) {
	row := dst[:0]
	if cap(row) < len(ts.cols) {
		row = make([]any, len(ts.cols))
	}
	row = row[:len(ts.cols)]
	for i := range ts.cols {
		v, err := ts.cols[i].fromTextValue(&vals[i], alias)
		if err != nil {
			return nil, fmt.Errorf("table %s column %s (%s): %w", ts.id, ts.cols[i].def.Name, ts.cols[i].def.TypeExpression, err)
		}
		row[i] = v
	}
	return row, nil
}

// rowFromBinlog converts a binlog row image into Go values.
func (ts *tableState) rowFromBinlog(vals []any) ([]any, error) {
	return ts.rowFromBinlogInto(nil, vals)
}

// rowFromBinlogInto converts a binlog row image into Go values, reusing
// dst's backing array when it is large enough.
func (ts *tableState) rowFromBinlogInto(dst []any, vals []any) ([]any, error) {
	if len(vals) != len(ts.cols) {
		return nil, fmt.Errorf("table %s: binlog row has %d columns but the schema history knows %d (%s)",
			ts.id, len(vals), len(ts.cols), columnNames(ts.def))
	}
	row := dst[:0]
	if cap(row) < len(ts.cols) {
		row = make([]any, len(ts.cols))
	}
	row = row[:len(ts.cols)]
	for i := range ts.cols {
		v, err := ts.cols[i].fromBinlog(vals[i])
		if err != nil {
			return nil, fmt.Errorf("table %s column %s (%s): %w", ts.id, ts.cols[i].def.Name, ts.cols[i].def.TypeExpression, err)
		}
		row[i] = v
	}
	return row, nil
}

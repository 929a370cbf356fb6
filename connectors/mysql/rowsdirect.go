package mysql

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

func schemaRecord(ts *tableState, key, val []byte) source.Record {
	return source.Record{Topic: ts.topic, Key: key, Value: val}
}

// Rows written straight from the binlog.
//
// For tables whose columns all have a fixed, simple binlog form (integers,
// DOUBLE, VARCHAR in UTF-8), insert and delete events skip go-mysql's
// row decoding (a []any per row, an interface value per column): the
// syncer's goroutine only decodes the event header and keeps the row
// bytes, and the streamer writes each column's Avro bytes straight from
// them. Everything else (other types, updates, compressed or partial
// events, images without every column) is decoded by go-mysql as before,
// on the streamer's goroutine. The first event of every table map, and
// every directCheckEvery-th after it, is also decoded by go-mysql and its
// first row encoded the plain way and compared; a difference turns the
// direct path off for the table.

// rawRows are the undecoded rows of an event.
type rawRows struct {
	data []byte
	pos  int
	// bare is the table map without signedness (see rowsDecoder).
	bare *replication.TableMapEvent
}

// rawStore hands raw rows from the syncer's goroutine to the streamer's.
type rawStore struct {
	mu sync.Mutex
	m  map[*replication.RowsEvent]rawRows
}

func (r *rawStore) put(e *replication.RowsEvent, raw rawRows) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[*replication.RowsEvent]rawRows{}
	}
	r.m[e] = raw
	r.mu.Unlock()
}

func (r *rawStore) take(e *replication.RowsEvent) (rawRows, bool) {
	r.mu.Lock()
	raw, ok := r.m[e]
	if ok {
		delete(r.m, e)
	}
	r.mu.Unlock()
	return raw, ok
}

func (r *rawStore) reset() {
	r.mu.Lock()
	clear(r.m)
	r.mu.Unlock()
}

// simpleBinlogTypes reports whether every column of the table map has a
// binlog form the direct path reads.
func simpleBinlogTypes(t *replication.TableMapEvent) bool {
	if int(t.ColumnCount) != len(t.ColumnType) || len(t.ColumnMeta) != len(t.ColumnType) {
		return false
	}
	for _, tp := range t.ColumnType {
		switch tp {
		case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
			gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		default:
			return false
		}
	}
	return true
}

// decodeLater decodes rows that the syncer's goroutine left raw.
func decodeLater(e *replication.RowsEvent, raw rawRows) error {
	t := e.Table
	if raw.bare != nil {
		e.Table = raw.bare
	}
	err := e.DecodeData(raw.pos, raw.data)
	e.Table = t
	return err
}

// How a column's binlog bytes become Avro.
const (
	dInt8 = iota + 1
	dUint8
	dInt16
	dUint16
	dInt24
	dUint24
	dInt32
	dUint32
	dInt64
	dDouble
	dString1 // VARCHAR with a 1-byte length
	dString2 // VARCHAR with a 2-byte length
)

type directCol struct {
	how             byte
	opt             bool
	nullIdx, valIdx byte
}

// directPlan is a table's direct encoding for one table map.
type directPlan struct {
	tme    *replication.TableMapEvent
	cols   []directCol
	ok     bool
	events int
}

const directCheckEvery = 1024

// plan returns the table's direct plan for the event's table map.
func (ts *tableState) plan(tme *replication.TableMapEvent) *directPlan {
	if ts.direct != nil && ts.direct.tme == tme {
		return ts.direct
	}
	p := &directPlan{tme: tme}
	ts.direct = p
	if ts.codec == nil || ts.directOff || !simpleBinlogTypes(tme) || len(ts.cols) != len(tme.ColumnType) {
		return p
	}
	p.cols = make([]directCol, len(ts.cols))
	for i := range ts.cols {
		c := &ts.cols[i]
		tp, meta := tme.ColumnType[i], tme.ColumnMeta[i]
		var how byte
		var want schema.Kind
		switch {
		case tp == gomysql.MYSQL_TYPE_TINY && c.kind == kTinyInt:
			how, want = dInt8, schema.Int16
			if c.unsigned {
				how = dUint8
			}
		case tp == gomysql.MYSQL_TYPE_SHORT && c.kind == kSmallInt:
			how, want = dInt16, schema.Int16
			if c.unsigned {
				how, want = dUint16, schema.Int32
			}
		case tp == gomysql.MYSQL_TYPE_INT24 && c.kind == kMediumInt:
			how, want = dInt24, schema.Int32
			if c.unsigned {
				how = dUint24
			}
		case tp == gomysql.MYSQL_TYPE_LONG && c.kind == kInt:
			how, want = dInt32, schema.Int32
			if c.unsigned {
				how, want = dUint32, schema.Int64
			}
		case tp == gomysql.MYSQL_TYPE_LONGLONG && c.kind == kBigInt:
			how, want = dInt64, schema.Int64 // BIGINT UNSIGNED wraps, as Debezium's long mode does
		case tp == gomysql.MYSQL_TYPE_DOUBLE && c.kind == kDouble:
			how, want = dDouble, schema.Float64
		case (tp == gomysql.MYSQL_TYPE_VARCHAR || tp == gomysql.MYSQL_TYPE_VAR_STRING) && c.kind == kString &&
			c.dec == nil && !c.unknownCharset:
			how, want = dString1, schema.String
			if meta >= 256 {
				how = dString2
			}
		default:
			return p
		}
		if ts.codec.ColumnKind(i) != want {
			return p
		}
		opt, nullIdx, valIdx := ts.codec.ColumnUnion(i)
		p.cols[i] = directCol{how: how, opt: opt, nullIdx: nullIdx, valIdx: valIdx}
	}
	p.ok = true
	return p
}

// fullBitmap reports whether bm marks all n columns present.
func fullBitmap(bm []byte, n int) bool {
	if len(bm) < (n+7)/8 {
		return false
	}
	for i := 0; i < n; i++ {
		if bm[i>>3]&(1<<(uint(i)&7)) == 0 {
			return false
		}
	}
	return true
}

// directEventTypes are the rows events the direct path reads.
func directEventType(t replication.EventType) bool {
	switch t {
	case replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2:
		return true
	}
	return false
}

var errDirect = fmt.Errorf("row image does not match the table map")

// appendImage writes the image at data[p:] and returns the new offset.
// colEnd receives each column's end relative to the image's first column.
func (p *directPlan) appendImage(dst []byte, codec *schema.Codec, data []byte, at int, colEnd []int) ([]byte, int, error) {
	n := len(p.cols)
	nb := (n + 7) / 8
	if at+nb > len(data) {
		return dst, at, errDirect
	}
	nulls := data[at : at+nb]
	at += nb
	base := len(dst)
	for i := range p.cols {
		c := &p.cols[i]
		if nulls[i>>3]&(1<<(uint(i)&7)) != 0 {
			if c.opt {
				dst = append(dst, c.nullIdx)
			} else {
				var err error
				if dst, err = codec.AppendColumn(dst, i, nil); err != nil {
					return dst, at, err
				}
			}
			colEnd[i] = len(dst) - base
			continue
		}
		if c.opt {
			dst = append(dst, c.valIdx)
		}
		var v int64
		switch c.how {
		case dInt8, dUint8:
			if at+1 > len(data) {
				return dst, at, errDirect
			}
			if c.how == dInt8 {
				v = int64(int8(data[at]))
			} else {
				v = int64(data[at])
			}
			at++
		case dInt16, dUint16:
			if at+2 > len(data) {
				return dst, at, errDirect
			}
			u := binary.LittleEndian.Uint16(data[at:])
			if c.how == dInt16 {
				v = int64(int16(u))
			} else {
				v = int64(u)
			}
			at += 2
		case dInt24, dUint24:
			if at+3 > len(data) {
				return dst, at, errDirect
			}
			u := uint32(data[at]) | uint32(data[at+1])<<8 | uint32(data[at+2])<<16
			if c.how == dInt24 && u&0x800000 != 0 {
				u |= 0xFF000000
				v = int64(int32(u))
			} else {
				v = int64(u)
			}
			at += 3
		case dInt32, dUint32:
			if at+4 > len(data) {
				return dst, at, errDirect
			}
			u := binary.LittleEndian.Uint32(data[at:])
			if c.how == dInt32 {
				v = int64(int32(u))
			} else {
				v = int64(u)
			}
			at += 4
		case dInt64:
			if at+8 > len(data) {
				return dst, at, errDirect
			}
			v = int64(binary.LittleEndian.Uint64(data[at:]))
			at += 8
		case dDouble:
			if at+8 > len(data) {
				return dst, at, errDirect
			}
			// Avro doubles are little-endian IEEE 754, as the binlog's.
			f := math.Float64frombits(binary.LittleEndian.Uint64(data[at:]))
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
			at += 8
			colEnd[i] = len(dst) - base
			continue
		case dString1, dString2:
			var l int
			if c.how == dString1 {
				if at+1 > len(data) {
					return dst, at, errDirect
				}
				l = int(data[at])
				at++
			} else {
				if at+2 > len(data) {
					return dst, at, errDirect
				}
				l = int(binary.LittleEndian.Uint16(data[at:]))
				at += 2
			}
			if at+l > len(data) {
				return dst, at, errDirect
			}
			dst = schema.AppendLong(dst, int64(l))
			dst = append(dst, data[at:at+l]...)
			at += l
			colEnd[i] = len(dst) - base
			continue
		}
		dst = schema.AppendLong(dst, v)
		colEnd[i] = len(dst) - base
	}
	return dst, at, nil
}

// direct writes the rows of an insert or delete event straight from its
// bytes. handled is false when the event must take the decoded path (no
// record was produced then).
func (r *rowsEncoder) direct(ctx context.Context, e *replication.RowsEvent, raw rawRows, p *directPlan) (n int, handled bool, err error) {
	ts := r.ts
	bm := e.ColumnBitmap1
	if !r.ok || !fullBitmap(bm, len(p.cols)) {
		return 0, false, nil
	}
	data := raw.data
	if raw.pos > len(data) {
		return 0, false, nil
	}
	p.events++
	check := p.events%directCheckEvery == 1
	if cap(r.colEnd) < len(p.cols) {
		r.colEnd = make([]int, len(p.cols))
	}
	r.colEnd = r.colEnd[:len(p.cols)]
	isDelete := r.op == schema.OpDelete
	at := raw.pos
	for row := 0; at < len(data); row++ {
		val := r.a.dst(ts.valueHint)
		val = append(val, r.hdr...)
		if isDelete {
			val = append(val, r.valIdx)
		} else {
			val = append(val, r.nullIdx, r.valIdx)
		}
		imgStart := len(val)
		var next int
		if val, next, err = p.appendImage(val, ts.codec, data, at, r.colEnd); err != nil {
			if row == 0 && err == errDirect {
				return 0, false, nil
			}
			return n, true, fmt.Errorf("table %s: writing row %d of a binlog event: %w", ts.id, row, err)
		}
		at = next
		img := val[imgStart:]
		if isDelete {
			val = append(val, r.nullIdx)
		}
		val = append(val, r.tailPre...)
		val = schema.AppendLong(val, int64(row))
		val = append(val, r.tailPst...)
		val = r.a.keep(val)
		ts.valueHint = max(ts.valueHint, len(val))
		img = val[imgStart : imgStart+len(img)]

		var key []byte
		if len(ts.keyIdx) > 0 {
			key = ts.codec.AppendKeyHeader(r.a.dst(ts.keyHint))
			for _, k := range ts.codec.KeyColumns() {
				start := 0
				if k > 0 {
					start = r.colEnd[k-1]
				}
				key = append(key, img[start:r.colEnd[k]]...)
			}
			key = r.a.keep(key)
			ts.keyHint = len(key)
		}
		if check && row == 0 {
			same, err := r.checkDirect(e, raw, key, val)
			if err != nil {
				return 0, true, err
			}
			if !same {
				ts.directOff = true
				r.em.rt.Logger().Error("direct binlog row encoding differs from the decoded one; decoding this table's rows from now on (a bug worth reporting)", "table", ts.id.String())
				return 0, false, nil
			}
		}
		r.batch = append(r.batch, schemaRecord(ts, key, val))
		n++
		if isDelete && key != nil {
			r.batch = append(r.batch, schemaRecord(ts, key, nil))
			n++
		}
		if len(r.batch) >= maxBatch {
			if err := r.flush(ctx); err != nil {
				return n, true, err
			}
		}
	}
	return n, true, nil
}

// checkDirect decodes the event with go-mysql and compares its first row's
// plain encoding with the direct one.
func (r *rowsEncoder) checkDirect(e *replication.RowsEvent, raw rawRows, key, val []byte) (bool, error) {
	ts := r.ts
	if err := decodeLater(e, raw); err != nil {
		return false, nil // the decoded path reports it
	}
	if len(e.Rows) == 0 {
		return false, nil
	}
	row, err := ts.rowFromBinlog(e.Rows[0])
	if err != nil {
		return false, nil
	}
	var before, after []any
	if r.op == schema.OpDelete {
		before = row
	} else {
		after = row
	}
	r.src[schema.MySQLSrcRow] = int32(0)
	plain, err := ts.codec.AppendEnvelope(r.plain[:0], &schema.Envelope{Op: r.op, Before: before, After: after, Source: r.src, TsUs: r.nowUs})
	if err != nil {
		return false, nil
	}
	r.plain = plain
	if string(plain) != string(val) {
		return false, nil
	}
	if len(ts.keyIdx) > 0 {
		pk, err := ts.codec.AppendKey(nil, row)
		if err != nil || string(pk) != string(key) {
			return false, nil
		}
	}
	e.Rows, e.SkippedColumns = nil, nil
	return true, nil
}

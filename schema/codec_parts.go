package schema

import (
	"fmt"
)

// Events built part by part.
//
// A bulk reader (a snapshot) writes millions of events of one table whose
// envelopes differ only in the after image: the header, the null before
// image and everything after the image (source block, transaction, op and
// timestamps) are the same for a whole block of rows. These methods let it
// encode those parts once and write each row's columns straight from its
// source form, without building a []any row. The bytes are exactly what
// AppendKey and AppendEnvelope write:
//
//	value = AppendAfterHead + AppendColumn (every column, in order) + AppendTail
//	key   = AppendKeyHeader + the bytes AppendColumn wrote for each key
//	        column, in Table.Key order (see KeyColumns)

// NumColumns is the number of columns of the table.
func (c *Codec) NumColumns() int { return len(c.cols) }

// KeyColumns returns the indexes of the key columns in key order (nil for a
// table without a key). The slice must not be modified.
func (c *Codec) KeyColumns() []int { return c.key }

// AppendKeyHeader appends the wire-format header of the key (magic byte and
// schema id). A table without a key has no key: it returns dst unchanged.
func (c *Codec) AppendKeyHeader(dst []byte) []byte {
	if len(c.key) == 0 {
		return dst
	}
	return append(dst, c.keyHdr[:]...)
}

// AppendAfterHead appends the start of an envelope with a null before image
// and a present after image (op r or c): the wire-format header, the null
// before and the union index of the after image.
func (c *Codec) AppendAfterHead(dst []byte) []byte {
	return append(append(dst, c.valueHdr[:]...), 0, 2)
}

// ColumnUnion describes how column i is written: an optional column starts
// with the union index valueIdx before its value, or is the single byte
// nullIdx when null. A required column has no union index.
func (c *Codec) ColumnUnion(i int) (optional bool, nullIdx, valueIdx byte) {
	p := &c.cols[i]
	return p.opt, p.nullIdx, p.valIdx
}

// ColumnKind is the Kind column i is encoded as.
func (c *Codec) ColumnKind(i int) Kind { return c.cols[i].kind }

// AppendColumn appends value v of column i as it appears in an image: with
// the union index of an optional column, and for nil the null branch (or,
// in a required column, the Connect default or zero value, as
// AppendEnvelope). On error dst is returned unchanged.
func (c *Codec) AppendColumn(dst []byte, i int, v any) ([]byte, error) {
	if i < 0 || i >= len(c.cols) {
		return dst, &ValueError{Topic: c.topic, Part: "after", Msg: fmt.Sprintf("column %d out of range (table has %d columns)", i, len(c.cols))}
	}
	out, err := c.cols[i].append(dst, v)
	if err != nil {
		return dst, c.fill(err, "after")
	}
	return out, nil
}

// AppendTail appends what follows the after image in the envelope of e:
// the source block, the transaction block, op and the timestamps.
// e.Before and e.After are not read. On error dst is returned unchanged.
func (c *Codec) AppendTail(dst []byte, e *Envelope) ([]byte, error) {
	switch e.Op {
	case OpCreate, OpUpdate, OpDelete, OpRead, OpTruncate:
	default:
		return dst, &ValueError{Topic: c.topic, Part: "op", Msg: fmt.Sprintf("unknown op %q", byte(e.Op))}
	}
	if len(e.Source) != len(c.src) {
		return dst, &ValueError{Topic: c.topic, Part: "source",
			Msg: fmt.Sprintf("source has %d values, source block has %d fields", len(e.Source), len(c.src))}
	}
	start := len(dst)
	var err error
	for i := range c.src {
		if dst, err = c.src[i].append(dst, e.Source[i]); err != nil {
			return dst[:start], c.fill(err, "source")
		}
	}
	return c.appendTxnOpTs(dst, e), nil
}

// appendTxnOpTs writes the transaction block, op, ts_ms, ts_us and ts_ns.
func (c *Codec) appendTxnOpTs(dst []byte, e *Envelope) []byte {
	if e.Txn == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 2)
		dst = appendVarint(dst, int64(len(e.Txn.ID)))
		dst = append(dst, e.Txn.ID...)
		dst = appendVarint(dst, e.Txn.TotalOrder)
		dst = appendVarint(dst, e.Txn.DataCollectionOrder)
	}
	dst = append(dst, 2, byte(e.Op)) // string of length 1
	ms := e.TsUs / 1000
	if e.TsUs%1000 < 0 {
		ms-- // floor, as Instant.toEpochMilli
	}
	dst = append(dst, 2)
	dst = appendVarint(dst, ms)
	dst = append(dst, 2)
	dst = appendVarint(dst, e.TsUs)
	dst = append(dst, 2)
	dst = appendVarint(dst, e.TsUs*1000)
	return dst
}

// AppendLong appends v as an Avro long or int (zigzag varint), the value
// encoding of Int8, Int16, Int32 and Int64 columns.
func AppendLong(dst []byte, v int64) []byte { return appendVarint(dst, v) }

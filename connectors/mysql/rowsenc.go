package mysql

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// rowsEncoder writes the events of one binlog rows event part by part
// (schema's Codec part API): the envelope head, the union bytes of the
// images and the tail (source block, transaction, op, timestamps) are the
// same for every row of the event except the source block's row number,
// so they are encoded once per event and each row only adds its images.
// Records are collected and handed to the runtime in one batch per event,
// in order. The first row of every event is also encoded the plain way and
// compared: a difference turns the part-by-part path off for the table (it
// would be a bug, and the plain bytes are the reference).
//
// A rowsEncoder belongs to the streaming goroutine.
type rowsEncoder struct {
	em *emitter
	a  *arena

	ts    *tableState
	op    schema.Op
	nowUs int64
	src   []any

	hdr              []byte // wire-format header of the value
	nullIdx, valIdx  byte   // union indexes of an absent and a present image
	tailPre, tailPst []byte // the tail before and after the row number
	ok               bool   // the template is usable for this event
	checked          bool   // the event's first row was compared

	keyBase int   // offset of the key image's first column in the value
	colEnd  []int // end of each column of the key image, from keyBase
	batch   []source.Record
	plain   []byte
	bk, ak  []byte // key columns of an update's images, compared

	inflight inflight
}

// maxInflight bounds the bytes of streamed records the log has not yet
// acknowledged, below the runtime's own bound (max_in_flight_bytes): a
// backlog drains as fast with a few MiB in flight, and a small heap keeps
// the garbage collector from running flat out near the memory limit.
const maxInflight = 16 << 20

// inflight counts the bytes of records handed to the log and not yet
// acknowledged; acknowledgements arrive on another goroutine.
type inflight struct {
	n    atomic.Int64
	wake chan struct{}
}

func (f *inflight) add(n int) {
	if f.n.Add(int64(n)) <= maxInflight && n < 0 && f.wake != nil {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// wait blocks while more than maxInflight bytes are unacknowledged.
func (f *inflight) wait(ctx context.Context) error {
	if f.wake == nil {
		return nil // not counted (see rowsEncoder.init)
	}
	for f.n.Load() > maxInflight {
		select {
		case <-f.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// init binds the encoder to the streamer's emitter and arena.
func (r *rowsEncoder) init(em *emitter, a *arena) {
	r.em, r.a = em, a
	if _, ok := em.rt.(source.BatchDoneEmitter); ok {
		a.recycle = true
		r.inflight.wake = make(chan struct{}, 1)
	}
}

// maxBatch bounds the records held before they go to the runtime.
const maxBatch = 256

// begin prepares the template of one rows event. src is the event's
// source block; its row number is written per row.
func (r *rowsEncoder) begin(ctx context.Context, ts *tableState, op schema.Op, src []any, nowUs int64) error {
	if err := r.em.prepare(ctx, ts); err != nil {
		return err
	}
	r.ts, r.op, r.src, r.nowUs, r.ok, r.checked = ts, op, src, nowUs, false, false
	if ts.partsOff {
		return nil
	}
	head := ts.codec.AppendAfterHead(r.hdr[:0])
	if len(head) < 3 {
		return nil
	}
	r.nullIdx, r.valIdx = head[len(head)-2], head[len(head)-1]
	r.hdr = head[:len(head)-2]
	// The tail with row numbers 0 and 1000 differs first at the row
	// number: 0 is the single byte 0, 1000 two bytes.
	env := schema.Envelope{Op: op, Source: src, TsUs: nowUs}
	saved := src[schema.MySQLSrcRow]
	src[schema.MySQLSrcRow] = int32(0)
	t0, err := ts.codec.AppendTail(r.tailPre[:0], &env)
	if err != nil {
		src[schema.MySQLSrcRow] = saved
		return fmt.Errorf("table %s: encoding %c event: %w", ts.id, op, err)
	}
	r.tailPre = t0
	src[schema.MySQLSrcRow] = int32(1000)
	t1, err := ts.codec.AppendTail(r.plain[:0], &env)
	src[schema.MySQLSrcRow] = saved
	if err != nil {
		return fmt.Errorf("table %s: encoding %c event: %w", ts.id, op, err)
	}
	r.plain = t1
	p := 0
	for p < len(t0) && p < len(t1) && t0[p] == t1[p] {
		p++
	}
	if p >= len(t0) || t0[p] != 0 || len(t1) != len(t0)+1 {
		return nil
	}
	r.tailPst = append(r.tailPst[:0], t0[p+1:]...)
	r.tailPre = t0[:p]
	r.ok = true
	return nil
}

// row writes the events of one row: before and after are the images
// (nil when absent) and row the row number within the event.
func (r *rowsEncoder) row(ctx context.Context, before, after []any, row int) (int, error) {
	ts := r.ts
	r.src[schema.MySQLSrcRow] = int32(row)
	if !r.ok || ts.partsOff || (r.op == schema.OpUpdate && len(ts.keyIdx) > 0 && !r.sameKey(ctx, before, after)) {
		// A key change is a delete and a create: the plain path does it.
		return r.em.emitTo(ctx, r.a, ts, r.op, before, after, r.src, r.nowUs, &r.batch)
	}
	val := r.a.dst(ts.valueHint)
	val = append(val, r.hdr...)
	var err error
	if val, err = r.image(val, before, after == nil); err != nil {
		return 0, err
	}
	if val, err = r.image(val, after, after != nil); err != nil {
		return 0, err
	}
	val = append(val, r.tailPre...)
	val = schema.AppendLong(val, int64(row))
	val = append(val, r.tailPst...)
	val = r.a.keep(val)
	ts.valueHint = max(ts.valueHint, len(val))

	var key []byte
	if len(ts.keyIdx) > 0 {
		// The key image is the after image, or the before image of a
		// delete; its columns were just written at colEnd offsets.
		key = ts.codec.AppendKeyHeader(r.a.dst(ts.keyHint))
		for _, k := range ts.codec.KeyColumns() {
			start := r.colStart(k)
			key = append(key, r.keyImage(val)[start:r.colEnd[k]]...)
		}
		key = r.a.keep(key)
		ts.keyHint = len(key)
	}
	if !r.checked {
		r.checked = true
		if err := r.check(key, val, before, after); err != nil {
			return 0, err
		}
		if ts.partsOff {
			return r.em.emitTo(ctx, r.a, ts, r.op, before, after, r.src, r.nowUs, &r.batch)
		}
	}
	r.batch = append(r.batch, source.Record{Topic: ts.topic, Key: key, Value: val})
	n := 1
	if r.op == schema.OpDelete && key != nil {
		r.batch = append(r.batch, source.Record{Topic: ts.topic, Key: key})
		n = 2
	}
	if len(r.batch) >= maxBatch {
		return n, r.flush(ctx)
	}
	return n, nil
}

// keyImage is the value from the key image's first column on.
func (r *rowsEncoder) keyImage(val []byte) []byte { return val[r.keyBase:] }

func (r *rowsEncoder) colStart(k int) int {
	if k == 0 {
		return 0
	}
	return r.colEnd[k-1]
}

// image writes one image (or its null) and, when key is set, records the
// column offsets relative to the image start for the key.
func (r *rowsEncoder) image(dst []byte, img []any, key bool) ([]byte, error) {
	if img == nil {
		return append(dst, r.nullIdx), nil
	}
	dst = append(dst, r.valIdx)
	if key {
		r.keyBase = len(dst)
		if cap(r.colEnd) < len(img) {
			r.colEnd = make([]int, len(img))
		}
		r.colEnd = r.colEnd[:len(img)]
	}
	var err error
	for i, v := range img {
		if dst, err = r.ts.codec.AppendColumn(dst, i, v); err != nil {
			return dst, fmt.Errorf("table %s: encoding %c event: %w", r.ts.id, r.op, err)
		}
		if key {
			r.colEnd[i] = len(dst) - r.keyBase
		}
	}
	return dst, nil
}

// sameKey reports whether an update keeps the row's key, comparing the
// key columns' encoded bytes as the plain path compares whole keys.
func (r *rowsEncoder) sameKey(_ context.Context, before, after []any) bool {
	if before == nil || after == nil {
		return false
	}
	r.bk, r.ak = r.bk[:0], r.ak[:0]
	var err error
	for _, k := range r.ts.codec.KeyColumns() {
		if r.bk, err = r.ts.codec.AppendColumn(r.bk, k, before[k]); err != nil {
			return false // the plain path reports it
		}
		if r.ak, err = r.ts.codec.AppendColumn(r.ak, k, after[k]); err != nil {
			return false
		}
	}
	return bytes.Equal(r.bk, r.ak)
}

// check compares the event's first record with the plain encoding.
func (r *rowsEncoder) check(key, val []byte, before, after []any) error {
	ts := r.ts
	plain, err := ts.codec.AppendEnvelope(r.plain[:0], &schema.Envelope{Op: r.op, Before: before, After: after, Source: r.src, TsUs: r.nowUs})
	if err != nil {
		return fmt.Errorf("table %s: encoding %c event: %w", ts.id, r.op, err)
	}
	r.plain = plain
	same := bytes.Equal(plain, val)
	if same && len(ts.keyIdx) > 0 {
		row := after
		if row == nil {
			row = before
		}
		pk, err := ts.codec.AppendKey(r.plain[len(r.plain):], row)
		if err != nil {
			return fmt.Errorf("table %s: encoding key: %w", ts.id, err)
		}
		same = bytes.Equal(pk, key)
	}
	if !same {
		ts.partsOff = true
		r.em.rt.Logger().Error("part-by-part event encoding differs from the plain encoding; using the plain one for this table (a bug worth reporting)", "table", ts.id.String())
	}
	return nil
}

// flush hands the collected records to the runtime, in order.
func (r *rowsEncoder) flush(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	var err error
	if be, ok := r.em.rt.(source.BatchDoneEmitter); ok {
		if err := r.inflight.wait(ctx); err != nil {
			return err
		}
		// The chunks the records were carved from are reused once the
		// log has acknowledged them.
		chunksDone := r.a.batchDone()
		size := 0
		for i := range r.batch {
			size += len(r.batch[i].Key) + len(r.batch[i].Value)
		}
		r.inflight.add(size)
		err = be.EmitBatchDone(ctx, r.batch, func() {
			if chunksDone != nil {
				chunksDone()
			}
			r.inflight.add(-size)
		})
		if err != nil {
			r.inflight.add(-size)
		}
	} else if be, ok := r.em.rt.(source.BatchEmitter); ok {
		err = be.EmitBatch(ctx, r.batch)
	} else {
		for _, rec := range r.batch {
			if err = r.em.rt.Emit(ctx, rec); err != nil {
				break
			}
		}
	}
	clear(r.batch)
	r.batch = r.batch[:0]
	return err
}

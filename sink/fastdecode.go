package sink

// A schema-driven decoder for Debezium envelopes.
//
// Decoding a record through a generic Avro decoder builds a map for the
// envelope, one for each of before, after and source, and boxes every value
// twice (generic value, then the sink's native value): about 50 allocations
// and several microseconds per record, which alone capped a sink at one core's
// worth of ~150k records/s. The plan below is compiled once per value schema
// id and reads the Avro binary straight into the row's native values,
// skipping the fields the sink does not use (before, transaction, most of
// source). Columns of rare types go through readRaw + nativeValue, the same
// conversion the generic path uses, so both paths agree value for value.

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
)

// avroReader reads Avro binary from a byte slice. The first error sticks.
type avroReader struct {
	b   []byte
	i   int
	err error
}

var errShort = errors.New("unexpected end of data")

func (r *avroReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.i = len(r.b)
}

func (r *avroReader) long() int64 {
	var u uint64
	var shift uint
	for {
		if r.i >= len(r.b) {
			r.fail(errShort)
			return 0
		}
		c := r.b[r.i]
		r.i++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
		if shift >= 70 {
			r.fail(errors.New("varint longer than 10 bytes"))
			return 0
		}
	}
	return int64(u>>1) ^ -int64(u&1)
}

func (r *avroReader) int() int32 {
	n := r.long()
	if n < math.MinInt32 || n > math.MaxInt32 {
		r.fail(fmt.Errorf("int value %d overflows 32 bits", n))
		return 0
	}
	return int32(n)
}

func (r *avroReader) bool() bool {
	if r.i >= len(r.b) {
		r.fail(errShort)
		return false
	}
	c := r.b[r.i]
	r.i++
	return c != 0
}

func (r *avroReader) float() float32 {
	if len(r.b)-r.i < 4 {
		r.fail(errShort)
		return 0
	}
	b := r.b[r.i:]
	r.i += 4
	return math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}

func (r *avroReader) double() float64 {
	if len(r.b)-r.i < 8 {
		r.fail(errShort)
		return 0
	}
	b := r.b[r.i:]
	r.i += 8
	u := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	return math.Float64frombits(u)
}

// view returns the next length-prefixed bytes without copying.
func (r *avroReader) view() []byte {
	n := r.long()
	if r.err != nil {
		return nil
	}
	if n < 0 {
		r.fail(fmt.Errorf("negative length %d", n))
		return nil
	}
	if int64(len(r.b)-r.i) < n {
		r.fail(errShort)
		return nil
	}
	b := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return b
}

func (r *avroReader) bytes() []byte {
	v := r.view()
	if v == nil {
		return []byte{}
	}
	return append([]byte(nil), v...)
}

func (r *avroReader) string() string { return string(r.view()) }

func (r *avroReader) fixed(n int) []byte {
	if len(r.b)-r.i < n {
		r.fail(errShort)
		return nil
	}
	b := append([]byte(nil), r.b[r.i:r.i+n]...)
	r.i += n
	return b
}

// blockCount reads an array or map block header; the byte size of a
// negative-count block is not needed.
func (r *avroReader) blockCount() int64 {
	n := r.long()
	if n < 0 {
		n = -n
		r.long()
	}
	if n > int64(len(r.b)-r.i) && r.err == nil {
		// Every item takes at least one byte... except null items; bound
		// absurd counts anyway so a corrupt header cannot loop for long.
		if n > 1<<30 {
			r.fail(fmt.Errorf("block of %d items", n))
			return 0
		}
	}
	return n
}

func (r *avroReader) unionIndex(n int) int {
	i := r.long()
	if r.err == nil && (i < 0 || i >= int64(n)) {
		r.fail(fmt.Errorf("union index %d out of range", i))
		return -1
	}
	return int(i)
}

// unavail is a row value Debezium sent as its placeholder for a value the
// source did not log (unchanged TOAST). raw is the decoded value, used as is
// when the column is a key column.
type unavail struct{ raw any }

// convErr is a row value that does not convert to its column's type. It is
// an error only when the column is kept (include/exclude lists).
type convErr struct{ err error }

// finish turns a generically decoded value into a row value: native, or an
// unavail or convErr marker.
func finish(raw any, t *ColumnType) any {
	if isUnavailable(raw) {
		return unavail{raw}
	}
	nv, err := nativeValue(raw, t)
	if err != nil {
		return convErr{err}
	}
	return nv
}

type readFn func(r *avroReader) any

type skipFn func(r *avroReader)

// fastEnvelope is the compiled plan of one envelope schema.
type fastEnvelope struct {
	steps []envStep
	nrow  int
	r     avroReader
	// last holds the source strings of the previous event: they rarely
	// change, so they are compared in place instead of allocated anew.
	last [4]string
}

const (
	stepSkip = iota
	stepOp
	stepSource
	stepRow
)

type envStep struct {
	kind uint8
	skip skipFn
	// nullIdx/valIdx describe a [null, T] union around the field (-1: the
	// field is not a union).
	nullIdx, valIdx int
	op              func(r *avroReader) string
	src             []srcStep
	row             []readFn
}

type srcStep struct {
	which int // 0: skipped, 1 db, 2 schema, 3 table
	skip  skipFn
	// nullIdx is the null branch of a nullable string, -1 for a string.
	nullIdx int
}

// fastEvent is what the sink needs of one decoded envelope.
type fastEvent struct {
	op                string
	db, schema, table string
	// row holds the after row's values in envelopeInfo.fields order (native
	// values or markers); nil when after is null.
	row []any
}

// compileEnvelope builds the plan for envelope s whose row columns are
// fields; nil when the envelope has a shape the plan does not cover (the
// generic path then decodes it).
func compileEnvelope(s avro.Schema, fields []fieldInfo) *fastEnvelope {
	rec, ok := deref(s).(*avro.RecordSchema)
	if !ok {
		return nil
	}
	c := &skipCompiler{memo: map[string]*skipFn{}}
	fe := &fastEnvelope{nrow: len(fields)}
	hasRow := false
	for _, f := range rec.Fields() {
		st := envStep{nullIdx: -1, valIdx: -1}
		inner := deref(f.Type())
		switch f.Name() {
		case "op", "source", "after":
			if u, ok := inner.(*avro.UnionSchema); ok {
				ni, vi, ok := nullableIdx(u)
				if !ok {
					return nil
				}
				st.nullIdx, st.valIdx, inner = ni, vi, deref(u.Types()[vi])
			}
		}
		switch f.Name() {
		case "op":
			if inner.Type() != avro.String {
				return nil
			}
			st.kind = stepOp
			st.op = (*avroReader).string
		case "source":
			sr, ok := inner.(*avro.RecordSchema)
			if !ok {
				return nil
			}
			st.kind = stepSource
			for _, sf := range sr.Fields() {
				ss := srcStep{}
				switch sf.Name() {
				case "db":
					ss.which = 1
				case "schema":
					ss.which = 2
				case "table":
					ss.which = 3
				}
				ok := false
				if ss.which != 0 {
					ss.nullIdx, ok = stringShape(sf.Type())
				}
				if !ok {
					ss.which = 0
					ss.skip = c.compile(sf.Type())
				}
				st.src = append(st.src, ss)
			}
		case "after":
			row, ok := inner.(*avro.RecordSchema)
			if !ok || len(row.Fields()) != len(fields) {
				return nil
			}
			st.kind = stepRow
			for i, rf := range row.Fields() {
				if rf.Name() != fields[i].name {
					return nil
				}
				st.row = append(st.row, compileField(rf.Type(), &fields[i].typ))
			}
			hasRow = true
		default:
			st.kind = stepSkip
			st.skip = c.compile(f.Type())
		}
		fe.steps = append(fe.steps, st)
	}
	if !hasRow || c.failed {
		return nil
	}
	return fe
}

// decode reads one envelope (after the Confluent header). It is not safe for
// concurrent use (the decoder runs on one goroutine).
func (fe *fastEnvelope) decode(data []byte) (fastEvent, error) {
	fe.r = avroReader{b: data}
	r := &fe.r
	var ev fastEvent
	for i := range fe.steps {
		st := &fe.steps[i]
		if st.kind == stepSkip {
			st.skip(r)
			continue
		}
		if st.nullIdx >= 0 && r.unionIndex(2) == st.nullIdx {
			continue
		}
		switch st.kind {
		case stepOp:
			ev.op = st.op(r)
		case stepSource:
			for j := range st.src {
				ss := &st.src[j]
				if ss.which == 0 {
					ss.skip(r)
					continue
				}
				var str string
				if ss.nullIdx < 0 || r.unionIndex(2) != ss.nullIdx {
					v := r.view()
					if string(v) != fe.last[ss.which] {
						fe.last[ss.which] = string(v)
					}
					str = fe.last[ss.which]
				}
				switch ss.which {
				case 1:
					ev.db = str
				case 2:
					ev.schema = str
				case 3:
					ev.table = str
				}
			}
		case stepRow:
			row := make([]any, len(st.row))
			for j, rd := range st.row {
				row[j] = rd(r)
			}
			ev.row = row
		}
		if r.err != nil {
			break
		}
	}
	if r.err != nil {
		return fastEvent{}, r.err
	}
	if r.i != len(r.b) {
		return fastEvent{}, errors.New("trailing bytes after the value")
	}
	return ev, nil
}

// decodeKey reads a key record's fields generically, in schema order.
func decodeKey(schemas []avro.Schema, data []byte) ([]any, error) {
	r := &avroReader{b: data}
	out := make([]any, len(schemas))
	for i, s := range schemas {
		out[i] = readRaw(r, s)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.i != len(r.b) {
		return nil, errors.New("trailing bytes after the key")
	}
	return out, nil
}

// nullableIdx finds the branches of a two-branch union with null.
func nullableIdx(u *avro.UnionSchema) (nullIdx, valIdx int, ok bool) {
	ts := u.Types()
	if len(ts) != 2 {
		return 0, 0, false
	}
	switch {
	case ts[0].Type() == avro.Null && ts[1].Type() != avro.Null:
		return 0, 1, true
	case ts[1].Type() == avro.Null && ts[0].Type() != avro.Null:
		return 1, 0, true
	}
	return 0, 0, false
}

// stringShape tells whether s is a string (nullIdx -1) or a nullable
// string (nullIdx the null branch).
func stringShape(s avro.Schema) (nullIdx int, ok bool) {
	s = deref(s)
	if s.Type() == avro.String {
		return -1, true
	}
	u, isU := s.(*avro.UnionSchema)
	if !isU {
		return 0, false
	}
	ni, vi, isN := nullableIdx(u)
	if !isN || deref(u.Types()[vi]).Type() != avro.String {
		return 0, false
	}
	return ni, true
}

// compileField returns the reader of one row column.
func compileField(s avro.Schema, t *ColumnType) readFn {
	s = deref(s)
	if u, ok := s.(*avro.UnionSchema); ok {
		if ni, vi, ok := nullableIdx(u); ok {
			if rd := direct(deref(u.Types()[vi]), t); rd != nil {
				return func(r *avroReader) any {
					if r.unionIndex(2) == ni {
						return nil
					}
					return rd(r)
				}
			}
		}
	} else if rd := direct(s, t); rd != nil {
		return rd
	}
	return func(r *avroReader) any {
		raw := readRaw(r, s)
		if r.err != nil {
			return nil
		}
		return finish(raw, t)
	}
}

// direct returns a reader that produces the native value of the common
// column types straight from the binary, or nil.
func direct(s avro.Schema, t *ColumnType) readFn {
	ls := logicalSchema(s)
	switch s.Type() {
	case avro.Boolean:
		if t.Kind == KindBool {
			return func(r *avroReader) any { return r.bool() }
		}
	case avro.Int, avro.Long:
		if ls != nil {
			return nil
		}
		conv := intConv(t)
		if conv == nil {
			return nil
		}
		if s.Type() == avro.Int {
			return func(r *avroReader) any { return conv(int64(r.int())) }
		}
		return func(r *avroReader) any { return conv(r.long()) }
	case avro.Float:
		switch t.Kind {
		case KindFloat32:
			return func(r *avroReader) any { return r.float() }
		case KindFloat64:
			return func(r *avroReader) any { return float64(r.float()) }
		}
	case avro.Double:
		switch t.Kind {
		case KindFloat64:
			return func(r *avroReader) any { return r.double() }
		case KindFloat32:
			return func(r *avroReader) any { return float32(r.double()) }
		}
	case avro.String:
		switch t.Kind {
		case KindString, KindJSON, KindUUID, KindEnum, KindEnumSet, KindXML, KindTimeTZ:
			return func(r *avroReader) any {
				v := r.view()
				if string(v) == unavailableValue || string(v) == unavailableHstoreJSON {
					return unavail{string(v)}
				}
				return string(v)
			}
		case KindTimestampTZ:
			return func(r *avroReader) any {
				s := r.string()
				if s == unavailableValue {
					return unavail{s}
				}
				ts, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					return convErr{fmt.Errorf("%s %q is not an ISO-8601 instant: %w", cnZonedTimestamp, s, err)}
				}
				return ts
			}
		}
	case avro.Bytes:
		if ls != nil {
			dl, ok := ls.(*avro.DecimalLogicalSchema)
			if !ok || t.Kind != KindDecimal || dl.Scale() != t.DecimalScale || t.DecimalScale < 0 {
				return nil
			}
			scale := t.DecimalScale
			// The generic path makes a *big.Rat and prints it with the same
			// scale: the same text, without the big numbers.
			return func(r *avroReader) any { return unscaledText(r.view(), scale) }
		}
		var conv func(b []byte) any
		switch t.Kind {
		case KindDecimal:
			scale := t.DecimalScale
			conv = func(b []byte) any { return unscaledText(b, scale) }
		case KindBytes:
			conv = func(b []byte) any { return append([]byte{}, b...) }
		case KindString, KindJSON, KindUUID, KindEnum, KindEnumSet, KindXML, KindTimeTZ:
			conv = func(b []byte) any { return string(b) }
		case KindBits:
			n := t.BitLength
			conv = func(b []byte) any { return bitString(b, n) }
		default:
			return nil
		}
		return func(r *avroReader) any {
			b := r.view()
			if r.err != nil {
				return nil
			}
			if string(b) == unavailableValue {
				return unavail{append([]byte{}, b...)}
			}
			return conv(b)
		}
	}
	return nil
}

// intConv mirrors nativeValue for the kinds carried as Avro int/long
// without a logical type.
func intConv(t *ColumnType) func(n int64) any {
	switch t.Kind {
	case KindInt8, KindInt16, KindInt32, KindInt64, KindYear:
		return func(n int64) any { return n }
	case KindDate:
		return func(n int64) any { return time.Unix(n*86400, 0).UTC() }
	case KindTime:
		switch t.ConnectName {
		case cnMicroTime:
			return func(n int64) any { return time.Duration(n) * time.Microsecond }
		case cnNanoTime:
			return func(n int64) any { return time.Duration(n) }
		default:
			return func(n int64) any { return time.Duration(n) * time.Millisecond }
		}
	case KindTimestamp:
		switch t.ConnectName {
		case cnMicroTimestamp:
			return func(n int64) any { return time.UnixMicro(n).UTC() }
		case cnNanoTimestamp:
			return func(n int64) any { return time.Unix(0, n).UTC() }
		default:
			return func(n int64) any { return time.UnixMilli(n).UTC() }
		}
	case KindInterval:
		return func(n int64) any { return time.Duration(n) * time.Microsecond }
	}
	return nil
}

// skipCompiler builds skip functions; named records are compiled once, so
// recursive schemas terminate.
type skipCompiler struct {
	memo   map[string]*skipFn
	failed bool
}

func (c *skipCompiler) compile(s avro.Schema) skipFn {
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return func(*avroReader) {}
	case avro.Boolean:
		return func(r *avroReader) { r.bool() }
	case avro.Int:
		return func(r *avroReader) { r.int() }
	case avro.Long:
		return func(r *avroReader) { r.long() }
	case avro.Float:
		return func(r *avroReader) { r.float() }
	case avro.Double:
		return func(r *avroReader) { r.double() }
	case avro.String, avro.Bytes:
		return func(r *avroReader) { r.view() }
	case avro.Fixed:
		n := s.(*avro.FixedSchema).Size()
		return func(r *avroReader) {
			if len(r.b)-r.i < n {
				r.fail(errShort)
				return
			}
			r.i += n
		}
	case avro.Enum:
		n := len(s.(*avro.EnumSchema).Symbols())
		return func(r *avroReader) {
			if i := r.int(); r.err == nil && (i < 0 || int(i) >= n) {
				r.fail(fmt.Errorf("enum index %d out of range", i))
			}
		}
	case avro.Record:
		rs := s.(*avro.RecordSchema)
		if p, ok := c.memo[rs.FullName()]; ok {
			return func(r *avroReader) { (*p)(r) }
		}
		p := new(skipFn)
		c.memo[rs.FullName()] = p
		var fs []skipFn
		for _, f := range rs.Fields() {
			fs = append(fs, c.compile(f.Type()))
		}
		*p = func(r *avroReader) {
			for _, f := range fs {
				f(r)
			}
		}
		return *p
	case avro.Array:
		item := c.compile(s.(*avro.ArraySchema).Items())
		return func(r *avroReader) {
			for r.err == nil {
				n := r.blockCount()
				if n == 0 {
					return
				}
				for ; n > 0 && r.err == nil; n-- {
					item(r)
				}
			}
		}
	case avro.Map:
		val := c.compile(s.(*avro.MapSchema).Values())
		return func(r *avroReader) {
			for r.err == nil {
				n := r.blockCount()
				if n == 0 {
					return
				}
				for ; n > 0 && r.err == nil; n-- {
					r.view()
					val(r)
				}
			}
		}
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		bs := make([]skipFn, len(types))
		for i, t := range types {
			bs[i] = c.compile(t)
		}
		return func(r *avroReader) {
			if i := r.unionIndex(len(bs)); i >= 0 {
				bs[i](r)
			}
		}
	}
	c.failed = true
	return func(r *avroReader) { r.fail(fmt.Errorf("unsupported schema type %s", s.Type())) }
}

// readRaw reads one value of schema s into the generic values the schema
// package's Decoder makes (see schema.Decoder.Decode); errors stay in r.err.
func readRaw(r *avroReader, s avro.Schema) any {
	if r.err != nil {
		return nil
	}
	ls := logicalSchema(s)
	switch s.Type() {
	case avro.Null:
		return nil
	case avro.Boolean:
		return r.bool()
	case avro.Int:
		i := r.int()
		if ls != nil {
			switch ls.Type() {
			case avro.Date:
				return time.Unix(int64(i)*86400, 0).UTC()
			case avro.TimeMillis:
				return time.Duration(i) * time.Millisecond
			}
		}
		return int(i)
	case avro.Long:
		l := r.long()
		if ls != nil {
			switch ls.Type() {
			case avro.TimeMicros:
				return time.Duration(l) * time.Microsecond
			case avro.TimestampMillis, avro.LocalTimestampMillis:
				return time.UnixMilli(l).UTC()
			case avro.TimestampMicros, avro.LocalTimestampMicros:
				return time.UnixMicro(l).UTC()
			}
		}
		return l
	case avro.Float:
		return r.float()
	case avro.Double:
		return r.double()
	case avro.String:
		return r.string()
	case avro.Bytes:
		return rawBytes(r.bytes(), ls)
	case avro.Fixed:
		return rawBytes(r.fixed(s.(*avro.FixedSchema).Size()), ls)
	case avro.Record:
		fields := s.(*avro.RecordSchema).Fields()
		m := make(map[string]any, len(fields))
		for _, f := range fields {
			m[f.Name()] = readRaw(r, f.Type())
		}
		return m
	case avro.Ref:
		return readRaw(r, s.(*avro.RefSchema).Schema())
	case avro.Enum:
		symbols := s.(*avro.EnumSchema).Symbols()
		i := int(r.int())
		if r.err != nil {
			return nil
		}
		if i < 0 || i >= len(symbols) {
			r.fail(fmt.Errorf("enum index %d out of range", i))
			return nil
		}
		return symbols[i]
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		out := []any{}
		for r.err == nil {
			n := r.blockCount()
			if n == 0 {
				break
			}
			for ; n > 0 && r.err == nil; n-- {
				out = append(out, readRaw(r, items))
			}
		}
		return out
	case avro.Map:
		values := s.(*avro.MapSchema).Values()
		out := map[string]any{}
		for r.err == nil {
			n := r.blockCount()
			if n == 0 {
				break
			}
			for ; n > 0 && r.err == nil; n-- {
				k := r.string()
				out[k] = readRaw(r, values)
			}
		}
		return out
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		i := r.unionIndex(len(types))
		if i < 0 {
			return nil
		}
		return readRaw(r, types[i])
	}
	r.fail(fmt.Errorf("unsupported schema type %s", s.Type()))
	return nil
}

func rawBytes(b []byte, ls avro.LogicalSchema) any {
	if dec, ok := ls.(*avro.DecimalLogicalSchema); ok {
		n := new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		return new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(dec.Scale())), nil))
	}
	return b
}

// smallUnscaled reads big-endian two's complement of at most 8 bytes.
func smallUnscaled(b []byte) (string, bool) {
	if len(b) > 8 {
		return "", false
	}
	if len(b) == 0 {
		return "0", true
	}
	var v int64
	if b[0]&0x80 != 0 {
		v = -1
	}
	for _, c := range b {
		v = v<<8 | int64(c)
	}
	return strconv.FormatInt(v, 10), true
}

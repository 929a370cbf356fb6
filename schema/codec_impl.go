package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// colPlan is the precomputed encoding of one column (or array element, or
// struct member). Encoding walks plans with a type switch per value: no
// reflection and no allocation beyond growing dst.
type colPlan struct {
	name    string // column path for errors, e.g. "geom.srid", "tags[]"
	kind    Kind
	opt     bool
	nullIdx byte // zigzag-encoded union index of "null"
	valIdx  byte // zigzag-encoded union index of the value branch
	bigInt  bool // bytes holding a BigInteger (Decimal, VariableScaleDecimal.value)
	// nilVal is written for nil in a required column: the Connect default if
	// the type has one (as Connect's Struct.get returns it), otherwise the
	// type's zero value. Debezium does the same for the non-key columns of a
	// before image under REPLICA IDENTITY DEFAULT, where PostgreSQL only sends
	// the key: required columns get placeholders rather than failing.
	nilVal []byte
	items  *colPlan
	fields []colPlan
}

// NewCodec builds the key and value schemas of t with the source block src
// and the encoding plan for its rows.
func NewCodec(t *Table, src *SourceBlock) (*Codec, error) {
	if t == nil {
		return nil, errors.New("schema: NewCodec: nil table")
	}
	if t.Topic == "" {
		return nil, errors.New("schema: NewCodec: table has no topic")
	}
	if src == nil {
		return nil, &SchemaError{Topic: t.Topic, Msg: "nil source block"}
	}
	ks, err := keySchemaJSON(t)
	if err != nil {
		return nil, err
	}
	vs, err := valueSchemaJSON(t, src)
	if err != nil {
		return nil, err
	}
	c := &Codec{topic: t.Topic, keySchema: ks, valueSchema: vs, key: append([]int(nil), t.Key...)}
	if c.cols, err = newPlans(t.Topic, t.Columns, "", false); err != nil {
		return nil, err
	}
	if c.src, err = newPlans(t.Topic, src.Fields, "", false); err != nil {
		return nil, err
	}
	c.SetIDs(0, 0)
	return c, nil
}

// KeySchema is the <topic>.Key Avro schema, or "" when the table has no key.
func (c *Codec) KeySchema() string { return c.keySchema }

// ValueSchema is the <topic>.Envelope Avro schema.
func (c *Codec) ValueSchema() string { return c.valueSchema }

// SetIDs sets the registry ids written in the wire-format headers.
func (c *Codec) SetIDs(keyID, valueID int) {
	c.keyHdr[0] = 0
	binary.BigEndian.PutUint32(c.keyHdr[1:], uint32(keyID))
	c.valueHdr[0] = 0
	binary.BigEndian.PutUint32(c.valueHdr[1:], uint32(valueID))
}

// AppendKey appends the wire-format key of row (a full row; the key columns
// are picked by Table.Key). It returns nil, nil when the table has no key.
// On error dst is returned unchanged.
func (c *Codec) AppendKey(dst []byte, row []any) ([]byte, error) {
	if len(c.key) == 0 {
		return nil, nil
	}
	if len(row) != len(c.cols) {
		return dst, &ValueError{Topic: c.topic, Part: "key",
			Msg: fmt.Sprintf("row has %d values, table has %d columns", len(row), len(c.cols))}
	}
	start := len(dst)
	dst = append(dst, c.keyHdr[:]...)
	var err error
	for _, k := range c.key {
		if dst, err = c.cols[k].append(dst, row[k]); err != nil {
			return dst[:start], c.fill(err, "key")
		}
	}
	return dst, nil
}

// AppendEnvelope appends the wire-format <topic>.Envelope of e. ts_ms, ts_us
// and ts_ns derive from e.TsUs. On error dst is returned unchanged.
func (c *Codec) AppendEnvelope(dst []byte, e *Envelope) ([]byte, error) {
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
	dst = append(dst, c.valueHdr[:]...)
	var err error
	if dst, err = c.appendImage(dst, e.Before, "before"); err != nil {
		return dst[:start], err
	}
	if dst, err = c.appendImage(dst, e.After, "after"); err != nil {
		return dst[:start], err
	}
	for i := range c.src {
		if dst, err = c.src[i].append(dst, e.Source[i]); err != nil {
			return dst[:start], c.fill(err, "source")
		}
	}
	return c.appendTxnOpTs(dst, e), nil
}

func (c *Codec) appendImage(dst []byte, row []any, part string) ([]byte, error) {
	if row == nil {
		return append(dst, 0), nil
	}
	if len(row) != len(c.cols) {
		return dst, &ValueError{Topic: c.topic, Part: part,
			Msg: fmt.Sprintf("row has %d values, table has %d columns", len(row), len(c.cols))}
	}
	dst = append(dst, 2)
	var err error
	for i := range c.cols {
		if dst, err = c.cols[i].append(dst, row[i]); err != nil {
			return dst, c.fill(err, part)
		}
	}
	return dst, nil
}

func (c *Codec) fill(err error, part string) error {
	var ve *ValueError
	if errors.As(err, &ve) {
		ve.Topic, ve.Part = c.topic, part
	}
	return err
}

// ValueError is a value that does not fit its column, named by topic, part of
// the event and column path.
type ValueError struct {
	Topic  string
	Part   string // "key", "before", "after", "source" or "op"
	Column string // e.g. "price", "geom.srid", "tags[2]"
	Want   string // Go type the column's Kind takes
	Got    string // Go type received
	Msg    string // other problems (range, arity)
}

func (e *ValueError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schema: topic %q %s", e.Topic, e.Part)
	if e.Column != "" {
		fmt.Fprintf(&b, " column %q", e.Column)
	}
	if e.Want != "" {
		fmt.Fprintf(&b, ": want Go type %s, got %s", e.Want, e.Got)
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

func goTypeOf(k Kind) string {
	switch k {
	case Boolean:
		return "bool"
	case Int8, Int16, Int32:
		return "int32"
	case Int64:
		return "int64"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case String:
		return "string"
	case Bytes:
		return "[]byte"
	case Array, Struct:
		return "[]any"
	}
	return "?"
}

func (p *colPlan) typeErr(v any) error {
	return &ValueError{Column: p.name, Want: goTypeOf(p.kind), Got: fmt.Sprintf("%T", v)}
}

func newPlans(topic string, cols []Column, prefix string, vsdValue bool) ([]colPlan, error) {
	ps := make([]colPlan, len(cols))
	for i := range cols {
		p, err := newPlan(topic, &cols[i], prefix+cols[i].Name, vsdValue && cols[i].Name == "value")
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	return ps, nil
}

func newPlan(topic string, c *Column, path string, bigInt bool) (colPlan, error) {
	t := &c.Type
	p := colPlan{name: path, kind: t.Kind, opt: c.Optional}
	if c.Optional {
		if t.Default != nil && t.Kind != Struct {
			p.valIdx, p.nullIdx = 0, 2
		} else {
			p.nullIdx, p.valIdx = 0, 2
		}
	}
	p.bigInt = t.Kind == Bytes && (bigInt || isDecimal(t))
	var err error
	switch t.Kind {
	case Boolean, Int8, Int16, Int32, Int64, Float32, Float64, String, Bytes:
	case Array:
		if t.Items == nil {
			return p, &SchemaError{Topic: topic, Column: path, Msg: "array type has no Items"}
		}
		it, err := newPlan(topic, &Column{Name: c.Name, Type: *t.Items, Optional: t.ItemsOptional}, path+"[]", false)
		if err != nil {
			return p, err
		}
		p.items = &it
	case Struct:
		if p.fields, err = newPlans(topic, t.Fields, path+".", t.Name == VariableScaleDecimalName); err != nil {
			return p, err
		}
	default:
		return p, &SchemaError{Topic: topic, Column: path, Msg: fmt.Sprintf("unknown Kind %d", t.Kind)}
	}
	if !c.Optional {
		if t.Default != nil {
			req := p
			req.opt = false
			if p.nilVal, err = req.append(nil, t.Default); err != nil {
				return p, &SchemaError{Topic: topic, Column: path, Msg: fmt.Sprintf("default: %v", err)}
			}
		} else {
			p.nilVal = p.zero(nil)
		}
	}
	return p, nil
}

// zero appends the Avro encoding of the type's zero value.
func (p *colPlan) zero(b []byte) []byte {
	switch p.kind {
	case Float32:
		return append(b, 0, 0, 0, 0)
	case Float64:
		return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	case Bytes:
		if p.bigInt {
			return append(b, 2, 0) // Java's BigInteger rejects zero-length bytes
		}
		return append(b, 0)
	case Struct:
		for i := range p.fields {
			f := &p.fields[i]
			if f.opt {
				b = append(b, f.nullIdx)
			} else {
				b = append(b, f.nilVal...)
			}
		}
		return b
	}
	return append(b, 0) // false, 0, "", empty array
}

// checkValue reports whether v is a valid Go value for the primitive type t.
func checkValue(t *Type, v any) error {
	p := colPlan{kind: t.Kind}
	_, err := p.append(nil, v)
	if err != nil {
		var ve *ValueError
		if errors.As(err, &ve) {
			if ve.Want != "" {
				return fmt.Errorf("want Go type %s, got %s", ve.Want, ve.Got)
			}
			return errors.New(ve.Msg)
		}
	}
	return err
}

func (p *colPlan) append(b []byte, v any) ([]byte, error) {
	if v == nil {
		if p.opt {
			return append(b, p.nullIdx), nil
		}
		return append(b, p.nilVal...), nil
	}
	if p.opt {
		b = append(b, p.valIdx)
	}
	switch p.kind {
	case Boolean:
		x, ok := v.(bool)
		if !ok {
			return b, p.typeErr(v)
		}
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case Int32:
		x, ok := v.(int32)
		if !ok {
			return b, p.typeErr(v)
		}
		return appendVarint(b, int64(x)), nil
	case Int64:
		x, ok := v.(int64)
		if !ok {
			return b, p.typeErr(v)
		}
		return appendVarint(b, x), nil
	case String:
		x, ok := v.(string)
		if !ok {
			return b, p.typeErr(v)
		}
		b = appendVarint(b, int64(len(x)))
		return append(b, x...), nil
	case Bytes:
		x, ok := v.([]byte)
		if !ok {
			return b, p.typeErr(v)
		}
		if len(x) == 0 && p.bigInt {
			return append(b, 2, 0), nil
		}
		b = appendVarint(b, int64(len(x)))
		return append(b, x...), nil
	case Float64:
		x, ok := v.(float64)
		if !ok {
			return b, p.typeErr(v)
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case Float32:
		x, ok := v.(float32)
		if !ok {
			return b, p.typeErr(v)
		}
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(x)), nil
	case Int8, Int16:
		x, ok := v.(int32)
		if !ok {
			return b, p.typeErr(v)
		}
		lo, hi := int32(math.MinInt8), int32(math.MaxInt8)
		if p.kind == Int16 {
			lo, hi = math.MinInt16, math.MaxInt16
		}
		if x < lo || x > hi {
			return b, &ValueError{Column: p.name, Msg: fmt.Sprintf("%d out of range for %s", x, kindName(p.kind))}
		}
		return appendVarint(b, int64(x)), nil
	case Array:
		x, ok := v.([]any)
		if !ok {
			return b, p.typeErr(v)
		}
		if len(x) > 0 {
			b = appendVarint(b, int64(len(x)))
			var err error
			for i, e := range x {
				if b, err = p.items.append(b, e); err != nil {
					var ve *ValueError
					if errors.As(err, &ve) {
						ve.Column = strings.Replace(ve.Column, p.name+"[]", p.name+"["+strconv.Itoa(i)+"]", 1)
					}
					return b, err
				}
			}
		}
		return append(b, 0), nil
	case Struct:
		x, ok := v.([]any)
		if !ok {
			return b, p.typeErr(v)
		}
		if len(x) != len(p.fields) {
			return b, &ValueError{Column: p.name, Msg: fmt.Sprintf("struct has %d values, type has %d fields", len(x), len(p.fields))}
		}
		var err error
		for i := range p.fields {
			if b, err = p.fields[i].append(b, x[i]); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	return b, &ValueError{Column: p.name, Msg: fmt.Sprintf("unknown Kind %d", p.kind)}
}

func kindName(k Kind) string {
	switch k {
	case Int8:
		return "Int8"
	case Int16:
		return "Int16"
	}
	return "Kind " + strconv.Itoa(int(k))
}

// appendVarint appends v as an Avro long: zigzag, then base-128 varint.
func appendVarint(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

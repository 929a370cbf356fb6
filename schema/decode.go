package schema

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

// SchemaFetcher resolves a registry schema id to the schema text.
type SchemaFetcher interface {
	SchemaByID(ctx context.Context, id int) (string, error)
}

// maxCachedSchemas bounds the decoder's cache; a topic has a handful of ids.
const maxCachedSchemas = 4096

// decodeMaxBytes is the largest string/bytes value the decoder accepts; rows
// can carry large TOASTed or BLOB values, far above hamba's 1 MiB default.
const decodeMaxBytes = 256 << 20

// Decoder decodes Confluent wire-format Avro messages, resolving schema ids
// through a SchemaFetcher. It is safe for concurrent use.
type Decoder struct {
	f   SchemaFetcher
	api avro.API

	mu    sync.Mutex
	cache map[int]avro.Schema
}

// NewDecoder returns a Decoder that fetches schemas from f.
func NewDecoder(f SchemaFetcher) *Decoder {
	return &Decoder{
		f:     f,
		api:   avro.Config{MaxByteSliceSize: decodeMaxBytes}.Freeze(),
		cache: make(map[int]avro.Schema),
	}
}

// Schema returns the parsed schema with registry id id.
func (d *Decoder) Schema(ctx context.Context, id int) (avro.Schema, error) {
	d.mu.Lock()
	s, ok := d.cache[id]
	d.mu.Unlock()
	if ok {
		return s, nil
	}
	text, err := d.f.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("schema: fetch schema id %d: %w", id, err)
	}
	// A fresh cache per id: hamba's global cache would let a newer version of
	// a record replace the older one that this id's data was written with.
	s, err = avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("schema: parse schema id %d: %w", id, err)
	}
	d.mu.Lock()
	if len(d.cache) >= maxCachedSchemas {
		for k := range d.cache {
			delete(d.cache, k)
			break
		}
	}
	d.cache[id] = s
	d.mu.Unlock()
	return s, nil
}

// Decode decodes one Confluent wire-format message into hamba/avro generic
// values: records as map[string]any, arrays as []any, maps as map[string]any,
// unions as the value of their branch (not wrapped), int as int, long as
// int64, Decimal bytes as *big.Rat, and Avro date/time/timestamp logical
// types as time.Time/time.Duration. nil or empty data is a tombstone:
// (0, nil, nil).
func (d *Decoder) Decode(ctx context.Context, data []byte) (schemaID int, value any, err error) {
	return d.decode(ctx, data, false)
}

// DecodeJSON is Decode with values already in the JSON-friendly form of
// ToJSON, but exact: it knows each value's schema, so dates stay days since
// the epoch, times and timestamps their carried milli/microseconds, and
// decimals print with their schema's scale.
func (d *Decoder) DecodeJSON(ctx context.Context, data []byte) (schemaID int, value any, err error) {
	return d.decode(ctx, data, true)
}

func (d *Decoder) decode(ctx context.Context, data []byte, asJSON bool) (int, any, error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	if data[0] != 0 {
		return 0, nil, fmt.Errorf("schema: bad magic byte 0x%02x, want 0x00 (Confluent wire format)", data[0])
	}
	if len(data) < 5 {
		return 0, nil, fmt.Errorf("schema: short message: %d bytes, the Confluent wire format needs a 5-byte header", len(data))
	}
	id := int(int32(binary.BigEndian.Uint32(data[1:5])))
	s, err := d.Schema(ctx, id)
	if err != nil {
		return id, nil, err
	}
	r := avro.NewReader(nil, 0, avro.WithReaderConfig(d.api)).Reset(data[5:])
	v := readValue(r, s, asJSON)
	if r.Error != nil {
		return id, nil, fmt.Errorf("schema: decode with schema id %d: %w", id, r.Error)
	}
	r.Peek()
	if r.Error == nil {
		return id, nil, fmt.Errorf("schema: decode with schema id %d: trailing bytes after the value", id)
	}
	if !errors.Is(r.Error, io.EOF) {
		return id, nil, fmt.Errorf("schema: decode with schema id %d: %w", id, r.Error)
	}
	return id, v, nil
}

func logicalOf(s avro.Schema) avro.LogicalSchema {
	if ls, ok := s.(avro.LogicalTypeSchema); ok {
		return ls.Logical()
	}
	return nil
}

// readValue reads one value of schema s; errors are left in r.Error.
func readValue(r *avro.Reader, s avro.Schema, asJSON bool) any {
	if r.Error != nil {
		return nil
	}
	ls := logicalOf(s)
	switch s.Type() {
	case avro.Null:
		return nil
	case avro.Boolean:
		return r.ReadBool()
	case avro.Int:
		i := r.ReadInt()
		if ls != nil && !asJSON {
			switch ls.Type() {
			case avro.Date:
				return time.Unix(int64(i)*86400, 0).UTC()
			case avro.TimeMillis:
				return time.Duration(i) * time.Millisecond
			}
		}
		return int(i)
	case avro.Long:
		l := r.ReadLong()
		if ls != nil && !asJSON {
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
		f := r.ReadFloat()
		if asJSON {
			return jsonFloat(float64(f), f)
		}
		return f
	case avro.Double:
		f := r.ReadDouble()
		if asJSON {
			return jsonFloat(f, f)
		}
		return f
	case avro.String:
		return r.ReadString()
	case avro.Bytes:
		b := r.ReadBytes()
		return bytesValue(b, ls, asJSON)
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		b := make([]byte, fs.Size())
		r.Read(b)
		return bytesValue(b, ls, asJSON)
	case avro.Record:
		fields := s.(*avro.RecordSchema).Fields()
		m := make(map[string]any, len(fields))
		for _, f := range fields {
			m[f.Name()] = readValue(r, f.Type(), asJSON)
		}
		return m
	case avro.Ref:
		return readValue(r, s.(*avro.RefSchema).Schema(), asJSON)
	case avro.Enum:
		symbols := s.(*avro.EnumSchema).Symbols()
		i := int(r.ReadInt())
		if i < 0 || i >= len(symbols) {
			r.ReportError("ReadEnum", fmt.Sprintf("enum index %d out of range", i))
			return nil
		}
		return symbols[i]
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		out := []any{}
		for r.Error == nil {
			n, _ := r.ReadBlockHeader()
			if n == 0 {
				break
			}
			for ; n > 0 && r.Error == nil; n-- {
				out = append(out, readValue(r, items, asJSON))
			}
		}
		return out
	case avro.Map:
		values := s.(*avro.MapSchema).Values()
		out := map[string]any{}
		for r.Error == nil {
			n, _ := r.ReadBlockHeader()
			if n == 0 {
				break
			}
			for ; n > 0 && r.Error == nil; n-- {
				k := r.ReadString()
				out[k] = readValue(r, values, asJSON)
			}
		}
		return out
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		i := r.ReadLong()
		if i < 0 || i >= int64(len(types)) {
			r.ReportError("ReadUnion", fmt.Sprintf("union index %d out of range", i))
			return nil
		}
		return readValue(r, types[i], asJSON)
	}
	r.ReportError("Read", fmt.Sprintf("unsupported schema type %s", s.Type()))
	return nil
}

func bytesValue(b []byte, ls avro.LogicalSchema, asJSON bool) any {
	if dec, ok := ls.(*avro.DecimalLogicalSchema); ok {
		unscaled := UnscaledFromBytes(b)
		if asJSON {
			return decimalString(unscaled, dec.Scale())
		}
		return new(big.Rat).SetFrac(unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(dec.Scale())), nil))
	}
	if asJSON {
		return base64.StdEncoding.EncodeToString(b)
	}
	return b
}

// decimalString prints unscaled×10^-scale exactly, e.g. (12345, 2) → "123.45".
func decimalString(unscaled *big.Int, scale int) string {
	if scale <= 0 {
		s := unscaled.String()
		if scale < 0 && unscaled.Sign() != 0 {
			s += strings.Repeat("0", -scale)
		}
		return s
	}
	neg := unscaled.Sign() < 0
	digits := new(big.Int).Abs(unscaled).String()
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	s := digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

// jsonFloat keeps a float as a number unless JSON cannot carry it.
func jsonFloat(f float64, orig any) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return orig
}

// ToJSON converts values from Decoder.Decode into a form encoding/json writes
// the way Debezium's JSON converter shows them: []byte as base64, *big.Rat
// decimals as exact decimal strings, NaN/±Inf floats as strings, and
// time.Time as epoch milliseconds and time.Duration as milliseconds (the
// Connect Timestamp and Time carriers). ToJSON cannot tell a Connect Date
// (carried as days) from a Timestamp; Decoder.DecodeJSON, which sees the
// schema, gives every logical type its carried number exactly.
func ToJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ToJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ToJSON(e)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case *big.Rat:
		return ratString(x)
	case float32:
		return jsonFloat(float64(x), x)
	case float64:
		return jsonFloat(x, x)
	case time.Time:
		return x.UnixMilli()
	case time.Duration:
		return x.Milliseconds()
	}
	return v
}

// ratString prints r exactly when its decimal expansion terminates (always
// for decoded decimals), else with 20 fractional digits.
func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	d := new(big.Int).Set(r.Denom())
	two, five := big.NewInt(2), big.NewInt(5)
	var twos, fives int
	m := new(big.Int)
	for {
		if q, rem := new(big.Int).QuoRem(d, two, m); rem.Sign() == 0 {
			d, twos = q, twos+1
			continue
		}
		break
	}
	for {
		if q, rem := new(big.Int).QuoRem(d, five, m); rem.Sign() == 0 {
			d, fives = q, fives+1
			continue
		}
		break
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		return r.FloatString(20)
	}
	return r.FloatString(max(twos, fives))
}

package sink

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// unavailableValue is Debezium's default unavailable.value.placeholder for
// an unchanged TOASTed column (schema.UnavailableValue).
const unavailableValue = "__debezium_unavailable_value"

// unavailableHstoreJSON is the placeholder of an hstore column that
// Debezium sends as JSON (hstore.handling.mode=json): the map {ph: ph}.
const unavailableHstoreJSON = `{"` + unavailableValue + `":"` + unavailableValue + `"}`

// unavailableUUID is the element of Debezium's placeholder for a uuid[]
// column: Java's UUID.nameUUIDFromBytes of the placeholder (an MD5,
// version 3 name-based UUID).
var unavailableUUID = func() string {
	h := md5.Sum([]byte(unavailableValue))
	h[6] = h[6]&0x0f | 0x30
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}()

// isUnavailable reports whether a raw decoded value is Debezium's
// placeholder for a value the source did not send (unchanged TOAST), in the
// shape Debezium gives it for the column's type: the string, its bytes
// (bytea), a one-element array of either (text[], bytea[]), an array of
// its bytes as numbers (int2[], int4[], int8[]), a one-element array of
// its name-based UUID (uuid[]), or the map {placeholder: placeholder}
// (hstore, as a map or as JSON text).
func isUnavailable(v any) bool {
	switch x := v.(type) {
	case string:
		return x == unavailableValue || x == unavailableHstoreJSON
	case []byte:
		return string(x) == unavailableValue
	case []any:
		if len(x) == 1 {
			e := unwrapUnion(x[0])
			return isUnavailable(e) || e == unavailableUUID
		}
		return isUnavailableNumbers(x)
	case map[string]any:
		if len(x) == 1 {
			if e, ok := x[unavailableValue]; ok {
				return unwrapUnion(e) == unavailableValue
			}
			// A union wrapped by a generic decoder: {"string": "__debezium..."}.
			for k, e := range x {
				if k == "string" || k == "bytes" || k == "array" || k == "map" {
					return isUnavailable(e)
				}
			}
		}
	}
	return false
}

// isUnavailableNumbers reports whether x is the placeholder's bytes as
// numbers, Debezium's placeholder of an integer array.
func isUnavailableNumbers(x []any) bool {
	if len(x) != len(unavailableValue) {
		return false
	}
	for i, e := range x {
		var n int64
		switch y := unwrapUnion(e).(type) {
		case int:
			n = int64(y)
		case int32:
			n = int64(y)
		case int64:
			n = y
		default:
			return false
		}
		if n != int64(unavailableValue[i]) {
			return false
		}
	}
	return true
}

// unwrapUnion undoes a generic decoder's {"<branch name>": value} wrapping of
// a union value. Decoders that already unwrap pass the value through.
func unwrapUnion(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v
	}
	for k, e := range m {
		if isBranchName(k) {
			return e
		}
	}
	return v
}

// isBranchName reports whether k looks like an Avro union branch name as
// hamba/avro writes it: a primitive type (maybe with a logical type suffix)
// or a dotted full name of a named type. Column names cannot contain dots,
// so a one-entry row record is never mistaken for a wrapper.
func isBranchName(k string) bool {
	if strings.Contains(k, ".") {
		return true
	}
	switch avro.Type(k) {
	case avro.Boolean, avro.Int, avro.Long, avro.Float, avro.Double, avro.String, avro.Bytes,
		avro.Array, avro.Map, avro.Record, avro.Enum, avro.Fixed:
		return true
	}
	return false
}

// nativeValue turns one decoded Avro value of column type t into the Go
// convention documented on ColumnType.
func nativeValue(v any, t *ColumnType) (any, error) {
	v = unwrapUnion(v)
	if v == nil {
		return nil, nil
	}
	switch t.Kind {
	case KindBool:
		b, ok := v.(bool)
		if !ok {
			return nil, typeErr(v, t)
		}
		return b, nil
	case KindInt8, KindInt16, KindInt32, KindInt64, KindYear:
		n, ok := toInt64(v)
		if !ok {
			return nil, typeErr(v, t)
		}
		return n, nil
	case KindFloat32:
		switch x := v.(type) {
		case float32:
			return x, nil
		case float64:
			return float32(x), nil
		}
		return nil, typeErr(v, t)
	case KindFloat64:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
		return nil, typeErr(v, t)
	case KindDecimal:
		return decimalText(v, t.DecimalScale)
	case KindVarDecimal:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(v, t)
		}
		scale, ok := toInt64(unwrapUnion(m["scale"]))
		if !ok {
			return nil, fmt.Errorf("%s without an int scale", cnVarDecimal)
		}
		return decimalText(unwrapUnion(m["value"]), int(scale))
	case KindString, KindJSON, KindUUID, KindEnum, KindEnumSet, KindXML, KindTimeTZ:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
		return nil, typeErr(v, t)
	case KindBits:
		b, ok := v.([]byte)
		if !ok {
			return nil, typeErr(v, t)
		}
		return bitString(b, t.BitLength), nil
	case KindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
		// hamba decodes an Avro fixed into a [N]byte array.
		if b, ok := fixedBytes(v); ok {
			return b, nil
		}
		return nil, typeErr(v, t)
	case KindDate:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		}
		days, ok := toInt64(v)
		if !ok {
			return nil, typeErr(v, t)
		}
		return time.Unix(days*86400, 0).UTC(), nil
	case KindTime:
		if d, ok := v.(time.Duration); ok {
			return d, nil
		}
		n, ok := toInt64(v)
		if !ok {
			return nil, typeErr(v, t)
		}
		switch t.ConnectName {
		case cnMicroTime:
			return time.Duration(n) * time.Microsecond, nil
		case cnNanoTime:
			return time.Duration(n), nil
		default: // io.debezium.time.Time, Connect Time: milliseconds
			return time.Duration(n) * time.Millisecond, nil
		}
	case KindTimestamp:
		if ts, ok := v.(time.Time); ok {
			return ts.UTC(), nil
		}
		n, ok := toInt64(v)
		if !ok {
			return nil, typeErr(v, t)
		}
		switch t.ConnectName {
		case cnMicroTimestamp:
			return time.UnixMicro(n).UTC(), nil
		case cnNanoTimestamp:
			return time.Unix(0, n).UTC(), nil
		default:
			return time.UnixMilli(n).UTC(), nil
		}
	case KindTimestampTZ:
		s, ok := v.(string)
		if !ok {
			if ts, ok := v.(time.Time); ok {
				return ts, nil
			}
			return nil, typeErr(v, t)
		}
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not an ISO-8601 instant: %w", cnZonedTimestamp, s, err)
		}
		return ts, nil
	case KindInterval:
		n, ok := toInt64(v)
		if !ok {
			return nil, typeErr(v, t)
		}
		return time.Duration(n) * time.Microsecond, nil
	case KindArray:
		items, ok := v.([]any)
		if !ok {
			return nil, typeErr(v, t)
		}
		out := make([]any, len(items))
		for i, it := range items {
			nv, err := nativeValue(it, t.Elem)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = nv
		}
		return out, nil
	case KindGeometry:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(v, t)
		}
		return geometryValue(m, t)
	case KindStruct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(v, t)
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = jsonable(unwrapUnion(e))
		}
		return out, nil
	}
	return nil, fmt.Errorf("no conversion for %s", t.Kind)
}

// geometryValue reads Debezium's Geometry {wkb, srid} or Point {x, y, wkb,
// srid} struct.
func geometryValue(m map[string]any, t *ColumnType) (any, error) {
	var g Geometry
	if b, ok := unwrapUnion(m["wkb"]).([]byte); ok {
		g.WKB = b
	}
	if srid, ok := toInt64(unwrapUnion(m["srid"])); ok {
		g.SRID, g.HasSRID = int32(srid), true
	}
	x, xok := unwrapUnion(m["x"]).(float64)
	y, yok := unwrapUnion(m["y"]).(float64)
	if xok && yok {
		g.X, g.Y, g.IsPoint = x, y, true
		if g.WKB == nil {
			g.WKB = pointWKB(x, y)
		}
	}
	if g.WKB == nil {
		return nil, fmt.Errorf("%s value without wkb", t.ConnectName)
	}
	return g, nil
}

func typeErr(v any, t *ColumnType) error {
	name := t.ConnectName
	if name == "" {
		name = t.Kind.String()
	}
	return fmt.Errorf("value of Go type %T does not fit column type %s", v, name)
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	}
	return 0, false
}

func fixedBytes(v any) ([]byte, bool) {
	switch x := v.(type) {
	case [16]byte:
		return x[:], true
	}
	return nil, false
}

// jsonable converts nested struct members so they marshal as JSON.
func jsonable(v any) any {
	switch x := v.(type) {
	case []byte:
		return x
	case *big.Rat:
		return x.FloatString(10)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(unwrapUnion(e))
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(unwrapUnion(e))
		}
		return out
	}
	return v
}

// decimalText renders a Connect Decimal (big-endian two's complement unscaled
// bytes, or the *big.Rat a decoder made of them) as plain decimal text with
// exactly scale fraction digits.
func decimalText(v any, scale int) (string, error) {
	switch x := v.(type) {
	case *big.Rat:
		if scale < 0 {
			scale = 0
		}
		return x.FloatString(scale), nil
	case big.Rat:
		return x.FloatString(max(scale, 0)), nil
	case []byte:
		return unscaledText(x, scale), nil
	case string:
		// Some converters (decimal.handling.mode=string) already send text.
		if _, ok := new(big.Rat).SetString(x); !ok {
			return "", fmt.Errorf("decimal %q is not a number", x)
		}
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("decimal value of Go type %T", v)
}

func unscaledText(b []byte, scale int) string {
	if len(b) <= 8 && scale > 0 && scale < 30 {
		return smallDecimalText(b, scale)
	}
	s, ok := smallUnscaled(b)
	if !ok {
		n := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			// Two's complement: subtract 2^(8*len).
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		s = n.String()
	}
	if scale <= 0 {
		if scale < 0 {
			s += strings.Repeat("0", -scale)
		}
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

// smallDecimalText is unscaledText of at most 8 bytes with a positive
// scale, in one allocation.
func smallDecimalText(b []byte, scale int) string {
	var v int64
	if len(b) > 0 && b[0]&0x80 != 0 {
		v = -1
	}
	for _, c := range b {
		v = v<<8 | int64(c)
	}
	var digits [20]byte
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	d := strconv.AppendUint(digits[:0], u, 10)
	var out strings.Builder
	out.Grow(len(d) + scale + 3)
	if neg {
		out.WriteByte('-')
	}
	if len(d) <= scale {
		out.WriteString("0.")
		for range scale - len(d) {
			out.WriteByte('0')
		}
		out.Write(d)
	} else {
		out.Write(d[:len(d)-scale])
		out.WriteByte('.')
		out.Write(d[len(d)-scale:])
	}
	return out.String()
}

// bitString turns io.debezium.data.Bits (little-endian bytes) into the SQL
// bit-string text, most significant bit first, n digits long (or as many
// as the bytes hold when n is unknown).
func bitString(b []byte, n int) string {
	if n <= 0 {
		n = 8 * len(b)
	}
	if n > 8*len(b) {
		// More digits than the bytes hold: an unbounded varbit, whose
		// length is pgjdbc's unknown 2^31-1 (padding to it would build a
		// 2 GiB string). Its value is its significant bits; the leading
		// zeros of a varbit are not on the wire.
		n = 1
		for i := 8*len(b) - 1; i > 0; i-- {
			if b[i/8]>>(uint(i)%8)&1 == 1 {
				n = i + 1
				break
			}
		}
	}
	var buf bytes.Buffer
	buf.Grow(n)
	for i := n - 1; i >= 0; i-- {
		byteIdx := i / 8
		bit := byte(0)
		if byteIdx < len(b) {
			bit = (b[byteIdx] >> (uint(i) % 8)) & 1
		}
		buf.WriteByte('0' + bit)
	}
	return buf.String()
}

// BitsUint64 parses a bit string of at most 64 digits, for targets that store
// bits as an integer (MySQL BIT(n)).
func BitsUint64(s string) (uint64, error) {
	if len(s) > 64 {
		return 0, fmt.Errorf("bit string of %d digits does not fit 64 bits", len(s))
	}
	return strconv.ParseUint(s, 2, 64)
}

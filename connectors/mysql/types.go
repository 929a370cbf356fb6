package mysql

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"

	"github.com/tributary-cdc/tributary/schema"
)

// PointName is Debezium's io.debezium.data.geometry.Point.
const PointName = schema.PointName

// column is a colDef compiled for decoding.
type column struct {
	def      colDef
	kind     kind
	unsigned bool
	key      bool
	// dec decodes binlog bytes of a character column into UTF-8; nil when
	// they are UTF-8 (or ASCII) already.
	dec encoding.Encoding
	// unknownCharset is set when the charset has no decoder: bytes are
	// passed on when they are valid UTF-8.
	unknownCharset bool
}

// charsetDecoder maps MySQL character sets to decoders.
func charsetDecoder(cs string) (encoding.Encoding, bool) {
	switch strings.ToLower(cs) {
	case "", "utf8", "utf8mb3", "utf8mb4", "ascii", "binary":
		return nil, true
	case "latin1":
		return charmap.Windows1252, true // MySQL's latin1 is cp1252
	case "latin2":
		return charmap.ISO8859_2, true
	case "latin5":
		return charmap.ISO8859_9, true
	case "latin7":
		return charmap.ISO8859_13, true
	case "cp1250":
		return charmap.Windows1250, true
	case "cp1251":
		return charmap.Windows1251, true
	case "cp1256":
		return charmap.Windows1256, true
	case "cp1257":
		return charmap.Windows1257, true
	case "cp850":
		return charmap.CodePage850, true
	case "cp852":
		return charmap.CodePage852, true
	case "cp866":
		return charmap.CodePage866, true
	case "koi8r":
		return charmap.KOI8R, true
	case "koi8u":
		return charmap.KOI8U, true
	case "greek":
		return charmap.ISO8859_7, true
	case "hebrew":
		return charmap.ISO8859_8, true
	case "macroman":
		return charmap.Macintosh, true
	case "gbk", "gb2312":
		return simplifiedchinese.GBK, true
	case "gb18030":
		return simplifiedchinese.GB18030, true
	case "big5":
		return traditionalchinese.Big5, true
	case "sjis", "cp932":
		return japanese.ShiftJIS, true
	case "ujis", "eucjpms":
		return japanese.EUCJP, true
	case "euckr":
		return korean.EUCKR, true
	case "ucs2", "utf16":
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), true
	case "utf16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), true
	case "utf32":
		return utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM), true
	}
	return nil, false
}

func compileColumn(d colDef, key bool) column {
	_, unsigned := baseType(d.TypeName)
	c := column{def: d, kind: kindOf(d.TypeName), unsigned: unsigned, key: key}
	if c.kind == kString || c.kind == kEnum || c.kind == kSet {
		var ok bool
		c.dec, ok = charsetDecoder(d.Charset)
		c.unknownCharset = !ok
	}
	return c
}

// connectType is the Kafka Connect type of a column, per Debezium's default
// MySQL mappings (decimal.handling.mode=precise,
// time.precision.mode=adaptive_time_microseconds,
// bigint.unsigned.handling.mode=long, binary.handling.mode=bytes).
func (c *column) connectType() schema.Type {
	params := c.def.debeziumParams()
	with := func(t schema.Type) schema.Type {
		if t.Params == nil {
			t.Params = map[string]string{}
		}
		for k, v := range params {
			t.Params[k] = v
		}
		return t
	}
	switch c.kind {
	case kTinyInt:
		return with(schema.Type{Kind: schema.Int16})
	case kSmallInt:
		if c.unsigned {
			return with(schema.Type{Kind: schema.Int32})
		}
		return with(schema.Type{Kind: schema.Int16})
	case kMediumInt:
		return with(schema.Type{Kind: schema.Int32})
	case kInt:
		if c.unsigned {
			return with(schema.Type{Kind: schema.Int64})
		}
		return with(schema.Type{Kind: schema.Int32})
	case kBigInt:
		return with(schema.Type{Kind: schema.Int64})
	case kDecimal:
		prec := c.def.length()
		if prec <= 0 {
			prec = 10
		}
		sc := c.def.scale()
		if sc < 0 {
			sc = 0
		}
		return with(schema.DecimalType(prec, sc))
	case kFloat:
		if c.def.Scale == nil {
			return with(schema.Type{Kind: schema.Float32})
		}
		return with(schema.Type{Kind: schema.Float64})
	case kDouble:
		return with(schema.Type{Kind: schema.Float64})
	case kBit:
		n := c.def.length()
		if n <= 1 {
			return with(schema.Type{Kind: schema.Boolean})
		}
		return with(schema.Type{Kind: schema.Bytes, Name: schema.BitsName, Version: 1,
			Params: map[string]string{schema.BitsLengthParam: strconv.Itoa(n)}})
	case kBytes:
		return with(schema.Type{Kind: schema.Bytes})
	case kDate:
		return with(schema.Type{Kind: schema.Int32, Name: schema.DateName, Version: 1})
	case kTime:
		return with(schema.Type{Kind: schema.Int64, Name: schema.MicroTimeName, Version: 1})
	case kDateTime:
		if c.def.fsp() <= 3 {
			return with(schema.Type{Kind: schema.Int64, Name: schema.TimestampName, Version: 1})
		}
		return with(schema.Type{Kind: schema.Int64, Name: schema.MicroTimestampName, Version: 1})
	case kTimestamp:
		return with(schema.Type{Kind: schema.String, Name: schema.ZonedTimestampName, Version: 1})
	case kYear:
		return with(schema.Type{Kind: schema.Int32, Name: schema.YearName, Version: 1})
	case kEnum:
		// A comma inside a value is escaped ("c\,d"), as Debezium's binlog
		// connectors write it (TestDebeziumDiffMariaDB).
		return with(schema.Type{Kind: schema.String, Name: schema.EnumName, Version: 1,
			Params: map[string]string{schema.EnumAllowedParam: schema.JoinAllowedEscaped(c.def.EnumValues)}})
	case kSet:
		return with(schema.Type{Kind: schema.String, Name: schema.EnumSetName, Version: 1,
			Params: map[string]string{schema.EnumAllowedParam: schema.JoinAllowedEscaped(c.def.EnumValues)}})
	case kJSON:
		return with(schema.Type{Kind: schema.String, Name: schema.JSONName, Version: 1})
	case kGeometry:
		return with(schema.GeometryType())
	case kPoint:
		return with(schema.PointType())
	}
	// kString, kInet6, kUUID and types Debezium does not know travel as text.
	return with(schema.Type{Kind: schema.String})
}

var errZeroDate = errors.New("zero date")

// nullOr is the value of a column whose source value has no representation
// (a zero date): null when the column may be null, else fallback.
func (c *column) nullOr(fallback any) any {
	if c.key {
		return fallback
	}
	return nil
}

// bitsFromUint is Debezium's Bits value: ceil(n/8) bytes, little-endian.
func bitsFromUint(v uint64, nbits int) []byte {
	nb := (nbits + 7) / 8
	b := make([]byte, nb)
	for i := 0; i < nb && i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// intValue turns any integer representation into the column's Go value.
func (c *column) intValue(signed int64, isUnsigned bool, u uint64) any {
	if c.unsigned && !isUnsigned {
		// The binlog decoder saw no signedness metadata: reinterpret the
		// two's complement bits at the column's width.
		var width uint
		switch c.kind {
		case kTinyInt:
			width = 8
		case kSmallInt:
			width = 16
		case kMediumInt:
			width = 24
		case kInt:
			width = 32
		default:
			width = 64
		}
		u = uint64(signed)
		if width < 64 {
			u &= 1<<width - 1
		}
		isUnsigned = true
	}
	if isUnsigned {
		switch c.kind {
		case kInt, kBigInt:
			return int64(u) // BIGINT UNSIGNED wraps, as Debezium's long mode does
		default:
			return int32(u)
		}
	}
	switch c.kind {
	case kInt:
		return int32(signed)
	case kBigInt:
		return signed
	default:
		return int32(signed)
	}
}

// parseDecimal turns "-123.45" into the unscaled integer at the column scale.
func parseDecimal(s string, scale int) (*big.Int, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	intPart, frac, _ := strings.Cut(s, ".")
	if len(frac) > scale {
		frac = frac[:scale]
	}
	frac += strings.Repeat("0", scale-len(frac))
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		digits = "0"
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal", s)
	}
	if neg {
		n.Neg(n)
	}
	return n, nil
}

// epochDays of a y-m-d date; errZeroDate when month or day is zero.
func epochDays(s string) (int32, error) {
	s = strings.TrimSpace(s)
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, fmt.Errorf("%q is not a date", s)
	}
	y, err1 := strconv.Atoi(s[:4])
	m, err2 := strconv.Atoi(s[5:7])
	d, err3 := strconv.Atoi(s[8:10])
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, fmt.Errorf("%q is not a date", s)
	}
	if m == 0 || d == 0 {
		return 0, errZeroDate
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return int32(math.Floor(float64(t.Unix()) / 86400)), nil
}

// parseDateTime reads "YYYY-MM-DD hh:mm:ss[.ffffff]" as UTC.
func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) < 19 {
		return time.Time{}, fmt.Errorf("%q is not a datetime", s)
	}
	if _, err := epochDays(s[:10]); err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse("2006-01-02 15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a datetime: %v", s, err)
	}
	return t, nil
}

// parseTimeMicros reads a TIME value "[-]hhh:mm:ss[.ffffff]" as microseconds.
func parseTimeMicros(s string) (int64, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	hms, frac, _ := strings.Cut(s, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("%q is not a time", s)
	}
	var v [3]int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a time", s)
		}
		v[i] = n
	}
	us := int64(0)
	if frac != "" {
		if len(frac) > 6 {
			frac = frac[:6]
		}
		frac += strings.Repeat("0", 6-len(frac))
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a time", s)
		}
		us = n
	}
	total := ((v[0]*60+v[1])*60+v[2])*1_000_000 + us
	if neg {
		total = -total
	}
	return total, nil
}

// zonedTimestamp formats a UTC instant as Debezium's ZonedTimestamp: ISO
// 8601 with exactly fsp fraction digits (none for fsp 0) and "Z".
func zonedTimestamp(t time.Time, fsp int) string {
	layout := "2006-01-02T15:04:05"
	if fsp > 0 {
		layout += "." + strings.Repeat("0", fsp)
	}
	return t.UTC().Format(layout) + "Z"
}

func (c *column) temporal(s string) (any, error) {
	switch c.kind {
	case kDate:
		d, err := epochDays(s)
		if errors.Is(err, errZeroDate) {
			return c.nullOr(int32(0)), nil
		}
		return d, err
	case kTime:
		return parseTimeMicros(s)
	case kDateTime, kTimestamp:
		t, err := parseDateTime(s)
		if errors.Is(err, errZeroDate) {
			if c.kind == kTimestamp {
				return c.nullOr("1970-01-01T00:00:00Z"), nil
			}
			return c.nullOr(int64(0)), nil
		}
		if err != nil {
			return nil, err
		}
		if c.kind == kTimestamp {
			return zonedTimestamp(t, c.def.fsp()), nil
		}
		if c.def.fsp() <= 3 {
			return t.UnixMilli(), nil
		}
		return t.UnixMicro(), nil
	}
	return nil, fmt.Errorf("not a temporal column")
}

// geometry splits MySQL's internal value (4-byte little-endian SRID, then
// WKB) into Debezium's Geometry or Point struct. SRID 0 (none) is null, as
// Debezium's BinlogGeometry has it.
func (c *column) geometry(b []byte) (any, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("geometry value of %d bytes is too short", len(b))
	}
	var srid any
	if n := int32(binary.LittleEndian.Uint32(b[:4])); n != 0 {
		srid = n
	}
	wkb := append([]byte(nil), b[4:]...)
	if c.kind == kGeometry {
		return []any{wkb, srid}, nil
	}
	if len(wkb) < 21 {
		return nil, fmt.Errorf("POINT value of %d bytes is too short", len(wkb))
	}
	var order binary.ByteOrder = binary.LittleEndian
	if wkb[0] == 0 {
		order = binary.BigEndian
	}
	if typ := order.Uint32(wkb[1:5]); typ != 1 {
		return nil, fmt.Errorf("value of a POINT column has WKB type %d, not a point", typ)
	}
	x := math.Float64frombits(order.Uint64(wkb[5:13]))
	y := math.Float64frombits(order.Uint64(wkb[13:21]))
	return []any{x, y, wkb, srid}, nil
}

func (c *column) text(b []byte) (string, error) {
	if c.dec != nil {
		out, err := c.dec.NewDecoder().Bytes(b)
		if err != nil {
			return "", fmt.Errorf("decoding %s text: %v", c.def.Charset, err)
		}
		return string(out), nil
	}
	if c.unknownCharset && !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD"), nil
	}
	return string(b), nil
}

func asBytes(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case string:
		return []byte(x), true
	}
	return nil, false
}

// fromBinlog converts a value decoded by go-mysql's row parser (ParseTime
// and UseDecimal off, TIMESTAMP strings in UTC) into the column's Go value.
func (c *column) fromBinlog(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	// Values that already have the column's Go type pass through as they
	// are: no conversion, no new interface value.
	switch x := v.(type) {
	case int64:
		if c.kind == kBigInt && !c.unsigned {
			return v, nil
		}
	case int32:
		if c.kind == kInt && !c.unsigned {
			return v, nil
		}
	case float64:
		if c.kind == kDouble {
			return v, nil
		}
	case string:
		if c.kind == kString && c.dec == nil && (!c.unknownCharset || utf8.ValidString(x)) {
			// go-mysql's string aliases the event's own buffer, which is
			// not reused: the value is read before the event is dropped.
			return v, nil
		}
	}
	switch c.kind {
	case kTinyInt, kSmallInt, kMediumInt, kInt, kBigInt:
		switch x := v.(type) {
		case int8:
			return c.intValue(int64(x), false, 0), nil
		case int16:
			return c.intValue(int64(x), false, 0), nil
		case int32:
			return c.intValue(int64(x), false, 0), nil
		case int64:
			return c.intValue(x, false, 0), nil
		case int:
			return c.intValue(int64(x), false, 0), nil
		case uint8:
			return c.intValue(0, true, uint64(x)), nil
		case uint16:
			return c.intValue(0, true, uint64(x)), nil
		case uint32:
			return c.intValue(0, true, uint64(x)), nil
		case uint64:
			return c.intValue(0, true, x), nil
		}
	case kDecimal:
		if s, ok := v.(string); ok {
			n, err := parseDecimal(s, max(c.def.scale(), 0))
			if err != nil {
				return nil, err
			}
			return schema.DecimalBytes(n), nil
		}
	case kFloat:
		switch x := v.(type) {
		case float32:
			if c.def.Scale == nil {
				return x, nil
			}
			// FLOAT(M,D) is a FLOAT64 holding the stored 4-byte float
			// exactly (12345.67 is 12345.669921875), as Debezium writes it.
			return float64(x), nil
		case float64:
			if c.def.Scale == nil {
				return float32(x), nil
			}
			return x, nil
		}
	case kDouble:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
	case kBit:
		if x, ok := v.(int64); ok {
			if c.def.length() <= 1 {
				return x != 0, nil
			}
			return bitsFromUint(uint64(x), c.def.length()), nil
		}
	case kString:
		if b, ok := asBytes(v); ok {
			return c.text(b)
		}
	case kBytes:
		if b, ok := asBytes(v); ok {
			out := append([]byte{}, b...) // empty stays empty, not null
			if base, _ := baseType(c.def.TypeName); base == "BINARY" && len(out) < c.def.length() {
				// The binlog drops trailing zero bytes of BINARY(n) (DBZ-254).
				out = append(out, make([]byte, c.def.length()-len(out))...)
			}
			return out, nil
		}
	case kDate, kTime, kDateTime, kTimestamp:
		if s, ok := v.(string); ok {
			return c.temporal(s)
		}
	case kYear:
		switch x := v.(type) {
		case int:
			return int32(x), nil
		case int64:
			return int32(x), nil
		}
	case kEnum:
		if x, ok := v.(int64); ok {
			if x == 0 {
				return "", nil
			}
			if x < 1 || int(x) > len(c.def.EnumValues) {
				return nil, fmt.Errorf("enum index %d is outside the %d values of the column", x, len(c.def.EnumValues))
			}
			return c.def.EnumValues[x-1], nil
		}
	case kSet:
		if x, ok := v.(int64); ok {
			var parts []string
			for i, name := range c.def.EnumValues {
				if i < 64 && uint64(x)&(1<<uint(i)) != 0 {
					parts = append(parts, name)
				}
			}
			return strings.Join(parts, ","), nil
		}
	case kJSON:
		if b, ok := asBytes(v); ok {
			if len(b) == 0 {
				return c.nullOr("{}"), nil
			}
			return string(b), nil
		}
	case kGeometry, kPoint:
		if b, ok := asBytes(v); ok {
			return c.geometry(b)
		}
	case kInet6:
		if b, ok := asBytes(v); ok {
			if len(b) == 16 {
				return netip.AddrFrom16([16]byte(b)).String(), nil
			}
			return string(b), nil
		}
	case kUUID:
		if b, ok := asBytes(v); ok && len(b) <= 16 {
			// The binlog drops trailing zero bytes of the 16-byte value.
			var u [16]byte
			copy(u[:], b)
			return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
		}
	default:
		return unknownText(v), nil
	}
	return nil, fmt.Errorf("binlog value %T does not fit column type %s", v, c.def.TypeExpression)
}

// unknownText renders a value of a type without a mapping.
func unknownText(v any) string {
	switch x := v.(type) {
	case string:
		if utf8.ValidString(x) {
			return x
		}
		return hex.EncodeToString([]byte(x))
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return hex.EncodeToString(x)
	}
	return fmt.Sprint(v)
}

// textValue is what the snapshot reads through the text protocol (session
// time_zone +00:00, connection charset utf8mb4): ints as Signed/Unsigned,
// floats as Float, everything else as bytes.
type textValue struct {
	null     bool
	isInt    bool
	unsigned bool
	i        int64
	u        uint64
	isFloat  bool
	f        float64
	b        []byte
}

// fromText converts a snapshot value into the column's Go value.
func (c *column) fromText(v textValue) (any, error) { return c.fromTextValue(&v, false) }

// str is the value's text. With alias the string shares v.b's memory, so
// it is valid only as long as v.b is.
func (v *textValue) str(alias bool) string {
	if v.b == nil {
		switch {
		case v.isInt && v.unsigned:
			return strconv.FormatUint(v.u, 10)
		case v.isInt:
			return strconv.FormatInt(v.i, 10)
		case v.isFloat:
			return strconv.FormatFloat(v.f, 'g', -1, 64)
		}
		return ""
	}
	if alias {
		return unsafe.String(unsafe.SliceData(v.b), len(v.b))
	}
	return string(v.b)
}

// fromTextValue converts a snapshot value into the column's Go value. With
// alias, strings and bytes of the result share v.b's memory: the caller
// encodes them before that memory is reused.
func (c *column) fromTextValue(v *textValue, alias bool) (any, error) {
	if v.null {
		return nil, nil
	}
	switch c.kind {
	case kTinyInt, kSmallInt, kMediumInt, kInt, kBigInt:
		if v.isInt {
			return c.intValue(v.i, v.unsigned, v.u), nil
		}
		if c.unsigned {
			u, err := strconv.ParseUint(v.str(true), 10, 64)
			return c.intValue(0, true, u), err
		}
		i, err := strconv.ParseInt(v.str(true), 10, 64)
		return c.intValue(i, false, 0), err
	case kDecimal:
		n, err := parseDecimal(v.str(true), max(c.def.scale(), 0))
		if err != nil {
			return nil, err
		}
		return schema.DecimalBytes(n), nil
	case kFloat, kDouble:
		f := v.f
		if !v.isFloat {
			var err error
			if f, err = strconv.ParseFloat(v.str(true), 64); err != nil {
				return nil, err
			}
		}
		if c.kind == kFloat {
			if c.def.Scale == nil {
				return float32(f), nil
			}
			// The server prints FLOAT(M,D) rounded to D decimals; the column
			// stores a 4-byte float, which is what Debezium writes (widened).
			return float64(float32(f)), nil
		}
		return f, nil
	case kBit:
		var u uint64
		for _, x := range v.b {
			u = u<<8 | uint64(x)
		}
		if v.isInt {
			u = v.u
			if !v.unsigned {
				u = uint64(v.i)
			}
		}
		if c.def.length() <= 1 {
			return u != 0, nil
		}
		return bitsFromUint(u, c.def.length()), nil
	case kString, kEnum, kSet, kJSON, kInet6, kUUID:
		return v.str(alias), nil
	case kBytes:
		if alias && v.b != nil {
			return v.b, nil
		}
		return append([]byte{}, v.b...), nil
	case kDate, kTime, kDateTime, kTimestamp:
		return c.temporal(v.str(true))
	case kYear:
		if v.isInt && v.unsigned {
			return int32(v.u), nil
		}
		if v.isInt {
			return int32(v.i), nil
		}
		y, err := strconv.Atoi(v.str(true))
		return int32(y), err
	case kGeometry, kPoint:
		return c.geometry(v.b)
	}
	return v.str(alias), nil
}

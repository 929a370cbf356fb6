package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Category says how a column's values are normalised before they are
// compared, so that the same value reads the same from any engine.
type Category int

const (
	CatText        Category = iota // as is
	CatInt                         // canonical integer; booleans read as 1 / 0
	CatDecimal                     // canonical decimal string: no leading or trailing zeros
	CatFloat32                     // shortest float32 form
	CatFloat64                     // shortest float64 form
	CatBool                        // 1 / 0
	CatTimestampTZ                 // an instant: UTC microseconds since the epoch
	CatTimestamp                   // a wall-clock time read as UTC: microseconds
	CatDate                        // YYYY-MM-DD
	CatTime                        // microseconds since midnight
	CatInterval                    // microseconds
	CatBytes                       // lower-case hex
	CatJSON                        // parsed and re-encoded (sorted keys, no spaces)
	CatUUID                        // lower case
	CatChar                        // fixed-length text: trailing spaces dropped
	CatBits                        // bit string without leading zeros; booleans as 1 / 0
	CatTimeTZ                      // time of day with offset: UTC microseconds since midnight
	CatGeometry                    // "<srid>:<hex of the WKB>"
	CatUint64                      // MySQL BIGINT UNSIGNED: as the signed 64-bit integer of the same bits
	CatGeometryWKB                 // hex of the WKB alone (a copy that keeps no SRID)
)

var catNames = [...]string{"text", "int", "decimal", "float32", "float64", "bool", "timestamptz", "timestamp",
	"date", "time", "interval", "bytes", "json", "uuid", "char", "bits", "timetz", "geometry", "uint64", "geometry-wkb"}

func (c Category) String() string {
	if int(c) < len(catNames) {
		return catNames[c]
	}
	return "?"
}

var (
	twoTo63 = new(big.Int).Lsh(big.NewInt(1), 63)
	twoTo64 = new(big.Int).Lsh(big.NewInt(1), 64)
)

// nullText stands for SQL NULL in hashes and reports.
const nullText = "NULL"

// Normalize turns a value read from any engine (nil, int64, float64, bool,
// string, []byte, time.Time) into its canonical text. rawBytes says that a
// []byte holds binary data (SQLite BLOB); otherwise []byte is text the
// driver returned (MySQL) and binary columns were selected as hex.
func Normalize(v any, c Category, rawBytes bool) (string, bool) {
	switch x := v.(type) {
	case nil:
		return nullText, true
	case []byte:
		if rawBytes {
			if c == CatBytes || c == CatGeometryWKB {
				return hex.EncodeToString(x), false
			}
		}
		v = string(x)
	}
	switch c {
	case CatInt, CatBool:
		return normInt(v), false
	case CatUint64:
		// Debezium's default bigint.unsigned.handling.mode=long sends a
		// value of 2^63 or more as its two's complement, and a copy in a
		// signed BIGINT holds that. Both sides are compared as the signed
		// integer of the same 64 bits: a one-to-one mapping, so different
		// values stay different.
		s := normInt(v)
		var n big.Int
		if _, ok := n.SetString(s, 10); ok && n.Cmp(twoTo63) >= 0 {
			return n.Sub(&n, twoTo64).String(), false
		}
		return s, false
	case CatDecimal:
		return normDecimal(v), false
	case CatFloat32:
		return normFloat(v, 32), false
	case CatFloat64:
		return normFloat(v, 64), false
	case CatTimestampTZ, CatTimestamp:
		if t, ok := parseTime(v); ok {
			return strconv.FormatInt(t.UnixMicro(), 10), false
		}
	case CatDate:
		if t, ok := parseTime(v); ok {
			return t.Format("2006-01-02"), false
		}
	case CatTime:
		if s, ok := v.(string); ok {
			if us, ok := parseTimeOfDay(s); ok {
				return strconv.FormatInt(us, 10), false
			}
			// A MySQL TIME copied to a PostgreSQL interval reads as
			// microseconds (see the interval expression).
			if _, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
				return normInt(s), false
			}
		}
		if t, ok := v.(time.Time); ok {
			return strconv.FormatInt(int64(t.Hour())*3600e6+int64(t.Minute())*60e6+int64(t.Second())*1e6+int64(t.Nanosecond()/1000), 10), false
		}
	case CatInterval:
		return normInt(v), false
	case CatBytes:
		if s, ok := v.(string); ok {
			return strings.ToLower(strings.TrimPrefix(s, `\x`)), false
		}
	case CatJSON:
		if s, ok := v.(string); ok {
			return normJSON(s), false
		}
	case CatUUID:
		if s, ok := v.(string); ok {
			return strings.ToLower(s), false
		}
	case CatBits:
		// Debezium's Bits are bytes: the leading zeros of a varbit are not
		// on the wire, and MariaDB's BIN() drops them too, so bit strings
		// are compared by their significant digits. bit(1) travels as a
		// boolean.
		s := normInt(v)
		if s == "0" || s == "1" {
			return s, false
		}
		if t := strings.TrimLeft(s, "0"); t != "" {
			return t, false
		}
		return "0", false
	case CatTimeTZ:
		if s, ok := v.(string); ok {
			if us, ok := parseTimeTZ(s); ok {
				return strconv.FormatInt(us, 10), false
			}
		}
	case CatGeometry:
		if s, ok := v.(string); ok {
			return normGeometry(s), false
		}
	case CatGeometryWKB:
		if s, ok := v.(string); ok {
			g := normGeometry(s)
			if _, wkb, ok := strings.Cut(g, ":"); ok {
				return wkb, false
			}
			return strings.ToLower(strings.TrimPrefix(g, `\x`)), false
		}
	case CatChar:
		// char(n) pads with spaces, and trailing spaces are not part of the
		// value (PostgreSQL ignores them in comparisons and casts, MariaDB
		// strips them on read); a copy in a text column (SQLite) holds the
		// padded string Debezium sends, so both sides are compared
		// right-trimmed.
		if s, ok := v.(string); ok {
			return strings.TrimRight(s, " "), false
		}
	}
	return text(v), false
}

func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

func normInt(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return text(x)
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10)
		}
		return text(x)
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "t", "true":
			return "1"
		case "f", "false":
			return "0"
		}
		var n big.Int
		if _, ok := n.SetString(strings.TrimSpace(x), 10); ok {
			return n.String()
		}
		return normDecimal(x)
	}
	return text(v)
}

// normDecimal strips signs of zero, leading zeros and trailing fractional
// zeros: 012.300 -> 12.3, -0.00 -> 0.
func normDecimal(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return text(v)
	}
	if strings.ContainsAny(s, "eE") {
		if r, ok := new(big.Rat).SetString(s); ok {
			s = r.FloatString(30)
		}
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return map[bool]string{true: "-", false: ""}[neg] + s // NaN, Infinity
		}
	}
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out
}

func normFloat(v any, bits int) string {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int64:
		f = float64(x)
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return x
		}
		f = p
	default:
		return text(v)
	}
	if bits == 32 {
		return strconv.FormatFloat(float64(float32(f)), 'g', -1, 32)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
}

// parseTime reads timestamps as every engine prints them; a time without a
// zone is read as UTC.
func parseTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case int64:
		return time.UnixMicro(x).UTC(), true
	case string:
		s := strings.TrimSpace(x)
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func parseTimeOfDay(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	// MySQL's TIME is a signed duration up to 838:59:59.
	if rest, neg := strings.CutPrefix(s, "-"); neg {
		us, ok := parseTimeOfDay(rest)
		return -us, ok
	}
	hms, frac, _ := strings.Cut(s, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, false
	}
	var n [3]int64
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return 0, false
		}
		n[i] = v
	}
	us := n[0]*3600e6 + n[1]*60e6 + n[2]*1e6
	if frac != "" {
		frac = (frac + "000000")[:6]
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, false
		}
		us += f
	}
	return us, true
}

func normJSON(s string) string {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return s
	}
	if _, err := d.Token(); err != io.EOF {
		return s // more than one JSON value: not JSON, compared as text
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return s
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// parseTimeTZ reads a time of day with a zone offset ("13:51:30.5+02",
// "11:51:30.5Z", "11:51:30+05:30") as UTC microseconds since midnight.
func parseTimeTZ(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	var off int64
	if strings.HasSuffix(s, "Z") {
		s = s[:len(s)-1]
	} else if i := strings.LastIndexAny(s, "+-"); i > 0 {
		z := s[i+1:]
		h, m, _ := strings.Cut(z, ":")
		hh, err1 := strconv.ParseInt(h, 10, 64)
		mm := int64(0)
		var err2 error
		if m != "" {
			mm, err2 = strconv.ParseInt(m, 10, 64)
		}
		if err1 != nil || err2 != nil {
			return 0, false
		}
		off = (hh*3600 + mm*60) * 1e6
		if s[i] == '-' {
			off = -off
		}
		s = s[:i]
	}
	us, ok := parseTimeOfDay(s)
	if !ok {
		return 0, false
	}
	const day = 86400 * 1e6
	return ((us-off)%day + day) % day, true
}

// pointWKB reads PostgreSQL's point text "(x,y)" as the hex of its
// little-endian WKB, which is what Debezium's Point struct carries.
func pointWKB(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return "", false
	}
	xs, ys, ok := strings.Cut(s[1:len(s)-1], ",")
	if !ok {
		return "", false
	}
	x, err1 := strconv.ParseFloat(strings.TrimSpace(xs), 64)
	y, err2 := strconv.ParseFloat(strings.TrimSpace(ys), 64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	b := []byte{1, 1, 0, 0, 0}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(y))
	return hex.EncodeToString(b), true
}

// normGeometry turns the forms a geometry takes into "<srid>:<hex WKB>":
// MariaDB's own (selected as "<srid>:<hex>"), and the JSON of Debezium's
// Geometry/Point struct ({"srid":..,"wkb":"<base64>"}, x and y ignored:
// they repeat the WKB) that a copy without a geometry type holds.
func normGeometry(s string) string {
	if p, ok := pointWKB(s); ok {
		return "0:" + p
	}
	if !strings.HasPrefix(strings.TrimSpace(s), "{") {
		return strings.ToLower(s)
	}
	var g struct {
		SRID *int64 `json:"srid"`
		WKB  []byte `json:"wkb"`
	}
	if err := json.Unmarshal([]byte(s), &g); err != nil || g.WKB == nil {
		return s
	}
	srid := int64(0)
	if g.SRID != nil {
		srid = *g.SRID
	}
	return strconv.FormatInt(srid, 10) + ":" + hex.EncodeToString(g.WKB)
}

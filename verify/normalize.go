package verify

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
)

var catNames = [...]string{"text", "int", "decimal", "float32", "float64", "bool", "timestamptz", "timestamp",
	"date", "time", "interval", "bytes", "json", "uuid", "char"}

func (c Category) String() string {
	if int(c) < len(catNames) {
		return catNames[c]
	}
	return "?"
}

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
			if c == CatBytes {
				return hex.EncodeToString(x), false
			}
		}
		v = string(x)
	}
	switch c {
	case CatInt, CatBool:
		return normInt(v), false
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
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return s
	}
	return strings.TrimSuffix(b.String(), "\n")
}

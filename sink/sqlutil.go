package sink

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Helpers shared by the SQL targets.

// ValueError is a value a target cannot convert for its column. Targets
// return it (wrapped) from Apply, and count it as Rejected: it belongs to
// one record.
type ValueError struct {
	Column string
	Err    error
}

func (e *ValueError) Error() string { return fmt.Sprintf("column %s: %v", e.Column, e.Err) }
func (e *ValueError) Unwrap() error { return e.Err }

// FormatTimeOfDay renders a KindTime value as HH:MM:SS[.ffffff]. Hours may
// exceed 23 (MySQL TIME is a duration) and the value may be negative.
func FormatTimeOfDay(d time.Duration) string {
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	us := int64(d / time.Microsecond)
	h := us / 3_600_000_000
	us -= h * 3_600_000_000
	m := us / 60_000_000
	us -= m * 60_000_000
	s := us / 1_000_000
	us -= s * 1_000_000
	fmt.Fprintf(&b, "%02d:%02d:%02d", h, m, s)
	if us > 0 {
		frac := fmt.Sprintf("%06d", us)
		b.WriteByte('.')
		b.WriteString(strings.TrimRight(frac, "0"))
	}
	return b.String()
}

// Layouts for date and time text.
const (
	LayoutDate        = "2006-01-02"
	LayoutTimestamp   = "2006-01-02 15:04:05.999999"
	LayoutTimestampTZ = "2006-01-02T15:04:05.999999Z07:00"
)

// JSONText renders arrays and structs as JSON for targets without such
// types: bytes as base64, times as ISO text, decimals as strings.
func JSONText(v any) (string, error) {
	b, err := json.Marshal(jsonValue(v))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case Geometry:
		// Debezium's struct as JSON, for a geometry inside an array.
		m := map[string]any{"wkb": base64.StdEncoding.EncodeToString(x.WKB)}
		if x.HasSRID {
			m["srid"] = x.SRID
		}
		if x.IsPoint {
			m["x"], m["y"] = x.X, x.Y
		}
		return m
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case time.Duration:
		return FormatTimeOfDay(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
	}
	return v
}

// Chunks splits n items into runs of at most size.
func Chunks(n, size int) [][2]int {
	if size < 1 {
		size = 1
	}
	var out [][2]int
	for i := 0; i < n; i += size {
		out = append(out, [2]int{i, min(i+size, n)})
	}
	return out
}

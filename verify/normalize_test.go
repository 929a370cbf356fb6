package verify

import (
	"testing"
	"time"
)

// The same value as PostgreSQL, MariaDB and SQLite return it must
// normalise to the same text.
func TestNormalizeAcrossEngines(t *testing.T) {
	cases := []struct {
		cat  Category
		vals []any
	}{
		{CatDecimal, []any{"12.30", "12.3", "012.300", []byte("12.30")}},
		{CatDecimal, []any{"-0.00", "0", int64(0)}},
		{CatInt, []any{int64(42), "42", []byte("42"), float64(42)}},
		{CatBool, []any{"t", "true", int64(1), true, []byte("1")}},
		{CatFloat32, []any{"0.1", float64(float32(0.1))}},
		{CatTimestampTZ, []any{"2024-03-01 08:00:00.123456+00", "2024-03-01T08:00:00.123456Z", "2024-03-01 10:00:00.123456+02:00",
			time.Date(2024, 3, 1, 8, 0, 0, 123456000, time.UTC)}},
		{CatTimestamp, []any{"2024-03-01 08:00:00.5", "2024-03-01T08:00:00.500000", []byte("2024-03-01 08:00:00.500000")}},
		{CatDate, []any{"2024-03-01", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}},
		{CatTime, []any{"10:15:30.25", "10:15:30.250000"}},
		{CatJSON, []any{`{"b": [1, 2], "a": "x"}`, `{"a":"x","b":[1,2]}`}},
		{CatUUID, []any{"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
	}
	for _, c := range cases {
		want, _ := Normalize(c.vals[0], c.cat, false)
		for _, v := range c.vals[1:] {
			if got, _ := Normalize(v, c.cat, false); got != want {
				t.Errorf("%s: %#v normalises to %q, %#v to %q", c.cat, c.vals[0], want, v, got)
			}
		}
	}
	// Bytes: hex from PostgreSQL/MySQL, raw from SQLite.
	if a, _ := Normalize(`\x00ff`, CatBytes, false); a != "00ff" {
		t.Errorf("bytea hex: %q", a)
	}
	if a, _ := Normalize("00FF", CatBytes, false); a != "00ff" {
		t.Errorf("MySQL HEX(): %q", a)
	}
	if a, _ := Normalize([]byte{0, 0xff}, CatBytes, true); a != "00ff" {
		t.Errorf("SQLite blob: %q", a)
	}
	if _, null := Normalize(nil, CatText, false); !null {
		t.Error("nil is not NULL")
	}
	if a, _ := Normalize("12.31", CatDecimal, false); a == "12.3" {
		t.Error("different decimals normalise the same")
	}
}

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

// Values that are the same data in the forms source and copy give them
// normalise the same; different data stays different.
func TestNormalizeSameAndDifferent(t *testing.T) {
	cases := []struct {
		cat       Category
		same      []any
		different any
	}{
		// char(n): PostgreSQL's text cast trims, a SQLite copy holds the padding.
		{CatChar, []any{"ab", "ab   ", []byte("ab ")}, "abc"},
		// timetz: PostgreSQL's text and Debezium's ZonedTime (UTC).
		{CatTimeTZ, []any{"13:51:30.123789+02", "11:51:30.123789Z", "11:51:30.123789+00", "17:21:30.123789+05:30"}, "13:51:30.123789+03"},
		{CatTimeTZ, []any{"01:00:00+02", "23:00:00Z"}, "23:00:00.000001Z"},
		// Bit strings: varbit's leading zeros are not on the wire; bit(1) is a boolean.
		{CatBits, []any{"101", "00000101"}, "111"},
		{CatBits, []any{"1", "t", "true", true, int64(1)}, "0"},
		{CatBits, []any{"0000000000", "0"}, "1"},
		// MariaDB geometry (srid:hex) and Debezium's Geometry struct as JSON.
		{CatGeometry, []any{"4326:0101000000000000000000F83F00000000000002C0",
			`{"srid":4326,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAALA"}`, `{"srid": 4326, "wkb": "AQEAAAAAAAAAAAD4PwAAAAAAAALA", "x": 1.5, "y": -2.25}`},
			`{"srid":0,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAALA"}`},
		// A PostgreSQL point and its copies' WKB.
		{CatGeometry, []any{"(1.5,-2.25)", "0:0101000000000000000000F83F00000000000002C0",
			`{"srid":null,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAALA","x":1.5,"y":-2.25}`}, "(1.5,-2.5)"},
		// BIGINT UNSIGNED: the source's value and Debezium's two's complement.
		{CatUint64, []any{"18446744073709551615", int64(-1), "-1"}, "18446744073709551614"},
		{CatUint64, []any{"42", int64(42)}, "43"},
		// MySQL TIME: negative and past 24 hours, as text and as microseconds.
		{CatTime, []any{"-838:59:59", "-838:59:59.000000", "-3020399000000"}, "-838:59:58"},
		{CatTime, []any{"12:34:56.789012", "45296789012"}, "12:34:56.789013"},
	}
	for _, c := range cases {
		want, _ := Normalize(c.same[0], c.cat, false)
		for _, v := range c.same[1:] {
			if got, _ := Normalize(v, c.cat, false); got != want {
				t.Errorf("%s: %#v normalises to %q, %#v to %q", c.cat, c.same[0], want, v, got)
			}
		}
		if got, _ := Normalize(c.different, c.cat, false); got == want {
			t.Errorf("%s: %#v and %#v both normalise to %q", c.cat, c.same[0], c.different, got)
		}
	}
	// Text that starts like JSON but holds more than one value is not
	// read as its first value.
	if a, b := normJSON("4326:0101"), normJSON("4326:0102"); a == b {
		t.Errorf("normJSON reads %q and %q the same", "4326:0101", "4326:0102")
	}
}

// A copy that keeps only the WKB of a geometry (SQLite BLOB, PostgreSQL
// bytea) compares with the source's SRID and WKB by the WKB.
func TestNormalizeGeometryWKB(t *testing.T) {
	src, _ := Normalize("4326:0101000000000000000000F83F00000000000002C0", CatGeometryWKB, false)
	for _, v := range []any{
		[]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0, 0, 0, 0, 0, 0, 2, 0xc0}, // SQLite BLOB
	} {
		if got, _ := Normalize(v, CatGeometryWKB, true); got != src {
			t.Errorf("%#v normalises to %q, the source to %q", v, got, src)
		}
	}
	if got, _ := Normalize(`\x0101000000000000000000f83f00000000000002c0`, CatGeometryWKB, false); got != src {
		t.Errorf("bytea hex normalises to %q, the source to %q", got, src)
	}
	if got, _ := Normalize("4326:0101000000000000000000F83F0000000000000AC0", CatGeometryWKB, false); got == src {
		t.Errorf("different points normalise the same: %q", got)
	}
}

package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pgxtype "github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-cdc/tributary/schema"
)

// Expected values below are worked out by hand (or with the standard
// library's time package) from Debezium's documented rules, never by calling
// the code under test.

func pgtypeTestHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func pgtypeTestMicros(y int, mo time.Month, d, h, mi, s, us int) int64 {
	return time.Date(y, mo, d, h, mi, s, us*1000, time.UTC).UnixMicro()
}

func pgtypeTestDays(y int, mo time.Month, d int) int32 {
	return int32(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// pgtypeTestEqual is reflect.DeepEqual that also treats NaN as equal to NaN.
func pgtypeTestEqual(a, b any) bool {
	switch av := a.(type) {
	case float32:
		bv, ok := b.(float32)
		return ok && (av == bv || (av != av && bv != bv))
	case float64:
		bv, ok := b.(float64)
		return ok && (av == bv || (math.IsNaN(av) && math.IsNaN(bv)))
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) || (av == nil) != (bv == nil) {
			return false
		}
		for i := range av {
			if !pgtypeTestEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func pgtypeNumTypmod(p, s int32) int32 { return (p<<16 | s) + 4 }

const (
	pgtypeTestEnumOID      = 90001
	pgtypeTestEnumArrayOID = 90002
	pgtypeTestDomainOID    = 90003
	pgtypeTestCitextOID    = 90004
	pgtypeTestUnknownOID   = 90005
)

func pgtypeTestCatalog() pgtypeMapCatalog {
	return pgtypeMapCatalog{
		pgtypeTestEnumOID:      {Name: "mood", Type: 'e', Category: 'E', EnumLabels: []string{"sad", "ok", "happy"}, BaseTypmod: -1},
		pgtypeTestEnumArrayOID: {Name: "_mood", Type: 'b', Category: 'A', ElemOID: pgtypeTestEnumOID, BaseTypmod: -1},
		pgtypeTestDomainOID:    {Name: "price", Type: 'd', Category: 'N', BaseOID: pgxtype.NumericOID, BaseTypmod: pgtypeNumTypmod(10, 2)},
		pgtypeTestCitextOID:    {Name: "citext", Type: 'b', Category: 'S', BaseTypmod: -1},
		pgtypeTestUnknownOID:   {Name: "widget", Type: 'b', Category: 'U', BaseTypmod: -1},
		28:                     {Name: "xid", Type: 'b', Category: 'U', BaseTypmod: -1},
	}
}

type pgtypeDecodeCase struct {
	name   string
	oid    uint32
	typmod int32
	text   string
	want   any // nil: decoding must fail
}

func pgtypeTestDecodeCases() []pgtypeDecodeCase {
	wkb12 := pgtypeTestHex("0101000000" + "000000000000f03f" + "0000000000000040")
	wkb3 := pgtypeTestHex("0101000000" + "0000000000000c40" + "00000000000010c0")
	return []pgtypeDecodeCase{
		{"int2 min", pgxtype.Int2OID, -1, "-32768", int32(-32768)},
		{"int2 max", pgxtype.Int2OID, -1, "32767", int32(32767)},
		{"int4 max", pgxtype.Int4OID, -1, "2147483647", int32(2147483647)},
		{"int4 min", pgxtype.Int4OID, -1, "-2147483648", int32(-2147483648)},
		{"int8 min", pgxtype.Int8OID, -1, "-9223372036854775808", int64(math.MinInt64)},
		{"int8 max", pgxtype.Int8OID, -1, "9223372036854775807", int64(math.MaxInt64)},
		{"oid max", pgxtype.OIDOID, -1, "4294967295", int64(4294967295)},
		{"float4", pgxtype.Float4OID, -1, "1.5", float32(1.5)},
		{"float4 -inf", pgxtype.Float4OID, -1, "-Infinity", float32(math.Inf(-1))},
		{"float4 nan", pgxtype.Float4OID, -1, "NaN", float32(math.NaN())},
		{"float8", pgxtype.Float8OID, -1, "3.141592653589793", 3.141592653589793},
		{"float8 exp", pgxtype.Float8OID, -1, "1e+300", 1e300},
		{"float8 inf", pgxtype.Float8OID, -1, "Infinity", math.Inf(1)},
		{"bool t", pgxtype.BoolOID, -1, "t", true},
		{"bool f", pgxtype.BoolOID, -1, "f", false},

		// Decimal: unscaled value, big-endian two's complement, shortest form.
		{"numeric(10,2) negative", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "-1234.50", pgtypeTestHex("fe1dc6")},
		{"numeric(5,2) pads scale", pgxtype.NumericOID, pgtypeNumTypmod(5, 2), "1.5", pgtypeTestHex("0096")},
		{"numeric(10,2) zero", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "0.00", []byte{0}},
		{"numeric(10,2) -0.01", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "-0.01", []byte{0xff}},
		{"numeric(10,2) 1.28", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "1.28", []byte{0x00, 0x80}},
		{"numeric(10,2) -1.28", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "-1.28", []byte{0x80}},
		{"numeric(38,0) max", pgxtype.NumericOID, pgtypeNumTypmod(38, 0), strings.Repeat("9", 38), pgtypeTestHex("4b3b4ca85a86c47a098a223fffffffff")},
		{"numeric(38,0) min", pgxtype.NumericOID, pgtypeNumTypmod(38, 0), "-" + strings.Repeat("9", 38), pgtypeTestHex("b4c4b357a5793b85f675ddc000000001")},
		{"numeric(19,0) 18 digits", pgxtype.NumericOID, pgtypeNumTypmod(19, 0), "1234567890123456789", pgtypeTestHex("112210f47de98115")},

		// VariableScaleDecimal: {scale, unscaled} with trailing zeros stripped.
		{"numeric 1.500", pgxtype.NumericOID, -1, "1.500", []any{int32(1), []byte{0x0f}}},
		{"numeric 100", pgxtype.NumericOID, -1, "100", []any{int32(0), []byte{0x64}}},
		{"numeric 100.00", pgxtype.NumericOID, -1, "100.00", []any{int32(0), []byte{0x64}}},
		{"numeric -0.000123", pgxtype.NumericOID, -1, "-0.000123", []any{int32(6), []byte{0x85}}},
		{"numeric 0.000", pgxtype.NumericOID, -1, "0.000", []any{int32(0), []byte{0x00}}},
		{"numeric big", pgxtype.NumericOID, -1, "12345678901234567890.123456789", []any{int32(9), pgtypeTestHex("27e41b3246bec9b16e398115")}},

		// money: Decimal with money.fraction.digits=2.
		{"money", pgtypeMoneyOID, -1, "$1,234.56", pgtypeTestHex("01e240")},
		{"money negative", pgtypeMoneyOID, -1, "-$1,234.56", pgtypeTestHex("fe1dc0")},
		{"money zero", pgtypeMoneyOID, -1, "$0.00", []byte{0}},

		{"text", pgxtype.TextOID, -1, "h\u00e9llo\tworld", "h\u00e9llo\tworld"},
		{"varchar", pgxtype.VarcharOID, 24, "abc", "abc"},
		{"bpchar keeps padding", pgxtype.BPCharOID, 9, "ab   ", "ab   "},
		{"\"char\"", pgxtype.QCharOID, -1, "x", "x"},
		{"name", pgxtype.NameOID, -1, "pg_class", "pg_class"},
		{"uuid", pgxtype.UUIDOID, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"json", pgxtype.JSONOID, -1, `{"bar": "baz"}`, `{"bar": "baz"}`},
		{"jsonb", pgxtype.JSONBOID, -1, `{"bar": "baz"}`, `{"bar": "baz"}`},
		{"xml", pgxtype.XMLOID, -1, "<foo>bar</foo>", "<foo>bar</foo>"},
		{"tsvector", pgxtype.TSVectorOID, -1, "'a' 'cat':2", "'a' 'cat':2"},
		{"inet", pgxtype.InetOID, -1, "192.168.2.0/12", "192.168.2.0/12"},
		{"cidr", pgxtype.CIDROID, -1, "192.168.100.128/25", "192.168.100.128/25"},
		{"macaddr", pgxtype.MacaddrOID, -1, "08:00:2b:01:02:03", "08:00:2b:01:02:03"},
		{"macaddr8", pgxtype.Macaddr8OID, -1, "08:00:2b:01:02:03:04:05", "08:00:2b:01:02:03:04:05"},
		{"int4range", pgxtype.Int4rangeOID, -1, "[1,6)", "[1,6)"},
		{"citext", pgtypeTestCitextOID, -1, "MiXeD", "MiXeD"},

		{"bytea hex", pgxtype.ByteaOID, -1, `\x0102ff`, []byte{1, 2, 255}},
		{"bytea empty", pgxtype.ByteaOID, -1, `\x`, []byte{}},
		{"bytea escape", pgxtype.ByteaOID, -1, `a\000\\b`, []byte{'a', 0, '\\', 'b'}},

		// BIT(1) is a boolean; longer bit strings are io.debezium.data.Bits:
		// the rightmost bit is bit 0, bytes little-endian, sized by content.
		{"bit(1) 1", pgxtype.BitOID, 1, "1", true},
		{"bit(1) 0", pgxtype.BitOID, 1, "0", false},
		{"varbit(1)", pgxtype.VarbitOID, 1, "1", true},
		{"bit(2) 11", pgxtype.BitOID, 2, "11", []byte{3}},
		{"bit(7)", pgxtype.BitOID, 7, "1000000", []byte{64}},
		{"bit(10)", pgxtype.BitOID, 10, "1000000000", []byte{0x00, 0x02}},
		{"bit(16) low byte", pgxtype.BitOID, 16, "0000000011111111", []byte{0xff}},
		{"varbit(2) zeros", pgxtype.VarbitOID, 2, "00", []byte{}},
		{"varbit(24)", pgxtype.VarbitOID, 24, "000000110000001000000001", []byte{1, 2, 3}},
		{"varbit(64) top bit", pgxtype.VarbitOID, 64, "1" + strings.Repeat("0", 63), []byte{0, 0, 0, 0, 0, 0, 0, 0x80}},
		{"varbit unbounded", pgxtype.VarbitOID, -1, "101", []byte{5}},

		{"date", pgxtype.DateOID, -1, "2024-01-02", int32(19724)},
		{"date epoch-1", pgxtype.DateOID, -1, "1969-12-31", int32(-1)},
		{"date BC", pgxtype.DateOID, -1, "0044-03-15 BC", pgtypeTestDays(-43, time.March, 15)},
		// Debezium's streamed ±infinity: LocalDate -5877611-06-21 / -06-22.
		{"date infinity", pgxtype.DateOID, -1, "infinity", int32(-2147472692)},
		{"date -infinity", pgxtype.DateOID, -1, "-infinity", int32(-2147472691)},

		{"time micro", pgxtype.TimeOID, -1, "13:51:30.123456", int64(49890123456)},
		{"time(6) no fraction", pgxtype.TimeOID, 6, "13:51:30", int64(49890000000)},
		{"time 24:00", pgxtype.TimeOID, -1, "24:00:00", int64(86400000000)},
		{"time(3) millis", pgxtype.TimeOID, 3, "13:51:30.123", int32(49890123)},
		{"time(0) millis", pgxtype.TimeOID, 0, "13:51:30", int32(49890000)},

		{"timetz", pgxtype.TimetzOID, -1, "13:51:30.123789+02", "11:51:30.123789Z"},
		{"timetz(3)", pgxtype.TimetzOID, 3, "13:51:30.123+02", "11:51:30.123Z"},
		{"timetz half hour", pgxtype.TimetzOID, -1, "00:30:00-05:30", "06:00:00Z"},
		{"timetz wraps forward", pgxtype.TimetzOID, -1, "23:00:00-02", "01:00:00Z"},
		{"timetz wraps back", pgxtype.TimetzOID, -1, "01:00:00+03", "22:00:00Z"},
		{"timetz fraction .5", pgxtype.TimetzOID, -1, "12:00:00.5+00", "12:00:00.5Z"},
		{"timetz 24:00", pgxtype.TimetzOID, -1, "24:00:00+00", "24:00:00Z"},

		{"timestamp", pgxtype.TimestampOID, -1, "2016-11-04 13:51:30.123456", pgtypeTestMicros(2016, 11, 4, 13, 51, 30, 123456)},
		{"timestamp before epoch", pgxtype.TimestampOID, -1, "1936-10-25 22:10:12.608", pgtypeTestMicros(1936, 10, 25, 22, 10, 12, 608000)},
		{"timestamp large year", pgxtype.TimestampOID, -1, "21016-11-04 13:51:30.123456", pgtypeTestMicros(21016, 11, 4, 13, 51, 30, 123456)},
		{"timestamp BC", pgxtype.TimestampOID, -1, "0044-03-15 12:00:00 BC", pgtypeTestMicros(-43, 3, 15, 12, 0, 0, 0)},
		{"timestamp(3) millis", pgxtype.TimestampOID, 3, "2016-11-04 13:51:30.124", pgtypeTestMicros(2016, 11, 4, 13, 51, 30, 124000) / 1000},
		{"timestamp infinity", pgxtype.TimestampOID, -1, "infinity", int64(9223372036825200000)},
		{"timestamp -infinity", pgxtype.TimestampOID, -1, "-infinity", int64(-9223372036832400000)},
		// The last microsecond a 64-bit MicroTimestamp carries; PostgreSQL's
		// later timestamps are refused rather than overflowed.
		{"timestamp last micros", pgxtype.TimestampOID, -1, "294247-01-10 04:00:54.775807", int64(math.MaxInt64)},
		{"timestamp past micros", pgxtype.TimestampOID, -1, "294247-01-10 04:00:54.775808", nil},
		{"timestamp max", pgxtype.TimestampOID, 6, "294276-12-31 23:59:59.999999", nil},
		{"timestamp(3) max", pgxtype.TimestampOID, 3, "294276-12-31 23:59:59.999", int64(9224318015999999)},
		{"timestamptz max", pgxtype.TimestamptzOID, -1, "294276-12-31 23:59:59.999999+00", "+294276-12-31T23:59:59.999999Z"},
		{"timestamptz max offset", pgxtype.TimestamptzOID, -1, "294276-12-31 23:59:59.999999-05", "+294277-01-01T04:59:59.999999Z"},

		{"timestamptz", pgxtype.TimestamptzOID, -1, "2016-11-04 13:51:30.123456+02", "2016-11-04T11:51:30.123456Z"},
		{"timestamptz utc", pgxtype.TimestamptzOID, -1, "2024-01-02 03:04:05.123456+00", "2024-01-02T03:04:05.123456Z"},
		{"timestamptz pads to scale", pgxtype.TimestamptzOID, -1, "2024-01-02 03:04:05+05:30", "2024-01-01T21:34:05.000000Z"},
		{"timestamptz(0)", pgxtype.TimestamptzOID, 0, "2024-01-02 03:04:05+00", "2024-01-02T03:04:05Z"},
		{"timestamptz(3)", pgxtype.TimestamptzOID, 3, "2024-01-02 03:04:05.12+00", "2024-01-02T03:04:05.120Z"},
		{"timestamptz large year", pgxtype.TimestamptzOID, -1, "21016-11-04 13:51:30.123456+07", "+21016-11-04T06:51:30.123456Z"},
		{"timestamptz LMT offset", pgxtype.TimestamptzOID, -1, "1900-01-01 12:00:00+05:53:28", "1900-01-01T06:06:32.000000Z"},
		{"timestamptz BC", pgxtype.TimestamptzOID, -1, "0044-03-15 12:00:00+00 BC", "-0043-03-15T12:00:00.000000Z"},
		{"timestamptz infinity", pgxtype.TimestamptzOID, -1, "infinity", "infinity"},
		{"timestamptz -infinity", pgxtype.TimestamptzOID, -1, "-infinity", "-infinity"},

		// MicroDuration = ((y*12+m)*365.25/12 + d) days ... in doubles, truncated.
		{"interval postgres", pgxtype.IntervalOID, -1, "1 year 2 mons 3 days 04:05:06.78", int64(37091106780000)},
		{"interval iso_8601", pgxtype.IntervalOID, -1, "P1Y2M3DT4H5M6.78S", int64(37091106780000)},
		{"interval verbose", pgxtype.IntervalOID, -1, "@ 1 year 2 mons 3 days 4 hours 5 mins 6.789 secs", int64(37091106789000)},
		{"interval verbose ago", pgxtype.IntervalOID, -1, "@ 1 day 2 hours ago", int64(-93600000000)},
		{"interval negative", pgxtype.IntervalOID, -1, "-1 days -00:00:01", int64(-86401000000)},
		{"interval mixed signs", pgxtype.IntervalOID, -1, "-1 years -2 mons +3 days -04:05:06.5", int64(-36572706500000)},
		{"interval iso mixed", pgxtype.IntervalOID, -1, "P-1Y-2M3DT-4H-5M-6.5S", int64(-36572706500000)},
		{"interval 13 months", pgxtype.IntervalOID, -1, "1 year 1 mon", int64(34187400000000)},
		{"interval zero", pgxtype.IntervalOID, -1, "00:00:00", int64(0)},
		{"interval iso zero", pgxtype.IntervalOID, -1, "PT0S", int64(0)},
		{"interval days", pgxtype.IntervalOID, -1, "3 days", int64(259200000000)},
		{"interval half second", pgxtype.IntervalOID, -1, "-00:00:00.5", int64(-500000)},
		{"interval long hours", pgxtype.IntervalOID, -1, "100:00:00", int64(360000000000)},

		{"point", pgxtype.PointOID, -1, "(1,2)", []any{1.0, 2.0, wkb12, nil}},

		{"enum", pgtypeTestEnumOID, -1, "happy", "happy"},
		{"domain numeric(10,2)", pgtypeTestDomainOID, -1, "12.30", pgtypeTestHex("04ce")},

		// One-dimensional arrays; elements are optional.
		{"int4[]", pgxtype.Int4ArrayOID, -1, "{1,2,3}", []any{int32(1), int32(2), int32(3)}},
		{"int4[] empty", pgxtype.Int4ArrayOID, -1, "{}", []any{}},
		{"int4[] null", pgxtype.Int4ArrayOID, -1, "{1,NULL,3}", []any{int32(1), nil, int32(3)}},
		{"int4[] lower bound", pgxtype.Int4ArrayOID, -1, "[0:1]={5,6}", []any{int32(5), int32(6)}},
		{"text[] quoting", pgxtype.TextArrayOID, -1, `{one,"two words","with \"quote\"","back\\slash",NULL,"NULL","",{curly}x}`, nil},
		{"text[]", pgxtype.TextArrayOID, -1, `{one,"two words","with \"quote\"","back\\slash",NULL,"NULL","","a,b"}`,
			[]any{"one", "two words", `with "quote"`, `back\slash`, nil, "NULL", "", "a,b"}},
		{"bpchar(10)[]", pgxtype.BPCharArrayOID, 14, `{"cone      ","ctwo      "}`, []any{"cone      ", "ctwo      "}},
		{"bytea[]", pgxtype.ByteaArrayOID, -1, `{"\\x0102","\\x"}`, []any{[]byte{1, 2}, []byte{}}},
		{"numeric(10,2)[]", pgxtype.NumericArrayOID, pgtypeNumTypmod(10, 2), "{1.20,3.40}", []any{[]byte{0x78}, []byte{0x01, 0x54}}},
		{"numeric[]", pgxtype.NumericArrayOID, -1, "{1.1,2.22,3.333}",
			[]any{[]any{int32(1), []byte{11}}, []any{int32(2), []byte{0x00, 0xde}}, []any{int32(3), pgtypeTestHex("0d05")}}},
		{"timestamptz[]", pgxtype.TimestamptzArrayOID, -1, `{"2020-04-01 11:51:02+00","2020-04-01 18:21:03+05:30"}`,
			[]any{"2020-04-01T11:51:02.000000Z", "2020-04-01T12:51:03.000000Z"}},
		{"timetz[]", pgxtype.TimetzArrayOID, -1, `{11:51:02+00,13:51:03+01}`, []any{"11:51:02Z", "12:51:03Z"}},
		{"time[]", pgxtype.TimeArrayOID, -1, `{00:01:02,01:02:03}`, []any{int64(62000000), int64(3723000000)}},
		{"date[]", pgxtype.DateArrayOID, -1, `{2016-11-04,NULL}`, []any{pgtypeTestDays(2016, 11, 4), nil}},
		{"uuid[]", pgxtype.UUIDArrayOID, -1, `{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}`, []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
		{"jsonb[]", pgxtype.JSONBArrayOID, -1, `{"{\"bar\": \"baz\"}"}`, []any{`{"bar": "baz"}`}},
		{"bool[]", pgxtype.BoolArrayOID, -1, `{t,f,NULL}`, []any{true, false, nil}},
		{"bit(3)[]", pgxtype.BitArrayOID, 3, `{101,011}`, []any{[]byte{5}, []byte{3}}},
		{"interval[]", pgxtype.IntervalArrayOID, -1, `{"1 day",-00:00:01}`, []any{int64(86400000000), int64(-1000000)}},
		{"point[]", pgxtype.PointArrayOID, -1, `{"(1,2)","(3.5,-4)"}`, []any{[]any{1.0, 2.0, wkb12, nil}, []any{3.5, -4.0, wkb3, nil}}},
		{"enum[]", pgtypeTestEnumArrayOID, -1, `{sad,happy}`, []any{"sad", "happy"}},
		{"float8[] specials", pgxtype.Float8ArrayOID, -1, `{NaN,-Infinity,1.5}`, []any{math.NaN(), math.Inf(-1), 1.5}},
	}
}

func TestPgtypeDecoders(t *testing.T) {
	cat := pgtypeTestCatalog()
	cases := pgtypeTestDecodeCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, dec, known := pgtypeLookup(tc.oid, tc.typmod, cat)
			if !known {
				t.Fatalf("oid %d typmod %d: not known", tc.oid, tc.typmod)
			}
			in := []byte(tc.text)
			got, err := dec(in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("decode %q: want an error, got %#v", tc.text, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode %q: %v", tc.text, err)
			}
			if !pgtypeTestEqual(got, tc.want) {
				t.Fatalf("decode %q:\n got  %#v\n want %#v", tc.text, got, tc.want)
			}
			// The decoder must not keep or change the input.
			if string(in) != tc.text {
				t.Fatalf("decoder modified its input: %q", in)
			}
			for i := range in {
				in[i] = '#'
			}
			if !pgtypeTestEqual(got, tc.want) {
				t.Fatalf("decoded value aliases the input: %#v", got)
			}
		})
	}
}

// TestPgtypeEncodesWithSchemaCodec feeds every mapped type and decoded value
// to the schema package's encoder: the Go values must match the Kind
// conventions and the Connect types must be valid for the Avro writer.
func TestPgtypeEncodesWithSchemaCodec(t *testing.T) {
	cat := pgtypeTestCatalog()
	src := schema.PostgresSource()
	srcVals := make([]any, len(src.Fields))
	for i, f := range src.Fields {
		switch {
		case f.Optional:
		case f.Type.Kind == schema.String:
			srcVals[i] = "x"
		case f.Type.Kind == schema.Int64:
			srcVals[i] = int64(0)
		default:
			t.Fatalf("source field %s: unhandled kind %v", f.Name, f.Type.Kind)
		}
	}
	for _, tc := range pgtypeTestDecodeCases() {
		if tc.want == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			typ, dec, _ := pgtypeLookup(tc.oid, tc.typmod, cat)
			v, err := dec([]byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			table := &schema.Table{Topic: "it.public.t", Columns: []schema.Column{
				{Name: "c", Type: typ, Optional: true},
				{Name: "nn", Type: typ},
			}}
			codec, err := schema.NewCodec(table, src)
			if err != nil {
				t.Fatalf("NewCodec for %s: %v", tc.name, err)
			}
			codec.SetIDs(0, 1)
			for _, row := range [][]any{{v, v}, {nil, v}} {
				if _, err := codec.AppendEnvelope(nil, &schema.Envelope{Op: schema.OpCreate, After: row, Source: srcVals, TsUs: 1}); err != nil {
					t.Fatalf("encode %#v: %v", v, err)
				}
			}
		})
	}
}

func TestPgtypeDecodeErrors(t *testing.T) {
	cases := []struct {
		name    string
		oid     uint32
		typmod  int32
		text    string
		mention string
	}{
		{"int2 overflow", pgxtype.Int2OID, -1, "32768", "32768"},
		{"int4 junk", pgxtype.Int4OID, -1, "12a", "12a"},
		{"int8 empty", pgxtype.Int8OID, -1, "", "integer"},
		{"float junk", pgxtype.Float8OID, -1, "1.2.3", "1.2.3"},
		{"bool junk", pgxtype.BoolOID, -1, "yes", "yes"},
		{"numeric NaN", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "NaN", "NaN"},
		{"numeric Infinity", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "Infinity", "Infinity"},
		{"variable numeric -Infinity", pgxtype.NumericOID, -1, "-Infinity", "-Infinity"},
		{"numeric too many fraction digits", pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "1.234", "1.234"},
		{"numeric junk", pgxtype.NumericOID, -1, "1e5", "1e5"},
		{"bytea odd hex", pgxtype.ByteaOID, -1, `\x012`, "odd"},
		{"bits junk", pgxtype.BitOID, 4, "10x1", "10x1"},
		{"date US style", pgxtype.DateOID, -1, "01/02/2024", "DateStyle"},
		{"timestamptz without offset", pgxtype.TimestamptzOID, -1, "2024-01-02 03:04:05", "offset"},
		{"time junk", pgxtype.TimeOID, -1, "25:00:00", "25:00:00"},
		{"interval sql_standard", pgxtype.IntervalOID, -1, "1-2 3 4:05:06", "IntervalStyle"},
		{"array multi-dimensional", pgxtype.Int4ArrayOID, -1, "{{1,2},{3,4}}", "multi-dimensional"},
		{"array element error", pgxtype.Int4ArrayOID, -1, "{1,x}", "element 2"},
		{"array unterminated", pgxtype.TextArrayOID, -1, `{"abc}`, "unterminated"},
		{"point junk", pgxtype.PointOID, -1, "(1;2)", "(1;2)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, dec, _ := pgtypeLookup(tc.oid, tc.typmod, nil)
			got, err := dec([]byte(tc.text))
			if err == nil {
				t.Fatalf("decode %q: want error, got %#v", tc.text, got)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("decode %q: error %q does not mention %q", tc.text, err, tc.mention)
			}
		})
	}
	_, dec, _ := pgtypeLookup(pgxtype.NumericOID, -1, nil)
	if _, err := dec([]byte("NaN")); !errors.Is(err, errSpecialNumeric) {
		t.Fatalf("NaN error %v is not errSpecialNumeric", err)
	}
}

func TestPgtypeSchemas(t *testing.T) {
	cat := pgtypeTestCatalog()
	src := func(typ string, length, scale int, extra ...string) map[string]string {
		m := map[string]string{
			"__debezium.source.column.type":   typ,
			"__debezium.source.column.length": fmt.Sprint(length),
			"__debezium.source.column.scale":  fmt.Sprint(scale),
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	const max = 2147483647
	vsd := schema.Type{Kind: schema.Struct, Name: "io.debezium.data.VariableScaleDecimal", Version: 1,
		Doc: "Variable scaled decimal",
		Fields: []schema.Column{
			{Name: "scale", Type: schema.Type{Kind: schema.Int32}},
			{Name: "value", Type: schema.Type{Kind: schema.Bytes}},
		}}
	withParams := func(t schema.Type, p map[string]string) schema.Type { t.Params = p; return t }
	named := func(k schema.Kind, name string) schema.Type { return schema.Type{Kind: k, Name: name, Version: 1} }
	dec := func(scale, precision string) schema.Type {
		t := named(schema.Bytes, "org.apache.kafka.connect.data.Decimal")
		t.Params = map[string]string{"scale": scale}
		if precision != "" {
			t.Params["connect.decimal.precision"] = precision
		}
		return t
	}
	cases := []struct {
		name   string
		oid    uint32
		typmod int32
		want   schema.Type
		known  bool
	}{
		{"int2", pgxtype.Int2OID, -1, withParams(schema.Type{Kind: schema.Int16}, src("INT2", 5, 0)), true},
		{"int4", pgxtype.Int4OID, -1, withParams(schema.Type{Kind: schema.Int32}, src("INT4", 10, 0)), true},
		{"int8", pgxtype.Int8OID, -1, withParams(schema.Type{Kind: schema.Int64}, src("INT8", 19, 0)), true},
		{"oid", pgxtype.OIDOID, -1, withParams(schema.Type{Kind: schema.Int64}, src("OID", 10, 0)), true},
		{"float4", pgxtype.Float4OID, -1, withParams(schema.Type{Kind: schema.Float32}, src("FLOAT4", 8, 8)), true},
		{"float8", pgxtype.Float8OID, -1, withParams(schema.Type{Kind: schema.Float64}, src("FLOAT8", 17, 17)), true},
		{"bool", pgxtype.BoolOID, -1, withParams(schema.Type{Kind: schema.Boolean}, src("BOOL", 1, 0)), true},
		{"numeric(10,2)", pgxtype.NumericOID, pgtypeNumTypmod(10, 2),
			pgtypeTestMerged(dec("2", "10"), src("NUMERIC", 10, 2)), true},
		{"numeric", pgxtype.NumericOID, -1, withParams(vsd, src("NUMERIC", 131089, 0)), true},
		{"money", pgtypeMoneyOID, -1, pgtypeTestMerged(dec("2", ""), src("MONEY", max, 0)), true},
		{"text", pgxtype.TextOID, -1, withParams(schema.Type{Kind: schema.String}, src("TEXT", max, 0)), true},
		{"varchar(20)", pgxtype.VarcharOID, 24, withParams(schema.Type{Kind: schema.String}, src("VARCHAR", 20, 0)), true},
		{"varchar", pgxtype.VarcharOID, -1, withParams(schema.Type{Kind: schema.String}, src("VARCHAR", max, 0)), true},
		{"char(5)", pgxtype.BPCharOID, 9, withParams(schema.Type{Kind: schema.String}, src("BPCHAR", 5, 0)), true},
		{"\"char\"", pgxtype.QCharOID, -1, withParams(schema.Type{Kind: schema.String}, src("CHAR", 1, 0)), true},
		{"date", pgxtype.DateOID, -1, withParams(named(schema.Int32, "io.debezium.time.Date"), src("DATE", 13, 0)), true},
		{"time", pgxtype.TimeOID, -1, withParams(named(schema.Int64, "io.debezium.time.MicroTime"), src("TIME", 15, 6)), true},
		{"time(3)", pgxtype.TimeOID, 3, withParams(named(schema.Int32, "io.debezium.time.Time"), src("TIME", 12, 3)), true},
		{"time(4)", pgxtype.TimeOID, 4, withParams(named(schema.Int64, "io.debezium.time.MicroTime"), src("TIME", 13, 4)), true},
		{"timetz", pgxtype.TimetzOID, -1, withParams(named(schema.String, "io.debezium.time.ZonedTime"), src("TIMETZ", 21, 6)), true},
		{"timestamp", pgxtype.TimestampOID, -1, withParams(named(schema.Int64, "io.debezium.time.MicroTimestamp"), src("TIMESTAMP", 29, 6)), true},
		{"timestamp(3)", pgxtype.TimestampOID, 3, withParams(named(schema.Int64, "io.debezium.time.Timestamp"), src("TIMESTAMP", 26, 3)), true},
		{"timestamp(0)", pgxtype.TimestampOID, 0, withParams(named(schema.Int64, "io.debezium.time.Timestamp"), src("TIMESTAMP", 22, 0)), true},
		{"timestamptz", pgxtype.TimestamptzOID, -1, withParams(named(schema.String, "io.debezium.time.ZonedTimestamp"), src("TIMESTAMPTZ", 35, 6)), true},
		{"interval", pgxtype.IntervalOID, -1, withParams(named(schema.Int64, "io.debezium.time.MicroDuration"), src("INTERVAL", 49, 6)), true},
		{"uuid", pgxtype.UUIDOID, -1, withParams(named(schema.String, "io.debezium.data.Uuid"), src("UUID", max, 0)), true},
		{"json", pgxtype.JSONOID, -1, withParams(named(schema.String, "io.debezium.data.Json"), src("JSON", max, 0)), true},
		{"jsonb", pgxtype.JSONBOID, -1, withParams(named(schema.String, "io.debezium.data.Json"), src("JSONB", max, 0)), true},
		{"xml", pgxtype.XMLOID, -1, withParams(named(schema.String, "io.debezium.data.Xml"), src("XML", max, 0)), true},
		{"tsvector", pgxtype.TSVectorOID, -1, withParams(named(schema.String, "io.debezium.data.Tsvector"), src("TSVECTOR", max, 0)), true},
		{"bytea", pgxtype.ByteaOID, -1, withParams(schema.Type{Kind: schema.Bytes}, src("BYTEA", max, 0)), true},
		{"bit(1)", pgxtype.BitOID, 1, withParams(schema.Type{Kind: schema.Boolean}, src("BIT", 1, 0)), true},
		{"bit(3)", pgxtype.BitOID, 3, withParams(named(schema.Bytes, "io.debezium.data.Bits"), src("BIT", 3, 0, "length", "3")), true},
		{"varbit", pgxtype.VarbitOID, -1, withParams(named(schema.Bytes, "io.debezium.data.Bits"), src("VARBIT", max, 0, "length", "2147483647")), true},
		{"inet", pgxtype.InetOID, -1, withParams(schema.Type{Kind: schema.String}, src("INET", max, 0)), true},
		{"macaddr8", pgxtype.Macaddr8OID, -1, withParams(schema.Type{Kind: schema.String}, src("MACADDR8", max, 0)), true},
		{"enum", pgtypeTestEnumOID, -1, withParams(named(schema.String, "io.debezium.data.Enum"), src("MOOD", max, 0, "allowed", "sad,ok,happy")), true},
		{"domain", pgtypeTestDomainOID, -1, pgtypeTestMerged(dec("2", "10"), src("PRICE", 10, 2)), true},
		{"citext", pgtypeTestCitextOID, -1, withParams(schema.Type{Kind: schema.String}, src("CITEXT", max, 0)), true},
		{"int4[]", pgxtype.Int4ArrayOID, -1,
			schema.Type{Kind: schema.Array, ItemsOptional: true, Items: &schema.Type{Kind: schema.Int32}, Params: src("_INT4", 10, 0)}, true},
		{"varchar(20)[]", pgxtype.VarcharArrayOID, 24,
			schema.Type{Kind: schema.Array, ItemsOptional: true, Items: &schema.Type{Kind: schema.String}, Params: src("_VARCHAR", 20, 0)}, true},
		{"numeric(10,2)[]", pgxtype.NumericArrayOID, pgtypeNumTypmod(10, 2),
			schema.Type{Kind: schema.Array, ItemsOptional: true, Items: pgtypeTestPtr(dec("2", "10")), Params: src("_NUMERIC", 10, 2)}, true},
		{"uuid[] (not a pgjdbc core array)", pgxtype.UUIDArrayOID, -1,
			schema.Type{Kind: schema.Array, ItemsOptional: true, Items: pgtypeTestPtr(named(schema.String, "io.debezium.data.Uuid")), Params: src("_UUID", max, 0)}, true},
		{"enum[]", pgtypeTestEnumArrayOID, -1,
			schema.Type{Kind: schema.Array, ItemsOptional: true, Items: pgtypeTestPtr(withParams(named(schema.String, "io.debezium.data.Enum"), map[string]string{"allowed": "sad,ok,happy"})),
				Params: src("_MOOD", max, 0)}, true},
		{"unknown builtin named by catalog", 28, -1, withParams(schema.Type{Kind: schema.String}, src("XID", max, 0)), false},
		{"unknown user type", pgtypeTestUnknownOID, -1, withParams(schema.Type{Kind: schema.String}, src("WIDGET", max, 0)), false},
		{"unknown without catalog", 4242, -1, withParams(schema.Type{Kind: schema.String}, src("UNKNOWN", max, 0)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, dec, known := pgtypeLookup(tc.oid, tc.typmod, cat)
			if known != tc.known {
				t.Fatalf("known = %v, want %v", known, tc.known)
			}
			if dec == nil {
				t.Fatal("nil decoder")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("schema:\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}

	// An unknown type still decodes: to its text form.
	_, dec0, _ := pgtypeLookup(pgtypeTestUnknownOID, -1, cat)
	if v, err := dec0([]byte("<w>")); err != nil || v != "<w>" {
		t.Fatalf("unknown type decodes to %#v, %v", v, err)
	}
	// Lookups hand out fresh parameter maps.
	a, _, _ := pgtypeLookup(pgxtype.Int4OID, -1, nil)
	a.Params["x"] = "y"
	b, _, _ := pgtypeLookup(pgxtype.Int4OID, -1, nil)
	if _, ok := b.Params["x"]; ok {
		t.Fatal("Params map is shared between lookups")
	}
}

func pgtypeTestPtr(t schema.Type) *schema.Type { return &t }

// pgtypeTestMerged returns t with p added to its Params.
func pgtypeTestMerged(t schema.Type, p map[string]string) schema.Type {
	m := map[string]string{}
	for k, v := range t.Params {
		m[k] = v
	}
	for k, v := range p {
		m[k] = v
	}
	t.Params = m
	return t
}

// Decoders run for every column of every row: keep them allocation-lean.
func TestPgtypeDecoderAllocs(t *testing.T) {
	cases := []struct {
		oid    uint32
		typmod int32
		text   string
		max    float64
	}{
		{pgxtype.Int4OID, -1, "123456", 1},
		{pgxtype.Int8OID, -1, "-1234567890123", 1},
		{pgxtype.Float8OID, -1, "3.25", 1},
		{pgxtype.BoolOID, -1, "t", 0},
		{pgxtype.TimestampOID, -1, "2016-11-04 13:51:30.123456", 1},
		{pgxtype.DateOID, -1, "2016-11-04", 1},
		{pgxtype.NumericOID, pgtypeNumTypmod(10, 2), "-1234.50", 2},
		{pgxtype.TimestamptzOID, -1, "2016-11-04 13:51:30.123456+02", 3},
		{pgtypeTestEnumOID, -1, "happy", 1},
	}
	cat := pgtypeTestCatalog()
	for _, tc := range cases {
		_, dec, _ := pgtypeLookup(tc.oid, tc.typmod, cat)
		in := []byte(tc.text)
		n := testing.AllocsPerRun(200, func() {
			if _, err := dec(in); err != nil {
				t.Fatal(err)
			}
		})
		if n > tc.max {
			t.Errorf("oid %d %q: %.0f allocations per decode, want <= %.0f", tc.oid, tc.text, n, tc.max)
		}
	}
}

// ---- integration ----

func pgtypeTestPGURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("TRIBUTARY_TEST_PG_URL")
	if u == "" {
		t.Fatal("TRIBUTARY_TEST_PG_URL is not set: this test needs the test services; run `make test` " +
			"(or `bash integration/services/up.sh && . /tmp/tributary-services/env.sh`)")
	}
	return u
}

// TestPgtypeIntegration creates a table with one column of every mapped
// type, reads it back in text format through the simple protocol and
// through COPY TO STDOUT, and checks every decoded value.
func TestPgtypeIntegration(t *testing.T) {
	url := pgtypeTestPGURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", "TRIBUTARY_TEST_PG_URL", err)
	}
	defer conn.Close(context.Background())

	ns := fmt.Sprintf("pgtype_it_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// A non-UTC session zone proves offsets are applied.
	exec(`SET TimeZone = 'Asia/Kolkata'`)
	exec(`SET DateStyle = 'ISO, MDY'`)
	exec(`SET IntervalStyle = 'postgres'`)
	exec(`SET lc_monetary = 'C'`)
	exec(`SET bytea_output = 'hex'`)
	exec(`CREATE SCHEMA ` + ns)
	defer func() {
		_, _ = conn.Exec(context.Background(), `DROP SCHEMA `+ns+` CASCADE`)
	}()
	exec(`CREATE TYPE ` + ns + `.mood AS ENUM ('sad', 'ok', 'happy')`)
	exec(`CREATE DOMAIN ` + ns + `.price AS numeric(10,2)`)

	type col struct {
		name, ddl, literal string
		want               any
		srcType            string // expected __debezium.source.column.type
	}
	cols := []col{
		{"c_int2", "smallint", "-32768", int32(-32768), "INT2"},
		{"c_int4", "integer", "2147483647", int32(2147483647), "INT4"},
		{"c_int8", "bigint", "-9223372036854775808", int64(math.MinInt64), "INT8"},
		{"c_float4", "real", "1.5", float32(1.5), "FLOAT4"},
		{"c_float8", "double precision", "3.141592653589793", 3.141592653589793, "FLOAT8"},
		{"c_bool", "boolean", "true", true, "BOOL"},
		{"c_num", "numeric(10,2)", "-1234.5", pgtypeTestHex("fe1dc6"), "NUMERIC"},
		{"c_numv", "numeric", "1.500", []any{int32(1), []byte{0x0f}}, "NUMERIC"},
		{"c_numbig", "numeric(38,0)", strings.Repeat("9", 38), pgtypeTestHex("4b3b4ca85a86c47a098a223fffffffff"), "NUMERIC"},
		{"c_money", "money", "1234.56", pgtypeTestHex("01e240"), "MONEY"},
		{"c_text", "text", `E'h\u00e9llo\tworld\\back\nline'`, "h\u00e9llo\tworld\\back\nline", "TEXT"},
		{"c_varchar", "varchar(20)", "'abc'", "abc", "VARCHAR"},
		{"c_bpchar", "char(5)", "'ab'", "ab   ", "BPCHAR"},
		{"c_qchar", `"char"`, "'x'", "x", "CHAR"},
		{"c_name", "name", "'pg_class'", "pg_class", "NAME"},
		{"c_date", "date", "'2024-01-02'", int32(19724), "DATE"},
		{"c_date_bc", "date", "'0044-03-15 BC'", pgtypeTestDays(-43, time.March, 15), "DATE"},
		{"c_date_inf", "date", "'infinity'", int32(-2147472692), "DATE"},
		{"c_time", "time", "'13:51:30.123456'", int64(49890123456), "TIME"},
		{"c_time3", "time(3)", "'13:51:30.123'", int32(49890123), "TIME"},
		{"c_timetz", "timetz", "'13:51:30.123789+02'", "11:51:30.123789Z", "TIMETZ"},
		{"c_ts", "timestamp", "'2016-11-04 13:51:30.123456'", pgtypeTestMicros(2016, 11, 4, 13, 51, 30, 123456), "TIMESTAMP"},
		{"c_ts3", "timestamp(3)", "'2016-11-04 13:51:30.124'", pgtypeTestMicros(2016, 11, 4, 13, 51, 30, 124000) / 1000, "TIMESTAMP"},
		{"c_ts_inf", "timestamp", "'infinity'", int64(9223372036825200000), "TIMESTAMP"},
		{"c_tstz", "timestamptz", "'2016-11-04 13:51:30.123456+02'", "2016-11-04T11:51:30.123456Z", "TIMESTAMPTZ"},
		{"c_tstz0", "timestamptz(0)", "'2024-01-02 03:04:05+00'", "2024-01-02T03:04:05Z", "TIMESTAMPTZ"},
		{"c_tstz_bc", "timestamptz", "'0044-03-15 12:00:00+00 BC'", "-0043-03-15T12:00:00.000000Z", "TIMESTAMPTZ"},
		{"c_interval", "interval", "'1 year 2 months 3 days 4 hours 5 minutes 6.78 seconds'", int64(37091106780000), "INTERVAL"},
		{"c_uuid", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "UUID"},
		{"c_json", "json", `'{"bar": "baz"}'`, `{"bar": "baz"}`, "JSON"},
		{"c_jsonb", "jsonb", `'{"bar": "baz"}'`, `{"bar": "baz"}`, "JSONB"},
		{"c_xml", "xml", "'<foo>bar</foo>'", "<foo>bar</foo>", "XML"},
		{"c_bytea", "bytea", `'\x0102ff'`, []byte{1, 2, 255}, "BYTEA"},
		{"c_bit1", "bit(1)", "B'1'", true, "BIT"},
		{"c_bit", "bit(10)", "B'1000000000'", []byte{0x00, 0x02}, "BIT"},
		{"c_varbit", "varbit", "B'101'", []byte{5}, "VARBIT"},
		{"c_inet", "inet", "'192.168.2.0/12'", "192.168.2.0/12", "INET"},
		{"c_cidr", "cidr", "'192.168.100.128/25'", "192.168.100.128/25", "CIDR"},
		{"c_macaddr", "macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03", "MACADDR"},
		{"c_macaddr8", "macaddr8", "'08:00:2b:01:02:03:04:05'", "08:00:2b:01:02:03:04:05", "MACADDR8"},
		{"c_enum", ns + ".mood", "'happy'", "happy", "MOOD"},
		{"c_domain", ns + ".price", "12.3", pgtypeTestHex("04ce"), "PRICE"},
		{"c_tsv", "tsvector", "'a fat cat'", "'a' 'cat' 'fat'", "TSVECTOR"},
		{"c_oid", "oid", "4294967295", int64(4294967295), "OID"},
		{"c_point", "point", "'(1,2)'", []any{1.0, 2.0, pgtypeTestHex("0101000000000000000000f03f0000000000000040"), nil}, "POINT"},
		{"c_int4range", "int4range", "'[1,6)'", "[1,6)", "INT4RANGE"},
		{"c_int4a", "integer[]", "'{1,NULL,3}'", []any{int32(1), nil, int32(3)}, "_INT4"},
		{"c_texta", "text[]", `ARRAY['one','two words','with "quote"',E'back\\slash',NULL,'NULL','',E'tab\there']`,
			[]any{"one", "two words", `with "quote"`, `back\slash`, nil, "NULL", "", "tab\there"}, "_TEXT"},
		{"c_numa", "numeric(10,2)[]", "'{1.2,3.4}'", []any{[]byte{0x78}, []byte{0x01, 0x54}}, "_NUMERIC"},
		{"c_tstza", "timestamptz[]", `'{"2020-04-01 11:51:02+00"}'`, []any{"2020-04-01T11:51:02.000000Z"}, "_TIMESTAMPTZ"},
		{"c_enuma", ns + ".mood[]", "'{sad,happy}'", []any{"sad", "happy"}, "_MOOD"},
		{"c_byteaa", "bytea[]", `ARRAY['\x0102'::bytea, NULL]`, []any{[]byte{1, 2}, nil}, "_BYTEA"},
		{"c_datea", "date[]", "'{2024-01-02,NULL}'", []any{int32(19724), nil}, "_DATE"},
		{"c_uuida", "uuid[]", "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'", []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, "_UUID"},
		{"c_intervala", "interval[]", `'{"1 day"}'`, []any{int64(86400000000)}, "_INTERVAL"},
		{"c_bpchara", "char(4)[]", `'{ab,abcd}'`, []any{"ab  ", "abcd"}, "_BPCHAR"},
	}
	var ddl, names, lits []string
	for _, c := range cols {
		ddl = append(ddl, c.name+" "+c.ddl)
		names = append(names, c.name)
		lits = append(lits, c.literal)
	}
	table := ns + ".all_types"
	exec(`CREATE TABLE ` + table + ` (id int PRIMARY KEY, ` + strings.Join(ddl, ", ") + `)`)
	exec(`INSERT INTO ` + table + ` (id, ` + strings.Join(names, ", ") + `) VALUES (1, ` + strings.Join(lits, ", ") + `)`)
	exec(`INSERT INTO ` + table + ` (id) VALUES (2)`) // all NULL

	cat, err := pgtypeLoadCatalog(ctx, conn)
	if err != nil {
		t.Fatalf("load catalog: %v", err)
	}

	// Column types as a pgoutput Relation message carries them.
	rows, err := conn.Query(ctx, `SELECT attname::text, atttypid, atttypmod FROM pg_catalog.pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 1 AND NOT attisdropped ORDER BY attnum`, table)
	if err != nil {
		t.Fatalf("read pg_attribute: %v", err)
	}
	decoders := make([]pgtypeDecoder, 0, len(cols))
	i := 0
	for rows.Next() {
		var (
			name   string
			oid    uint32
			typmod int32
		)
		if err := rows.Scan(&name, &oid, &typmod); err != nil {
			t.Fatalf("scan pg_attribute: %v", err)
		}
		if name != cols[i].name {
			t.Fatalf("attribute %d is %s, want %s", i, name, cols[i].name)
		}
		typ, dec, known := pgtypeLookup(oid, typmod, cat)
		if !known {
			t.Errorf("%s (%s, oid %d): pgtypeLookup does not know it", name, cols[i].ddl, oid)
		}
		if got := typ.Params["__debezium.source.column.type"]; got != cols[i].srcType {
			t.Errorf("%s: source column type %q, want %q", name, got, cols[i].srcType)
		}
		decoders = append(decoders, dec)
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read pg_attribute: %v", err)
	}
	if len(decoders) != len(cols) {
		t.Fatalf("got %d attributes, want %d", len(decoders), len(cols))
	}

	check := func(how string, row int, vals [][]byte) {
		t.Helper()
		if len(vals) != len(cols)+1 {
			t.Fatalf("%s row %d: %d fields, want %d", how, row, len(vals), len(cols)+1)
		}
		for k, c := range cols {
			raw := vals[k+1]
			if row == 2 {
				if raw != nil {
					t.Errorf("%s row 2 %s: want NULL, got %q", how, c.name, raw)
				}
				continue
			}
			if raw == nil {
				t.Errorf("%s row 1 %s: unexpected NULL", how, c.name)
				continue
			}
			got, err := decoders[k](raw)
			if err != nil {
				t.Errorf("%s %s: decode %q: %v", how, c.name, raw, err)
				continue
			}
			if !pgtypeTestEqual(got, c.want) {
				t.Errorf("%s %s: text %q\n got  %#v\n want %#v", how, c.name, raw, got, c.want)
			}
		}
	}

	sel := `SELECT id, ` + strings.Join(names, ", ") + ` FROM ` + table + ` ORDER BY id`
	res, err := conn.PgConn().Exec(ctx, sel).ReadAll()
	if err != nil {
		t.Fatalf("simple query: %v", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 2 {
		t.Fatalf("simple query returned %d results", len(res))
	}
	for r, vals := range res[0].Rows {
		for _, fd := range res[0].FieldDescriptions {
			if fd.Format != 0 {
				t.Fatalf("field %s is not in text format", fd.Name)
			}
		}
		check("simple protocol", r+1, vals)
	}

	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &buf, `COPY (`+sel+`) TO STDOUT`); err != nil {
		t.Fatalf("COPY TO STDOUT: %v", err)
	}
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	var fields [][]byte
	n := 0
	for _, line := range lines {
		if len(line) == 0 {
			continue
		}
		n++
		fields, err = copySplitRow(line, fields)
		if err != nil {
			t.Fatalf("COPY row %d: %v", n, err)
		}
		check("COPY", n, fields)
	}
	if n != 2 {
		t.Fatalf("COPY returned %d rows, want 2", n)
	}

	// The interval decoder also reads IntervalStyle iso_8601.
	exec(`SET IntervalStyle = 'iso_8601'`)
	res, err = conn.PgConn().Exec(ctx, `SELECT c_interval, c_intervala FROM `+table+` WHERE id = 1`).ReadAll()
	if err != nil {
		t.Fatalf("iso_8601 interval query: %v", err)
	}
	_, idec, _ := pgtypeLookup(pgxtype.IntervalOID, -1, nil)
	if got, err := idec(res[0].Rows[0][0]); err != nil || got != int64(37091106780000) {
		t.Errorf("iso_8601 interval %q: got %v, %v", res[0].Rows[0][0], got, err)
	}
	_, iadec, _ := pgtypeLookup(pgxtype.IntervalArrayOID, -1, nil)
	if got, err := iadec(res[0].Rows[0][1]); err != nil || !pgtypeTestEqual(got, []any{int64(86400000000)}) {
		t.Errorf("iso_8601 interval[] %q: got %v, %v", res[0].Rows[0][1], got, err)
	}
}

// PostGIS geometry and geography (an extension's types, known from the
// catalog) map to Debezium's Geometry and Geography structs: the EWKB as
// PostgreSQL prints it (hex) and the SRID from its header.
func TestPostGISTypes(t *testing.T) {
	cat := pgtypeMapCatalog{
		70001: {Name: "geometry", Type: 'b'},
		70002: {Name: "geography", Type: 'b'},
		70003: {Name: "_geometry", Type: 'b', Category: 'A', ElemOID: 70001},
	}
	for oid, name := range map[uint32]string{70001: schema.GeometryName, 70002: schema.GeographyName} {
		typ, dec, known := pgtypeLookup(oid, -1, cat)
		if !known || typ.Kind != schema.Struct || typ.Name != name || len(typ.Fields) != 2 ||
			typ.Fields[0].Name != "wkb" || typ.Fields[1].Name != "srid" || !typ.Fields[1].Optional {
			t.Fatalf("oid %d: type %+v known %v", oid, typ, known)
		}
		// POINT(1 2) with SRID 4326, and without an SRID.
		v, err := dec([]byte("0101000020E6100000000000000000F03F0000000000000040"))
		if err != nil {
			t.Fatal(err)
		}
		want := []any{mustHexPG(t, "0101000020E6100000000000000000F03F0000000000000040"), int32(4326)}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s value %v, want %v", name, v, want)
		}
		v, err = dec([]byte("0101000000000000000000F03F0000000000000040"))
		if err != nil || v.([]any)[1] != nil {
			t.Errorf("%s without SRID: %v %v", name, v, err)
		}
		if _, err := dec([]byte("01")); err == nil {
			t.Errorf("%s: a short EWKB was accepted", name)
		}
	}
	typ, _, known := pgtypeLookup(70003, -1, cat)
	if !known || typ.Kind != schema.Array || typ.Items.Name != schema.GeometryName || !typ.ItemsOptional {
		t.Errorf("geometry[]: %+v", typ)
	}
	if typ.Params[schema.SourceColumnTypeParam] != "_GEOMETRY" {
		t.Errorf("geometry[] source type %v", typ.Params)
	}
}

func mustHexPG(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

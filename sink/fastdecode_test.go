package sink_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

// TestFastDecodeMatchesGeneric decodes events of every common column type,
// with nulls, Debezium's unavailable placeholder and bad values, through the
// compiled envelope plan and through the generic decoder, and requires the
// same change (or both an error) from both.
func TestFastDecodeMatchesGeneric(t *testing.T) {
	reg := sinktest.NewRegistry()
	topic := "pg.inv.items"
	tbl := &sinktest.Table{
		Topic: topic, DB: "inv", Schema: "inv", Name: "items",
		Columns: []sinktest.Col{
			{Name: "id", Type: sinktest.Int64("INT8")},
			{Name: "code", Type: sinktest.String("TEXT")},
			{Name: "price", Type: sinktest.Decimal(10, 2, "NUMERIC", "10", "2")},
			{Name: "big", Type: sinktest.Decimal(38, 3, "NUMERIC", "38", "3"), Optional: true},
			{Name: "ratio", Type: sinktest.VariableScaleDecimal("NUMERIC"), Optional: true},
			{Name: "born", Type: sinktest.Date("DATE"), Optional: true},
			{Name: "seen", Type: sinktest.MicroTimestamp("TIMESTAMP"), Optional: true},
			{Name: "ms", Type: sinktest.Timestamp("TIMESTAMP"), Optional: true},
			{Name: "at", Type: sinktest.ZonedTimestamp("TIMESTAMPTZ"), Optional: true},
			{Name: "tod", Type: sinktest.MicroTime("TIME"), Optional: true},
			{Name: "uid", Type: sinktest.UUID("UUID"), Optional: true},
			{Name: "doc", Type: sinktest.JSON("JSONB"), Optional: true},
			{Name: "tags", Type: sinktest.Array(sinktest.String(), "_TEXT"), Optional: true},
			{Name: "flags", Type: sinktest.Bits(4, "BIT", "4"), Optional: true},
			{Name: "raw", Type: sinktest.Bytes("BYTEA"), Optional: true},
			{Name: "ok", Type: sinktest.Boolean("BOOL"), Optional: true},
			{Name: "small", Type: sinktest.Int16("INT2"), Optional: true},
			{Name: "n32", Type: sinktest.Int32("INT4"), Optional: true},
			{Name: "f64", Type: sinktest.Float64("FLOAT8"), Optional: true},
			{Name: "mood", Type: sinktest.Enum("happy,sad", "MOOD"), Optional: true},
			{Name: "span", Type: sinktest.MicroDuration("INTERVAL"), Optional: true},
			{Name: "note", Type: sinktest.String("TEXT"), Optional: true},
		},
		Key: []string{"id", "code"},
	}
	enc, err := sinktest.NewEncoder(reg, tbl)
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	full := map[string]any{
		"id": int64(1), "code": "a", "price": sinktest.Dec("-1234.50"), "big": sinktest.Dec("-123456789012345678901234567.125"),
		"ratio": sinktest.VarDec(-31415, 4), "born": sinktest.Days(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)),
		"seen": sinktest.Micros(seen), "ms": seen.UnixMilli(), "at": "2024-02-29T12:14:15.5+01:00",
		"tod": int64((13*3600+14*60+15)*1_000_000 + 250), "uid": "0b2c4f7e-8d1a-4a53-9e4f-1f2e3d4c5b6a",
		"doc": `{"a":[1,2]}`, "tags": []any{"x", nil, `q"t`}, "flags": []byte{0x0a}, "raw": []byte{0, 1, 0xff},
		"ok": true, "small": 7, "n32": -70000, "f64": 2.5, "mood": "sad", "span": int64(90_000_000), "note": "big text",
	}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range full {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := map[string]struct {
		op            string
		before, after map[string]any
	}{
		"full create":      {"c", nil, full},
		"nulls":            {"r", nil, map[string]any{"id": int64(2), "code": "b", "price": sinktest.Dec("0.05")}},
		"unavailable text": {"u", nil, with("note", "__debezium_unavailable_value", "doc", "__debezium_unavailable_value")},
		"unavailable key":  {"u", nil, with("code", "__debezium_unavailable_value")},
		"unavailable raw":  {"u", nil, with("raw", []byte("__debezium_unavailable_value"))},
		"bad instant":      {"c", nil, with("at", "yesterday")},
		"delete":           {"d", full, nil},
		"update w/ before": {"u", full, with("price", sinktest.Dec("99999999.99"), "small", -5)},
		"no after":         {"c", nil, nil},
		"negative small":   {"c", nil, with("price", sinktest.Dec("-0.01"), "big", sinktest.Dec("0.001"))},
	}
	ctx := context.Background()
	decs := map[string]sink.Decoder{"schema.Decoder": schema.NewDecoder(reg), "hamba generic": reg}
	for name, c := range cases {
		for dname, dec := range decs {
			rowForKey := c.after
			if rowForKey == nil {
				rowForKey = full
			}
			key, err := enc.Key(rowForKey)
			if err != nil {
				t.Fatal(err)
			}
			val, err := enc.Event(c.op, c.before, c.after)
			if err != nil {
				t.Fatalf("%s: encode: %v", name, err)
			}
			fast, gen, ferr, gerr, compiled := sink.DecodeBothWays(ctx, dec, "${source.schema}.${source.table}", topic, key, val)
			if !compiled {
				t.Fatalf("%s: the envelope plan did not compile", name)
			}
			if (ferr == nil) != (gerr == nil) {
				t.Errorf("%s (%s): fast error %v, generic error %v", name, dname, ferr, gerr)
				continue
			}
			if ferr != nil {
				if ferr.Error() != gerr.Error() {
					t.Errorf("%s (%s): errors differ:\n fast    %v\n generic %v", name, dname, ferr, gerr)
				}
				continue
			}
			if !reflect.DeepEqual(fast, gen) {
				t.Errorf("%s (%s): changes differ:\n fast    %s\n generic %s", name, dname, show(fast), show(gen))
			}
		}
	}
	// A truncated record is an error of the value, not a crash.
	val, _ := enc.Event("c", nil, full)
	for cut := 6; cut < len(val); cut += 7 {
		_, _, ferr, _, _ := sink.DecodeBothWays(ctx, reg, "${source.schema}.${source.table}", topic, nil, val[:cut])
		if ferr == nil {
			t.Errorf("value cut at %d of %d bytes decoded without error", cut, len(val))
		}
	}
}

func show(c *sink.DecodedChange) string {
	if c == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("%s op=%v key=%#v cols=%v\n", c.Table, c.Op, c.Key, c.Cols)
	for i, v := range c.Row {
		s += fmt.Sprintf("   %d %T %#v\n", i, v, v)
	}
	return s
}

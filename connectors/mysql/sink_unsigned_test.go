package mysql

import (
	"testing"

	"github.com/tributary-cdc/tributary/sink"
)

// bigint.unsigned.handling.mode=long sends 2^64-1 as -1: an unsigned copy
// column gets 2^64-1 back; a signed one keeps the value as sent.
func TestSinkValueBigintUnsigned(t *testing.T) {
	ct := &sink.ColumnType{Kind: sink.KindInt64, Native: "BIGINT UNSIGNED", Dialect: sink.DialectMySQL}
	for _, c := range []struct {
		v       int64
		colType string
		want    any
	}{
		{-1, "bigint(20) unsigned", "18446744073709551615"},
		{-9223372036854775808, "bigint(20) unsigned", "9223372036854775808"},
		{42, "bigint(20) unsigned", int64(42)},
		{-1, "bigint(20)", int64(-1)},
	} {
		got, _, err := sinkValue(c.v, ct, c.colType)
		if err != nil || got != c.want {
			t.Errorf("sinkValue(%d, %s) = %#v, %v; want %#v", c.v, c.colType, got, err, c.want)
		}
	}
	// A signed BIGINT source keeps its negative values in any column.
	signed := &sink.ColumnType{Kind: sink.KindInt64, Native: "BIGINT", Dialect: sink.DialectMySQL}
	if got, _, _ := sinkValue(int64(-1), signed, "bigint(20) unsigned"); got != int64(-1) {
		t.Errorf("signed source: %#v", got)
	}
}

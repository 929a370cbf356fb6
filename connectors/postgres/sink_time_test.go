package postgres

import (
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/sink"
)

// TestSinkTimeInfinity: Debezium's encodings of ±infinity dates and
// timestamps go back to PostgreSQL's infinity, not to an out-of-range date.
func TestSinkTimeInfinity(t *testing.T) {
	day := func(d int64) time.Time { return time.Unix(d*86400, 0).UTC() }
	cases := []struct {
		t    time.Time
		kind sink.Kind
		want string
	}{
		{day(-2147472692), sink.KindDate, "infinity"},
		{day(-2147472691), sink.KindDate, "-infinity"},
		{day(19724), sink.KindDate, "2024-01-02"},
		{day(-2440550), sink.KindDate, "4713-01-01 BC"},
		{time.UnixMicro(9223372036825200000), sink.KindTimestamp, "infinity"},
		{time.UnixMicro(-9223372036832400000), sink.KindTimestampTZ, "-infinity"},
	}
	for _, c := range cases {
		if got := sinkTime(c.t, &sink.ColumnType{Kind: c.kind}); got != c.want {
			t.Errorf("sinkTime(%v, %v) = %q, want %q", c.t, c.kind, got, c.want)
		}
	}
}

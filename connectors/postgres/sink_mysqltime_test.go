package postgres

import (
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/sink"
)

// A MySQL TIME is a signed duration up to 838:59:59: its PostgreSQL copy
// is an interval, written in microseconds.
func TestSinkMySQLTimeIsInterval(t *testing.T) {
	ct := &sink.ColumnType{Kind: sink.KindTime, Native: "TIME", Dialect: sink.DialectMySQL}
	if got := sinkColumnType(ct, "bytea"); got != "interval" {
		t.Errorf("MySQL TIME column: %s, want interval", got)
	}
	d := -(838*time.Hour + 59*time.Minute + 59*time.Second)
	if got, null, err := sinkText(d, ct, "interval"); err != nil || null || got != "-3020399000000 microseconds" {
		t.Errorf("sinkText(-838:59:59) = %q, %v, %v", got, null, err)
	}
	// A PostgreSQL time stays a time of day.
	pgTime := &sink.ColumnType{Kind: sink.KindTime, Native: "TIME", Dialect: sink.DialectPostgres}
	if got := sinkColumnType(pgTime, "bytea"); got != "time" {
		t.Errorf("PostgreSQL TIME column: %s, want time", got)
	}
	if got, _, _ := sinkText(13*time.Hour+51*time.Minute, pgTime, "time without time zone"); got != "13:51:00" {
		t.Errorf("sinkText(13:51) = %q", got)
	}
}

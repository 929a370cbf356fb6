package mysql

import (
	"testing"

	"github.com/tributary-cdc/tributary/sink"
)

func TestSinkCompareTypes(t *testing.T) {
	cases := []struct {
		have, want string
		out        int
	}{
		{"varchar(128)", "VARCHAR(200)", sinkTypeWider},
		{"varchar(200)", "VARCHAR(128)", sinkTypeFits},
		{"varchar(128)", "LONGTEXT", sinkTypeWider},
		{"text", "MEDIUMTEXT", sinkTypeWider},
		{"longtext", "JSON", sinkTypeSame},
		{"int(11)", "INT", sinkTypeSame},
		{"int(11)", "BIGINT", sinkTypeWider},
		{"bigint(20)", "INT", sinkTypeFits},
		{"int(10) unsigned", "BIGINT", sinkTypeWider},
		{"int(11)", "INT UNSIGNED", sinkTypeOther},
		{"tinyint(1)", "BOOLEAN", sinkTypeSame},
		{"decimal(10,2)", "DECIMAL(12,4)", sinkTypeWider},
		{"decimal(10,2) unsigned", "DECIMAL(10,2) UNSIGNED", sinkTypeSame},
		{"float", "DOUBLE", sinkTypeWider},
		{"enum('a','b')", "ENUM('a','b','c')", sinkTypeWider},
		{"enum('a','b')", "ENUM('a','b')", sinkTypeSame},
		{"enum('a','b')", "ENUM('a','c')", sinkTypeOther},
		{"set('x','it''s')", "SET('x','it''s','z')", sinkTypeWider},
		{"char(10)", "CHAR(20)", sinkTypeWider},
		{"varbinary(10)", "LONGBLOB", sinkTypeWider},
		{"bit(8)", "BIT(16)", sinkTypeWider},
		{"int(11)", "VARCHAR(10)", sinkTypeOther},
		{"longtext", "INT", sinkTypeFits},
		{"longtext", "LONGBLOB", sinkTypeOther},
		{"datetime(6)", "DATETIME(6)", sinkTypeSame},
	}
	for _, c := range cases {
		if got := sinkCompareTypes(c.have, c.want); got != c.out {
			t.Errorf("sinkCompareTypes(%q, %q) = %d, want %d", c.have, c.want, got, c.out)
		}
	}
}

func TestSinkDefaults(t *testing.T) {
	cases := []struct {
		c    sink.ColumnSpec
		typ  string
		want string
	}{
		{sink.ColumnSpec{Type: sink.ColumnType{Kind: sink.KindInt32}, Default: int64(0)}, "INT", " DEFAULT 0"},
		{sink.ColumnSpec{Type: sink.ColumnType{Kind: sink.KindString}, Default: `it's \ ok`}, "VARCHAR(20)", ` DEFAULT 'it''s \\ ok'`},
		{sink.ColumnSpec{Type: sink.ColumnType{Kind: sink.KindString}, Default: "x"}, "LONGTEXT", ` DEFAULT ('x')`},
		{sink.ColumnSpec{Type: sink.ColumnType{Kind: sink.KindBool}, Default: true}, "BOOLEAN", ` DEFAULT 1`},
		{sink.ColumnSpec{Type: sink.ColumnType{Kind: sink.KindBytes}, Default: []byte{1, 2}}, "LONGBLOB", ` DEFAULT (X'0102')`},
	}
	for _, c := range cases {
		c.c.Name, c.c.HasDefault = "col", true
		if got, err := sinkDefault(&c.c, c.typ); err != nil || got != c.want {
			t.Errorf("default %#v for %s: %q, %v; want %q", c.c.Default, c.typ, got, err, c.want)
		}
	}
}

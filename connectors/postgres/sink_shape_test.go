package postgres

import (
	"testing"

	"github.com/tributary-cdc/tributary/sink"
)

func TestSinkCompareTypes(t *testing.T) {
	cases := []struct {
		have, want string
		out        int
	}{
		{"character varying(128)", "varchar(200)", sinkTypeWider},
		{"character varying(200)", "varchar(128)", sinkTypeFits},
		{"character varying(128)", "varchar(128)", sinkTypeSame},
		{"character varying(128)", "text", sinkTypeWider},
		{"text", "varchar(10)", sinkTypeFits},
		{"character(10)", "char(20)", sinkTypeWider},
		{"character(10)", "varchar(20)", sinkTypeWider},
		{"integer", "bigint", sinkTypeWider},
		{"bigint", "integer", sinkTypeFits},
		{"smallint", "numeric(10,2)", sinkTypeWider},
		{"numeric(10,2)", "numeric(12,4)", sinkTypeWider},
		{"numeric(12,4)", "numeric(10,2)", sinkTypeFits},
		{"numeric(10,2)", "numeric(10,4)", sinkTypeOther},
		{"numeric(10,2)", "numeric", sinkTypeWider},
		{"real", "double precision", sinkTypeWider},
		{"integer[]", "bigint[]", sinkTypeWider},
		{"integer", "bigint[]", sinkTypeOther},
		{"integer", "varchar(10)", sinkTypeOther},
		{"text", "integer", sinkTypeFits},
		{"text", "integer[]", sinkTypeOther},
		{"timestamp without time zone", "timestamp", sinkTypeSame},
		{"time with time zone", "timetz", sinkTypeSame},
		{"bit varying(8)", "bit varying(16)", sinkTypeWider},
		{"jsonb", "bytea", sinkTypeOther},
		{"geometry", `"public".geometry`, sinkTypeSame},
	}
	for _, c := range cases {
		if got := sinkCompareTypes(c.have, c.want); got != c.out {
			t.Errorf("sinkCompareTypes(%q, %q) = %d, want %d", c.have, c.want, got, c.out)
		}
	}
}

func TestSinkDefaultAndGeometryText(t *testing.T) {
	c := &sink.ColumnSpec{Name: "tier", Type: sink.ColumnType{Kind: sink.KindString}, Default: "it's", HasDefault: true}
	if got, err := sinkDefault(c, "text"); err != nil || got != ` DEFAULT 'it''s'::text` {
		t.Errorf("string default %q, %v", got, err)
	}
	c = &sink.ColumnSpec{Name: "v", Type: sink.ColumnType{Kind: sink.KindString}, Default: "x", HasDefault: true}
	if got, _ := sinkDefault(c, "character varying(5)"); got != ` DEFAULT 'x'::varchar` {
		t.Errorf("varchar default %q: the cast must not shorten silently", got)
	}
	g := sink.Geometry{WKB: []byte{1, 1, 0, 0, 0}, SRID: 4326, HasSRID: true}
	if s, _, _ := sinkText(g, &sink.ColumnType{Kind: sink.KindGeometry}, "bytea"); s != `\x0101000000` {
		t.Errorf("geometry as bytea: %q", s)
	}
	if s, _, _ := sinkText(g, &sink.ColumnType{Kind: sink.KindGeometry}, "geometry"); s != "0101000020e6100000" {
		t.Errorf("geometry as PostGIS hex EWKB: %q", s)
	}
	if typ := sinkColumnType(&sink.ColumnType{Kind: sink.KindGeometry}, `"public".geometry`); typ != `"public".geometry` {
		t.Errorf("geometry column with PostGIS: %q", typ)
	}
	if typ := sinkColumnType(&sink.ColumnType{Kind: sink.KindGeometry}, ""); typ != "bytea" {
		t.Errorf("geometry column without PostGIS: %q", typ)
	}
}

package integration

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shapeValueSchema is the envelope of a MariaDB table `My Table "quoted"`
// as Debezium 3.6 writes it: adjusted field names with the source's own
// spelling in __debezium.source.column.name, the source types in
// __debezium.source.column.type/length/scale, column defaults as field
// defaults, and a GEOMETRY column as io.debezium.data.geometry.Geometry.
// v2 is the table after
//
//	ALTER TABLE `My Table "quoted"` MODIFY `select` varchar(200) NOT NULL,
//	  MODIFY `col with space` bigint, MODIFY tier enum('a','b','c') NOT NULL DEFAULT 'a',
//	  ADD loyalty_points int NOT NULL DEFAULT 0,
//	  ADD credit decimal(5,2) NOT NULL DEFAULT 1.50
//
// v0 is v1 as an older Debezium writes it, without
// __debezium.source.column.name.
func shapeValueSchema(t *testing.T, topic string, version int) string {
	v2 := version == 2
	param := func(typ any, src ...string) map[string]any {
		m := map[string]any{}
		switch x := typ.(type) {
		case string:
			m["type"] = x
		case map[string]any:
			for k, v := range x {
				m[k] = v
			}
		}
		p := map[string]any{"__debezium.source.column.type": src[0]}
		if version > 0 {
			p["__debezium.source.column.name"] = src[len(src)-1]
		}
		if len(src) > 2 {
			p["__debezium.source.column.length"] = src[1]
		}
		if len(src) > 3 {
			p["__debezium.source.column.scale"] = src[2]
		}
		if old, ok := m["connect.parameters"].(map[string]any); ok {
			for k, v := range old {
				p[k] = v
			}
		}
		m["connect.parameters"] = p
		return m
	}
	selLen, spaceType, spaceAvro, allowed := "128", "INT", "int", "a,b"
	if v2 {
		selLen, spaceType, spaceAvro, allowed = "200", "BIGINT", "long", "a,b,c"
	}
	geom := map[string]any{"type": "record", "name": "Geometry", "namespace": "io.debezium.data.geometry",
		"fields": []any{
			map[string]any{"name": "wkb", "type": "bytes"},
			map[string]any{"name": "srid", "type": []any{"null", "int"}, "default": nil},
		}, "connect.doc": "Geometry", "connect.version": 1, "connect.name": "io.debezium.data.geometry.Geometry"}
	enum := map[string]any{"type": "string", "connect.version": 1, "connect.name": "io.debezium.data.Enum",
		"connect.parameters": map[string]any{"allowed": allowed}}
	fields := []any{
		map[string]any{"name": "id", "type": param("int", "INT", "id")},
		map[string]any{"name": "select", "type": param("string", "VARCHAR", selLen, "select")},
		map[string]any{"name": "col_with_space", "type": []any{"null", param(spaceAvro, spaceType, "col with space")}, "default": nil},
		map[string]any{"name": "_n_c_d___", "type": []any{"null", param("string", "TEXT", "ünïcödé 列")}, "default": nil},
		map[string]any{"name": "tier", "type": param(enum, "ENUM", "tier"), "default": "a"},
		map[string]any{"name": "geom", "type": []any{"null", param(geom, "GEOMETRY", "geom")}, "default": nil},
	}
	if v2 {
		dec := map[string]any{"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 2, "connect.version": 1,
			"connect.name": "org.apache.kafka.connect.data.Decimal", "connect.parameters": map[string]any{"scale": "2", "connect.decimal.precision": "5"}}
		fields = append(fields,
			map[string]any{"name": "loyalty_points", "type": param("int", "INT", "loyalty_points"), "default": 0},
			map[string]any{"name": "credit", "type": param(dec, "DECIMAL", "5", "2", "credit"), "default": "\u0000\u0096"})
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(readTestdata(t, "dbz3_mysql_users_value.avsc")), &env); err != nil {
		t.Fatal(err)
	}
	env["namespace"] = topic
	env["connect.name"] = topic + ".Envelope"
	before := env["fields"].([]any)[0].(map[string]any)
	value := before["type"].([]any)[1].(map[string]any)
	value["fields"] = fields
	value["connect.name"] = topic + ".Value"
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSinkShapeAllTargets: a hand-made Debezium 3.6 MariaDB topic whose
// table has names Avro cannot spell and whose schema evolves is copied by
// a worker into PostgreSQL (with and without PostGIS), MariaDB and SQLite, then replayed into each
// from offset zero with one record per batch. Every copy names the table
// and columns as the source does; the rows it held before an ADD COLUMN
// ... DEFAULT read the default; a varchar widened from 128 to 200, an int
// that became a bigint and an enum with a new value take values the old
// types refuse; the geometry is a native geometry in MariaDB and the WKB
// in PostgreSQL without PostGIS and SQLite, and a PostGIS geometry with its
// SRID in PostgreSQL with PostGIS.
func TestSinkShapeAllTargets(t *testing.T) {
	le := newLogEnv(t, modes[0])
	base := uniq("shape")
	const table = `My Table "quoted"`
	topic := base + ".shop.My_Table__quoted_"
	pgCopy := pgDB(t)
	gisCopy := pgDB(t)
	pgExec(t, pgConn(t, gisCopy), "CREATE EXTENSION postgis")
	myDSN, myDB, myConn := mysqlSinkDB(t)
	sqlitePath := filepath.Join(t.TempDir(), "copy.db")
	cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sinks:
  - name: %[1]s_pg
    type: postgres
    url: %[2]s
    topics: [%[3]s]
    batch_size: 1
    topic_refresh_interval: 300ms
    flush_interval: 20ms
  - name: %[1]s_my
    type: mysql
    dsn: %[4]s
    topics: [%[3]s]
    table_name_format: %[5]s.$${source.table}
    batch_size: 1
    topic_refresh_interval: 300ms
    flush_interval: 20ms
  - name: %[1]s_lite
    type: sqlite
    path: %[6]s
    topics: [%[3]s]
    batch_size: 1
    topic_refresh_interval: 300ms
    flush_interval: 20ms
  - name: %[1]s_gis
    type: postgres
    url: %[7]s
    topics: [%[3]s]
    batch_size: 1
    topic_refresh_interval: 300ms
    flush_interval: 20ms
`, base, pgCopy, topic, myDSN, myDB, sqlitePath, gisCopy))
	w := startWorker(t, le, cfg)
	waitHTTP(t, le.registryURL+"/subjects", 30*time.Second, w)

	p := newDBZProducer(t, le)
	p.register(topic+"-key", fmt.Sprintf(`{"type":"record","name":"Key","namespace":%q,"fields":[{"name":"id","type":"int"}],"connect.name":%q}`, topic, topic+".Key"))
	p.register(topic+"-value", shapeValueSchema(t, topic, 0))
	src := func(pos int64) map[string]any {
		s := mysqlSource("false", pos)
		s["db"], s["table"] = "shop", table
		return s
	}
	// POINT(1 2) with SRID 4326, little-endian WKB.
	wkb, _ := hex.DecodeString("0101000000000000000000f03f0000000000000040")
	geom := func(srid int) any {
		return map[string]any{"io.debezium.data.geometry.Geometry": map[string]any{"wkb": wkb, "srid": srid}}
	}
	ev := func(pos int64, row map[string]any) map[string]any {
		return map[string]any{"before": nil, "after": map[string]any{topic + ".Value": row}, "source": src(pos), "transaction": nil,
			"op": "c", "ts_ms": int64(1714550400123), "ts_us": nil, "ts_ns": nil}
	}
	key := func(id int) map[string]any { return map[string]any{"id": id} }
	// Row 1 comes from an older Debezium (no source spellings): the copies
	// first name its columns by the Avro field names, then rename them
	// when row 2 brings the source's spelling.
	p.send(topic, p.rec(topic, key(1), ev(100, map[string]any{"id": 1, "select": "one", "col_with_space": 10, "_n_c_d___": "ü1", "tier": "b", "geom": geom(4326)})))
	p.register(topic+"-value", shapeValueSchema(t, topic, 1))
	p.send(topic, p.rec(topic, key(2), ev(200, map[string]any{"id": 2, "select": "two", "col_with_space": nil, "_n_c_d___": nil, "tier": "a", "geom": nil})))

	pc := pgConn(t, pgCopy)
	gc := pgConn(t, gisCopy)
	sq := openSQLite(t, sqlitePath)
	pgTable := `shop."My Table ""quoted"""`
	myTable := "`" + myDB + "`.`" + table + "`"
	liteTable := `"shop_My Table ""quoted"""`
	v1Want := map[string]string{"1": "one|10|ü1|b", "2": "two|<null>|<null>|a"}
	readers := []struct {
		name string
		read func(cols, tail string, kinds ...string) (map[string]string, error)
	}{
		{"PostgreSQL", func(c, tail string, kinds ...string) (map[string]string, error) {
			return readNorm(pgRows(pc), "SELECT "+strings.ReplaceAll(c, "AS CHAR", "AS text")+" FROM "+pgTable+tail, kinds...)
		}},
		{"MariaDB", func(c, tail string, kinds ...string) (map[string]string, error) {
			return readNorm(sqliteRows(myConn), "SELECT "+strings.ReplaceAll(c, `"`, "`")+" FROM "+myTable+tail, kinds...)
		}},
		{"PostgreSQL with PostGIS", func(c, tail string, kinds ...string) (map[string]string, error) {
			return readNorm(pgRows(gc), "SELECT "+strings.ReplaceAll(c, "AS CHAR", "AS text")+" FROM "+pgTable+tail, kinds...)
		}},
		{"SQLite", func(c, tail string, kinds ...string) (map[string]string, error) {
			return readNorm(sqliteRows(sq), "SELECT "+c+" FROM "+liteTable+tail, kinds...)
		}},
	}
	for _, r := range readers {
		waitRows(t, r.name+" rows of schema v1 under the source's names", v1Want, func() (map[string]string, error) {
			return r.read(`CAST("id" AS CHAR), "select", CAST("col with space" AS CHAR), "ünïcödé 列", "tier"`, "", "text", "int", "text", "text")
		}, w)
	}

	if n := strings.Count(w.output(), "renamed column to the source's spelling"); n < 4*2 {
		t.Errorf("the worker logged %d column renames, want 2 in each of the 4 copies:\n%s", n, tail([]byte(w.output()), 4096))
	}
	p.register(topic+"-value", shapeValueSchema(t, topic, 2))
	long := strings.Repeat("x", 168)
	p.send(topic, p.rec(topic, key(3), ev(300, map[string]any{"id": 3, "select": long, "col_with_space": map[string]any{"long": int64(5_000_000_000)},
		"_n_c_d___": "列3", "tier": "c", "geom": geom(4326), "loyalty_points": 7, "credit": big.NewRat(225, 100)})))
	want := map[string]string{
		"1": "one|10|ü1|b|0|1.50",
		"2": "two|<null>|<null>|a|0|1.50",
		"3": long + "|5000000000|列3|c|7|2.25",
	}
	check := func(what string, w *proc) {
		t.Helper()
		for _, r := range readers {
			waitRows(t, r.name+" rows "+what, want, func() (map[string]string, error) {
				return r.read(`CAST("id" AS CHAR), "select", CAST("col with space" AS CHAR), "ünïcödé 列", "tier", CAST("loyalty_points" AS CHAR), CAST("credit" AS CHAR)`,
					"", "text", "int", "text", "text", "int", "dec2")
			}, w)
		}
		geoWant := map[string]string{"1": "4326:" + hex.EncodeToString(wkb), "2": "<null>", "3": "4326:" + hex.EncodeToString(wkb)}
		got, err := readNorm(sqliteRows(myConn), "SELECT CAST(id AS CHAR), CONCAT(ST_SRID(geom), ':', LOWER(HEX(ST_AsBinary(geom)))) FROM "+myTable, "text")
		if err != nil || fmt.Sprint(got) != fmt.Sprint(geoWant) {
			t.Errorf("MariaDB geometry %s: %v (err %v), want %v", what, got, err, geoWant)
		}
		wkbWant := map[string]string{"1": hex.EncodeToString(wkb), "2": "<null>", "3": hex.EncodeToString(wkb)}
		if got, err := readNorm(pgRows(pc), "SELECT id::text, encode(geom, 'hex') FROM "+pgTable, "text"); err != nil || fmt.Sprint(got) != fmt.Sprint(wkbWant) {
			t.Errorf("PostgreSQL geometry %s: %v (err %v), want %v", what, got, err, wkbWant)
		}
		gisWant := map[string]string{"1": "4326:POINT(1 2):geometry", "2": "<null>", "3": "4326:POINT(1 2):geometry"}
		if got, err := readNorm(pgRows(gc), "SELECT id::text, ST_SRID(geom) || ':' || ST_AsText(geom) || ':' || pg_typeof(geom) FROM "+pgTable, "text"); err != nil || fmt.Sprint(got) != fmt.Sprint(gisWant) {
			t.Errorf("PostGIS geometry %s: %v (err %v), want %v", what, got, err, gisWant)
		}
		if got, err := readNorm(sqliteRows(sq), "SELECT CAST(id AS TEXT), CASE WHEN geom IS NULL THEN NULL ELSE lower(hex(geom)) END FROM "+liteTable, "text"); err != nil || fmt.Sprint(got) != fmt.Sprint(wkbWant) {
			t.Errorf("SQLite geometry %s: %v (err %v), want %v", what, got, err, wkbWant)
		}
		// The copies' column types follow the source.
		pgTypes := map[string]string{}
		rows, err := pc.Query(context.Background(), `SELECT a.attname, format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
			FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`, pgTable)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n, ty string
			if err := rows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			pgTypes[n] = ty
		}
		rows.Close()
		for col, ty := range map[string]string{"select": "character varying(200) not null", "col with space": "bigint", "loyalty_points": "integer not null",
			"credit": "numeric(5,2) not null", "geom": "bytea", "ünïcödé 列": "text"} {
			if pgTypes[col] != ty {
				t.Errorf("PostgreSQL column %q %s is %q, want %q (all: %v)", col, what, pgTypes[col], ty, pgTypes)
			}
		}
		myTypes := map[string]string{}
		mrows, err := myConn.Query("SELECT COLUMN_NAME, CONCAT(COLUMN_TYPE, ' ', IS_NULLABLE) FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", myDB, table)
		if err != nil {
			t.Fatal(err)
		}
		for mrows.Next() {
			var n, ty string
			if err := mrows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			myTypes[n] = ty
		}
		mrows.Close()
		for col, ty := range map[string]string{"select": "varchar(200) NO", "col with space": "bigint(20) YES", "tier": "enum('a','b','c') NO",
			"loyalty_points": "int(11) NO", "credit": "decimal(5,2) NO", "geom": "geometry YES"} {
			if myTypes[col] != ty {
				t.Errorf("MariaDB column %q %s is %q, want %q (all: %v)", col, what, myTypes[col], ty, myTypes)
			}
		}
	}
	check("after the ALTERs", w)
	w.stop(t)

	// Replays rebuild each copy from offset zero, one record per batch:
	// the shadow tables are created with schema v1 and follow v2 as the
	// live ones did.
	sq.Close() // the SQLite replay swaps the file in once no one has it open
	for _, s := range []string{"_pg", "_my", "_lite", "_gis"} {
		replayCLI(t, cfg, base+s)
	}
	sq = openSQLite(t, sqlitePath)
	check("after replay", nil)
}

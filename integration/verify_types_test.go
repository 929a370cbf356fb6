package integration

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-cdc/tributary/schema"
)

// pgTypeAlt is a second literal for every column of pgTypeMatrix, close to
// the first one (one unit, one microsecond, one bit, the next double) so a
// normalisation that loses precision reads them as equal and fails the test.
var pgTypeAlt = map[string]string{
	"c_int2": "-32767", "c_int4": "2147483646", "c_int8": "9223372036854775806",
	"c_real": "1.5000001", "c_double": "-2.2500000000000004", "c_bool": "false",
	"c_num": "-1234.51", "c_numvar": "1.5001", "c_money": "12.35",
	"c_text": "'hellO'", "c_varchar": "'vd'", "c_char": "'abc'",
	"c_date": "'2024-01-03'", "c_time3": "'13:51:30.124'", "c_time": "'13:51:30.123457'",
	"c_timetz": "'13:51:30.123789+03'", "c_ts3": "'2024-01-02 03:04:05.124'",
	"c_ts": "'2024-01-02 03:04:05.123457'", "c_tstz": "'2024-01-02 03:04:05.123457+00'",
	"c_interval": "'1 day 02:00:00.000001'", "c_uuid": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'",
	"c_json": `'{"a": 2}'`, "c_jsonb": `'{"b":3}'`, "c_xml": "'<a>2</a>'", "c_bytea": `'\x0102fe'`,
	"c_bit1": "B'0'", "c_bits": "B'1000000001'", "c_varbit": "B'111'",
	"c_inet": "'192.168.0.2'", "c_cidr": "'10.0.0.0/16'", "c_macaddr": "'08:00:2b:01:02:04'",
	"c_enum": "'sad'", "c_intarr": "'{1,NULL,4}'", "c_textarr": `'{"a b",d}'`,
	"c_tsv": "'cat b'", "c_unknown": "'124'", "c_point": "'(1.5,-2.5)'",
	`"select"`: "'kx'", `"col with space"`: "6", `"ünïcödé 列"`: "'v'",
}

// myTypeDDL and myTypeValues are the MariaDB type matrix of
// connectors/mysql/types_integration_test.go (matrixDDL, matrixValues):
// one column of every type the MySQL source maps.
const myTypeDDL = `CREATE TABLE tm (
 id int PRIMARY KEY,
 ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint, miu mediumint unsigned,
 i int, iu int unsigned, bi bigint, biu bigint unsigned,
 d decimal(10,2), d0 decimal, f float, f72 float(7,2), f30 float(30), db double,
 b1 bit(1), b10 bit(10), bo boolean,
 c char(5), vc varchar(100), tt tinytext, t text, mt mediumtext, lt longtext,
 bn binary(4), vb varbinary(10), tb tinyblob, bl blob, mb mediumblob, lb longblob,
 dt date, tm0 time, tm6 time(6), dt0 datetime, dt3 datetime(3), dt6 datetime(6),
 ts0 timestamp NULL, ts6 timestamp(6) NULL, y year,
 e enum('a','b''q','c,d'), s set('x','y','z'), j json, g geometry, p point,
 l1 varchar(10) character set latin1, ip inet6, u uuid
)`

const myTypeValues = `-128, 255, -32768, 65535, -8388608, 16777215,
 -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
 -12345678.91, 1234567890, 1.5, 12345.67, 1.25e300, 3.141592653589793,
 b'1', b'1000000011', true,
 'ab', 'héllo €😀', 'tiny', 'text', 'medium', 'long',
 X'0102', X'00FF10', X'AB', X'CD', X'EF', X'0000',
 '2024-02-29', '-838:59:59', '12:34:56.789012', '2024-02-29 13:14:15', '1969-12-31 23:59:59.123', '2038-01-19 03:14:08.000001',
 '2024-02-29 13:14:15', '2001-02-03 04:05:06.0708', 2155,
 'b''q', 'z,x', '{"a": [1, 2.5, "x"], "b": null}', ST_GeomFromText('LINESTRING(0 0,1 1)', 4326), POINT(1.5, -2.25),
 'café', '::ffff:1.2.3.4', '123e4567-e89b-12d3-a456-426614174000'`

// myTypeAlt is a second, close value of every column, in the same order.
// The ENUM value is 'a', not 'c,d': Debezium's "allowed" parameter joins the
// values with commas, so a MariaDB copy's ENUM gets the values a, b'q,
// c and d, and cannot take 'c,d' (a known limit of the wire format, in
// the README).
const myTypeAlt = `-127, 254, -32767, 65534, -8388607, 16777214,
 -2147483647, 4294967294, -9223372036854775807, 18446744073709551614,
 -12345678.92, 1234567891, 1.25, 12345.68, 1.26e300, 3.1415926535897936,
 b'0', b'1000000010', false,
 'abc', 'héllo €😁', 'tinY', 'texT', 'mediuM', 'lonG',
 X'0103', X'00FF11', X'AC', X'CE', X'F0', X'0001',
 '2024-03-01', '-838:59:58', '12:34:56.789013', '2024-02-29 13:14:16', '1969-12-31 23:59:59.124', '2038-01-19 03:14:08.000002',
 '2024-02-29 13:14:16', '2001-02-03 04:05:06.0709', 2154,
 'a', 'x,y', '{"a": [1, 2.5, "y"], "b": null}', ST_GeomFromText('LINESTRING(0 0,1 2)', 4326), POINT(1.5, -2.5),
 'cafè', '::ffff:1.2.3.5', '123e4567-e89b-12d3-a456-426614174001'`

// myTypeCols are the columns of myTypeDDL after id.
var myTypeCols = strings.Fields(`ti tiu si siu mi miu i iu bi biu d d0 f f72 f30 db b1 b10 bo
 c vc tt t mt lt bn vb tb bl mb lb dt tm0 tm6 dt0 dt3 dt6 ts0 ts6 y e s j g p l1 ip u`)

// oddCols are columns whose names Avro cannot spell: the copy names them as
// the source does (or, without __debezium.source.column.name, by the
// adjusted name), and verify must compare them rather than report them
// missing.
var oddCols = []string{"select", "col with space", "ünïcödé 列"}

// copyTarget is one sink of the test and how to reach its tables.
type copyTarget struct {
	name   string // sink name
	engine string
	// table is the copy table of a source table (schema-qualified or not).
	table func(srcSchema, srcTable string) string
	exec  func(q string) error
	// columns lists the copy table's column names.
	columns func(table string) ([]string, error)
	quote   func(id string) string
}

// corruptSQL sets column col of key 1 to the value the copy holds for key
// from, in the copy's dialect.
func (ct copyTarget) corruptSQL(table, col string, from int) string {
	q := ct.quote(col)
	switch ct.engine {
	case "postgres":
		return fmt.Sprintf("UPDATE %s AS a SET %s = b.%s FROM %s AS b WHERE a.id = 1 AND b.id = %d", table, q, q, table, from)
	case "mysql":
		return fmt.Sprintf("UPDATE %s a JOIN %s b ON b.id = %d SET a.%s = b.%s WHERE a.id = 1", table, table, from, q, q)
	}
	return fmt.Sprintf("UPDATE %s SET %s = (SELECT %s FROM %s WHERE id = %d) WHERE id = 1", table, q, q, table, from)
}

// TestVerifyTypeMatricesAllTargets copies the full PostgreSQL and MariaDB
// type matrices (plus a partitioned table and columns Avro cannot name)
// into PostgreSQL (with and without PostGIS), MariaDB and SQLite copies
// through the binary; `verify`
// says every copy equals its source; then, for every column of every
// matrix in every copy, one value of key 1 is changed to a close but
// different value (the one key 2 holds) and verify must exit 1 naming key
// 1 and exactly that column.
func TestVerifyTypeMatricesAllTargets(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})

	// PostgreSQL source: the type matrix, a partitioned table, odd names.
	src := pgDB(t)
	pc := pgConn(t, src)
	pgExec(t, pc, "CREATE TYPE mood AS ENUM ('sad', 'happy')")
	var cols, valsA, valsB, nulls []string
	for _, tc := range pgTypeMatrix {
		alt, ok := pgTypeAlt[tc.col]
		if !ok {
			t.Fatalf("pgTypeAlt has no value for %s: every column of the matrix must be corrupted", tc.col)
		}
		cols = append(cols, tc.col+" "+tc.typ)
		valsA = append(valsA, tc.literal)
		valsB = append(valsB, alt)
		nulls = append(nulls, "NULL")
	}
	pgExec(t, pc, "CREATE TABLE pg_types (id int PRIMARY KEY, "+strings.Join(cols, ", ")+")")
	pgExec(t, pc, `CREATE TABLE payment (id int, paid date, amount numeric(6,2), PRIMARY KEY (id, paid)) PARTITION BY RANGE (paid);
		CREATE TABLE payment_p2022_01 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
		CREATE TABLE payment_p2022_02 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01')`)
	pgExec(t, pc, `CREATE TABLE oddcols (id int PRIMARY KEY, "select" text, "col with space" int, "ünïcödé 列" text)`)
	// Rows 1 and 4 hold the same values, row 2 close different ones, row 3
	// NULLs. Rows 1-3 go through the snapshot, row 4 through streaming.
	insertPG := func(id int, vals []string) {
		pgExec(t, pc, fmt.Sprintf("INSERT INTO pg_types VALUES (%d, %s)", id, strings.Join(vals, ", ")))
	}
	insertPG(1, valsA)
	insertPG(2, valsB)
	insertPG(3, nulls)
	pgExec(t, pc, "INSERT INTO payment SELECT g, date '2022-01-01' + g, g * 1.25 FROM generate_series(1, 50) g")
	pgExec(t, pc, `INSERT INTO oddcols VALUES (1, 'a', 1, 'x'), (2, 'b', 2, 'y'), (4, 'a', 1, 'x')`)

	// MariaDB source: its type matrix.
	_, myDB, mc := mysqlDB(t)
	mustExecDB(t, mc, myTypeDDL)
	mustExecDB(t, mc, "INSERT INTO tm VALUES (1, "+myTypeValues+")")
	mustExecDB(t, mc, "INSERT INTO tm VALUES (2, "+myTypeAlt+")")
	mustExecDB(t, mc, "INSERT INTO tm (id) VALUES (3)")
	myURL := "mysql://" + strings.NewReplacer("tcp(", "", ")/", "").Replace(env(t, "TRIBUTARY_TEST_MYSQL_URL"))

	// The copies.
	pgCopy := pgDB(t)
	pcc := pgConn(t, pgCopy)
	// A second PostgreSQL copy has PostGIS: geometries are stored as
	// geometry with their SRID there, as bytea WKB in the first.
	gisCopy := pgDB(t)
	gcc := pgConn(t, gisCopy)
	pgExec(t, gcc, "CREATE EXTENSION postgis")
	myDSN, myCopyDB, myConn := mysqlSinkDB(t)
	sqlitePath := filepath.Join(t.TempDir(), "copy.db")
	pgPrefix, myPrefix, slot := uniq("vtp"), uniq("vtm"), uniq("slot")
	topics := strings.Join([]string{pgPrefix + ".public.pg_types", pgPrefix + ".public.payment", pgPrefix + ".public.oddcols",
		myPrefix + "." + myDB + ".tm"}, ", ")
	sinkBase := uniq("vt")
	cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sources:
  - name: %[1]s
    type: postgres
    url: %[2]s
    tables: ["public.*"]
    topic_prefix: %[3]s
    slot: %[1]s
    publication: %[1]s_pub
  - name: %[4]s
    type: mysql
    url: %[5]s
    tables: [%[6]s.tm]
    topic_prefix: %[4]s
sinks:
  - name: %[7]s_pg
    type: postgres
    url: %[8]s
    topics: [%[9]s]
    flush_interval: 20ms
  - name: %[7]s_my
    type: mysql
    dsn: %[10]s
    topics: [%[9]s]
    table_name_format: %[11]s.$${source.table}
    flush_interval: 20ms
  - name: %[7]s_lite
    type: sqlite
    path: %[12]s
    topics: [%[9]s]
    flush_interval: 20ms
  - name: %[7]s_gis
    type: postgres
    url: %[13]s
    topics: [%[9]s]
    flush_interval: 20ms
`, slot, src, pgPrefix, myPrefix, myURL, myDB, sinkBase, pgCopy, topics, myDSN, myCopyDB, sqlitePath, gisCopy))
	w := startWorker(t, le, cfg)
	time.Sleep(2 * time.Second)
	insertPG(4, valsA)
	pgExec(t, pc, "INSERT INTO payment SELECT g, date '2022-02-01' + (g % 20), g * 0.5 FROM generate_series(51, 80) g")
	mustExecDB(t, mc, "INSERT INTO tm VALUES (4, "+myTypeValues+")")

	sq, err := sql.Open("sqlite", "file:"+sqlitePath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	ctx := context.Background()
	pgTarget := func(name string, c *pgx.Conn) copyTarget {
		return copyTarget{
			name: name, engine: "postgres",
			table: func(s, tb string) string { return pgx.Identifier{s, tb}.Sanitize() },
			exec:  func(q string) error { _, err := c.Exec(ctx, q); return err },
			columns: func(table string) ([]string, error) {
				return queryStrings(func() (*colRows, error) {
					r, err := c.Query(ctx, "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped", table)
					if err != nil {
						return nil, err
					}
					return &colRows{next: r.Next, scan: func(d ...any) error { return r.Scan(d...) }, err: r.Err, close: r.Close}, nil
				})
			},
			quote: func(id string) string { return pgx.Identifier{id}.Sanitize() },
		}
	}
	targets := []copyTarget{
		pgTarget(sinkBase+"_pg", pcc),
		pgTarget(sinkBase+"_gis", gcc),
		{
			name: sinkBase + "_my", engine: "mysql",
			table: func(_, tb string) string { return "`" + myCopyDB + "`.`" + tb + "`" },
			exec:  func(q string) error { _, err := myConn.Exec(q); return err },
			columns: func(table string) ([]string, error) {
				tb := strings.Trim(table[strings.LastIndex(table, "."):], ".`")
				return queryStrings(func() (*colRows, error) {
					r, err := myConn.Query("SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", myCopyDB, tb)
					if err != nil {
						return nil, err
					}
					return stdRows(r), nil
				})
			},
			quote: func(id string) string { return "`" + strings.ReplaceAll(id, "`", "``") + "`" },
		},
		{
			name: sinkBase + "_lite", engine: "sqlite",
			table: func(s, tb string) string { return `"` + s + "_" + tb + `"` },
			exec:  func(q string) error { _, err := sq.Exec(q); return err },
			columns: func(table string) ([]string, error) {
				return queryStrings(func() (*colRows, error) {
					r, err := sq.Query("SELECT name FROM pragma_table_info(?)", strings.Trim(table, `"`))
					if err != nil {
						return nil, err
					}
					return stdRows(r), nil
				})
			},
			quote: func(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` },
		},
	}

	// Every copy equals its source: exactly the four captured tables (the
	// partitions of payment are not tables of their own in the log).
	for _, ct := range targets {
		code, out := runCLI(t, 5*time.Minute, "verify", "-f", cfg, ct.name, "--wait", "3m")
		if code != 0 || !strings.Contains(out, "4 tables compared, 4 equal, 0 different") {
			t.Errorf("verify %s (%s copy) exited %d, want 0 with 4 equal tables:\n%s", ct.name, ct.engine, code, tail([]byte(out), 16384))
		}
		if strings.Contains(out, "payment_p2022") {
			t.Errorf("verify %s compared a partition of payment as a table:\n%s", ct.name, out)
		}
	}
	w.stop(t)
	// A char(n) copy in SQLite holds the padded value Debezium sends (the
	// README's choice); verify compared it equal to the source above.
	var padded string
	if err := sq.QueryRow(`SELECT c_char FROM "public_pg_types" WHERE id = 1`).Scan(&padded); err != nil || padded != "ab   " {
		t.Errorf("SQLite copy of char(5) 'ab' holds %q (%v), want the padded %q", padded, err, "ab   ")
	}
	var gType string
	if err := gcc.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'g'",
		pgx.Identifier{myDB, "tm"}.Sanitize()).Scan(&gType); err != nil || !strings.HasPrefix(gType, "geometry") {
		t.Errorf("PostGIS copy: column g is %q (%v), want a geometry: the SRID path of verify would go untested", gType, err)
	}
	if t.Failed() {
		return
	}

	matrices := []struct {
		srcSchema, srcTable string
		cols                []string
	}{
		{"public", "pg_types", pgMatrixCols()},
		{myDB, "tm", myTypeCols},
		{"public", "oddcols", oddCols},
	}
	for _, ct := range targets {
		checked := 0
		for _, m := range matrices {
			table := ct.table(m.srcSchema, m.srcTable)
			copyCols, err := ct.columns(table)
			if err != nil || len(copyCols) == 0 {
				t.Errorf("%s copy %s: columns %v, %v", ct.engine, table, copyCols, err)
				continue
			}
			for _, col := range m.cols {
				name := copyColumnName(copyCols, col)
				if name == "" {
					t.Errorf("%s copy %s has no column for source column %q (columns: %v)", ct.engine, table, col, copyCols)
					continue
				}
				if err := ct.exec(ct.corruptSQL(table, name, 2)); err != nil {
					t.Errorf("%s copy %s: corrupting %s: %v", ct.engine, table, name, err)
					continue
				}
				code, out := runCLI(t, 2*time.Minute, "verify", "-f", cfg, ct.name)
				checkCorruption(t, ct, m.srcSchema+"."+m.srcTable, col, m.cols, code, out)
				checked++
				if err := ct.exec(ct.corruptSQL(table, name, 4)); err != nil {
					t.Fatalf("%s copy %s: restoring %s: %v", ct.engine, table, name, err)
				}
			}
		}
		t.Logf("%s copy: %d columns changed one at a time, each named by verify", ct.engine, checked)
		// Restored, the copy is equal again.
		code, out := runCLI(t, 2*time.Minute, "verify", "-f", cfg, ct.name)
		if code != 0 || !strings.Contains(out, "4 tables compared, 4 equal, 0 different") {
			t.Errorf("verify %s after restoring every value exited %d:\n%s", ct.name, code, tail([]byte(out), 16384))
		}
	}
}

// checkCorruption checks verify's output after column col of key 1 of
// table (as the source names it) was changed in the copy: exit 1, that key
// named different in that column, and no other column of that row.
func checkCorruption(t *testing.T, ct copyTarget, table, col string, all []string, code int, out string) {
	t.Helper()
	what := fmt.Sprintf("%s copy of %s, column %q changed at key 1", ct.engine, table, col)
	if code != 1 {
		t.Errorf("%s: verify exited %d, want 1:\n%s", what, code, tail([]byte(out), 8192))
		return
	}
	summary := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(table) + ` -> .*: DIFFERENT: .* 0 missing, 0 extra, 1 different`)
	if !summary.MatchString(out) {
		t.Errorf("%s: no DIFFERENT line with exactly 1 different row for %s:\n%s", what, table, tail([]byte(out), 8192))
	}
	if n := strings.Count(out, "DIFFERENT"); n != 1 {
		t.Errorf("%s: %d tables reported different, want 1:\n%s", what, n, tail([]byte(out), 8192))
	}
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  different key 1: ") {
			line = l
		}
	}
	if !strings.HasPrefix(line, "  different key 1: "+col+": source ") {
		t.Errorf("%s: verify does not name key 1 and column %s first:\n%s", what, col, tail([]byte(out), 8192))
		return
	}
	for _, other := range all {
		if other != col && strings.Contains(line, "; "+other+": source ") {
			t.Errorf("%s: verify also reports column %s:\n%s", what, other, line)
		}
	}
}

func pgMatrixCols() []string {
	out := make([]string, len(pgTypeMatrix))
	for i, tc := range pgTypeMatrix {
		out[i] = strings.Trim(tc.col, `"`) // the column's name, not its SQL quoting
	}
	return out
}

// copyColumnName is the copy's column for source column col: the source's
// spelling or its Avro field name.
func copyColumnName(copyCols []string, col string) string {
	for _, want := range []string{col, schema.AvroFieldName(col)} {
		for _, c := range copyCols {
			if c == want {
				return c
			}
		}
	}
	return ""
}

// colRows adapts pgx and database/sql rows for queryStrings.
type colRows struct {
	next  func() bool
	scan  func(...any) error
	err   func() error
	close func()
}

func stdRows(r *sql.Rows) *colRows {
	return &colRows{next: r.Next, scan: r.Scan, err: r.Err, close: func() { r.Close() }}
}

func queryStrings(q func() (*colRows, error)) ([]string, error) {
	r, err := q()
	if err != nil {
		return nil, err
	}
	defer r.close()
	var out []string
	for r.next() {
		var s string
		if err := r.scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, r.err()
}

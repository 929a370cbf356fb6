package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/tributary-cdc/tributary/connectors/mysql"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

// sinkTestDB creates a fresh database on TRIBUTARY_TEST_MYSQL_URL, dropped at
// the end of the test, and returns a DSN naming it and a pool on it.
func sinkTestDB(t *testing.T) (string, string, *sql.DB) {
	t.Helper()
	raw := os.Getenv("TRIBUTARY_TEST_MYSQL_URL")
	if raw == "" {
		t.Fatal("TRIBUTARY_TEST_MYSQL_URL is not set: run the tests with `make test`, which starts MariaDB and exports it")
	}
	cfg, err := gomysql.ParseDSN(raw)
	if err != nil {
		t.Fatalf("TRIBUTARY_TEST_MYSQL_URL: %v", err)
	}
	admin, err := sql.Open("mysql", raw)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("tributary_sink_%x", time.Now().UnixNano()&0xffffffffffff)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name)
		admin.Close()
	})
	return dsn, name, db
}

type sinkMySQLHarness struct {
	dsn, dbName string
	db          *sql.DB
}

func (h *sinkMySQLHarness) NewTarget(t *testing.T) sink.Target {
	return mysql.NewSinkTarget("conformance", mysql.SinkConfig{DSN: h.dsn}, sinktest.Logger())
}
func (h *sinkMySQLHarness) TableNameFormat() string {
	return h.dbName + ".${source.schema}_${source.table}"
}
func (h *sinkMySQLHarness) Table(schema, table string) string {
	return "`" + h.dbName + "`.`" + schema + "_" + table + "`"
}
func (h *sinkMySQLHarness) OffsetsTable() string               { return "`" + h.dbName + "`." + sink.OffsetsTable }
func (h *sinkMySQLHarness) Text(col string) string             { return "CAST(`" + col + "` AS CHAR)" }
func (h *sinkMySQLHarness) CreateNamespace(*testing.T, string) {}
func (h *sinkMySQLHarness) WKBHex(col string) string {
	return "LOWER(HEX(ST_AsBinary(`" + col + "`)))"
}

func (h *sinkMySQLHarness) Query(t *testing.T, q string) []string {
	t.Helper()
	rows, err := h.db.Query(q)
	if err != nil {
		if me, ok := err.(*gomysql.MySQLError); ok && me.Number == 1146 {
			return nil // the sink has not created the table yet
		}
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *sinkMySQLHarness) Exec(t *testing.T, q string) {
	t.Helper()
	if _, err := h.db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (h *sinkMySQLHarness) Nullable(t *testing.T, schema, table, col string) bool {
	t.Helper()
	var nullable string
	err := h.db.QueryRow(`SELECT IS_NULLABLE FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?`,
		h.dbName, schema+"_"+table, col).Scan(&nullable)
	if err != nil {
		t.Fatalf("column %s of %s_%s: %v", col, schema, table, err)
	}
	return nullable == "YES"
}

func TestSinkTypeChangeStops(t *testing.T) {
	dsn, name, db := sinkTestDB(t)
	sinktest.TypeChangeStops(t, &sinkMySQLHarness{dsn: dsn, dbName: name, db: db})
}

func TestSinkConformance(t *testing.T) {
	dsn, name, db := sinkTestDB(t)
	sinktest.Conformance(t, &sinkMySQLHarness{dsn: dsn, dbName: name, db: db})
}

type sinkTypeCase struct {
	c        sinktest.Col
	value    any
	wantType string
	wantText string
}

// sinkApplyTypes applies one row of the given columns (and one row of
// nulls) from topic into the harness database and checks each column's
// created type and value.
func sinkApplyTypes(t *testing.T, h *sinkMySQLHarness, connector, table string, cases []sinkTypeCase) {
	cluster := sinktest.NewCluster(t)
	reg := sinktest.NewRegistry()
	reg.Unwrap = true
	topic := "srv.src." + table
	var cols []sinktest.Col
	row := map[string]any{}
	for _, c := range cases {
		cols = append(cols, c.c)
		row[c.c.Name] = c.value
	}
	enc, err := sinktest.NewEncoder(reg, &sinktest.Table{Topic: topic, Connector: connector, DB: "src", Schema: "src", Name: table, Columns: cols, Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := enc.Record("c", nil, row)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := enc.Record("c", nil, map[string]any{"id": 2})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Produce(context.Background(), t, r1, r2)
	spec := sink.DefaultSpec()
	spec.Name, spec.Topics, spec.FlushInterval = table, []string{topic}, 20*time.Millisecond
	spec.TableNameFormat = h.TableNameFormat()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, spec, h.NewTarget(t), sink.Deps{NewClient: cluster.NewClient, Decoder: reg, Logger: sinktest.Logger()})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for len(h.Query(t, "SELECT next_offset FROM "+h.OffsetsTable()+" WHERE sink_name = '"+table+"' AND next_offset = 2")) == 0 {
		select {
		case err := <-done:
			t.Fatalf("sink stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("rows not applied within 60s")
		}
		time.Sleep(25 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tbl := h.Table("src", table)
	for _, c := range cases {
		var typ string
		if err := h.db.QueryRow(`SELECT COLUMN_TYPE FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?`,
			h.dbName, "src_"+table, c.c.Name).Scan(&typ); err != nil {
			t.Fatalf("%s: %v", c.c.Name, err)
		}
		if typ != c.wantType {
			t.Errorf("%s: type %q, want %q", c.c.Name, typ, c.wantType)
		}
		expr := h.Text(c.c.Name)
		if strings.HasPrefix(typ, "bit") {
			expr = "BIN(`" + c.c.Name + "`)"
		} else if strings.Contains(typ, "blob") {
			expr = "HEX(`" + c.c.Name + "`)"
		}
		got := h.Query(t, "SELECT "+expr+" FROM "+tbl+" ORDER BY id")
		want := []string{c.wantText, "NULL"}
		if c.c.Name == "id" {
			want[1] = "2"
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: values %q, want %q", c.c.Name, got, want)
		}
	}
}

func TestSinkMySQLTypes(t *testing.T) {
	dsn, name, db := sinkTestDB(t)
	h := &sinkMySQLHarness{dsn: dsn, dbName: name, db: db}
	ts := time.Date(2016, 11, 4, 13, 51, 30, 123456000, time.UTC)
	sinkApplyTypes(t, h, "mysql", "my_types", []sinkTypeCase{
		{sinktest.Col{Name: "id", Type: sinktest.Int64("INT UNSIGNED", "10", "0")}, int64(1), "int(10) unsigned", "1"},
		{sinktest.Col{Name: "c_bool", Type: sinktest.Boolean("TINYINT", "1", "0"), Optional: true}, true, "tinyint(1)", "1"},
		{sinktest.Col{Name: "c_dec", Type: sinktest.Decimal(10, 2, "DECIMAL", "10", "2"), Optional: true}, sinktest.Dec("-1234.50"), "decimal(10,2)", "-1234.50"},
		{sinktest.Col{Name: "c_varchar", Type: sinktest.String("VARCHAR", "20", "0"), Optional: true}, "h\u00e9llo 'q'", "varchar(20)", "h\u00e9llo 'q'"},
		{sinktest.Col{Name: "c_datetime", Type: sinktest.Timestamp("DATETIME", "19"), Optional: true}, ts.UnixMilli(), "datetime(6)", "2016-11-04 13:51:30.123000"},
		{sinktest.Col{Name: "c_ts", Type: sinktest.ZonedTimestamp("TIMESTAMP", "19"), Optional: true}, "2016-11-04T11:51:30Z", "timestamp(6)", "2016-11-04 11:51:30.000000"},
		{sinktest.Col{Name: "c_date", Type: sinktest.Date("DATE"), Optional: true}, 19724, "date", "2024-01-02"},
		{sinktest.Col{Name: "c_time", Type: sinktest.MicroTime("TIME"), Optional: true}, int64(49890123456), "time(6)", "13:51:30.123456"},
		{sinktest.Col{Name: "c_enum", Type: sinktest.Enum("small,large", "ENUM", "1"), Optional: true}, "large", "enum('small','large')", "large"},
		{sinktest.Col{Name: "c_json", Type: sinktest.JSON("JSON"), Optional: true}, `{"a": 1}`, "longtext", `{"a": 1}`},
		{sinktest.Col{Name: "c_bit", Type: sinktest.Bits(4, "BIT", "4"), Optional: true}, []byte{0x0a}, "bit(4)", "1010"},
		{sinktest.Col{Name: "c_blob", Type: sinktest.Bytes("BLOB"), Optional: true}, []byte{0, 1, 255}, "blob", "0001FF"},
	})
}

// TestSinkFromPostgres applies PostgreSQL events to MariaDB: the closest
// MySQL types, exact values.
func TestSinkFromPostgres(t *testing.T) {
	dsn, name, db := sinkTestDB(t)
	h := &sinkMySQLHarness{dsn: dsn, dbName: name, db: db}
	ts := time.Date(2016, 11, 4, 13, 51, 30, 123456000, time.UTC)
	sinkApplyTypes(t, h, "postgresql", "pg_types", []sinkTypeCase{
		{sinktest.Col{Name: "id", Type: sinktest.Int32("INT4", "10", "0")}, 1, "int(11)", "1"},
		{sinktest.Col{Name: "c_text", Type: sinktest.String("TEXT"), Optional: true}, "tab\there", "longtext", "tab\there"},
		{sinktest.Col{Name: "c_num", Type: sinktest.Decimal(10, 2, "NUMERIC", "10", "2"), Optional: true}, sinktest.Dec("12.30"), "decimal(10,2)", "12.30"},
		{sinktest.Col{Name: "c_numv", Type: sinktest.VariableScaleDecimal("NUMERIC"), Optional: true}, sinktest.VarDec(-31415, 4), "varchar(255)", "-3.1415"},
		{sinktest.Col{Name: "c_uuid", Type: sinktest.UUID("UUID"), Optional: true}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "char(36)", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{sinktest.Col{Name: "c_tstz", Type: sinktest.ZonedTimestamp("TIMESTAMPTZ"), Optional: true}, "2016-11-04T13:51:30.123456+02:00", "datetime(6)", "2016-11-04 11:51:30.123456"},
		{sinktest.Col{Name: "c_ts", Type: sinktest.MicroTimestamp("TIMESTAMP"), Optional: true}, sinktest.Micros(ts), "datetime(6)", "2016-11-04 13:51:30.123456"},
		{sinktest.Col{Name: "c_arr", Type: sinktest.Array(sinktest.Int32(), "_INT4"), Optional: true}, []any{1, nil, 3}, "longtext", "[1,null,3]"},
		{sinktest.Col{Name: "c_interval", Type: sinktest.MicroDuration("INTERVAL"), Optional: true}, int64(1_500_000), "bigint(20)", "1500000"},
		{sinktest.Col{Name: "c_bytea", Type: sinktest.Bytes("BYTEA"), Optional: true}, []byte{0xde, 0xad}, "longblob", "DEAD"},
	})
}

func TestSinkBadTarget(t *testing.T) {
	ctx := context.Background()
	bad := mysql.NewSinkTarget("s", mysql.SinkConfig{DSN: "app:s3cret@tcp(127.0.0.1:1)/x?timeout=2s"}, nil)
	err := bad.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1/x") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unreachable target: %v", err)
	}
	cfg := &mysql.SinkConfig{}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "dsn:") {
		t.Fatalf("missing dsn: %v", err)
	}

	// A user who may not create tables.
	dsn, name, db := sinkTestDB(t)
	user := fmt.Sprintf("sink_ro_%x", time.Now().UnixNano()&0xffffff)
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON `" + name + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })
	c, _ := gomysql.ParseDSN(dsn)
	c.User, c.Passwd = user, "pw"
	ro := mysql.NewSinkTarget("s", mysql.SinkConfig{DSN: c.FormatDSN()}, nil)
	err = ro.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "tributary_offsets") || !strings.Contains(strings.ToLower(err.Error()), "denied") {
		t.Fatalf("no CREATE: %v", err)
	}
}

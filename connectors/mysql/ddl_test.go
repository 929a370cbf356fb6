package mysql

import (
	"reflect"
	"strings"
	"testing"
)

func testFilter(t *testing.T, tables ...string) filter {
	t.Helper()
	f, err := newFilter(tables)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func applyAll(t *testing.T, dp *ddlParser, cat *catalog, f filter, db string, stmts ...string) []*ddlResult {
	t.Helper()
	var out []*ddlResult
	for _, s := range stmts {
		res, err := dp.apply(cat, f, db, s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		out = append(out, res)
	}
	return out
}

func colSummary(t *tableDef) string {
	var parts []string
	for _, c := range t.Columns {
		s := c.Name + ":" + c.TypeName
		if c.Length != nil {
			s += "(" + itoa(*c.Length)
			if c.Scale != nil {
				s += "," + itoa(*c.Scale)
			}
			s += ")"
		}
		if c.Charset != "" {
			s += "/" + c.Charset
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ") + " pk=" + strings.Join(t.PK, ",")
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i < 0 {
		return "-" + fmtInt(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return fmtInt(i/10) + string(rune('0'+i%10))
}

func TestRewriteStandIns(t *testing.T) {
	out, ov, replace := rewrite("CREATE OR REPLACE TABLE t (id int, `point` POINT NOT NULL SRID 4326, g geometry, note varchar(10) DEFAULT 'point geometry', ip INET6) WITH SYSTEM VERSIONING")
	if !replace {
		t.Error("CREATE OR REPLACE not detected")
	}
	if ov["point"] != "POINT" || ov["g"] != "GEOMETRY" || ov["ip"] != "INET6" || len(ov) != 3 {
		t.Errorf("overrides %v", ov)
	}
	if strings.Contains(out, "SRID") || strings.Contains(out, "VERSIONING") || strings.Contains(out, "OR REPLACE") {
		t.Errorf("not stripped: %s", out)
	}
	if !strings.Contains(out, "'point geometry'") {
		t.Errorf("string literal changed: %s", out)
	}
	// Names that look like types are left alone when they are names.
	_, ov, _ = rewrite("ALTER TABLE t ADD COLUMN point int, ADD KEY (point)")
	if len(ov) != 0 {
		t.Errorf("a column named point was taken for a type: %v", ov)
	}
}

func TestDDLCreateAlterRenameDrop(t *testing.T) {
	dp := newDDLParser("utf8mb4")
	cat := newCatalog()
	cat.dbCharset["shop"] = "latin1"
	f := testFilter(t, "shop.orders*")
	applyAll(t, dp, cat, f, "shop",
		"CREATE TABLE orders (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, note VARCHAR(20), total DECIMAL(12,3), PRIMARY KEY (id)) DEFAULT CHARSET=utf8mb4",
		"CREATE TABLE `other`.`x` (a int)", // untracked database
		"create table legacy (a char(3), b text character set utf8, j longtext check (json_valid(j)), p point, g geometry srid 0)",
	)
	o := cat.tables[tableID{"shop", "orders"}]
	if o == nil {
		t.Fatal("orders not created")
	}
	if got, want := colSummary(o), "id:BIGINT UNSIGNED note:VARCHAR(20)/utf8mb4 total:DECIMAL(12,3) pk=id"; got != want {
		t.Errorf("orders:\n got %s\nwant %s", got, want)
	}
	if _, ok := cat.tables[tableID{"other", "x"}]; ok {
		t.Error("a table of an untracked database was kept")
	}
	l := cat.tables[tableID{"shop", "legacy"}]
	if got, want := colSummary(l), "a:CHAR(3)/latin1 b:TEXT/utf8 j:JSON p:POINT g:GEOMETRY pk="; got != want {
		t.Errorf("legacy:\n got %s\nwant %s", got, want)
	}

	res := applyAll(t, dp, cat, f, "shop",
		"ALTER TABLE orders ADD COLUMN created DATETIME(3) NOT NULL AFTER id, DROP COLUMN note, MODIFY total DECIMAL(14,2), CHANGE COLUMN created created_at DATETIME(6)",
	)[0]
	if len(res.changes) != 1 || res.changes[0].Type != "ALTER" {
		t.Fatalf("changes %+v", res.changes)
	}
	if got, want := colSummary(cat.tables[tableID{"shop", "orders"}]), "id:BIGINT UNSIGNED created_at:DATETIME(6) total:DECIMAL(14,2) pk=id"; got != want {
		t.Errorf("after ALTER:\n got %s\nwant %s", got, want)
	}
	applyAll(t, dp, cat, f, "shop",
		"ALTER TABLE orders RENAME COLUMN total TO amount, DROP PRIMARY KEY, ADD PRIMARY KEY (id, created_at)",
		"ALTER TABLE orders ADD COLUMN IF NOT EXISTS amount INT", // exists: no-op
	)
	if got, want := colSummary(cat.tables[tableID{"shop", "orders"}]), "id:BIGINT UNSIGNED created_at:DATETIME(6) amount:DECIMAL(14,2) pk=id,created_at"; got != want {
		t.Errorf("after RENAME COLUMN/PK:\n got %s\nwant %s", got, want)
	}
	if _, err := dp.apply(cat, f, "shop", "ALTER TABLE orders ADD COLUMN amount INT"); err == nil {
		t.Error("adding a column that exists was accepted")
	}

	res = applyAll(t, dp, cat, f, "shop", "RENAME TABLE orders TO orders_old, legacy TO orders")[0]
	var types []string
	for _, ch := range res.changes {
		types = append(types, ch.Type+" "+ch.ID)
	}
	if got, want := strings.Join(types, ", "), "DROP shop.orders, CREATE shop.orders_old, DROP shop.legacy, CREATE shop.orders"; got != want {
		t.Errorf("rename changes: %s, want %s", got, want)
	}
	if got := colSummary(cat.tables[tableID{"shop", "orders"}]); !strings.HasPrefix(got, "a:CHAR(3)") {
		t.Errorf("orders after swap: %s", got)
	}
	applyAll(t, dp, cat, f, "shop", "ALTER TABLE orders_old RENAME TO shop.orders_v2", "CREATE TABLE orders_copy LIKE orders_v2")
	if cat.tables[tableID{"shop", "orders_v2"}] == nil || cat.tables[tableID{"shop", "orders_copy"}] == nil {
		t.Errorf("ALTER RENAME / CREATE LIKE: tables %v", cat.sortedIDs())
	}
	res = applyAll(t, dp, cat, f, "shop", "TRUNCATE TABLE orders_v2")[0]
	if len(res.truncated) != 1 || len(res.changes) != 0 {
		t.Errorf("truncate: %+v", res)
	}
	applyAll(t, dp, cat, f, "shop", "DROP TABLE IF EXISTS `orders_copy`, missing /* generated by server */")
	if cat.tables[tableID{"shop", "orders_copy"}] != nil {
		t.Error("DROP TABLE kept the table")
	}
	res = applyAll(t, dp, cat, f, "shop", "CREATE OR REPLACE TABLE orders (k int primary key)")[0]
	if got := colSummary(cat.tables[tableID{"shop", "orders"}]); got != "k:INT pk=k" {
		t.Errorf("CREATE OR REPLACE: %s", got)
	}
	if len(res.changes) == 0 {
		t.Error("CREATE OR REPLACE reported no table change")
	}
	applyAll(t, dp, cat, f, "", "DROP DATABASE shop")
	if len(cat.tables) != 0 {
		t.Errorf("DROP DATABASE left %v", cat.sortedIDs())
	}
}

func TestDDLStatementDMLAndUnparsable(t *testing.T) {
	dp := newDDLParser("utf8mb4")
	cat := newCatalog()
	f := testFilter(t, "shop.orders")
	applyAll(t, dp, cat, f, "shop", "CREATE TABLE orders (id int primary key)")
	res := applyAll(t, dp, cat, f, "shop", "INSERT INTO orders VALUES (1)")[0]
	if len(res.dml) != 1 || res.dml[0] != (tableID{"shop", "orders"}) {
		t.Errorf("statement INSERT not flagged: %+v", res.dml)
	}
	res = applyAll(t, dp, cat, f, "shop", "UPDATE other SET a=1")[0]
	if len(res.dml) != 0 {
		t.Errorf("DML of an uncaptured table flagged: %+v", res.dml)
	}
	if _, err := dp.apply(cat, f, "shop", "ALTER TABLE orders ADD COLUMN x FANCYTYPE"); err == nil {
		t.Error("unparsable ALTER of a tracked table accepted")
	}
	if _, err := dp.apply(cat, f, "elsewhere", "ALTER TABLE t ADD COLUMN x FANCYTYPE"); err != nil {
		t.Errorf("unparsable DDL elsewhere should be ignored: %v", err)
	}
	for _, q := range []string{"GRANT SELECT ON *.* TO u", "CREATE INDEX i ON orders (id)", "FLUSH TABLES", "ANALYZE TABLE orders"} {
		res, err := dp.apply(cat, f, "shop", q)
		if err != nil || !res.empty() {
			t.Errorf("%s: %v %+v", q, err, res)
		}
	}
}

func TestDDLDeepEqualNoSpuriousAlter(t *testing.T) {
	dp := newDDLParser("utf8mb4")
	cat := newCatalog()
	f := testFilter(t, "db.t")
	applyAll(t, dp, cat, f, "db", "CREATE TABLE t (id int primary key, v int)")
	res := applyAll(t, dp, cat, f, "db", "ALTER TABLE t ADD INDEX iv (v)", "ALTER TABLE t ENGINE=InnoDB")
	for _, r := range res {
		if len(r.changes) != 0 {
			t.Errorf("index/engine change recorded as a shape change: %+v", r.changes)
		}
	}
	before := cat.tables[tableID{"db", "t"}].clone()
	if !reflect.DeepEqual(before, cat.tables[tableID{"db", "t"}]) {
		t.Error("clone differs")
	}
}

package mysql

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/pingcap/tidb/pkg/parser/ast"
)

var systemDBs = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// tableInfo is what information_schema says about a table besides columns.
type tableInfo struct {
	engine  string
	rowsEst int64
}

// readCatalog reads the current shape of every table of the tracked
// databases from information_schema. Column types are parsed with the same
// parser as the binlog's DDL, so both paths agree on every column.
func readCatalog(conn *client.Conn, f filter, dp *ddlParser, flavor string) (*catalog, map[tableID]tableInfo, error) {
	cat := newCatalog()
	rows, err := query(conn, "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA")
	if err != nil {
		return nil, nil, fmt.Errorf("listing databases: %w", err)
	}
	var dbs []string
	for _, r := range rows {
		if !systemDBs[r[0]] && f.trackedDB(r[0]) {
			dbs = append(dbs, r[0])
			cat.dbCharset[r[0]] = strings.ToLower(r[1])
		}
	}
	info := map[tableID]tableInfo{}
	if len(dbs) == 0 {
		return cat, info, nil
	}
	sort.Strings(dbs)
	in := make([]string, len(dbs))
	for i, db := range dbs {
		in[i] = quote(db)
	}
	inList := "(" + strings.Join(in, ",") + ")"

	rows, err = query(conn, "SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_COLLATION,''), IFNULL(ENGINE,''), IFNULL(TABLE_ROWS,0) "+
		"FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE' AND TABLE_SCHEMA IN "+inList)
	if err != nil {
		return nil, nil, fmt.Errorf("listing tables: %w", err)
	}
	for _, r := range rows {
		id := tableID{r[0], r[1]}
		cs := charsetOfCollation(r[2])
		if cs == "" {
			cs = cat.dbCharset[id.DB]
		}
		n, _ := strconv.ParseInt(r[4], 10, 64)
		cat.tables[id] = &tableDef{DB: id.DB, Name: id.Table, DefaultCharset: cs}
		info[id] = tableInfo{engine: r[3], rowsEst: n}
	}

	jsonCols := map[tableID]map[string]bool{}
	if flavor == flavorMariaDB {
		// MariaDB's JSON is LONGTEXT with a json_valid() check.
		if rows, err := query(conn, "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN "+inList); err == nil {
			for _, r := range rows {
				if m := jsonCheckRe.FindStringSubmatch(strings.TrimSpace(r[2])); m != nil {
					id := tableID{r[0], r[1]}
					if jsonCols[id] == nil {
						jsonCols[id] = map[string]bool{}
					}
					jsonCols[id][strings.ToLower(unquoteIdent(m[1]))] = true
				}
			}
		}
	}

	rows, err = query(conn, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IFNULL(CHARACTER_SET_NAME,''), IS_NULLABLE, IFNULL(EXTRA,''), DATA_TYPE, "+
		"COLUMN_DEFAULT IS NULL, IFNULL(COLUMN_DEFAULT,'') "+
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN "+inList+" ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION")
	if err != nil {
		return nil, nil, fmt.Errorf("reading columns: %w", err)
	}
	for _, r := range rows {
		id := tableID{r[0], r[1]}
		t, ok := cat.tables[id]
		if !ok {
			continue // a view
		}
		c := dp.columnFromInfoSchema(r[2], r[3], r[4], r[7])
		c.Optional = r[5] == "YES"
		extra := strings.ToLower(r[6])
		c.AutoIncremented = strings.Contains(extra, "auto_increment")
		c.Generated = strings.Contains(extra, "generated") || strings.Contains(extra, "virtual") ||
			strings.Contains(extra, "stored") || strings.Contains(extra, "persistent")
		if jsonCols[id][strings.ToLower(c.Name)] && kindOf(c.TypeName) == kString {
			c.TypeName, c.TypeExpression, c.Length, c.Charset = "JSON", "json", nil, ""
		}
		if r[8] == "0" && !c.Generated {
			infoSchemaDefault(&c, &r[9])
		}
		t.Columns = append(t.Columns, c)
	}

	rows, err = query(conn, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "+
		"WHERE CONSTRAINT_NAME='PRIMARY' AND TABLE_SCHEMA IN "+inList+" ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION")
	if err != nil {
		return nil, nil, fmt.Errorf("reading primary keys: %w", err)
	}
	for _, r := range rows {
		if t, ok := cat.tables[tableID{r[0], r[1]}]; ok {
			t.PK = append(t.PK, r[2])
		}
	}
	for id, t := range cat.tables {
		if len(t.Columns) == 0 {
			// Dropped between the two queries; the caller's consistency
			// check reads again.
			delete(cat.tables, id)
			continue
		}
		dp.finish(t)
	}
	return cat, info, nil
}

var jsonCheckRe = regexp.MustCompile("(?i)^json_valid\\((`(?:[^`]|``)+`|[A-Za-z0-9_$]+)\\)$")

// columnFromInfoSchema parses COLUMN_TYPE (e.g. "int(10) unsigned",
// "enum('a','b')") through the DDL parser; a type it cannot read becomes an
// unknown type carried as text.
func (d *ddlParser) columnFromInfoSchema(name, columnType, charset, dataType string) colDef {
	sql := "CREATE TABLE x (" + quoteIdent(name) + " " + columnType + ")"
	text, overrides, _ := rewrite(sql)
	c := colDef{Name: name, Optional: true}
	stmts, _, err := d.p.Parse(text, "", "")
	if err == nil && len(stmts) == 1 {
		if ct, ok := stmts[0].(*ast.CreateTableStmt); ok && len(ct.Cols) == 1 {
			cs := charset
			if cs == "" {
				cs = "binary"
			}
			fillType(&c, ct.Cols[0].Tp, overrides[strings.ToLower(name)], cs)
			if kindOf(c.TypeName) != kString && kindOf(c.TypeName) != kEnum && kindOf(c.TypeName) != kSet {
				c.Charset = ""
			}
			return c
		}
	}
	c.TypeName = strings.ToUpper(dataType)
	c.TypeExpression = columnType
	c.Charset = strings.ToLower(charset)
	return c
}

package mysql

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	tmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/types"

	// The parser needs a value-expression driver to build literals.
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// tableChange is one entry of a history record's tableChanges.
type tableChange struct {
	Type string `json:"type"` // CREATE, ALTER or DROP
	ID   string `json:"id"`   // "db.table"
	DB   string `json:"db"`
	Name string `json:"table_name"`
	// Table is the shape after the change; nil for DROP.
	Table *tableDef `json:"table,omitempty"`
}

// ddlResult is what one statement did to the catalog.
type ddlResult struct {
	changes   []tableChange
	dbCharset map[string]string // database -> default charset; "" = dropped
	truncated []tableID
	// dml names a captured table that a statement-based INSERT/UPDATE/DELETE
	// touched: its rows are not in the binlog as row events.
	dml []tableID
}

func (r *ddlResult) empty() bool {
	return len(r.changes) == 0 && len(r.dbCharset) == 0 && len(r.truncated) == 0 && len(r.dml) == 0
}

// ddlParser turns statements from QueryEvents into catalog changes. It is
// not safe for concurrent use (the TiDB parser is not).
type ddlParser struct {
	p *parser.Parser
	// serverCharset is character_set_server, the last fallback for columns.
	serverCharset string
}

func newDDLParser(serverCharset string) *ddlParser {
	if serverCharset == "" {
		serverCharset = "utf8mb4"
	}
	return &ddlParser{p: parser.New(), serverCharset: serverCharset}
}

// errUnparsable is returned for a statement that the parser cannot read and
// that may change a tracked table.
var errUnparsable = errors.New("cannot parse DDL")

// Types the TiDB parser does not know, and the stand-in parsed instead.
var standIns = map[string]string{
	"GEOMETRY": "LONGBLOB", "POINT": "LONGBLOB", "LINESTRING": "LONGBLOB", "POLYGON": "LONGBLOB",
	"MULTIPOINT": "LONGBLOB", "MULTILINESTRING": "LONGBLOB", "MULTIPOLYGON": "LONGBLOB",
	"GEOMETRYCOLLECTION": "LONGBLOB", "GEOMCOLLECTION": "LONGBLOB",
	"INET6": "VARBINARY(16)", "INET4": "VARBINARY(4)", "UUID": "BINARY(16)", "XMLTYPE": "LONGTEXT",
}

const identPat = "(`(?:[^`]|``)+`|[A-Za-z0-9_$\u0080-\uffff]+)"

var (
	// A column definition: after "(", ",", ADD [COLUMN] [IF NOT EXISTS],
	// MODIFY [COLUMN] [IF EXISTS] or CHANGE [COLUMN] [IF EXISTS] old, a name
	// then the type.
	colTypeRe         = regexp.MustCompile(`(?i)(?:[(,]|\bADD(?:\s+COLUMN)?(?:\s+IF\s+NOT\s+EXISTS)?|\bMODIFY(?:\s+COLUMN)?(?:\s+IF\s+EXISTS)?|\bCHANGE(?:\s+COLUMN)?(?:\s+IF\s+EXISTS)?\s+` + identPat + `)\s*` + identPat + `\s+(GEOMETRYCOLLECTION|GEOMCOLLECTION|GEOMETRY|POINT|LINESTRING|POLYGON|MULTIPOINT|MULTILINESTRING|MULTIPOLYGON|INET6|INET4|UUID|XMLTYPE)\b`)
	createOrReplaceRe = regexp.MustCompile(`(?i)^(\s*CREATE\s+)OR\s+REPLACE\s+((?:TEMPORARY\s+)?TABLE\b)`)
	// MariaDB and MySQL syntax the TiDB parser refuses but that does not
	// change the row image.
	stripRes = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\bSRID\s+\d+`),
		regexp.MustCompile(`(?i)\bWITH(OUT)?\s+SYSTEM\s+VERSIONING\b`),
		regexp.MustCompile(`(?i)\bINVISIBLE\b`),
		regexp.MustCompile(`(?i)\bCOMPRESSED\b`),
	}
	persistentRe  = regexp.MustCompile(`(?i)\bPERSISTENT\b`)
	defaultExprRe = regexp.MustCompile(`(?i)\bDEFAULT\s*\(`)
	tableDDLRe    = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b(?:\s+OR\s+REPLACE)?(?:\s+(?:TEMPORARY|ONLINE|IGNORE))*\s+(TABLE|TABLES|DATABASE|SCHEMA)\b`)
)

// maskQuoted blanks the inside of string literals and comments so regular
// expressions only see SQL structure. Lengths are kept so offsets match.
func maskQuoted(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\'' || b[i] == '"':
			q := b[i]
			for i++; i < len(b) && b[i] != q; i++ {
				if b[i] == '\\' && i+1 < len(b) {
					b[i] = ' '
					i++
				}
				b[i] = ' '
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			for ; i < len(b) && !(b[i] == '*' && i+1 < len(b) && b[i+1] == '/'); i++ {
				b[i] = ' '
			}
			if i+1 < len(b) {
				b[i], b[i+1] = ' ', ' '
				i++
			}
		case b[i] == '#' || (b[i] == '-' && i+2 < len(b) && b[i+1] == '-' && (b[i+2] == ' ' || b[i+2] == '\t')):
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		}
	}
	return string(b)
}

// defaultExprStandIn names the function a DEFAULT (expression) is parsed as.
const defaultExprStandIn = "tributary_default_expression"

// rewrite prepares a statement for the TiDB parser: unknown column types
// become stand-ins (remembered by column name) and MariaDB-only clauses the
// row image does not depend on are removed.
func rewrite(sql string) (out string, typeOverride map[string]string, replace bool) {
	typeOverride = map[string]string{}
	if m := createOrReplaceRe.FindStringSubmatchIndex(sql); m != nil {
		sql = sql[:m[3]] + sql[m[4]:]
		replace = true
	}
	masked := maskQuoted(sql)
	type edit struct {
		start, end int
		repl       string
	}
	var edits []edit
	for _, m := range colTypeRe.FindAllStringSubmatchIndex(masked, -1) {
		col := unquoteIdent(sql[m[4]:m[5]])
		if u := strings.ToUpper(sql[m[4]:m[5]]); u == "COLUMN" || u == "EXISTS" {
			continue // "ADD COLUMN point INT": point is the name
		}
		typ := strings.ToUpper(sql[m[6]:m[7]])
		typeOverride[strings.ToLower(col)] = typ
		edits = append(edits, edit{m[6], m[7], standIns[typ]})
	}
	for _, re := range stripRes {
		for _, m := range re.FindAllStringIndex(masked, -1) {
			edits = append(edits, edit{m[0], m[1], ""})
		}
	}
	for _, m := range persistentRe.FindAllStringIndex(masked, -1) {
		edits = append(edits, edit{m[0], m[1], "STORED"})
	}
	// DEFAULT (expression), which MariaDB allows and the TiDB parser
	// refuses: a call of a stand-in function, so the default reads as not a
	// constant (the expression itself is of no use to the schema).
	for _, m := range defaultExprRe.FindAllStringIndex(masked, -1) {
		open := m[1] - 1
		depth, end := 0, -1
		for i := open; i < len(masked) && end < 0; i++ {
			switch masked[i] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					end = i + 1
				}
			}
		}
		if end > 0 {
			edits = append(edits, edit{open, end, defaultExprStandIn + "()"})
		}
	}
	// Apply from the end so earlier offsets stay valid.
	for i := 1; i < len(edits); i++ {
		for j := i; j > 0 && edits[j].start > edits[j-1].start; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	for _, e := range edits {
		sql = sql[:e.start] + e.repl + sql[e.end:]
	}
	return sql, typeOverride, replace
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// apply parses one statement executed with default database defaultDB and
// applies it to cat. Only tables of tracked databases are kept. A statement
// that cannot be parsed is errUnparsable when it is table DDL that may touch
// a tracked database, and is ignored otherwise (GRANT, procedures...).
func (d *ddlParser) apply(cat *catalog, f filter, defaultDB, sql string) (*ddlResult, error) {
	res := &ddlResult{}
	text, overrides, replace := rewrite(sql)
	stmts, _, err := d.p.Parse(text, "", "")
	if err != nil {
		if m := tableDDLRe.FindStringSubmatch(sql); m != nil && d.mayTouchTracked(f, defaultDB, sql) {
			return nil, fmt.Errorf("%w: %v", errUnparsable, err)
		}
		return res, nil
	}
	for _, st := range stmts {
		if err := d.applyStmt(cat, f, defaultDB, st, overrides, replace, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// mayTouchTracked is the conservative test for statements the parser cannot
// read: the default database or a tracked database is named in it.
func (d *ddlParser) mayTouchTracked(f filter, defaultDB, sql string) bool {
	if defaultDB != "" && f.trackedDB(defaultDB) {
		return true
	}
	for _, p := range f.patterns {
		if p.isPattern() || strings.Contains(sql, p.db) {
			return true
		}
	}
	return false
}

func tableIDOf(tn *ast.TableName, defaultDB string) tableID {
	db := tn.Schema.O
	if db == "" {
		db = defaultDB
	}
	return tableID{DB: db, Table: tn.Name.O}
}

func (d *ddlParser) applyStmt(cat *catalog, f filter, defaultDB string, st ast.StmtNode,
	overrides map[string]string, replace bool, res *ddlResult) error {
	set := func(t *tableDef, typ string) {
		res.changes = append(res.changes, tableChange{Type: typ, ID: t.id().String(), DB: t.DB, Name: t.Name, Table: t})
		cat.tables[t.id()] = t
	}
	drop := func(id tableID) {
		if _, ok := cat.tables[id]; ok {
			delete(cat.tables, id)
			res.changes = append(res.changes, tableChange{Type: "DROP", ID: id.String(), DB: id.DB, Name: id.Table})
		}
	}
	switch s := st.(type) {
	case *ast.CreateTableStmt:
		if s.TemporaryKeyword != ast.TemporaryNone {
			return nil
		}
		id := tableIDOf(s.Table, defaultDB)
		if !f.trackedDB(id.DB) {
			return nil
		}
		if _, exists := cat.tables[id]; exists && s.IfNotExists && !replace {
			return nil
		}
		if s.ReferTable != nil {
			src, ok := cat.tables[tableIDOf(s.ReferTable, defaultDB)]
			if !ok {
				return fmt.Errorf("CREATE TABLE %s LIKE %s: the shape of %s is unknown (it is not in a captured database)",
					id, tableIDOf(s.ReferTable, defaultDB), tableIDOf(s.ReferTable, defaultDB))
			}
			t := src.clone()
			t.DB, t.Name = id.DB, id.Table
			set(t, "CREATE")
			return nil
		}
		if len(s.Cols) == 0 {
			return fmt.Errorf("CREATE TABLE %s without column definitions cannot be followed", id)
		}
		t := &tableDef{DB: id.DB, Name: id.Table, DefaultCharset: d.tableCharset(cat, id.DB, s.Options)}
		for _, cd := range s.Cols {
			c, pk := d.column(cd, overrides, t.DefaultCharset)
			t.Columns = append(t.Columns, c)
			if pk {
				t.PK = []string{c.Name}
			}
		}
		for _, cons := range s.Constraints {
			d.constraint(t, cons)
		}
		d.finish(t)
		set(t, "CREATE")
	case *ast.DropTableStmt:
		if s.IsView || s.TemporaryKeyword != ast.TemporaryNone {
			return nil
		}
		for _, tn := range s.Tables {
			drop(tableIDOf(tn, defaultDB))
		}
	case *ast.RenameTableStmt:
		for _, tt := range s.TableToTables {
			if err := d.rename(cat, f, tableIDOf(tt.OldTable, defaultDB), tableIDOf(tt.NewTable, defaultDB), set, drop); err != nil {
				return err
			}
		}
	case *ast.TruncateTableStmt:
		id := tableIDOf(s.Table, defaultDB)
		if _, ok := cat.tables[id]; ok {
			res.truncated = append(res.truncated, id)
		}
	case *ast.AlterTableStmt:
		id := tableIDOf(s.Table, defaultDB)
		old, ok := cat.tables[id]
		if !ok {
			return nil
		}
		t := old.clone()
		var renameTo *tableID
		for _, spec := range s.Specs {
			if err := d.alterSpec(cat, t, spec, overrides, defaultDB, &renameTo); err != nil {
				return fmt.Errorf("ALTER TABLE %s: %w", id, err)
			}
		}
		d.finish(t)
		if renameTo != nil && *renameTo != id {
			drop(id)
			if f.trackedDB(renameTo.DB) {
				t.DB, t.Name = renameTo.DB, renameTo.Table
				set(t, "CREATE")
			}
			return nil
		}
		if !reflect.DeepEqual(old, t) {
			set(t, "ALTER")
		}
	case *ast.CreateDatabaseStmt:
		if f.trackedDB(s.Name.O) {
			cs := dbOptionCharset(s.Options)
			if cs == "" {
				cs = d.serverCharset
			}
			if res.dbCharset == nil {
				res.dbCharset = map[string]string{}
			}
			res.dbCharset[s.Name.O] = cs
			cat.dbCharset[s.Name.O] = cs
		}
	case *ast.AlterDatabaseStmt:
		db := s.Name.O
		if db == "" {
			db = defaultDB
		}
		if cs := dbOptionCharset(s.Options); cs != "" && f.trackedDB(db) {
			if res.dbCharset == nil {
				res.dbCharset = map[string]string{}
			}
			res.dbCharset[db] = cs
			cat.dbCharset[db] = cs
		}
	case *ast.DropDatabaseStmt:
		for _, id := range cat.sortedIDs() {
			if id.DB == s.Name.O {
				drop(id)
			}
		}
		if _, ok := cat.dbCharset[s.Name.O]; ok {
			if res.dbCharset == nil {
				res.dbCharset = map[string]string{}
			}
			res.dbCharset[s.Name.O] = ""
			delete(cat.dbCharset, s.Name.O)
		}
	case *ast.InsertStmt:
		d.dmlTables(cat, f, defaultDB, s.Table, res)
	case *ast.UpdateStmt:
		d.dmlTables(cat, f, defaultDB, s.TableRefs, res)
	case *ast.DeleteStmt:
		d.dmlTables(cat, f, defaultDB, s.TableRefs, res)
	case *ast.LoadDataStmt:
		if s.Table != nil {
			if id := tableIDOf(s.Table, defaultDB); f.captured(id.DB, id.Table) {
				res.dml = append(res.dml, id)
			}
		}
	}
	return nil
}

// dmlTables records the captured tables a statement-based DML names.
func (d *ddlParser) dmlTables(cat *catalog, f filter, defaultDB string, refs *ast.TableRefsClause, res *ddlResult) {
	if refs == nil {
		return
	}
	var walk func(n ast.ResultSetNode)
	walk = func(n ast.ResultSetNode) {
		switch x := n.(type) {
		case *ast.Join:
			if x.Left != nil {
				walk(x.Left)
			}
			if x.Right != nil {
				walk(x.Right)
			}
		case *ast.TableSource:
			if tn, ok := x.Source.(*ast.TableName); ok {
				if id := tableIDOf(tn, defaultDB); f.captured(id.DB, id.Table) {
					res.dml = append(res.dml, id)
				}
			}
		}
	}
	walk(refs.TableRefs)
}

func (d *ddlParser) rename(cat *catalog, f filter, from, to tableID,
	set func(*tableDef, string), drop func(tableID)) error {
	t, ok := cat.tables[from]
	if !ok {
		if f.captured(to.DB, to.Table) {
			return fmt.Errorf("RENAME TABLE %s TO %s: the shape of %s is unknown (it is not in a captured database)", from, to, from)
		}
		return nil
	}
	drop(from)
	if f.trackedDB(to.DB) {
		n := t.clone()
		n.DB, n.Name = to.DB, to.Table
		set(n, "CREATE")
	}
	return nil
}

func dbOptionCharset(opts []*ast.DatabaseOption) string {
	for _, o := range opts {
		switch o.Tp {
		case ast.DatabaseOptionCharset:
			return strings.ToLower(o.Value)
		case ast.DatabaseOptionCollate:
			return charsetOfCollation(o.Value)
		}
	}
	return ""
}

// tableCharset is a new table's default character set: its own option,
// else the database's, else the server's.
func (d *ddlParser) tableCharset(cat *catalog, db string, opts []*ast.TableOption) string {
	for _, o := range opts {
		switch o.Tp {
		case ast.TableOptionCharset:
			if !o.Default {
				return strings.ToLower(o.StrValue)
			}
		case ast.TableOptionCollate:
			return charsetOfCollation(o.StrValue)
		}
	}
	if cs := cat.dbCharset[db]; cs != "" {
		return cs
	}
	return d.serverCharset
}

func charsetOfCollation(coll string) string {
	coll = strings.ToLower(coll)
	if coll == "binary" {
		return "binary"
	}
	if i := strings.Index(coll, "_"); i > 0 {
		return coll[:i]
	}
	return coll
}

// column turns a parsed column definition into a colDef; pk reports an
// inline PRIMARY KEY.
func (d *ddlParser) column(cd *ast.ColumnDef, overrides map[string]string, tableCharset string) (colDef, bool) {
	name := cd.Name.Name.O
	ft := cd.Tp
	c := colDef{Name: name, Optional: true}
	pk := false
	charset := ft.GetCharset()
	isJSON := false
	for _, o := range cd.Options {
		switch o.Tp {
		case ast.ColumnOptionNotNull:
			c.Optional = false
		case ast.ColumnOptionNull:
			c.Optional = true
		case ast.ColumnOptionPrimaryKey:
			pk = true
			c.Optional = false
		case ast.ColumnOptionAutoIncrement:
			c.AutoIncremented = true
		case ast.ColumnOptionGenerated:
			c.Generated = true
		case ast.ColumnOptionCollate:
			if charset == "" {
				charset = charsetOfCollation(o.StrValue)
			}
		case ast.ColumnOptionCheck:
			if isJSONValidOf(o.Expr, name) {
				isJSON = true
			}
		case ast.ColumnOptionDefaultValue:
			setDefault(&c, o.Expr)
		}
	}
	if charset == "" && ft.GetCollate() != "" {
		charset = charsetOfCollation(ft.GetCollate())
	}
	if charset == "" {
		charset = tableCharset
	}
	fillType(&c, ft, overrides[strings.ToLower(name)], charset)
	if isJSON && kindOf(c.TypeName) == kString {
		c.TypeName, c.TypeExpression, c.Length, c.Charset = "JSON", "json", nil, ""
	}
	return c, pk
}

func isJSONValidOf(e ast.ExprNode, col string) bool {
	fc, ok := e.(*ast.FuncCallExpr)
	if !ok || fc.FnName.L != "json_valid" || len(fc.Args) != 1 {
		return false
	}
	cn, ok := fc.Args[0].(*ast.ColumnNameExpr)
	return ok && strings.EqualFold(cn.Name.Name.O, col)
}

// fillType sets TypeName, TypeExpression, Length, Scale, EnumValues and
// Charset from a parsed field type. override is the real type name of a
// column parsed through a stand-in (spatial, INET6...).
func fillType(c *colDef, ft *types.FieldType, override, charset string) {
	flen, dec := ft.GetFlen(), ft.GetDecimal()
	binary := strings.EqualFold(ft.GetCharset(), "binary") || strings.EqualFold(charset, "binary")
	unsigned := tmysql.HasUnsignedFlag(ft.GetFlag())
	zerofill := tmysql.HasZerofillFlag(ft.GetFlag())
	var base string
	c.Length, c.Scale, c.EnumValues, c.Charset = nil, nil, nil, ""
	sized := func(def int) {
		if flen < 0 {
			flen = def
		}
		c.Length = intp(flen)
	}
	switch ft.GetType() {
	case tmysql.TypeTiny:
		base = "TINYINT"
		if flen == 1 {
			c.Length = intp(1)
		}
	case tmysql.TypeShort:
		base = "SMALLINT"
	case tmysql.TypeInt24:
		base = "MEDIUMINT"
	case tmysql.TypeLong:
		base = "INT"
	case tmysql.TypeLonglong:
		base = "BIGINT"
	case tmysql.TypeNewDecimal:
		base = "DECIMAL"
		if flen < 0 {
			flen = 10
		}
		if dec < 0 {
			dec = 0
		}
		c.Length, c.Scale = intp(flen), intp(dec)
	case tmysql.TypeFloat, tmysql.TypeDouble:
		base = "FLOAT"
		if ft.GetType() == tmysql.TypeDouble {
			base = "DOUBLE"
		}
		if dec >= 0 && flen > 0 {
			c.Length, c.Scale = intp(flen), intp(dec)
		}
	case tmysql.TypeBit:
		base = "BIT"
		sized(1)
	case tmysql.TypeString:
		base = "CHAR"
		if binary {
			base = "BINARY"
		}
		sized(1)
	case tmysql.TypeVarchar, tmysql.TypeVarString:
		base = "VARCHAR"
		if binary {
			base = "VARBINARY"
		}
		sized(-1)
	case tmysql.TypeTinyBlob, tmysql.TypeBlob, tmysql.TypeMediumBlob, tmysql.TypeLongBlob:
		sizes := map[byte]string{tmysql.TypeTinyBlob: "TINY", tmysql.TypeBlob: "", tmysql.TypeMediumBlob: "MEDIUM", tmysql.TypeLongBlob: "LONG"}
		base = sizes[ft.GetType()] + "TEXT"
		if binary {
			base = sizes[ft.GetType()] + "BLOB"
		}
	case tmysql.TypeDate, tmysql.TypeNewDate:
		base = "DATE"
	case tmysql.TypeDuration:
		base = "TIME"
	case tmysql.TypeDatetime:
		base = "DATETIME"
	case tmysql.TypeTimestamp:
		base = "TIMESTAMP"
	case tmysql.TypeYear:
		base = "YEAR"
	case tmysql.TypeEnum:
		base = "ENUM"
		c.EnumValues = append([]string(nil), ft.GetElems()...)
	case tmysql.TypeSet:
		base = "SET"
		c.EnumValues = append([]string(nil), ft.GetElems()...)
	case tmysql.TypeJSON:
		base = "JSON"
	default:
		f := strings.Fields(strings.ToUpper(ft.CompactStr()))
		if len(f) > 0 {
			base = strings.SplitN(f[0], "(", 2)[0]
		}
	}
	switch base {
	case "TIME", "DATETIME", "TIMESTAMP":
		if dec > 0 {
			c.Length = intp(dec)
		}
	}
	if override != "" {
		base, c.Length, c.Scale = override, nil, nil
	}
	c.TypeName = base
	switch kindOf(base) {
	case kTinyInt, kSmallInt, kMediumInt, kInt, kBigInt, kDecimal, kFloat, kDouble:
		if unsigned {
			c.TypeName += " UNSIGNED"
		}
		if zerofill {
			c.TypeName += " ZEROFILL"
		}
	case kString, kEnum, kSet:
		c.Charset = strings.ToLower(charset)
		if c.Charset == "binary" {
			c.Charset = ""
		}
	}
	c.TypeExpression = typeExpression(c)
}

// typeExpression renders the type the way information_schema writes it.
func typeExpression(c *colDef) string {
	base, _ := baseType(c.TypeName)
	s := strings.ToLower(base)
	switch {
	case len(c.EnumValues) > 0 || kindOf(base) == kEnum || kindOf(base) == kSet:
		q := make([]string, len(c.EnumValues))
		for i, v := range c.EnumValues {
			q[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		s += "(" + strings.Join(q, ",") + ")"
	case c.Length != nil && c.Scale != nil:
		s += "(" + strconv.Itoa(*c.Length) + "," + strconv.Itoa(*c.Scale) + ")"
	case c.Length != nil:
		s += "(" + strconv.Itoa(*c.Length) + ")"
	}
	if rest := strings.TrimPrefix(strings.ToUpper(c.TypeName), base); rest != "" {
		s += strings.ToLower(rest)
	}
	return s
}

func (d *ddlParser) constraint(t *tableDef, cons *ast.Constraint) {
	switch cons.Tp {
	case ast.ConstraintPrimaryKey:
		t.PK = t.PK[:0]
		for _, k := range cons.Keys {
			if k.Column == nil {
				continue
			}
			if i := t.colIndex(k.Column.Name.O); i >= 0 {
				t.PK = append(t.PK, t.Columns[i].Name)
			}
		}
	case ast.ConstraintCheck:
		for i := range t.Columns {
			if isJSONValidOf(cons.Expr, t.Columns[i].Name) && kindOf(t.Columns[i].TypeName) == kString {
				c := &t.Columns[i]
				c.TypeName, c.Length, c.Charset = "JSON", nil, ""
				c.TypeExpression = "json"
			}
		}
	}
}

// finish makes primary-key columns NOT NULL (as the server does) and
// numbers the columns.
func (d *ddlParser) finish(t *tableDef) {
	for _, k := range t.PK {
		if i := t.colIndex(k); i >= 0 {
			t.Columns[i].Optional = false
		}
	}
	t.renumber()
}

func (d *ddlParser) insertAt(t *tableDef, c colDef, pos *ast.ColumnPosition) error {
	idx := len(t.Columns)
	if pos != nil {
		switch pos.Tp {
		case ast.ColumnPositionFirst:
			idx = 0
		case ast.ColumnPositionAfter:
			i := t.colIndex(pos.RelativeColumn.Name.O)
			if i < 0 {
				return fmt.Errorf("column %q in AFTER does not exist", pos.RelativeColumn.Name.O)
			}
			idx = i + 1
		}
	}
	t.Columns = append(t.Columns, colDef{})
	copy(t.Columns[idx+1:], t.Columns[idx:])
	t.Columns[idx] = c
	return nil
}

func (d *ddlParser) alterSpec(cat *catalog, t *tableDef, spec *ast.AlterTableSpec, overrides map[string]string,
	defaultDB string, renameTo **tableID) error {
	switch spec.Tp {
	case ast.AlterTableAddColumns:
		for _, cd := range spec.NewColumns {
			if t.colIndex(cd.Name.Name.O) >= 0 {
				if spec.IfNotExists {
					continue
				}
				return fmt.Errorf("ADD COLUMN %q: the column already exists in the known shape", cd.Name.Name.O)
			}
			c, pk := d.column(cd, overrides, t.DefaultCharset)
			if err := d.insertAt(t, c, spec.Position); err != nil {
				return err
			}
			if pk {
				t.PK = []string{c.Name}
			}
		}
		for _, cons := range spec.NewConstraints {
			d.constraint(t, cons)
		}
	case ast.AlterTableDropColumn:
		i := t.colIndex(spec.OldColumnName.Name.O)
		if i < 0 {
			if spec.IfExists {
				return nil
			}
			return fmt.Errorf("DROP COLUMN %q: no such column", spec.OldColumnName.Name.O)
		}
		name := t.Columns[i].Name
		t.Columns = append(t.Columns[:i], t.Columns[i+1:]...)
		for j, k := range t.PK {
			if strings.EqualFold(k, name) {
				t.PK = append(t.PK[:j], t.PK[j+1:]...)
				break
			}
		}
	case ast.AlterTableModifyColumn, ast.AlterTableChangeColumn:
		oldName := ""
		if spec.Tp == ast.AlterTableChangeColumn {
			oldName = spec.OldColumnName.Name.O
		} else {
			oldName = spec.NewColumns[0].Name.Name.O
		}
		i := t.colIndex(oldName)
		if i < 0 {
			if spec.IfExists {
				return nil
			}
			return fmt.Errorf("column %q to change does not exist", oldName)
		}
		prev := t.Columns[i].Name
		c, pk := d.column(spec.NewColumns[0], overrides, t.DefaultCharset)
		t.Columns = append(t.Columns[:i], t.Columns[i+1:]...)
		if spec.Position == nil || spec.Position.Tp == ast.ColumnPositionNone {
			t.Columns = append(t.Columns, colDef{})
			copy(t.Columns[i+1:], t.Columns[i:])
			t.Columns[i] = c
		} else if err := d.insertAt(t, c, spec.Position); err != nil {
			return err
		}
		for j, k := range t.PK {
			if strings.EqualFold(k, prev) {
				t.PK[j] = c.Name
			}
		}
		if pk {
			t.PK = []string{c.Name}
		}
	case ast.AlterTableAlterColumn:
		// ALTER COLUMN c SET DEFAULT x / DROP DEFAULT.
		if len(spec.NewColumns) == 0 {
			return nil
		}
		i := t.colIndex(spec.NewColumns[0].Name.Name.O)
		if i < 0 {
			return fmt.Errorf("ALTER COLUMN %q: no such column", spec.NewColumns[0].Name.Name.O)
		}
		t.Columns[i].HasDefault, t.Columns[i].DefaultExpr = false, nil
		// SET DEFAULT comes as the one option (of no type) with the value;
		// DROP DEFAULT as none.
		if opts := spec.NewColumns[0].Options; len(opts) == 1 && opts[0].Expr != nil {
			setDefault(&t.Columns[i], opts[0].Expr)
		}
	case ast.AlterTableRenameColumn:
		i := t.colIndex(spec.OldColumnName.Name.O)
		if i < 0 {
			return fmt.Errorf("RENAME COLUMN %q: no such column", spec.OldColumnName.Name.O)
		}
		prev := t.Columns[i].Name
		t.Columns[i].Name = spec.NewColumnName.Name.O
		for j, k := range t.PK {
			if strings.EqualFold(k, prev) {
				t.PK[j] = t.Columns[i].Name
			}
		}
	case ast.AlterTableAddConstraint:
		d.constraint(t, spec.Constraint)
	case ast.AlterTableDropPrimaryKey:
		t.PK = nil
	case ast.AlterTableRenameTable:
		id := tableIDOf(spec.NewTable, defaultDB)
		*renameTo = &id
	case ast.AlterTableOption:
		convert := false
		cs := ""
		for _, o := range spec.Options {
			switch o.Tp {
			case ast.TableOptionCharset:
				if !o.Default {
					cs = strings.ToLower(o.StrValue)
				}
				convert = convert || o.UintValue == ast.TableOptionCharsetWithConvertTo
			case ast.TableOptionCollate:
				if cs == "" {
					cs = charsetOfCollation(o.StrValue)
				}
			}
		}
		if cs != "" {
			t.DefaultCharset = cs
			if convert {
				for i := range t.Columns {
					switch kindOf(t.Columns[i].TypeName) {
					case kString, kEnum, kSet:
						t.Columns[i].Charset = cs
					}
				}
			}
		}
	}
	return nil
}

// touchesTracked reports whether a statement may change the shape of a
// table in a tracked database (or cannot be parsed and may). It judges the
// statement alone, without a catalog: the recovery scan has only the
// shapes of after the statement.
func (d *ddlParser) touchesTracked(f filter, defaultDB, sql string) bool {
	text, _, _ := rewrite(sql)
	stmts, _, err := d.p.Parse(text, "", "")
	if err != nil {
		return tableDDLRe.MatchString(sql) && d.mayTouchTracked(f, defaultDB, sql)
	}
	tracked := func(tn *ast.TableName) bool { return f.trackedDB(tableIDOf(tn, defaultDB).DB) }
	for _, st := range stmts {
		switch s := st.(type) {
		case *ast.CreateTableStmt:
			if s.TemporaryKeyword == ast.TemporaryNone && tracked(s.Table) {
				return true
			}
		case *ast.AlterTableStmt:
			if tracked(s.Table) {
				return true
			}
		case *ast.DropTableStmt:
			if !s.IsView && s.TemporaryKeyword == ast.TemporaryNone {
				for _, tn := range s.Tables {
					if tracked(tn) {
						return true
					}
				}
			}
		case *ast.RenameTableStmt:
			for _, tt := range s.TableToTables {
				if tracked(tt.OldTable) || tracked(tt.NewTable) {
					return true
				}
			}
		case *ast.CreateDatabaseStmt:
			if f.trackedDB(s.Name.O) {
				return true
			}
		case *ast.AlterDatabaseStmt:
			db := s.Name.O
			if db == "" {
				db = defaultDB
			}
			if f.trackedDB(db) {
				return true
			}
		case *ast.DropDatabaseStmt:
			if f.trackedDB(s.Name.O) {
				return true
			}
		}
	}
	return false
}

package mysql

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// colDef is one column as the schema history records it. The JSON names
// follow the tableChanges of Debezium's schema history records.
type colDef struct {
	Name string `json:"name"`
	// TypeName is Debezium's column type name: the upper-case base type plus
	// " UNSIGNED"/" ZEROFILL", e.g. "INT UNSIGNED", "VARCHAR", "DATETIME".
	TypeName string `json:"typeName"`
	// TypeExpression is the type as the server writes it, e.g. "varchar(100)".
	TypeExpression string `json:"typeExpression"`
	// Charset of a character column ("" for binary and non-text columns).
	Charset         string   `json:"charsetName,omitempty"`
	Length          *int     `json:"length,omitempty"`
	Scale           *int     `json:"scale,omitempty"`
	Position        int      `json:"position"`
	Optional        bool     `json:"optional"`
	AutoIncremented bool     `json:"autoIncremented,omitempty"`
	Generated       bool     `json:"generated,omitempty"`
	EnumValues      []string `json:"enumValues,omitempty"`
	// HasDefault and DefaultExpr are Debezium's hasDefaultValue and
	// defaultValueExpression: the default as literal text (a string's
	// characters unquoted, a number's digits, a bit string's binary
	// digits). A default that is not a constant (CURRENT_TIMESTAMP, uuid(),
	// an expression) has HasDefault with no DefaultExpr; a NULL default
	// counts as none.
	HasDefault  bool    `json:"hasDefaultValue"` // always written, as Debezium does
	DefaultExpr *string `json:"defaultValueExpression,omitempty"`
}

// tableDef is a table's shape at one binlog position.
type tableDef struct {
	DB             string   `json:"-"`
	Name           string   `json:"-"`
	DefaultCharset string   `json:"defaultCharsetName,omitempty"`
	PK             []string `json:"primaryKeyColumnNames"`
	Columns        []colDef `json:"columns"`
}

func (t *tableDef) id() tableID { return tableID{t.DB, t.Name} }

func (t *tableDef) clone() *tableDef {
	c := *t
	c.PK = append([]string(nil), t.PK...)
	c.Columns = make([]colDef, len(t.Columns))
	for i, col := range t.Columns {
		col.EnumValues = append([]string(nil), col.EnumValues...)
		c.Columns[i] = col
	}
	return &c
}

// colIndex finds a column; MySQL column names are case-insensitive.
func (t *tableDef) colIndex(name string) int {
	for i := range t.Columns {
		if strings.EqualFold(t.Columns[i].Name, name) {
			return i
		}
	}
	return -1
}

func (t *tableDef) renumber() {
	for i := range t.Columns {
		t.Columns[i].Position = i + 1
	}
}

// tableID names a table; database and table names are case-sensitive on
// Linux (lower_case_table_names=0), which is what the binlog carries.
type tableID struct{ DB, Table string }

func (id tableID) String() string { return id.DB + "." + id.Table }

// catalog holds the shape of every tracked table at the current position.
type catalog struct {
	tables map[tableID]*tableDef
	// dbCharset is each database's default character set, for columns
	// created without one.
	dbCharset map[string]string
}

func newCatalog() *catalog {
	return &catalog{tables: map[tableID]*tableDef{}, dbCharset: map[string]string{}}
}

func (c *catalog) clone() *catalog {
	n := newCatalog()
	for k, v := range c.tables {
		n.tables[k] = v.clone()
	}
	for k, v := range c.dbCharset {
		n.dbCharset[k] = v
	}
	return n
}

func (c *catalog) sortedIDs() []tableID {
	ids := make([]tableID, 0, len(c.tables))
	for id := range c.tables {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].DB != ids[j].DB {
			return ids[i].DB < ids[j].DB
		}
		return ids[i].Table < ids[j].Table
	})
	return ids
}

// kind is how a column's values are decoded and represented.
type kind uint8

const (
	kUnknown kind = iota
	kTinyInt
	kSmallInt
	kMediumInt
	kInt
	kBigInt
	kDecimal
	kFloat
	kDouble
	kBit
	kString // CHAR, VARCHAR, *TEXT
	kBytes  // BINARY, VARBINARY, *BLOB
	kDate
	kTime
	kDateTime
	kTimestamp
	kYear
	kEnum
	kSet
	kJSON
	kGeometry
	kPoint
	kInet6
	kUUID
)

// baseType splits a TypeName into base name and the UNSIGNED/ZEROFILL flags.
func baseType(typeName string) (base string, unsigned bool) {
	f := strings.Fields(strings.ToUpper(typeName))
	if len(f) == 0 {
		return "", false
	}
	for _, w := range f[1:] {
		if w == "UNSIGNED" || w == "ZEROFILL" {
			unsigned = true
		}
	}
	return f[0], unsigned
}

func kindOf(typeName string) kind {
	base, _ := baseType(typeName)
	switch base {
	case "TINYINT", "INT1", "BOOL", "BOOLEAN":
		return kTinyInt
	case "SMALLINT", "INT2":
		return kSmallInt
	case "MEDIUMINT", "INT3", "MIDDLEINT":
		return kMediumInt
	case "INT", "INTEGER", "INT4":
		return kInt
	case "BIGINT", "INT8", "SERIAL":
		return kBigInt
	case "DECIMAL", "NUMERIC", "DEC", "FIXED":
		return kDecimal
	case "FLOAT":
		return kFloat
	case "DOUBLE", "REAL":
		return kDouble
	case "BIT":
		return kBit
	case "CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT":
		return kString
	case "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB":
		return kBytes
	case "DATE":
		return kDate
	case "TIME":
		return kTime
	case "DATETIME":
		return kDateTime
	case "TIMESTAMP":
		return kTimestamp
	case "YEAR":
		return kYear
	case "ENUM":
		return kEnum
	case "SET":
		return kSet
	case "JSON":
		return kJSON
	case "GEOMETRY", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON",
		"GEOMETRYCOLLECTION", "GEOMCOLLECTION":
		return kGeometry
	case "POINT":
		return kPoint
	case "INET6":
		return kInet6
	case "UUID":
		return kUUID
	}
	return kUnknown
}

func intp(v int) *int { return &v }

func (c *colDef) length() int {
	if c.Length == nil {
		return -1
	}
	return *c.Length
}

func (c *colDef) scale() int {
	if c.Scale == nil {
		return -1
	}
	return *c.Scale
}

// fsp is the fractional seconds precision of a temporal column.
func (c *colDef) fsp() int {
	if c.Length == nil || *c.Length < 0 {
		return 0
	}
	return *c.Length
}

func (c *colDef) String() string { return fmt.Sprintf("%s %s", c.Name, c.TypeExpression) }

// debeziumParams are the column.propagate.source.type parameters.
func (c *colDef) debeziumParams() map[string]string {
	p := map[string]string{"__debezium.source.column.type": strings.ToUpper(c.TypeName)}
	if c.Length != nil && *c.Length >= 0 {
		p["__debezium.source.column.length"] = strconv.Itoa(*c.Length)
	}
	if c.Scale != nil && *c.Scale >= 0 {
		p["__debezium.source.column.scale"] = strconv.Itoa(*c.Scale)
	}
	return p
}

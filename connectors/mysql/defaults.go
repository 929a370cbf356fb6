package mysql

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/tributary-cdc/tributary/source"
)

// Column defaults, as Debezium's BinlogDefaultValueConverter puts them in
// the value schema. The default comes from the DDL in the binlog (CREATE
// TABLE, ALTER TABLE ... ADD/MODIFY/CHANGE COLUMN ... DEFAULT, ALTER COLUMN
// SET/DROP DEFAULT, INSTANT adds included) and, at snapshot, from
// information_schema.COLUMNS.COLUMN_DEFAULT; both are kept in the schema
// history (Debezium's hasDefaultValue/defaultValueExpression), so a restart
// rebuilds the same schemas.
//
// Unlike Debezium, a default that is not a constant (CURRENT_TIMESTAMP,
// NOW(), uuid(), rand(), an expression) is not a schema default: Debezium
// writes the epoch (or nothing) there, which is not what the rows hold. A
// column added with such a default got values no change event carries, so
// the connector warns and asks for the table to be read again
// (source.RequestResnapshot). Binary column defaults are not carried
// either: information_schema shows them padded and not byte-exact.

// setDefault records the DEFAULT clause of a column definition.
func setDefault(c *colDef, e ast.ExprNode) {
	c.HasDefault, c.DefaultExpr = false, nil
	lit, null, constant := defaultLiteral(e)
	switch {
	case null:
	case !constant:
		c.HasDefault = true
	default:
		c.HasDefault, c.DefaultExpr = true, &lit
	}
}

// defaultLiteral reads a parsed DEFAULT expression.
func defaultLiteral(e ast.ExprNode) (lit string, null, constant bool) {
	switch x := e.(type) {
	case *test_driver.ValueExpr:
		d := &x.Datum
		switch d.Kind() {
		case test_driver.KindNull:
			return "", true, true
		case test_driver.KindBinaryLiteral, test_driver.KindMysqlBit:
			// b'101' and 0b101: the binary digits, which BIT columns read
			// (Debezium's convertToBits); x'41' and 0x41: the bytes.
			if isBitLiteral(x) {
				var u uint64
				for _, c := range d.GetBinaryLiteral() {
					u = u<<8 | uint64(c)
				}
				return strconv.FormatUint(u, 2), false, true
			}
			return d.GetBinaryLiteral().ToString(), false, true
		case test_driver.KindInt64:
			return strconv.FormatInt(d.GetInt64(), 10), false, true
		case test_driver.KindUint64:
			return strconv.FormatUint(d.GetUint64(), 10), false, true
		case test_driver.KindFloat32, test_driver.KindFloat64:
			return strconv.FormatFloat(d.GetFloat64(), 'g', -1, 64), false, true
		case test_driver.KindMysqlDecimal:
			return d.GetMysqlDecimal().String(), false, true
		case test_driver.KindString, test_driver.KindBytes:
			return d.GetString(), false, true
		}
		return "", false, false
	case *ast.UnaryOperationExpr:
		if x.Op == opcode.Minus || x.Op == opcode.Plus {
			if lit, null, constant := defaultLiteral(x.V); constant && !null && isNumberText(lit) {
				if x.Op == opcode.Minus {
					if strings.HasPrefix(lit, "-") {
						return lit[1:], false, true
					}
					return "-" + lit, false, true
				}
				return lit, false, true
			}
		}
	case *ast.FuncCallExpr:
		// TRUE and FALSE are literals to MySQL, functions to nobody.
	}
	return "", false, false
}

// isBitLiteral tells b'...' (a bit-value literal) from x'...' (hex).
func isBitLiteral(x *test_driver.ValueExpr) bool {
	var b strings.Builder
	x.Format(&b)
	return strings.HasPrefix(strings.ToLower(b.String()), "b'") || strings.HasPrefix(b.String(), "0b")
}

func isNumberText(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// infoSchemaDefault reads information_schema.COLUMNS.COLUMN_DEFAULT as
// MariaDB (10.2.7+) writes it: NULL (SQL NULL) for no default, "NULL" for
// DEFAULT NULL, a quoted string for a string or temporal literal (with ”
// and backslash escapes), bare digits for a number, b'101' for a bit
// value, and the expression text (current_timestamp(), uuid(), (1 + 2))
// for anything else.
func infoSchemaDefault(c *colDef, def *string) {
	c.HasDefault, c.DefaultExpr = false, nil
	if def == nil {
		return
	}
	v := strings.TrimSpace(*def)
	switch {
	case v == "NULL":
		return
	case strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2:
		s, ok := unquoteMariaDB(v[1 : len(v)-1])
		if ok {
			c.HasDefault, c.DefaultExpr = true, &s
			return
		}
	case (strings.HasPrefix(v, "b'") || strings.HasPrefix(v, "B'")) && strings.HasSuffix(v, "'"):
		s := strings.TrimLeft(v[2:len(v)-1], "0")
		c.HasDefault, c.DefaultExpr = true, &s
		return
	case isNumberText(v) && !strings.ContainsAny(v, "xXnN"):
		c.HasDefault, c.DefaultExpr = true, &v
		return
	}
	c.HasDefault = true // an expression
}

// unquoteMariaDB undoes the escaping of a quoted literal: ” and the
// backslash escapes of the MySQL string syntax.
func unquoteMariaDB(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			if i+1 >= len(s) || s[i+1] != '\'' {
				return "", false
			}
			b.WriteByte('\'')
			i++
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(26)
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

var errNoDefault = errors.New("no schema default")

// defaultValue is the column's default in its Go schema form, or nil with
// why it is not in the schema: reason "" when the column has none (or a
// NULL one, or a zero date, which an optional column reads as null, as in
// Debezium), else one of source.ReasonNonConstantDefault and
// source.ReasonDefaultNotCarried, with a detail for the log.
func (c *column) defaultValue() (v any, reason, detail string) {
	d := &c.def
	if !d.HasDefault {
		return nil, "", ""
	}
	if d.DefaultExpr == nil {
		return nil, source.ReasonNonConstantDefault, "the default is an expression or function"
	}
	lit := *d.DefaultExpr
	v, err := c.defaultFromLiteral(lit)
	switch {
	case errors.Is(err, errNoDefault):
		return nil, "", ""
	case err != nil:
		return nil, source.ReasonDefaultNotCarried, fmt.Sprintf("DEFAULT %q: %v", lit, err)
	}
	return v, "", ""
}

func (c *column) defaultFromLiteral(lit string) (any, error) {
	switch c.kind {
	case kTinyInt, kSmallInt, kMediumInt, kInt, kBigInt, kDecimal, kFloat, kDouble, kYear:
		lit = strings.TrimSpace(lit)
		// Debezium: a boolean literal is 1 or 0 in a number column.
		switch strings.ToLower(lit) {
		case "true":
			lit = "1"
		case "false":
			lit = "0"
		}
		if c.kind != kDecimal && c.kind != kFloat && c.kind != kDouble {
			if f, err := strconv.ParseFloat(lit, 64); err == nil && f == math.Trunc(f) && strings.ContainsAny(lit, ".eE") {
				lit = strconv.FormatFloat(f, 'f', -1, 64) // "1.0e1" in an INT column is 10
			}
		}
	case kBit:
		// Binary digits, as Debezium's convertToBits reads them.
		u, err := strconv.ParseUint(strings.TrimSpace(lit), 2, 64)
		if lit == "" {
			u, err = 0, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a bit string: %w", err)
		}
		if c.def.length() <= 1 {
			return u != 0, nil
		}
		return bitsFromUint(u, c.def.length()), nil
	case kDateTime, kTimestamp:
		lit = strings.TrimSpace(lit)
		if len(lit) == 10 {
			lit += " 00:00:00"
		}
	case kBytes:
		return nil, errors.New("binary defaults are not carried in the schema")
	case kGeometry, kPoint:
		return nil, errors.New("spatial defaults are not carried in the schema")
	}
	cc := *c
	cc.key = false // a zero date has no value: no default, as Debezium for an optional column
	v, err := cc.fromText(textValue{b: []byte(lit)})
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errNoDefault
	}
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil, errors.New("not a finite number")
	}
	return v, nil
}

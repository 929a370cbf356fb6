package postgres

// PostgreSQL -> Debezium (Kafka Connect) type mapping, following the
// Debezium PostgreSQL connector's default settings:
//
//	decimal.handling.mode=precise, time.precision.mode=adaptive,
//	interval.handling.mode=numeric, binary.handling.mode=bytes,
//	money.fraction.digits=2, column.propagate.source.type for every column.
//
// Decoders take the PostgreSQL *text* output of a value (pgoutput tuples and
// COPY ... TO STDOUT both carry it) and return the Go value that
// schema.Kind prescribes. The session that produces the text must use
// DateStyle=ISO, IntervalStyle=postgres (or iso_8601), bytea_output=hex (or
// escape) and lc_monetary=C, the PostgreSQL defaults; any TimeZone is fine.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unsafe"

	"github.com/jackc/pgx/v5"
	pgxtype "github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-cdc/tributary/schema"
)

// pgtypeDecoder turns one non-null value in PostgreSQL text format into the Go
// value of its column's Kind. It never retains text.
type pgtypeDecoder func(text []byte) (any, error)

// pgtypeCatalog answers questions about non-builtin types: enums, domains,
// extension types and arrays of them.
type pgtypeCatalog interface {
	TypeInfo(oid uint32) (pgtypeInfo, bool)
}

// pgtypeInfo is one pg_type row.
type pgtypeInfo struct {
	Name       string // pg_type.typname
	Type       byte   // pg_type.typtype: b, c, d, e, p, r, m
	ElemOID    uint32 // pg_type.typelem (arrays)
	BaseOID    uint32 // pg_type.typbasetype (domains)
	EnumLabels []string
	Category   byte // pg_type.typcategory ('A' for arrays)
	// BaseTypmod is pg_type.typtypmod: the length/precision a domain puts on
	// its base type (-1 when none). Debezium lets domain columns inherit it.
	BaseTypmod int32
}

// pgtypeMapCatalog is a pgtypeCatalog held in memory.
type pgtypeMapCatalog map[uint32]pgtypeInfo

func (c pgtypeMapCatalog) TypeInfo(oid uint32) (pgtypeInfo, bool) {
	ti, ok := c[oid]
	return ti, ok
}

// pgtypeLoadCatalog reads pg_type and pg_enum. Builtin types are known
// statically, but loading them too gives unknown builtins (xid, pg_lsn, ...)
// their real name in __debezium.source.column.type. Composite row types of
// tables are skipped: there is one per table and none can be mapped.
// Call it again when a relation references an OID the catalog does not know
// (a type created after start, or ALTER TYPE ... ADD VALUE on an enum).
// It uses the simple protocol so that it also works on a replication
// (replication=database) connection.
func pgtypeLoadCatalog(ctx context.Context, conn *pgx.Conn) (pgtypeCatalog, error) {
	const typesSQL = `SELECT t.oid, t.typname, t.typtype::text, t.typelem, t.typbasetype, t.typtypmod, t.typcategory::text
FROM pg_catalog.pg_type t
WHERE t.typtype <> 'c'
  AND NOT (t.typcategory = 'A' AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c'))`
	rows, err := conn.Query(ctx, typesSQL, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("postgres type catalog: query pg_type: %w", err)
	}
	cat := pgtypeMapCatalog{}
	for rows.Next() {
		var (
			oid, elem, base uint32
			name, typ, cat1 string
			typmod          int32
		)
		if err := rows.Scan(&oid, &name, &typ, &elem, &base, &typmod, &cat1); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres type catalog: scan pg_type row: %w", err)
		}
		ti := pgtypeInfo{Name: name, ElemOID: elem, BaseOID: base, BaseTypmod: typmod}
		if typ != "" {
			ti.Type = typ[0]
		}
		if cat1 != "" {
			ti.Category = cat1[0]
		}
		cat[oid] = ti
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres type catalog: read pg_type: %w", err)
	}

	rows, err = conn.Query(ctx, `SELECT enumtypid, enumlabel FROM pg_catalog.pg_enum ORDER BY enumtypid, enumsortorder`,
		pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("postgres type catalog: query pg_enum: %w", err)
	}
	for rows.Next() {
		var (
			oid   uint32
			label string
		)
		if err := rows.Scan(&oid, &label); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres type catalog: scan pg_enum row: %w", err)
		}
		ti := cat[oid]
		ti.EnumLabels = append(ti.EnumLabels, label)
		cat[oid] = ti
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres type catalog: read pg_enum: %w", err)
	}
	return cat, nil
}

// OIDs pgx does not name.
const (
	pgtypeMoneyOID         = 790
	pgtypeMoneyArrayOID    = 791
	pgtypeMacaddr8ArrayOID = 775
	pgtypeRefcursorOID     = 1790
	pgtypeRefcursorArrOID  = 2201
)

// Debezium semantic names the schema package does not define.
const (
	pgtypeDbzTsvector = "io.debezium.data.Tsvector" // sic: lower-case v, as Debezium's TsVector.LOGICAL_NAME
	pgtypeDbzLtree    = "io.debezium.data.Ltree"
)

// pgtypeUnknownLength is pgjdbc's default unknownLength (Integer.MAX_VALUE),
// which Debezium reports as the length of unbounded types.
const pgtypeUnknownLength = math.MaxInt32

// pgColumnType is a column's type as Debezium describes it in the
// __debezium.source.column.* parameters.
type pgColumnType struct {
	OID    uint32 // declared type; a domain stays the domain
	Typmod int32  // declared typmod (pg_attribute.atttypmod)
	Name   string // pg_type.typname of OID ("int4", "_varchar", "mood")
	// Root is OID with domains unwrapped; RootTypmod the typmod that applies
	// to it (a domain's own typmod when the column declares none).
	Root       uint32
	RootTypmod int32
	Length     int32 // __debezium.source.column.length
	Scale      int32 // __debezium.source.column.scale
}

func (c pgColumnType) params() map[string]string {
	return map[string]string{
		schema.SourceColumnTypeParam:   strings.ToUpper(c.Name),
		schema.SourceColumnLengthParam: strconv.Itoa(int(c.Length)),
		schema.SourceColumnScaleParam:  strconv.Itoa(int(c.Scale)),
	}
}

// pgtypeLookup maps a column of type oid with modifier typmod (as in a
// pgoutput Relation message or pg_attribute) to its Connect schema and value
// decoder. known is false when the type has no Debezium mapping: the column is
// then a plain string carrying PostgreSQL's text form, and the caller should
// log a warning once for it. The returned Type's Params are freshly allocated.
func pgtypeLookup(oid uint32, typmod int32, info pgtypeCatalog) (schema.Type, pgtypeDecoder, bool) {
	ct := pgtypeResolve(oid, typmod, info)
	t, dec, known := pgtypeBuild(ct.Root, ct.RootTypmod, info, 0)
	if !known {
		t, dec = schema.Type{Kind: schema.String}, pgtypeDecodeText
	}
	p := ct.params()
	for k, v := range t.Params {
		p[k] = v
	}
	t.Params = p
	return t, dec, known
}

// pgtypeResolve names the type, unwraps domains and computes Debezium's
// length and scale: pgjdbc's TypeInfoCache.getPrecision/getScale of the
// declared type and typmod, or the type's defaults when typmod is -1
// (io.debezium.connector.postgresql.connection.pgoutput.ColumnMetaData).
func pgtypeResolve(oid uint32, typmod int32, info pgtypeCatalog) pgColumnType {
	ct := pgColumnType{OID: oid, Typmod: typmod, Name: pgtypeName(oid, info), Root: oid, RootTypmod: typmod}
	for depth := 0; depth < 16; depth++ {
		ti, ok := pgtypeCatalogInfo(info, ct.Root)
		if !ok || ti.Type != 'd' || ti.BaseOID == 0 {
			break
		}
		if ct.RootTypmod == -1 {
			ct.RootTypmod = ti.BaseTypmod
		}
		ct.Root = ti.BaseOID
	}
	if typmod != -1 {
		ct.Length = pgtypeJDBCPrecision(oid, typmod)
		ct.Scale = pgtypeJDBCScale(oid, typmod)
	} else {
		ct.Length, ct.Scale = pgtypeDefaultLengthScale(oid, info, 0)
	}
	return ct
}

// pgtypeDefaultLengthScale is Debezium's PostgresType.getDefaultLength and
// getDefaultScale: a domain inherits its base type's, adjusted by its own
// typmod.
func pgtypeDefaultLengthScale(oid uint32, info pgtypeCatalog, depth int) (int32, int32) {
	if ti, ok := pgtypeCatalogInfo(info, oid); ok && ti.Type == 'd' && ti.BaseOID != 0 && depth < 16 {
		if ti.BaseTypmod == -1 {
			return pgtypeDefaultLengthScale(ti.BaseOID, info, depth+1)
		}
		size := pgtypeJDBCPrecision(ti.BaseOID, ti.BaseTypmod)
		if size == 0 {
			size = pgtypeJDBCDisplaySize(ti.BaseOID, ti.BaseTypmod)
		}
		if size == 0 || size == pgtypeUnknownLength {
			size = pgtypeJDBCPrecision(oid, -1)
		}
		return size, pgtypeJDBCScale(ti.BaseOID, ti.BaseTypmod)
	}
	size := pgtypeJDBCPrecision(oid, -1)
	if size == 0 {
		size = pgtypeJDBCDisplaySize(oid, -1)
	}
	return size, pgtypeJDBCScale(oid, -1)
}

func pgtypeCatalogInfo(info pgtypeCatalog, oid uint32) (pgtypeInfo, bool) {
	if info == nil {
		return pgtypeInfo{}, false
	}
	return info.TypeInfo(oid)
}

// pgtypeName is pg_type.typname, which Debezium upper-cases into
// __debezium.source.column.type ("INT4", "_TEXT", "BPCHAR", "MOOD").
func pgtypeName(oid uint32, info pgtypeCatalog) string {
	if n := pgtypeBuiltinName(oid); n != "" {
		return n
	}
	if ti, ok := pgtypeCatalogInfo(info, oid); ok && ti.Name != "" {
		return ti.Name
	}
	return "unknown"
}

func pgtypeBuiltinName(oid uint32) string {
	switch oid {
	case pgxtype.BoolOID:
		return "bool"
	case pgxtype.ByteaOID:
		return "bytea"
	case pgxtype.QCharOID:
		return "char"
	case pgxtype.NameOID:
		return "name"
	case pgxtype.Int8OID:
		return "int8"
	case pgxtype.Int2OID:
		return "int2"
	case pgxtype.Int4OID:
		return "int4"
	case pgxtype.TextOID:
		return "text"
	case pgxtype.OIDOID:
		return "oid"
	case pgxtype.JSONOID:
		return "json"
	case pgxtype.XMLOID:
		return "xml"
	case pgxtype.PointOID:
		return "point"
	case pgxtype.CIDROID:
		return "cidr"
	case pgxtype.Float4OID:
		return "float4"
	case pgxtype.Float8OID:
		return "float8"
	case pgxtype.Macaddr8OID:
		return "macaddr8"
	case pgtypeMoneyOID:
		return "money"
	case pgxtype.MacaddrOID:
		return "macaddr"
	case pgxtype.InetOID:
		return "inet"
	case pgxtype.BPCharOID:
		return "bpchar"
	case pgxtype.VarcharOID:
		return "varchar"
	case pgxtype.DateOID:
		return "date"
	case pgxtype.TimeOID:
		return "time"
	case pgxtype.TimestampOID:
		return "timestamp"
	case pgxtype.TimestamptzOID:
		return "timestamptz"
	case pgxtype.IntervalOID:
		return "interval"
	case pgxtype.TimetzOID:
		return "timetz"
	case pgxtype.BitOID:
		return "bit"
	case pgxtype.VarbitOID:
		return "varbit"
	case pgxtype.NumericOID:
		return "numeric"
	case pgxtype.UUIDOID:
		return "uuid"
	case pgxtype.TSVectorOID:
		return "tsvector"
	case pgxtype.JSONBOID:
		return "jsonb"
	case pgxtype.Int4rangeOID:
		return "int4range"
	case pgxtype.NumrangeOID:
		return "numrange"
	case pgxtype.TsrangeOID:
		return "tsrange"
	case pgxtype.TstzrangeOID:
		return "tstzrange"
	case pgxtype.DaterangeOID:
		return "daterange"
	case pgxtype.Int8rangeOID:
		return "int8range"
	}
	if elem := pgtypeBuiltinArrayElem(oid); elem != 0 {
		return "_" + pgtypeBuiltinName(elem)
	}
	return ""
}

// pgtypeBuiltinArrayElem returns the element OID of a builtin array type
// whose element is mapped, 0 otherwise.
func pgtypeBuiltinArrayElem(oid uint32) uint32 {
	switch oid {
	case pgxtype.BoolArrayOID:
		return pgxtype.BoolOID
	case pgxtype.ByteaArrayOID:
		return pgxtype.ByteaOID
	case pgxtype.QCharArrayOID:
		return pgxtype.QCharOID
	case pgxtype.NameArrayOID:
		return pgxtype.NameOID
	case pgxtype.Int2ArrayOID:
		return pgxtype.Int2OID
	case pgxtype.Int4ArrayOID:
		return pgxtype.Int4OID
	case pgxtype.TextArrayOID:
		return pgxtype.TextOID
	case pgxtype.BPCharArrayOID:
		return pgxtype.BPCharOID
	case pgxtype.VarcharArrayOID:
		return pgxtype.VarcharOID
	case pgxtype.Int8ArrayOID:
		return pgxtype.Int8OID
	case pgxtype.PointArrayOID:
		return pgxtype.PointOID
	case pgxtype.Float4ArrayOID:
		return pgxtype.Float4OID
	case pgxtype.Float8ArrayOID:
		return pgxtype.Float8OID
	case pgxtype.OIDArrayOID:
		return pgxtype.OIDOID
	case pgxtype.MacaddrArrayOID:
		return pgxtype.MacaddrOID
	case pgtypeMacaddr8ArrayOID:
		return pgxtype.Macaddr8OID
	case pgxtype.InetArrayOID:
		return pgxtype.InetOID
	case pgxtype.CIDRArrayOID:
		return pgxtype.CIDROID
	case pgxtype.JSONArrayOID:
		return pgxtype.JSONOID
	case pgxtype.JSONBArrayOID:
		return pgxtype.JSONBOID
	case pgxtype.XMLArrayOID:
		return pgxtype.XMLOID
	case pgtypeMoneyArrayOID:
		return pgtypeMoneyOID
	case pgxtype.DateArrayOID:
		return pgxtype.DateOID
	case pgxtype.TimeArrayOID:
		return pgxtype.TimeOID
	case pgxtype.TimestampArrayOID:
		return pgxtype.TimestampOID
	case pgxtype.TimestamptzArrayOID:
		return pgxtype.TimestamptzOID
	case pgxtype.IntervalArrayOID:
		return pgxtype.IntervalOID
	case pgxtype.TimetzArrayOID:
		return pgxtype.TimetzOID
	case pgxtype.BitArrayOID:
		return pgxtype.BitOID
	case pgxtype.VarbitArrayOID:
		return pgxtype.VarbitOID
	case pgxtype.NumericArrayOID:
		return pgxtype.NumericOID
	case pgxtype.UUIDArrayOID:
		return pgxtype.UUIDOID
	case pgxtype.TSVectorArrayOID:
		return pgxtype.TSVectorOID
	case pgxtype.Int4rangeArrayOID:
		return pgxtype.Int4rangeOID
	case pgxtype.NumrangeArrayOID:
		return pgxtype.NumrangeOID
	case pgxtype.TsrangeArrayOID:
		return pgxtype.TsrangeOID
	case pgxtype.TstzrangeArrayOID:
		return pgxtype.TstzrangeOID
	case pgxtype.DaterangeArrayOID:
		return pgxtype.DaterangeOID
	case pgxtype.Int8rangeArrayOID:
		return pgxtype.Int8rangeOID
	}
	return 0
}

// pgtypeJDBCBase is pgjdbc's TypeInfoCache.convertArrayToBaseOid: only the
// driver's core array types resolve to their element, every other array keeps
// its own OID (and so gets the default length).
func pgtypeJDBCBase(oid uint32) uint32 {
	switch oid {
	case pgxtype.Int2ArrayOID, pgxtype.Int4ArrayOID, pgxtype.OIDArrayOID, pgxtype.Int8ArrayOID,
		pgtypeMoneyArrayOID, pgxtype.NumericArrayOID, pgxtype.Float4ArrayOID, pgxtype.Float8ArrayOID,
		pgxtype.QCharArrayOID, pgxtype.BPCharArrayOID, pgxtype.VarcharArrayOID, pgxtype.TextArrayOID,
		pgxtype.NameArrayOID, pgxtype.ByteaArrayOID, pgxtype.BoolArrayOID, pgxtype.BitArrayOID,
		pgxtype.DateArrayOID, pgxtype.TimeArrayOID, pgxtype.TimetzArrayOID, pgxtype.TimestampArrayOID,
		pgxtype.TimestamptzArrayOID, pgxtype.JSONArrayOID, pgxtype.PointArrayOID:
		return pgtypeBuiltinArrayElem(oid)
	case pgtypeRefcursorArrOID:
		return pgtypeRefcursorOID
	}
	return oid
}

// pgtypeJDBCPrecision is pgjdbc's TypeInfoCache.getPrecision.
func pgtypeJDBCPrecision(oid uint32, typmod int32) int32 {
	switch pgtypeJDBCBase(oid) {
	case pgxtype.Int2OID:
		return 5
	case pgxtype.OIDOID, pgxtype.Int4OID:
		return 10
	case pgxtype.Int8OID:
		return 19
	case pgxtype.Float4OID:
		return 8
	case pgxtype.Float8OID:
		return 17
	case pgxtype.NumericOID:
		if typmod == -1 {
			return 0
		}
		return int32(uint32(typmod-4)&0xFFFF0000) >> 16
	case pgxtype.QCharOID, pgxtype.BoolOID:
		return 1
	case pgxtype.BPCharOID, pgxtype.VarcharOID:
		if typmod == -1 {
			return pgtypeUnknownLength
		}
		return typmod - 4
	case pgxtype.DateOID, pgxtype.TimeOID, pgxtype.TimetzOID, pgxtype.IntervalOID,
		pgxtype.TimestampOID, pgxtype.TimestamptzOID:
		return pgtypeJDBCDisplaySize(oid, typmod)
	case pgxtype.BitOID:
		return typmod
	case pgxtype.VarbitOID:
		if typmod == -1 {
			return pgtypeUnknownLength
		}
		return typmod
	}
	return pgtypeUnknownLength
}

// pgtypeJDBCScale is pgjdbc's TypeInfoCache.getScale.
func pgtypeJDBCScale(oid uint32, typmod int32) int32 {
	switch pgtypeJDBCBase(oid) {
	case pgxtype.Float4OID:
		return 8
	case pgxtype.Float8OID:
		return 17
	case pgxtype.NumericOID:
		if typmod == -1 {
			return 0
		}
		return (typmod - 4) & 0xFFFF
	case pgxtype.TimeOID, pgxtype.TimetzOID, pgxtype.TimestampOID, pgxtype.TimestamptzOID:
		if typmod == -1 {
			return 6
		}
		return typmod
	case pgxtype.IntervalOID:
		if typmod == -1 {
			return 6
		}
		return typmod & 0xFFFF
	}
	return 0
}

// pgtypeJDBCDisplaySize is pgjdbc's TypeInfoCache.getDisplaySize.
func pgtypeJDBCDisplaySize(oid uint32, typmod int32) int32 {
	base := pgtypeJDBCBase(oid)
	switch base {
	case pgxtype.Int2OID:
		return 6
	case pgxtype.Int4OID:
		return 11
	case pgxtype.OIDOID:
		return 10
	case pgxtype.Int8OID:
		return 20
	case pgxtype.Float4OID:
		return 15
	case pgxtype.Float8OID:
		return 25
	case pgxtype.QCharOID, pgxtype.BoolOID:
		return 1
	case pgxtype.DateOID:
		return 13
	case pgxtype.TimeOID, pgxtype.TimetzOID, pgxtype.TimestampOID, pgxtype.TimestamptzOID:
		var secondSize int32
		switch typmod {
		case -1:
			secondSize = 7
		case 0:
			secondSize = 0
		case 1:
			secondSize = 3
		default:
			secondSize = typmod + 1
		}
		switch base {
		case pgxtype.TimeOID:
			return 8 + secondSize
		case pgxtype.TimetzOID:
			return 8 + secondSize + 6
		case pgxtype.TimestampOID:
			return 13 + 1 + 8 + secondSize
		default:
			return 13 + 1 + 8 + secondSize + 6
		}
	case pgxtype.IntervalOID:
		return 49
	case pgxtype.VarcharOID, pgxtype.BPCharOID:
		if typmod == -1 {
			return pgtypeUnknownLength
		}
		return typmod - 4
	case pgxtype.NumericOID:
		if typmod == -1 {
			return 131089
		}
		p := ((typmod - 4) >> 16) & 0xFFFF
		s := (typmod - 4) & 0xFFFF
		if s != 0 {
			return 1 + p + 1
		}
		return 1 + p
	case pgxtype.BitOID:
		return typmod
	case pgxtype.VarbitOID:
		if typmod == -1 {
			return pgtypeUnknownLength
		}
		return typmod
	}
	return pgtypeUnknownLength
}

// pgtypeTimePrecision is Debezium's getTimePrecision for PostgreSQL: the
// column scale, i.e. the declared fractional digits or 6.
func pgtypeTimePrecision(typmod int32) int32 {
	if typmod < 0 {
		return 6
	}
	return typmod
}

// pgtypeNumericTypmod splits a numeric typmod into precision and scale.
// Since PostgreSQL 15 the scale is an 11-bit signed field.
func pgtypeNumericTypmod(typmod int32) (precision, scale int32) {
	v := typmod - 4
	precision = (v >> 16) & 0xFFFF
	scale = v & 0x7FF
	if scale&0x400 != 0 {
		scale -= 0x800
	}
	return precision, scale
}

func pgtypeNamed(kind schema.Kind, name string) schema.Type {
	return schema.Type{Kind: kind, Name: name, Version: 1}
}

// pgtypeBuild maps a root (non-domain) type. Arrays recurse on their element.
func pgtypeBuild(oid uint32, typmod int32, info pgtypeCatalog, depth int) (schema.Type, pgtypeDecoder, bool) {
	switch oid {
	case pgxtype.BoolOID:
		return schema.Type{Kind: schema.Boolean}, pgtypeDecodeBool, true
	case pgxtype.Int2OID:
		return schema.Type{Kind: schema.Int16}, pgtypeDecodeInt16, true
	case pgxtype.Int4OID:
		return schema.Type{Kind: schema.Int32}, pgtypeDecodeInt32, true
	case pgxtype.Int8OID, pgxtype.OIDOID:
		return schema.Type{Kind: schema.Int64}, pgtypeDecodeInt64, true
	case pgxtype.Float4OID:
		return schema.Type{Kind: schema.Float32}, pgtypeDecodeFloat32, true
	case pgxtype.Float8OID:
		return schema.Type{Kind: schema.Float64}, pgtypeDecodeFloat64, true
	case pgxtype.NumericOID:
		if typmod < 0 {
			return schema.VariableScaleDecimalType(), pgtypeDecodeVariableScale, true
		}
		p, s := pgtypeNumericTypmod(typmod)
		if s < 0 {
			// Avro decimals cannot have a negative scale; the values are integers.
			s = 0
		}
		return schema.DecimalType(int(p), int(s)), pgtypeDecimalDecoder(s, false), true
	case pgtypeMoneyOID:
		// money.fraction.digits=2; Debezium sets no precision on it.
		return schema.DecimalType(0, 2), pgtypeDecimalDecoder(2, true), true
	case pgxtype.TextOID, pgxtype.VarcharOID, pgxtype.BPCharOID, pgxtype.NameOID, pgxtype.QCharOID,
		pgxtype.InetOID, pgxtype.CIDROID, pgxtype.MacaddrOID, pgxtype.Macaddr8OID,
		pgxtype.Int4rangeOID, pgxtype.Int8rangeOID, pgxtype.NumrangeOID,
		pgxtype.TsrangeOID, pgxtype.TstzrangeOID, pgxtype.DaterangeOID:
		return schema.Type{Kind: schema.String}, pgtypeDecodeText, true
	case pgxtype.JSONOID, pgxtype.JSONBOID:
		return pgtypeNamed(schema.String, schema.JSONName), pgtypeDecodeText, true
	case pgxtype.XMLOID:
		return pgtypeNamed(schema.String, schema.XMLName), pgtypeDecodeText, true
	case pgxtype.UUIDOID:
		return pgtypeNamed(schema.String, schema.UUIDName), pgtypeDecodeText, true
	case pgxtype.TSVectorOID:
		return pgtypeNamed(schema.String, pgtypeDbzTsvector), pgtypeDecodeText, true
	case pgxtype.ByteaOID:
		return schema.Type{Kind: schema.Bytes}, pgtypeDecodeBytea, true
	case pgxtype.BitOID, pgxtype.VarbitOID:
		// Debezium: length > 1 -> Bits, else boolean. An unbounded varbit
		// has pgjdbc's unknown length, 2^31-1.
		n := pgtypeJDBCPrecision(oid, typmod)
		if n <= 1 {
			return schema.Type{Kind: schema.Boolean}, pgtypeDecodeBit1, true
		}
		t := pgtypeNamed(schema.Bytes, schema.BitsName)
		t.Params = map[string]string{schema.BitsLengthParam: strconv.Itoa(int(n))}
		return t, pgtypeDecodeBits, true
	case pgxtype.DateOID:
		return pgtypeNamed(schema.Int32, schema.DateName), pgtypeDecodeDate, true
	case pgxtype.TimeOID:
		if pgtypeTimePrecision(typmod) <= 3 {
			return pgtypeNamed(schema.Int32, schema.TimeName), pgtypeDecodeTimeMillis, true
		}
		return pgtypeNamed(schema.Int64, schema.MicroTimeName), pgtypeDecodeTimeMicros, true
	case pgxtype.TimetzOID:
		return pgtypeNamed(schema.String, schema.ZonedTimeName), pgtypeDecodeTimetz, true
	case pgxtype.TimestampOID:
		if pgtypeTimePrecision(typmod) <= 3 {
			return pgtypeNamed(schema.Int64, schema.TimestampName), pgtypeDecodeTimestampMillis, true
		}
		return pgtypeNamed(schema.Int64, schema.MicroTimestampName), pgtypeDecodeTimestampMicros, true
	case pgxtype.TimestamptzOID:
		return pgtypeNamed(schema.String, schema.ZonedTimestampName), pgtypeTimestamptzDecoder(int(pgtypeTimePrecision(typmod))), true
	case pgxtype.IntervalOID:
		return pgtypeNamed(schema.Int64, schema.MicroDurationName), pgtypeDecodeInterval, true
	case pgxtype.PointOID:
		return pgtypePointType(), pgtypeDecodePoint, true
	}
	if elem := pgtypeBuiltinArrayElem(oid); elem != 0 {
		return pgtypeArrayOf(elem, typmod, info, depth)
	}

	ti, ok := pgtypeCatalogInfo(info, oid)
	if !ok || depth > 8 {
		return schema.Type{}, nil, false
	}
	switch {
	case ti.Type == 'd' && ti.BaseOID != 0:
		if typmod == -1 {
			typmod = ti.BaseTypmod
		}
		return pgtypeBuild(ti.BaseOID, typmod, info, depth+1)
	case ti.Type == 'e':
		return schema.EnumType(ti.EnumLabels), pgtypeEnumDecoder(ti.EnumLabels), true
	case ti.Category == 'A' && ti.ElemOID != 0:
		return pgtypeArrayOf(ti.ElemOID, typmod, info, depth)
	case ti.Type == 'b' && ti.Name == "citext":
		return schema.Type{Kind: schema.String}, pgtypeDecodeText, true
	case ti.Type == 'b' && ti.Name == "ltree":
		return pgtypeNamed(schema.String, pgtypeDbzLtree), pgtypeDecodeText, true
	case ti.Type == 'b' && ti.Name == "geometry":
		// PostGIS, as Debezium's PostgresValueConverter maps it.
		return schema.GeometryType(), pgtypeDecodeEWKB, true
	case ti.Type == 'b' && ti.Name == "geography":
		return schema.GeographyType(), pgtypeDecodeEWKB, true
	}
	return schema.Type{}, nil, false
}

func pgtypeArrayOf(elem uint32, typmod int32, info pgtypeCatalog, depth int) (schema.Type, pgtypeDecoder, bool) {
	et, edec, ok := pgtypeBuild(elem, typmod, info, depth+1)
	if !ok {
		return schema.Type{}, nil, false
	}
	// Debezium's PostgreSQL array elements are optional schemas.
	return schema.Type{Kind: schema.Array, Items: &et, ItemsOptional: true}, pgtypeArrayDecoder(edec), true
}

func pgtypePointType() schema.Type { return schema.PointType() }

// ---- scalar decoders ----

func pgtypeDecodeText(b []byte) (any, error) { return string(b), nil }

func pgtypeDecodeBool(b []byte) (any, error) {
	if len(b) == 1 {
		switch b[0] {
		case 't':
			return true, nil
		case 'f':
			return false, nil
		}
	}
	return nil, fmt.Errorf("invalid boolean %q", b)
}

// pgtypeParseInt parses a base-10 signed integer that fits in bits.
func pgtypeParseInt(b []byte, bits uint) (int64, error) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	if i == len(b) {
		return 0, fmt.Errorf("invalid integer %q", b)
	}
	limit := uint64(1) << (bits - 1) // magnitude of the minimum
	var n uint64
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, fmt.Errorf("invalid integer %q", b)
		}
		n = n*10 + uint64(c)
		if n > limit {
			return 0, fmt.Errorf("integer %q out of range for %d bits", b, bits)
		}
	}
	if neg {
		return -int64(n), nil
	}
	if n == limit {
		return 0, fmt.Errorf("integer %q out of range for %d bits", b, bits)
	}
	return int64(n), nil
}

func pgtypeDecodeInt16(b []byte) (any, error) {
	n, err := pgtypeParseInt(b, 16)
	if err != nil {
		return nil, err
	}
	return int32(n), nil
}

func pgtypeDecodeInt32(b []byte) (any, error) {
	n, err := pgtypeParseInt(b, 32)
	if err != nil {
		return nil, err
	}
	return int32(n), nil
}

func pgtypeDecodeInt64(b []byte) (any, error) {
	n, err := pgtypeParseInt(b, 64)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// pgtypeParseFloat avoids copying b: on error the strconv error, which holds
// the unsafe string, is dropped and a fresh message is built.
func pgtypeParseFloat(b []byte, bits int) (float64, error) {
	if len(b) == 0 {
		return 0, errors.New("invalid floating point value \"\"")
	}
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), bits)
	if err != nil {
		return 0, fmt.Errorf("invalid floating point value %q", b)
	}
	return f, nil
}

func pgtypeDecodeFloat32(b []byte) (any, error) {
	f, err := pgtypeParseFloat(b, 32)
	if err != nil {
		return nil, err
	}
	return float32(f), nil
}

func pgtypeDecodeFloat64(b []byte) (any, error) {
	f, err := pgtypeParseFloat(b, 64)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ---- numeric / money ----

// errSpecialNumeric is returned for NaN and ±Infinity, which
// Debezium's precise decimal mode cannot represent either (it fails the
// connector with "Got a special value (NaN/Infinity) for Decimal type").
var errSpecialNumeric = errors.New("numeric special value cannot be represented as a Debezium decimal (decimal.handling.mode=precise); Debezium needs decimal.handling.mode=string or double for it")

// pgtypeNumericParts splits a numeric text into sign, integer digits and
// fraction digits. money text ("-$1,234.56", "($1.00)") is accepted when
// money is set: currency symbols, spaces and group separators are skipped.
func pgtypeNumericParts(b []byte, money bool) (neg bool, intPart, frac []byte, err error) {
	switch string(b) {
	case "NaN", "Infinity", "-Infinity":
		return false, nil, nil, fmt.Errorf("%w: %q", errSpecialNumeric, b)
	}
	if !money {
		i := 0
		if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
			neg = b[0] == '-'
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		intPart = b[start:i]
		if i < len(b) && b[i] == '.' {
			i++
			fs := i
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
			frac = b[fs:i]
		}
		if i != len(b) || len(intPart)+len(frac) == 0 {
			return false, nil, nil, fmt.Errorf("invalid numeric %q", b)
		}
		return neg, intPart, frac, nil
	}
	// money: digits may be interleaved with separators, so collect them.
	var ib, fb []byte
	seenDot, digits := false, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
			if seenDot {
				fb = append(fb, c)
			} else {
				ib = append(ib, c)
			}
		case c == '.':
			if seenDot {
				return false, nil, nil, fmt.Errorf("invalid money %q", b)
			}
			seenDot = true
		case c == '-' || c == '(':
			neg = true
		}
	}
	if digits == 0 {
		return false, nil, nil, fmt.Errorf("invalid money %q", b)
	}
	return neg, ib, fb, nil
}

// pgtypeUnscaled builds the unscaled integer of intPart.frac at the given
// scale. Extra fraction digits must be zero unless round is set (HALF_UP,
// as Debezium does for money).
func pgtypeUnscaled(neg bool, intPart, frac []byte, scale int32, round bool, src []byte) ([]byte, error) {
	// digits = intPart + frac[:scale] padded with zeros.
	ndig := len(intPart) + int(scale)
	var small [40]byte
	var digits []byte
	if ndig <= len(small) {
		digits = small[:0]
	} else {
		digits = make([]byte, 0, ndig)
	}
	digits = append(digits, intPart...)
	roundUp := false
	if len(frac) >= int(scale) {
		digits = append(digits, frac[:scale]...)
		rest := frac[scale:]
		if round {
			roundUp = len(rest) > 0 && rest[0] >= '5' // HALF_UP on the magnitude
		} else {
			for _, c := range rest {
				if c != '0' {
					return nil, fmt.Errorf("numeric %q has more than %d fraction digits", src, scale)
				}
			}
		}
	} else {
		digits = append(digits, frac...)
		for i := len(frac); i < int(scale); i++ {
			digits = append(digits, '0')
		}
	}
	// Strip leading zeros so the fast path sees the real size.
	k := 0
	for k < len(digits)-1 && digits[k] == '0' {
		k++
	}
	digits = digits[k:]
	if len(digits) == 0 {
		digits = append(digits, '0')
	}
	if len(digits) <= 18 {
		var v int64
		for _, c := range digits {
			v = v*10 + int64(c-'0')
		}
		if roundUp {
			v++
		}
		if neg {
			v = -v
		}
		return pgtypeTwosComplement64(v), nil
	}
	x, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return nil, fmt.Errorf("invalid numeric %q", src)
	}
	if roundUp {
		x.Add(x, big.NewInt(1))
	}
	if neg {
		x.Neg(x)
	}
	return pgtypeTwosComplementBig(x), nil
}

// pgtypeTwosComplement64 is Java's BigInteger.valueOf(v).toByteArray():
// the shortest big-endian two's complement form.
func pgtypeTwosComplement64(v int64) []byte {
	n := 1
	for n < 8 {
		lim := int64(1) << (8*n - 1)
		if v >= -lim && v < lim {
			break
		}
		n++
	}
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

// pgtypeTwosComplementBig is BigInteger.toByteArray() for any size.
func pgtypeTwosComplementBig(x *big.Int) []byte {
	switch x.Sign() {
	case 0:
		return []byte{0}
	case 1:
		b := x.Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -x-1 has the same bytes as x's two's complement, inverted.
	m := new(big.Int).Neg(x)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	for i := range b {
		b[i] = ^b[i]
	}
	if len(b) == 0 || b[0]&0x80 == 0 {
		b = append([]byte{0xFF}, b...)
	}
	return b
}

func pgtypeDecimalDecoder(scale int32, money bool) pgtypeDecoder {
	return func(b []byte) (any, error) {
		neg, ip, fp, err := pgtypeNumericParts(b, money)
		if err != nil {
			return nil, err
		}
		out, err := pgtypeUnscaled(neg, ip, fp, scale, money, b)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
}

// pgtypeDecodeVariableScale is io.debezium.data.VariableScaleDecimal: the
// value with trailing fraction zeros stripped (BigDecimal.stripTrailingZeros,
// scale never below 0) and that scale.
func pgtypeDecodeVariableScale(b []byte) (any, error) {
	neg, ip, fp, err := pgtypeNumericParts(b, false)
	if err != nil {
		return nil, err
	}
	for len(fp) > 0 && fp[len(fp)-1] == '0' {
		fp = fp[:len(fp)-1]
	}
	scale := int32(len(fp))
	v, err := pgtypeUnscaled(neg, ip, fp, scale, false, b)
	if err != nil {
		return nil, err
	}
	return []any{scale, v}, nil
}

// ---- bytea, bits, point ----

func pgtypeHexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func pgtypeDecodeBytea(b []byte) (any, error) {
	if len(b) >= 2 && b[0] == '\\' && b[1] == 'x' {
		h := b[2:]
		if len(h)%2 != 0 {
			return nil, fmt.Errorf("invalid bytea hex: odd length %d", len(h))
		}
		out := make([]byte, len(h)/2)
		for i := range out {
			hi, ok1 := pgtypeHexVal(h[2*i])
			lo, ok2 := pgtypeHexVal(h[2*i+1])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("invalid bytea hex digit at offset %d", 2+2*i)
			}
			out[i] = hi<<4 | lo
		}
		return out, nil
	}
	// bytea_output=escape: printable bytes as is, \\ and \ooo octal.
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 < len(b) && b[i+1] == '\\' {
			out = append(out, '\\')
			i++
			continue
		}
		if i+3 < len(b) && pgtypeIsOctal(b[i+1]) && pgtypeIsOctal(b[i+2]) && pgtypeIsOctal(b[i+3]) {
			out = append(out, (b[i+1]-'0')<<6|(b[i+2]-'0')<<3|(b[i+3]-'0'))
			i += 3
			continue
		}
		return nil, fmt.Errorf("invalid bytea escape at offset %d", i)
	}
	return out, nil
}

func pgtypeIsOctal(c byte) bool { return c >= '0' && c <= '7' }

func pgtypeDecodeBit1(b []byte) (any, error) {
	// Debezium parses the bit string as a binary integer: any 1 is true.
	if len(b) == 0 {
		return nil, errors.New("invalid bit string \"\"")
	}
	v := false
	for _, c := range b {
		switch c {
		case '1':
			v = true
		case '0':
		default:
			return nil, fmt.Errorf("invalid bit string %q", b)
		}
	}
	return v, nil
}

// pgtypeDecodeBits is Debezium's io.debezium.data.Bits encoding: the
// rightmost character is bit 0, the bits are packed into a java.util.BitSet
// and emitted as BitSet.toByteArray(): little-endian bytes, just long
// enough for the highest set bit (no bytes at all when every bit is 0).
func pgtypeDecodeBits(b []byte) (any, error) {
	n := len(b)
	high := -1
	for i := 0; i < n; i++ {
		switch b[i] {
		case '1':
			if high < 0 {
				high = n - 1 - i
			}
		case '0':
		default:
			return nil, fmt.Errorf("invalid bit string %q", b)
		}
	}
	out := make([]byte, (high+8)/8)
	for bit := 0; bit <= high; bit++ {
		if b[n-1-bit] == '1' {
			out[bit/8] |= 1 << (bit % 8)
		}
	}
	return out, nil
}

// pgtypeDecodePoint parses "(x,y)" into io.debezium.data.geometry.Point:
// x, y, the point's little-endian OGC WKB and a null srid.
// pgtypeDecodeEWKB reads a PostGIS geometry or geography in its text form,
// hex EWKB, into Debezium's Geometry/Geography value: the EWKB as it is
// (Debezium's PostgisGeometry keeps it whole) and the SRID from its header
// when the SRID flag is set, else null.
func pgtypeDecodeEWKB(b []byte) (any, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("invalid hex EWKB of %d characters", len(b))
	}
	ewkb := make([]byte, len(b)/2)
	if _, err := hex.Decode(ewkb, b); err != nil {
		return nil, fmt.Errorf("invalid hex EWKB: %w", err)
	}
	if len(ewkb) < 9 {
		return nil, fmt.Errorf("EWKB of %d bytes is too short", len(ewkb))
	}
	var order binary.ByteOrder = binary.BigEndian
	if ewkb[0] != 0 {
		order = binary.LittleEndian
	}
	var srid any
	if order.Uint32(ewkb[1:5])&0x20000000 != 0 {
		srid = int32(order.Uint32(ewkb[5:9]))
	}
	return []any{ewkb, srid}, nil
}

func pgtypeDecodePoint(b []byte) (any, error) {
	if len(b) < 5 || b[0] != '(' || b[len(b)-1] != ')' {
		return nil, fmt.Errorf("invalid point %q", b)
	}
	inner := b[1 : len(b)-1]
	comma := -1
	for i, c := range inner {
		if c == ',' {
			comma = i
			break
		}
	}
	if comma < 0 {
		return nil, fmt.Errorf("invalid point %q", b)
	}
	x, err := pgtypeParseFloat(inner[:comma], 64)
	if err != nil {
		return nil, fmt.Errorf("invalid point %q: %w", b, err)
	}
	y, err := pgtypeParseFloat(inner[comma+1:], 64)
	if err != nil {
		return nil, fmt.Errorf("invalid point %q: %w", b, err)
	}
	wkb := make([]byte, 21)
	wkb[0] = 1 // little endian
	wkb[1] = 1 // wkbPoint
	pgtypePutF64LE(wkb[5:], x)
	pgtypePutF64LE(wkb[13:], y)
	return []any{x, y, wkb, nil}, nil
}

func pgtypePutF64LE(dst []byte, f float64) {
	u := math.Float64bits(f)
	for i := 0; i < 8; i++ {
		dst[i] = byte(u >> (8 * i))
	}
}

// ---- enums ----

// pgtypeEnumDecoder returns the catalog's own label string when it matches,
// which saves an allocation per value.
func pgtypeEnumDecoder(labels []string) pgtypeDecoder {
	labels = append([]string(nil), labels...)
	return func(b []byte) (any, error) {
		for _, l := range labels {
			if l == string(b) {
				return l, nil
			}
		}
		return string(b), nil
	}
}

// ---- dates and times ----

const (
	pgtypeMicrosPerSecond = 1_000_000
	pgtypeMicrosPerDay    = 86_400 * pgtypeMicrosPerSecond
	// Debezium's timestamp ±infinity: PGStatement.DATE_POSITIVE_INFINITY /
	// DATE_NEGATIVE_INFINITY read as microseconds.
	pgtypeTimestampPosInfMicros = 9223372036825200000
	pgtypeTimestampNegInfMicros = -9223372036832400000
)

func pgtypeFloorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// pgtypeDaysFromCivil counts days since 1970-01-01 in the proleptic
// Gregorian calendar (astronomical year numbering), as java.time does.
func pgtypeDaysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := pgtypeFloorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func pgtypeCivilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := pgtypeFloorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// pgtypeDigits reads at least min and at most max decimal digits at b[i:].
func pgtypeDigits(b []byte, i, min, max int) (int64, int, bool) {
	var v int64
	j := i
	for j < len(b) && j-i < max && b[j] >= '0' && b[j] <= '9' {
		v = v*10 + int64(b[j]-'0')
		j++
	}
	return v, j, j-i >= min
}

// pgtypeParseDate reads "YYYY-MM-DD" (years may be longer) at b[i:].
func pgtypeParseDate(b []byte, i int) (y, m, d int64, next int, ok bool) {
	y, i, ok = pgtypeDigits(b, i, 4, 9)
	if !ok || i >= len(b) || b[i] != '-' {
		return 0, 0, 0, 0, false
	}
	m, i, ok = pgtypeDigits(b, i+1, 2, 2)
	if !ok || i >= len(b) || b[i] != '-' || m < 1 || m > 12 {
		return 0, 0, 0, 0, false
	}
	d, i, ok = pgtypeDigits(b, i+1, 2, 2)
	if !ok || d < 1 || d > 31 {
		return 0, 0, 0, 0, false
	}
	return y, m, d, i, true
}

// pgtypeParseClock reads "HH:MM:SS[.ffffff]" at b[i:] as microseconds.
func pgtypeParseClock(b []byte, i int) (int64, int, bool) {
	h, i, ok := pgtypeDigits(b, i, 2, 2)
	if !ok || i >= len(b) || b[i] != ':' {
		return 0, 0, false
	}
	mi, i, ok := pgtypeDigits(b, i+1, 2, 2)
	if !ok || i >= len(b) || b[i] != ':' {
		return 0, 0, false
	}
	s, i, ok := pgtypeDigits(b, i+1, 2, 2)
	if !ok || h > 24 || mi > 59 || s > 60 {
		return 0, 0, false
	}
	us := ((h*60+mi)*60 + s) * pgtypeMicrosPerSecond
	if i < len(b) && b[i] == '.' {
		f, j, ok := pgtypeDigits(b, i+1, 1, 6)
		if !ok {
			return 0, 0, false
		}
		for k := j - (i + 1); k < 6; k++ {
			f *= 10
		}
		us += f
		i = j
	}
	return us, i, true
}

// pgtypeParseOffset reads "+HH[:MM[:SS]]" at b[i:] as seconds east of UTC.
func pgtypeParseOffset(b []byte, i int) (int64, int, bool) {
	if i >= len(b) || (b[i] != '+' && b[i] != '-') {
		return 0, 0, false
	}
	sign := int64(1)
	if b[i] == '-' {
		sign = -1
	}
	h, i, ok := pgtypeDigits(b, i+1, 2, 2)
	if !ok {
		return 0, 0, false
	}
	secs := h * 3600
	if i < len(b) && b[i] == ':' {
		var m int64
		if m, i, ok = pgtypeDigits(b, i+1, 2, 2); !ok {
			return 0, 0, false
		}
		secs += m * 60
		if i < len(b) && b[i] == ':' {
			var s int64
			if s, i, ok = pgtypeDigits(b, i+1, 2, 2); !ok {
				return 0, 0, false
			}
			secs += s
		}
	}
	return sign * secs, i, true
}

// pgtypeBC consumes an optional " BC" era suffix.
func pgtypeBC(b []byte, i int) (bool, int) {
	if len(b)-i == 3 && b[i] == ' ' && b[i+1] == 'B' && b[i+2] == 'C' {
		return true, i + 3
	}
	return false, i
}

func pgtypeDecodeDate(b []byte) (any, error) {
	switch string(b) {
	case "infinity":
		// Debezium's PostgresValueConverter.POSITIVE_INFINITY_LOCAL_DATE
		// and NEGATIVE_INFINITY_LOCAL_DATE, LocalDate -5877611-06-21 and
		// -5877611-06-22: PostgreSQL's own ±infinity (INT32_MAX/MIN days
		// since 2000-01-01) moved to the epoch in 32-bit arithmetic. That is
		// what Debezium streams; its snapshot writes other numbers (an
		// overflow of pgjdbc's infinity java.sql.Date), declared in the
		// README's departures.
		return int32(pgtypeDaysFromCivil(-5877611, 6, 21)), nil
	case "-infinity":
		return int32(pgtypeDaysFromCivil(-5877611, 6, 22)), nil
	}
	y, m, d, i, ok := pgtypeParseDate(b, 0)
	if ok {
		var bc bool
		if bc, i = pgtypeBC(b, i); bc {
			y = 1 - y
		}
	}
	if !ok || i != len(b) {
		return nil, fmt.Errorf("invalid date %q (DateStyle must be ISO)", b)
	}
	return int32(pgtypeDaysFromCivil(y, m, d)), nil
}

func pgtypeParseTime(b []byte) (int64, error) {
	us, i, ok := pgtypeParseClock(b, 0)
	if !ok || i != len(b) || us > pgtypeMicrosPerDay {
		return 0, fmt.Errorf("invalid time %q", b)
	}
	return us, nil
}

func pgtypeDecodeTimeMicros(b []byte) (any, error) {
	us, err := pgtypeParseTime(b)
	if err != nil {
		return nil, err
	}
	return us, nil
}

func pgtypeDecodeTimeMillis(b []byte) (any, error) {
	us, err := pgtypeParseTime(b)
	if err != nil {
		return nil, err
	}
	return int32(us / 1000), nil
}

// pgtypeDecodeTimetz is io.debezium.time.ZonedTime: the time moved to UTC
// and printed as Java's ISO_OFFSET_TIME ("HH:mm:ss[.fraction]Z", fraction
// without trailing zeros). PostgreSQL's 24:00:00 at UTC stays "24:00:00Z".
func pgtypeDecodeTimetz(b []byte) (any, error) {
	us, i, ok := pgtypeParseClock(b, 0)
	if !ok || us > pgtypeMicrosPerDay {
		return nil, fmt.Errorf("invalid timetz %q", b)
	}
	off, i, ok := pgtypeParseOffset(b, i)
	if !ok || i != len(b) {
		return nil, fmt.Errorf("invalid timetz %q", b)
	}
	if us == pgtypeMicrosPerDay && off == 0 {
		return "24:00:00Z", nil
	}
	us -= off * pgtypeMicrosPerSecond
	us = ((us % pgtypeMicrosPerDay) + pgtypeMicrosPerDay) % pgtypeMicrosPerDay
	buf := make([]byte, 0, 20)
	buf = pgtypeAppendClock(buf, us, -1)
	buf = append(buf, 'Z')
	return string(buf), nil
}

// pgtypeAppendClock writes HH:MM:SS and the fraction: width digits when
// width is 1..9, otherwise as many as needed (none when zero), like
// java.time's formatters.
func pgtypeAppendClock(buf []byte, us int64, width int) []byte {
	secs := us / pgtypeMicrosPerSecond
	frac := us % pgtypeMicrosPerSecond
	buf = pgtypeAppend2(buf, secs/3600)
	buf = append(buf, ':')
	buf = pgtypeAppend2(buf, secs/60%60)
	buf = append(buf, ':')
	buf = pgtypeAppend2(buf, secs%60)
	nanos := frac * 1000
	var digits [9]byte
	for k := 8; k >= 0; k-- {
		digits[k] = byte('0' + nanos%10)
		nanos /= 10
	}
	if width >= 1 && width <= 9 {
		buf = append(buf, '.')
		return append(buf, digits[:width]...)
	}
	if frac == 0 {
		return buf
	}
	n := 9
	for n > 0 && digits[n-1] == '0' {
		n--
	}
	buf = append(buf, '.')
	return append(buf, digits[:n]...)
}

func pgtypeAppend2(buf []byte, v int64) []byte {
	return append(buf, byte('0'+v/10%10), byte('0'+v%10))
}

// pgtypeParseTimestamp reads "YYYY-MM-DD HH:MM:SS[.ffffff][offset][ BC]"
// and returns microseconds since the epoch, UTC. A timestamp after
// 294247-01-10T04:00:54.775807Z has no such number in 64 bits (PostgreSQL's
// go on to 294276): it is refused, where Debezium writes an overflowed,
// wrong one.
func pgtypeParseTimestamp(b []byte, withZone bool) (int64, error) {
	days, tod, err := pgtypeParseTimestampDays(b, withZone)
	if err != nil {
		return 0, err
	}
	if days > math.MaxInt64/pgtypeMicrosPerDay || days*pgtypeMicrosPerDay > math.MaxInt64-tod {
		return 0, fmt.Errorf("timestamp %q is after 294247-01-10T04:00:54.775807Z, the last instant a 64-bit count of microseconds since the epoch (io.debezium.time.MicroTimestamp) carries", b)
	}
	return days*pgtypeMicrosPerDay + tod, nil
}

// pgtypeParseTimestampDays is pgtypeParseTimestamp as days since the epoch
// and microseconds into that day (UTC), which never overflow.
func pgtypeParseTimestampDays(b []byte, withZone bool) (days, tod int64, err error) {
	y, m, d, i, ok := pgtypeParseDate(b, 0)
	if !ok || i >= len(b) || b[i] != ' ' {
		return 0, 0, fmt.Errorf("invalid timestamp %q (DateStyle must be ISO)", b)
	}
	us, i, ok := pgtypeParseClock(b, i+1)
	if !ok {
		return 0, 0, fmt.Errorf("invalid timestamp %q", b)
	}
	var off int64
	if withZone {
		if off, i, ok = pgtypeParseOffset(b, i); !ok {
			return 0, 0, fmt.Errorf("invalid timestamptz %q: no UTC offset", b)
		}
	}
	var bc bool
	if bc, i = pgtypeBC(b, i); bc {
		y = 1 - y
	}
	if i != len(b) {
		return 0, 0, fmt.Errorf("invalid timestamp %q", b)
	}
	tod = us - off*pgtypeMicrosPerSecond
	shift := pgtypeFloorDiv(tod, pgtypeMicrosPerDay)
	return pgtypeDaysFromCivil(y, m, d) + shift, tod - shift*pgtypeMicrosPerDay, nil
}

func pgtypeDecodeTimestampMicros(b []byte) (any, error) {
	switch string(b) {
	case "infinity":
		return int64(pgtypeTimestampPosInfMicros), nil
	case "-infinity":
		return int64(pgtypeTimestampNegInfMicros), nil
	}
	us, err := pgtypeParseTimestamp(b, false)
	if err != nil {
		return nil, err
	}
	return us, nil
}

func pgtypeDecodeTimestampMillis(b []byte) (any, error) {
	switch string(b) {
	case "infinity":
		return int64(pgtypeTimestampPosInfMicros / 1000), nil
	case "-infinity":
		return int64(pgtypeTimestampNegInfMicros / 1000), nil
	}
	// Milliseconds reach PostgreSQL's last timestamp without overflow.
	days, tod, err := pgtypeParseTimestampDays(b, false)
	if err != nil {
		return nil, err
	}
	return days*(pgtypeMicrosPerDay/1000) + tod/1000, nil
}

// pgtypeTimestamptzDecoder is io.debezium.time.ZonedTimestamp: the instant
// in UTC as ISO-8601 with exactly width fraction digits (Debezium pads to the
// column's scale; scale 0 prints the fraction only when non-zero), years
// beyond 9999 prefixed with '+', years before 1 with '-' (astronomical).
// ±infinity stay "infinity" / "-infinity".
func pgtypeTimestamptzDecoder(width int) pgtypeDecoder {
	return func(b []byte) (any, error) {
		switch string(b) {
		case "infinity":
			return "infinity", nil
		case "-infinity":
			return "-infinity", nil
		}
		days, tod, err := pgtypeParseTimestampDays(b, true)
		if err != nil {
			return nil, err
		}
		y, m, d := pgtypeCivilFromDays(days)
		buf := make([]byte, 0, 32)
		buf = pgtypeAppendYear(buf, y)
		buf = append(buf, '-')
		buf = pgtypeAppend2(buf, m)
		buf = append(buf, '-')
		buf = pgtypeAppend2(buf, d)
		buf = append(buf, 'T')
		buf = pgtypeAppendClock(buf, tod, width)
		buf = append(buf, 'Z')
		return string(buf), nil
	}
}

// pgtypeAppendYear follows ISO_LOCAL_DATE's SignStyle.EXCEEDS_PAD with width 4.
func pgtypeAppendYear(buf []byte, y int64) []byte {
	if y < 0 {
		buf = append(buf, '-')
		y = -y
	} else if y > 9999 {
		buf = append(buf, '+')
	}
	s := strconv.AppendInt(nil, y, 10)
	for i := len(s); i < 4; i++ {
		buf = append(buf, '0')
	}
	return append(buf, s...)
}

// ---- interval ----

// pgtypeDecodeInterval is io.debezium.time.MicroDuration: Debezium's
// MicroDuration.durationMicros with DAYS_PER_MONTH_AVG = 365.25/12 computed
// in double precision exactly as Java does, truncated to long. It accepts
// IntervalStyle postgres ("1 year 2 mons 3 days 04:05:06.789"),
// postgres_verbose ("@ 1 year 2 mons ... ago") and iso_8601 ("P1Y2M3DT4H5M6.789S").
func pgtypeDecodeInterval(b []byte) (any, error) {
	var iv pgtypeIntervalParts
	var err error
	if len(b) > 0 && b[0] == 'P' {
		err = iv.parseISO(b)
	} else {
		err = iv.parsePostgres(b)
	}
	if err != nil {
		return nil, err
	}
	return iv.total(), nil
}

type pgtypeIntervalParts struct {
	years, months, days, hours, minutes int64
	seconds, usec                       int64 // both carry the sign
}

func (iv *pgtypeIntervalParts) total() int64 {
	// Separate statements with explicit float64 conversions keep the Go
	// compiler from fusing multiply-adds, which Java never does.
	const daysPerMonth = 365.25 / 12.0
	secs := float64(iv.seconds) + float64(iv.usec)/1e6
	numberOfDays := float64(float64(iv.years*12+iv.months)*daysPerMonth) + float64(iv.days)
	numberOfSeconds := float64(float64(float64(float64(float64(numberOfDays*24)+float64(iv.hours))*60)+float64(iv.minutes))*60) + secs
	return int64(float64(numberOfSeconds * 1e6))
}

// pgtypeSignedSeconds parses "[-]S[.ffffff]" into whole seconds and micros
// sharing the sign.
func pgtypeSignedSeconds(b []byte) (int64, int64, bool) {
	neg := false
	i := 0
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	s, j, ok := pgtypeDigits(b, i, 1, 18)
	if !ok {
		return 0, 0, false
	}
	var us int64
	if j < len(b) && b[j] == '.' {
		f, k, ok := pgtypeDigits(b, j+1, 1, 9)
		if !ok {
			return 0, 0, false
		}
		n := k - (j + 1)
		for ; n < 6; n++ {
			f *= 10
		}
		for ; n > 6; n-- {
			f = (f + 5) / 10
		}
		us = f
		j = k
	}
	if j != len(b) {
		return 0, 0, false
	}
	if neg {
		s, us = -s, -us
	}
	return s, us, true
}

func (iv *pgtypeIntervalParts) parsePostgres(b []byte) error {
	bad := func() error { return fmt.Errorf("invalid interval %q (IntervalStyle must be postgres or iso_8601)", b) }
	verbose := len(b) > 0 && b[0] == '@'
	if string(b) == "@ 0" {
		return nil
	}
	i := 0
	if verbose {
		i = 1
	}
	var pending []byte // a number waiting for its unit
	for {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		if i >= len(b) {
			break
		}
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		tok := b[i:j]
		i = j
		if pending == nil {
			if verbose && string(tok) == "ago" {
				*iv = pgtypeIntervalParts{-iv.years, -iv.months, -iv.days, -iv.hours, -iv.minutes, -iv.seconds, -iv.usec}
				continue
			}
			if bytes.IndexByte(tok, ':') >= 0 {
				if err := iv.parseClock(tok); err != nil {
					return bad()
				}
				continue
			}
			pending = tok
			continue
		}
		unit := tok
		num := pending
		pending = nil
		if len(unit) >= 3 && string(unit[:3]) == "sec" {
			s, us, ok := pgtypeSignedSeconds(num)
			if !ok {
				return bad()
			}
			iv.seconds, iv.usec = s, us
			continue
		}
		n, err := pgtypeParseInt(num, 32)
		if err != nil {
			return bad()
		}
		switch {
		case len(unit) >= 4 && string(unit[:4]) == "year":
			iv.years = n
		case len(unit) >= 3 && string(unit[:3]) == "mon":
			iv.months = n
		case len(unit) >= 3 && string(unit[:3]) == "day":
			iv.days = n
		case len(unit) >= 4 && string(unit[:4]) == "hour":
			iv.hours = n
		case len(unit) >= 3 && string(unit[:3]) == "min":
			iv.minutes = n
		default:
			return bad()
		}
	}
	if pending != nil {
		return bad()
	}
	return nil
}

// parseClock reads "[+-]H:MM[:SS[.ffffff]]" (hours unbounded).
func (iv *pgtypeIntervalParts) parseClock(tok []byte) error {
	neg := false
	i := 0
	if tok[0] == '-' || tok[0] == '+' {
		neg = tok[0] == '-'
		i = 1
	}
	h, i, ok := pgtypeDigits(tok, i, 1, 10)
	if !ok || i >= len(tok) || tok[i] != ':' {
		return errors.New("bad clock")
	}
	m, i, ok := pgtypeDigits(tok, i+1, 2, 2)
	if !ok {
		return errors.New("bad clock")
	}
	var s, us int64
	if i < len(tok) {
		if tok[i] != ':' {
			return errors.New("bad clock")
		}
		if s, us, ok = pgtypeSignedSeconds(tok[i+1:]); !ok || s < 0 || us < 0 {
			return errors.New("bad clock")
		}
	}
	if neg {
		h, m, s, us = -h, -m, -s, -us
	}
	iv.hours, iv.minutes, iv.seconds, iv.usec = h, m, s, us
	return nil
}

func (iv *pgtypeIntervalParts) parseISO(b []byte) error {
	bad := fmt.Errorf("invalid interval %q", b)
	i := 1
	inTime := false
	if len(b) < 2 {
		return bad
	}
	for i < len(b) {
		if b[i] == 'T' {
			if inTime {
				return bad
			}
			inTime = true
			i++
			continue
		}
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		if j == i || j >= len(b) {
			return bad
		}
		num, unit := b[i:j], b[j]
		i = j + 1
		if inTime && unit == 'S' {
			s, us, ok := pgtypeSignedSeconds(num)
			if !ok {
				return bad
			}
			iv.seconds, iv.usec = s, us
			continue
		}
		n, err := pgtypeParseInt(num, 32)
		if err != nil {
			return bad
		}
		switch {
		case !inTime && unit == 'Y':
			iv.years = n
		case !inTime && unit == 'M':
			iv.months = n
		case !inTime && unit == 'W':
			iv.days += 7 * n
		case !inTime && unit == 'D':
			iv.days += n
		case inTime && unit == 'H':
			iv.hours = n
		case inTime && unit == 'M':
			iv.minutes = n
		default:
			return bad
		}
	}
	return nil
}

// ---- arrays ----

// pgtypeArrayDecoder parses a one-dimensional array literal as array_out
// prints it: "{a,\"b c\",NULL}", optionally with a "[lo:hi]=" prefix when the
// lower bound is not 1. Elements are decoded with elem; NULL becomes nil.
func pgtypeArrayDecoder(elem pgtypeDecoder) pgtypeDecoder {
	return func(b []byte) (any, error) {
		i := 0
		if len(b) > 0 && b[0] == '[' {
			eq := -1
			for k, c := range b {
				if c == '=' {
					eq = k
					break
				}
			}
			if eq < 0 {
				return nil, fmt.Errorf("invalid array %q", pgtypeClip(b))
			}
			if bytes.Count(b[:eq], []byte("[")) > 1 {
				return nil, fmt.Errorf("multi-dimensional array %q is not supported (one dimension only)", pgtypeClip(b))
			}
			i = eq + 1
		}
		if i >= len(b) || b[i] != '{' || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("invalid array %q", pgtypeClip(b))
		}
		i++
		end := len(b) - 1
		out := make([]any, 0, 8)
		if i == end {
			return out, nil
		}
		var scratch []byte
		for {
			for i < end && b[i] == ' ' {
				i++
			}
			if i >= end {
				return nil, fmt.Errorf("invalid array %q", pgtypeClip(b))
			}
			var raw []byte
			isNull := false
			switch b[i] {
			case '{':
				return nil, fmt.Errorf("multi-dimensional array %q is not supported (one dimension only)", pgtypeClip(b))
			case '"':
				j := i + 1
				start := j
				escaped := false
				for j < end && b[j] != '"' {
					if b[j] == '\\' {
						escaped = true
						j++
					}
					j++
				}
				if j >= end {
					return nil, fmt.Errorf("invalid array %q: unterminated quoted element", pgtypeClip(b))
				}
				raw = b[start:j]
				if escaped {
					scratch = pgtypeUnescapeArray(scratch[:0], raw)
					raw = scratch
				}
				i = j + 1
			default:
				j := i
				escaped := false
				for j < end && b[j] != ',' {
					if b[j] == '\\' {
						escaped = true
						j++
					}
					j++
				}
				if j > end {
					j = end
				}
				raw = b[i:j]
				for len(raw) > 0 && raw[len(raw)-1] == ' ' {
					raw = raw[:len(raw)-1]
				}
				if pgtypeIsNullWord(raw) {
					isNull = true
				} else if escaped {
					scratch = pgtypeUnescapeArray(scratch[:0], raw)
					raw = scratch
				}
				i = j
			}
			if isNull {
				out = append(out, nil)
			} else {
				v, err := elem(raw)
				if err != nil {
					return nil, fmt.Errorf("array element %d: %w", len(out)+1, err)
				}
				out = append(out, v)
			}
			for i < end && b[i] == ' ' {
				i++
			}
			if i == end {
				return out, nil
			}
			if b[i] != ',' {
				return nil, fmt.Errorf("invalid array %q", pgtypeClip(b))
			}
			i++
		}
	}
}

func pgtypeIsNullWord(b []byte) bool {
	return len(b) == 4 && b[0]|0x20 == 'n' && b[1]|0x20 == 'u' && b[2]|0x20 == 'l' && b[3]|0x20 == 'l'
}

func pgtypeUnescapeArray(dst, raw []byte) []byte {
	for k := 0; k < len(raw); k++ {
		if raw[k] == '\\' && k+1 < len(raw) {
			k++
		}
		dst = append(dst, raw[k])
	}
	return dst
}

// pgtypeClip keeps error messages short for huge values.
func pgtypeClip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// ---- direct Avro appenders (bulk reads) ----

// pgtypeAppender appends the Avro value encoding (without the union index of
// an optional column) of one non-null value in PostgreSQL text format: the
// very bytes its decoder's Go value encodes to, written without the Go
// value, so a snapshot row allocates nothing per column. It never retains
// text.
type pgtypeAppender func(dst, text []byte) ([]byte, error)

// pgtypeAppenderFor returns the appender of a column type, or nil when the
// type has none and goes through its decoder. Only types whose decoder is
// a plain parse have one: booleans, integers, floats and the types sent as
// their text unchanged (text, varchar, json, uuid, ... and unmapped types).
func pgtypeAppenderFor(oid uint32, typmod int32, info pgtypeCatalog) pgtypeAppender {
	ct := pgtypeResolve(oid, typmod, info)
	switch ct.Root {
	case pgxtype.BoolOID:
		return pgtypeAppendBool
	case pgxtype.Int2OID:
		return pgtypeAppendInt16
	case pgxtype.Int4OID:
		return pgtypeAppendInt32
	case pgxtype.Int8OID, pgxtype.OIDOID:
		return pgtypeAppendInt64
	case pgxtype.Float4OID:
		return pgtypeAppendFloat32
	case pgxtype.Float8OID:
		return pgtypeAppendFloat64
	case pgxtype.TextOID, pgxtype.VarcharOID, pgxtype.BPCharOID, pgxtype.NameOID, pgxtype.QCharOID,
		pgxtype.InetOID, pgxtype.CIDROID, pgxtype.MacaddrOID, pgxtype.Macaddr8OID,
		pgxtype.Int4rangeOID, pgxtype.Int8rangeOID, pgxtype.NumrangeOID,
		pgxtype.TsrangeOID, pgxtype.TstzrangeOID, pgxtype.DaterangeOID,
		pgxtype.JSONOID, pgxtype.JSONBOID, pgxtype.XMLOID, pgxtype.UUIDOID, pgxtype.TSVectorOID:
		return pgtypeAppendText
	}
	if pgtypeBuiltinArrayElem(ct.Root) != 0 {
		return nil
	}
	if ti, ok := pgtypeCatalogInfo(info, ct.Root); ok && ti.Type == 'b' && (ti.Name == "citext" || ti.Name == "ltree") {
		return pgtypeAppendText
	}
	if _, _, known := pgtypeBuild(ct.Root, ct.RootTypmod, info, 0); !known {
		return pgtypeAppendText // unmapped: sent as its text form
	}
	return nil
}

func pgtypeAppendText(dst, b []byte) ([]byte, error) {
	return append(schema.AppendLong(dst, int64(len(b))), b...), nil
}

func pgtypeAppendBool(dst, b []byte) ([]byte, error) {
	if len(b) == 1 {
		switch b[0] {
		case 't':
			return append(dst, 1), nil
		case 'f':
			return append(dst, 0), nil
		}
	}
	return dst, fmt.Errorf("invalid boolean %q", b)
}

func pgtypeAppendInt16(dst, b []byte) ([]byte, error) {
	n, err := pgtypeParseInt(b, 16)
	if err != nil {
		return dst, err
	}
	return schema.AppendLong(dst, n), nil
}

func pgtypeAppendInt32(dst, b []byte) ([]byte, error) {
	n, err := pgtypeParseInt(b, 32)
	if err != nil {
		return dst, err
	}
	return schema.AppendLong(dst, n), nil
}

func pgtypeAppendInt64(dst, b []byte) ([]byte, error) {
	n, err := pgtypeParseInt(b, 64)
	if err != nil {
		return dst, err
	}
	return schema.AppendLong(dst, n), nil
}

func pgtypeAppendFloat32(dst, b []byte) ([]byte, error) {
	f, err := pgtypeParseFloat(b, 32)
	if err != nil {
		return dst, err
	}
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
}

func pgtypeAppendFloat64(dst, b []byte) ([]byte, error) {
	f, err := pgtypeParseFloat(b, 64)
	if err != nil {
		return dst, err
	}
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
}

// ---- binary COPY ----

// pgtypeBinAppender is pgtypeAppender for a value in PostgreSQL's binary
// format (the type's send function, as COPY ... (FORMAT binary) writes it).
// It writes the same bytes as the text path for the same value.
type pgtypeBinAppender func(dst, b []byte) ([]byte, error)

// pgtypeBinaryFor returns the binary appender of a column type and a
// function turning a binary value back into the text a SQL literal of the
// type takes, or nils when the type is read as text. A table is copied in
// binary only when every column has one: binary COPY costs the server a
// quarter less than text and has no escapes to undo.
func pgtypeBinaryFor(oid uint32, typmod int32, info pgtypeCatalog) (pgtypeBinAppender, func([]byte) (string, error)) {
	switch pgtypeResolve(oid, typmod, info).Root {
	case pgxtype.BoolOID:
		return pgtypeBinBool, pgtypeBinBoolText
	case pgxtype.Int2OID:
		return pgtypeBinInt(2), pgtypeBinIntText(2)
	case pgxtype.Int4OID:
		return pgtypeBinInt(4), pgtypeBinIntText(4)
	case pgxtype.Int8OID:
		return pgtypeBinInt(8), pgtypeBinIntText(8)
	case pgxtype.OIDOID:
		return pgtypeBinOID, pgtypeBinOIDText
	case pgxtype.Float4OID:
		return pgtypeBinFloat32, pgtypeBinFloatText(4)
	case pgxtype.Float8OID:
		return pgtypeBinFloat64, pgtypeBinFloatText(8)
	case pgxtype.TextOID, pgxtype.VarcharOID, pgxtype.BPCharOID, pgxtype.NameOID, pgxtype.JSONOID:
		// Their send functions write the text output, as COPY text does
		// before escaping.
		return pgtypeBinText, func(b []byte) (string, error) { return string(b), nil }
	case pgxtype.JSONBOID:
		return pgtypeBinJSONB, pgtypeBinJSONBText
	case pgxtype.UUIDOID:
		return pgtypeBinUUID, pgtypeBinUUIDText
	}
	return nil, nil
}

func pgtypeBinSize(b []byte, n int, what string) error {
	if len(b) != n {
		return fmt.Errorf("binary %s of %d bytes, want %d", what, len(b), n)
	}
	return nil
}

func pgtypeBinBool(dst, b []byte) ([]byte, error) {
	if err := pgtypeBinSize(b, 1, "boolean"); err != nil {
		return dst, err
	}
	if b[0] != 0 {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

func pgtypeBinBoolText(b []byte) (string, error) {
	if err := pgtypeBinSize(b, 1, "boolean"); err != nil {
		return "", err
	}
	if b[0] != 0 {
		return "t", nil
	}
	return "f", nil
}

func pgtypeBinIntValue(b []byte, n int) (int64, error) {
	if err := pgtypeBinSize(b, n, "integer"); err != nil {
		return 0, err
	}
	switch n {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

func pgtypeBinInt(n int) pgtypeBinAppender {
	return func(dst, b []byte) ([]byte, error) {
		v, err := pgtypeBinIntValue(b, n)
		if err != nil {
			return dst, err
		}
		return schema.AppendLong(dst, v), nil
	}
}

func pgtypeBinIntText(n int) func([]byte) (string, error) {
	return func(b []byte) (string, error) {
		v, err := pgtypeBinIntValue(b, n)
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(v, 10), nil
	}
}

func pgtypeBinOID(dst, b []byte) ([]byte, error) {
	if err := pgtypeBinSize(b, 4, "oid"); err != nil {
		return dst, err
	}
	return schema.AppendLong(dst, int64(binary.BigEndian.Uint32(b))), nil
}

func pgtypeBinOIDText(b []byte) (string, error) {
	if err := pgtypeBinSize(b, 4, "oid"); err != nil {
		return "", err
	}
	return strconv.FormatUint(uint64(binary.BigEndian.Uint32(b)), 10), nil
}

// NaN is written as the text path writes it (Go's NaN), whatever the
// payload the server stored, so both paths give the same bytes.
var (
	pgtypeNaN32Bits = math.Float32bits(float32(math.NaN()))
	pgtypeNaN64Bits = math.Float64bits(math.NaN())
)

func pgtypeBinFloat32(dst, b []byte) ([]byte, error) {
	if err := pgtypeBinSize(b, 4, "real"); err != nil {
		return dst, err
	}
	bits := binary.BigEndian.Uint32(b)
	if f := math.Float32frombits(bits); f != f {
		bits = pgtypeNaN32Bits
	}
	return binary.LittleEndian.AppendUint32(dst, bits), nil
}

func pgtypeBinFloat64(dst, b []byte) ([]byte, error) {
	if err := pgtypeBinSize(b, 8, "double precision"); err != nil {
		return dst, err
	}
	bits := binary.BigEndian.Uint64(b)
	if f := math.Float64frombits(bits); f != f {
		bits = pgtypeNaN64Bits
	}
	return binary.LittleEndian.AppendUint64(dst, bits), nil
}

func pgtypeBinFloatText(n int) func([]byte) (string, error) {
	return func(b []byte) (string, error) {
		if err := pgtypeBinSize(b, n, "float"); err != nil {
			return "", err
		}
		var f float64
		bits := 64
		if n == 4 {
			f, bits = float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 32
		} else {
			f = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
		switch {
		case math.IsNaN(f):
			return "NaN", nil
		case math.IsInf(f, 1):
			return "Infinity", nil
		case math.IsInf(f, -1):
			return "-Infinity", nil
		}
		return strconv.FormatFloat(f, 'g', -1, bits), nil
	}
}

func pgtypeBinText(dst, b []byte) ([]byte, error) { return pgtypeAppendText(dst, b) }

func pgtypeBinJSONB(dst, b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != 1 {
		return dst, errors.New("binary jsonb of an unknown version")
	}
	return pgtypeAppendText(dst, b[1:])
}

func pgtypeBinJSONBText(b []byte) (string, error) {
	if len(b) == 0 || b[0] != 1 {
		return "", errors.New("binary jsonb of an unknown version")
	}
	return string(b[1:]), nil
}

// pgtypeAppendUUID writes uuid_out's form: lower-case 8-4-4-4-12 hex.
func pgtypeAppendUUID(dst, b []byte) []byte {
	const hexd = "0123456789abcdef"
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexd[c>>4], hexd[c&15])
	}
	return dst
}

func pgtypeBinUUID(dst, b []byte) ([]byte, error) {
	if err := pgtypeBinSize(b, 16, "uuid"); err != nil {
		return dst, err
	}
	return pgtypeAppendUUID(append(dst, 72), b), nil // 72: Avro length 36
}

func pgtypeBinUUIDText(b []byte) (string, error) {
	if err := pgtypeBinSize(b, 16, "uuid"); err != nil {
		return "", err
	}
	return string(pgtypeAppendUUID(make([]byte, 0, 36), b)), nil
}

// copyBinarySignature starts COPY's binary format.
const copyBinarySignature = "PGCOPY\n\xff\r\n\x00"

// copyBinarySplitRow splits one tuple of COPY's binary format into its
// fields, reusing dst: NULL fields come back nil, every other field non-nil
// (empty ones included), aliasing tuple.
func copyBinarySplitRow(tuple []byte, dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	if len(tuple) < 2 {
		return nil, errors.New("binary COPY tuple shorter than its field count")
	}
	n := int(int16(binary.BigEndian.Uint16(tuple)))
	off := 2
	for i := 0; i < n; i++ {
		if len(tuple) < off+4 {
			return nil, fmt.Errorf("binary COPY tuple ends inside field %d", i+1)
		}
		l := int(int32(binary.BigEndian.Uint32(tuple[off:])))
		off += 4
		if l < 0 {
			dst = append(dst, nil)
			continue
		}
		if len(tuple) < off+l {
			return nil, fmt.Errorf("binary COPY tuple ends inside field %d", i+1)
		}
		dst = append(dst, tuple[off:off+l:off+l])
		off += l
	}
	if off != len(tuple) {
		return nil, fmt.Errorf("binary COPY tuple has %d bytes after its %d fields", len(tuple)-off, n)
	}
	return dst, nil
}

// copyBinaryTupleLen returns the length of the complete tuple at the start
// of p (field count -1 is the trailer, 2 bytes), or 0 when p holds only
// part of it.
func copyBinaryTupleLen(p []byte) int {
	if len(p) < 2 {
		return 0
	}
	n := int(int16(binary.BigEndian.Uint16(p)))
	if n < 0 {
		return 2
	}
	off := 2
	for i := 0; i < n; i++ {
		if len(p) < off+4 {
			return 0
		}
		l := int(int32(binary.BigEndian.Uint32(p[off:])))
		off += 4
		if l > 0 {
			off += l
			if len(p) < off {
				return 0
			}
		}
	}
	return off
}

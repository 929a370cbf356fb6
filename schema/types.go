package schema

import (
	"math/big"
	"strconv"
	"strings"
)

// Connect and Debezium semantic type names (connect.name) that connectors put
// in Type.Name. Every one of them is Connect schema version 1; a Type with one
// of these names and Version 0 is written with connect.version 1.
const (
	DecimalName          = "org.apache.kafka.connect.data.Decimal"
	ConnectDateName      = "org.apache.kafka.connect.data.Date"
	ConnectTimeName      = "org.apache.kafka.connect.data.Time"
	ConnectTimestampName = "org.apache.kafka.connect.data.Timestamp"

	DateName           = "io.debezium.time.Date"
	TimeName           = "io.debezium.time.Time"
	MicroTimeName      = "io.debezium.time.MicroTime"
	NanoTimeName       = "io.debezium.time.NanoTime"
	TimestampName      = "io.debezium.time.Timestamp"
	MicroTimestampName = "io.debezium.time.MicroTimestamp"
	NanoTimestampName  = "io.debezium.time.NanoTimestamp"
	ZonedTimeName      = "io.debezium.time.ZonedTime"
	ZonedTimestampName = "io.debezium.time.ZonedTimestamp"
	MicroDurationName  = "io.debezium.time.MicroDuration"
	IntervalName       = "io.debezium.time.Interval"
	YearName           = "io.debezium.time.Year"

	JSONName                 = "io.debezium.data.Json"
	UUIDName                 = "io.debezium.data.Uuid"
	EnumName                 = "io.debezium.data.Enum"
	EnumSetName              = "io.debezium.data.EnumSet"
	XMLName                  = "io.debezium.data.Xml"
	BitsName                 = "io.debezium.data.Bits"
	VariableScaleDecimalName = "io.debezium.data.VariableScaleDecimal"
	GeometryName             = "io.debezium.data.geometry.Geometry"
	GeographyName            = "io.debezium.data.geometry.Geography"
)

// Connect schema parameter keys.
const (
	// DecimalScaleParam and DecimalPrecisionParam are the Connect Decimal
	// parameters; the AvroConverter turns them into the Avro decimal
	// logicalType's scale and precision.
	DecimalScaleParam     = "scale"
	DecimalPrecisionParam = "connect.decimal.precision"
	// EnumAllowedParam lists an io.debezium.data.Enum's values, comma-separated.
	EnumAllowedParam = "allowed"
	// BitsLengthParam is the bit length of io.debezium.data.Bits.
	BitsLengthParam = "length"

	// Written by Debezium's column.propagate.source.type
	// (PropagateSourceMetadataToSchemaParameter), in this order, on value
	// fields only. The schema writer adds SourceColumnNameParam itself to
	// every value column that carries SourceColumnTypeParam, and leaves all
	// of them out of key fields, as Debezium 3.6 does. Comments are written
	// only with include.schema.comments, which tributary does not offer.
	SourceColumnTypeParam    = "__debezium.source.column.type"
	SourceColumnLengthParam  = "__debezium.source.column.length"
	SourceColumnScaleParam   = "__debezium.source.column.scale"
	SourceColumnCommentParam = "__debezium.source.column.comment"
	SourceColumnNameParam    = "__debezium.source.column.name"

	sourceColumnParamPrefix = "__debezium.source.column."
)

// DecimalType is org.apache.kafka.connect.data.Decimal with the given scale;
// precision <= 0 leaves connect.decimal.precision out (the AvroConverter then
// writes Avro precision 64). The column's Go value is DecimalBytes(unscaled).
func DecimalType(precision, scale int) Type {
	p := map[string]string{DecimalScaleParam: strconv.Itoa(scale)}
	if precision > 0 {
		p[DecimalPrecisionParam] = strconv.Itoa(precision)
	}
	return Type{Kind: Bytes, Name: DecimalName, Version: 1, Params: p}
}

// JoinAllowedEscaped joins ENUM/SET values into an "allowed" parameter as
// Debezium's binlog connectors write it: a comma inside a value is escaped
// as "\," (Debezium's PostgreSQL connector joins enum labels unescaped, as
// EnumType does). sink.SplitAllowed reads both.
func JoinAllowedEscaped(values []string) string {
	esc := make([]string, len(values))
	for i, v := range values {
		esc[i] = strings.ReplaceAll(v, ",", `\,`)
	}
	return strings.Join(esc, ",")
}

// EnumType is io.debezium.data.Enum with the given allowed values.
func EnumType(allowed []string) Type {
	return Type{Kind: String, Name: EnumName, Version: 1,
		Params: map[string]string{EnumAllowedParam: strings.Join(allowed, ",")}}
}

// VariableScaleDecimalType is Debezium's io.debezium.data.VariableScaleDecimal
// (a numeric without fixed scale): Go value []any{int32 scale, []byte unscaled}.
func VariableScaleDecimalType() Type {
	return Type{Kind: Struct, Name: VariableScaleDecimalName, Version: 1,
		Doc: "Variable scaled decimal",
		Fields: []Column{
			{Name: "scale", Type: Type{Kind: Int32}},
			{Name: "value", Type: Type{Kind: Bytes}},
		}}
}

// GeometryType is Debezium's io.debezium.data.geometry.Geometry:
// Go value []any{[]byte wkb, int32 srid or nil}.
func GeometryType() Type {
	return Type{Kind: Struct, Name: GeometryName, Version: 1,
		Doc: "Geometry",
		Fields: []Column{
			{Name: "wkb", Type: Type{Kind: Bytes}},
			{Name: "srid", Type: Type{Kind: Int32}, Optional: true},
		}}
}

// GeographyType is Debezium's io.debezium.data.geometry.Geography (PostGIS
// geography): Go value []any{[]byte wkb, int32 srid or nil}.
func GeographyType() Type {
	t := GeometryType()
	t.Name, t.Doc = GeographyName, "Geography"
	return t
}

// PointName is Debezium's io.debezium.data.geometry.Point.
const PointName = "io.debezium.data.geometry.Point"

// PointType is Debezium's io.debezium.data.geometry.Point (PostgreSQL point,
// MySQL POINT): Go value []any{float64 x, float64 y, []byte wkb or nil,
// int32 srid or nil}.
func PointType() Type {
	return Type{Kind: Struct, Name: PointName, Version: 1, Doc: "Geometry (POINT)",
		Fields: []Column{
			{Name: "x", Type: Type{Kind: Float64}},
			{Name: "y", Type: Type{Kind: Float64}},
			{Name: "wkb", Type: Type{Kind: Bytes}, Optional: true},
			{Name: "srid", Type: Type{Kind: Int32}, Optional: true},
		}}
}

// DecimalBytes is the Go value of a Decimal column: the unscaled value as
// minimal big-endian two's complement, as Java's BigInteger.toByteArray.
func DecimalBytes(unscaled *big.Int) []byte {
	return AppendDecimalBytes(nil, unscaled)
}

// AppendDecimalBytes appends DecimalBytes(unscaled) to dst.
func AppendDecimalBytes(dst []byte, unscaled *big.Int) []byte {
	switch unscaled.Sign() {
	case 0:
		return append(dst, 0)
	case 1:
		n := unscaled.BitLen()/8 + 1 // room for the sign bit
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		unscaled.FillBytes(dst[start:])
		return dst
	}
	// Negative: two's complement of |x| over n bytes is 2^(8n) - |x|, where n
	// is the smallest width whose range [-2^(8n-1), 0) holds x.
	abs := new(big.Int).Neg(unscaled)
	n := (new(big.Int).Sub(abs, big.NewInt(1)).BitLen())/8 + 1
	tc := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	tc.Sub(tc, abs)
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	tc.FillBytes(dst[start:])
	return dst
}

// UnscaledFromBytes decodes big-endian two's complement bytes (a Decimal's
// Avro bytes) into the unscaled integer.
func UnscaledFromBytes(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n
}

// versionOf is the connect.version written for t: Connect's and Debezium's
// semantic types are all version 1, so 0 there means 1.
func versionOf(name string, v int) int {
	if v == 0 && (strings.HasPrefix(name, "io.debezium.") || strings.HasPrefix(name, "org.apache.kafka.connect.data.")) {
		return 1
	}
	return v
}

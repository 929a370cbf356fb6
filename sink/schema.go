package sink

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// Debezium / Kafka Connect semantic type names (connect.name).
const (
	cnDecimal          = "org.apache.kafka.connect.data.Decimal"
	cnConnectDate      = "org.apache.kafka.connect.data.Date"
	cnConnectTime      = "org.apache.kafka.connect.data.Time"
	cnConnectTimestamp = "org.apache.kafka.connect.data.Timestamp"
	cnVarDecimal       = "io.debezium.data.VariableScaleDecimal"
	cnDate             = "io.debezium.time.Date"
	cnTime             = "io.debezium.time.Time"
	cnMicroTime        = "io.debezium.time.MicroTime"
	cnNanoTime         = "io.debezium.time.NanoTime"
	cnTimestamp        = "io.debezium.time.Timestamp"
	cnMicroTimestamp   = "io.debezium.time.MicroTimestamp"
	cnNanoTimestamp    = "io.debezium.time.NanoTimestamp"
	cnZonedTimestamp   = "io.debezium.time.ZonedTimestamp"
	cnZonedTime        = "io.debezium.time.ZonedTime"
	cnMicroDuration    = "io.debezium.time.MicroDuration"
	cnInterval         = "io.debezium.time.Interval"
	cnYear             = "io.debezium.time.Year"
	cnJSON             = "io.debezium.data.Json"
	cnUUID             = "io.debezium.data.Uuid"
	cnEnum             = "io.debezium.data.Enum"
	cnEnumSet          = "io.debezium.data.EnumSet"
	cnXML              = "io.debezium.data.Xml"
	cnBits             = "io.debezium.data.Bits"
	cnGeometry         = "io.debezium.data.geometry.Geometry"
	cnPoint            = "io.debezium.data.geometry.Point"

	paramColumnType   = "__debezium.source.column.type"
	paramColumnLength = "__debezium.source.column.length"
	paramColumnScale  = "__debezium.source.column.scale"
	// paramColumnName is the source's own spelling of the column name,
	// which Debezium 3.6 writes on every value column: the Avro field name
	// may be an adjusted one (field.name.adjustment.mode).
	paramColumnName = "__debezium.source.column.name"
)

// fieldInfo is one column of a row record, with the (non-null) Avro schema
// its values are decoded with.
type fieldInfo struct {
	name string
	// column is the copy's column name: the source's spelling from
	// __debezium.source.column.name, else the field name.
	column   string
	typ      ColumnType
	optional bool
	schema   avro.Schema
	// def is the field's non-null default as a native value (hasDef).
	def    any
	hasDef bool
}

// envelopeInfo is what the sink needs from one value schema version.
type envelopeInfo struct {
	name    string // the Envelope record's full name
	dialect Dialect
	fields  []fieldInfo
	// fast decodes this envelope without a generic decoder; nil when its
	// shape is not covered.
	fast *fastEnvelope
	// sourceFields lists the names in the source block, to resolve
	// table_name_format placeholders.
	hasSchemaField bool
}

// keyInfo is one key schema version.
type keyInfo struct {
	fields []fieldInfo
	// decl are the declared (maybe union) field schemas, for decodeKey.
	decl []avro.Schema
}

// parseEnvelope checks that s is a Debezium change-event envelope and
// extracts the row columns from its "after" (or "before") field.
func parseEnvelope(s avro.Schema) (*envelopeInfo, error) {
	rec, ok := deref(s).(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("value schema is a %s, not a Debezium envelope record", s.Type())
	}
	info := &envelopeInfo{name: rec.FullName()}
	var rowSchema, srcSchema avro.Schema
	hasOp := false
	for _, f := range rec.Fields() {
		switch f.Name() {
		case "op":
			hasOp = true
		case "after":
			rowSchema = f.Type()
		case "before":
			if rowSchema == nil {
				rowSchema = f.Type()
			}
		case "source":
			srcSchema = f.Type()
		}
	}
	if !hasOp || rowSchema == nil {
		return nil, fmt.Errorf("value schema %s is not a Debezium envelope: it has no op/before/after fields", rec.FullName())
	}
	if srcSchema != nil {
		if sr, ok := nonNull(srcSchema).(*avro.RecordSchema); ok {
			switch {
			case strings.Contains(sr.FullName(), ".postgresql."):
				info.dialect = DialectPostgres
			case strings.Contains(sr.FullName(), ".mysql."):
				info.dialect = DialectMySQL
			}
			for _, f := range sr.Fields() {
				if f.Name() == "schema" {
					info.hasSchemaField = true
				}
			}
		}
	}
	row, ok := nonNull(rowSchema).(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("value schema %s: field after is a %s, not a row record", rec.FullName(), rowSchema.Type())
	}
	fields, err := parseFields(row, info.dialect)
	if err != nil {
		return nil, fmt.Errorf("value schema %s: %w", rec.FullName(), err)
	}
	info.fields = fields
	info.fast = compileEnvelope(s, fields)
	return info, nil
}

func parseKey(s avro.Schema) (*keyInfo, error) {
	rec, ok := deref(s).(*avro.RecordSchema)
	if !ok {
		// Debezium keys are records; a primitive key has no column name to
		// match, so it cannot name a primary key.
		return nil, fmt.Errorf("key schema is a %s, not a record of key columns", s.Type())
	}
	fields, err := parseFields(rec, "")
	if err != nil {
		return nil, fmt.Errorf("key schema %s: %w", rec.FullName(), err)
	}
	decl := make([]avro.Schema, len(rec.Fields()))
	for i, f := range rec.Fields() {
		decl[i] = f.Type()
	}
	return &keyInfo{fields: fields, decl: decl}, nil
}

func parseFields(rec *avro.RecordSchema, d Dialect) ([]fieldInfo, error) {
	out := make([]fieldInfo, 0, len(rec.Fields()))
	for _, f := range rec.Fields() {
		s := f.Type()
		optional := false
		if u, ok := deref(s).(*avro.UnionSchema); ok {
			optional = u.Nullable()
			s = nonNull(s)
		}
		t, err := columnType(s, d)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name(), err)
		}
		fi := fieldInfo{name: f.Name(), column: f.Name(), typ: t, optional: optional, schema: s}
		if n := t.Params[paramColumnName]; n != "" {
			fi.column = n
		}
		def := any(nil)
		if f.HasDefault() {
			// hamba/avro resolved the JSON default against the field's
			// (first) type: int, int64, float32/64, string, []byte.
			def = f.Default()
		}
		if def == nil {
			def = connectDefault(s)
		}
		if def != nil {
			// The column type turns it into the value a row would hold.
			v, err := nativeValue(def, &t)
			if err != nil {
				return nil, fmt.Errorf("column %s: default %v: %w", f.Name(), def, err)
			}
			if v != nil {
				fi.def, fi.hasDef = v, true
			}
		}
		out = append(out, fi)
	}
	return out, nil
}

// connectDefault is the "connect.default" property of a type, which some
// converters write instead of (or besides) the field default, as a JSON
// value: numbers come as float64 and become the int64 or float the column
// holds. Byte defaults are left to the field default, whose encoding Avro
// defines.
func connectDefault(s avro.Schema) any {
	switch v := prop(s, "connect.default").(type) {
	case string:
		if s.Type() == avro.String || s.Type() == avro.Enum {
			return v
		}
	case bool:
		return v
	case float64:
		switch s.Type() {
		case avro.Int, avro.Long:
			if v == float64(int64(v)) {
				return int64(v)
			}
		case avro.Float, avro.Double:
			return v
		}
	}
	return nil
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// nonNull returns the single non-null branch of a nullable union, or s.
func nonNull(s avro.Schema) avro.Schema {
	s = deref(s)
	u, ok := s.(*avro.UnionSchema)
	if !ok {
		return s
	}
	var branch avro.Schema
	for _, b := range u.Types() {
		if b.Type() == avro.Null {
			continue
		}
		if branch != nil {
			return s // a real multi-type union; kept as is
		}
		branch = b
	}
	if branch == nil {
		return s
	}
	return deref(branch)
}

func prop(s avro.Schema, name string) any {
	if p, ok := s.(avro.PropertySchema); ok {
		return p.Prop(name)
	}
	return nil
}

func propString(s avro.Schema, name string) string {
	switch v := prop(s, name).(type) {
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	}
	return ""
}

func connectParams(s avro.Schema) map[string]string {
	m, ok := prop(s, "connect.parameters").(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = x
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

func atoiOr(s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}

// columnType derives the semantic type of a (non-null) Avro schema.
func columnType(s avro.Schema, d Dialect) (ColumnType, error) {
	s = deref(s)
	params := connectParams(s)
	t := ColumnType{
		ConnectName: propString(s, "connect.name"),
		Params:      params,
		Dialect:     d,
		Length:      -1,
		Scale:       -1,
	}
	if params != nil {
		t.Native = strings.ToUpper(strings.TrimSpace(params[paramColumnType]))
		t.Length = atoiOr(params[paramColumnLength], -1)
		t.Scale = atoiOr(params[paramColumnScale], -1)
	}
	switch s.Type() {
	case avro.Boolean:
		t.Kind = KindBool
	case avro.Int:
		switch propString(s, "connect.type") {
		case "int8":
			t.Kind = KindInt8
		case "int16":
			t.Kind = KindInt16
		default:
			t.Kind = KindInt32
		}
		if ls := logical(s); ls == avro.Date {
			t.Kind = KindDate
		} else if ls == avro.TimeMillis {
			t.Kind = KindTime
		}
	case avro.Long:
		t.Kind = KindInt64
		switch logical(s) {
		case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			t.Kind = KindTimestamp
		case avro.TimeMicros:
			t.Kind = KindTime
		}
	case avro.Float:
		t.Kind = KindFloat32
	case avro.Double:
		t.Kind = KindFloat64
	case avro.String:
		t.Kind = KindString
	case avro.Bytes, avro.Fixed:
		t.Kind = KindBytes
		if dl, ok := logicalSchema(s).(*avro.DecimalLogicalSchema); ok {
			t.Kind = KindDecimal
			t.Precision, t.DecimalScale = dl.Precision(), dl.Scale()
		}
	case avro.Enum:
		t.Kind = KindString
	case avro.Array:
		t.Kind = KindArray
		items := deref(s.(*avro.ArraySchema).Items())
		if u, ok := items.(*avro.UnionSchema); ok && u.Nullable() {
			items = nonNull(items)
		}
		et, err := columnType(items, d)
		if err != nil {
			return t, fmt.Errorf("array items: %w", err)
		}
		t.Elem = &et
	case avro.Record, avro.Map:
		t.Kind = KindStruct
		if r, ok := s.(*avro.RecordSchema); ok && t.ConnectName == "" {
			t.ConnectName = r.FullName()
		}
	case avro.Union:
		return t, fmt.Errorf("union of %s is not a Kafka Connect type", s.String())
	default:
		return t, fmt.Errorf("unsupported Avro type %s", s.Type())
	}

	switch t.ConnectName {
	case cnDecimal:
		t.Kind = KindDecimal
		if t.Precision == 0 {
			t.Precision = atoiOr(params["connect.decimal.precision"], 0)
		}
		if sc, ok := params["scale"]; ok {
			t.DecimalScale = atoiOr(sc, t.DecimalScale)
		}
	case cnVarDecimal:
		t.Kind = KindVarDecimal
	case cnConnectDate, cnDate:
		t.Kind = KindDate
	case cnConnectTime, cnTime, cnMicroTime, cnNanoTime:
		t.Kind = KindTime
	case cnConnectTimestamp, cnTimestamp, cnMicroTimestamp, cnNanoTimestamp:
		t.Kind = KindTimestamp
	case cnZonedTimestamp:
		t.Kind = KindTimestampTZ
	case cnZonedTime:
		t.Kind = KindTimeTZ
	case cnMicroDuration:
		t.Kind = KindInterval
	case cnInterval:
		// ISO-8601 text (interval.handling.mode=string): kept as text, the
		// native INTERVAL name lets a PostgreSQL target recreate the type.
		t.Kind = KindString
	case cnYear:
		t.Kind = KindYear
	case cnJSON:
		t.Kind = KindJSON
	case cnUUID:
		t.Kind = KindUUID
	case cnEnum:
		t.Kind = KindEnum
	case cnEnumSet:
		t.Kind = KindEnumSet
	case cnXML:
		t.Kind = KindXML
	case cnBits:
		t.Kind = KindBits
		t.BitLength = atoiOr(params["length"], 0)
	case cnGeometry, cnPoint:
		if s.Type() == avro.Record {
			t.Kind = KindGeometry
		}
	}
	if t.Kind == KindDecimal && s.Type() != avro.Bytes && s.Type() != avro.Fixed {
		return t, fmt.Errorf("%s must be bytes, not %s", cnDecimal, s.Type())
	}
	return t, nil
}

func logicalSchema(s avro.Schema) avro.LogicalSchema {
	if l, ok := s.(avro.LogicalTypeSchema); ok {
		return l.Logical()
	}
	return nil
}

func logical(s avro.Schema) avro.LogicalType {
	if ls := logicalSchema(s); ls != nil {
		return ls.Type()
	}
	return ""
}

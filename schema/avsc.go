package schema

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The schema text follows what the Confluent AvroConverter (AvroData with
// connect.meta.data=true) produces from Debezium's Connect schemas, printed
// the way Avro Java's Schema.toString does:
//   - primitives with no properties are bare strings, otherwise objects with
//     "type" first and then properties in insertion order: for Decimal the
//     Avro "scale"/"precision", then connect.doc, connect.version,
//     connect.parameters, connect.default, connect.name, connect.type, and
//     last the logicalType;
//   - records are {"type","name","namespace" (only when it differs from the
//     enclosing one),"fields",connect.* properties}; a record already written
//     is referred to by name (short when in the enclosing namespace);
//   - an optional field is ["null",T] with default null, or [T,"null"] with
//     the default value when the Connect schema has a default;
//   - Connect int8/int16 are Avro "int" with connect.type.
//
// The text is compact and fully determined by the Table, so equal tables give
// byte-identical schemas and the registry dedups them.

// schemaWriter renders one top-level schema; defined tracks named records
// already written in it (Avro allows one definition per full name).
type schemaWriter struct {
	topic   string
	defined map[string]string // full name -> standalone definition
}

func newSchemaWriter(topic string) *schemaWriter {
	return &schemaWriter{topic: topic, defined: map[string]string{}}
}

// SchemaError is a table description that cannot be turned into a schema.
type SchemaError struct {
	Topic  string
	Column string // path of the offending column; empty for the table itself
	Msg    string
}

func (e *SchemaError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("schema: topic %q: %s", e.Topic, e.Msg)
	}
	return fmt.Sprintf("schema: topic %q column %q: %s", e.Topic, e.Column, e.Msg)
}

func (w *schemaWriter) errf(path, format string, args ...any) error {
	return &SchemaError{Topic: w.topic, Column: path, Msg: fmt.Sprintf(format, args...)}
}

// reserve claims a full name for a record defined by the package itself.
func (w *schemaWriter) reserve(full string) { w.defined[full] = "\x00reserved" }

func avroPrimitive(k Kind) string {
	switch k {
	case Boolean:
		return "boolean"
	case Int8, Int16, Int32:
		return "int"
	case Int64:
		return "long"
	case Float32:
		return "float"
	case Float64:
		return "double"
	case String:
		return "string"
	case Bytes:
		return "bytes"
	}
	return ""
}

func isDecimal(t *Type) bool { return strings.EqualFold(t.Name, DecimalName) }

// field appends one Avro record field for column c.
func (w *schemaWriter) field(b []byte, ns string, c *Column, path string) ([]byte, error) {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, AvroFieldName(c.Name))
	b = append(b, `,"type":`...)
	var err error
	if b, err = w.fieldType(b, ns, &c.Type, c.Optional, path); err != nil {
		return b, err
	}
	switch {
	case c.Type.Default != nil:
		b = append(b, `,"default":`...)
		if b, err = w.defaultJSON(b, &c.Type, false, path); err != nil {
			return b, err
		}
	case c.Optional:
		b = append(b, `,"default":null`...)
	}
	return append(b, '}'), nil
}

// fieldType appends the type of a field or array items, as a union when optional.
func (w *schemaWriter) fieldType(b []byte, ns string, t *Type, optional bool, path string) ([]byte, error) {
	if !optional {
		return w.base(b, ns, t, path)
	}
	var err error
	if t.Default != nil && t.Kind != Struct {
		b = append(b, '[')
		if b, err = w.base(b, ns, t, path); err != nil {
			return b, err
		}
		return append(b, `,"null"]`...), nil
	}
	b = append(b, `["null",`...)
	if b, err = w.base(b, ns, t, path); err != nil {
		return b, err
	}
	return append(b, ']'), nil
}

// base appends the non-union schema of t.
func (w *schemaWriter) base(b []byte, ns string, t *Type, path string) ([]byte, error) {
	var err error
	switch t.Kind {
	case Boolean, Int8, Int16, Int32, Int64, Float32, Float64, String, Bytes:
		dec := isDecimal(t)
		if dec && t.Kind != Bytes {
			return b, w.errf(path, "%s must be Kind Bytes", DecimalName)
		}
		if t.Default != nil {
			if err := checkValue(t, t.Default); err != nil {
				return b, w.errf(path, "default: %v", err)
			}
		}
		logical := ""
		switch {
		case dec:
			logical = "decimal"
		case strings.EqualFold(t.Name, ConnectDateName):
			logical = "date"
		case strings.EqualFold(t.Name, ConnectTimeName):
			logical = "time-millis"
		case strings.EqualFold(t.Name, ConnectTimestampName):
			logical = "timestamp-millis"
		}
		ctype := ""
		switch t.Kind {
		case Int8:
			ctype = "int8"
		case Int16:
			ctype = "int16"
		}
		if !dec && logical == "" && ctype == "" && !hasConnectProps(t) && !hasAvroParams(t) {
			return appendJSONString(b, avroPrimitive(t.Kind)), nil
		}
		b = append(b, `{"type":`...)
		b = appendJSONString(b, avroPrimitive(t.Kind))
		if dec {
			scale, precision, err := decimalScalePrecision(t)
			if err != nil {
				return b, w.errf(path, "%v", err)
			}
			b = append(b, `,"scale":`...)
			b = strconv.AppendInt(b, int64(scale), 10)
			b = append(b, `,"precision":`...)
			b = strconv.AppendInt(b, int64(precision), 10)
		}
		if b, err = w.connectProps(b, t, true, true, path); err != nil {
			return b, err
		}
		if ctype != "" {
			b = append(b, `,"connect.type":`...)
			b = appendJSONString(b, ctype)
		}
		if logical != "" {
			b = append(b, `,"logicalType":`...)
			b = appendJSONString(b, logical)
		}
		// AvroData copies parameters whose key starts with "avro" as Avro properties.
		for _, k := range orderedParams(t.Params) {
			if strings.HasPrefix(k, "avro") {
				b = append(b, ',')
				b = appendJSONString(b, k)
				b = append(b, ':')
				b = appendJSONString(b, t.Params[k])
			}
		}
		return append(b, '}'), nil

	case Array:
		if t.Items == nil {
			return b, w.errf(path, "array type has no Items")
		}
		if t.Default != nil {
			return b, w.errf(path, "array types cannot have a default")
		}
		b = append(b, `{"type":"array","items":`...)
		if b, err = w.fieldType(b, ns, t.Items, t.ItemsOptional, path+"[]"); err != nil {
			return b, err
		}
		if b, err = w.connectProps(b, t, false, true, path); err != nil {
			return b, err
		}
		return append(b, '}'), nil

	case Struct:
		if t.Default != nil {
			return b, w.errf(path, "struct types cannot have a default")
		}
		full := t.StructName
		if full == "" {
			full = t.Name
		}
		if full == "" {
			return b, w.errf(path, "struct type needs a Name or StructName")
		}
		full = AvroFullName(full)
		// A record may be defined once per schema; a second column of the
		// same struct type refers to it, but a different struct under the
		// same name cannot be written in Avro at all. The comparison leaves
		// the parameters out: the AvroConverter writes the first column's
		// record and refers to it from the others, whose parameters (their
		// __debezium.source.column.* among them) are then lost, as with
		// Debezium (DBZ-6964).
		sa := newSchemaWriter(w.topic)
		bare := *t
		bare.Params = nil
		standalone, err := sa.record(nil, "", full, &bare, t.Fields, path, true, nestedFields)
		if err != nil {
			return b, err
		}
		if prev, ok := w.defined[full]; ok {
			if prev != string(standalone) {
				return b, w.errf(path, "struct %s differs from another type of the same name in this table (Avro allows one definition per name)", full)
			}
			space, name := splitFullName(full)
			if space == ns {
				return appendJSONString(b, name), nil
			}
			return appendJSONString(b, full), nil
		}
		w.defined[full] = string(standalone)
		return w.record(b, ns, full, t, t.Fields, path, true, nestedFields)
	}
	return b, w.errf(path, "unknown Kind %d", t.Kind)
}

// fieldsOf says whose fields a record holds, which decides the
// column.propagate.source.type parameters they carry.
type fieldsOf uint8

const (
	nestedFields fieldsOf = iota // struct members, the source block: as given
	keyFields                    // <topic>.Key: no __debezium.source.column.* parameters
	valueFields                  // <topic>.Value: __debezium.source.column.name added
)

// record appends a record definition named full (already sanitised) with the
// connect properties of t (nil for none).
func (w *schemaWriter) record(b []byte, ns, full string, t *Type, fields []Column, path string, autoVersion bool, of fieldsOf) ([]byte, error) {
	space, name := splitFullName(full)
	b = append(b, `{"type":"record","name":`...)
	b = appendJSONString(b, name)
	if space != ns {
		b = append(b, `,"namespace":`...)
		b = appendJSONString(b, space)
	}
	b = append(b, `,"fields":[`...)
	seen := make(map[string]string, len(fields))
	var err error
	for i := range fields {
		c := &fields[i]
		fpath := c.Name
		if path != "" {
			fpath = path + "." + c.Name
		}
		fn := AvroFieldName(c.Name)
		if other, dup := seen[fn]; dup {
			return b, w.errf(fpath, "Avro field name %q is also the name of column %q", fn, other)
		}
		seen[fn] = c.Name
		if i > 0 {
			b = append(b, ',')
		}
		if of != nestedFields {
			c = sourceColumnParams(c, of)
		}
		if b, err = w.field(b, space, c, fpath); err != nil {
			return b, err
		}
	}
	b = append(b, ']')
	if t != nil {
		if b, err = w.connectProps(b, t, false, autoVersion, path); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// sourceColumnParams is c as Debezium's column.propagate.source.type writes
// it in a key or value record. Debezium applies that column mapper to value
// fields only (TableSchemaBuilder.create adds key fields without mappers), so
// key fields keep the type's own parameters (a Decimal's scale, an Enum's
// allowed values) but none of __debezium.source.column.*; value fields that
// carry the source type also carry the column's own name, which the Avro
// field name may have had to change (PropagateSourceMetadataToSchemaParameter).
func sourceColumnParams(c *Column, of fieldsOf) *Column {
	p := c.Type.Params
	switch of {
	case keyFields:
		n := 0
		for k := range p {
			if strings.HasPrefix(k, sourceColumnParamPrefix) {
				n++
			}
		}
		if n == 0 {
			return c
		}
		q := make(map[string]string, len(p)-n)
		for k, v := range p {
			if !strings.HasPrefix(k, sourceColumnParamPrefix) {
				q[k] = v
			}
		}
		if len(q) == 0 {
			q = nil
		}
		cc := *c
		cc.Type.Params = q
		return &cc
	case valueFields:
		if _, typed := p[SourceColumnTypeParam]; !typed {
			return c
		}
		if name, ok := p[SourceColumnNameParam]; ok && name == c.Name {
			return c
		}
		q := make(map[string]string, len(p)+1)
		for k, v := range p {
			q[k] = v
		}
		q[SourceColumnNameParam] = c.Name
		cc := *c
		cc.Type.Params = q
		return &cc
	}
	return c
}

func hasConnectProps(t *Type) bool {
	return t.Doc != "" || versionOf(t.Name, t.Version) != 0 || len(t.Params) > 0 || t.Default != nil || t.Name != ""
}

func hasAvroParams(t *Type) bool {
	for k := range t.Params {
		if strings.HasPrefix(k, "avro") {
			return true
		}
	}
	return false
}

// connectProps appends AvroData's connect.* properties of t, each preceded by
// a comma.
func (w *schemaWriter) connectProps(b []byte, t *Type, withDefault, autoVersion bool, path string) ([]byte, error) {
	if t.Doc != "" {
		b = append(b, `,"connect.doc":`...)
		b = appendJSONString(b, t.Doc)
	}
	v := t.Version
	if autoVersion {
		v = versionOf(t.Name, v)
	}
	if v != 0 {
		b = append(b, `,"connect.version":`...)
		b = strconv.AppendInt(b, int64(v), 10)
	}
	if len(t.Params) > 0 {
		b = append(b, `,"connect.parameters":{`...)
		for i, k := range orderedParams(t.Params) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, t.Params[k])
		}
		b = append(b, '}')
	}
	if withDefault && t.Default != nil {
		b = append(b, `,"connect.default":`...)
		var err error
		if b, err = w.defaultJSON(b, t, true, path); err != nil {
			return b, err
		}
	}
	if t.Name != "" {
		b = append(b, `,"connect.name":`...)
		b = appendJSONString(b, t.Name)
	}
	return b, nil
}

// defaultJSON appends t.Default as JSON: as connect.default (bytes as base64,
// as Jackson writes a binary node) or as the Avro field default (bytes as a
// string of code points 0-255, per the Avro spec).
func (w *schemaWriter) defaultJSON(b []byte, t *Type, connect bool, path string) ([]byte, error) {
	switch v := t.Default.(type) {
	case bool:
		return strconv.AppendBool(b, v), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return b, w.errf(path, "default %v cannot be written in JSON", v)
		}
		return appendJavaFloat(b, float64(v), 32), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return b, w.errf(path, "default %v cannot be written in JSON", v)
		}
		return appendJavaFloat(b, v, 64), nil
	case string:
		return appendJSONString(b, v), nil
	case []byte:
		if connect {
			return appendJSONString(b, base64.StdEncoding.EncodeToString(v)), nil
		}
		r := make([]rune, len(v))
		for i, c := range v {
			r[i] = rune(c)
		}
		return appendJSONString(b, string(r)), nil
	}
	return b, w.errf(path, "default of Go type %T is not supported", t.Default)
}

// decimalScalePrecision reads a Decimal's parameters as AvroData does:
// scale is required, precision defaults to 64.
func decimalScalePrecision(t *Type) (scale, precision int, err error) {
	s, ok := t.Params[DecimalScaleParam]
	if !ok {
		return 0, 0, fmt.Errorf("%s needs the %q parameter", DecimalName, DecimalScaleParam)
	}
	if scale, err = strconv.Atoi(s); err != nil {
		return 0, 0, fmt.Errorf("%s scale %q: %w", DecimalName, s, err)
	}
	precision = 64
	if p, ok := t.Params[DecimalPrecisionParam]; ok {
		if precision, err = strconv.Atoi(p); err != nil {
			return 0, 0, fmt.Errorf("%s precision %q: %w", DecimalName, p, err)
		}
	}
	return scale, precision, nil
}

// paramRank orders the parameters whose position Debezium's builders fix:
// the type's own parameters first, then those of column.propagate.source.type.
var paramRank = map[string]int{
	DecimalScaleParam:        1,
	DecimalPrecisionParam:    2,
	EnumAllowedParam:         3,
	BitsLengthParam:          4,
	SourceColumnTypeParam:    101,
	SourceColumnLengthParam:  102,
	SourceColumnScaleParam:   103,
	SourceColumnCommentParam: 104,
	SourceColumnNameParam:    105,
}

// orderedParams gives the map's keys in a fixed order: ranked keys, then other
// keys sorted, with __debezium.* keys after the type's own keys.
func orderedParams(p map[string]string) []string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if r, ok := paramRank[k]; ok {
			return r
		}
		if strings.HasPrefix(k, "__debezium.") {
			return 200
		}
		return 50
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return keys
}

// appendJavaFloat writes a number the way Java's Double/Float.toString does
// ("1.0", "0.001", "1.0E10"), which is what Jackson puts in schema defaults.
func appendJavaFloat(b []byte, v float64, bits int) []byte {
	a := math.Abs(v)
	if v == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(v, 'f', -1, bits)
		if !strings.ContainsRune(s, '.') {
			s += ".0"
		}
		return append(b, s...)
	}
	s := strconv.FormatFloat(v, 'E', -1, bits) // e.g. 1.5E+10, 1E-05
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.ContainsRune(mant, '.') {
		mant += ".0"
	}
	neg := strings.HasPrefix(exp, "-")
	exp = strings.TrimLeft(exp, "+-")
	exp = strings.TrimLeft(exp, "0")
	if exp == "" {
		exp = "0"
	}
	b = append(b, mant...)
	b = append(b, 'E')
	if neg {
		b = append(b, '-')
	}
	return append(b, exp...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string without HTML escaping, as
// Jackson does; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// keySchemaJSON is the <topic>.Key record of the key columns, or "" when the
// table has no key.
func keySchemaJSON(t *Table) (string, error) {
	if len(t.Key) == 0 {
		return "", nil
	}
	topic := AvroFullName(t.Topic)
	w := newSchemaWriter(t.Topic)
	cols := make([]Column, len(t.Key))
	for i, k := range t.Key {
		if k < 0 || k >= len(t.Columns) {
			return "", w.errf("", "key index %d out of range (table has %d columns)", k, len(t.Columns))
		}
		cols[i] = t.Columns[k]
	}
	full := topic + ".Key"
	w.reserve(full)
	b, err := w.record(make([]byte, 0, 256), "", full, &Type{Name: full}, cols, "", false, keyFields)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// valueSchemaJSON is the <topic>.Envelope record, with fields in Debezium's
// order: before, after, source, transaction, op, ts_ms, ts_us, ts_ns.
func valueSchemaJSON(t *Table, src *SourceBlock) (string, error) {
	topic := AvroFullName(t.Topic)
	w := newSchemaWriter(t.Topic)
	if src == nil || src.Name == "" {
		return "", w.errf("", "source block has no name")
	}
	valueName := topic + ".Value"
	srcName := AvroFullName(src.Name)
	for _, n := range []string{topic + ".Envelope", valueName, srcName, "event.block"} {
		w.reserve(n)
	}
	b := make([]byte, 0, 2048)
	b = append(b, `{"type":"record","name":"Envelope","namespace":`...)
	b = appendJSONString(b, topic)
	b = append(b, `,"fields":[{"name":"before","type":["null",`...)
	var err error
	if b, err = w.record(b, topic, valueName, &Type{Name: valueName}, t.Columns, "", false, valueFields); err != nil {
		return "", err
	}
	b = append(b, `],"default":null},{"name":"after","type":["null","Value"],"default":null},{"name":"source","type":`...)
	if b, err = w.record(b, topic, srcName, &Type{Name: srcName, Version: src.Version}, src.Fields, "source", false, nestedFields); err != nil {
		return "", err
	}
	b = append(b, `},{"name":"transaction","type":["null",{"type":"record","name":"block","namespace":"event","fields":[`+
		`{"name":"id","type":"string"},{"name":"total_order","type":"long"},{"name":"data_collection_order","type":"long"}],`+
		`"connect.version":1,"connect.name":"event.block"}],"default":null},`+
		`{"name":"op","type":"string"},`+
		`{"name":"ts_ms","type":["null","long"],"default":null},`+
		`{"name":"ts_us","type":["null","long"],"default":null},`+
		`{"name":"ts_ns","type":["null","long"],"default":null}],"connect.version":2,"connect.name":`...)
	b = appendJSONString(b, topic+".Envelope")
	b = append(b, '}')
	return string(b), nil
}

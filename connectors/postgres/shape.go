package postgres

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// colSpec is a column as both the catalog (snapshot) and a pgoutput Relation
// message (streaming) describe it, so both paths build identical shapes and
// the runtime registers no spurious schema version between them.
type colSpec struct {
	Name    string
	TypeOID uint32
	TypMod  int32
	// Default is the column default as pg_get_expr prints it ("" for
	// none). Relation messages lack it: it comes from the catalog.
	Default string
}

// shape is one version of a captured table: its schema.Table, the decoder of
// each column's text form and a scratch row reused for every event.
type shape struct {
	id       tableID
	table    schema.Table
	cols     []colSpec
	decoders []pgtypeDecoder
	// placeholder is the value sent for an unchanged TOASTed column that the
	// WAL does not carry (Debezium's unavailable.value.placeholder), or nil
	// for kinds that cannot carry it.
	placeholder []any
	// unknown lists columns whose type is sent as text.
	unknown []string
	keySet  []bool
	// noDefault[i] says why column i's default is not in the schema
	// (reason "" when it has none or it is there); see pgColumnDefault.
	noDefault []defaultGap
}

type defaultGap struct{ reason, detail string }

// buildShape maps columns to a schema.Table. key lists column names of the
// message key in key order; key columns are required, every other column is
// optional with default null, so adding or dropping one is a
// BACKWARD-compatible schema change.
func buildShape(topicPrefix string, id tableID, cols []colSpec, key []string, cat pgtypeCatalog) (*shape, error) {
	s := &shape{
		id:          id,
		cols:        cols,
		decoders:    make([]pgtypeDecoder, len(cols)),
		placeholder: make([]any, len(cols)),
		keySet:      make([]bool, len(cols)),
	}
	s.table.Topic = source.TopicName(topicPrefix, id.Schema, id.Name)
	s.table.Columns = make([]schema.Column, len(cols))
	for _, k := range key {
		i := -1
		for j, c := range cols {
			if c.Name == k {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("table %s: key column %q does not exist (columns: %s)", id, k, colNames(cols))
		}
		if s.keySet[i] {
			return nil, fmt.Errorf("table %s: key column %q listed twice", id, k)
		}
		s.keySet[i] = true
		s.table.Key = append(s.table.Key, i)
	}
	for i, c := range cols {
		t, dec, known := pgtypeLookup(c.TypeOID, c.TypMod, cat)
		if !known {
			s.unknown = append(s.unknown, c.Name)
		}
		s.decoders[i] = dec
		if c.Default != "" {
			var g defaultGap
			t.Default, g.reason, g.detail = pgColumnDefault(c, t, dec, cat)
			if g.reason != "" {
				if s.noDefault == nil {
					s.noDefault = make([]defaultGap, len(cols))
				}
				s.noDefault[i] = g
			}
		}
		s.table.Columns[i] = schema.Column{Name: c.Name, Type: t, Optional: !s.keySet[i]}
		s.placeholder[i] = placeholderFor(t)
	}
	return s, nil
}

// placeholderFor is the unavailable-value placeholder in the Go form of t:
// the string for text-like kinds, its bytes for binary kinds, a one-element
// list for arrays of those, the placeholder's bytes as numbers for integer
// arrays and a one-element list of its name-based UUID for uuid arrays, as
// Debezium's UnchangedToastedPlaceholder sends them.
func placeholderFor(t schema.Type) any {
	if t.Kind == schema.Array && t.Items != nil && t.Items.Name == "" {
		switch t.Items.Kind {
		case schema.Int16, schema.Int32:
			out := make([]any, len(schema.UnavailableValue))
			for i := range out {
				out[i] = int32(schema.UnavailableValue[i])
			}
			return out
		case schema.Int64:
			out := make([]any, len(schema.UnavailableValue))
			for i := range out {
				out[i] = int64(schema.UnavailableValue[i])
			}
			return out
		}
	}
	if t.Kind == schema.Array && t.Items != nil && t.Items.Name == schema.UUIDName {
		return []any{unavailableUUID}
	}
	switch t.Kind {
	case schema.String:
		return schema.UnavailableValue
	case schema.Bytes:
		if t.Name == schema.DecimalName || t.Name == schema.VariableScaleDecimalName {
			return nil
		}
		return []byte(schema.UnavailableValue)
	case schema.Array:
		if t.Items != nil {
			if p := placeholderFor(*t.Items); p != nil {
				return []any{p}
			}
		}
	}
	return nil
}

// unavailableUUID is Java's UUID.nameUUIDFromBytes of the placeholder, the
// element of Debezium's placeholder for a uuid[] column.
var unavailableUUID = func() string {
	h := md5.Sum([]byte(schema.UnavailableValue))
	h[6] = h[6]&0x0f | 0x30
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}()

func colNames(cols []colSpec) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// sameShape reports whether two shapes encode identically, so a repeated
// Relation message (sent at every session start) does not ask for a codec.
func sameShape(a, b *shape) bool {
	if a == nil || b == nil || a.table.Topic != b.table.Topic || len(a.cols) != len(b.cols) || len(a.table.Key) != len(b.table.Key) {
		return false
	}
	for i := range a.cols {
		if a.cols[i] != b.cols[i] {
			return false
		}
	}
	for i := range a.table.Key {
		if a.table.Key[i] != b.table.Key[i] {
			return false
		}
	}
	return true
}

// describeChange explains how b differs from a, naming the columns, for the
// schema-change log line and for errors when the registry refuses the change.
func describeChange(a, b *shape) string {
	if a == nil {
		return "new table"
	}
	old := map[string]colSpec{}
	for _, c := range a.cols {
		old[c.Name] = c
	}
	var parts []string
	seen := map[string]bool{}
	for i, c := range b.cols {
		seen[c.Name] = true
		o, ok := old[c.Name]
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("added column %s (%s)", c.Name, kindName(b.table.Columns[i].Type)))
		case o.TypeOID != c.TypeOID || o.TypMod != c.TypMod:
			j := indexOfCol(a.cols, c.Name)
			parts = append(parts, fmt.Sprintf("column %s changed type from %s to %s", c.Name,
				kindName(a.table.Columns[j].Type), kindName(b.table.Columns[i].Type)))
		case o.Default != c.Default:
			parts = append(parts, fmt.Sprintf("column %s default changed from %q to %q", c.Name, o.Default, c.Default))
		}
	}
	for _, c := range a.cols {
		if !seen[c.Name] {
			parts = append(parts, "dropped column "+c.Name)
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "key or column order changed")
	}
	return strings.Join(parts, ", ")
}

func indexOfCol(cols []colSpec, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func kindName(t schema.Type) string {
	if src := t.Params[schema.SourceColumnTypeParam]; src != "" {
		return src
	}
	if t.Name != "" {
		return t.Name
	}
	names := map[schema.Kind]string{
		schema.Boolean: "boolean", schema.Int8: "int8", schema.Int16: "int16", schema.Int32: "int32",
		schema.Int64: "int64", schema.Float32: "float", schema.Float64: "double", schema.String: "string",
		schema.Bytes: "bytes", schema.Array: "array", schema.Struct: "struct",
	}
	return names[t.Kind]
}

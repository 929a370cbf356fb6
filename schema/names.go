package schema

import "strings"

// AvroFullName makes a dotted Connect/Avro full name (a topic, a record name)
// valid Avro the way Debezium's schema.name.adjustment.mode=avro does: every
// character outside [A-Za-z0-9_] becomes '_'. Unlike Debezium, a component
// that starts with a digit also gets its first character replaced, because
// strict Avro parsers (hamba/avro among them) reject such namespaces.
func AvroFullName(s string) string {
	if s == "" {
		return "_"
	}
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = avroIdent(p)
	}
	return strings.Join(parts, ".")
}

// AvroFieldName makes a column name a valid Avro field name the way
// Debezium's field.name.adjustment.mode=avro does
// (SchemaNameAdjuster.AVRO_FIELD_NAMER): every UTF-16 code unit outside
// [A-Za-z0-9_] becomes '_' ('.' too), and a leading digit is kept after the
// '_' that replaces it ("1st" -> "_1st"), so names differing only there stay
// apart. The source's own spelling travels in __debezium.source.column.name.
func AvroFieldName(s string) string {
	if s == "" {
		return "_"
	}
	if validIdent(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z'):
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		case r > 0xFFFF:
			b.WriteString("__") // a surrogate pair in Java's String
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func avroIdent(s string) string {
	if s == "" {
		return "_"
	}
	if validIdent(s) {
		return s
	}
	var b strings.Builder
	first := true
	for _, r := range s {
		ok := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (!first && r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		first = false
	}
	return b.String()
}

func validIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// splitFullName splits "a.b.C" into namespace "a.b" and name "C".
func splitFullName(full string) (space, name string) {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "", full
}

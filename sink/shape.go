package sink

import (
	"fmt"
	"strings"
)

// distinctColumns checks that no two fields of a row schema name the same
// copy column (two source columns whose spellings differ only in what the
// Avro field names adjusted are still told apart by their source names;
// two fields naming one source column are an error).
func distinctColumns(fields []fieldInfo) error {
	if len(fields) < 2 {
		return nil
	}
	seen := make(map[string]string, len(fields))
	for _, f := range fields {
		if other, dup := seen[f.column]; dup {
			return fmt.Errorf("fields %s and %s both name the source column %q", other, f.name, f.column)
		}
		seen[f.column] = f.name
	}
	return nil
}

// mergeType is the column type that holds the values of both old and new,
// a newer schema version's type of the column: new itself when it widens
// old or changes it in another way (a target then alters its column or
// says why it cannot), old when new only narrows it (values written
// before still fit, and a copy must never be narrower than its rows).
// changed reports whether the result differs from old.
func mergeType(old, new *ColumnType) (ColumnType, bool) {
	if old.equalShape(new) {
		return *old, false
	}
	if narrows(old, new) {
		return *old, false
	}
	m := *new
	if (m.Kind == KindEnum || m.Kind == KindEnumSet) && m.Kind == old.Kind {
		// The source's new list, in its order; values dropped from it stay
		// allowed in the copy (after it): rows written before may hold
		// them.
		allowed := mergeAllowed(new.Params["allowed"], old.Params["allowed"])
		if allowed != new.Params["allowed"] {
			m.Params = make(map[string]string, len(new.Params))
			for k, v := range new.Params {
				m.Params[k] = v
			}
			m.Params["allowed"] = allowed
		}
		if old.equalShape(&m) {
			return *old, false
		}
	}
	return m, true
}

// mergeAllowed appends to a the values of b it lacks.
func mergeAllowed(a, b string) string {
	if a == "" {
		return b
	}
	have := map[string]bool{}
	for _, v := range SplitAllowed(a) {
		have[v] = true
	}
	out := a
	for _, v := range SplitAllowed(b) {
		if v != "" && !have[v] {
			out += "," + strings.ReplaceAll(v, ",", `\,`)
			have[v] = true
		}
	}
	return out
}

// SplitAllowed splits an Enum/EnumSet "allowed" parameter into its values:
// at commas, except a comma escaped as "\," (Debezium's binlog connectors
// escape a comma inside a value; see schema.JoinAllowedEscaped).
func SplitAllowed(s string) []string {
	if !strings.Contains(s, `\,`) {
		return strings.Split(s, ",")
	}
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// intRank orders the integer kinds by width.
func intRank(k Kind) int {
	switch k {
	case KindInt8:
		return 1
	case KindInt16:
		return 2
	case KindInt32:
		return 3
	case KindInt64:
		return 4
	}
	return 0
}

// narrows reports whether every value of new fits old's column: the same
// family with a smaller (or equal) size.
func narrows(old, new *ColumnType) bool {
	if old.Dialect != new.Dialect {
		return false
	}
	ro, rn := intRank(old.Kind), intRank(new.Kind)
	if ro > 0 && rn > 0 {
		return rn <= ro && unsignedOf(old) == unsignedOf(new)
	}
	switch {
	case old.Kind == KindFloat64 && new.Kind == KindFloat32:
		return true
	case old.Kind != new.Kind:
		return false
	}
	switch old.Kind {
	case KindString:
		if baseNative(old) != baseNative(new) {
			return textCapacity(new) <= textCapacity(old) && textCapacity(old) > 0 && isVarText(old)
		}
		return old.Length < 0 || (new.Length >= 0 && new.Length <= old.Length)
	case KindBytes:
		return baseNative(old) == baseNative(new) && (old.Length < 0 || (new.Length >= 0 && new.Length <= old.Length))
	case KindDecimal:
		op, os := decimalShape(old)
		np, ns := decimalShape(new)
		if op <= 0 {
			return true // unbounded numeric holds any decimal
		}
		return np > 0 && ns <= os && np-ns <= op-os
	case KindBits:
		return new.BitLength <= old.BitLength && new.Length <= old.Length
	case KindEnum, KindEnumSet:
		have := map[string]bool{}
		for _, v := range SplitAllowed(old.Params["allowed"]) {
			have[v] = true
		}
		for _, v := range SplitAllowed(new.Params["allowed"]) {
			if !have[v] {
				return false
			}
		}
		return true
	}
	return false
}

func unsignedOf(t *ColumnType) bool { return strings.Contains(t.Native, "UNSIGNED") }

func baseNative(t *ColumnType) string {
	if i := strings.IndexByte(t.Native, ' '); i > 0 {
		return t.Native[:i]
	}
	return t.Native
}

// isVarText tells whether a string type has no padding (char(n) pads).
func isVarText(t *ColumnType) bool {
	switch baseNative(t) {
	case "CHAR", "BPCHAR":
		return false
	}
	return true
}

// textCapacity is the most characters a string type holds; -1 unknown.
func textCapacity(t *ColumnType) int64 {
	switch baseNative(t) {
	case "TINYTEXT":
		return 255
	case "TEXT":
		if t.Dialect == DialectMySQL {
			return 65535
		}
		return 1 << 40
	case "MEDIUMTEXT":
		return 16 << 20
	case "LONGTEXT", "":
		return 1 << 40
	}
	if t.Length >= 0 {
		return int64(t.Length)
	}
	return 1 << 40
}

// decimalShape is a decimal's precision and scale; precision 0 when
// unbounded.
func decimalShape(t *ColumnType) (int, int) {
	if t.Length > 0 && t.Scale >= 0 {
		return t.Length, t.Scale
	}
	return t.Precision, t.DecimalScale
}

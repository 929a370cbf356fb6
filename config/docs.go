package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// Docs writes the Markdown reference of the pipeline file: the top-level
// sections and the keys every connector entry shares. It is generated from
// the struct tags, so it cannot drift from what Parse accepts.
func Docs(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# Pipeline configuration reference

A pipeline file is YAML with the top-level keys ` + "`log`, `registry`, `worker`, `sources` and `sinks`" + `.
Unknown keys are rejected everywhere, and every error names the file, line, column and key,
e.g. ` + "`pipeline.yaml:12:5: sources[0].slot: must match [a-z0-9_]+`" + `.

Any value may use:

| syntax | meaning |
|---|---|
| ` + "`${VAR}`" + ` | the environment variable VAR; an unset variable is an error |
| ` + "`${VAR:-default}`" + ` | VAR, or default when VAR is unset or empty; the default may hold references, ` + "`${A:-${B}/x}`" + ` |
| ` + "`${file:PATH}`" + ` | the content of the file PATH (relative to the pipeline file's folder), trailing newlines removed: for secrets |
| ` + "`$${`" + ` | a literal ` + "`${`" + ` |

Durations are written like ` + "`100ms`, `5s`, `1m30s`" + `; byte sizes like ` + "`65536`, `512KiB`, `64MiB`" + `.
A list of strings may also be given as one comma-separated string.
Top-level keys starting with ` + "`x-`" + ` are ignored, so they can hold YAML anchors that
several connectors merge (` + "`<<: *common`" + `).

`)
	p := &Pipeline{}
	applyDefaults(reflect.ValueOf(p).Elem())
	pv := reflect.ValueOf(p).Elem()
	for _, f := range structFields(pv.Type()) {
		if f.key != "log" && f.key != "registry" && f.key != "worker" {
			continue
		}
		fmt.Fprintf(&b, "## `%s`\n\n%s\n\n", f.key, f.sf.Tag.Get("desc"))
		writeTable(&b, f.key, pv.FieldByIndex(f.index))
		b.WriteString("\n")
	}
	b.WriteString("## `sources` and `sinks`\n\n")
	b.WriteString("Lists of connectors. Every entry has these keys; all its other keys belong to the connector's type and are listed in that connector's reference.\n\n")
	b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
	b.WriteString("| `name` | string | | Required. Unique among all sources and sinks, `[a-zA-Z0-9_-]+`. Used in offset keys and the Debezium `source.name` field, so renaming a connector starts it afresh. |\n")
	b.WriteString("| `type` | string | | Required. The connector type, e.g. `postgres`. |\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// DocsFor writes a Markdown section titled title with one table row per key
// of cfg, a struct or pointer to one (typically a driver's NewConfig()):
// key, type, default (the `default` tag, else cfg's non-zero value) and the
// `desc` tag, plus allowed values and whether the key is required.
func DocsFor(title string, cfg any, w io.Writer) error {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v = reflect.New(v.Type().Elem()).Elem()
			break
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("config: DocsFor(%q): want a struct, got %T", title, cfg)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", title)
	writeTable(&b, "", v)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTable(b *strings.Builder, prefix string, v reflect.Value) {
	b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
	writeRows(b, prefix, v)
}

func writeRows(b *strings.Builder, prefix string, v reflect.Value) {
	for _, f := range structFields(v.Type()) {
		key := joinPath(prefix, f.key)
		fv := v.FieldByIndex(f.index)
		desc := f.sf.Tag.Get("desc")
		if f.required {
			desc = "Required. " + desc
		}
		if len(f.enum) > 0 {
			desc = strings.TrimSpace(desc + " One of: `" + strings.Join(f.enum, "`, `") + "`.")
		}
		def, hasDef := f.sf.Tag.Lookup("default")
		if !hasDef && !fv.IsZero() && isLeaf(fv.Type()) {
			def = fmt.Sprint(fv.Interface())
		}
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", key, typeName(f.sf.Type), cell(def), cell(desc))
		t := f.sf.Type
		switch {
		case t.Kind() == reflect.Struct && !isLeaf(t):
			writeRows(b, key, fv)
		case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && !isLeaf(t.Elem()):
			inner := reflect.New(t.Elem()).Elem()
			if !fv.IsNil() {
				inner = fv.Elem()
			} else {
				applyDefaults(inner)
			}
			writeRows(b, key, inner)
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !isLeaf(t.Elem()):
			inner := reflect.New(t.Elem()).Elem()
			applyDefaults(inner)
			writeRows(b, key+"[]", inner)
		}
	}
}

// isLeaf is true for types written as one scalar.
func isLeaf(t reflect.Type) bool {
	if t == durationType || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
		return false
	}
	return true
}

func typeName(t reflect.Type) string {
	switch t {
	case durationType, reflect.TypeFor[Duration]():
		return "duration"
	case reflect.TypeFor[ByteSize]():
		return "byte size"
	case reflect.TypeFor[Secret]():
		return "string (secret)"
	case reflect.TypeFor[time.Time]():
		return "timestamp"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + plural(typeName(t.Elem()))
	case reflect.Map:
		return "map of " + plural(typeName(t.Elem()))
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Struct && !isLeaf(t.Elem()) {
			return "object, optional"
		}
		return typeName(t.Elem())
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(textUnmarshaler) {
			return "string"
		}
		return "object"
	case reflect.Interface:
		return "any"
	}
	return t.String()
}

func plural(s string) string {
	switch {
	case strings.HasPrefix(s, "list of "):
		return "lists of " + strings.TrimPrefix(s, "list of ")
	case strings.HasPrefix(s, "map of "):
		return "maps of " + strings.TrimPrefix(s, "map of ")
	case strings.HasPrefix(s, "object"):
		return "objects"
	case s == "any":
		return "values"
	case strings.HasSuffix(s, ")"):
		return s
	}
	return s + "s"
}

// cell makes text safe inside a Markdown table cell: pipes end cells, and
// outside code spans "<name>" would be taken for an HTML tag and vanish.
func cell(s string) string {
	var b strings.Builder
	inCode := false
	for _, r := range s {
		switch {
		case r == '`':
			inCode = !inCode
			b.WriteRune(r)
		case r == '|':
			b.WriteString(`\|`)
		case r == '\n':
			b.WriteByte(' ')
		case !inCode && (r == '<' || r == '>'):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

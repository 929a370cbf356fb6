package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/tributary-cdc/tributary/source"
)

// The decoder maps YAML nodes onto typed structs itself, rather than through
// go-yaml's reflection, so that every error carries the full key path
// ("sources[0].slot") and the key's line, unknown keys are listed with the
// valid ones, `default` tags fill absent keys, and Validate errors can be
// mapped back to the key they name. The tags it reads are listed in the
// package documentation.

// document is one parsed file, shared by the Pipeline and its Connectors.
type document struct {
	file    string
	baseDir string
	anchors map[string]ast.Node
	// values holds the interpolated text of every scalar, computed once at
	// Parse so that a secret file is read once and all interpolation errors
	// are reported up front, even for keys only a connector understands.
	values map[ast.Node]string
}

type decoder struct {
	doc  *document
	errs errorList
}

func (d *decoder) fail(pos *token.Position, path, format string, args ...any) {
	e := &Error{File: d.doc.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if pos != nil {
		e.Line, e.Col = pos.Line, pos.Column
	}
	d.errs = append(d.errs, e)
}

// resolve looks through anchors, tags and aliases to the node holding data.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for range 64 { // bounded: alias chains cannot be longer than the file
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			target, ok := d.doc.anchors[aliasName(v)]
			if !ok {
				return nil
			}
			n = target
		default:
			return n
		}
	}
	return n
}

func aliasName(a *ast.AliasNode) string {
	if a.Value == nil {
		return ""
	}
	return a.Value.GetToken().Value
}

func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// rawScalar returns a scalar's text as written (so "1.10" stays "1.10" for a
// string field), before interpolation.
func rawScalar(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	return "", false
}

func (d *decoder) scalar(n ast.Node) (string, bool) {
	if s, ok := d.doc.values[n]; ok {
		return s, true
	}
	return rawScalar(n)
}

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case nil, *ast.NullNode:
		return "null"
	}
	return "a scalar"
}

// entry is one key of a mapping, after merge keys ("<<: *base") are applied.
type entry struct {
	key   string
	pos   *token.Position
	value ast.Node
}

// entries lists a mapping's keys in order; ok is false when n is not a mapping.
func (d *decoder) entries(n ast.Node) ([]entry, bool) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		return nil, false
	}
	var merged, own []entry
	for _, mv := range values {
		if mv.Key == nil {
			continue
		}
		if _, isMerge := mv.Key.(*ast.MergeKeyNode); isMerge || mv.Key.IsMergeKey() {
			src := d.resolve(mv.Value)
			var sources []ast.Node
			if seq, ok := src.(*ast.SequenceNode); ok {
				for _, s := range seq.Values {
					sources = append(sources, d.resolve(s))
				}
			} else {
				sources = append(sources, src)
			}
			for _, s := range sources {
				if es, ok := d.entries(s); ok {
					merged = append(merged, es...)
				}
			}
			continue
		}
		key := mv.Key.GetToken().Value
		if s, ok := rawScalar(mv.Key); ok {
			key = s
		}
		own = append(own, entry{key: key, pos: mv.Key.GetToken().Position, value: mv.Value})
	}
	if len(merged) == 0 {
		return own, true
	}
	// Explicit keys override merged ones; later merges lose to earlier ones.
	var out []entry
	seen := map[string]bool{}
	for _, e := range own {
		seen[e.key] = true
	}
	for _, e := range merged {
		if !seen[e.key] {
			seen[e.key] = true
			out = append(out, e)
		}
	}
	return append(out, own...), true
}

// position of a node for error messages: a mapping is located at its first
// key (go-yaml puts a mapping's token on the first ':').
func (d *decoder) position(n ast.Node) *token.Position {
	n2 := d.resolve(n)
	if n2 != nil {
		n = n2
	}
	if es, ok := d.entries(n); ok && len(es) > 0 {
		return es[0].pos
	}
	if n == nil || n.GetToken() == nil {
		return nil
	}
	return n.GetToken().Position
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	if strings.HasPrefix(key, "[") {
		return base + key
	}
	return base + "." + key
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	nodeUnmarshaler = reflect.TypeFor[interface {
		unmarshalNode(d *decoder, n ast.Node, path string, at *token.Position)
	}]()
	validator    = reflect.TypeFor[interface{ Validate() error }]()
	durationType = reflect.TypeFor[time.Duration]()
)

// decode stores node n into v. path names the value ("log.listen"), at is
// where to point errors about it (its key, or its list item).
func (d *decoder) decode(n ast.Node, v reflect.Value, path string, at *token.Position) {
	n = d.resolve(n)
	if isNull(n) {
		return // absent and null keep the default
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			applyDefaults(v.Elem())
		}
		d.decode(n, v.Elem(), path, at)
		return
	}
	if v.CanAddr() {
		pv := v.Addr()
		if pv.Type().Implements(nodeUnmarshaler) {
			pv.Interface().(interface {
				unmarshalNode(d *decoder, n ast.Node, path string, at *token.Position)
			}).unmarshalNode(d, n, path, at)
			return
		}
		if pv.Type().Implements(textUnmarshaler) {
			s, ok := d.scalar(n)
			if !ok {
				d.fail(at, path, "expected a scalar value, got %s", describe(n))
				return
			}
			if err := pv.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				d.fail(at, path, "%v", err)
			}
			return
		}
	}
	if v.Type() == durationType {
		s, ok := d.scalar(n)
		if !ok {
			d.fail(at, path, "expected a duration such as 100ms, got %s", describe(n))
			return
		}
		dur, err := parseDuration(s)
		if err != nil {
			d.fail(at, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path, at, nil)
	case reflect.Slice:
		d.decodeSlice(n, v, path, at)
	case reflect.Map:
		d.decodeMap(n, v, path, at)
	case reflect.Interface:
		if v.NumMethod() != 0 {
			d.fail(at, path, "cannot decode into %s", v.Type())
			return
		}
		if g := d.generic(n, path, at); g != nil {
			v.Set(reflect.ValueOf(g))
		}
	default:
		s, ok := d.scalar(n)
		if !ok {
			d.fail(at, path, "expected %s, got %s", kindName(v.Type()), describe(n))
			return
		}
		if err := setScalar(v, s); err != nil {
			d.fail(at, path, "%v", err)
		}
	}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// setScalar parses text into a basic-kind value. It is shared by decoding and
// by `default` tags, so defaults are written exactly like YAML values.
func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("expected true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), intBase(s), v.Type().Bits())
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return fmt.Errorf("%s is out of range for %s", s, v.Type())
			}
			return fmt.Errorf("expected an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), intBase(s), v.Type().Bits())
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return fmt.Errorf("%s is out of range for %s", s, v.Type())
			}
			return fmt.Errorf("expected a non-negative integer, got %q", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("expected a number, got %q", s)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot decode a scalar into %s", v.Type())
	}
	return nil
}

// intBase is 10 unless a 0x/0o/0b prefix says otherwise: a leading zero is
// not octal, which is what users writing "010" mean.
func intBase(s string) int {
	t := strings.ToLower(strings.TrimLeft(strings.TrimSpace(s), "+-"))
	if strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0o") || strings.HasPrefix(t, "0b") {
		return 0
	}
	return 10
}

func (d *decoder) decodeSlice(n ast.Node, v reflect.Value, path string, at *token.Position) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		// A scalar for a list of strings is comma-separated, so that
		// `brokers: ${KAFKA_BROKERS}` works with "h1:9092,h2:9092".
		if s, isScalar := d.scalar(n); isScalar && v.Type().Elem().Kind() == reflect.String {
			var parts []string
			for p := range strings.SplitSeq(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
			out := reflect.MakeSlice(v.Type(), len(parts), len(parts))
			for i, p := range parts {
				out.Index(i).SetString(p)
			}
			v.Set(out)
			return
		}
		d.fail(at, path, "expected a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		elem := out.Index(i)
		applyDefaults(elem)
		p := fmt.Sprintf("%s[%d]", path, i)
		if isNull(d.resolve(item)) {
			// "- " with nothing after it is almost always a mistake; a nil
			// element would also be a trap for every consumer of the list.
			pos := at
			if item != nil && item.GetToken() != nil {
				pos = item.GetToken().Position
			}
			d.fail(pos, p, "empty list item")
			continue
		}
		d.decode(item, elem, p, d.position(item))
	}
	v.Set(out)
}

func (d *decoder) decodeMap(n ast.Node, v reflect.Value, path string, at *token.Position) {
	if v.Type().Key().Kind() != reflect.String {
		d.fail(at, path, "cannot decode into %s: map keys must be strings", v.Type())
		return
	}
	es, ok := d.entries(n)
	if !ok {
		d.fail(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, e := range es {
		elem := reflect.New(v.Type().Elem()).Elem()
		applyDefaults(elem)
		d.decode(e.value, elem, joinPath(path, e.key), e.pos)
		v.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), elem)
	}
}

// generic decodes into any: map[string]any, []any, or the scalar's text
// typed as YAML would (int64, float64, bool, string).
func (d *decoder) generic(n ast.Node, path string, at *token.Position) any {
	n = d.resolve(n)
	if isNull(n) {
		return nil
	}
	if es, ok := d.entries(n); ok {
		m := make(map[string]any, len(es))
		for _, e := range es {
			m[e.key] = d.generic(e.value, joinPath(path, e.key), e.pos)
		}
		return m
	}
	if seq, ok := n.(*ast.SequenceNode); ok {
		out := make([]any, len(seq.Values))
		for i, item := range seq.Values {
			out[i] = d.generic(item, fmt.Sprintf("%s[%d]", path, i), d.position(item))
		}
		return out
	}
	s, ok := d.scalar(n)
	if !ok {
		d.fail(at, path, "unsupported YAML node %s", n.Type())
		return nil
	}
	switch n.(type) {
	case *ast.IntegerNode:
		if i, err := strconv.ParseInt(s, intBase(s), 64); err == nil {
			return i
		}
	case *ast.FloatNode:
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	case *ast.BoolNode:
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	}
	return s
}

// field is one YAML key of a struct type.
type field struct {
	key      string
	index    []int
	sf       reflect.StructField
	required bool
	enum     []string
}

func structFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		inline := strings.Contains(","+opts+",", ",inline,") || (sf.Anonymous && !hasTag)
		if inline && sf.Type.Kind() == reflect.Struct {
			for _, f := range structFields(sf.Type) {
				f.index = append([]int{i}, f.index...)
				out = append(out, f)
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		f := field{key: name, index: []int{i}, sf: sf, required: sf.Tag.Get("required") == "true"}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		}
		out = append(out, f)
	}
	return out
}

func keyList(fs []field, skip map[string]bool) string {
	keys := make([]string, 0, len(fs))
	for _, f := range fs {
		if !skip[f.key] {
			keys = append(keys, f.key)
		}
	}
	return strings.Join(keys, ", ")
}

// decodeStruct decodes a mapping into a struct; keys in skip belong to
// someone else (a connector's name and type) and are neither decoded nor
// rejected.
func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string, at *token.Position, skip map[string]bool) {
	es, ok := d.entries(n)
	if !ok {
		d.fail(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	before := len(d.errs)
	applyDefaults(v)
	fs := structFields(v.Type())
	byKey := make(map[string]*field, len(fs))
	for i := range fs {
		byKey[fs[i].key] = &fs[i]
	}
	present := map[string]bool{}
	nullAt := map[string]*token.Position{}
	for _, e := range es {
		if skip[e.key] {
			continue
		}
		f, ok := byKey[e.key]
		if !ok {
			d.fail(e.pos, joinPath(path, e.key), "unknown key (valid keys: %s)", keyList(fs, skip))
			continue
		}
		present[e.key] = !isNull(d.resolve(e.value))
		if !present[e.key] {
			nullAt[e.key] = e.pos
		}
		fv := v.FieldByIndex(f.index)
		d.decode(e.value, fv, joinPath(path, e.key), e.pos)
		if len(f.enum) > 0 && fv.Kind() == reflect.String && present[e.key] && !slices.Contains(f.enum, fv.String()) {
			d.fail(e.pos, joinPath(path, e.key), "%q is not one of %s", fv.String(), strings.Join(f.enum, ", "))
		}
	}
	for _, f := range fs {
		switch {
		case !f.required || present[f.key] || skip[f.key]:
		case nullAt[f.key] != nil:
			d.fail(nullAt[f.key], joinPath(path, f.key), "required key has no value")
		default:
			d.fail(at, joinPath(path, f.key), "required key is missing")
		}
	}
	if len(d.errs) > before {
		return // Validate on half-decoded values would only add noise
	}
	if v.CanAddr() && v.Addr().Type().Implements(validator) {
		if err := v.Addr().Interface().(interface{ Validate() error }).Validate(); err != nil {
			d.validationErrors(err, n, path, at)
		}
	}
}

// validationErrors maps what a Validate method returned onto the YAML:
// a *source.FieldError names a key relative to the validated struct, which
// is looked up to report its line; anything else is reported at the struct.
func (d *decoder) validationErrors(err error, n ast.Node, path string, at *token.Position) {
	for _, e := range flatten(err) {
		var fe *source.FieldError
		if !asFieldError(e, &fe) {
			d.fail(at, path, "%v", e)
			continue
		}
		pos, found := d.lookup(n, fe.Key)
		if !found || pos == nil {
			pos = at
		}
		d.fail(pos, joinPath(path, fe.Key), "%s", fe.Msg)
	}
}

// asFieldError finds a field error in err's chain: a *source.FieldError, or
// any other package's *FieldError with string fields Key and Msg (sink has
// its own, to stay independent of source; matching by shape keeps config
// from importing every runtime that reports field errors).
func asFieldError(err error, target **source.FieldError) bool {
	for e := err; e != nil; e = unwrapOne(e) {
		if fe, ok := e.(*source.FieldError); ok {
			*target = fe
			return true
		}
		v := reflect.ValueOf(e)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct || v.Elem().Type().Name() != "FieldError" {
			continue
		}
		key, msg := v.Elem().FieldByName("Key"), v.Elem().FieldByName("Msg")
		if key.IsValid() && msg.IsValid() && key.Kind() == reflect.String && msg.Kind() == reflect.String {
			*target = &source.FieldError{Key: key.String(), Msg: msg.String()}
			return true
		}
	}
	return false
}

func unwrapOne(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return nil
}

var keySegment = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// lookup finds the position of a dotted key path ("snapshot.mode",
// "tables[2]" or "tables.2") under n. When the full path is absent (e.g. a
// required key was left out) it returns the deepest part that exists and
// found=false.
func (d *decoder) lookup(n ast.Node, key string) (pos *token.Position, found bool) {
	cur := d.resolve(n)
	segs := keySegment.FindAllString(key, -1)
	for i := 0; i < len(segs); i++ {
		seg := segs[i]
		idx := -1
		if strings.HasPrefix(seg, "[") {
			idx, _ = strconv.Atoi(strings.Trim(seg, "[]"))
		} else if k, err := strconv.Atoi(seg); err == nil {
			if _, isSeq := cur.(*ast.SequenceNode); isSeq {
				idx = k
			}
		}
		if idx >= 0 {
			seq, ok := cur.(*ast.SequenceNode)
			if !ok || idx >= len(seq.Values) {
				return pos, false
			}
			pos = d.position(seq.Values[idx])
			cur = d.resolve(seq.Values[idx])
			continue
		}
		es, ok := d.entries(cur)
		if !ok {
			return pos, false
		}
		// A map key may itself contain dots (key_columns: {public.orders: ...}):
		// try the longest run of segments that names an entry.
		var next *entry
		for j := len(segs); j > i && next == nil; j-- {
			cand := strings.Join(segs[i:j], ".")
			for k := range es {
				if es[k].key == cand {
					next, i = &es[k], j-1
					break
				}
			}
		}
		if next == nil {
			return pos, false
		}
		pos = next.pos
		cur = d.resolve(next.value)
	}
	return pos, true
}

// applyDefaults sets `default` tags on zero-valued fields, recursing into
// nested structs (not through nil pointers: an absent optional section stays
// absent).
func applyDefaults(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for _, f := range structFields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		if def, ok := f.sf.Tag.Lookup("default"); ok && fv.IsZero() {
			if err := setDefault(fv, def); err != nil {
				// A bad default tag is a programming error in the struct.
				panic(fmt.Sprintf("config: default tag of %s.%s: %v", v.Type(), f.sf.Name, err))
			}
		}
		if fv.Kind() == reflect.Struct {
			applyDefaults(fv)
		}
	}
}

func setDefault(v reflect.Value, def string) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(def))
	}
	if v.Type() == durationType {
		d, err := parseDuration(def)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String {
		var parts []string
		for p := range strings.SplitSeq(def, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		out := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			out.Index(i).SetString(p)
		}
		v.Set(out)
		return nil
	}
	return setScalar(v, def)
}

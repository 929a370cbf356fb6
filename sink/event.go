package sink

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// Decoder turns Confluent-framed Avro into generic values: records as
// map[string]any, unions either unwrapped or as hamba/avro's
// {"<branch>": value} (both are accepted). schema.Decoder satisfies it; tests
// pass a map-backed one.
type Decoder interface {
	Decode(ctx context.Context, data []byte) (schemaID int, value any, err error)
	Schema(ctx context.Context, id int) (avro.Schema, error)
}

// tableState is a target table the sink writes, with the columns merged from
// every schema version seen so far.
type tableState struct {
	spec    *TableSpec
	ensured bool // EnsureTable ran since the spec last changed
	colsets map[string]*ColSet
	keyed   bool
	// keyKnown is set once a keyed or keyless row event decided keyed.
	keyKnown bool
	// keyTyped is set once key columns took their type from a value schema.
	keyTyped bool
}

func (t *tableState) intern(cols []*ColumnSpec) *ColSet {
	cs := newColSet(cols)
	if old, ok := t.colsets[cs.sig]; ok {
		return old
	}
	t.colsets[cs.sig] = cs
	return cs
}

// binding maps one (value schema, key schema, table) to the table's columns.
type binding struct {
	table  *tableState
	fields []fieldInfo    // the kept fields of the value schema
	cols   []*ColumnSpec  // the table column of each kept field
	full   *ColSet        // all kept columns
	key    *keyInfo       // nil for a keyless table
	keyCol []*ColumnSpec  // table columns of key fields
	byName map[string]int // field name -> index in fields
	envIdx []int          // index in the envelope's fields of each kept field
	// identity is set when every envelope field is kept, in order: a
	// decoded row can then be used as it is.
	identity bool
	keyPos   []int // index in fields of each key column
}

type bindingKey struct {
	valueID, keyID int
	table          string
}

// decoder is the per-run decoding state.
type decoder struct {
	sink      string
	dec       Decoder
	log       *slog.Logger
	format    string
	split     bool
	insert    bool
	include   fieldFilter
	exclude   fieldFilter
	envelopes map[int]*envelopeInfo
	keys      map[int]*keyInfo
	tables    map[string]*tableState
	bindings  map[bindingKey]*binding
	names     map[tableNameKey]tableNameVal
	// The previous event's name and binding: consecutive events are
	// mostly of one table and schema version.
	lastNameKey tableNameKey
	lastName    tableNameVal
	lastBK      bindingKey
	lastB       *binding
	// topicBind is the latest binding of each topic, so a tombstone (no
	// value, hence no table name) can be applied to the table of its topic.
	topicBind map[string]*binding
	// tombstonesUnbound names the topics whose tombstones came before any
	// change of theirs in this run (logged once per topic).
	tombstonesUnbound map[string]bool
	// quiesce, when set, waits until no batch is being applied: bind must
	// not change table specs while a target reads them.
	quiesce func()
}

// fieldFilter holds "column" and "topic:column" entries.
type fieldFilter struct {
	any     map[string]bool
	byTopic map[string]map[string]bool
}

func newFieldFilter(entries []string) fieldFilter {
	f := fieldFilter{any: map[string]bool{}, byTopic: map[string]map[string]bool{}}
	for _, e := range entries {
		if topic, col, ok := strings.Cut(e, ":"); ok {
			if f.byTopic[topic] == nil {
				f.byTopic[topic] = map[string]bool{}
			}
			f.byTopic[topic][col] = true
		} else {
			f.any[e] = true
		}
	}
	return f
}

func (f fieldFilter) empty() bool { return len(f.any) == 0 && len(f.byTopic) == 0 }

func (f fieldFilter) has(topic, col string) bool {
	return f.any[col] || f.byTopic[topic][col]
}

// recordErr is an error that belongs to one record: it may go to the
// dead-letter topic. Other errors stop the sink.
type recordErr struct {
	stage string // Kafka Connect stage: KEY_CONVERTER, VALUE_CONVERTER, TASK_PUT
	err   error
}

func (e *recordErr) Error() string { return e.err.Error() }
func (e *recordErr) Unwrap() error { return e.err }

func recErr(stage string, format string, args ...any) error {
	return &recordErr{stage: stage, err: fmt.Errorf(format, args...)}
}

// RecordError is returned by Run when a record cannot be applied and
// errors.tolerance is none. It names the record and the cause.
type RecordError struct {
	Sink   string
	Record *Record
	// Stage is where it failed: KEY_CONVERTER, VALUE_CONVERTER (decoding)
	// or TASK_PUT (the target rejected it).
	Stage string
	Err   error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("sink %s: record at %s: %v", e.Sink, e.Record.where(), e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// frameID reads the Confluent wire-format header.
func frameID(b []byte) (int, error) {
	if len(b) < 5 {
		return 0, fmt.Errorf("%d bytes is too short for the Confluent wire format (magic byte, 4-byte schema id, Avro)", len(b))
	}
	if b[0] != 0 {
		return 0, fmt.Errorf("magic byte is %d, not 0: not Confluent-framed Avro", b[0])
	}
	return int(binary.BigEndian.Uint32(b[1:5])), nil
}

// errSchema wraps failures to fetch a schema: they stop the sink, because
// they are about the registry, not about one record.
type errSchema struct{ err error }

func (e *errSchema) Error() string { return e.err.Error() }
func (e *errSchema) Unwrap() error { return e.err }

func (d *decoder) envelope(ctx context.Context, topic string, id int) (*envelopeInfo, error) {
	if e, ok := d.envelopes[id]; ok {
		return e, nil
	}
	s, err := d.dec.Schema(ctx, id)
	if err != nil {
		return nil, &errSchema{fmt.Errorf("fetching value schema id %d of topic %s from the registry: %w", id, topic, err)}
	}
	e, err := parseEnvelope(s)
	if err != nil {
		return nil, recErr("VALUE_CONVERTER", "value schema id %d: %w", id, err)
	}
	d.envelopes[id] = e
	return e, nil
}

func (d *decoder) keySchema(ctx context.Context, topic string, id int) (*keyInfo, error) {
	if k, ok := d.keys[id]; ok {
		return k, nil
	}
	s, err := d.dec.Schema(ctx, id)
	if err != nil {
		return nil, &errSchema{fmt.Errorf("fetching key schema id %d of topic %s from the registry: %w", id, topic, err)}
	}
	k, err := parseKey(s)
	if err != nil {
		return nil, recErr("KEY_CONVERTER", "key schema id %d: %w", id, err)
	}
	d.keys[id] = k
	return k, nil
}

// decode turns one record into at most one change. A nil change with a nil
// error means the record is skipped by design.
func (d *decoder) decode(ctx context.Context, rec *Record) (*tableState, *Change, error) {
	if rec.Value == nil {
		return d.tombstone(ctx, rec)
	}
	valueID, err := frameID(rec.Value)
	if err != nil {
		return nil, nil, recErr("VALUE_CONVERTER", "value: %w", err)
	}
	env, err := d.envelope(ctx, rec.Topic, valueID)
	if err != nil {
		return nil, nil, err
	}
	var keyRaw []any
	var key *keyInfo
	keyID := -1
	if rec.Key != nil {
		keyID, err = frameID(rec.Key)
		if err != nil {
			return nil, nil, recErr("KEY_CONVERTER", "key: %w", err)
		}
		if key, err = d.keySchema(ctx, rec.Topic, keyID); err != nil {
			return nil, nil, err
		}
		if keyRaw, err = decodeKey(key.decl, rec.Key[5:]); err != nil {
			return nil, nil, recErr("KEY_CONVERTER", "decoding key with schema id %d: %w", keyID, err)
		}
		rec.keyInfo, rec.keyRaw = key, keyRaw
	}
	var ev fastEvent
	if env.fast != nil {
		if ev, err = env.fast.decode(rec.Value[5:]); err != nil {
			return nil, nil, recErr("VALUE_CONVERTER", "decoding value with schema id %d: %w", valueID, err)
		}
	} else if ev, err = d.decodeGeneric(ctx, env, rec.Value, valueID); err != nil {
		return nil, nil, err
	}
	name, err := d.tableNameOf(rec.Topic, ev.db, ev.schema, ev.table)
	if err != nil {
		return nil, nil, recErr("VALUE_CONVERTER", "%w", err)
	}
	op := ev.op
	if op == "t" {
		// Truncates carry a null key even for keyed tables, and may be the
		// first event of a table in this run: no binding needed.
		return d.table(name), &Change{Op: OpTruncate, Rec: rec}, nil
	}
	b, err := d.bind(rec.Topic, valueID, env, keyID, key, name)
	if err != nil {
		return nil, nil, err
	}
	if d.topicBind == nil {
		d.topicBind = map[string]*binding{}
	}
	d.topicBind[rec.Topic] = b
	t := b.table
	switch op {
	case "c", "r", "u":
		if ev.row == nil {
			return nil, nil, recErr("VALUE_CONVERTER", "op %q event has no after row", op)
		}
		ch, err := d.rowChange(b, ev.row)
		if err != nil {
			return nil, nil, recErr("VALUE_CONVERTER", "%w", err)
		}
		ch.Rec = rec
		return t, ch, nil
	case "d":
		if !t.keyed {
			return nil, nil, recErr("TASK_PUT", "delete on table %s, which has no primary key (the record key is null): a keyless copy cannot tell which row to delete; set key_columns for this table at the source", t.spec.QualifiedName())
		}
		kv := make([]any, len(b.keyCol))
		for i, f := range b.key.fields {
			nv, err := nativeValue(keyRaw[i], &b.keyCol[i].Type)
			if err != nil {
				return nil, nil, recErr("KEY_CONVERTER", "key column %s: %w", f.name, err)
			}
			kv[i] = nv
		}
		return t, &Change{Op: OpDelete, Key: kv, Rec: rec}, nil
	case "":
		return nil, nil, recErr("VALUE_CONVERTER", "event has no op field")
	default:
		return nil, nil, recErr("VALUE_CONVERTER", "unknown op %q (want c, r, u, d or t)", op)
	}
}

// tombstone applies a tombstone as a delete of its key. A delete event is
// always followed by a tombstone, and compaction keeps only the latest record
// of a key: a sink that lags behind compaction (or replays a compacted
// topic) may find the tombstone without the delete before it, and skipping
// it would leave the deleted row in the copy for good. Deleting an absent
// row is harmless, so applying every tombstone is safe.
func (d *decoder) tombstone(ctx context.Context, rec *Record) (*tableState, *Change, error) {
	if rec.Key == nil {
		return nil, nil, nil
	}
	b := d.topicBind[rec.Topic]
	if b == nil || b.key == nil || !b.table.keyed {
		// No change of this topic seen yet in this run, so its table is
		// unknown. A copy can only hold this key if an earlier run applied
		// it; say so once per topic rather than drop it silently.
		if d.tombstonesUnbound == nil {
			d.tombstonesUnbound = map[string]bool{}
		}
		if !d.tombstonesUnbound[rec.Topic] {
			d.tombstonesUnbound[rec.Topic] = true
			d.log.Warn("tombstone before any change of its topic in this run: its table is unknown, so it is not applied (a row deleted while the sink lagged behind compaction may stay until the key changes again or the copy is replayed)",
				"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
		}
		return nil, nil, nil
	}
	keyID, err := frameID(rec.Key)
	if err != nil {
		return nil, nil, recErr("KEY_CONVERTER", "key: %w", err)
	}
	key, err := d.keySchema(ctx, rec.Topic, keyID)
	if err != nil {
		return nil, nil, err
	}
	keyRaw, err := decodeKey(key.decl, rec.Key[5:])
	if err != nil {
		return nil, nil, recErr("KEY_CONVERTER", "decoding key with schema id %d: %w", keyID, err)
	}
	kv := make([]any, len(b.keyCol))
	for i, f := range b.key.fields {
		j := -1
		for k := range key.fields {
			if key.fields[k].name == f.name {
				j = k
				break
			}
		}
		if j < 0 {
			return nil, nil, recErr("KEY_CONVERTER", "tombstone key schema id %d has no field %s of table %s's key", keyID, f.name, b.table.spec.QualifiedName())
		}
		nv, err := nativeValue(keyRaw[j], &b.keyCol[i].Type)
		if err != nil {
			return nil, nil, recErr("KEY_CONVERTER", "key column %s: %w", f.name, err)
		}
		kv[i] = nv
	}
	return b.table, &Change{Op: OpDelete, Key: kv, Rec: rec}, nil
}

// decodeGeneric decodes an envelope the fast plan does not cover through
// the Decoder.
func (d *decoder) decodeGeneric(ctx context.Context, env *envelopeInfo, value []byte, valueID int) (fastEvent, error) {
	_, v, err := d.dec.Decode(ctx, value)
	if err != nil {
		return fastEvent{}, recErr("VALUE_CONVERTER", "decoding value with schema id %d: %w", valueID, err)
	}
	m, ok := unwrapUnion(v).(map[string]any)
	if !ok {
		return fastEvent{}, recErr("VALUE_CONVERTER", "value decoded to %T, not an envelope record", v)
	}
	var ev fastEvent
	ev.op, _ = unwrapUnion(m["op"]).(string)
	src, _ := unwrapUnion(m["source"]).(map[string]any)
	str := func(k string) string {
		s, _ := unwrapUnion(src[k]).(string)
		return s
	}
	ev.db, ev.schema, ev.table = str("db"), str("schema"), str("table")
	if after, _ := unwrapUnion(m["after"]).(map[string]any); after != nil {
		ev.row = make([]any, len(env.fields))
		for j := range env.fields {
			f := &env.fields[j]
			ev.row[j] = finish(after[f.name], &f.typ)
		}
	}
	return ev, nil
}

// rowChange builds the upsert or insert of one after row, whose values are
// in envelope field order (native values or unavail/convErr markers).
func (d *decoder) rowChange(b *binding, vals []any) (*Change, error) {
	if b.identity && plainRow(b, vals) {
		ch := &Change{Op: OpUpsert, Row: vals, Cols: b.full}
		if d.insert || !b.table.keyed {
			ch.Op = OpInsert
		}
		if b.table.keyed {
			ch.Key = make([]any, len(b.keyPos))
			for i, p := range b.keyPos {
				ch.Key[i] = vals[p]
			}
		}
		return ch, nil
	}
	row := make([]any, 0, len(b.fields))
	var cols []*ColumnSpec // set only when a column is unavailable
	var missing []*ColumnSpec
	for i := range b.fields {
		f := &b.fields[i]
		v := vals[b.envIdx[i]]
		if u, ok := v.(unavail); ok {
			if !b.cols[i].Key {
				// Debezium sent its placeholder for a value the source did
				// not log (an unchanged TOASTed column): leave the column as
				// it is. It is never written as NULL or as the placeholder.
				if cols == nil {
					cols = append([]*ColumnSpec(nil), b.cols[:i]...)
				}
				missing = append(missing, b.cols[i])
				continue
			}
			nv, err := nativeValue(u.raw, &f.typ)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", f.name, err)
			}
			v = nv
		}
		if ce, ok := v.(convErr); ok {
			return nil, fmt.Errorf("column %s: %w", f.name, ce.err)
		}
		if v == nil && b.cols[i].Key {
			return nil, fmt.Errorf("key column %s is null", f.name)
		}
		row = append(row, v)
		if cols != nil {
			cols = append(cols, b.cols[i])
		}
	}
	ch := &Change{Op: OpUpsert, Row: row, Cols: b.full, Unavail: missing}
	if cols != nil {
		ch.Cols = b.table.intern(cols)
	}
	if d.insert || !b.table.keyed {
		ch.Op = OpInsert
	}
	if b.table.keyed {
		ch.Key = make([]any, len(b.keyCol))
		if cols == nil {
			for i, p := range b.keyPos {
				ch.Key[i] = row[p]
			}
		} else {
			for i, kc := range b.keyCol {
				ch.Key[i] = rowValue(ch, kc)
			}
		}
	}
	return ch, nil
}

// plainRow reports whether vals holds only native values and no null key.
func plainRow(b *binding, vals []any) bool {
	for i, v := range vals {
		switch v.(type) {
		case unavail, convErr:
			return false
		case nil:
			if b.cols[i].Key {
				return false
			}
		}
	}
	return true
}

func rowValue(ch *Change, c *ColumnSpec) any {
	for i, cc := range ch.Cols.Columns {
		if cc == c {
			return ch.Row[i]
		}
	}
	return nil
}

type tableNameKey struct{ topic, db, schema, table string }

type tableNameVal struct {
	name string
	err  error
}

// tableName applies table_name_format to one event's source block.
func (d *decoder) tableName(topic string, src map[string]any) (string, error) {
	str := func(k string) string {
		s, _ := unwrapUnion(src[k]).(string)
		return s
	}
	return d.tableNameOf(topic, str("db"), str("schema"), str("table"))
}

// tableNameOf applies table_name_format; results are cached, since every
// event of a table asks the same question.
func (d *decoder) tableNameOf(topic, db, sch, tbl string) (string, error) {
	k := tableNameKey{topic, db, sch, tbl}
	if d.lastName.name != "" && k == d.lastNameKey {
		return d.lastName.name, nil
	}
	if v, ok := d.names[k]; ok {
		d.lastNameKey, d.lastName = k, v
		return v.name, v.err
	}
	name, err := d.formatName(topic, db, sch, tbl)
	if d.names == nil || len(d.names) >= 4096 {
		d.names = map[tableNameKey]tableNameVal{}
	}
	d.names[k] = tableNameVal{name, err}
	return name, err
}

func (d *decoder) formatName(topic, db, sch, tbl string) (string, error) {
	parts := strings.Split(topic, ".")
	if sch == "" {
		sch = db // MySQL events: the database is the namespace
	}
	if tbl == "" && len(parts) >= 2 {
		tbl = parts[len(parts)-1]
	}
	if sch == "" && len(parts) >= 3 {
		sch = parts[len(parts)-2]
	}
	if db == "" {
		db = sch
	}
	var missing string
	out := placeholderRe.ReplaceAllStringFunc(d.format, func(m string) string {
		var v string
		switch m[2 : len(m)-1] {
		case "topic":
			v = topic
		case "source.db":
			v = db
		case "source.schema":
			v = sch
		case "source.table":
			v = tbl
		}
		if v == "" {
			missing = m
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("table_name_format %q: the event has no value for %s", d.format, missing)
	}
	return out, nil
}

// table returns the state of a target table, creating an empty one.
func (d *decoder) table(name string) *tableState {
	if t := d.tables[name]; t != nil {
		return t
	}
	spec := &TableSpec{Name: name}
	if d.split {
		if s, n, ok := strings.Cut(name, "."); ok {
			spec.Schema, spec.Name = s, n
		}
	}
	t := &tableState{spec: spec, colsets: map[string]*ColSet{}}
	d.tables[name] = t
	return t
}

// bind finds or builds the binding of a schema pair to a table, merging the
// schema's columns into the table.
func (d *decoder) bind(topic string, valueID int, env *envelopeInfo, keyID int, key *keyInfo, name string) (*binding, error) {
	bk := bindingKey{valueID: valueID, keyID: keyID, table: name}
	if d.lastB != nil && bk == d.lastBK {
		return d.lastB, nil
	}
	if b, ok := d.bindings[bk]; ok {
		d.lastBK, d.lastB = bk, b
		return b, nil
	}
	if d.quiesce != nil {
		d.quiesce()
	}
	t := d.table(name)
	// The copy's column of a field is named as the source spells it; key
	// fields carry no source parameters, so they take the name of the
	// value field of the same Avro name.
	colOf := make(map[string]string, len(env.fields))
	for _, f := range env.fields {
		if prev, dup := colOf[f.name]; dup && prev != f.column {
			return nil, recErr("VALUE_CONVERTER", "value schema id %d has two fields named %s", valueID, f.name)
		}
		colOf[f.name] = f.column
	}
	if err := distinctColumns(env.fields); err != nil {
		return nil, recErr("VALUE_CONVERTER", "value schema id %d of table %s: %w", valueID, t.spec.QualifiedName(), err)
	}
	columnNamed := make(map[string]bool, len(env.fields))
	for _, f := range env.fields {
		columnNamed[f.column] = true
	}
	keyColumn := func(field string) string {
		if c, ok := colOf[field]; ok {
			return c
		}
		return field
	}
	if !t.keyKnown {
		t.keyKnown, t.keyed = true, key != nil
		if key != nil {
			for _, kf := range key.fields {
				c := &ColumnSpec{Name: keyColumn(kf.name), Type: kf.typ, Key: true}
				t.spec.Columns = append(t.spec.Columns, c)
				t.spec.Key = append(t.spec.Key, c)
			}
		}
	}
	if (key != nil) != t.keyed {
		return nil, recErr("KEY_CONVERTER", "table %s gets records both with and without a key; its primary key cannot be decided", t.spec.QualifiedName())
	}
	b := &binding{table: t, key: key, byName: map[string]int{}}
	keyNames := map[string]bool{}
	if key != nil {
		for _, kf := range key.fields {
			keyNames[kf.name] = true
		}
	}
	seen := map[*ColumnSpec]bool{}
	for j, f := range env.fields {
		isKey := keyNames[f.name]
		if !isKey {
			// The lists may name a column by its field name or its
			// source name.
			if !d.include.empty() && !d.include.has(topic, f.name) && !d.include.has(topic, f.column) {
				continue
			}
			if d.exclude.has(topic, f.name) || d.exclude.has(topic, f.column) {
				continue
			}
		}
		c := t.spec.Column(f.column)
		if c == nil && f.column != f.name && !columnNamed[f.name] {
			// The copy has the column under its Avro field name, from
			// schema versions without the source's spelling: it is the
			// same column, renamed.
			if old := t.spec.Column(f.name); old != nil {
				d.log.Info("column named as the source spells it from now on; the copy's column is renamed",
					"sink", d.sink, "table", t.spec.QualifiedName(), "was", old.Name, "now", f.column)
				if old.FormerName == "" {
					old.FormerName = old.Name
				}
				old.Name = f.column
				c = old
				t.ensured = false
			}
		}
		switch {
		case c == nil:
			c = &ColumnSpec{Name: f.column, Type: f.typ, Optional: f.optional, Default: f.def, HasDefault: f.hasDef}
			if f.column != f.name && !columnNamed[f.name] {
				// A copy made from events without the source's spelling
				// (an older Debezium or tributary) has this column under
				// the field name: the target renames it rather than
				// adding a second column.
				c.FormerName = f.name
			}
			t.spec.Columns = append(t.spec.Columns, c)
			t.ensured = false
		case isKey && !t.keyTyped:
			// Key columns take their type from the first value schema, which
			// carries the source type parameters of the row.
			c.Type = f.typ
		case !c.Type.equalShape(&f.typ):
			merged, changed := mergeType(&c.Type, &f.typ)
			if !changed {
				d.log.Info("column type narrowed in a new schema version; the copy keeps its wider column type",
					"sink", d.sink, "table", t.spec.QualifiedName(), "column", c.Name,
					"copy", c.Type.String(), "now", f.typ.String())
				break
			}
			d.log.Warn("column type changed in a new schema version; the copy's column follows",
				"sink", d.sink, "table", t.spec.QualifiedName(), "column", c.Name,
				"was", c.Type.String(), "now", merged.String())
			prev := c.Type
			if c.PrevType == nil {
				c.PrevType = &prev
			}
			c.Type, c.TypeChanged = merged, true
			t.ensured = false
		}
		if f.optional && !c.Optional && !c.Key {
			c.Optional = true
			t.ensured = false
		}
		seen[c] = true
		b.byName[f.name] = len(b.fields)
		b.envIdx = append(b.envIdx, j)
		b.fields = append(b.fields, f)
		b.cols = append(b.cols, c)
	}
	for _, c := range t.spec.Columns {
		if c.Key {
			if !seen[c] && key != nil {
				return nil, recErr("VALUE_CONVERTER", "key column %s of table %s is not in the value schema id %d", c.Name, t.spec.QualifiedName(), valueID)
			}
			continue
		}
		if !seen[c] && !c.Optional {
			// Gone from this schema version: rows written from now on have
			// no value for it, so the copy must accept NULL there.
			c.Optional = true
			t.ensured = false
		}
	}
	t.keyTyped = true
	if key != nil {
		for _, kf := range key.fields {
			b.keyCol = append(b.keyCol, b.cols[b.byName[kf.name]])
			b.keyPos = append(b.keyPos, b.byName[kf.name])
		}
	}
	b.full = t.intern(b.cols)
	b.identity = len(b.fields) == len(env.fields)
	for i, j := range b.envIdx {
		if i != j {
			b.identity = false
		}
	}
	d.bindings[bk] = b
	return b, nil
}

// keyText renders a decoded key as compact JSON for error messages.
func keyText(m map[string]any) string {
	clean := make(map[string]any, len(m))
	for k, v := range m {
		clean[k] = jsonable(unwrapUnion(v))
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return fmt.Sprint(m)
	}
	return string(b)
}

// rootCause is the innermost wrapped error.
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

package sinktest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/sink"
)

// Harness adapts one target database to the conformance suite.
type Harness interface {
	// NewTarget returns a new, unconnected target on the test database.
	NewTarget(t *testing.T) sink.Target
	// TableNameFormat is the table_name_format the suite's sinks use.
	TableNameFormat() string
	// Table is the SQL name of the copy of source table schema.table under
	// TableNameFormat, ready to put in a query.
	Table(schema, table string) string
	// OffsetsTable is the SQL name of tributary_offsets.
	OffsetsTable() string
	// Text renders a column as text in a query ("CAST(c AS TEXT)").
	Text(col string) string
	// Query runs a query and renders each row as "v1|v2", NULL as "NULL".
	Query(t *testing.T, sql string) []string
	Exec(t *testing.T, sql string)
	// CreateNamespace creates the schema or database a fixture table of
	// source schema schema goes to, if the target has such a thing.
	CreateNamespace(t *testing.T, schema string)
	// Nullable reports whether a column of a copy accepts NULL.
	Nullable(t *testing.T, schema, table, col string) bool
	// WKBHex renders a geometry column as the lower-case hex of its WKB.
	WKBHex(col string) string
}

// Conformance runs the scenarios every sink target must pass against a
// kfake cluster: upsert, delete, truncate, primary-key change, resume from
// stored offsets, schema evolution, one transaction per batch with its
// offsets, and the stop and dead-letter paths for a rejected record.
func Conformance(t *testing.T, h Harness) {
	t.Run("Changes", func(t *testing.T) { confChanges(t, h) })
	t.Run("Evolution", func(t *testing.T) { confEvolution(t, h) })
	t.Run("Shape", func(t *testing.T) { confShape(t, h) })
	t.Run("UnchangedToastByName", func(t *testing.T) { confToast(t, h) })
	t.Run("BatchIsOneTransaction", func(t *testing.T) { confAtomic(t, h) })
	t.Run("RejectedStops", func(t *testing.T) { confReject(t, h, false) })
	t.Run("RejectedToDLQ", func(t *testing.T) { confReject(t, h, true) })
}

// suffix makes names unique per run so tests sharing a server do not collide.
func suffix() string { return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff) }

type conf struct {
	t       *testing.T
	h       Harness
	cluster *Cluster
	reg     *Registry
	schema  string // source schema of the fixtures, unique per test
}

func newConf(t *testing.T, h Harness) *conf {
	return &conf{t: t, h: h, cluster: NewCluster(t), reg: NewRegistry(), schema: "s" + suffix()}
}

func (c *conf) spec(name string, topics ...string) sink.Spec {
	s := sink.DefaultSpec()
	s.Name = name
	s.Topics = topics
	s.FlushInterval = 20 * time.Millisecond
	s.TopicRefreshInterval = 100 * time.Millisecond
	s.TableNameFormat = c.h.TableNameFormat()
	return s
}

func (c *conf) deps() sink.Deps {
	return sink.Deps{NewClient: c.cluster.NewClient, Decoder: c.reg, Logger: Logger()}
}

// Logger discards logs unless TRIBUTARY_TEST_VERBOSE is set.
func Logger() *slog.Logger {
	if os.Getenv("TRIBUTARY_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// name makes a sink name unique to this test, so tests sharing a database
// do not share offsets.
func (c *conf) name(base string) string { return base + "_" + c.schema }

func (c *conf) table(name string, cols []Col, key ...string) (*Table, *Encoder) {
	c.t.Helper()
	tb := &Table{Topic: "srv." + c.schema + "." + name, DB: "db", Schema: c.schema, Name: name, Columns: cols, Key: key}
	enc, err := NewEncoder(c.reg, tb)
	if err != nil {
		c.t.Fatal(err)
	}
	return tb, enc
}

func (c *conf) createTopic(topic string, partitions int32) {
	c.t.Helper()
	cl, err := c.cluster.NewClient()
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conf) produce(rs ...*kgo.Record) {
	c.t.Helper()
	cl, err := c.cluster.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conf) ev(enc *Encoder, op string, before, after map[string]any) *kgo.Record {
	c.t.Helper()
	r, err := enc.Record(op, before, after)
	if err != nil {
		c.t.Fatalf("encoding %s: %v", op, err)
	}
	return r
}

type run struct {
	cancel context.CancelFunc
	done   chan error
}

func (c *conf) start(ctx context.Context, spec sink.Spec, tgt sink.Target) *run {
	ctx, cancel := context.WithCancel(ctx)
	r := &run{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- sink.Run(ctx, spec, tgt, c.deps()) }()
	return r
}

func (c *conf) stop(r *run) {
	c.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			c.t.Fatalf("clean stop returned %v", err)
		}
	case <-time.After(30 * time.Second):
		c.t.Fatal("sink did not stop within 30s")
	}
}

func (c *conf) wait(r *run) error {
	c.t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(60 * time.Second):
		c.t.Fatal("sink did not stop within 60s")
		return nil
	}
}

func (c *conf) offsets(name string) map[string]int64 {
	c.t.Helper()
	out := map[string]int64{}
	for _, row := range c.h.Query(c.t, "SELECT topic, kafka_partition, next_offset FROM "+c.h.OffsetsTable()+
		" WHERE sink_name = '"+name+"' AND kafka_partition >= 0") {
		p := strings.Split(row, "|")
		var o int64
		fmt.Sscan(p[2], &o)
		out[p[0]+"/"+p[1]] = o
	}
	return out
}

func (c *conf) waitOffsets(r *run, name string, want map[string]int64) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := c.offsets(name)
		if reflect.DeepEqual(got, want) {
			return
		}
		select {
		case err := <-r.done:
			c.t.Fatalf("sink stopped before reaching offsets %v (have %v): %v", want, got, err)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("offsets did not reach %v; have %v", want, got)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (c *conf) rows(table string, cols ...string) []string {
	c.t.Helper()
	sel := make([]string, len(cols))
	for i, col := range cols {
		// Aliased so ORDER BY names the table's column, not the text.
		sel[i] = c.h.Text(col) + fmt.Sprintf(" AS v%d", i)
	}
	return c.h.Query(c.t, "SELECT "+strings.Join(sel, ", ")+" FROM "+c.h.Table(c.schema, table)+" ORDER BY "+cols[0])
}

func (c *conf) eq(what string, got, want []string) {
	c.t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		c.t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

var personCols = []Col{
	{Name: "id", Type: Int32("INT4", "10", "0")},
	{Name: "name", Type: String("VARCHAR", "100")},
	{Name: "email", Type: String("TEXT"), Optional: true},
}

func person(id int, name string, email any) map[string]any {
	return map[string]any{"id": id, "name": name, "email": email}
}

func confChanges(t *testing.T, h Harness) {
	c := newConf(t, h)
	tb, enc := c.table("people", personCols, "id")
	c.createTopic(tb.Topic, 1)
	tomb := func(id int) *kgo.Record {
		r, err := enc.Tombstone(person(id, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	c.produce(
		c.ev(enc, "r", nil, person(1, "ann", "ann@x")),
		c.ev(enc, "c", nil, person(2, "bob", nil)),
		c.ev(enc, "c", nil, person(3, "cyd", "cyd@x")),
		c.ev(enc, "u", person(2, "bob", nil), person(2, "bobby", "bob@x")),
		c.ev(enc, "d", person(3, "cyd", "cyd@x"), nil), tomb(3),
		c.ev(enc, "d", person(1, "ann", "ann@x"), nil), tomb(1), // primary key 1 -> 10
		c.ev(enc, "c", nil, person(10, "ann", "ann@x")),
		c.ev(enc, "u", nil, person(2, "robert", "bob@x")),
	)
	chg := c.name("chg")
	r := c.start(context.Background(), c.spec(chg, tb.Topic), h.NewTarget(t))
	c.waitOffsets(r, chg, map[string]int64{tb.Topic + "/0": 10})
	c.eq("rows", c.rows("people", "id", "name", "email"), []string{"2|robert|bob@x", "10|ann|ann@x"})

	trunc := c.ev(enc, "t", nil, nil)
	c.produce(c.ev(enc, "c", nil, person(4, "dee", nil)), trunc, c.ev(enc, "c", nil, person(5, "eve", nil)))
	c.waitOffsets(r, chg, map[string]int64{tb.Topic + "/0": 13})
	c.eq("after truncate", c.rows("people", "id", "name"), []string{"5|eve"})
	c.stop(r)

	// Resume from the stored offsets: a re-applied create of 4 would show.
	r = c.start(context.Background(), c.spec(chg, tb.Topic), h.NewTarget(t))
	c.produce(c.ev(enc, "c", nil, person(6, "fay", nil)))
	c.waitOffsets(r, chg, map[string]int64{tb.Topic + "/0": 14})
	c.eq("after restart", c.rows("people", "id"), []string{"5", "6"})
	c.stop(r)

	// A truncate as the first event of a run.
	c.produce(c.ev(enc, "t", nil, nil))
	r = c.start(context.Background(), c.spec(chg, tb.Topic), h.NewTarget(t))
	c.waitOffsets(r, chg, map[string]int64{tb.Topic + "/0": 15})
	c.eq("after lone truncate", c.rows("people", "id"), nil)
	c.stop(r)
}

func confEvolution(t *testing.T, h Harness) {
	c := newConf(t, h)
	v1 := []Col{
		{Name: "id", Type: Int32("INT4")},
		{Name: "name", Type: String("TEXT")},
		{Name: "legacy", Type: String("VARCHAR", "20")},
	}
	tb, enc1 := c.table("evo", v1, "id")
	c.createTopic(tb.Topic, 1)
	evo := c.name("evo")
	c.produce(c.ev(enc1, "c", nil, map[string]any{"id": 1, "name": "a", "legacy": "old"}))
	r := c.start(context.Background(), c.spec(evo, tb.Topic), h.NewTarget(t))
	c.waitOffsets(r, evo, map[string]int64{tb.Topic + "/0": 1})

	v2 := []Col{
		{Name: "id", Type: Int32("INT4")},
		{Name: "name", Type: String("TEXT")},
		{Name: "age", Type: Int32("INT4"), Optional: true},
	}
	_, enc2 := c.table("evo", v2, "id")
	c.produce(
		c.ev(enc2, "c", nil, map[string]any{"id": 2, "name": "b", "age": 30}),
		c.ev(enc2, "u", nil, map[string]any{"id": 1, "name": "a2", "age": nil}),
	)
	c.waitOffsets(r, evo, map[string]int64{tb.Topic + "/0": 3})
	c.eq("rows", c.rows("evo", "id", "name", "legacy", "age"), []string{"1|a2|old|NULL", "2|b|NULL|30"})
	if !h.Nullable(t, c.schema, "evo", "legacy") {
		t.Error("a column dropped at the source must become nullable in the copy")
	}
	if !h.Nullable(t, c.schema, "evo", "age") {
		t.Error("a new optional column must be nullable")
	}
	if h.Nullable(t, c.schema, "evo", "id") {
		t.Error("the key column must stay NOT NULL")
	}
	c.stop(r)
}

// confShape: the copy follows the source's table shape. Columns are named
// as the source spells them (__debezium.source.column.name), not as the
// adjusted Avro field names; columns added with a default give the copy's
// existing rows that default; a widened varchar and an int that became a
// bigint take values the old types could not hold; a Debezium Geometry is
// stored as its WKB.
// Shape runs the Shape scenario of Conformance alone (for a second setup
// of a target, e.g. PostgreSQL with PostGIS).
func Shape(t *testing.T, h Harness) { confShape(t, h) }

func confShape(t *testing.T, h Harness) {
	c := newConf(t, h)
	const table = `My Table "quoted"`
	v1 := []Col{
		{Name: "id", Type: Int32("INT4"), Source: "id"},
		{Name: "select", Type: String("VARCHAR", "128"), Source: "select"},
		{Name: "col_with_space", Type: Int32("INT4"), Optional: true, Source: "col with space"},
		{Name: "_n_c_d___", Type: String("TEXT"), Optional: true, Source: "ünïcödé 列"},
	}
	// The topic (and so the Avro namespace) is adjusted, as a source does;
	// the source block carries the table's own name.
	topic := "srv." + c.schema + ".My_Table__quoted_"
	// v0 is the same table as an older Debezium writes it: no
	// __debezium.source.column.name, so the copy's columns are first named
	// by the adjusted field names, and renamed when v1 brings the source's
	// spelling.
	var v0 []Col
	for _, col := range v1 {
		col.Source = ""
		v0 = append(v0, col)
	}
	tb := &Table{Topic: topic, DB: "db", Schema: c.schema, Name: table, Columns: v0, Key: []string{"id"}}
	enc0, err := NewEncoder(c.reg, tb)
	if err != nil {
		t.Fatal(err)
	}
	enc1, err := NewEncoder(c.reg, &Table{Topic: topic, DB: "db", Schema: c.schema, Name: table, Columns: v1, Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	c.createTopic(tb.Topic, 1)
	h.CreateNamespace(t, c.schema)
	name := c.name("shape")
	row1 := map[string]any{"id": 1, "select": "one", "col_with_space": 10, "_n_c_d___": "ü1"}
	row2 := map[string]any{"id": 2, "select": "two", "col_with_space": nil, "_n_c_d___": nil}
	c.produce(c.ev(enc0, "c", nil, row1))
	r := c.start(context.Background(), c.spec(name, tb.Topic), h.NewTarget(t))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 1})
	c.eq("rows under the field names of an older Debezium", c.rows(table, "id", "col_with_space"), []string{"1|10"})
	c.stop(r)
	// The source now writes the source's spelling (an upgrade): the
	// restarted sink sees only the new schema version, and renames the
	// copy's columns instead of adding new ones.
	r = c.start(context.Background(), c.spec(name, tb.Topic), h.NewTarget(t))
	c.produce(c.ev(enc1, "c", nil, row2))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 2})
	c.eq("rows under the source's column names", c.rows(table, "id", "select", "col with space", "ünïcödé 列"),
		[]string{"1|one|10|ü1", "2|two|NULL|NULL"})

	// ALTER TABLE ... ALTER select TYPE varchar(200), ALTER "col with
	// space" TYPE bigint, ADD loyalty_points int NOT NULL DEFAULT 0, ADD
	// tier text DEFAULT 'bronze', ADD credit numeric(5,2) NOT NULL DEFAULT
	// 1.50, ADD since date NOT NULL DEFAULT '2024-01-01', ADD geom geometry.
	v2 := []Col{
		v1[0],
		{Name: "select", Type: String("VARCHAR", "200"), Source: "select"},
		{Name: "col_with_space", Type: Int64("INT8"), Optional: true, Source: "col with space"},
		v1[3],
		{Name: "loyalty_points", Type: Int32("INT4"), Source: "loyalty_points", Default: 0},
		{Name: "tier", Type: String("TEXT"), Optional: true, Source: "tier", Default: "bronze"},
		{Name: "credit", Type: Decimal(5, 2, "NUMERIC", "5", "2"), Source: "credit", Default: "\u0000\u0096"},
		{Name: "since", Type: Date("DATE"), Source: "since", Default: Days(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))},
		{Name: "geom", Type: Geometry("GEOMETRY"), Optional: true, Source: "geom"},
	}
	enc2, err := NewEncoder(c.reg, &Table{Topic: topic, DB: "db", Schema: c.schema, Name: table, Columns: v2, Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 168)
	// POINT(1 2) in little-endian WKB.
	wkb := []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40}
	row3 := map[string]any{"id": 3, "select": long, "col_with_space": int64(5_000_000_000), "_n_c_d___": "列3",
		"loyalty_points": 7, "tier": "gold", "credit": Dec("2.25"), "since": Days(time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC)),
		"geom": map[string]any{"wkb": wkb, "srid": 4326}}
	c.produce(c.ev(enc2, "c", nil, row3))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 3})
	c.stop(r)
	// A restart binds v2 first: the copy is already in shape.
	r = c.start(context.Background(), c.spec(name, tb.Topic), h.NewTarget(t))
	c.produce(c.ev(enc2, "u", nil, map[string]any{"id": 2, "select": "two", "col_with_space": int64(-6_000_000_000), "_n_c_d___": nil,
		"loyalty_points": 0, "tier": "bronze", "credit": Dec("1.50"), "since": Days(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)), "geom": nil}))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 4})
	c.eq("rows after the ALTERs: defaults in the rows the copy held, wider values in the new one",
		c.rows(table, "id", "select", "col with space", "loyalty_points", "tier"),
		[]string{"1|one|10|0|bronze", "2|two|-6000000000|0|bronze", "3|" + long + "|5000000000|7|gold"})
	c.eq("decimal defaults", c.rows(table, "id", "credit"), []string{"1|1.50", "2|1.50", "3|2.25"})
	sel := []string{h.Text("id"), h.WKBHex("geom")}
	c.eq("geometry as WKB", h.Query(t, "SELECT "+strings.Join(sel, ", ")+" FROM "+h.Table(c.schema, table)+" WHERE id = 3"),
		[]string{"3|" + fmt.Sprintf("%x", wkb)})
	got := h.Query(t, "SELECT "+h.Text("since")+" FROM "+h.Table(c.schema, table)+" ORDER BY id")
	if len(got) != 3 || !strings.HasPrefix(got[0], "2024-01-01") || !strings.HasPrefix(got[2], "2025-02-03") {
		t.Errorf("date default: rows hold %q, want 2024-01-01 in the old rows and 2025-02-03 in the new", got)
	}
	c.stop(r)

	// ALTER id TYPE bigint while the sink is down: the restarted sink sees
	// the wider key first, with no older version in this run to compare
	// with, and the copy's key column must widen all the same.
	v3 := append([]Col{{Name: "id", Type: Int64("INT8"), Source: "id"}}, v2[1:]...)
	enc3, err := NewEncoder(c.reg, &Table{Topic: topic, DB: "db", Schema: c.schema, Name: table, Columns: v3, Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	c.produce(c.ev(enc3, "c", nil, map[string]any{"id": int64(5_000_000_000), "select": "big", "col_with_space": nil, "_n_c_d___": nil,
		"loyalty_points": 1, "tier": nil, "credit": Dec("1.50"), "since": Days(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)), "geom": nil}))
	r = c.start(context.Background(), c.spec(name, tb.Topic), h.NewTarget(t))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 5})
	c.eq("a key widened while the sink was down", c.rows(table, "id"), []string{"1", "2", "3", "5000000000"})
	c.stop(r)
}

type failTarget struct {
	sink.Target
	failOn string
	fired  atomic.Int32
	fail   func() error
}

func (f *failTarget) Begin(ctx context.Context) (sink.Tx, error) {
	tx, err := f.Target.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &failTx{Tx: tx, f: f}, nil
}

type failTx struct {
	sink.Tx
	f *failTarget
}

func (x *failTx) Apply(ctx context.Context, t *sink.TableSpec, cs []sink.Change) error {
	if err := x.Tx.Apply(ctx, t, cs); err != nil {
		return err
	}
	if t.Name == x.f.failOn || strings.HasSuffix(t.Name, "_"+x.f.failOn) {
		x.f.fired.Add(1)
		return x.f.fail()
	}
	return nil
}

func confAtomic(t *testing.T, h Harness) {
	for _, mode := range []string{"cancel", "error"} {
		t.Run(mode, func(t *testing.T) {
			c := newConf(t, h)
			ta, ea := c.table("ta", personCols, "id")
			tb, eb := c.table("tb", personCols, "id")
			c.createTopic(ta.Topic, 1)
			c.createTopic(tb.Topic, 1)
			c.produce(c.ev(ea, "c", nil, person(1, "a1", nil)), c.ev(eb, "c", nil, person(1, "b1", nil)))
			atom := c.name("atom")
			spec := c.spec(atom, ta.Topic, tb.Topic)
			r := c.start(context.Background(), spec, h.NewTarget(t))
			before := map[string]int64{ta.Topic + "/0": 1, tb.Topic + "/0": 1}
			c.waitOffsets(r, atom, before)
			c.stop(r)

			c.produce(c.ev(ea, "c", nil, person(2, "a2", nil)), c.ev(ea, "u", nil, person(1, "a1x", nil)))
			c.produce(c.ev(eb, "c", nil, person(2, "b2", nil)), c.ev(eb, "d", person(1, "b1", nil), nil))
			spec.FlushInterval = 500 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ft := &failTarget{Target: h.NewTarget(t), failOn: "tb"}
			ft.fail = func() error {
				if mode == "cancel" {
					cancel()
					return context.Canceled
				}
				return errors.New("server closed the connection unexpectedly")
			}
			r = c.start(ctx, spec, ft)
			err := c.wait(r)
			if ft.fired.Load() == 0 {
				t.Fatal("the failure was never injected")
			}
			if mode == "cancel" && err != nil {
				t.Fatalf("a cancelled sink should stop cleanly, got %v", err)
			}
			if mode == "error" && (err == nil || !strings.Contains(err.Error(), "closed the connection")) {
				t.Fatalf("want the connection error, got %v", err)
			}
			c.eq("ta after failure", c.rows("ta", "id", "name"), []string{"1|a1"})
			c.eq("tb after failure", c.rows("tb", "id", "name"), []string{"1|b1"})
			if got := c.offsets(atom); !reflect.DeepEqual(got, before) {
				t.Fatalf("offsets moved without their rows: %v", got)
			}
			r = c.start(context.Background(), spec, h.NewTarget(t))
			c.waitOffsets(r, atom, map[string]int64{ta.Topic + "/0": 3, tb.Topic + "/0": 3})
			c.eq("ta", c.rows("ta", "id", "name"), []string{"1|a1x", "2|a2"})
			c.eq("tb", c.rows("tb", "id", "name"), []string{"2|b2"})
			c.stop(r)
		})
	}
}

func confReject(t *testing.T, h Harness, dlq bool) {
	c := newConf(t, h)
	cols := []Col{{Name: "sku", Type: String("VARCHAR", "20")}, {Name: "qty", Type: Int32("INT4")}}
	tb, enc := c.table("stock", cols, "sku")
	c.createTopic(tb.Topic, 2)
	h.CreateNamespace(t, c.schema)
	h.Exec(t, "CREATE TABLE "+h.Table(c.schema, "stock")+" (sku VARCHAR(20) NOT NULL PRIMARY KEY, qty INTEGER CHECK (qty >= 0))")
	recs := []*kgo.Record{
		c.ev(enc, "c", nil, map[string]any{"sku": "a", "qty": 1}),
		c.ev(enc, "c", nil, map[string]any{"sku": "bad", "qty": -5}),
		c.ev(enc, "c", nil, map[string]any{"sku": "c", "qty": 3}),
		c.ev(enc, "u", nil, map[string]any{"sku": "a", "qty": 2}),
	}
	for _, r := range recs {
		r.Partition = 1
	}
	c.produce(recs...)
	rej := c.name("rej")
	spec := c.spec(rej, tb.Topic)
	if dlq {
		spec.ErrorsTolerance = "all"
	}
	r := c.start(context.Background(), spec, h.NewTarget(t))
	if !dlq {
		err := c.wait(r)
		var re *sink.RecordError
		if !errors.As(err, &re) {
			t.Fatalf("want a *sink.RecordError, got %T: %v", err, err)
		}
		for _, w := range []string{"sink " + rej, "topic " + tb.Topic, "partition 1", "offset 1", `key {"sku":"bad"}`, "stock"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
		c.eq("rows", c.rows("stock", "sku"), nil)
		if got := c.offsets(rej); len(got) != 0 {
			t.Fatalf("offsets stored past a rejected record: %v", got)
		}
		return
	}
	c.waitOffsets(r, rej, map[string]int64{tb.Topic + "/1": 4})
	c.eq("rows", c.rows("stock", "sku", "qty"), []string{"a|2", "c|3"})
	c.stop(r)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.cluster.Addrs...), kgo.ConsumeTopics(rej+".dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 1 && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	if len(got) != 1 {
		t.Fatalf("want 1 dead letter, got %d", len(got))
	}
	hs := map[string]string{}
	for _, x := range got[0].Headers {
		hs[x.Key] = string(x.Value)
	}
	for k, want := range map[string]string{
		sink.HeaderErrTopic: tb.Topic, sink.HeaderErrPartition: "1", sink.HeaderErrOffset: "1",
		sink.HeaderErrConnector: rej, sink.HeaderErrStage: "TASK_PUT",
	} {
		if hs[k] != want {
			t.Errorf("header %s = %q, want %q", k, hs[k], want)
		}
	}
	if hs[sink.HeaderErrExceptionClass] == "" || !strings.Contains(hs[sink.HeaderErrExceptionMsg], "stock") {
		t.Errorf("exception headers = %q / %q", hs[sink.HeaderErrExceptionClass], hs[sink.HeaderErrExceptionMsg])
	}
	if string(got[0].Value) != string(recs[1].Value) {
		t.Error("the dead letter does not carry the original value")
	}
}

// TypeChangeStops runs the scenarios of column type changes that are not
// widenings, for targets with strict column types (PostgreSQL, MySQL): an
// int that became a varchar is followed (the copy's values converted as
// the source's were); a varchar that became an int while the copy holds a
// value that is no number stops the sink with an error naming the table,
// the column, both types and what to do.
func TypeChangeStops(t *testing.T, h Harness) {
	c := newConf(t, h)
	v1 := []Col{{Name: "id", Type: Int32("INT4")}, {Name: "code", Type: String("VARCHAR", "10")}, {Name: "n", Type: Int32("INT4")}}
	tb, enc1 := c.table("retyped", v1, "id")
	c.createTopic(tb.Topic, 1)
	h.CreateNamespace(t, c.schema)
	name := c.name("retype")
	c.produce(c.ev(enc1, "c", nil, map[string]any{"id": 1, "code": "abc", "n": 7}))
	r := c.start(context.Background(), c.spec(name, tb.Topic), h.NewTarget(t))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 1})
	v2 := []Col{v1[0], v1[1], {Name: "n", Type: String("VARCHAR", "10")}}
	_, enc2 := c.table("retyped", v2, "id")
	c.produce(c.ev(enc2, "c", nil, map[string]any{"id": 2, "code": "12", "n": "x2"}))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 2})
	c.eq("rows after int -> varchar", c.rows("retyped", "id", "code", "n"), []string{"1|abc|7", "2|12|x2"})

	_, enc3 := c.table("retyped", []Col{v1[0], {Name: "code", Type: Int32("INT4")}, v2[2]}, "id")
	c.produce(c.ev(enc3, "c", nil, map[string]any{"id": 3, "code": 5, "n": "x3"}))
	err := c.wait(r)
	if err == nil {
		t.Fatal("the sink went on after a type change its copy cannot follow")
	}
	t.Logf("the sink stopped with: %v", err)
	for _, want := range []string{"retyped", "column code", "string VARCHAR(10)", "int32 INT4", "tributary replay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	c.eq("rows", c.rows("retyped", "id", "code", "n"), []string{"1|abc|7", "2|12|x2"})
}

package sink_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/connectors/sqlite"
	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("TRIBUTARY_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// env is one test's cluster, registry and SQLite file.
type env struct {
	t       *testing.T
	cluster *sinktest.Cluster
	reg     *sinktest.Registry
	path    string
}

func newEnv(t *testing.T) *env {
	e := &env{
		t:       t,
		cluster: sinktest.NewCluster(t),
		reg:     sinktest.NewRegistry(),
		path:    filepath.Join(t.TempDir(), "copy", "copy.db"),
	}
	return e
}

func (e *env) target() *sqlite.Target {
	return sqlite.NewTarget("test", sqlite.Config{Path: e.path}, testLogger(e.t))
}

func (e *env) deps() sink.Deps {
	return sink.Deps{NewClient: e.cluster.NewClient, Decoder: e.reg, Logger: testLogger(e.t)}
}

func (e *env) spec(name string, topics ...string) sink.Spec {
	s := sink.DefaultSpec()
	s.Name = name
	s.Topics = topics
	s.FlushInterval = 20 * time.Millisecond
	s.TopicRefreshInterval = 100 * time.Millisecond
	return s
}

func (e *env) encoder(tbl *sinktest.Table) *sinktest.Encoder {
	e.t.Helper()
	enc, err := sinktest.NewEncoder(e.reg, tbl)
	if err != nil {
		e.t.Fatalf("fixture schemas of %s: %v", tbl.Topic, err)
	}
	return enc
}

func (e *env) createTopic(topic string, partitions int32) {
	e.t.Helper()
	cl, err := e.cluster.NewClient()
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		e.t.Fatalf("creating topic %s: %v", topic, err)
	}
}

func (e *env) produce(rs ...*kgo.Record) {
	e.t.Helper()
	e.cluster.Produce(context.Background(), e.t, rs...)
}

// ev builds one record or fails the test.
func ev(t *testing.T, enc *sinktest.Encoder, op string, before, after map[string]any) *kgo.Record {
	t.Helper()
	r, err := enc.Record(op, before, after)
	if err != nil {
		t.Fatalf("encoding %s event: %v", op, err)
	}
	return r
}

func tomb(t *testing.T, enc *sinktest.Encoder, before map[string]any) *kgo.Record {
	t.Helper()
	r, err := enc.Tombstone(before)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// running is a sink started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(ctx context.Context, spec sink.Spec, tgt sink.Target, deps sink.Deps) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- sink.Run(ctx, spec, tgt, deps) }()
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("sink did not stop within 30s")
		return nil
	}
}

// openDB opens the copy for reading.
func (e *env) openDB() *sql.DB {
	e.t.Helper()
	// The sink creates the folder and the file; the reader waits for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(e.path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the sink did not create %s", e.path)
		}
		time.Sleep(10 * time.Millisecond)
	}
	db, err := sql.Open("sqlite", e.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

func offsets(t *testing.T, db *sql.DB, sinkName string) map[string]int64 {
	t.Helper()
	// kafka_partition -1 is the sink's "has started" marker.
	rows, err := db.Query("SELECT topic, kafka_partition, next_offset FROM tributary_offsets WHERE sink_name = ? AND kafka_partition >= 0", sinkName)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return map[string]int64{}
		}
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var topic string
		var p int32
		var o int64
		if err := rows.Scan(&topic, &p, &o); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%s/%d", topic, p)] = o
	}
	return out
}

// waitOffsets waits until the stored offsets equal want, or the sink stops.
func waitOffsets(t *testing.T, db *sql.DB, r *running, sinkName string, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := offsets(t, db, sinkName)
		if reflect.DeepEqual(got, want) {
			return
		}
		select {
		case err := <-r.done:
			t.Fatalf("sink stopped before reaching offsets %v (have %v): %v", want, got, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets did not reach %v within 30s; have %v", want, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queryRows(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = fmt.Sprintf("x%x", x)
			default:
				parts[i] = fmt.Sprint(x)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func customers(topic string) *sinktest.Table {
	return &sinktest.Table{
		Topic: topic, DB: "shop", Schema: "public", Name: "customers",
		Columns: []sinktest.Col{
			{Name: "id", Type: sinktest.Int32("INT4", "10", "0")},
			{Name: "name", Type: sinktest.String("VARCHAR", "100")},
			{Name: "email", Type: sinktest.String("TEXT"), Optional: true},
		},
		Key: []string{"id"},
	}
}

func row(id int, name string, email any) map[string]any {
	return map[string]any{"id": id, "name": name, "email": email}
}

func TestUpsertDeleteTruncateAndPrimaryKeyChange(t *testing.T) {
	e := newEnv(t)
	topic := "shop.public.customers"
	e.createTopic(topic, 1)
	enc := e.encoder(customers(topic))
	e.produce(
		ev(t, enc, "r", nil, row(1, "ann", "ann@x")),
		ev(t, enc, "c", nil, row(2, "bob", nil)),
		ev(t, enc, "c", nil, row(3, "cyd", "cyd@x")),
		ev(t, enc, "u", row(2, "bob", nil), row(2, "bobby", "bob@x")),
		ev(t, enc, "d", row(3, "cyd", "cyd@x"), nil),
		tomb(t, enc, row(3, "", nil)),
		// Primary-key change 1 -> 10: a delete of the old key, then a create.
		ev(t, enc, "d", row(1, "ann", "ann@x"), nil),
		tomb(t, enc, row(1, "", nil)),
		ev(t, enc, "c", nil, row(10, "ann", "ann@x")),
		// The same key written twice in a batch: the last write wins.
		ev(t, enc, "u", row(2, "bobby", "bob@x"), row(2, "robert", "bob@x")),
	)
	r := start(context.Background(), e.spec("copy", topic), e.target(), e.deps())
	db := e.openDB()
	waitOffsets(t, db, r, "copy", map[string]int64{topic + "/0": 10})
	eq(t, "rows", queryRows(t, db, `SELECT id, name, email FROM public_customers ORDER BY id`),
		[]string{"2|robert|bob@x", "10|ann|ann@x"})

	// Truncate drops everything before it; later rows survive.
	trunc, err := enc.Record("t", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.produce(ev(t, enc, "c", nil, row(4, "dee", nil)), trunc, ev(t, enc, "c", nil, row(5, "eve", nil)))
	waitOffsets(t, db, r, "copy", map[string]int64{topic + "/0": 13})
	eq(t, "rows after truncate", queryRows(t, db, `SELECT id, name FROM public_customers ORDER BY id`), []string{"5|eve"})
	if err := r.stop(t); err != nil {
		t.Fatalf("clean stop returned %v", err)
	}

	// The consumer group mirrors the stored offsets, for lag tools.
	cl, _ := e.cluster.NewClient()
	defer cl.Close()
	fo, err := kadm.NewClient(cl).FetchOffsets(context.Background(), sink.GroupName("copy"))
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fo.Lookup(topic, 0); !ok || o.At != 13 {
		t.Fatalf("group offset of %s/0 = %+v (found %v), want 13", topic, o, ok)
	}

	// The table has its primary key.
	eq(t, "primary key", queryRows(t, db, `SELECT name FROM pragma_table_info('public_customers') WHERE pk > 0`), []string{"id"})

	// Restarting resumes from the stored offsets: nothing is applied twice
	// (a re-applied create of id 4 would bring it back).
	r = start(context.Background(), e.spec("copy", topic), e.target(), e.deps())
	e.produce(ev(t, enc, "c", nil, row(6, "fay", nil)))
	waitOffsets(t, db, r, "copy", map[string]int64{topic + "/0": 14})
	eq(t, "rows after restart", queryRows(t, db, `SELECT id FROM public_customers ORDER BY id`), []string{"5", "6"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// A truncate as the first event of a run (no row event has described
	// the table yet) still empties the existing copy.
	trunc2, err := enc.Record("t", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.produce(trunc2)
	r = start(context.Background(), e.spec("copy", topic), e.target(), e.deps())
	waitOffsets(t, db, r, "copy", map[string]int64{topic + "/0": 15})
	eq(t, "rows after a lone truncate", queryRows(t, db, `SELECT id FROM public_customers`), nil)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestDebeziumTypesToSQLite(t *testing.T) {
	e := newEnv(t)
	topic := "pg.inv.items"
	tbl := &sinktest.Table{
		Topic: topic, DB: "inv", Schema: "inv", Name: "items",
		Columns: []sinktest.Col{
			{Name: "id", Type: sinktest.Int64("INT8")},
			{Name: "price", Type: sinktest.Decimal(10, 2, "NUMERIC", "10", "2")},
			{Name: "ratio", Type: sinktest.VariableScaleDecimal("NUMERIC"), Optional: true},
			{Name: "born", Type: sinktest.Date("DATE"), Optional: true},
			{Name: "seen", Type: sinktest.MicroTimestamp("TIMESTAMP"), Optional: true},
			{Name: "at", Type: sinktest.ZonedTimestamp("TIMESTAMPTZ"), Optional: true},
			{Name: "tod", Type: sinktest.MicroTime("TIME"), Optional: true},
			{Name: "uid", Type: sinktest.UUID("UUID"), Optional: true},
			{Name: "doc", Type: sinktest.JSON("JSONB"), Optional: true},
			{Name: "tags", Type: sinktest.Array(sinktest.String(), "_TEXT"), Optional: true},
			{Name: "flags", Type: sinktest.Bits(4, "BIT", "4"), Optional: true},
			{Name: "raw", Type: sinktest.Bytes("BYTEA"), Optional: true},
			{Name: "ok", Type: sinktest.Boolean("BOOL"), Optional: true},
			{Name: "small", Type: sinktest.Int16("INT2"), Optional: true},
			{Name: "mood", Type: sinktest.Enum("happy,sad", "MOOD"), Optional: true},
			{Name: "span", Type: sinktest.MicroDuration("INTERVAL"), Optional: true},
			{Name: "note", Type: sinktest.String("TEXT"), Optional: true},
		},
		Key: []string{"id"},
	}
	enc := e.encoder(tbl)
	seen := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	full := map[string]any{
		"id": int64(1), "price": sinktest.Dec("-1234.50"), "ratio": sinktest.VarDec(-31415, 4),
		"born": sinktest.Days(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)),
		"seen": sinktest.Micros(seen), "at": "2024-02-29T12:14:15.5+01:00",
		"tod": int64((13*3600+14*60+15)*1_000_000 + 250), "uid": "0b2c4f7e-8d1a-4a53-9e4f-1f2e3d4c5b6a",
		"doc": `{"a":[1,2]}`, "tags": []any{"x", nil, `q"t`}, "flags": []byte{0x0a}, "raw": []byte{0, 1, 0xff},
		"ok": true, "small": 7, "mood": "sad", "span": int64(90_000_000), "note": "big text",
	}
	e.produce(ev(t, enc, "c", nil, full))
	// An update whose unchanged TOASTed column came as Debezium's placeholder
	// keeps the stored value.
	upd := map[string]any{}
	for k, v := range full {
		upd[k] = v
	}
	upd["note"] = "__debezium_unavailable_value"
	upd["ok"] = false
	e.produce(ev(t, enc, "u", nil, upd))
	// A row of nulls.
	e.produce(ev(t, enc, "c", nil, map[string]any{"id": int64(2), "price": sinktest.Dec("0.05")}))

	// Decoded by the schema package's decoder, as in a worker.
	deps := e.deps()
	deps.Decoder = schema.NewDecoder(e.reg)
	r := start(context.Background(), e.spec("types", topic), e.target(), deps)
	db := e.openDB()
	waitOffsets(t, db, r, "types", map[string]int64{topic + "/0": 3})
	eq(t, "typed row", queryRows(t, db, `SELECT id, price, ratio, CAST(born AS TEXT), CAST(seen AS TEXT), CAST(at AS TEXT), CAST(tod AS TEXT), uid, doc, tags, flags, hex(raw), ok, small, mood, span, note FROM inv_items ORDER BY id`),
		[]string{
			`1|-1234.50|-3.1415|1999-12-31|2024-02-29 13:14:15.123456|2024-02-29T11:14:15.5Z|13:14:15.00025|0b2c4f7e-8d1a-4a53-9e4f-1f2e3d4c5b6a|{"a":[1,2]}|["x",null,"q\"t"]|1010|0001FF|0|7|sad|90000000|big text`,
			`2|0.05|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL||NULL|NULL|NULL|NULL|NULL`,
		})
	eq(t, "declared types", queryRows(t, db, `SELECT name, type FROM pragma_table_info('inv_items') WHERE name IN ('price','born','seen','at','raw','span')`),
		[]string{"price|TEXT", "born|DATE", "seen|TIMESTAMP", "at|TIMESTAMPTZ", "raw|BLOB", "span|BIGINT"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestMySQLEventsAndTableNameFormat(t *testing.T) {
	e := newEnv(t)
	topic := "mysrv.inventory.orders"
	tbl := &sinktest.Table{
		Topic: topic, Connector: "mysql", DB: "inventory", Name: "orders",
		Columns: []sinktest.Col{
			{Name: "order_number", Type: sinktest.Int32("INT", "11")},
			{Name: "quantity", Type: sinktest.Int32("INT", "11")},
			{Name: "placed", Type: sinktest.Timestamp("DATETIME"), Optional: true},
		},
		Key: []string{"order_number"},
	}
	enc := e.encoder(tbl)
	placed := time.Date(2016, 1, 16, 0, 0, 0, 0, time.UTC)
	e.produce(
		ev(t, enc, "c", nil, map[string]any{"order_number": 10001, "quantity": 1, "placed": placed.UnixMilli()}),
		ev(t, enc, "c", nil, map[string]any{"order_number": 10002, "quantity": 2, "placed": nil}),
	)
	spec := e.spec("orders", topic)
	spec.TableNameFormat = "copy_${source.db}_${source.table}"
	spec.FieldsExclude = []string{topic + ":placed"}
	r := start(context.Background(), spec, e.target(), e.deps())
	db := e.openDB()
	waitOffsets(t, db, r, "orders", map[string]int64{topic + "/0": 2})
	eq(t, "orders", queryRows(t, db, `SELECT * FROM copy_inventory_orders ORDER BY 1`), []string{"10001|1", "10002|2"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestSchemaEvolution(t *testing.T) {
	e := newEnv(t)
	topic := "shop.public.people"
	v1 := &sinktest.Table{
		Topic: topic, DB: "shop", Schema: "public", Name: "people",
		Columns: []sinktest.Col{
			{Name: "id", Type: sinktest.Int32("INT4")},
			{Name: "name", Type: sinktest.String("TEXT")},
			{Name: "legacy", Type: sinktest.String("TEXT")},
		},
		Key: []string{"id"},
	}
	enc1 := e.encoder(v1)
	e.produce(ev(t, enc1, "c", nil, map[string]any{"id": 1, "name": "a", "legacy": "old"}))
	r := start(context.Background(), e.spec("evo", topic), e.target(), e.deps())
	db := e.openDB()
	waitOffsets(t, db, r, "evo", map[string]int64{topic + "/0": 1})

	// v2: "legacy" dropped at the source, "age" added.
	v2 := *v1
	v2.Columns = []sinktest.Col{
		{Name: "id", Type: sinktest.Int32("INT4")},
		{Name: "name", Type: sinktest.String("TEXT")},
		{Name: "age", Type: sinktest.Int32("INT4"), Optional: true},
	}
	enc2 := e.encoder(&v2)
	if enc2.ValueID() == enc1.ValueID() {
		t.Fatal("v2 got the same schema id")
	}
	e.produce(
		ev(t, enc2, "c", nil, map[string]any{"id": 2, "name": "b", "age": 30}),
		ev(t, enc2, "u", nil, map[string]any{"id": 1, "name": "a2", "age": nil}),
	)
	waitOffsets(t, db, r, "evo", map[string]int64{topic + "/0": 3})
	eq(t, "columns", queryRows(t, db, `SELECT name, "notnull" FROM pragma_table_info('public_people') ORDER BY cid`),
		[]string{"id|1", "name|0", "legacy|0", "age|0"})
	// The dropped column keeps old values and is NULL for new rows.
	eq(t, "rows", queryRows(t, db, `SELECT id, name, legacy, age FROM public_people ORDER BY id`),
		[]string{"1|a2|old|NULL", "2|b|NULL|30"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// failingTarget wraps a target and makes Apply fail after the inner apply of
// one table succeeded, to check that a batch is all-or-nothing.
type failingTarget struct {
	sink.Target
	failOn string // table whose Apply fails
	armed  atomic.Bool
	onFail func() error
}

func (f *failingTarget) Begin(ctx context.Context) (sink.Tx, error) {
	tx, err := f.Target.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &failingTx{Tx: tx, f: f}, nil
}

type failingTx struct {
	sink.Tx
	f *failingTarget
}

func (x *failingTx) Apply(ctx context.Context, t *sink.TableSpec, cs []sink.Change) error {
	if err := x.Tx.Apply(ctx, t, cs); err != nil {
		return err
	}
	if x.f.armed.Load() && t.Name == x.f.failOn {
		return x.f.onFail()
	}
	return nil
}

func TestBatchAndOffsetsAreOneTransaction(t *testing.T) {
	for _, mode := range []string{"cancel", "connection lost"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			ta, tb := "shop.public.a", "shop.public.b"
			e.createTopic(ta, 1)
			e.createTopic(tb, 1)
			mk := func(topic, name string) *sinktest.Table {
				c := customers(topic)
				c.Name = name
				return c
			}
			ea, eb := e.encoder(mk(ta, "a")), e.encoder(mk(tb, "b"))
			e.produce(ev(t, ea, "c", nil, row(1, "a1", nil)), ev(t, eb, "c", nil, row(1, "b1", nil)))
			spec := e.spec("tx", ta, tb)
			r := start(context.Background(), spec, e.target(), e.deps())
			db := e.openDB()
			before := map[string]int64{ta + "/0": 1, tb + "/0": 1}
			waitOffsets(t, db, r, "tx", before)
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}

			// The next batch touches both tables; the apply dies after the
			// first table of the batch was written inside the transaction.
			e.produce(ev(t, ea, "c", nil, row(2, "a2", nil)), ev(t, ea, "u", nil, row(1, "a1x", nil)))
			e.produce(ev(t, eb, "c", nil, row(2, "b2", nil)), ev(t, eb, "d", row(1, "b1", nil), nil))
			spec.FlushInterval = 300 * time.Millisecond // both topics land in one batch
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var applied atomic.Int32
			ft := &failingTarget{Target: e.target(), failOn: "public_b"}
			ft.onFail = func() error {
				applied.Add(1)
				if mode == "cancel" {
					cancel()
					return context.Canceled
				}
				return errors.New("server closed the connection unexpectedly")
			}
			ft.armed.Store(true)
			r = start(ctx, spec, ft, e.deps())
			var err error
			select {
			case err = <-r.done:
			case <-time.After(30 * time.Second):
				t.Fatal("sink did not stop after the failure")
			}
			if applied.Load() == 0 {
				t.Fatal("the failure was never injected")
			}
			if mode == "cancel" && err != nil {
				t.Fatalf("a cancelled sink should stop cleanly, got %v", err)
			}
			if mode != "cancel" && (err == nil || !strings.Contains(err.Error(), "connection unexpectedly")) {
				t.Fatalf("want the connection error, got %v", err)
			}
			// Nothing of the failed batch is visible, and the offsets did
			// not move.
			eq(t, "a after failure", queryRows(t, db, `SELECT id, name FROM public_a ORDER BY id`), []string{"1|a1"})
			eq(t, "b after failure", queryRows(t, db, `SELECT id, name FROM public_b ORDER BY id`), []string{"1|b1"})
			if got := offsets(t, db, "tx"); !reflect.DeepEqual(got, before) {
				t.Fatalf("offsets moved without their rows: %v", got)
			}

			// A restart applies the batch once.
			r = start(context.Background(), spec, e.target(), e.deps())
			waitOffsets(t, db, r, "tx", map[string]int64{ta + "/0": 3, tb + "/0": 3})
			eq(t, "a", queryRows(t, db, `SELECT id, name FROM public_a ORDER BY id`), []string{"1|a1x", "2|a2"})
			eq(t, "b", queryRows(t, db, `SELECT id, name FROM public_b ORDER BY id`), []string{"2|b2"})
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// rejectTable pre-creates the copy with a CHECK the events violate.
func rejectSetup(t *testing.T, e *env) (string, *sinktest.Encoder) {
	topic := "shop.public.stock"
	e.createTopic(topic, 2)
	tbl := &sinktest.Table{
		Topic: topic, DB: "shop", Schema: "public", Name: "stock",
		Columns: []sinktest.Col{{Name: "sku", Type: sinktest.String("TEXT")}, {Name: "qty", Type: sinktest.Int32("INT4")}},
		Key:     []string{"sku"},
	}
	if err := os.MkdirAll(filepath.Dir(e.path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", e.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE public_stock (sku TEXT NOT NULL PRIMARY KEY, qty INTEGER CHECK (qty >= 0))`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return topic, e.encoder(tbl)
}

func TestRejectedRecordStopsTheSink(t *testing.T) {
	e := newEnv(t)
	topic, enc := rejectSetup(t, e)
	recs := []*kgo.Record{
		ev(t, enc, "c", nil, map[string]any{"sku": "a", "qty": 1}),
		ev(t, enc, "c", nil, map[string]any{"sku": "bad", "qty": -5}),
		ev(t, enc, "c", nil, map[string]any{"sku": "c", "qty": 3}),
	}
	for _, r := range recs {
		r.Partition = 1
	}
	cl, _ := e.cluster.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	r := start(context.Background(), e.spec("stop", topic), e.target(), e.deps())
	var err error
	select {
	case err = <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("sink did not stop on the rejected record")
	}
	var re *sink.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("want a *sink.RecordError, got %T: %v", err, err)
	}
	msg := err.Error()
	for _, want := range []string{"sink stop", "topic " + topic, "partition 1", "offset 1", `key {"sku":"bad"}`, "CHECK constraint failed", "public_stock"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	db := e.openDB()
	eq(t, "rows", queryRows(t, db, `SELECT sku FROM public_stock`), nil)
	if got := offsets(t, db, "stop"); len(got) != 0 {
		t.Fatalf("offsets stored past a rejected record: %v", got)
	}
}

func TestRejectedRecordGoesToDeadLetterTopic(t *testing.T) {
	e := newEnv(t)
	topic, enc := rejectSetup(t, e)
	recs := []*kgo.Record{
		ev(t, enc, "c", nil, map[string]any{"sku": "a", "qty": 1}),
		ev(t, enc, "c", nil, map[string]any{"sku": "bad", "qty": -5}),
		ev(t, enc, "c", nil, map[string]any{"sku": "c", "qty": 3}),
		{Topic: topic, Key: []byte("k"), Value: []byte("not avro at all")},
		ev(t, enc, "u", nil, map[string]any{"sku": "a", "qty": 2}),
	}
	for _, r := range recs {
		r.Partition = 1
	}
	recs[1].Headers = []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}
	cl, _ := e.cluster.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	spec := e.spec("tolerant", topic)
	spec.ErrorsTolerance = "all"
	r := start(context.Background(), spec, e.target(), e.deps())
	db := e.openDB()
	waitOffsets(t, db, r, "tolerant", map[string]int64{topic + "/1": 5})
	eq(t, "rows", queryRows(t, db, `SELECT sku, qty FROM public_stock ORDER BY sku`), []string{"a|2", "c|3"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// Both dead letters are in tolerant.dlq, with the original bytes and
	// Kafka Connect's headers.
	dl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.Addrs...), kgo.ConsumeTopics("tolerant.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	var got []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for len(got) < 2 && ctx.Err() == nil {
		got = append(got, dl.PollFetches(ctx).Records()...)
	}
	if len(got) != 2 {
		t.Fatalf("want 2 dead letters, got %d", len(got))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Offset < got[j].Offset })
	h := func(r *kgo.Record) map[string]string {
		m := map[string]string{}
		for _, x := range r.Headers {
			m[x.Key] = string(x.Value)
		}
		return m
	}
	h0, h1 := h(got[0]), h(got[1])
	if string(got[0].Value) != string(recs[1].Value) || string(got[0].Key) != string(recs[1].Key) {
		t.Error("dead letter 0 does not carry the original key and value")
	}
	for k, want := range map[string]string{
		"__connect.errors.topic": topic, "__connect.errors.partition": "1", "__connect.errors.offset": "1",
		"__connect.errors.connector.name": "tolerant", "__connect.errors.stage": "TASK_PUT", "trace": "t1",
		"__connect.errors.exception.class.name": "*sqlite.Error",
	} {
		if h0[k] != want {
			t.Errorf("dead letter 0 header %s = %q, want %q", k, h0[k], want)
		}
	}
	if !strings.Contains(h0["__connect.errors.exception.message"], "CHECK constraint failed") {
		t.Errorf("dead letter 0 message = %q", h0["__connect.errors.exception.message"])
	}
	if h1["__connect.errors.offset"] != "3" || h1["__connect.errors.stage"] != "VALUE_CONVERTER" ||
		!strings.Contains(h1["__connect.errors.exception.message"], "magic byte") {
		t.Errorf("dead letter 1 headers = %v", h1)
	}
}

func TestUndecodableSchemaStopsWithClearError(t *testing.T) {
	cases := []struct {
		name  string
		value func(e *env) []byte
		want  []string
	}{
		{"unknown schema id", func(e *env) []byte { return []byte{0, 0, 0, 3, 231, 2, 4} },
			[]string{"fetching value schema id 999", "from the registry", "not found"}},
		{"not an envelope", func(e *env) []byte {
			id, err := e.reg.Register(`{"type":"record","name":"Plain","fields":[{"name":"x","type":"int"}]}`)
			if err != nil {
				t.Fatal(err)
			}
			return []byte{0, 0, 0, 0, byte(id), 2}
		}, []string{"not a Debezium envelope", "offset 0", "topic weird.topic"}},
		{"garbage", func(e *env) []byte { return []byte("{\"json\": true}") },
			[]string{"magic byte is 123", "offset 0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.createTopic("weird.topic", 1)
			e.produce(&kgo.Record{Topic: "weird.topic", Value: tc.value(e)})
			r := start(context.Background(), e.spec("weird", "weird.topic"), e.target(), e.deps())
			var err error
			select {
			case err = <-r.done:
			case <-time.After(30 * time.Second):
				t.Fatal("sink did not stop")
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestStartLatestAndRegexTopics(t *testing.T) {
	e := newEnv(t)
	t1 := "app.public.t1"
	e.createTopic(t1, 1)
	enc1 := e.encoder(customers(t1))
	e.produce(ev(t, enc1, "c", nil, row(1, "before start", nil)))
	spec := e.spec("rx")
	spec.Topics = nil
	spec.TopicsRegex = `app\.public\..*`
	spec.Start = "latest"
	r := start(context.Background(), spec, e.target(), e.deps())
	db := e.openDB()
	// start: latest stores the end offset at once.
	waitOffsets(t, db, r, "rx", map[string]int64{t1 + "/0": 1})
	e.produce(ev(t, enc1, "c", nil, row(2, "after start", nil)))
	waitOffsets(t, db, r, "rx", map[string]int64{t1 + "/0": 2})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// Written while the sink is down: not skipped on restart.
	e.produce(ev(t, enc1, "c", nil, row(3, "while down", nil)))
	// A topic created later is read from its start.
	t2 := "app.public.t2"
	e.createTopic(t2, 1)
	c2 := customers(t2)
	c2.Name = "t2"
	enc2 := e.encoder(c2)
	e.produce(ev(t, enc2, "c", nil, row(1, "new topic", nil)))
	e.createTopic("other.public.t3", 1)
	e.produce(ev(t, e.encoder(customers("other.public.t3")), "c", nil, row(1, "not matched", nil)))

	r = start(context.Background(), spec, e.target(), e.deps())
	waitOffsets(t, db, r, "rx", map[string]int64{t1 + "/0": 3, t2 + "/0": 1})
	eq(t, "t1 (table customers)", queryRows(t, db, `SELECT id, name FROM public_customers ORDER BY id`), []string{"2|after start", "3|while down"})
	eq(t, "t2", queryRows(t, db, `SELECT id, name FROM public_t2 ORDER BY id`), []string{"1|new topic"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestManyPartitionsKeepKeyOrder spreads keys over partitions and updates
// every key many times in small batches: the copy must end with each key's
// last value.
func TestManyPartitionsKeepKeyOrder(t *testing.T) {
	e := newEnv(t)
	topic := "load.public.counters"
	e.createTopic(topic, 4)
	enc := e.encoder(customers(topic))
	const keys, rounds = 50, 20
	var recs []*kgo.Record
	for round := range rounds {
		for k := range keys {
			if round == rounds-1 && k%10 == 0 {
				recs = append(recs, ev(t, enc, "d", row(k, "", nil), nil), tomb(t, enc, row(k, "", nil)))
				continue
			}
			recs = append(recs, ev(t, enc, "u", nil, row(k, fmt.Sprintf("v%d", round), nil)))
		}
	}
	e.produce(recs...)
	spec := e.spec("order", topic)
	spec.BatchSize = 37
	r := start(context.Background(), spec, e.target(), e.deps())
	db := e.openDB()
	cl, _ := e.cluster.NewClient()
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.Offset
		}
	})
	waitOffsets(t, db, r, "order", want)
	var exp []string
	for k := range keys {
		if k%10 != 0 {
			exp = append(exp, fmt.Sprintf("%d|v%d", k, rounds-1))
		}
	}
	eq(t, "final values", queryRows(t, db, `SELECT id, name FROM public_customers ORDER BY id`), exp)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestSpecValidate(t *testing.T) {
	s := sink.Spec{Topics: []string{"a"}, TopicsRegex: "(", Start: "now", InsertMode: "merge",
		ErrorsTolerance: "some", TableNameFormat: "${source.nope}", FieldsInclude: []string{"a"}, FieldsExclude: []string{"b"}}
	err := s.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"name", "topics_regex", "start", "insert.mode", "errors.tolerance", "table_name_format", "fields.exclude"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	ok := sink.DefaultSpec()
	ok.Name, ok.Topics = "x", []string{"t"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("default spec: %v", err)
	}
	keys := strings.Join(sink.SpecKeys(), ",")
	for _, k := range []string{"topics", "insert.mode", "errors.tolerance", "batch_size", "flush_interval", "table_name_format"} {
		if !strings.Contains(keys, k) {
			t.Errorf("SpecKeys lacks %s", k)
		}
	}
}

// TestTopicsChangedWakesDiscovery: a topic created after the sink started
// is consumed at once when Deps.TopicsChanged fires, not after
// topic_refresh_interval.
func TestTopicsChangedWakesDiscovery(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("wake")
	spec.Topics = nil
	spec.TopicsRegex = `wake\..*`
	spec.TopicRefreshInterval = time.Hour
	deps := e.deps()
	changed := make(chan struct{}, 1)
	deps.TopicsChanged = changed
	r := start(context.Background(), spec, e.target(), deps)
	time.Sleep(300 * time.Millisecond) // the sink's first look found nothing
	topic := "wake.public.customers"
	e.createTopic(topic, 1)
	e.produce(ev(t, e.encoder(customers(topic)), "c", nil, row(1, "woken", nil)))
	changed <- struct{}{}
	db := e.openDB()
	began := time.Now()
	waitOffsets(t, db, r, "wake", map[string]int64{topic + "/0": 1})
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("the new topic was consumed %v after the wake-up", took)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestTombstoneWithoutDeleteDeletes: compaction keeps only a key's latest
// record, so a sink that lags behind it (or replays a compacted topic) may
// read a tombstone whose delete event is gone; the row must still go.
func TestTombstoneWithoutDeleteDeletes(t *testing.T) {
	e := newEnv(t)
	topic := "shop.public.customers"
	e.createTopic(topic, 1)
	enc := e.encoder(customers(topic))
	e.produce(
		ev(t, enc, "r", nil, row(1, "ann", "ann@x")),
		ev(t, enc, "r", nil, row(2, "bob", nil)),
		ev(t, enc, "r", nil, row(3, "cyd", nil)),
		// The delete of key 2 was compacted away: only its tombstone is left.
		tomb(t, enc, row(2, "", nil)),
	)
	r := start(context.Background(), e.spec("copy", topic), e.target(), e.deps())
	db := e.openDB()
	waitOffsets(t, db, r, "copy", map[string]int64{topic + "/0": 4})
	eq(t, "rows", queryRows(t, db, `SELECT id FROM public_customers ORDER BY id`), []string{"1", "3"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// In a later run, a tombstone that comes before any change of its topic
	// cannot name its table: it is logged and the next change applies.
	e.produce(tomb(t, enc, row(3, "", nil)), ev(t, enc, "c", nil, row(4, "dee", nil)), tomb(t, enc, row(1, "", nil)))
	r = start(context.Background(), e.spec("copy", topic), e.target(), e.deps())
	waitOffsets(t, db, r, "copy", map[string]int64{topic + "/0": 7})
	eq(t, "rows after a second run", queryRows(t, db, `SELECT id FROM public_customers ORDER BY id`), []string{"3", "4"})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

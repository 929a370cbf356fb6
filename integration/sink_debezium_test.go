package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dbzPGKeySchema is the key schema Debezium derives for the kvs fixture's
// primary key (tenant, store, partition_key, sort_key): a record "Key" in
// the topic's namespace.
const dbzPGKeySchema = `{"type": "record", "name": "Key", "namespace": "changefeed.pg.testtenant_teststore_abc_kv.public.kvs",
 "fields": [{"name": "tenant", "type": "string"}, {"name": "store", "type": "string"},
  {"name": "partition_key", "type": "string"}, {"name": "sort_key", "type": "string"}],
 "connect.name": "changefeed.pg.testtenant_teststore_abc_kv.public.kvs.Key"}`

// dbzProducer writes records the way Debezium with the Confluent
// AvroConverter does: schemas registered under <topic>-key / <topic>-value,
// payloads framed as magic byte 0, 4-byte schema id, Avro binary.
type dbzProducer struct {
	t        *testing.T
	le       *logEnv
	cl       *kgo.Client
	schemas  map[int]avro.Schema
	subjects map[string]int
	// apis holds one hamba/avro API per schema id: its codec cache knows a
	// named reference ("Value") by name only, so two versions of a record
	// must not share one.
	apis map[int]avro.API
}

func newDBZProducer(t *testing.T, le *logEnv) *dbzProducer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &dbzProducer{t: t, le: le, cl: cl, schemas: map[int]avro.Schema{}, subjects: map[string]int{}, apis: map[int]avro.API{}}
}

// register posts schema under subject over the registry's HTTP API and
// parses it with a cache of its own, so fixtures of different tables that
// reuse record names ("Value", "Source") do not clash.
func (p *dbzProducer) register(subject, schemaJSON string) int {
	t := p.t
	t.Helper()
	body, _ := json.Marshal(map[string]string{"schema": schemaJSON})
	resp, err := http.Post(p.le.registryURL+"/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("registering %s: %v", subject, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		ID int `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.ID == 0 {
		t.Fatalf("registering %s: HTTP %d: %s", subject, resp.StatusCode, raw)
	}
	sch, err := avro.ParseWithCache(schemaJSON, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("parsing the schema of %s: %v", subject, err)
	}
	p.schemas[out.ID] = sch
	p.apis[out.ID] = avro.Config{MaxByteSliceSize: 64 << 20}.Freeze()
	p.subjects[subject] = out.ID
	return out.ID
}

func (p *dbzProducer) encode(subject string, v any) []byte {
	t := p.t
	t.Helper()
	id, ok := p.subjects[subject]
	if !ok {
		t.Fatalf("subject %s not registered", subject)
	}
	b, err := p.apis[id].Marshal(p.schemas[id], v)
	if err != nil {
		t.Fatalf("encoding a %s record: %v (%v)", subject, err, v)
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, b...)
}

// send creates topic (one partition) if needed and writes recs to it in order.
func (p *dbzProducer) send(topic string, recs ...*kgo.Record) {
	t := p.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(p.cl).CreateTopic(ctx, 1, -1, nil, topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	for _, r := range recs {
		r.Topic, r.Partition = topic, 0
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
}

// rec builds a record from a key and a value (nil value: tombstone; nil key:
// null key, as Debezium's truncate events have).
func (p *dbzProducer) rec(topic string, key, value any) *kgo.Record {
	r := &kgo.Record{}
	if key != nil {
		r.Key = p.encode(topic+"-key", key)
	}
	if value != nil {
		r.Value = p.encode(topic+"-value", value)
	}
	return r
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "schema", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mysqlSource is the source block of a Debezium 3.1 MySQL event.
func mysqlSource(snapshot string, pos int64) map[string]any {
	return map[string]any{
		"version": "3.1.2.Final", "connector": "mysql", "name": "dbserver1", "ts_ms": int64(1714550400000),
		"snapshot": snapshot, "db": "demo", "sequence": nil, "ts_us": int64(1714550400000000), "ts_ns": int64(1714550400000000000),
		"table": "users", "server_id": int64(223344), "gtid": nil, "file": "mysql-bin.000003", "pos": pos, "row": 0,
		"thread": nil, "query": nil,
	}
}

// pgSource is the source block of a Debezium 2.7 PostgreSQL event.
func pgSource(snapshot string, lsn int64) map[string]any {
	return map[string]any{
		"version": "2.7.3.Final", "connector": "postgresql", "name": "changefeed.pg.testtenant_teststore_abc_kv",
		"ts_ms": int64(1714550400000), "snapshot": snapshot, "db": "kvdb",
		"sequence": fmt.Sprintf(`["%d","%d"]`, lsn-8, lsn), "ts_us": nil, "ts_ns": nil,
		"schema": "public", "table": "kvs", "txId": int64(700 + lsn%100), "lsn": lsn, "xmin": nil,
	}
}

// envelope builds an Envelope; hamba/avro takes a record inside a union in
// its generic form {"<full record name>": value}.
func envelope(op string, before, after, source map[string]any) map[string]any {
	var b, a any
	valueName := "dbserver1.demo.users.Value"
	if source["connector"] == "postgresql" {
		valueName = "changefeed.pg.testtenant_teststore_abc_kv.public.kvs.Value"
	}
	if before != nil {
		b = map[string]any{valueName: before}
	}
	if after != nil {
		a = map[string]any{valueName: after}
	}
	return map[string]any{"before": b, "after": a, "source": source, "transaction": nil, "op": op,
		"ts_ms": int64(1714550400123), "ts_us": nil, "ts_ns": nil}
}

func user(id int, name, age, created any) map[string]any {
	return map[string]any{"id": id, "name": name, "age": age, "created_at": created}
}

func kv(pk, version, updated string, tags []any, data any) map[string]any {
	var tg any
	if tags != nil {
		tg = tags
	}
	return map[string]any{"tenant": "t1", "store": "s1", "partition_key": pk, "sort_key": "sk-" + pk, "version": version,
		"updated_at": updated, "tags": tg, "data": data, "encoding": nil, "schema": nil, "lookup_keys": nil}
}

func kvKey(pk string) map[string]any {
	return map[string]any{"tenant": "t1", "store": "s1", "partition_key": pk, "sort_key": "sk-" + pk}
}

// produceDebeziumFixtures writes a MySQL users topic and a PostgreSQL kvs
// topic with r, c, u, d + tombstone (and t for PostgreSQL) events.
func produceDebeziumFixtures(t *testing.T, le *logEnv, usersTopic, kvsTopic string) {
	p := newDBZProducer(t, le)
	p.register(usersTopic+"-key", readTestdata(t, "dbz3_mysql_users_key.avsc"))
	p.register(usersTopic+"-value", readTestdata(t, "dbz3_mysql_users_value.avsc"))
	p.register(kvsTopic+"-key", dbzPGKeySchema)
	p.register(kvsTopic+"-value", readTestdata(t, "dbz2_pg_kvs_value.avsc"))

	k := func(id int) map[string]any { return map[string]any{"id": id} }
	alice := user(1, "alice", 30, "2024-01-01T00:00:00Z")
	bob := user(2, "bob", nil, "2024-02-02T02:02:02Z")
	p.send(usersTopic,
		p.rec(usersTopic, k(1), envelope("r", nil, alice, mysqlSource("true", 100))),
		p.rec(usersTopic, k(2), envelope("r", nil, bob, mysqlSource("last", 100))),
		p.rec(usersTopic, k(3), envelope("c", nil, user(3, "carol", nil, "2024-03-03T03:03:03.5Z"), mysqlSource("false", 200))),
		p.rec(usersTopic, k(1), envelope("u", alice, user(1, "alice2", 31, "2024-01-01T00:00:00Z"), mysqlSource("false", 300))),
		p.rec(usersTopic, k(2), envelope("d", bob, nil, mysqlSource("false", 400))),
		p.rec(usersTopic, k(2), nil),
		p.rec(usersTopic, k(4), envelope("c", nil, user(4, nil, nil, nil), mysqlSource("false", 500))),
	)
	a := kv("a", "v1", "2024-05-01T10:00:00.123456Z", []any{"x"}, "da")
	b := kv("b", "v1", "2024-05-01T10:00:01Z", []any{"p", nil, "q"}, nil)
	c := kv("c", "v1", "2024-05-01T11:00:00Z", nil, "dc")
	p.send(kvsTopic,
		p.rec(kvsTopic, kvKey("a"), envelope("r", nil, a, pgSource("last", 1000))),
		p.rec(kvsTopic, kvKey("b"), envelope("c", nil, b, pgSource("false", 1100))),
		p.rec(kvsTopic, kvKey("a"), envelope("u", nil, kv("a", "v2", "2024-05-01T10:30:00Z", []any{"x", "y"}, "da2"), pgSource("false", 1200))),
		p.rec(kvsTopic, kvKey("b"), envelope("d", b, nil, pgSource("false", 1300))),
		p.rec(kvsTopic, kvKey("b"), nil),
		// The source table was truncated: Debezium's truncate has a null key.
		p.rec(kvsTopic, nil, envelope("t", nil, nil, pgSource("false", 1400))),
		p.rec(kvsTopic, kvKey("c"), envelope("c", nil, c, pgSource("false", 1500))),
		p.rec(kvsTopic, kvKey("d"), envelope("c", nil, kv("d", "v1", "2024-05-01T12:00:00+02:00", []any{}, nil), pgSource("false", 1600))),
		p.rec(kvsTopic, kvKey("c"), envelope("u", c, kv("c", "v2", "2024-05-01T11:00:00Z", []any{"z"}, "dc2"), pgSource("false", 1700))),
	)
}

// Expected copies of the fixtures, normalised like typedState rows.
var (
	dbzUsersWant = map[string]string{
		"1": "alice2|31|" + tsMicros("2024-01-01T00:00:00Z"),
		"3": "carol|<null>|" + tsMicros("2024-03-03T03:03:03.5Z"),
		"4": "<null>|<null>|<null>",
	}
	dbzKVsWant = map[string]string{
		"c": `v2|` + tsMicros("2024-05-01T11:00:00Z") + `|["z"]|dc2`,
		"d": `v1|` + tsMicros("2024-05-01T10:00:00Z") + `|[]|<null>`,
	}
)

func tsMicros(s string) string {
	v, err := normValue("ts", sql.NullString{String: s, Valid: true})
	if err != nil {
		panic(err)
	}
	return v
}

// readNorm runs query (first column a key, the rest typed by kinds) and
// returns key -> "v1|v2|...".
func readNorm(q func(string) (*sqlRows, error), query string, kinds ...string) (map[string]string, error) {
	rows, err := q(query)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range rows.vals {
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			s, err := normValue(k, r[i+1])
			if err != nil {
				return nil, err
			}
			parts[i] = s
		}
		out[r[0].String] = strings.Join(parts, "|")
	}
	return out, nil
}

type sqlRows struct{ vals [][]sql.NullString }

func sqliteRows(db *sql.DB) func(string) (*sqlRows, error) {
	return func(query string) (*sqlRows, error) {
		rows, err := db.Query(query)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		out := &sqlRows{}
		for rows.Next() {
			v := make([]sql.NullString, len(cols))
			dst := make([]any, len(cols))
			for i := range v {
				dst[i] = &v[i]
			}
			if err := rows.Scan(dst...); err != nil {
				return nil, err
			}
			out.vals = append(out.vals, v)
		}
		return out, rows.Err()
	}
}

func pgRows(c *pgx.Conn) func(string) (*sqlRows, error) {
	return func(query string) (*sqlRows, error) {
		rows, err := c.Query(context.Background(), query)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := &sqlRows{}
		for rows.Next() {
			n := len(rows.FieldDescriptions())
			v := make([]sql.NullString, n)
			dst := make([]any, n)
			for i := range v {
				dst[i] = &v[i]
			}
			if err := rows.Scan(dst...); err != nil {
				return nil, err
			}
			out.vals = append(out.vals, v)
		}
		return out, rows.Err()
	}
}

// waitRows polls read until it returns want.
func waitRows(t *testing.T, what string, want map[string]string, read func() (map[string]string, error), w *proc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		if w != nil && w.exited() {
			t.Fatalf("worker exited while waiting for %s: %v\n%s", what, w.err, tail([]byte(w.output()), 4096))
		}
		got, err := read()
		if err == nil && fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		last = fmt.Sprintf("got %v (err %v)", got, err)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: want %v; %s", what, want, last)
}

// TestSinkDebeziumFixtures: topics written exactly as Debezium 2.x
// (PostgreSQL) and 3.x (MySQL) connectors write them with the Confluent
// AvroConverter are applied by a sink-only pipeline into SQLite and
// PostgreSQL: snapshot reads, creates, updates, deletes with tombstones and a
// truncate with a null key.
func TestSinkDebeziumFixtures(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			base := uniq("dbz")
			usersTopic, kvsTopic := base+".demo.users", base+".public.kvs"
			sqlitePath := filepath.Join(t.TempDir(), "copy.db")
			pgCopy := pgDB(t)
			cfg := writeFile(t, t.TempDir(), "pipeline.yaml", le.yaml+fmt.Sprintf(`sinks:
  - name: %[1]s_lite
    type: sqlite
    path: %[2]s
    topics_regex: %[1]s\..*
    topic_refresh_interval: 300ms
    flush_interval: 20ms
  - name: %[1]s_pg
    type: postgres
    url: %[3]s
    topics: [%[4]s, %[5]s]
    topic_refresh_interval: 300ms
    flush_interval: 20ms
`, base, sqlitePath, pgCopy, usersTopic, kvsTopic))
			w := startWorker(t, le, cfg)
			produceDebeziumFixtures(t, le, usersTopic, kvsTopic)

			sq := openSQLite(t, sqlitePath)
			waitRows(t, "SQLite demo_users", dbzUsersWant, func() (map[string]string, error) {
				return readNorm(sqliteRows(sq), "SELECT CAST(id AS TEXT), name, CAST(age AS TEXT), created_at FROM demo_users", "text", "int", "ts")
			}, w)
			waitRows(t, "SQLite public_kvs", dbzKVsWant, func() (map[string]string, error) {
				return readNorm(sqliteRows(sq), "SELECT partition_key, version, updated_at, tags, data FROM public_kvs", "text", "ts", "json", "text")
			}, w)
			pc := pgConn(t, pgCopy)
			waitRows(t, "PostgreSQL demo.users", dbzUsersWant, func() (map[string]string, error) {
				return readNorm(pgRows(pc), `SELECT id::text, name, age::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') FROM demo.users`, "text", "int", "ts")
			}, w)
			waitRows(t, "PostgreSQL public.kvs", dbzKVsWant, func() (map[string]string, error) {
				return readNorm(pgRows(pc), `SELECT partition_key, version, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), to_jsonb(tags)::text, data FROM public.kvs`, "text", "ts", "json", "text")
			}, w)
			// Keys: the PostgreSQL copy's primary key is the event key.
			var pk string
			if err := pc.QueryRow(context.Background(), `SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_index i
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
				WHERE i.indrelid = 'public.kvs'::regclass AND i.indisprimary`).Scan(&pk); err != nil || pk != "partition_key,sort_key,store,tenant" {
				t.Errorf("public.kvs primary key %q (err %v), want the four key fields", pk, err)
			}
			var ty string
			if err := pc.QueryRow(context.Background(), "SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'kvs' AND column_name = 'updated_at'").Scan(&ty); err != nil || ty != "timestamp with time zone" {
				t.Errorf("ZonedTimestamp column updated_at is %q (err %v), want timestamp with time zone", ty, err)
			}
			w.stop(t)
		})
	}
}

// usersSinkSetup starts an embedded log with the Debezium users schemas
// registered and returns the producer, the topic and a PostgreSQL copy
// whose demo.users table refuses the name 'poison'.
func usersSinkSetup(t *testing.T) (le *logEnv, copyURL, topic string) {
	le = newLogEnv(t, modes[0])
	copyURL = pgDB(t)
	cc := pgConn(t, copyURL)
	pgExec(t, cc, "CREATE SCHEMA demo")
	pgExec(t, cc, "CREATE TABLE demo.users (id int PRIMARY KEY, name text CHECK (name <> 'poison'), age int, created_at timestamptz)")
	return le, copyURL, uniq("rej") + ".demo.users"
}

func usersSinkYAML(le *logEnv, name, copyURL, topic, extra string) string {
	return le.yaml + fmt.Sprintf("sinks:\n  - name: %s\n    type: postgres\n    url: %s\n    topics: [%s]\n    topic_refresh_interval: 300ms\n    flush_interval: 20ms\n%s",
		name, copyURL, topic, extra)
}

func usersProducer(t *testing.T, le *logEnv, topic string) *dbzProducer {
	p := newDBZProducer(t, le)
	p.register(topic+"-key", readTestdata(t, "dbz3_mysql_users_key.avsc"))
	p.register(topic+"-value", readTestdata(t, "dbz3_mysql_users_value.avsc"))
	return p
}

func userCreate(p *dbzProducer, topic string, id int, name string) *kgo.Record {
	return p.rec(topic, map[string]any{"id": id}, envelope("c", nil, user(id, name, 20, "2024-01-01T00:00:00Z"), mysqlSource("false", int64(100+id))))
}

func pgUserIDs(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	var ids string
	if err := c.QueryRow(context.Background(), "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM demo.users").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestSinkRejectedRecordStop: by default a record the target refuses stops
// the worker with an error naming the sink, topic, partition, offset, key
// and cause; the rows before it are applied, the one after it is not.
func TestSinkRejectedRecordStop(t *testing.T) {
	le, copyURL, topic := usersSinkSetup(t)
	name := uniq("stop")
	w := startWorker(t, le, writeFile(t, t.TempDir(), "p.yaml", usersSinkYAML(le, name, copyURL, topic, "")))
	p := usersProducer(t, le, topic)
	p.send(topic, userCreate(p, topic, 10, "ok10"), userCreate(p, topic, 11, "poison"), userCreate(p, topic, 12, "ok12"))
	if code := w.exitCode(t, time.Minute); code == 0 {
		t.Fatalf("worker exited 0 after a rejected record:\n%s", w.output())
	}
	out := w.output()
	for _, want := range []string{"sink " + name, "topic " + topic, "partition 0", "offset 1", `key {"id":11}`, "users_name_check"} {
		if !strings.Contains(out, want) {
			t.Errorf("worker output lacks %q:\n%s", want, tail([]byte(out), 4096))
		}
	}
	// The rejected record is never skipped: nothing at or after it is applied.
	cc := pgConn(t, copyURL)
	if ids := pgUserIDs(t, cc); ids != "10" && ids != "" {
		t.Errorf("copy holds ids %q after the sink stopped at offset 1; want 10 (or nothing)", ids)
	}
	var next int64
	_ = cc.QueryRow(context.Background(), "SELECT coalesce(max(next_offset), 0) FROM tributary_offsets WHERE sink_name = $1 AND kafka_partition >= 0", name).Scan(&next)
	if next > 1 {
		t.Errorf("stored next_offset %d is past the rejected record at offset 1", next)
	}
}

// TestSinkRejectedRecordDLQ: with errors.tolerance: all the refused record
// goes to <sink>.dlq with Kafka Connect's __connect.errors.* headers and its
// original key and value, and the sink goes on with the records after it.
func TestSinkRejectedRecordDLQ(t *testing.T) {
	le, copyURL, topic := usersSinkSetup(t)
	name := uniq("dlq")
	w := startWorker(t, le, writeFile(t, t.TempDir(), "p.yaml", usersSinkYAML(le, name, copyURL, topic, "    errors.tolerance: all\n")))
	p := usersProducer(t, le, topic)
	poison := userCreate(p, topic, 11, "poison")
	poisonValue := append([]byte(nil), poison.Value...)
	p.send(topic, userCreate(p, topic, 10, "ok10"), poison, userCreate(p, topic, 12, "ok12"))
	cc := pgConn(t, copyURL)
	deadline := time.Now().Add(time.Minute)
	for pgUserIDs(t, cc) != "10,12" {
		if time.Now().After(deadline) {
			t.Fatalf("copy holds %q, want 10,12", pgUserIDs(t, cc))
		}
		if w.exited() {
			t.Fatalf("worker exited with errors.tolerance all: %v\n%s", w.err, w.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The sink goes on after the dead letter.
	p.send(topic, userCreate(p, topic, 13, "ok13"))
	deadline = time.Now().Add(time.Minute)
	for pgUserIDs(t, cc) != "10,12,13" {
		if time.Now().After(deadline) {
			t.Fatalf("copy holds %q after a later record, want 10,12,13", pgUserIDs(t, cc))
		}
		time.Sleep(100 * time.Millisecond)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers), kgo.ConsumeTopics(name+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var dead []*kgo.Record
	deadline = time.Now().Add(30 * time.Second)
	for len(dead) == 0 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { dead = append(dead, r) })
		cancel()
	}
	if len(dead) != 1 {
		t.Fatalf("%s.dlq holds %d records, want 1", name, len(dead))
	}
	d := dead[0]
	h := map[string]string{}
	for _, x := range d.Headers {
		h[x.Key] = string(x.Value)
	}
	for k, want := range map[string]string{
		"__connect.errors.topic":          topic,
		"__connect.errors.partition":      "0",
		"__connect.errors.offset":         "1",
		"__connect.errors.connector.name": name,
	} {
		if h[k] != want {
			t.Errorf("dead letter header %s = %q, want %q (all: %v)", k, h[k], want, h)
		}
	}
	if !strings.Contains(h["__connect.errors.exception.message"], "users_name_check") {
		t.Errorf("__connect.errors.exception.message %q does not give the cause", h["__connect.errors.exception.message"])
	}
	for _, k := range []string{"__connect.errors.stage", "__connect.errors.class.name", "__connect.errors.exception.class.name"} {
		if h[k] == "" {
			t.Errorf("dead letter lacks header %s (all: %v)", k, h)
		}
	}
	if !bytes.Equal(d.Value, poisonValue) {
		t.Errorf("dead letter value is not the original record's value")
	}
	w.stop(t)
}

// TestSinkUndecodableRecord: a record that is not Confluent-framed Avro, and
// one whose schema id the registry does not know, stop the sink with an
// error naming the topic, offset and what is wrong.
func TestSinkUndecodableRecord(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
		want  []string
	}{
		{"garbage", []byte("hello, not avro"), []string{"magic byte", "offset 1"}},
		{"unknown_schema_id", []byte{0, 0, 0, 0x7a, 0x69, 2, 4, 6}, []string{"schema id 31337", "offset 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			le, copyURL, topic := usersSinkSetup(t)
			name := uniq("undec")
			w := startWorker(t, le, writeFile(t, t.TempDir(), "p.yaml", usersSinkYAML(le, name, copyURL, topic, "")))
			p := usersProducer(t, le, topic)
			p.send(topic, userCreate(p, topic, 10, "ok10"), &kgo.Record{Key: p.encode(topic+"-key", map[string]any{"id": 11}), Value: tc.value})
			if code := w.exitCode(t, time.Minute); code == 0 {
				t.Fatalf("worker exited 0 after an undecodable record:\n%s", w.output())
			}
			out := w.output()
			for _, want := range append(tc.want, "topic "+topic) {
				if !strings.Contains(out, want) {
					t.Errorf("worker output lacks %q:\n%s", want, tail([]byte(out), 4096))
				}
			}
		})
	}
}

// TestSinkUndecodableRecordDLQ: with errors.tolerance: all a record that is
// not Confluent-framed Avro goes to the dead-letter topic (stage
// VALUE_CONVERTER) and the records after it are applied.
func TestSinkUndecodableRecordDLQ(t *testing.T) {
	le, copyURL, topic := usersSinkSetup(t)
	name := uniq("undecdlq")
	w := startWorker(t, le, writeFile(t, t.TempDir(), "p.yaml", usersSinkYAML(le, name, copyURL, topic, "    errors.tolerance: all\n")))
	p := usersProducer(t, le, topic)
	p.send(topic, userCreate(p, topic, 10, "ok10"), &kgo.Record{Key: p.encode(topic+"-key", map[string]any{"id": 11}), Value: []byte("garbage")}, userCreate(p, topic, 12, "ok12"))
	cc := pgConn(t, copyURL)
	deadline := time.Now().Add(time.Minute)
	for pgUserIDs(t, cc) != "10,12" {
		if time.Now().After(deadline) {
			t.Fatalf("copy holds %q, want 10,12", pgUserIDs(t, cc))
		}
		if w.exited() {
			t.Fatalf("worker exited with errors.tolerance all: %v\n%s", w.err, w.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers), kgo.ConsumeTopics(name+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var dead []*kgo.Record
	deadline = time.Now().Add(30 * time.Second)
	for len(dead) == 0 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { dead = append(dead, r) })
		cancel()
	}
	if len(dead) != 1 || string(dead[0].Value) != "garbage" {
		t.Fatalf("%s.dlq holds %d records, want the garbage one", name, len(dead))
	}
	h := map[string]string{}
	for _, x := range dead[0].Headers {
		h[x.Key] = string(x.Value)
	}
	if h["__connect.errors.offset"] != "1" || h["__connect.errors.stage"] != "VALUE_CONVERTER" || !strings.Contains(h["__connect.errors.exception.message"], "magic byte") {
		t.Errorf("dead letter headers %v: want offset 1, stage VALUE_CONVERTER, a message about the magic byte", h)
	}
	w.stop(t)
}

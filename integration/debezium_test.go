package integration

// Helpers that run real Debezium 3.6.1 on Kafka Connect (standalone) next to
// tributary: the differential tests and the Debezium benchmarks use them. The
// jars are fetched on first use by integration/services/debezium.sh.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// debeziumScript is integration/services/debezium.sh, found from this file.
func debeziumScript(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "services", "debezium.sh")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("debezium.sh: %v", err)
	}
	return p
}

// connectWorker is a Kafka Connect standalone worker running Debezium.
type connectWorker struct {
	p   *proc
	url string // REST base, http://127.0.0.1:port
}

// dbzConnector is one connector for startConnect: its name and properties.
type dbzConnector struct {
	name  string
	props map[string]string
}

// startConnect fetches the jars if needed (debezium.sh fetch, outside the
// startup timeout: the first fetch downloads ~40 MB), starts one standalone
// worker with all the connectors (one JVM per test: its start-up costs 15-30 s
// on a shared 2-core machine), and waits until every connector and task runs.
// workerExtra are additional worker.properties lines. A failure to start shows
// the worker's ERROR lines and the tail of its log.
func startConnect(t *testing.T, workerExtra map[string]string, conns ...dbzConnector) *connectWorker {
	t.Helper()
	script := debeziumScript(t)
	if out, err := runCmd(t, 20*time.Minute, "bash", script, "fetch"); err != nil {
		t.Fatalf("debezium.sh fetch: %v\n%s", err, out)
	}
	work := t.TempDir()
	args := []string{script, "start", work, "", "-"}
	port := freePort(t)
	args[3] = fmt.Sprint(port)
	if len(workerExtra) > 0 {
		args[4] = writeFile(t, work, "worker-extra.properties", propsText(workerExtra))
	}
	for _, c := range conns {
		props := map[string]string{"name": c.name}
		for k, v := range c.props {
			props[k] = v
		}
		args = append(args, writeFile(t, work, c.name+".properties", propsText(props)))
	}
	p := startProc(t, "connect", "bash", args...)
	cw := &connectWorker{p: p, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	for _, c := range conns {
		cw.waitRunning(t, c.name, 4*time.Minute)
	}
	return cw
}

// runCmd runs a command to its end within d and returns its combined output.
func runCmd(t testing.TB, d time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func propsText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		// Java properties: backslashes escape, so write them doubled.
		fmt.Fprintf(&b, "%s=%s\n", k, strings.ReplaceAll(m[k], `\`, `\\`))
	}
	return b.String()
}

// connectErrors is the worker log's ERROR lines and their first cause lines,
// minus the known noise of plugin scanning (Debezium's CloudEventsConverter
// does not load on this Connect and is not used).
func (cw *connectWorker) connectErrors() string {
	var b strings.Builder
	lines := strings.Split(cw.p.output(), "\n")
	noise := regexp.MustCompile(`CloudEventsConverter|isolation\.ReflectionScanner`)
	for i, l := range lines {
		if strings.Contains(l, "] ERROR ") && !noise.MatchString(l) {
			b.WriteString(l + "\n")
			for j := i + 1; j < len(lines) && j < i+4 && !strings.HasPrefix(lines[j], "["); j++ {
				b.WriteString(lines[j] + "\n")
			}
		}
	}
	return b.String()
}

// fail ends the test with the worker's errors and the tail of its log.
func (cw *connectWorker) fail(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s\n---- Kafka Connect ERROR lines ----\n%s---- Kafka Connect log (last 6KiB) ----\n%s",
		fmt.Sprintf(format, args...), cw.connectErrors(), tail([]byte(cw.p.output()), 6144))
}

// waitRunning waits until connector name and all its tasks are RUNNING.
func (cw *connectWorker) waitRunning(t testing.TB, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		if cw.p.exited() {
			cw.fail(t, "Kafka Connect exited while starting connector %s: %v", name, cw.p.err)
		}
		resp, err := http.Get(cw.url + "/connectors/" + name + "/status")
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(raw)
			var st struct {
				Connector struct{ State, Trace string }
				Tasks     []struct{ State, Trace string }
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &st) == nil {
				if st.Connector.State == "FAILED" {
					cw.fail(t, "connector %s failed: %s", name, st.Connector.Trace)
				}
				running := st.Connector.State == "RUNNING" && len(st.Tasks) > 0
				for _, tk := range st.Tasks {
					if tk.State == "FAILED" {
						cw.fail(t, "a task of connector %s failed: %s", name, tk.Trace)
					}
					running = running && tk.State == "RUNNING"
				}
				if running {
					return
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	cw.fail(t, "connector %s not RUNNING within %v; last status: %s", name, within, last)
}

// debeziumPGConnector is Debezium's PostgreSQL connector on database dbURL
// (a pgDB URL), with its own slot and publication, Debezium's defaults
// otherwise, and every column's source type propagated as tributary does.
func debeziumPGConnector(t testing.TB, name, dbURL, prefix, slot string, tables []string) dbzConnector {
	t.Helper()
	u := parsePGURL(t, dbURL)
	inc := make([]string, len(tables))
	for i, tb := range tables {
		inc[i] = "public\\." + tb
	}
	return dbzConnector{name: name, props: map[string]string{
		"connector.class":                           "io.debezium.connector.postgresql.PostgresConnector",
		"database.hostname":                         u.host,
		"database.port":                             u.port,
		"database.user":                             u.user,
		"database.password":                         u.password,
		"database.dbname":                           u.db,
		"topic.prefix":                              prefix,
		"plugin.name":                               "pgoutput",
		"slot.name":                                 slot,
		"publication.name":                          slot + "_pub",
		"publication.autocreate.mode":               "filtered",
		"table.include.list":                        strings.Join(inc, ","),
		"column.propagate.source.type":              ".*",
		"topic.creation.default.replication.factor": "1",
		"topic.creation.default.partitions":         "1",
		// Shorter than the 500 ms default: a test waits for it.
		"poll.interval.ms": "100",
	}}
}

type pgURLParts struct{ host, port, user, password, db string }

var pgURLRe = regexp.MustCompile(`^postgres://([^:]+):([^@]*)@([^:/]+):(\d+)/([^?]+)`)

func parsePGURL(t testing.TB, u string) pgURLParts {
	t.Helper()
	m := pgURLRe.FindStringSubmatch(u)
	if m == nil {
		t.Fatalf("cannot parse PostgreSQL URL %q", u)
	}
	return pgURLParts{user: m[1], password: m[2], host: m[3], port: m[4], db: m[5]}
}

// jsonEvent is one record written by Connect's JsonConverter with schemas:
// key and value each {"schema": ..., "payload": ...}.
type jsonEvent struct {
	Topic       string
	Offset      int64
	KeySchema   map[string]any
	Key         map[string]any
	ValueSchema map[string]any
	Value       map[string]any // nil for a tombstone
}

func (e jsonEvent) op() string {
	s, _ := e.Value["op"].(string)
	return s
}

// jsonReader consumes topics from the beginning and decodes JsonConverter
// records; numbers stay json.Number so that 64-bit values are exact.
type jsonReader struct {
	cl  *kgo.Client
	evs []jsonEvent
}

func newJSONReader(t testing.TB, brokers string, topics ...string) *jsonReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &jsonReader{cl: cl}
}

func decodeConnectJSON(b []byte) (schema, payload map[string]any, err error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var env struct {
		Schema  map[string]any `json:"schema"`
		Payload any            `json:"payload"`
	}
	if err := d.Decode(&env); err != nil {
		return nil, nil, err
	}
	p, _ := env.Payload.(map[string]any)
	return env.Schema, p, nil
}

// pollUntil reads until done is true on everything read so far.
func (r *jsonReader) pollUntil(t testing.TB, within time.Duration, done func([]jsonEvent) bool) []jsonEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for !done(r.evs) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v after %d Debezium events", within, len(r.evs))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := r.cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(rec *kgo.Record) {
			ev := jsonEvent{Topic: rec.Topic, Offset: rec.Offset}
			var err error
			if ev.KeySchema, ev.Key, err = decodeConnectJSON(rec.Key); err != nil {
				t.Fatalf("decoding the JSON key at %s@%d: %v", rec.Topic, rec.Offset, err)
			}
			if ev.ValueSchema, ev.Value, err = decodeConnectJSON(rec.Value); err != nil {
				t.Fatalf("decoding the JSON value at %s@%d: %v", rec.Topic, rec.Offset, err)
			}
			r.evs = append(r.evs, ev)
		})
	}
	return r.evs
}

// debeziumMariaDBConnector is Debezium's MariaDB connector on database db of
// the test MariaDB, capturing tables, with its schema history in topic
// <prefix>.history (only the captured tables' DDL: other tests' tables on
// the shared server may hold types its DDL parser refuses), no global read
// lock (the server is shared), Debezium's defaults otherwise, and every
// column's source type propagated as tributary does.
func debeziumMariaDBConnector(t testing.TB, name, db, prefix, brokers string, tables []string) dbzConnector {
	t.Helper()
	m := regexp.MustCompile(`^([^:]+):([^@]*)@tcp\(([^:]+):(\d+)\)/`).FindStringSubmatch(env(t, "TRIBUTARY_TEST_MYSQL_URL"))
	if m == nil {
		t.Fatalf("cannot parse TRIBUTARY_TEST_MYSQL_URL")
	}
	inc := make([]string, len(tables))
	for i, tb := range tables {
		inc[i] = db + `\.` + tb
	}
	return dbzConnector{name: name, props: map[string]string{
		"connector.class":   "io.debezium.connector.mariadb.MariaDbConnector",
		"database.hostname": m[3],
		"database.port":     m[4],
		"database.user":     m[1],
		"database.password": m[2],
		// Unique among the shared server's replicas (tributary derives its
		// own from the connector name, at 1073741824 and above).
		"database.server.id":    fmt.Sprint(100000 + time.Now().UnixNano()%900000),
		"topic.prefix":          prefix,
		"database.include.list": db,
		"table.include.list":    strings.Join(inc, ","),
		"schema.history.internal.kafka.bootstrap.servers":           brokers,
		"schema.history.internal.kafka.topic":                       prefix + ".history",
		"schema.history.internal.store.only.captured.tables.ddl":    "true",
		"schema.history.internal.store.only.captured.databases.ddl": "true",
		"snapshot.locking.mode":                                     "none",
		"column.propagate.source.type":                              ".*",
		"topic.creation.default.replication.factor":                 "1",
		"topic.creation.default.partitions":                         "1",
		"poll.interval.ms":                                          "100",
	}}
}

// readRawJSON reads the records of topic from the start as JSON values,
// until it has at least want and a poll brings nothing new, or within is up.
func readRawJSON(t testing.TB, brokers, topic string, within time.Duration, want int) []map[string]any {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []map[string]any
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 && len(out) >= want {
			break
		}
		fs.EachRecord(func(rec *kgo.Record) {
			d := json.NewDecoder(bytes.NewReader(rec.Value))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				t.Fatalf("%s@%d: %v: %s", topic, rec.Offset, err, rec.Value)
			}
			out = append(out, m)
		})
	}
	return out
}

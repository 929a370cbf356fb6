// Package integration holds the end-to-end suites: they run the real
// tributary binary against real PostgreSQL, MariaDB and Apache Kafka (started
// by integration/services/up.sh) and against the embedded broker.
package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/tributary-cdc/tributary/schema"
)

// env returns a variable the services script exports, failing the test when
// it is missing: a missing service must never turn into a skipped test.
func env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which starts PostgreSQL, MariaDB and Kafka and exports it", name)
	}
	return v
}

func tribBin(t testing.TB) string {
	t.Helper()
	b := env(t, "TRIBUTARY_BIN")
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("TRIBUTARY_BIN %s: %v", b, err)
	}
	return b
}

func uniq(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// freePort picks a free loopback port below the kernel's ephemeral range
// (32768+): a restarted worker binds its port again, and a port in the
// ephemeral range may meanwhile be the local end of some outgoing connection.
func freePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port found in 20000-32000")
	return 0
}

// pgDB creates a fresh database and returns a URL to it; it is dropped
// (with any replication slot on it) at the end of the test.
func pgDB(t testing.TB) string {
	t.Helper()
	base := env(t, "TRIBUTARY_TEST_PG_URL")
	name := uniq("e2e")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database=$1 AND active_pid IS NOT NULL", name)
		_, _ = c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database=$1", name)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return strings.Replace(base, "/postgres?", "/"+name+"?", 1)
}

func pgConn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func pgExec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// mode is one of the two ways tributary reaches a log.
type mode struct {
	name     string
	embedded bool
}

var modes = []mode{{"embedded", true}, {"kafka", false}}

// logEnv is where a worker's log and registry are for a test.
type logEnv struct {
	mode        mode
	dataDir     string
	brokers     string // host:port
	registryURL string
	// yaml is the log/registry/worker part of a pipeline file.
	yaml     string
	httpAddr string
}

// newLogEnv prepares the log side. In Kafka mode the schema registry is a
// separate `tributary registry` process backed by Kafka's _schemas topic, so
// the worker talks to an external Confluent-compatible registry over HTTP.
func newLogEnv(t *testing.T, m mode) *logEnv {
	t.Helper()
	le := &logEnv{mode: m, httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	if m.embedded {
		le.dataDir = t.TempDir()
		le.brokers = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		regAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		le.registryURL = "http://" + regAddr
		le.yaml = fmt.Sprintf("log:\n  data_dir: %s\n  listen: %s\n  compaction_interval: 10s\nregistry:\n  listen: %s\nworker:\n  http: %s\n  flush_interval: 20ms\n",
			le.dataDir, le.brokers, regAddr, le.httpAddr)
		return le
	}
	le.brokers = env(t, "TRIBUTARY_TEST_KAFKA_BROKERS")
	le.registryURL = startExternalRegistry(t, le.brokers)
	le.yaml = fmt.Sprintf("log:\n  brokers: [%s]\nregistry:\n  url: %s\nworker:\n  http: %s\n  flush_interval: 20ms\n",
		le.brokers, le.registryURL, le.httpAddr)
	return le
}

// startExternalRegistry runs `tributary registry` against Kafka with its own
// schemas topic so parallel tests do not share ids.
func startExternalRegistry(t *testing.T, brokers string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProc(t, "registry", tribBin(t), "registry", "--brokers", brokers, "--listen", addr, "--topic", uniq("_schemas"))
	url := "http://" + addr
	waitHTTP(t, url+"/subjects", 60*time.Second, p)
	return url
}

// proc is a running tributary process.
type proc struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	done   chan struct{}
	err    error
	name   string
	logDir string
}

func startProc(t testing.TB, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.logDir = logPath
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("---- %s output (last 4KiB) ----\n%s", name, tail(b, 4096))
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// output returns what the process printed so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.logDir)
	return string(b)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop within 60s of SIGTERM", p.name)
	}
	if p.err != nil {
		t.Fatalf("%s exited with %v after SIGTERM; output:\n%s", p.name, p.err, tail([]byte(p.output()), 4096))
	}
}

// kill sends SIGKILL, as a crash would.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	<-p.done
}

// exitCode waits for the process to end by itself.
func (p *proc) exitCode(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s still running after %v; output:\n%s", p.name, within, tail([]byte(p.output()), 4096))
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

func waitHTTP(t testing.TB, url string, within time.Duration, p *proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited while waiting for %s: %v\n%s", p.name, url, p.err, tail([]byte(p.output()), 4096))
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not OK within %v", url, within)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// event is one decoded record of a change topic.
type event struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       map[string]any
	Value     map[string]any // nil for a tombstone
}

func (e event) op() string {
	if e.Value == nil {
		return ""
	}
	s, _ := e.Value["op"].(string)
	return s
}

func (e event) after() map[string]any {
	m, _ := e.Value["after"].(map[string]any)
	return m
}

func (e event) before() map[string]any {
	m, _ := e.Value["before"].(map[string]any)
	return m
}

// reader consumes topics from the beginning and decodes them through the registry.
type reader struct {
	cl  *kgo.Client
	dec *schema.Decoder
	evs []event // everything read so far, across pollUntil calls
}

func newReader(t testing.TB, le *logEnv, topics ...string) *reader {
	t.Helper()
	return newReaderOpts(t, le, nil, topics...)
}

// newReaderOpts is newReader with extra client options (e.g. read_committed).
func newReaderOpts(t testing.TB, le *logEnv, opts []kgo.Opt, topics ...string) *reader {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(le.brokers), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	src, err := sr.NewClient(sr.URLs(le.registryURL))
	if err != nil {
		t.Fatal(err)
	}
	return &reader{cl: cl, dec: schema.NewDecoder(schema.SRFetcher{Client: src})}
}

// pollUntil reads events until done returns true on everything read so far, or the time is up.
func (r *reader) pollUntil(t testing.TB, within time.Duration, done func([]event) bool) []event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if done(r.evs) {
			return r.evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v after %d events", within, len(r.evs))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := r.cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded && !strings.Contains(err.Error(), "UNKNOWN_TOPIC") {
				t.Logf("fetch %s[%d]: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			ev := event{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
			if len(rec.Key) > 0 {
				_, k, err := r.dec.Decode(context.Background(), rec.Key)
				if err != nil {
					t.Fatalf("decoding key at %s[%d]@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
				}
				ev.Key, _ = k.(map[string]any)
			}
			if rec.Value != nil {
				_, v, err := r.dec.Decode(context.Background(), rec.Value)
				if err != nil {
					t.Fatalf("decoding value at %s[%d]@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
				}
				ev.Value, _ = v.(map[string]any)
			}
			r.evs = append(r.evs, ev)
		})
	}
}

func topicsOf(t testing.TB, le *logEnv) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return td.Names()
}

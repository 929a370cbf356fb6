package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/source"
)

// testConfig is a connector config registered as the "clitest" source type.
type testConfig struct {
	URL    string `yaml:"url" required:"true" desc:"Where to connect."`
	Prefix string `yaml:"topic_prefix" default:"app" desc:"Topic prefix."`
}

func (c *testConfig) TopicPrefix() string { return c.Prefix }
func (c *testConfig) Validate() error {
	if !strings.HasPrefix(c.URL, "test://") {
		return &source.FieldError{Key: "url", Msg: "must start with test://"}
	}
	return nil
}

type testDriver struct{}

func (testDriver) NewConfig() source.Config { return &testConfig{} }
func (testDriver) Open(string, source.Config, *slog.Logger) (source.Connector, error) {
	return nil, errors.New("test driver does not run")
}

func init() { source.Register("clitest", testDriver{}) }

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), args...)
}

func runCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(ctx, args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodPipeline = `log:
  data_dir: ./data
sources:
  - name: one
    type: clitest
    url: test://a
  - name: two
    type: clitest
    url: test://b
    topic_prefix: other
`

func TestVersion(t *testing.T) {
	r := run(t, "version")
	want := fmt.Sprintf("tributary dev (%s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("version = %+v, want stdout %q", r, want)
	}
	if r := run(t, "--version"); r.code != 0 || r.stdout != want {
		t.Errorf("--version = %+v", r)
	}
	if r := run(t, "version", "extra"); r.code != 2 || !strings.Contains(r.stderr, "tributary: unknown command \"extra\"") {
		t.Errorf("version extra = %+v", r)
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, prefix []string)
	walk = func(c *cobra.Command, prefix []string) {
		for _, sub := range c.Commands() {
			p := append(append([]string{}, prefix...), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(newRootCmd(nil, nil), nil)
	paths = append(paths, nil) // the root itself
	names := map[string]bool{}
	for _, p := range paths {
		names[strings.Join(p, " ")] = true
		r := run(t, append(p, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
			t.Errorf("%v --help: %+v", p, r)
		}
	}
	for _, want := range []string{"run", "validate", "tail", "version", "config", "config docs"} {
		if !names[want] {
			t.Errorf("command %q missing; have %v", want, names)
		}
	}
}

func TestValidateOK(t *testing.T) {
	path := writeFile(t, "pipeline.yaml", goodPipeline)
	r := run(t, "validate", "-f", path)
	if r.code != 0 || r.stdout != path+": OK (2 sources, 0 sinks)\n" || r.stderr != "" {
		t.Errorf("validate = %+v", r)
	}
	// A sink entry carries the runtime's keys and the target's side by side.
	path = writeFile(t, "pipeline.yaml", goodPipeline+`sinks:
  - name: copy
    type: sqlite
    topics_regex: 'app\..*'
    batch_size: 100
    insert.mode: insert
    path: ./copy.db
`)
	r = run(t, "validate", "-f", path)
	if r.code != 0 || r.stdout != path+": OK (2 sources, 1 sinks)\n" || r.stderr != "" {
		t.Errorf("validate with a sink = %+v", r)
	}
}

func TestValidateBad(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"malformed", "log:\n  listen: [\n", []string{":2:", "invalid YAML"}},
		{"unknown key", "log:\n  listn: x\n", []string{":2:3: log.listn: unknown key"}},
		{"connector unknown key", "sources:\n  - name: a\n    type: clitest\n    url: test://x\n    urll: y\n", []string{":5:5: sources[0].urll: unknown key (valid keys: url, topic_prefix)"}},
		{"connector validate", "sources:\n  - name: a\n    type: clitest\n    url: http://x\n", []string{":4:5: sources[0].url: must start with test://"}},
		{"unknown type", "sources:\n  - name: a\n    type: nosuch\n", []string{`:3:5: sources[0].type: unknown source type "nosuch" (known types: `, "clitest", "postgres"}},
		{"missing env", "sources:\n  - name: a\n    type: clitest\n    url: ${TRIBUTARY_CLI_TEST_UNSET}\n", []string{":4:10: sources[0].url: environment variable TRIBUTARY_CLI_TEST_UNSET is not set"}},
		{"nothing to run", "worker:\n  name: w\n", []string{": no sources and no sinks: nothing to run"}},
		{"unknown sink type", "sinks:\n  - name: s\n    type: nosuch\n", []string{`:3:5: sinks[0].type: unknown sink type "nosuch" (known types: `, "sqlite"}},
		{"sink keys", "sinks:\n  - name: s\n    type: sqlite\n    topics: [a]\n    path: ''\n    batch_sise: 3\n",
			[]string{":6:5: sinks[0].batch_sise: unknown key (valid keys: name, topics, ", ":5:5: sinks[0].path: is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "pipeline.yaml", tc.yaml)
			r := run(t, "validate", "-f", path)
			if r.code != 2 || r.stdout != "" {
				t.Errorf("validate = %+v, want exit 2 and no stdout", r)
			}
			if !strings.HasPrefix(r.stderr, "tributary: "+path) {
				t.Errorf("stderr %q does not start with tributary: %s", r.stderr, path)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
		})
	}
	// Several errors: each on its own "tributary:" line, in file order.
	path := writeFile(t, "pipeline.yaml", "sources:\n  - name: a\n    type: clitest\n    url: x\n  - name: b\n    type: nosuch\n")
	r := run(t, "validate", "-f", path)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "tributary: "+path+":4:5: sources[0].url: must start with test://") ||
		!strings.HasPrefix(lines[1], "tributary: "+path+":6:5: sources[1].type") {
		t.Errorf("multi-error validate = %+v", r)
	}

	if r := run(t, "validate", "-f", filepath.Join(t.TempDir(), "missing.yaml")); r.code != 2 || !strings.Contains(r.stderr, "cannot read config") {
		t.Errorf("missing file: %+v", r)
	}
	if r := run(t, "validate"); r.code != 2 || !strings.Contains(r.stderr, `tributary: required flag(s) "file" not set`) {
		t.Errorf("no -f: %+v", r)
	}
	if r := run(t, "validate", "--bogus"); r.code != 2 || !strings.Contains(r.stderr, "unknown flag: --bogus") {
		t.Errorf("bad flag: %+v", r)
	}
}

// setWorker swaps runWorker for the test.
func setWorker(t *testing.T, fn func(ctx context.Context, p *config.Pipeline, log *slog.Logger) error) {
	t.Helper()
	prev := runWorker
	runWorker = fn
	t.Cleanup(func() { runWorker = prev })
}

func TestRun(t *testing.T) {
	path := writeFile(t, "pipeline.yaml", goodPipeline+"worker:\n  log_format: json\n")

	// A worker failure is a runtime error: exit 1, printed once.
	setWorker(t, func(ctx context.Context, p *config.Pipeline, log *slog.Logger) error {
		return errors.New("slot is busy")
	})
	if r := run(t, "run", "-f", path); r.code != 1 || r.stderr != "tributary: slot is busy\n" {
		t.Errorf("failing worker: %+v", r)
	}

	// A config problem the worker finds (e.g. when opening a connector) exits 2.
	setWorker(t, func(context.Context, *config.Pipeline, *slog.Logger) error {
		return fmt.Errorf("opening: %w", &config.Error{File: path, Line: 4, Col: 5, Path: "sources[0]", Msg: "bad"})
	})
	if r := run(t, "run", "-f", path); r.code != 2 || r.stderr != "tributary: opening: "+path+":4:5: sources[0]: bad\n" {
		t.Errorf("worker config error: %+v", r)
	}

	// A bad config never reaches the worker: exit 2.
	called := false
	setWorker(t, func(context.Context, *config.Pipeline, *slog.Logger) error { called = true; return nil })
	bad := writeFile(t, "bad.yaml", "sources:\n  - name: a\n    type: clitest\n")
	if r := run(t, "run", "-f", bad); r.code != 2 || called || !strings.Contains(r.stderr, "sources[0].url: required key is missing") {
		t.Errorf("bad config: %+v called=%v", r, called)
	}

	// SIGTERM cancels the worker's context; a clean stop exits 0.
	var got *config.Pipeline
	setWorker(t, func(ctx context.Context, p *config.Pipeline, log *slog.Logger) error {
		got = p
		log.Info("worker started")
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("context not cancelled by SIGTERM")
		}
	})
	r := run(t, "run", "-f", path)
	if r.code != 0 {
		t.Fatalf("run with SIGTERM: %+v", r)
	}
	if got == nil || len(got.Sources) != 2 || got.Sources[1].Name != "two" || got.File != path {
		t.Errorf("worker got %+v", got)
	}
	// The logger follows worker.log_format.
	first := strings.SplitN(r.stderr, "\n", 2)[0]
	var rec map[string]any
	if err := json.Unmarshal([]byte(first), &rec); err != nil || rec["msg"] != "worker started" {
		t.Errorf("log line %q is not the JSON record expected: %v", first, err)
	}
	if !strings.Contains(r.stderr, "stopping") {
		t.Errorf("no stopping message in %q", r.stderr)
	}
}

func TestConfigDocs(t *testing.T) {
	r := run(t, "config", "docs")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("config docs: %+v", r)
	}
	for _, want := range []string{"# Pipeline configuration reference", "| `log.listen` | string | `127.0.0.1:9092` |",
		"## Source `clitest`", "## Keys of every sink", "| `batch_size` | integer | `5000` |", "## Sink `sqlite`", "| `path` | string |", "| `url` | string |  | Required. Where to connect. |", "| `topic_prefix` | string | `app` |"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("docs lack %q", want)
		}
	}
}

// fakeRegistry serves GET /schemas/ids/{id} like a Confluent registry.
func fakeRegistry(t *testing.T, schemas map[int]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id int
		if _, err := fmt.Sscanf(r.URL.Path, "/schemas/ids/%d", &id); err != nil || schemas[id] == "" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error_code":40403,"message":"Schema not found"}`))
			return
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"schema": schemas[id]})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func confluent(t *testing.T, id int, schemaText string, v any) []byte {
	t.Helper()
	s := avro.MustParse(schemaText)
	body, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, body...)
}

func TestTail(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "app.public.t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]

	keySchema := `{"type":"record","name":"Key","namespace":"app.public.t","fields":[{"name":"id","type":"int"}]}`
	valSchema := `{"type":"record","name":"Value","namespace":"app.public.t","fields":[{"name":"id","type":"int"},{"name":"name","type":["null","string"],"default":null}]}`
	reg := fakeRegistry(t, map[int]string{1: keySchema, 2: valSchema})

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ts := time.UnixMilli(1700000000123)
	recs := []*kgo.Record{
		{Topic: "app.public.t", Timestamp: ts, Key: confluent(t, 1, keySchema, map[string]any{"id": 7}), Value: confluent(t, 2, valSchema, map[string]any{"id": 7, "name": "ann"})},
		{Topic: "app.public.t", Timestamp: ts, Key: confluent(t, 1, keySchema, map[string]any{"id": 7}), Value: nil},                                                 // tombstone
		{Topic: "app.public.t", Timestamp: ts, Key: []byte(`["pg",{"server":"app"}]`), Value: []byte(`{"lsn": 42}`)},                                                 // offsets-style JSON
		{Topic: "app.public.t", Timestamp: ts, Key: []byte("k"), Value: append([]byte{0, 0, 0, 0, 99}, 1, 2)},                                                        // unknown schema id
		{Topic: "app.public.t", Timestamp: ts, Key: nil, Value: []byte{0xff, 0xfe}},                                                                                  // binary
		{Topic: "app.public.t", Timestamp: ts, Key: confluent(t, 1, keySchema, map[string]any{"id": 8}), Value: confluent(t, 2, valSchema, map[string]any{"id": 8})}, // null union
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	r := run(t, "tail", "app.public.t", "--from-beginning", "-n", "6", "--key", "--brokers", addr, "--registry", reg.URL)
	if r.code != 0 {
		t.Fatalf("tail: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := []string{
		`{"topic":"app.public.t","partition":0,"offset":0,"timestamp":1700000000123,"key":{"id":7},"value":{"id":7,"name":"ann"}}`,
		`{"topic":"app.public.t","partition":0,"offset":1,"timestamp":1700000000123,"key":{"id":7},"value":null}`,
		`{"topic":"app.public.t","partition":0,"offset":2,"timestamp":1700000000123,"key":["pg",{"server":"app"}],"value":{"lsn":42}}`,
		"", // checked below: the decode error is reported in the line
		`{"topic":"app.public.t","partition":0,"offset":4,"timestamp":1700000000123,"key":null,"value":"//4="}`,
		`{"topic":"app.public.t","partition":0,"offset":5,"timestamp":1700000000123,"key":{"id":8},"value":{"id":8,"name":null}}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), r.stdout)
	}
	for i, w := range want {
		if w != "" && lines[i] != w {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], w)
		}
	}
	var bad tailLine
	if err := json.Unmarshal([]byte(lines[3]), &bad); err != nil || bad.Offset != 3 || !strings.Contains(bad.ValueError, "schema id 99") || string(*bad.Key) != `"k"` {
		t.Errorf("line with unknown schema id = %s (err %v)", lines[3], err)
	}

	// Without --key there is no key field; -f takes endpoints from a config.
	cfg := writeFile(t, "p.yaml", fmt.Sprintf("log:\n  brokers: [%s]\nregistry:\n  url: %s\n", addr, reg.URL))
	r = run(t, "tail", "app.public.t", "--from-beginning", "-n", "1", "-f", cfg)
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"topic":"app.public.t","partition":0,"offset":0,"timestamp":1700000000123,"value":{"id":7,"name":"ann"}}` {
		t.Errorf("tail -f: %+v", r)
	}

	// A mistyped topic fails fast, naming the topics that exist.
	r = run(t, "tail", "app.public.x", "--brokers", addr, "--registry", reg.URL)
	if r.code != 1 || !strings.Contains(r.stderr, `topic "app.public.x" does not exist; topics: app.public.t`) {
		t.Errorf("missing topic: %+v", r)
	}

	// Without -n, tail follows new records until interrupted; cancelling exits 0.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- runCtx(t, ctx, "tail", "app.public.t", "--brokers", addr, "--registry", reg.URL) }()
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		if r.code != 0 || r.stdout != "" {
			t.Errorf("interrupted tail: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop on cancel")
	}

	if r := run(t, "tail", "t", "-f", cfg, "--brokers", addr); r.code != 2 || !strings.Contains(r.stderr, "none of the others can be") {
		t.Errorf("-f with --brokers: %+v", r)
	}
}

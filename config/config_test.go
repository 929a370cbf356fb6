package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/source"
)

// fakeConfig stands for a connector's typed config, with the shapes real
// connectors use: required keys, defaults, nested sections, lists, enums.
type fakeConfig struct {
	URL          string          `yaml:"url" required:"true" desc:"Connection URL."`
	Slot         string          `yaml:"slot" default:"tributary" desc:"Replication slot."`
	TopicPrefix_ string          `yaml:"topic_prefix" desc:"Topic prefix."`
	Tables       []string        `yaml:"tables" desc:"Tables."`
	Heartbeat    time.Duration   `yaml:"heartbeat" default:"10s" desc:"Heartbeat interval."`
	MaxBatch     config.ByteSize `yaml:"max_batch" default:"1MiB" desc:"Batch bound."`
	Snapshot     struct {
		Mode      string `yaml:"mode" default:"initial" enum:"initial,never" desc:"Snapshot mode."`
		ChunkSize int    `yaml:"chunk_size" default:"1000" desc:"Rows per chunk."`
	} `yaml:"snapshot" desc:"Snapshot settings."`
	Extra map[string]any `yaml:"extra" desc:"Free-form options."`

	// validateErr, when set, replaces the normal checks.
	validateErr error
}

func (c *fakeConfig) TopicPrefix() string { return c.TopicPrefix_ }

func (c *fakeConfig) Validate() error {
	if c.validateErr != nil {
		return c.validateErr
	}
	var errs []error
	for _, r := range c.Slot {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			errs = append(errs, &source.FieldError{Key: "slot", Msg: "must match [a-z0-9_]+"})
			break
		}
	}
	for i, t := range c.Tables {
		if strings.Contains(t, " ") {
			errs = append(errs, &source.FieldError{Key: fmt.Sprintf("tables[%d]", i), Msg: "must not contain spaces"})
		}
	}
	if c.Snapshot.ChunkSize <= 0 {
		errs = append(errs, &source.FieldError{Key: "snapshot.chunk_size", Msg: "must be positive"})
	}
	if c.TopicPrefix_ == "" {
		errs = append(errs, &source.FieldError{Key: "topic_prefix", Msg: "is required"})
	}
	return errors.Join(errs...)
}

type fakeDriver struct{}

func (fakeDriver) NewConfig() source.Config { return &fakeConfig{} }
func (fakeDriver) Open(string, source.Config, *slog.Logger) (source.Connector, error) {
	return nil, errors.New("fake driver does not run")
}

func init() { source.Register("fake", fakeDriver{}) }

// mustParse parses src (tabs are not YAML indentation: tests use spaces).
func mustParse(t *testing.T, src string) *config.Pipeline {
	t.Helper()
	p, err := config.Parse("pipeline.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// parseErr parses src, expects failure and returns the error text.
func parseErr(t *testing.T, src string) string {
	t.Helper()
	_, err := config.Parse("pipeline.yaml", []byte(src))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error")
	}
	return err.Error()
}

func wantErr(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("error %q\n  does not contain %q", got, w)
		}
	}
}

func decodeFake(t *testing.T, p *config.Pipeline, i int) (*fakeConfig, error) {
	t.Helper()
	d, ok := source.Lookup(p.Sources[i].Type)
	if !ok {
		t.Fatalf("no driver %q", p.Sources[i].Type)
	}
	cfg := d.NewConfig()
	err := p.Sources[i].Decode(cfg)
	return cfg.(*fakeConfig), err
}

const minimal = `sources:
  - name: pg1
    type: fake
    url: postgres://u:p@localhost/db
    topic_prefix: app
`

func TestDefaults(t *testing.T) {
	p := mustParse(t, minimal)
	l := p.Log
	if !l.Embedded() || l.DataDir != "./data/log" || l.Listen != "127.0.0.1:9092" || l.Partitions != 1 ||
		l.ReplicationFactor != -1 || l.CompactionInterval != 10*time.Minute || !l.SyncWrites ||
		l.OffsetsTopic != "tributary-offsets" || l.Compression != "snappy" || l.ClientID != "tributary" ||
		l.TLS != nil || l.SASL != nil {
		t.Errorf("log defaults: %+v", l)
	}
	r := p.Registry
	if !r.Embedded() || r.Listen != "127.0.0.1:8081" || r.BasicAuth != nil {
		t.Errorf("registry defaults: %+v", r)
	}
	w := p.Worker
	if w.Name != "tributary" || w.Group != "" || w.HTTP != "127.0.0.1:8083" || w.MaxInFlightBytes != 32<<20 ||
		w.LogLevel != "info" || w.LogFormat != "text" || w.FlushInterval != 5*time.Millisecond {
		t.Errorf("worker defaults: %+v", w)
	}
	if w.SlogLevel() != slog.LevelInfo {
		t.Errorf("SlogLevel = %v", w.SlogLevel())
	}
	if len(p.Sources) != 1 || len(p.Sinks) != 0 {
		t.Fatalf("sources=%d sinks=%d", len(p.Sources), len(p.Sinks))
	}
	c := p.Sources[0]
	if c.Name != "pg1" || c.Type != "fake" || c.Path != "sources[0]" || c.File != "pipeline.yaml" || c.Line != 2 || c.Col != 5 {
		t.Errorf("connector: %+v", c)
	}
	cfg, err := decodeFake(t, p, 0)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if cfg.URL != "postgres://u:p@localhost/db" || cfg.Slot != "tributary" || cfg.Heartbeat != 10*time.Second ||
		cfg.MaxBatch != 1<<20 || cfg.Snapshot.Mode != "initial" || cfg.Snapshot.ChunkSize != 1000 || cfg.TopicPrefix() != "app" {
		t.Errorf("connector defaults: %+v", cfg)
	}
}

func TestFullConfig(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, `
log:
  brokers: [k1:9092, "k2:9092"]
  partitions: 6
  replication_factor: 3
  offsets_topic: my-offsets
  compression: lz4
  client_id: me
  tls:
    ca_file: `+ca+`
    server_name: kafka.local
  sasl:
    mechanism: scram-sha-512
    user: alice
    password: s3cret
registry:
  url: https://registry.example:8081
  basic_auth: {user: bob, password: pw}
worker:
  name: w-1
  group: g1
  http: 127.0.0.1:0
  max_in_flight_bytes: 128MiB
  log_level: debug
  log_format: json
  flush_interval: 5ms
sources:
  - name: a
    type: fake
    url: u
    topic_prefix: p
    slot: s1
    tables: [public.t1, "public.t2"]
    heartbeat: 1m30s
    max_batch: 10MB
    snapshot:
      mode: never
      chunk_size: 0x10
    extra:
      n: 3
      f: 1.5
      b: true
      s: text
      l: [1, two]
sinks:
  - name: b
    type: sqlite
    path: /tmp/x.db
`)
	l := p.Log
	if l.Embedded() || len(l.Brokers) != 2 || l.Brokers[1] != "k2:9092" || l.Partitions != 6 || l.ReplicationFactor != 3 ||
		l.OffsetsTopic != "my-offsets" || l.Compression != "lz4" ||
		l.ClientID != "me" || l.TLS == nil || l.TLS.CAFile != ca || l.TLS.ServerName != "kafka.local" ||
		l.SASL == nil || l.SASL.Mechanism != "scram-sha-512" || l.SASL.User != "alice" || string(l.SASL.Password) != "s3cret" {
		t.Errorf("log: %+v", l)
	}
	if p.Registry.Embedded() || p.Registry.URL != "https://registry.example:8081" || p.Registry.BasicAuth == nil ||
		p.Registry.BasicAuth.User != "bob" || string(p.Registry.BasicAuth.Password) != "pw" {
		t.Errorf("registry: %+v", p.Registry)
	}
	w := p.Worker
	if w.Name != "w-1" || w.Group != "g1" || w.HTTP != "127.0.0.1:0" || w.MaxInFlightBytes != 128<<20 ||
		w.LogLevel != "debug" || w.LogFormat != "json" || w.FlushInterval != 5*time.Millisecond || w.SlogLevel() != slog.LevelDebug {
		t.Errorf("worker: %+v", w)
	}
	if len(p.Sinks) != 1 || p.Sinks[0].Type != "sqlite" || p.Sinks[0].Path != "sinks[0]" {
		t.Errorf("sinks: %+v", p.Sinks)
	}
	cfg, err := decodeFake(t, p, 0)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if cfg.Slot != "s1" || len(cfg.Tables) != 2 || cfg.Tables[1] != "public.t2" || cfg.Heartbeat != 90*time.Second ||
		cfg.MaxBatch != 10_000_000 || cfg.Snapshot.Mode != "never" || cfg.Snapshot.ChunkSize != 16 {
		t.Errorf("connector: %+v", cfg)
	}
	want := map[string]any{"n": int64(3), "f": 1.5, "b": true, "s": "text", "l": []any{int64(1), "two"}}
	if fmt.Sprint(cfg.Extra) != fmt.Sprint(want) {
		t.Errorf("extra = %#v, want %#v", cfg.Extra, want)
	}
	tc, err := l.TLS.Config()
	if err == nil || tc != nil {
		t.Errorf("TLS.Config with a non-PEM CA file: got %v, %v; want an error", tc, err)
	}
}

func TestMalformedYAML(t *testing.T) {
	got := parseErr(t, "log:\n  listen: 127.0.0.1:9092\nsources: [a, b\n")
	wantErr(t, got, "pipeline.yaml:3:", "invalid YAML")
	var ce *config.Error
	_, err := config.Parse("pipeline.yaml", []byte("a: 1\n  b: 2\n"))
	if !errors.As(err, &ce) || ce.Line != 1 || ce.Col == 0 || !strings.Contains(ce.Msg, "invalid YAML") {
		t.Errorf("err = %v (%+v), want a positioned *config.Error on line 1", err, ce)
	}
}

func TestUnknownKeys(t *testing.T) {
	wantErr(t, parseErr(t, "log:\n  listen: 127.0.0.1:9092\nworkers:\n  name: x\n"),
		"pipeline.yaml:3:1: workers: unknown key (valid keys: log, registry, worker, sources, sinks)")
	wantErr(t, parseErr(t, "log:\n  partitions: 2\n  data-dir: x\n"), "pipeline.yaml:3:3: log.data-dir: unknown key", "data_dir")
	wantErr(t, parseErr(t, "registry:\n  basic_auth:\n    user: u\n    pass: x\n"), "pipeline.yaml:4:5: registry.basic_auth.pass: unknown key")
	wantErr(t, parseErr(t, "worker:\n  http_addr: x\n"), "pipeline.yaml:2:3: worker.http_addr: unknown key")

	p := mustParse(t, minimal+"    snapshot:\n      mode: never\n      chunksize: 5\n    tabels: [a]\n")
	_, err := decodeFake(t, p, 0)
	if err == nil {
		t.Fatal("Decode accepted unknown keys")
	}
	wantErr(t, err.Error(),
		"pipeline.yaml:8:7: sources[0].snapshot.chunksize: unknown key (valid keys: mode, chunk_size)",
		"pipeline.yaml:9:5: sources[0].tabels: unknown key (valid keys: url, slot, topic_prefix, tables, heartbeat, max_batch, snapshot, extra)")
	if n := len(config.Errors(err)); n != 2 {
		t.Errorf("got %d errors, want 2: %v", n, err)
	}
}

func TestMissingEnvVar(t *testing.T) {
	src := "log:\n  data_dir: /tmp/x\nsources:\n  - name: a\n    type: fake\n    url: postgres://${TRIB_TEST_UNSET_USER}@h/db\n    topic_prefix: ${TRIB_TEST_UNSET_PREFIX}\n"
	got := parseErr(t, src)
	wantErr(t, got,
		"pipeline.yaml:6:10: sources[0].url: environment variable TRIB_TEST_UNSET_USER is not set",
		"pipeline.yaml:7:19: sources[0].topic_prefix: environment variable TRIB_TEST_UNSET_PREFIX is not set")
}

func TestInterpolation(t *testing.T) {
	t.Setenv("TRIB_TEST_HOST", "db.local")
	t.Setenv("TRIB_TEST_EMPTY", "")
	t.Setenv("TRIB_TEST_PARTS", "4")
	t.Setenv("TRIB_TEST_BROKERS", "b1:9092, b2:9092")
	t.Setenv("TRIB_TEST_TRICKY", "a: b # not a comment")
	os.Unsetenv("TRIB_TEST_UNSET")
	p := mustParse(t, `log:
  brokers: ${TRIB_TEST_BROKERS}
  partitions: ${TRIB_TEST_PARTS}
  client_id: ${TRIB_TEST_UNSET:-fallback}
  offsets_topic: ${TRIB_TEST_EMPTY:-offs}
worker:
  name: w-${TRIB_TEST_UNSET:-1}
sources:
  - name: a
    type: fake
    url: "postgres://${TRIB_TEST_HOST}/db?x=$${NOT_A_VAR}&re=^a$"
    topic_prefix: ${TRIB_TEST_TRICKY}
`)
	if got := p.Log.Brokers; len(got) != 2 || got[0] != "b1:9092" || got[1] != "b2:9092" {
		t.Errorf("brokers = %q", got)
	}
	if p.Log.Partitions != 4 || p.Log.ClientID != "fallback" || p.Log.OffsetsTopic != "offs" || p.Worker.Name != "w-1" {
		t.Errorf("log/worker: %+v %+v", p.Log, p.Worker)
	}
	cfg, err := decodeFake(t, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "postgres://db.local/db?x=${NOT_A_VAR}&re=^a$" {
		t.Errorf("url = %q", cfg.URL)
	}
	// A value is data, never YAML: no injection through the environment.
	if cfg.TopicPrefix() != "a: b # not a comment" {
		t.Errorf("topic_prefix = %q", cfg.TopicPrefix())
	}

	wantErr(t, parseErr(t, "worker:\n  name: ${TRIB_TEST_HOST\n"), "pipeline.yaml:2:9: worker.name: unterminated")
	wantErr(t, parseErr(t, "worker:\n  name: ${TRIB_TEST_UNSET:-${TRIB_TEST_HOST}\n"), "pipeline.yaml:2:9: worker.name: unterminated")
	wantErr(t, parseErr(t, "worker:\n  name: ${1BAD}\n"), "pipeline.yaml:2:9: worker.name: bad reference ${1BAD}")
	// Comments are not interpolated: a commented-out line cannot break a config.
	mustParse(t, "# url: ${TRIB_TEST_UNSET}\nworker:\n  name: x # ${TRIB_TEST_UNSET}\n")
}

// Issue 11: ${A:-${B}/x} with A unset became the literal "${B/x}" (and a
// folder of that name was created). Defaults may hold references now,
// expanded only when the default is used.
func TestNestedDefaults(t *testing.T) {
	t.Setenv("TRIB_TEST_BASE", "/srv/trib")
	t.Setenv("TRIB_TEST_SET", "/explicit")
	os.Unsetenv("TRIB_TEST_UNSET")
	os.Unsetenv("TRIB_TEST_UNSET2")
	for src, want := range map[string]string{
		"${TRIB_TEST_UNSET:-${TRIB_TEST_BASE}/x}":                        "/srv/trib/x",
		"${TRIB_TEST_SET:-${TRIB_TEST_BASE}/x}":                          "/explicit",
		"${TRIB_TEST_UNSET:-${TRIB_TEST_UNSET2:-${TRIB_TEST_BASE}}/y}/z": "/srv/trib/y/z",
		"${TRIB_TEST_UNSET:-a$${b}c}":                                    "a${b}c",
		"${TRIB_TEST_SET:-${TRIB_TEST_UNSET}}":                           "/explicit", // an unused default is not expanded
	} {
		p := mustParse(t, "log:\n  data_dir: \""+src+"\"\n")
		if p.Log.DataDir != want {
			t.Errorf("%s = %q, want %q", src, p.Log.DataDir, want)
		}
	}
	// A used default with an unset variable is the usual error.
	wantErr(t, parseErr(t, "log:\n  data_dir: ${TRIB_TEST_UNSET:-${TRIB_TEST_UNSET2}/x}\n"),
		"pipeline.yaml:2:13: log.data_dir: in the default of ${TRIB_TEST_UNSET:-...}: environment variable TRIB_TEST_UNSET2 is not set")
	deep := strings.Repeat("${TRIB_TEST_UNSET:-", 40) + "x" + strings.Repeat("}", 40)
	wantErr(t, parseErr(t, "log:\n  data_dir: "+deep+"\n"), "pipeline.yaml:2:13: log.data_dir: ", "nested more than 16 deep")
}

func TestFileSecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "pw")
	src := "log:\n  brokers: [k:9092]\n  sasl:\n    mechanism: plain\n    user: u\n    password: ${file:" + abs + "}\n" +
		"registry:\n  url: http://r:8081\n  basic_auth:\n    user: u\n    password: ${file:pw}\n"
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Log.SASL.Password) != "hunter2" {
		t.Errorf("absolute file secret = %q", p.Log.SASL.Password)
	}
	if string(p.Registry.BasicAuth.Password) != "hunter2" {
		t.Errorf("relative file secret = %q", p.Registry.BasicAuth.Password)
	}
	// The path may hold references, nested defaults included.
	t.Setenv("TRIB_TEST_SECRETS", dir)
	os.Unsetenv("TRIB_TEST_UNSET")
	nested := strings.Replace(src, "${file:"+abs+"}", "${file:${TRIB_TEST_UNSET:-${TRIB_TEST_SECRETS}}/pw}", 1)
	if err := os.WriteFile(path, []byte(nested), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := config.Load(path); err != nil || string(p.Log.SASL.Password) != "hunter2" {
		t.Fatalf("file secret at a nested path: %v", err)
	}
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	// Secrets do not print.
	for _, s := range []string{fmt.Sprint(p.Log.SASL.Password), fmt.Sprintf("%+v", *p.Log.SASL), fmt.Sprintf("%#v", *p.Log.SASL)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret printed: %s", s)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "sasl", p.Log.SASL, "pw", p.Log.SASL.Password)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "sasl", p.Log.SASL, "pw", p.Log.SASL.Password)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("secret logged: %s", buf.String())
	}

	_, err = config.Load(filepath.Join(dir, "nope.yaml"))
	wantErr(t, fmt.Sprint(err), "nope.yaml: cannot read config")
	err = os.WriteFile(path, []byte("worker:\n  name: ${file:missing.txt}\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(path)
	wantErr(t, fmt.Sprint(err), "pipeline.yaml:2:9: worker.name: reading secret for ${file:missing.txt}", "no such file")
}

func TestByteSizesAndDurations(t *testing.T) {
	for in, want := range map[string]config.ByteSize{"65536": 65536, "512KiB": 512 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, "10MB": 10_000_000, "\"2 MiB\"": 2 << 20} {
		p := mustParse(t, "worker:\n  max_in_flight_bytes: "+in+"\n")
		if p.Worker.MaxInFlightBytes != want {
			t.Errorf("%s: got %d, want %d", in, p.Worker.MaxInFlightBytes, want)
		}
	}
	wantErr(t, parseErr(t, "worker:\n  max_in_flight_bytes: 64 potatoes\n"), "pipeline.yaml:2:3: worker.max_in_flight_bytes: invalid byte size \"64 potatoes\"")
	wantErr(t, parseErr(t, "worker:\n  max_in_flight_bytes: 1KiB\n"), "pipeline.yaml:2:3: worker.max_in_flight_bytes: must be at least 64KiB, got 1.0KiB")
	if s := config.ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %q", s)
	}

	for in, want := range map[string]time.Duration{"250ms": 250 * time.Millisecond, "1m": time.Minute, "1h2m3s": time.Hour + 2*time.Minute + 3*time.Second} {
		p := mustParse(t, "worker:\n  flush_interval: "+in+"\n")
		if p.Worker.FlushInterval != want {
			t.Errorf("%s: got %v", in, p.Worker.FlushInterval)
		}
	}
	wantErr(t, parseErr(t, "worker:\n  flush_interval: 100\n"), "pipeline.yaml:2:3: worker.flush_interval: duration \"100\" needs a unit")
	wantErr(t, parseErr(t, "worker:\n  flush_interval: soon\n"), "invalid duration \"soon\"")
	wantErr(t, parseErr(t, "worker:\n  flush_interval: -1s\n"), "worker.flush_interval: must be positive")

	var d config.Duration
	if err := d.UnmarshalText([]byte("1.5s")); err != nil || d.Std() != 1500*time.Millisecond || d.String() != "1.5s" {
		t.Errorf("Duration: %v %v", d, err)
	}
}

func TestDuplicateNames(t *testing.T) {
	got := parseErr(t, `sources:
  - name: a
    type: fake
  - name: b
    type: fake
sinks:
  - name: a
    type: sqlite
`)
	wantErr(t, got, `pipeline.yaml:7:5: sinks[0].name: name "a" is already used by sources[0] (line 2)`)
}

func TestConnectorNameAndType(t *testing.T) {
	got := parseErr(t, "sources:\n  - type: fake\n  - name: bad name!\n    type: fake\n  - name: x\n  - just-a-string\n")
	wantErr(t, got,
		"pipeline.yaml:2:5: sources[0].name: required key is missing",
		`pipeline.yaml:3:5: sources[1].name: "bad name!" must match [a-zA-Z0-9_-]+`,
		"pipeline.yaml:5:5: sources[2].type: required key is missing",
		"pipeline.yaml:6:5: sources[3]: expected a mapping with name, type")
	wantErr(t, parseErr(t, "sources:\n  name: a\n"), "pipeline.yaml:1:1: sources: expected a list, got a mapping")
}

func TestValidateFieldErrorLines(t *testing.T) {
	p := mustParse(t, `worker:
  name: w
sources:
  - name: ok
    type: fake
    url: u
    topic_prefix: p
  - name: pg
    type: fake
    url: u
    slot: Bad-Slot
    tables:
      - public.a
      - public b
    snapshot:
      chunk_size: -1
`)
	if _, err := decodeFake(t, p, 0); err != nil {
		t.Fatalf("first source: %v", err)
	}
	_, err := decodeFake(t, p, 1)
	if err == nil {
		t.Fatal("no error")
	}
	errs := config.Errors(err)
	got := make([]string, len(errs))
	for i, e := range errs {
		got[i] = e.Error()
	}
	want := []string{
		// topic_prefix is absent: reported at the connector's line.
		"pipeline.yaml:8:5: sources[1].topic_prefix: is required",
		"pipeline.yaml:11:5: sources[1].slot: must match [a-z0-9_]+",
		"pipeline.yaml:14:9: sources[1].tables[1]: must not contain spaces",
		"pipeline.yaml:16:7: sources[1].snapshot.chunk_size: must be positive",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if errs[1].Line != 11 || errs[1].Col != 5 || errs[1].Path != "sources[1].slot" {
		t.Errorf("structured error: %+v", errs[1])
	}
}

func TestValidateOtherErrorShapes(t *testing.T) {
	p := mustParse(t, minimal)
	c := p.Sources[0]
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"plain", errors.New("url and dsn are exclusive"), []string{"pipeline.yaml:2:5: sources[0]: url and dsn are exclusive"}},
		{"wrapped", fmt.Errorf("checking: %w", &source.FieldError{Key: "url", Msg: "bad scheme"}), []string{"pipeline.yaml:4:5: sources[0].url: bad scheme"}},
		{"wrapped join", fmt.Errorf("x: %w", errors.Join(&source.FieldError{Key: "url", Msg: "m1"}, &source.FieldError{Key: "topic_prefix", Msg: "m2"})),
			[]string{"pipeline.yaml:4:5: sources[0].url: m1", "pipeline.yaml:5:5: sources[0].topic_prefix: m2"}},
		{"dotted index", &source.FieldError{Key: "snapshot.mode", Msg: "absent nested"}, []string{"pipeline.yaml:2:5: sources[0].snapshot.mode: absent nested"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &fakeConfig{validateErr: tc.err}
			err := c.Decode(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			wantErr(t, err.Error(), tc.want...)
		})
	}
	if err := c.Decode(fakeConfig{}); err == nil || !strings.Contains(err.Error(), "pointers to structs") {
		t.Errorf("Decode(non-pointer) = %v", err)
	}
}

func TestTypeErrors(t *testing.T) {
	wantErr(t, parseErr(t, "log:\n  partitions: many\n"), `pipeline.yaml:2:3: log.partitions: expected an integer, got "many"`)
	wantErr(t, parseErr(t, "log:\n  partitions: 99999999999999999999\n"), "log.partitions: 99999999999999999999 is out of range for int")
	wantErr(t, parseErr(t, "log:\n  sync_writes: maybe\n"), `log.sync_writes: expected true or false, got "maybe"`)
	wantErr(t, parseErr(t, "log:\n  brokers: {a: 1}\n"), "pipeline.yaml:2:3: log.brokers: expected a list, got a mapping")
	wantErr(t, parseErr(t, "log: [1, 2]\n"), "pipeline.yaml:1:1: log: expected a mapping, got a list")
	wantErr(t, parseErr(t, "log:\n  data_dir: [a]\n"), "log.data_dir: expected a string, got a list")
	wantErr(t, parseErr(t, "log:\n  compression: brotli\n"), `pipeline.yaml:2:3: log.compression: "brotli" is not one of zstd, lz4, snappy, gzip, none`)
	wantErr(t, parseErr(t, "worker:\n  log_format: xml\n"), `worker.log_format: "xml" is not one of text, json`)
	wantErr(t, parseErr(t, "- a\n- b\n"), "pipeline.yaml:1:1: expected a mapping, got a list")
	wantErr(t, parseErr(t, ""), "pipeline.yaml: config is empty")
	wantErr(t, parseErr(t, "# nothing here\n"), "pipeline.yaml: config is empty")
	wantErr(t, parseErr(t, "worker:\n  name: a\n---\nworker:\n  name: b\n"), "pipeline.yaml:4:", "one YAML document")
}

func TestSectionValidation(t *testing.T) {
	wantErr(t, parseErr(t, "log:\n  listen: 0.0.0.0:9092\n"), `pipeline.yaml:2:3: log.listen: "0.0.0.0:9092" is not a loopback address`)
	wantErr(t, parseErr(t, "log:\n  sasl:\n    mechanism: plain\n    user: u\n    password: p\n"), "pipeline.yaml:2:3: log.sasl: applies to log.brokers only")
	wantErr(t, parseErr(t, "log:\n  brokers: [k:9092]\n  sasl:\n    mechanism: md5\n    user: u\n"),
		`pipeline.yaml:4:5: log.sasl.mechanism: "md5" is not one of plain, scram-sha-256, scram-sha-512`,
		"pipeline.yaml:3:3: log.sasl.password: required key is missing")
	wantErr(t, parseErr(t, "log:\n  brokers: [k]\n  partitions: 0\n  replication_factor: 0\n  offsets_topic: a/b\n"),
		`pipeline.yaml:2:13: log.brokers[0]: "k" is not host:port`,
		"pipeline.yaml:3:3: log.partitions: must be at least 1, got 0",
		"pipeline.yaml:4:3: log.replication_factor: must be -1 (broker default) or between 1 and 32767, got 0",
		`pipeline.yaml:5:3: log.offsets_topic: "a/b" is not a valid topic name`)
	wantErr(t, parseErr(t, "registry:\n  url: ftp://user:topsecret@r\n"), `pipeline.yaml:2:3: registry.url: "ftp://user:xxxxx@r" must start with http:// or https://`)
	wantErr(t, parseErr(t, "registry:\n  basic_auth: {user: u}\n"), "registry.basic_auth: applies to registry.url only")
	wantErr(t, parseErr(t, "worker:\n  http: localhost\n"), `pipeline.yaml:2:3: worker.http: "localhost" is not host:port`)
	wantErr(t, parseErr(t, "log:\n  brokers: [k:1]\n  tls:\n    cert_file: /nonexistent/c.pem\n"),
		"pipeline.yaml:4:5: log.tls.cert_file: cert_file and key_file must be set together",
		"log.tls.cert_file: stat /nonexistent/c.pem")
	// The embedded registry on a cluster log is allowed: it persists in that cluster's _schemas topic.
	mustParse(t, "log:\n  brokers: [k:9092]\n  tls: {}\n")
}

func TestAnchorsAndMerge(t *testing.T) {
	p := mustParse(t, `x-pg: &pg
  type: fake
  url: postgres://h/db
  topic_prefix: app
x-tables: &tables [public.a, public.b]
sources:
  - <<: *pg
    name: a
    tables: *tables
  - <<: *pg
    name: b
    topic_prefix: other
`)
	a, err := decodeFake(t, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeFake(t, p, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sources[0].Type != "fake" || a.URL != "postgres://h/db" || a.TopicPrefix() != "app" || len(a.Tables) != 2 || a.Tables[1] != "public.b" {
		t.Errorf("a = %+v", a)
	}
	if b.TopicPrefix() != "other" || b.URL != "postgres://h/db" {
		t.Errorf("b = %+v", b)
	}
	wantErr(t, parseErr(t, "y-pg: 1\n"), "pipeline.yaml:1:1: y-pg: unknown key")
}

func TestMultipleErrorsSorted(t *testing.T) {
	got := parseErr(t, "worker:\n  log_level: loud\nlog:\n  partitions: x\n  nope: 1\n")
	lines := strings.Split(got, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "pipeline.yaml:2:") || !strings.HasPrefix(lines[1], "pipeline.yaml:4:") || !strings.HasPrefix(lines[2], "pipeline.yaml:5:") {
		t.Errorf("want 3 errors in file order, got:\n%s", got)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://user:hunter2@db:5432/app?sslmode=disable": "postgres://user:xxxxx@db:5432/app?sslmode=disable",
		"postgres://user@db/app":                              "postgres://user@db/app",
		"postgres://db/app?user=u&password=hunter2":           "postgres://db/app?user=u&password=xxxxx",
		"http://u:hunter2@registry:8081":                      "http://u:xxxxx@registry:8081",
		"root:hunter2@tcp(127.0.0.1:3306)/db":                 "root:xxxxx@tcp(127.0.0.1:3306)/db",
		"root:hunter2@/db":                                    "root:xxxxx@/db",
		"host=db user=u password=hunter2 dbname=app":          "host=db user=u password=xxxxx dbname=app",
		"host=db password='hun ter2' dbname=app":              "host=db password=xxxxx dbname=app",
		"postgres://u:p%40ss@db/app":                          "postgres://u:xxxxx@db/app",
		"plain-string":                                        "plain-string",
	} {
		got := config.Redact(in)
		if got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("Redact(%q) leaks the password", in)
		}
	}
}

func TestDocs(t *testing.T) {
	var b bytes.Buffer
	if err := config.Docs(&b); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, want := range []string{
		"## `log`", "## `registry`", "## `worker`", "## `sources` and `sinks`",
		"| `log.brokers` | list of strings |",
		"| `log.data_dir` | string | `./data/log` |",
		"| `log.compaction_interval` | duration | `10m` |",
		"| `log.compression` | string | `snappy` | Compression of produced batches.",
		"| `log.sasl` | object, optional |",
		"| `log.sasl.password` | string (secret) |  | Required.",
		"| `worker.max_in_flight_bytes` | byte size | `32MiB` |",
		"| `registry.basic_auth.user` |",
		"`${VAR:-default}`",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs lack %q", want)
		}
	}
	b.Reset()
	if err := config.DocsFor("fake source", fakeDriver{}.NewConfig(), &b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## fake source",
		"| `url` | string |  | Required. Connection URL. |",
		"| `snapshot.mode` | string | `initial` | Snapshot mode. One of: `initial`, `never`. |",
		"| `heartbeat` | duration | `10s` |",
		"| `tables` | list of strings |",
		"| `extra` | map of values |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("DocsFor lacks %q in:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := config.DocsFor("maps", &mapConfig{}, &b); err != nil || !strings.Contains(b.String(), "| `key_columns` | map of lists of strings |") {
		t.Errorf("DocsFor(mapConfig) = %v:\n%s", err, b.String())
	}
	b.Reset()
	type escapes struct {
		A string "yaml:\"a\" desc:\"goes to <prefix>.<table>, not `a|b <c>` | x\""
	}
	if err := config.DocsFor("esc", &escapes{}, &b); err != nil || !strings.Contains(b.String(), "| goes to \\<prefix\\>.\\<table\\>, not `a\\|b <c>` \\| x |") {
		t.Errorf("escaping:\n%s", b.String())
	}
	if err := config.DocsFor("bad", 3, &b); err == nil {
		t.Error("DocsFor(int) did not fail")
	}
}

func TestRequiredKeys(t *testing.T) {
	p := mustParse(t, "sources:\n  - name: a\n    type: fake\n    topic_prefix: p\n  - name: b\n    type: fake\n    topic_prefix: p\n    url:\n")
	_, err := decodeFake(t, p, 0)
	wantErr(t, fmt.Sprint(err), "pipeline.yaml:2:5: sources[0].url: required key is missing")
	_, err = decodeFake(t, p, 1)
	wantErr(t, fmt.Sprint(err), "pipeline.yaml:8:5: sources[1].url: required key has no value")
	wantErr(t, parseErr(t, "sources:\n  - name: a\n    type:\n"), "pipeline.yaml:2:5: sources[0].type: required key is missing")
}

// mapConfig has a map whose keys contain dots, as postgres' key_columns does.
type mapConfig struct {
	KeyColumns map[string][]string `yaml:"key_columns"`
}

func (c *mapConfig) Validate() error {
	var errs []error
	for k, cols := range c.KeyColumns {
		if len(cols) == 0 {
			errs = append(errs, &source.FieldError{Key: "key_columns." + k, Msg: "needs at least one column"})
		}
		for i, col := range cols {
			if col == "bad" {
				errs = append(errs, &source.FieldError{Key: fmt.Sprintf("key_columns.%s[%d]", k, i), Msg: "bad column"})
			}
		}
	}
	return errors.Join(errs...)
}

func TestFieldErrorDottedMapKeys(t *testing.T) {
	p := mustParse(t, "sources:\n  - name: a\n    type: fake\n    key_columns:\n      public.orders: []\n      public.items: [id, bad]\n")
	err := p.Sources[0].Decode(&mapConfig{})
	wantErr(t, fmt.Sprint(err),
		"pipeline.yaml:5:7: sources[0].key_columns.public.orders: needs at least one column",
		"pipeline.yaml:6:26: sources[0].key_columns.public.items[1]: bad column")
}

func TestEmptyListItem(t *testing.T) {
	wantErr(t, parseErr(t, "sources:\n  -\n"), "pipeline.yaml:", "sources[0]: empty list item")
	wantErr(t, parseErr(t, "log:\n  brokers:\n    - a:1\n    -\n"), "log.brokers[1]: empty list item")
}

// FieldError has the shape of sink.FieldError: another package's field error
// type that Decode must map to a line just like source.FieldError.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// runtimeSpec and targetConfig share one sinks entry, as a sink's runtime
// settings and its target's keys do.
type runtimeSpec struct {
	Name       string   `yaml:"name"`
	Topics     []string `yaml:"topics"`
	InsertMode string   `yaml:"insert.mode" default:"upsert"`
	BatchSize  int      `yaml:"batch_size" default:"5000"`
}

func (s *runtimeSpec) Validate() error {
	if s.InsertMode != "upsert" && s.InsertMode != "insert" {
		return &FieldError{Key: "insert.mode", Msg: "want upsert or insert"}
	}
	return nil
}

type targetConfig struct {
	Path string `yaml:"path" required:"true"`
}

func (c *targetConfig) Validate() error {
	if !strings.HasSuffix(c.Path, ".db") {
		return errors.Join(&FieldError{Key: "path", Msg: "must end in .db"})
	}
	return nil
}

func TestDecodeSplitBetweenStructs(t *testing.T) {
	p := mustParse(t, `sinks:
  - name: copy
    type: sqlite
    topics: [a, b]
    path: /tmp/copy.db
    batch_size: 10
`)
	var spec runtimeSpec
	var tc targetConfig
	if err := p.Sinks[0].Decode(&spec, &tc); err != nil {
		t.Fatal(err)
	}
	if spec.Name != "copy" || len(spec.Topics) != 2 || spec.InsertMode != "upsert" || spec.BatchSize != 10 || tc.Path != "/tmp/copy.db" {
		t.Errorf("spec %+v target %+v", spec, tc)
	}

	p = mustParse(t, `sinks:
  - name: copy
    type: sqlite
    topics: [a]
    insert.mode: merge
    path: /tmp/copy.sqlite
    bogus: 1
`)
	err := p.Sinks[0].Decode(&runtimeSpec{}, &targetConfig{})
	wantErr(t, fmt.Sprint(err),
		"pipeline.yaml:5:5: sinks[0].insert.mode: want upsert or insert",
		"pipeline.yaml:6:5: sinks[0].path: must end in .db",
		"pipeline.yaml:7:5: sinks[0].bogus: unknown key (valid keys: name, topics, insert.mode, batch_size, path)")
	if n := len(config.Errors(err)); n != 3 {
		t.Errorf("%d errors, want 3: %v", n, err)
	}
}

// The embedded log's keys are parsed in embedded mode, and refused next to
// log.brokers with their line (they would be silently ignored).
func TestEmbeddedOnlyKeys(t *testing.T) {
	l := mustParse(t, "log:\n  data_dir: /tmp/x\n  listen: 127.0.0.1:19999\n  compaction_interval: 30s\n  sync_writes: false\n").Log
	if !l.Embedded() || l.DataDir != "/tmp/x" || l.Listen != "127.0.0.1:19999" || l.CompactionInterval != 30*time.Second || l.SyncWrites {
		t.Errorf("log: %+v", l)
	}
	got := parseErr(t, `log:
  brokers: [k:9092]
  data_dir: /tmp/x
  listen: 127.0.0.1:19999
  compaction_interval: 30s
  sync_writes: false
registry:
  url: http://r:8081
`)
	wantErr(t, got,
		"pipeline.yaml:3:3: log.data_dir: applies to the embedded log only, and log.brokers selects a Kafka cluster",
		"pipeline.yaml:4:3: log.listen: applies to the embedded log only",
		"pipeline.yaml:5:3: log.compaction_interval: applies to the embedded log only",
		"pipeline.yaml:6:3: log.sync_writes: applies to the embedded log only")
}

func TestWorkerGroupNeedsCluster(t *testing.T) {
	got := parseErr(t, `log:
  data_dir: /tmp/x
worker:
  name: w
  group: team
sources:
  - name: a
    type: fake
`)
	wantErr(t, got, `pipeline.yaml:5:3: worker.group: needs a Kafka cluster (log.brokers)`)

	got = parseErr(t, "worker:\n  exactly_once: true\n")
	wantErr(t, got, `pipeline.yaml:2:3: worker.exactly_once: needs a Kafka cluster (log.brokers)`)

	got = parseErr(t, `log:
  brokers: [k:9092]
registry:
  url: http://r:8081
worker:
  group: "bad group"
  group_session_timeout: 10ms
`)
	wantErr(t, got, `pipeline.yaml:6:3: worker.group: "bad group" must match`, `pipeline.yaml:7:3: worker.group_session_timeout: must be at least 1s`)

	p, err := config.Parse("pipeline.yaml", []byte("log:\n  brokers: [k:9092]\nregistry:\n  url: http://r:8081\nworker:\n  group: team\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Worker.Group != "team" || p.Worker.GroupSessionTimeout != 10*time.Second {
		t.Fatalf("group %q, session timeout %v", p.Worker.Group, p.Worker.GroupSessionTimeout)
	}
}

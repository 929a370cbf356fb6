package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

const (
	ordersV1 = `{"type":"record","name":"Value","namespace":"shop.public.orders","fields":[
		{"name":"id","type":"long"},
		{"name":"total","type":"string"}],"connect.name":"shop.public.orders.Value"}`
	// v1 plus an optional column: BACKWARD compatible.
	ordersV2 = `{"type":"record","name":"Value","namespace":"shop.public.orders","fields":[
		{"name":"id","type":"long"},
		{"name":"total","type":"string"},
		{"name":"note","type":["null","string"],"default":null}],"connect.name":"shop.public.orders.Value"}`
	// v2 plus a required column: new readers cannot read old data.
	ordersRequired = `{"type":"record","name":"Value","namespace":"shop.public.orders","fields":[
		{"name":"id","type":"long"},
		{"name":"total","type":"string"},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"currency","type":"string"}],"connect.name":"shop.public.orders.Value"}`
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newKafkaClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

type harness struct {
	reg  *Registry
	sr   *sr.Client
	base string
	stop context.CancelFunc
}

// start runs a registry on its own kafka client and HTTP port, as a worker would.
func start(t *testing.T, c *kfake.Cluster, opts ...Option) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := New(ctx, newKafkaClient(t, c), append([]Option{WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	addr, err := reg.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("Serve: %v", err)
	}
	h := &harness{reg: reg, base: "http://" + addr, stop: cancel}
	h.sr, err = sr.NewClient(sr.URLs(h.base))
	if err != nil {
		t.Fatalf("sr client: %v", err)
	}
	t.Cleanup(func() { cancel(); reg.Close() })
	return h
}

func avroSchema(text string) sr.Schema { return sr.Schema{Schema: text, Type: sr.TypeAvro} }

// srCode extracts the Confluent error_code from an sr client error.
func srCode(t *testing.T, err error) int {
	t.Helper()
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want a registry response error, got %v", err)
	}
	return re.ErrorCode
}

// do sends a raw request and decodes the JSON answer.
func (h *harness) do(t *testing.T, method, path, contentType, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func TestRegisterLookupVersionsAndIDs(t *testing.T) {
	ctx := context.Background()
	h := start(t, newCluster(t))

	ss, err := h.sr.CreateSchema(ctx, "shop.public.orders-value", avroSchema(ordersV1))
	if err != nil {
		t.Fatalf("register v1: %v", err)
	}
	if ss.Version != 1 || ss.ID < 1 || ss.Subject != "shop.public.orders-value" {
		t.Fatalf("register v1: got %+v", ss)
	}
	id1 := ss.ID

	// The same schema with other whitespace is the same schema: same id, no new version.
	reformatted := strings.Join(strings.Fields(ordersV1), " ")
	again, err := h.sr.RegisterSchema(ctx, "shop.public.orders-value", avroSchema(reformatted), -1, -1)
	if err != nil || again != id1 {
		t.Fatalf("re-register v1: id %d err %v, want id %d", again, err, id1)
	}
	versions, err := h.sr.SubjectVersions(ctx, "shop.public.orders-value")
	if err != nil || !slices.Equal(versions, []int{1}) {
		t.Fatalf("versions after re-register: %v %v", versions, err)
	}

	// The same schema under another subject reuses the id, as Confluent does.
	other, err := h.sr.CreateSchema(ctx, "mirror.orders-value", avroSchema(ordersV1))
	if err != nil || other.ID != id1 || other.Version != 1 {
		t.Fatalf("register under a second subject: %+v %v, want id %d version 1", other, err, id1)
	}

	ss2, err := h.sr.CreateSchema(ctx, "shop.public.orders-value", avroSchema(ordersV2))
	if err != nil {
		t.Fatalf("register v2: %v", err)
	}
	if ss2.Version != 2 || ss2.ID == id1 {
		t.Fatalf("register v2: got %+v, want version 2 and an id other than %d", ss2, id1)
	}

	subjects, err := h.sr.Subjects(ctx)
	if err != nil || !slices.Equal(subjects, []string{"mirror.orders-value", "shop.public.orders-value"}) {
		t.Fatalf("subjects: %v %v", subjects, err)
	}
	versions, err = h.sr.SubjectVersions(ctx, "shop.public.orders-value")
	if err != nil || !slices.Equal(versions, []int{1, 2}) {
		t.Fatalf("versions: %v %v", versions, err)
	}
	latest, err := h.sr.SchemaByVersion(ctx, "shop.public.orders-value", -1)
	if err != nil || latest.Version != 2 || latest.ID != ss2.ID || latest.Schema.Schema != ordersV2 {
		t.Fatalf("latest: %+v %v", latest, err)
	}
	first, err := h.sr.SchemaByVersion(ctx, "shop.public.orders-value", 1)
	if err != nil || first.ID != id1 || first.Schema.Schema != ordersV1 {
		t.Fatalf("version 1: %+v %v", first, err)
	}
	text, err := h.sr.SchemaTextByVersion(ctx, "shop.public.orders-value", 2)
	if err != nil || text != ordersV2 {
		t.Fatalf("version 2 text: %q %v", text, err)
	}

	byID, err := h.sr.SchemaByID(ctx, id1)
	if err != nil || byID.Schema != ordersV1 || byID.Type != sr.TypeAvro {
		t.Fatalf("by id: %+v %v", byID, err)
	}
	if got, err := h.reg.SchemaByID(ss2.ID); err != nil || got != ordersV2 {
		t.Fatalf("Go API by id: %q %v", got, err)
	}
	usages, err := h.sr.SchemaVersionsByID(ctx, id1)
	want := []sr.SubjectVersion{{Subject: "mirror.orders-value", Version: 1}, {Subject: "shop.public.orders-value", Version: 1}}
	if err != nil || !slices.Equal(usages, want) {
		t.Fatalf("versions by id: %+v %v, want %+v", usages, err, want)
	}
	all, err := h.sr.AllSchemas(ctx)
	if err != nil || len(all) != 3 || all[0].Subject != "mirror.orders-value" || all[2].Version != 2 || all[2].ID != ss2.ID {
		t.Fatalf("all schemas: %+v %v", all, err)
	}
	if refs, err := h.sr.SchemaReferences(ctx, "shop.public.orders-value", 1); err != nil || len(refs) != 0 {
		t.Fatalf("referenced by: %+v %v", refs, err)
	}
	if pre, err := h.sr.Subjects(sr.WithParams(ctx, sr.SubjectPrefix("shop."))); err != nil || !slices.Equal(pre, []string{"shop.public.orders-value"}) {
		t.Fatalf("subjects by prefix: %v %v", pre, err)
	}
	subs, err := h.sr.SubjectsByID(ctx, id1)
	if err != nil || !slices.Equal(subs, []string{"mirror.orders-value", "shop.public.orders-value"}) {
		t.Fatalf("subjects by id: %v %v", subs, err)
	}

	found, err := h.sr.LookupSchema(ctx, "shop.public.orders-value", avroSchema(ordersV1))
	if err != nil || found.ID != id1 || found.Version != 1 || found.Subject != "shop.public.orders-value" {
		t.Fatalf("lookup v1: %+v %v", found, err)
	}
	_, err = h.sr.LookupSchema(ctx, "shop.public.orders-value", avroSchema(ordersRequired))
	if code := srCode(t, err); code != CodeSchemaNotFound {
		t.Fatalf("lookup of an unregistered schema: code %d, want %d (%v)", code, CodeSchemaNotFound, err)
	}
	_, err = h.sr.LookupSchema(ctx, "nope-value", avroSchema(ordersV1))
	if code := srCode(t, err); code != CodeSubjectNotFound {
		t.Fatalf("lookup in an unknown subject: code %d, want %d", code, CodeSubjectNotFound)
	}

	// The Go API shares the HTTP path's rules.
	id, err := h.reg.Register(ctx, "shop.public.orders-value", ordersV2)
	if err != nil || id != ss2.ID {
		t.Fatalf("Go API register of v2: %d %v, want %d", id, err, ss2.ID)
	}
}

func TestCompatibilityRules(t *testing.T) {
	ctx := context.Background()
	h := start(t, newCluster(t))
	const subject = "shop.public.orders-value"

	if _, err := h.sr.CreateSchema(ctx, subject, avroSchema(ordersV1)); err != nil {
		t.Fatalf("register v1: %v", err)
	}

	// With nothing registered any schema is compatible.
	res, err := h.sr.CheckCompatibility(ctx, "empty-value", -1, avroSchema(ordersRequired))
	if err != nil || !res.Is {
		t.Fatalf("check against an empty subject: %+v %v", res, err)
	}

	// Optional field first, required one second: with a shared
	// SchemaCompatibility the first verdict would be reused for the second,
	// because both candidates have the same canonical form.
	res, err = h.sr.CheckCompatibility(ctx, subject, -1, avroSchema(ordersV2))
	if err != nil || !res.Is {
		t.Fatalf("optional field with default null: %+v %v, want compatible", res, err)
	}
	noteRequired := strings.Replace(ordersV2, `["null","string"],"default":null`, `"string"`, 1)
	vctx := sr.WithParams(ctx, sr.Verbose)
	res, err = h.sr.CheckCompatibility(vctx, subject, -1, avroSchema(noteRequired))
	if err != nil || res.Is {
		t.Fatalf("required field without default: %+v %v, want incompatible", res, err)
	}
	if len(res.Messages) == 0 || !strings.Contains(strings.Join(res.Messages, " "), "note") {
		t.Fatalf("verbose messages should name the field: %v", res.Messages)
	}

	if _, err := h.sr.CreateSchema(ctx, subject, avroSchema(ordersV2)); err != nil {
		t.Fatalf("register v2 (optional field): %v", err)
	}

	_, err = h.sr.RegisterSchema(ctx, subject, avroSchema(ordersRequired), -1, -1)
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict || re.ErrorCode != CodeIncompatibleSchema {
		t.Fatalf("register a required field under BACKWARD: %v, want HTTP 409", err)
	}
	if !strings.Contains(re.Message, subject) || !strings.Contains(re.Message, "currency") {
		t.Fatalf("409 message should name the subject and the field: %q", re.Message)
	}
	if v, _ := h.sr.SubjectVersions(ctx, subject); !slices.Equal(v, []int{1, 2}) {
		t.Fatalf("a rejected schema must not add a version: %v", v)
	}

	// Against version 1 explicitly, and against all versions.
	res, err = h.sr.CheckCompatibility(ctx, subject, 1, avroSchema(ordersV2))
	if err != nil || !res.Is {
		t.Fatalf("v2 against version 1: %+v %v", res, err)
	}
	res, err = h.sr.CheckCompatibility(ctx, subject, -2, avroSchema(ordersRequired))
	if err != nil || res.Is {
		t.Fatalf("required field against all versions: %+v %v", res, err)
	}
	_, err = h.sr.CheckCompatibility(ctx, subject, 7, avroSchema(ordersV2))
	if code := srCode(t, err); code != CodeVersionNotFound {
		t.Fatalf("check against a missing version: code %d", code)
	}

	// NONE lets anything through.
	set := h.sr.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, subject)
	if set[0].Err != nil || set[0].Level != sr.CompatNone {
		t.Fatalf("set NONE: %+v", set[0])
	}
	ss, err := h.sr.CreateSchema(ctx, subject, avroSchema(ordersRequired))
	if err != nil || ss.Version != 3 {
		t.Fatalf("register a required field under NONE: %+v %v", ss, err)
	}
}

func TestCompatibilityLevels(t *testing.T) {
	rec := func(fields string) string {
		return `{"type":"record","name":"R","fields":[` + fields + `]}`
	}
	a := `{"name":"a","type":"int"}`
	bDefault := `{"name":"b","type":"string","default":"x"}`
	bRequired := `{"name":"b","type":"string"}`
	v1 := rec(a)
	v2 := rec(a + "," + bDefault)
	v3 := rec(a + "," + bRequired) // reads v2 data, not v1 data

	history := []compatTarget{{version: 1, id: 1, text: v1}, {version: 2, id: 2, text: v2}}
	tests := []struct {
		level      CompatibilityLevel
		candidate  string
		against    []compatTarget
		compatible bool
	}{
		{CompatBackward, v2, history[:1], true},
		{CompatBackward, v3, history[:1], false},
		{CompatBackward, v3, history, true}, // only the latest counts
		{CompatBackwardTransitive, v3, history, false},
		{CompatForward, v1, history[1:], true},              // v2 reads v1 data: b has a default
		{CompatForward, rec(bRequired), history[:1], false}, // v1 cannot read data without a
		{CompatFull, v2, history[:1], true},                 // both ways
		{CompatFull, v3, history[1:], true},                 // b is in both, so both ways work
		{CompatFull, v3, history[:1], false},                // v3 cannot read v1 data: b has no default
		{CompatFull, rec(bRequired), history[:1], false},    // neither way: a and b have no default
		{CompatFullTransitive, v2, []compatTarget{history[0]}, true},
		{CompatNone, rec(`{"name":"z","type":"bytes"}`), history, true},
		{CompatForwardTransitive, rec(a + `,{"name":"c","type":"long"}`), history, true},
		{CompatBackward, rec(`{"name":"a","type":"string"}`), history[:1], false}, // int -> string is no promotion
		{CompatBackward, rec(`{"name":"a","type":"long"}`), history[:1], true},    // int -> long is
	}
	for i, tc := range tests {
		cand, err := parseAvro(tc.candidate)
		if err != nil {
			t.Fatalf("case %d: parse: %v", i, err)
		}
		msgs := checkCompatibility(tc.level, cand, tc.against)
		if got := len(msgs) == 0; got != tc.compatible {
			t.Errorf("case %d %s: compatible=%v, want %v (%v)", i, tc.level, got, tc.compatible, msgs)
		}
	}
	for _, s := range []string{"none", "Backward", "FULL_TRANSITIVE"} {
		if _, err := ParseCompatibilityLevel(s); err != nil {
			t.Errorf("ParseCompatibilityLevel(%q): %v", s, err)
		}
	}
	if _, err := ParseCompatibilityLevel("SIDEWAYS"); err == nil {
		t.Error("ParseCompatibilityLevel accepted SIDEWAYS")
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	h := start(t, newCluster(t))

	got := h.sr.Compatibility(ctx)
	if got[0].Err != nil || got[0].Level != sr.CompatBackward {
		t.Fatalf("default global level: %+v", got[0])
	}
	set := h.sr.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull})
	if set[0].Err != nil || set[0].Level != sr.CompatFull {
		t.Fatalf("set global FULL: %+v", set[0])
	}
	if got := h.sr.Compatibility(ctx); got[0].Level != sr.CompatFull {
		t.Fatalf("global after set: %+v", got[0])
	}

	got = h.sr.Compatibility(ctx, "orders-value")
	if code := srCode(t, got[0].Err); code != CodeSubjectConfigNotFound {
		t.Fatalf("subject without its own level: code %d, want %d", code, CodeSubjectConfigNotFound)
	}
	got = h.sr.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "orders-value")
	if got[0].Err != nil || got[0].Level != sr.CompatFull {
		t.Fatalf("subject level defaulting to global: %+v", got[0])
	}
	set = h.sr.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForwardTransitive}, "orders-value")
	if set[0].Err != nil {
		t.Fatalf("set subject level: %v", set[0].Err)
	}
	if got := h.sr.Compatibility(ctx, "orders-value"); got[0].Err != nil || got[0].Level != sr.CompatForwardTransitive {
		t.Fatalf("subject level: %+v", got[0])
	}
	if got := h.sr.Compatibility(ctx); got[0].Level != sr.CompatFull {
		t.Fatalf("a subject level must not change the global one: %+v", got[0])
	}

	// The subject's level is the one applied: under FORWARD_TRANSITIVE a new
	// schema may not drop a field that readers of version 1 need.
	if _, err := h.sr.CreateSchema(ctx, "orders-value", avroSchema(ordersV1)); err != nil {
		t.Fatal(err)
	}
	dropTotal := `{"type":"record","name":"Value","namespace":"shop.public.orders","fields":[{"name":"id","type":"long"}],"connect.name":"shop.public.orders.Value"}`
	_, err := h.sr.CreateSchema(ctx, "orders-value", avroSchema(dropTotal))
	if code := srCode(t, err); code != CodeIncompatibleSchema {
		t.Fatalf("dropping a field old readers need, under FORWARD_TRANSITIVE: code %d", code)
	}

	code, body, raw := h.do(t, http.MethodPut, "/config", contentTypeV1, `{"compatibility":"SIDEWAYS"}`)
	if code != http.StatusUnprocessableEntity || body["error_code"] != float64(CodeInvalidCompatibility) {
		t.Fatalf("invalid level: %d %s", code, raw)
	}

	reset := h.sr.ResetCompatibility(ctx, "orders-value")
	if reset[0].Err != nil {
		t.Fatalf("reset subject level: %v", reset[0].Err)
	}
	if got := h.sr.Compatibility(ctx, "orders-value"); got[0].Err == nil {
		t.Fatalf("subject level after reset: %+v, want 40408", got[0])
	}
	code, body, raw = h.do(t, http.MethodDelete, "/config", "", "")
	if code != http.StatusOK || body["compatibilityLevel"] != "FULL" {
		t.Fatalf("delete global config: %d %s", code, raw)
	}
	if got := h.sr.Compatibility(ctx); got[0].Level != sr.CompatBackward {
		t.Fatalf("global after delete: %+v, want the default BACKWARD", got[0])
	}
}

func TestErrorCodes(t *testing.T) {
	ctx := context.Background()
	h := start(t, newCluster(t))
	if _, err := h.sr.CreateSchema(ctx, "s", avroSchema(`"string"`)); err != nil {
		t.Fatal(err)
	}

	_, err := h.sr.SubjectVersions(ctx, "missing")
	if code := srCode(t, err); code != CodeSubjectNotFound {
		t.Errorf("versions of an unknown subject: %d", code)
	}
	_, err = h.sr.SchemaByVersion(ctx, "missing", 1)
	if code := srCode(t, err); code != CodeSubjectNotFound {
		t.Errorf("version of an unknown subject: %d", code)
	}
	_, err = h.sr.SchemaByVersion(ctx, "s", 9)
	if code := srCode(t, err); code != CodeVersionNotFound {
		t.Errorf("unknown version: %d", code)
	}
	_, err = h.sr.SchemaByID(ctx, 4242)
	if code := srCode(t, err); code != CodeSchemaNotFound {
		t.Errorf("unknown id: %d", code)
	}
	if _, err := h.reg.SchemaByID(4242); err == nil || err.(*Error).Code != CodeSchemaNotFound {
		t.Errorf("Go API unknown id: %v", err)
	}

	cases := []struct {
		name, method, path, ctype, body string
		status, code                    int
		msg                             string
	}{
		{"subject not found body", "GET", "/subjects/missing/versions", "", "", 404, CodeSubjectNotFound, "Subject 'missing' not found."},
		{"bad version", "GET", "/subjects/s/versions/abc", "", "", 422, CodeInvalidVersion, "abc"},
		{"version zero", "GET", "/subjects/s/versions/0", "", "", 422, CodeInvalidVersion, ""},
		{"invalid schema", "POST", "/subjects/s/versions", contentTypeV1, `{"schema":"{\"type\":\"record\"}"}`, 422, CodeInvalidSchema, "Invalid schema"},
		{"not json", "POST", "/subjects/s/versions", contentTypeV1, `{"schema":`, 422, CodeUnprocessableRequestBody, ""},
		{"protobuf", "POST", "/subjects/s/versions", "application/json", `{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}`, 422, CodeInvalidSchema, "only AVRO"},
		{"references", "POST", "/subjects/s/versions", contentTypeV1, `{"schema":"\"string\"","references":[{"name":"x","subject":"y","version":1}]}`, 422, CodeInvalidSchema, "references"},
		{"media type", "POST", "/subjects/s/versions", "text/plain", `{"schema":"\"string\""}`, 415, CodeUnsupportedMediaType, ""},
		{"unknown route", "GET", "/nowhere", "", "", 404, 404, "HTTP 404"},
		{"wrong method", "PATCH", "/config", "", "", 405, 405, ""},
		{"bad id", "GET", "/schemas/ids/x", "", "", 404, CodeSchemaNotFound, ""},
		{"delete unknown subject", "DELETE", "/subjects/missing", "", "", 404, CodeSubjectNotFound, ""},
		{"import id", "POST", "/subjects/s2/versions", contentTypeV1, `{"schema":"\"long\"","id":99}`, 422, CodeOperationNotPermitted, ""},
	}
	for _, tc := range cases {
		status, body, raw := h.do(t, tc.method, tc.path, tc.ctype, tc.body)
		if status != tc.status || body["error_code"] != float64(tc.code) {
			t.Errorf("%s: HTTP %d %s, want HTTP %d error_code %d", tc.name, status, raw, tc.status, tc.code)
			continue
		}
		if msg, _ := body["message"].(string); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: message %q does not contain %q", tc.name, msg, tc.msg)
		}
	}

	// Subjects are path-escaped by clients; '/' and spaces survive routing.
	odd := "odd/sub ject<&>-value"
	if _, err := h.sr.CreateSchema(ctx, odd, avroSchema(`"long"`)); err != nil {
		t.Fatalf("register %q: %v", odd, err)
	}
	if v, err := h.sr.SchemaByVersion(ctx, odd, -1); err != nil || v.Subject != odd {
		t.Fatalf("latest of %q: %+v %v", odd, v, err)
	}

	// Both content types Confluent clients send are accepted, and answers use the v1 type.
	for _, ct := range []string{contentTypeV1, "application/json", "application/json; charset=utf-8", ""} {
		req, _ := http.NewRequest(http.MethodPost, h.base+"/subjects/s/versions", strings.NewReader(`{"schema":"\"string\""}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != contentTypeV1 {
			t.Errorf("content type %q: HTTP %d, answer type %q", ct, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestDeleteSubject(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	h := start(t, c)
	ss, err := h.sr.CreateSchema(ctx, "gone-value", avroSchema(ordersV1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.sr.DeleteSubject(ctx, "gone-value", sr.HardDelete); srCode(t, err) != CodeSubjectNotSoftDeleted {
		t.Fatalf("permanent delete before soft delete: %v", err)
	}
	versions, err := h.sr.DeleteSubject(ctx, "gone-value", sr.SoftDelete)
	if err != nil || !slices.Equal(versions, []int{1}) {
		t.Fatalf("soft delete: %v %v", versions, err)
	}
	if subs, _ := h.sr.Subjects(ctx); len(subs) != 0 {
		t.Fatalf("subjects after soft delete: %v", subs)
	}
	if subs, _ := h.sr.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); !slices.Equal(subs, []string{"gone-value"}) {
		t.Fatalf("subjects with deleted=true: %v", subs)
	}
	if _, err := h.sr.SchemaByID(ctx, ss.ID); err != nil {
		t.Fatalf("an id stays readable after its subject is deleted: %v", err)
	}
	if _, err := h.sr.DeleteSubject(ctx, "gone-value", sr.SoftDelete); srCode(t, err) != CodeSubjectSoftDeleted {
		t.Fatalf("second soft delete: %v", err)
	}
	// Registering again makes version 2 with the same id.
	again, err := h.sr.CreateSchema(ctx, "gone-value", avroSchema(ordersV1))
	if err != nil || again.ID != ss.ID || again.Version != 2 {
		t.Fatalf("register after soft delete: %+v %v", again, err)
	}
	if v, _ := h.sr.SubjectVersions(ctx, "gone-value"); !slices.Equal(v, []int{2}) {
		t.Fatalf("versions after re-register: %v", v)
	}

	// Versions: soft then permanent.
	if err := h.sr.DeleteSchema(ctx, "gone-value", 2, sr.SoftDelete); err != nil {
		t.Fatalf("soft delete version 2: %v", err)
	}
	if err := h.sr.DeleteSchema(ctx, "gone-value", 1, sr.HardDelete); err != nil {
		t.Fatalf("hard delete version 1: %v", err)
	}
	versions, err = h.sr.DeleteSubject(ctx, "gone-value", sr.HardDelete)
	if err != nil || !slices.Equal(versions, []int{2}) {
		t.Fatalf("permanent delete: %v %v", versions, err)
	}
	if subs, _ := h.sr.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); len(subs) != 0 {
		t.Fatalf("subjects after permanent delete: %v", subs)
	}

	// The state after deletes survives a restart, and the id counter does not go back.
	h.stop()
	h.reg.Close()
	h2 := start(t, c)
	if subs, _ := h2.sr.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); len(subs) != 0 {
		t.Fatalf("subjects after restart: %v", subs)
	}
	next, err := h2.sr.CreateSchema(ctx, "new-value", avroSchema(ordersV2))
	if err != nil || next.ID <= ss.ID {
		t.Fatalf("new id after restart: %+v %v, want more than %d", next, err, ss.ID)
	}
}

func TestRestartKeepsState(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	h := start(t, c)

	ids := map[string]int{}
	for _, s := range []struct{ subject, schema string }{
		{"a-value", ordersV1}, {"a-value", ordersV2}, {"b-key", `"long"`}, {"c-value", ordersV1},
	} {
		id, err := h.sr.RegisterSchema(ctx, s.subject, avroSchema(s.schema), -1, -1)
		if err != nil {
			t.Fatalf("register %s: %v", s.subject, err)
		}
		ids[s.schema] = id
	}
	h.sr.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "b-key")
	h.sr.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive})
	h.stop()
	h.reg.Close()
	h2 := start(t, c)

	for _, sub := range []string{"a-value", "b-key", "c-value"} {
		if _, err := h2.sr.SubjectVersions(ctx, sub); err != nil {
			t.Fatalf("subject %s after restart: %v", sub, err)
		}
	}
	v2, err := h2.sr.SchemaByVersion(ctx, "a-value", 2)
	if err != nil || v2.ID != ids[ordersV2] || v2.Schema.Schema != ordersV2 {
		t.Fatalf("a-value v2 after restart: %+v %v", v2, err)
	}
	c1, err := h2.sr.SchemaByVersion(ctx, "c-value", -1)
	if err != nil || c1.ID != ids[ordersV1] || c1.Version != 1 {
		t.Fatalf("c-value after restart: %+v %v", c1, err)
	}
	for schema, id := range ids {
		got, err := h2.sr.SchemaTextByID(ctx, id)
		if err != nil || got != schema {
			t.Fatalf("id %d after restart: %q %v", id, got, err)
		}
	}
	if got := h2.sr.Compatibility(ctx, "b-key"); got[0].Level != sr.CompatNone {
		t.Fatalf("subject level after restart: %+v", got[0])
	}
	if got := h2.sr.Compatibility(ctx); got[0].Level != sr.CompatFullTransitive {
		t.Fatalf("global level after restart: %+v", got[0])
	}
	// Same schema again: same id, no new version. New schema: a fresh id.
	if id, err := h2.sr.RegisterSchema(ctx, "a-value", avroSchema(ordersV2), -1, -1); err != nil || id != ids[ordersV2] {
		t.Fatalf("re-register after restart: %d %v", id, err)
	}
	maxID := 0
	for _, id := range ids {
		maxID = max(maxID, id)
	}
	id, err := h2.sr.RegisterSchema(ctx, "d-value", avroSchema(`"bytes"`), -1, -1)
	if err != nil || id != maxID+1 {
		t.Fatalf("new schema after restart: id %d %v, want %d", id, err, maxID+1)
	}
}

// readTopic returns every record of the registry topic, read by an independent client.
func readTopic(t *testing.T, c *kfake.Cluster, topic string) []*kgo.Record {
	t.Helper()
	cl := newKafkaClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var out []*kgo.Record
	for int64(len(out)) < end.Offset {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestPersistedRecordsUseConfluentFormat(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	h := start(t, c, WithTopic("_schemas_fmt"))
	id, err := h.sr.RegisterSchema(ctx, "fmt-value", avroSchema(ordersV1), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	h.sr.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull})
	h.sr.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "fmt-value")
	if _, err := h.sr.DeleteSubject(ctx, "fmt-value", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}

	recs := readTopic(t, c, "_schemas_fmt")
	if len(recs) != 4 {
		t.Fatalf("want 4 records, got %d", len(recs))
	}
	wantKeys := []string{
		`{"keytype":"SCHEMA","subject":"fmt-value","version":1,"magic":1}`,
		`{"keytype":"CONFIG","subject":null,"magic":0}`,
		`{"keytype":"CONFIG","subject":"fmt-value","magic":0}`,
		`{"keytype":"DELETE_SUBJECT","subject":"fmt-value","magic":0}`,
	}
	for i, want := range wantKeys {
		if string(recs[i].Key) != want {
			t.Errorf("record %d key %s, want %s", i, recs[i].Key, want)
		}
	}

	var sv map[string]any
	if err := json.Unmarshal(recs[0].Value, &sv); err != nil {
		t.Fatalf("schema value: %v", err)
	}
	wantSV := map[string]any{"subject": "fmt-value", "version": float64(1), "id": float64(id), "schema": ordersV1, "deleted": false}
	if len(sv) != len(wantSV) {
		t.Errorf("schema value fields %v, want exactly %v (no schemaType for AVRO)", sv, wantSV)
	}
	for k, v := range wantSV {
		if sv[k] != v {
			t.Errorf("schema value %s = %v, want %v", k, sv[k], v)
		}
	}
	if string(recs[1].Value) != `{"compatibilityLevel":"FULL"}` || string(recs[2].Value) != `{"compatibilityLevel":"NONE"}` {
		t.Errorf("config values %s / %s", recs[1].Value, recs[2].Value)
	}
	if string(recs[3].Value) != `{"subject":"fmt-value","version":1}` {
		t.Errorf("delete subject value %s", recs[3].Value)
	}

	// Created compacted, with one partition.
	adm := kadm.NewClient(newKafkaClient(t, c))
	cfgs, err := adm.DescribeTopicConfigs(ctx, "_schemas_fmt")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("_schemas_fmt", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, cv := range rc.Configs {
		if cv.Key == "cleanup.policy" && cv.Value != nil {
			policy = *cv.Value
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy %q, want compact", policy)
	}
	td, err := adm.ListTopics(ctx, "_schemas_fmt")
	if err != nil || len(td["_schemas_fmt"].Partitions) != 1 {
		t.Errorf("partitions: %v %v", td["_schemas_fmt"].Partitions, err)
	}
}

// A topic written by Confluent Schema Registry (NOOPs, explicit AVRO type,
// other schema types, DELETE_SUBJECT, configs, tombstones) is adopted.
func TestAdoptsConfluentTopic(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	cl := newKafkaClient(t, c)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": ptr("compact")}, "_schemas"); err != nil {
		t.Fatal(err)
	}
	sv := func(subject string, version, id int, schema, extra string) string {
		s, _ := json.Marshal(schema)
		return fmt.Sprintf(`{"subject":%q,"version":%d,"id":%d,%s"schema":%s,"deleted":false}`, subject, version, id, extra, s)
	}
	records := [][2]string{
		{`{"keytype":"NOOP","magic":0}`, ""},
		{`{"keytype":"SCHEMA","subject":"old-value","version":1,"magic":1}`, sv("old-value", 1, 1, ordersV1, `"schemaType":"AVRO",`)},
		{`{"keytype":"SCHEMA","subject":"old-value","version":2,"magic":1}`, sv("old-value", 2, 5, ordersV2, "")},
		{`{"keytype":"SCHEMA","subject":"proto-value","version":1,"magic":1}`, sv("proto-value", 1, 6, `syntax = "proto3";`, `"schemaType":"PROTOBUF","references":[],`)},
		{`{"keytype":"CONFIG","subject":null,"magic":0}`, `{"compatibilityLevel":"FORWARD"}`},
		{`{"keytype":"CONFIG","subject":"old-value","magic":0}`, `{"compatibilityLevel":"NONE"}`},
		{`{"keytype":"SCHEMA","subject":"dead-value","version":1,"magic":1}`, sv("dead-value", 1, 9, `"int"`, "")},
		{`{"keytype":"DELETE_SUBJECT","subject":"dead-value","magic":0}`, `{"subject":"dead-value","version":1}`},
		{`{"keytype":"SCHEMA","subject":"tomb-value","version":1,"magic":1}`, sv("tomb-value", 1, 7, `"float"`, "")},
		{`{"keytype":"SCHEMA","subject":"tomb-value","version":1,"magic":1}`, ""},
		{`{"keytype":"MODE","subject":null,"magic":0}`, `{"mode":"READWRITE"}`},
		{`not json`, `{}`},
	}
	for _, kv := range records {
		rec := &kgo.Record{Topic: "_schemas", Key: []byte(kv[0])}
		if kv[1] != "" {
			rec.Value = []byte(kv[1])
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	h := start(t, c)
	subs, err := h.sr.Subjects(ctx)
	if err != nil || !slices.Equal(subs, []string{"old-value", "proto-value"}) {
		t.Fatalf("subjects: %v %v", subs, err)
	}
	if s, err := h.sr.SchemaByID(ctx, 6); err != nil || s.Type != sr.TypeProtobuf {
		t.Fatalf("protobuf schema by id: %+v %v", s, err)
	}
	if s, err := h.sr.SchemaTextByID(ctx, 9); err != nil || s != `"int"` {
		t.Fatalf("id of a deleted subject: %q %v", s, err)
	}
	if got := h.sr.Compatibility(ctx); got[0].Level != sr.CompatForward {
		t.Fatalf("global level: %+v", got[0])
	}
	if got := h.sr.Compatibility(ctx, "old-value"); got[0].Level != sr.CompatNone {
		t.Fatalf("subject level: %+v", got[0])
	}
	// Ids continue after the highest one ever written (9), even the deleted
	// ones; the AVRO-typed record dedupes with a plain registration.
	if id, err := h.sr.RegisterSchema(ctx, "again-value", avroSchema(ordersV1), -1, -1); err != nil || id != 1 {
		t.Fatalf("register a known schema: %d %v, want id 1", id, err)
	}
	if id, err := h.sr.RegisterSchema(ctx, "new-value", avroSchema(`"double"`), -1, -1); err != nil || id != 10 {
		t.Fatalf("register a new schema: %d %v, want id 10", id, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestServeStopsOnContextAndRejectsBadClients(t *testing.T) {
	c := newCluster(t)
	h := start(t, c)
	resp, err := http.Get(h.base + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("empty registry lists %s", body)
	}
	h.stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := http.Get(h.base + "/subjects")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still answers after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx := context.Background()
	for name, opts := range map[string][]kgo.Opt{
		"group":         {kgo.ConsumerGroup("g"), kgo.ConsumeTopics("x")},
		"topics":        {kgo.ConsumeTopics("x")},
		"acks":          {kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()},
		"transactional": {kgo.TransactionalID("t")},
	} {
		if _, err := New(ctx, newKafkaClient(t, c, opts...), WithLogger(testLogger(t))); err == nil {
			t.Errorf("%s client: New accepted it", name)
		}
	}
	if _, err := New(ctx, newKafkaClient(t, c), WithDefaultCompatibility("SIDEWAYS")); err == nil {
		t.Error("New accepted an unknown default compatibility")
	}
}

// Concurrent registrations (run with -race): every distinct schema gets one
// id, identical ones share it, and versions of a subject are dense.
func TestConcurrentRegistrations(t *testing.T) {
	ctx := context.Background()
	h := start(t, newCluster(t))
	const workers, perWorker = 6, 8
	schemaFor := func(i int) string {
		// Each field is optional, so every version is BACKWARD compatible with the previous.
		fields := []string{`{"name":"id","type":"long"}`}
		for f := 0; f < i; f++ {
			fields = append(fields, fmt.Sprintf(`{"name":"f%d","type":["null","string"],"default":null}`, f))
		}
		return `{"type":"record","name":"R","fields":[` + strings.Join(fields, ",") + `]}`
	}
	var (
		mu  sync.Mutex
		got = map[string]map[int]bool{} // schema -> ids seen
		wg  sync.WaitGroup
	)
	errs := make(chan error, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				subject := fmt.Sprintf("s%d-value", w%3)
				schema := schemaFor(i)
				id, err := h.sr.RegisterSchema(ctx, subject, avroSchema(schema), -1, -1)
				if err != nil {
					errs <- fmt.Errorf("worker %d register %d in %s: %w", w, i, subject, err)
					continue
				}
				mu.Lock()
				if got[schema] == nil {
					got[schema] = map[int]bool{}
				}
				got[schema][id] = true
				mu.Unlock()
				// Readers run alongside writers.
				if _, err := h.sr.SchemaByID(ctx, id); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[int]string{}
	for schema, ids := range got {
		if len(ids) != 1 {
			t.Errorf("schema got %d ids: %v", len(ids), ids)
		}
		for id := range ids {
			if other, dup := seen[id]; dup && other != schema {
				t.Errorf("id %d given to two schemas", id)
			}
			seen[id] = schema
		}
	}
	for s := 0; s < 3; s++ {
		v, err := h.sr.SubjectVersions(ctx, fmt.Sprintf("s%d-value", s))
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range v {
			if n != i+1 {
				t.Fatalf("subject s%d versions %v are not dense", s, v)
			}
		}
		if len(v) > perWorker {
			t.Fatalf("subject s%d has %d versions for %d distinct schemas", s, len(v), perWorker)
		}
	}
}

package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Subjects with control characters or of unreasonable length are refused
// with Confluent's INVALID_SUBJECT (42208), on register and on config, and
// nothing is stored for them.
func TestInvalidSubjectsRejected(t *testing.T) {
	h := start(t, newCluster(t))
	body := fmt.Sprintf(`{"schema":%q}`, ordersV1)
	cases := map[string]string{
		"NUL":          "../\x00x",
		"newline":      "a\nb-value",
		"DEL":          "a\x7fb",
		"C1 control":   "a\u0085b",
		"100000 chars": strings.Repeat("s", 100000),
		"invalid UTF8": "a\xffb",
	}
	for name, subject := range cases {
		t.Run(name, func(t *testing.T) {
			esc := url.PathEscape(subject)
			for _, r := range []struct{ method, path, body string }{
				{"POST", "/subjects/" + esc + "/versions", body},
				{"PUT", "/config/" + esc, `{"compatibility":"NONE"}`},
			} {
				status, m, raw := h.do(t, r.method, r.path, contentTypeV1, r.body)
				if status != http.StatusUnprocessableEntity || m["error_code"] != float64(CodeInvalidSubject) {
					t.Fatalf("%s %s: status %d, body %.200s; want 422 with error_code 42208", r.method, name, status, raw)
				}
				if len(raw) > 1024 {
					t.Fatalf("%s %s: the error echoes %d bytes", r.method, name, len(raw))
				}
			}
		})
	}
	// The longest accepted subject still works, and nothing else was stored.
	longest := strings.Repeat("s", maxSubjectBytes-6) + "-value"
	if status, _, raw := h.do(t, "POST", "/subjects/"+longest+"/versions", contentTypeV1, body); status != http.StatusOK {
		t.Fatalf("a %d-byte subject was refused: %d %s", len(longest), status, raw)
	}
	names, err := h.sr.Subjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != longest {
		t.Fatalf("subjects stored: %d (want only the valid one)", len(names))
	}
}

// FuzzRegistryHTTP sends arbitrary methods, paths, content types and bodies
// to the registry's handler. No input may panic it, every answer must be
// Confluent's JSON (an object or an array, or a raw schema for the
// .../schema routes), and an error answer must carry an error_code.
func FuzzRegistryHTTP(f *testing.F) {
	schema := fmt.Sprintf(`{"schema":%q}`, ordersV1)
	seeds := []struct{ method, path, ct, body string }{
		{"POST", "/subjects/a-value/versions", contentTypeV1, schema},
		{"POST", "/subjects/a-value", "application/json", schema},
		{"GET", "/subjects/a-value/versions/latest", "", ""},
		{"GET", "/subjects/a-value/versions/1/schema", "", ""},
		{"DELETE", "/subjects/a-value/versions/1?permanent=true", "", ""},
		{"GET", "/schemas/ids/1", "", ""},
		{"GET", "/schemas?subjectPrefix=a&latestOnly=true", "", ""},
		{"POST", "/compatibility/subjects/a-value/versions/latest", contentTypeV1, schema},
		{"PUT", "/config/a-value", contentTypeV1, `{"compatibility":"FULL"}`},
		{"PUT", "/config", contentTypeV1, `{"compatibilityLevel":"NONE"}`},
		{"DELETE", "/subjects/a-value", "", ""},
		{"POST", "/subjects/..%2F%00x/versions", contentTypeV1, `{"schema":"\"string\""}`},
		{"POST", "/subjects/b/versions", contentTypeV1, `{"schema":"{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"f\",\"type\":{\"type\":\"array\",\"items\":\"r\"}}]}"}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, []byte(s.body))
	}
	// One registry for all inputs of this process, so state built by
	// earlier inputs meets later ones.
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(cl.Close)
	reg, err := New(context.Background(), cl)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(reg.Close)
	fuzzRegHandler := reg.Handler()
	f.Fuzz(func(t *testing.T, method, path, ct string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://registry"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		fuzzRegHandler.ServeHTTP(rec, req)
		if rec.Code >= 300 && rec.Code < 400 {
			return // path cleaning redirect by ServeMux
		}
		raw := rec.Body.Bytes()
		if rec.Code >= 400 {
			var e Error
			if err := json.Unmarshal(raw, &e); err != nil || e.Code == 0 {
				t.Fatalf("%s %q: status %d without a Confluent error body: %.200q", method, path, rec.Code, raw)
			}
			return
		}
		if strings.HasSuffix(req.URL.Path, "/schema") {
			return // raw schema text
		}
		if !json.Valid(raw) {
			t.Fatalf("%s %q: status %d with a body that is not JSON: %.200q", method, path, rec.Code, raw)
		}
	})
}

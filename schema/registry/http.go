package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

const (
	contentTypeV1 = "application/vnd.schemaregistry.v1+json"
	maxBodyBytes  = 16 << 20
)

// Handler returns the Confluent-compatible REST API.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })

	mux.HandleFunc("GET /subjects", r.handleSubjects)
	mux.HandleFunc("POST /subjects/{subject}/versions", r.handleRegister)
	mux.HandleFunc("POST /subjects/{subject}", r.handleLookup)
	mux.HandleFunc("DELETE /subjects/{subject}", r.handleDeleteSubject)
	mux.HandleFunc("GET /subjects/{subject}/versions", r.handleVersions)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}", r.handleVersion)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", r.handleVersionSchema)
	mux.HandleFunc("DELETE /subjects/{subject}/versions/{version}", r.handleDeleteVersion)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}/referencedby", r.handleReferencedBy)

	mux.HandleFunc("GET /schemas/types", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []string{schemaTypeAvro})
	})
	mux.HandleFunc("GET /schemas", r.handleAllSchemas)
	mux.HandleFunc("GET /schemas/ids/{id}", r.handleSchemaByID)
	mux.HandleFunc("GET /schemas/ids/{id}/schema", r.handleSchemaTextByID)
	mux.HandleFunc("GET /schemas/ids/{id}/versions", r.handleIDVersions)
	mux.HandleFunc("GET /schemas/ids/{id}/subjects", r.handleIDSubjects)

	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", r.handleCompatibility)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions", r.handleCompatibility)

	mux.HandleFunc("GET /config", r.handleGetConfig)
	mux.HandleFunc("PUT /config", r.handlePutConfig)
	mux.HandleFunc("DELETE /config", r.handleDeleteConfig)
	mux.HandleFunc("GET /config/{subject}", r.handleGetConfig)
	mux.HandleFunc("PUT /config/{subject}", r.handlePutConfig)
	mux.HandleFunc("DELETE /config/{subject}", r.handleDeleteConfig)

	// Read-only: the registry is always READWRITE; some clients ask.
	mode := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"mode": "READWRITE"})
	}
	mux.HandleFunc("GET /mode", mode)
	mux.HandleFunc("GET /mode/{subject}", mode)

	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost || req.Method == http.MethodPut {
			if !acceptedContentType(req.Header.Get("Content-Type")) {
				writeError(w, &Error{http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
					fmt.Sprintf("HTTP 415 Unsupported Media Type: %q; use %s or application/json", req.Header.Get("Content-Type"), contentTypeV1)})
				return
			}
			req.Body = http.MaxBytesReader(w, req.Body, maxBodyBytes)
		}
		if h, pattern := mux.Handler(req); pattern == "" {
			// ServeMux answers unknown routes and methods in plain text;
			// clients expect Confluent's JSON. Redirects (path cleaning) pass.
			rec := &statusRecorder{header: http.Header{}}
			h.ServeHTTP(rec, req)
			status := rec.status
			if status >= 300 && status < 400 {
				h.ServeHTTP(w, req)
				return
			}
			if status < 400 {
				status = http.StatusNotFound
			}
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeError(w, &Error{status, status, fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))})
			return
		}
		mux.ServeHTTP(w, req)
	})
}

// statusRecorder keeps only the status of a ServeMux error answer.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

func acceptedContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case contentTypeV1, "application/vnd.schemaregistry+json", "application/json", "application/octet-stream":
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeV1)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *Error) { writeJSON(w, e.Status, e) }

func readJSON(req *http.Request, v any) *Error {
	dec := json.NewDecoder(req.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{http.StatusRequestEntityTooLarge, CodeSchemaTooLarge, fmt.Sprintf("Request body larger than %d bytes.", mbe.Limit)}
		}
		return &Error{http.StatusUnprocessableEntity, CodeUnprocessableRequestBody, fmt.Sprintf("Unrecognized request body: %v", err)}
	}
	return nil
}

func queryBool(req *http.Request, name string) bool {
	b, _ := strconv.ParseBool(req.URL.Query().Get(name))
	return b
}

func (r *Registry) handleSubjects(w http.ResponseWriter, req *http.Request) {
	prefix := req.URL.Query().Get("subjectPrefix")
	r.mu.RLock()
	names := r.st.subjectNames(queryBool(req, "deleted"))
	r.mu.RUnlock()
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAllSchemas serves GET /schemas: every version of every subject,
// ordered by subject and version.
func (r *Registry) handleAllSchemas(w http.ResponseWriter, req *http.Request) {
	prefix := req.URL.Query().Get("subjectPrefix")
	deleted, latestOnly := queryBool(req, "deleted"), queryBool(req, "latestOnly")
	out := []SubjectVersion{}
	r.mu.RLock()
	for _, name := range r.st.subjectNames(deleted) {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		vs := r.st.versions(name, deleted)
		if latestOnly {
			vs = vs[len(vs)-1:]
		}
		for _, sv := range vs {
			out = append(out, sv.view())
		}
	}
	r.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

// handleReferencedBy answers that nothing references a version: the
// embedded registry does not accept schema references.
func (r *Registry) handleReferencedBy(w http.ResponseWriter, req *http.Request) {
	if _, e := r.subjectVersion(req); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, []int{})
}

func (r *Registry) handleRegister(w http.ResponseWriter, req *http.Request) {
	var body SchemaRequest
	if e := readJSON(req, &body); e != nil {
		writeError(w, e)
		return
	}
	id, e := r.register(req.Context(), req.PathValue("subject"), &body)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}

func (r *Registry) handleLookup(w http.ResponseWriter, req *http.Request) {
	var body SchemaRequest
	if e := readJSON(req, &body); e != nil {
		writeError(w, e)
		return
	}
	sv, e := r.lookup(req.PathValue("subject"), &body, queryBool(req, "deleted"))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, sv)
}

func (r *Registry) handleVersions(w http.ResponseWriter, req *http.Request) {
	subject := req.PathValue("subject")
	r.mu.RLock()
	vs := r.st.versions(subject, queryBool(req, "deleted"))
	r.mu.RUnlock()
	if len(vs) == 0 {
		writeError(w, errSubjectNotFound(subject))
		return
	}
	out := make([]int, len(vs))
	for i, sv := range vs {
		out[i] = sv.version
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) subjectVersion(req *http.Request) (SubjectVersion, *Error) {
	v, e := parseVersion(req.PathValue("version"))
	if e != nil {
		return SubjectVersion{}, e
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	sv, e := r.version(req.PathValue("subject"), v, queryBool(req, "deleted"))
	if e != nil {
		return SubjectVersion{}, e
	}
	return sv.view(), nil
}

func (r *Registry) handleVersion(w http.ResponseWriter, req *http.Request) {
	sv, e := r.subjectVersion(req)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, sv)
}

func (r *Registry) handleVersionSchema(w http.ResponseWriter, req *http.Request) {
	sv, e := r.subjectVersion(req)
	if e != nil {
		writeError(w, e)
		return
	}
	writeRaw(w, sv.Schema)
}

// writeRaw serves a schema's own text, as Confluent's .../schema endpoints do.
func writeRaw(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", contentTypeV1)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(text))
}

func (r *Registry) handleDeleteSubject(w http.ResponseWriter, req *http.Request) {
	versions, e := r.deleteSubject(req.Context(), req.PathValue("subject"), queryBool(req, "permanent"))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, versions)
}

func (r *Registry) handleDeleteVersion(w http.ResponseWriter, req *http.Request) {
	v, e := parseVersion(req.PathValue("version"))
	if e != nil {
		writeError(w, e)
		return
	}
	n, e := r.deleteVersion(req.Context(), req.PathValue("subject"), v, queryBool(req, "permanent"))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func pathID(req *http.Request) (int, *Error) {
	s := req.PathValue("id")
	id, err := strconv.Atoi(s)
	if err != nil || id < 0 {
		return 0, &Error{http.StatusNotFound, CodeSchemaNotFound, fmt.Sprintf("Schema %s not found", s)}
	}
	return id, nil
}

func (r *Registry) idEntry(req *http.Request) (int, *idEntry, *Error) {
	id, e := pathID(req)
	if e != nil {
		return 0, nil, e
	}
	r.mu.RLock()
	ent, ok := r.st.ids[id]
	r.mu.RUnlock()
	if !ok {
		return 0, nil, errSchemaIDNotFound(id)
	}
	return id, ent, nil
}

func (r *Registry) handleSchemaByID(w http.ResponseWriter, req *http.Request) {
	_, ent, e := r.idEntry(req)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		SchemaType string          `json:"schemaType,omitempty"`
		References json.RawMessage `json:"references,omitempty"`
		Schema     string          `json:"schema"`
	}{ent.schemaType, ent.references, ent.text})
}

func (r *Registry) handleSchemaTextByID(w http.ResponseWriter, req *http.Request) {
	_, ent, e := r.idEntry(req)
	if e != nil {
		writeError(w, e)
		return
	}
	writeRaw(w, ent.text)
}

func (r *Registry) handleIDVersions(w http.ResponseWriter, req *http.Request) {
	id, _, e := r.idEntry(req)
	if e != nil {
		writeError(w, e)
		return
	}
	type subjectVersion struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
	}
	out := []subjectVersion{}
	r.mu.RLock()
	for _, sv := range r.st.usages(id, queryBool(req, "deleted")) {
		out = append(out, subjectVersion{sv.subject, sv.version})
	}
	r.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) handleIDSubjects(w http.ResponseWriter, req *http.Request) {
	id, _, e := r.idEntry(req)
	if e != nil {
		writeError(w, e)
		return
	}
	out := []string{}
	r.mu.RLock()
	for _, sv := range r.st.usages(id, queryBool(req, "deleted")) {
		if len(out) == 0 || out[len(out)-1] != sv.subject {
			out = append(out, sv.subject)
		}
	}
	r.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) handleCompatibility(w http.ResponseWriter, req *http.Request) {
	var body SchemaRequest
	if e := readJSON(req, &body); e != nil {
		writeError(w, e)
		return
	}
	all := req.PathValue("version") == ""
	v := -1
	if !all {
		var e *Error
		if v, e = parseVersion(req.PathValue("version")); e != nil {
			writeError(w, e)
			return
		}
	}
	ok, msgs, e := r.testCompatibility(req.PathValue("subject"), v, all, &body)
	if e != nil {
		writeError(w, e)
		return
	}
	type result struct {
		IsCompatible bool     `json:"is_compatible"`
		Messages     []string `json:"messages,omitempty"`
	}
	res := result{IsCompatible: ok}
	if queryBool(req, "verbose") {
		res.Messages = msgs
		if res.Messages == nil {
			res.Messages = []string{}
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func (r *Registry) handleGetConfig(w http.ResponseWriter, req *http.Request) {
	subject := req.PathValue("subject")
	r.mu.RLock()
	level := r.st.globalLevel(r.defLvl)
	l, ok := r.st.subjectLevels[subject]
	r.mu.RUnlock()
	if subject != "" {
		switch {
		case ok:
			level = l
		case !queryBool(req, "defaultToGlobal"):
			writeError(w, &Error{http.StatusNotFound, CodeSubjectConfigNotFound,
				fmt.Sprintf("Subject '%s' does not have subject-level compatibility configured", subject)})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"compatibilityLevel": string(level)})
}

func (r *Registry) handlePutConfig(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Compatibility      string `json:"compatibility"`
		CompatibilityLevel string `json:"compatibilityLevel"`
	}
	if e := readJSON(req, &body); e != nil {
		writeError(w, e)
		return
	}
	raw := body.Compatibility
	if raw == "" {
		raw = body.CompatibilityLevel
	}
	level, err := ParseCompatibilityLevel(raw)
	if err != nil {
		writeError(w, errInvalidCompatibility(raw))
		return
	}
	var subject *string
	if s := req.PathValue("subject"); s != "" {
		if e := validSubject(s); e != nil {
			writeError(w, e)
			return
		}
		subject = &s
	}
	if e := r.setLevel(req.Context(), subject, level); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"compatibility": string(level)})
}

func (r *Registry) handleDeleteConfig(w http.ResponseWriter, req *http.Request) {
	var subject *string
	r.mu.RLock()
	prev := r.st.globalLevel(r.defLvl)
	if s := req.PathValue("subject"); s != "" {
		subject = &s
		l, ok := r.st.subjectLevels[s]
		if !ok {
			r.mu.RUnlock()
			writeError(w, &Error{http.StatusNotFound, CodeSubjectConfigNotFound,
				fmt.Sprintf("Subject '%s' does not have subject-level compatibility configured", s)})
			return
		}
		prev = l
	}
	r.mu.RUnlock()
	if e := r.setLevel(req.Context(), subject, ""); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"compatibilityLevel": string(prev)})
}

package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// SchemaRequest is the body of register, lookup and compatibility requests.
type SchemaRequest struct {
	Schema     string            `json:"schema"`
	SchemaType string            `json:"schemaType,omitempty"`
	References []json.RawMessage `json:"references,omitempty"`
	// ID and Version are only accepted when they match what the registry
	// assigns: IMPORT mode is not supported.
	ID       int             `json:"id,omitempty"`
	Version  int             `json:"version,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	RuleSet  json.RawMessage `json:"ruleSet,omitempty"`
}

// SubjectVersion is one version of a subject, as the API returns it.
type SubjectVersion struct {
	Subject    string          `json:"subject"`
	Version    int             `json:"version"`
	ID         int             `json:"id"`
	SchemaType string          `json:"schemaType,omitempty"`
	References json.RawMessage `json:"references,omitempty"`
	Schema     string          `json:"schema"`
}

func (sv *schemaVersion) view() SubjectVersion {
	return SubjectVersion{Subject: sv.subject, Version: sv.version, ID: sv.id, SchemaType: sv.schemaType, References: sv.references, Schema: sv.text}
}

func isNull(m json.RawMessage) bool {
	s := strings.TrimSpace(string(m))
	return s == "" || s == "null" || s == "{}"
}

// parseRequest validates the parts of a request the embedded registry
// supports and parses the schema.
func parseRequest(req *SchemaRequest) (*parsedSchema, *Error) {
	t := strings.ToUpper(strings.TrimSpace(req.SchemaType))
	if t != "" && t != schemaTypeAvro {
		return nil, errInvalidSchema("Schema type %s is not supported by tributary's embedded schema registry: only AVRO schemas are.", req.SchemaType)
	}
	if len(req.References) > 0 {
		return nil, errInvalidSchema("Schema references are not supported by tributary's embedded schema registry.")
	}
	if !isNull(req.Metadata) || !isNull(req.RuleSet) {
		return nil, errInvalidSchema("Schema metadata and rule sets are not supported by tributary's embedded schema registry.")
	}
	if strings.TrimSpace(req.Schema) == "" {
		return nil, errInvalidSchema("Empty schema.")
	}
	p, err := parseAvro(req.Schema)
	if err != nil {
		return nil, errInvalidSchema("Invalid schema %s: %v", abbreviate(req.Schema), err)
	}
	return p, nil
}

func abbreviate(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// maxSubjectBytes bounds a subject's length. Confluent sets no limit, but a
// subject is a topic name (at most 249 characters) plus "-key"/"-value", or a
// record's full name; 1 KiB leaves room for both and keeps a hostile client
// from storing megabyte-long names in _schemas.
const maxSubjectBytes = 1024

// validSubject rejects what Confluent's QualifiedSubject.isValidSubject
// rejects (empty, ISO control characters) with its code 42208, plus invalid
// UTF-8 and names longer than maxSubjectBytes.
func validSubject(subject string) *Error {
	invalid := func(why string) *Error {
		shown := subject
		if len(shown) > 64 {
			shown = shown[:64] + "..."
		}
		return &Error{http.StatusUnprocessableEntity, CodeInvalidSubject,
			fmt.Sprintf("The specified subject %s is not a valid: %s.", strconv.Quote(shown), why)}
	}
	switch {
	case strings.TrimSpace(subject) == "":
		return &Error{http.StatusUnprocessableEntity, CodeInvalidSubject, "Empty subject name."}
	case len(subject) > maxSubjectBytes:
		return invalid(fmt.Sprintf("it is %d bytes long, the limit is %d", len(subject), maxSubjectBytes))
	case !utf8.ValidString(subject):
		return invalid("it is not valid UTF-8")
	}
	for i, c := range subject {
		if unicode.IsControl(c) {
			return invalid(fmt.Sprintf("control character %U at byte %d", c, i))
		}
	}
	return nil
}

// Register registers schema text (AVRO) under subject and returns its id:
// the existing one when the subject already has it, the id of the same
// schema under another subject, or a new one. The id is durable in the log
// when Register returns. Errors are *Error.
func (r *Registry) Register(ctx context.Context, subject, schema string) (int, error) {
	id, e := r.register(ctx, subject, &SchemaRequest{Schema: schema})
	if e != nil {
		return 0, e
	}
	return id, nil
}

func (r *Registry) register(ctx context.Context, subject string, req *SchemaRequest) (int, *Error) {
	if e := validSubject(subject); e != nil {
		return 0, e
	}
	cand, e := parseRequest(req)
	if e != nil {
		return 0, e
	}
	key := schemaTypeAvro + ":" + cand.normalized

	// Fast path without touching the log: the subject already has it.
	r.mu.RLock()
	if id, ok := r.st.byIdentity[key]; ok {
		for _, sv := range r.st.versions(subject, false) {
			if sv.schemaType == "" && sv.id == id {
				r.mu.RUnlock()
				return sv.id, checkRequestedIDs(req, sv.id, sv.version)
			}
		}
	}
	r.mu.RUnlock()

	wctx, cancel := r.writeCtx(ctx)
	defer cancel()
	if e := r.beginWrite(wctx, "register a schema"); e != nil {
		return 0, e
	}
	defer r.writeMu.Unlock()

	// writeMu is held: nobody else mutates st, so it is read without mu.
	st := r.st
	live := st.versions(subject, false)
	existingID, known := st.byIdentity[key]
	for _, sv := range live {
		if known && sv.schemaType == "" && sv.id == existingID {
			return sv.id, checkRequestedIDs(req, sv.id, sv.version)
		}
	}
	level := st.level(subject, r.defLvl)
	if msgs := checkCompatibility(level, cand, targets(live)); len(msgs) > 0 {
		return 0, &Error{http.StatusConflict, CodeIncompatibleSchema,
			fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]", subject, strings.Join(msgs, "; "))}
	}
	id := existingID
	if !known {
		id = st.maxID + 1
	}
	sv := &schemaVersion{subject: subject, version: st.nextVersion(subject), id: id, text: req.Schema}
	if e := checkRequestedIDs(req, sv.id, sv.version); e != nil {
		return 0, e
	}
	if err := r.produce(wctx, schemaRecord(sv)); err != nil {
		return 0, errStore("register a schema", err)
	}
	r.log.Info("schema registry: registered schema", "subject", subject, "version", sv.version, "id", id, "compatibility", level)
	return id, nil
}

func checkRequestedIDs(req *SchemaRequest, id, version int) *Error {
	if req.ID > 0 && req.ID != id {
		return &Error{http.StatusUnprocessableEntity, CodeOperationNotPermitted,
			fmt.Sprintf("Overwrite new schema with id %d is not permitted: the registry assigns id %d (IMPORT mode is not supported).", req.ID, id)}
	}
	if req.Version > 0 && req.Version != version {
		return &Error{http.StatusUnprocessableEntity, CodeOperationNotPermitted,
			fmt.Sprintf("Version %d is not permitted: the registry assigns version %d (IMPORT mode is not supported).", req.Version, version)}
	}
	return nil
}

func targets(vs []*schemaVersion) []compatTarget {
	out := make([]compatTarget, len(vs))
	for i, sv := range vs {
		out[i] = compatTarget{version: sv.version, id: sv.id, schemaType: sv.schemaType, text: sv.text}
	}
	return out
}

func (r *Registry) lookup(subject string, req *SchemaRequest, includeDeleted bool) (SubjectVersion, *Error) {
	cand, e := parseRequest(req)
	if e != nil {
		return SubjectVersion{}, e
	}
	key := schemaTypeAvro + ":" + cand.normalized
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.st.versions(subject, includeDeleted)
	if len(vs) == 0 {
		return SubjectVersion{}, errSubjectNotFound(subject)
	}
	id, known := r.st.byIdentity[key]
	// Newest first: a schema registered again after a soft delete answers with its live version.
	for i := len(vs) - 1; i >= 0; i-- {
		if known && vs[i].schemaType == "" && vs[i].id == id {
			return vs[i].view(), nil
		}
	}
	return SubjectVersion{}, errSchemaNotFound(subject)
}

// SchemaByID returns the schema text registered under id. Errors are *Error.
func (r *Registry) SchemaByID(id int) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.st.ids[id]
	if !ok {
		return "", errSchemaIDNotFound(id)
	}
	return e.text, nil
}

// versionSpec is a parsed {version} path element: -1 for latest.
func parseVersion(s string) (int, *Error) {
	if s == "latest" || s == "-1" {
		return -1, nil
	}
	n := 0
	if s == "" || len(s) > 10 {
		return 0, errInvalidVersion(s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errInvalidVersion(s)
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 1<<31-1 {
		return 0, errInvalidVersion(s)
	}
	return n, nil
}

// version resolves a subject version; the caller holds mu.
func (r *Registry) version(subject string, v int, includeDeleted bool) (*schemaVersion, *Error) {
	live := r.st.versions(subject, includeDeleted)
	if len(live) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	if v == -1 {
		return live[len(live)-1], nil
	}
	for _, sv := range live {
		if sv.version == v {
			return sv, nil
		}
	}
	return nil, errVersionNotFound(subject, v)
}

// testCompatibility checks req against one version (v >= 1 or -1 for latest)
// or, with all, against the versions the subject's level asks for.
func (r *Registry) testCompatibility(subject string, v int, all bool, req *SchemaRequest) (bool, []string, *Error) {
	cand, e := parseRequest(req)
	if e != nil {
		return false, nil, e
	}
	r.mu.RLock()
	live := r.st.versions(subject, false)
	level := r.st.level(subject, r.defLvl)
	var against []*schemaVersion
	switch {
	case all:
		against = live
	case v == -1:
		// Nothing registered yet: anything is compatible, as Confluent answers.
		if len(live) > 0 {
			against = live[len(live)-1:]
		}
	default:
		sv, e := r.version(subject, v, false)
		if e != nil {
			r.mu.RUnlock()
			return false, nil, e
		}
		against = []*schemaVersion{sv}
	}
	ts := targets(against)
	r.mu.RUnlock()
	if !all && level.transitive() {
		// A single named version is checked on its own whatever the level.
		level = CompatibilityLevel(strings.TrimSuffix(string(level), "_TRANSITIVE"))
	}
	msgs := checkCompatibility(level, cand, ts)
	return len(msgs) == 0, msgs, nil
}

func (r *Registry) setLevel(ctx context.Context, subject *string, level CompatibilityLevel) *Error {
	wctx, cancel := r.writeCtx(ctx)
	defer cancel()
	if e := r.beginWrite(wctx, "update the compatibility level"); e != nil {
		return e
	}
	defer r.writeMu.Unlock()
	if err := r.produce(wctx, configRecord(subject, level)); err != nil {
		return errStore("update the compatibility level", err)
	}
	name := "(global)"
	if subject != nil {
		name = *subject
	}
	r.log.Info("schema registry: compatibility level set", "subject", name, "level", level)
	return nil
}

// deleteSubject soft-deletes (Confluent's DELETE_SUBJECT record) or, when
// permanent, tombstones every version of an already soft-deleted subject.
func (r *Registry) deleteSubject(ctx context.Context, subject string, permanent bool) ([]int, *Error) {
	wctx, cancel := r.writeCtx(ctx)
	defer cancel()
	if e := r.beginWrite(wctx, "delete a subject"); e != nil {
		return nil, e
	}
	defer r.writeMu.Unlock()
	all := r.st.versions(subject, true)
	live := r.st.versions(subject, false)
	if len(all) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	versions := []int{}
	if !permanent {
		if len(live) == 0 {
			return nil, &Error{http.StatusNotFound, CodeSubjectSoftDeleted, fmt.Sprintf("Subject '%s' was soft deleted. Set permanent=true to delete permanently", subject)}
		}
		for _, sv := range live {
			versions = append(versions, sv.version)
		}
		if err := r.produce(wctx, deleteSubjectRecord(subject, live[len(live)-1].version)); err != nil {
			return nil, errStore("delete a subject", err)
		}
		r.log.Info("schema registry: subject soft-deleted", "subject", subject, "versions", versions)
		return versions, nil
	}
	if len(live) > 0 {
		return nil, &Error{http.StatusNotFound, CodeSubjectNotSoftDeleted, fmt.Sprintf("Subject '%s' was not deleted first before being permanently deleted", subject)}
	}
	recs := make([]*kgo.Record, 0, len(all))
	for _, sv := range all {
		versions = append(versions, sv.version)
		recs = append(recs, schemaTombstone(subject, sv.version))
	}
	if err := r.produce(wctx, recs...); err != nil {
		return nil, errStore("delete a subject", err)
	}
	r.log.Info("schema registry: subject permanently deleted", "subject", subject, "versions", versions)
	return versions, nil
}

// deleteVersion soft-deletes one version (rewriting its record with
// deleted=true) or, when permanent, tombstones an already soft-deleted one.
func (r *Registry) deleteVersion(ctx context.Context, subject string, v int, permanent bool) (int, *Error) {
	wctx, cancel := r.writeCtx(ctx)
	defer cancel()
	if e := r.beginWrite(wctx, "delete a schema version"); e != nil {
		return 0, e
	}
	defer r.writeMu.Unlock()
	sv, e := r.version(subject, v, permanent)
	if e != nil {
		return 0, e
	}
	if !permanent {
		del := *sv
		del.deleted = true
		if err := r.produce(wctx, schemaRecord(&del)); err != nil {
			return 0, errStore("delete a schema version", err)
		}
		r.log.Info("schema registry: version soft-deleted", "subject", subject, "version", sv.version)
		return sv.version, nil
	}
	if !sv.deleted {
		return 0, &Error{http.StatusNotFound, CodeVersionNotSoftDeleted,
			fmt.Sprintf("Subject '%s' Version %d was not deleted first before being permanently deleted", subject, sv.version)}
	}
	if err := r.produce(wctx, schemaTombstone(subject, sv.version)); err != nil {
		return 0, errStore("delete a schema version", err)
	}
	r.log.Info("schema registry: version permanently deleted", "subject", subject, "version", sv.version)
	return sv.version, nil
}

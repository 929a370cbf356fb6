package registry

import (
	"encoding/json"
	"slices"
	"sort"
)

// schemaVersion is one (subject, version) row, as the SCHEMA records say.
type schemaVersion struct {
	subject    string
	version    int
	id         int
	schemaType string // "" for AVRO, as Confluent omits it
	references json.RawMessage
	text       string
	deleted    bool // soft-deleted
}

// idEntry is what GET /schemas/ids/{id} serves: the text first registered
// under the id.
type idEntry struct {
	schemaType string
	references json.RawMessage
	text       string
}

// state is the registry's in-memory view of the topic, rebuilt by replaying
// it. It is mutated only by apply* under Registry.mu.
type state struct {
	subjects   map[string]map[int]*schemaVersion
	ids        map[int]*idEntry
	byIdentity map[string]int
	// maxID is the highest id ever read, including ids whose versions were
	// later deleted, so that a new schema never reuses an id a consumer may
	// still hold.
	maxID         int
	global        CompatibilityLevel // "" when no global CONFIG record is in force
	subjectLevels map[string]CompatibilityLevel
}

func newState() *state {
	return &state{
		subjects:      map[string]map[int]*schemaVersion{},
		ids:           map[int]*idEntry{},
		byIdentity:    map[string]int{},
		subjectLevels: map[string]CompatibilityLevel{},
	}
}

func (s *state) applySchema(subject string, version int, v *schemaValue) {
	if v == nil { // tombstone: permanent delete
		if vs := s.subjects[subject]; vs != nil {
			delete(vs, version)
			if len(vs) == 0 {
				delete(s.subjects, subject)
			}
		}
		return
	}
	vs := s.subjects[subject]
	if vs == nil {
		vs = map[int]*schemaVersion{}
		s.subjects[subject] = vs
	}
	vs[version] = &schemaVersion{
		subject:    subject,
		version:    version,
		id:         v.ID,
		schemaType: v.SchemaType,
		references: v.References,
		text:       v.Schema,
		deleted:    v.Deleted,
	}
	if _, ok := s.ids[v.ID]; !ok {
		s.ids[v.ID] = &idEntry{schemaType: v.SchemaType, references: v.References, text: v.Schema}
		key := identity(v.SchemaType, v.Schema)
		if _, taken := s.byIdentity[key]; !taken {
			s.byIdentity[key] = v.ID
		}
	}
	if v.ID > s.maxID {
		s.maxID = v.ID
	}
}

func (s *state) applyDeleteSubject(subject string, upTo int) {
	for v, sv := range s.subjects[subject] {
		if v <= upTo {
			sv.deleted = true
		}
	}
}

func (s *state) applyConfig(subject *string, level CompatibilityLevel) {
	if subject == nil {
		s.global = level
		return
	}
	if level == "" {
		delete(s.subjectLevels, *subject)
		return
	}
	s.subjectLevels[*subject] = level
}

// versions returns a subject's versions, oldest first; soft-deleted ones only
// when includeDeleted.
func (s *state) versions(subject string, includeDeleted bool) []*schemaVersion {
	var out []*schemaVersion
	for _, sv := range s.subjects[subject] {
		if includeDeleted || !sv.deleted {
			out = append(out, sv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out
}

func (s *state) subjectNames(includeDeleted bool) []string {
	out := []string{}
	for name := range s.subjects {
		if len(s.versions(name, includeDeleted)) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// nextVersion counts soft-deleted versions too, as Confluent does, so a
// version number is never handed out twice while its record is still readable.
func (s *state) nextVersion(subject string) int {
	max := 0
	for v := range s.subjects[subject] {
		if v > max {
			max = v
		}
	}
	return max + 1
}

func (s *state) level(subject string, def CompatibilityLevel) CompatibilityLevel {
	if l, ok := s.subjectLevels[subject]; ok {
		return l
	}
	if s.global != "" {
		return s.global
	}
	return def
}

func (s *state) globalLevel(def CompatibilityLevel) CompatibilityLevel {
	if s.global != "" {
		return s.global
	}
	return def
}

// usages lists the subject versions that use id, ordered by subject then version.
func (s *state) usages(id int, includeDeleted bool) []*schemaVersion {
	var out []*schemaVersion
	for _, vs := range s.subjects {
		for _, sv := range vs {
			if sv.id == id && (includeDeleted || !sv.deleted) {
				out = append(out, sv)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].subject != out[j].subject {
			return out[i].subject < out[j].subject
		}
		return out[i].version < out[j].version
	})
	return out
}

package registry

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// CompatibilityLevel is a Confluent compatibility level.
type CompatibilityLevel string

// The Confluent compatibility levels. BACKWARD is Confluent's and tributary's default.
const (
	CompatNone               CompatibilityLevel = "NONE"
	CompatBackward           CompatibilityLevel = "BACKWARD"
	CompatBackwardTransitive CompatibilityLevel = "BACKWARD_TRANSITIVE"
	CompatForward            CompatibilityLevel = "FORWARD"
	CompatForwardTransitive  CompatibilityLevel = "FORWARD_TRANSITIVE"
	CompatFull               CompatibilityLevel = "FULL"
	CompatFullTransitive     CompatibilityLevel = "FULL_TRANSITIVE"
)

// ParseCompatibilityLevel accepts a level in any letter case.
func ParseCompatibilityLevel(s string) (CompatibilityLevel, error) {
	l := CompatibilityLevel(strings.ToUpper(strings.TrimSpace(s)))
	switch l {
	case CompatNone, CompatBackward, CompatBackwardTransitive, CompatForward,
		CompatForwardTransitive, CompatFull, CompatFullTransitive:
		return l, nil
	}
	return "", errInvalidCompatibility(s)
}

func (l CompatibilityLevel) transitive() bool { return strings.HasSuffix(string(l), "_TRANSITIVE") }

// backward: the new schema must read data written with the old one.
func (l CompatibilityLevel) backward() bool {
	return l == CompatBackward || l == CompatBackwardTransitive || l == CompatFull || l == CompatFullTransitive
}

// forward: the old schema must read data written with the new one.
func (l CompatibilityLevel) forward() bool {
	return l == CompatForward || l == CompatForwardTransitive || l == CompatFull || l == CompatFullTransitive
}

const schemaTypeAvro = "AVRO"

// parsedSchema is a schema text parsed on its own name cache: hamba/avro's
// global cache would let a newer version of a named record replace an older
// one, and compatibility checks need both side by side.
type parsedSchema struct {
	schema avro.Schema
	// normalized is hamba/avro's full JSON form: unlike the Parsing Canonical
	// Form it keeps defaults, docs and properties, which are part of a
	// schema's identity for the registry.
	normalized string
}

func parseAvro(text string) (*parsedSchema, error) {
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("normalize schema: %w", err)
	}
	return &parsedSchema{schema: s, normalized: string(b)}, nil
}

// identity is the key under which a schema is deduplicated across subjects.
func identity(schemaType, text string) string {
	if schemaType == "" || schemaType == schemaTypeAvro {
		if p, err := parseAvro(text); err == nil {
			return schemaTypeAvro + ":" + p.normalized
		}
	}
	return schemaType + ":raw:" + text
}

// compatTarget is one existing version the candidate is checked against.
type compatTarget struct {
	version    int
	id         int
	schemaType string
	text       string
}

// checkCompatibility returns one message per violation; none means compatible.
// targets must be ordered oldest first; non-transitive levels use only the last.
func checkCompatibility(level CompatibilityLevel, candidate *parsedSchema, targets []compatTarget) []string {
	if level == CompatNone || len(targets) == 0 {
		return nil
	}
	if !level.transitive() {
		targets = targets[len(targets)-1:]
	}
	var msgs []string
	for _, t := range targets {
		if t.schemaType != "" && t.schemaType != schemaTypeAvro {
			msgs = append(msgs, fmt.Sprintf("version %d (id %d) is a %s schema; an AVRO schema cannot be checked against it", t.version, t.id, t.schemaType))
			continue
		}
		old, err := parseAvro(t.text)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("version %d (id %d) no longer parses: %v", t.version, t.id, err))
			continue
		}
		// A fresh SchemaCompatibility per check: it caches results by
		// Parsing Canonical Form, which drops defaults, so a cached verdict
		// for one pair could be wrongly reused for a pair differing only in
		// defaults.
		if level.backward() {
			if err := avro.NewSchemaCompatibility().Compatible(candidate.schema, old.schema); err != nil {
				msgs = append(msgs, fmt.Sprintf("%s: the new schema cannot read data written with version %d (id %d): %v", level, t.version, t.id, err))
			}
		}
		if level.forward() {
			if err := avro.NewSchemaCompatibility().Compatible(old.schema, candidate.schema); err != nil {
				msgs = append(msgs, fmt.Sprintf("%s: version %d (id %d) cannot read data written with the new schema: %v", level, t.version, t.id, err))
			}
		}
	}
	return msgs
}

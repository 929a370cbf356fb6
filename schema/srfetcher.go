package schema

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

// SRFetcher adapts a franz-go schema registry client to SchemaFetcher.
type SRFetcher struct {
	Client *sr.Client
}

// SchemaByID fetches the schema text of id. Schemas with references are
// refused: Debezium-style schemas are self-contained, and the Decoder parses
// each id on its own.
func (f SRFetcher) SchemaByID(ctx context.Context, id int) (string, error) {
	s, err := f.Client.SchemaByID(ctx, id)
	if err != nil {
		return "", fmt.Errorf("registry schema id %d: %w", id, err)
	}
	if s.Type != sr.TypeAvro {
		return "", fmt.Errorf("registry schema id %d is %s, not Avro", id, s.Type)
	}
	if len(s.References) > 0 {
		return "", fmt.Errorf("registry schema id %d uses %d schema references, which are not supported", id, len(s.References))
	}
	return s.Schema, nil
}

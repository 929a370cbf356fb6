package postgres

import (
	"reflect"
	"testing"

	"github.com/tributary-cdc/tributary/schema"
)

// TestPlaceholderFor: unchanged TOASTed values get Debezium's placeholder in
// the shape of their type (UnchangedToastedPlaceholder), never a null.
func TestPlaceholderFor(t *testing.T) {
	ph := schema.UnavailableValue
	ints := func(conv func(b byte) any) []any {
		out := make([]any, len(ph))
		for i := range len(ph) {
			out[i] = conv(ph[i])
		}
		return out
	}
	arr := func(items schema.Type) schema.Type { return schema.Type{Kind: schema.Array, Items: &items} }
	for name, c := range map[string]struct {
		t    schema.Type
		want any
	}{
		"text":   {schema.Type{Kind: schema.String}, ph},
		"bytea":  {schema.Type{Kind: schema.Bytes}, []byte(ph)},
		"text[]": {arr(schema.Type{Kind: schema.String}), []any{ph}},
		"int2[]": {arr(schema.Type{Kind: schema.Int16}), ints(func(b byte) any { return int32(b) })},
		"int4[]": {arr(schema.Type{Kind: schema.Int32}), ints(func(b byte) any { return int32(b) })},
		"int8[]": {arr(schema.Type{Kind: schema.Int64}), ints(func(b byte) any { return int64(b) })},
		// Java's UUID.nameUUIDFromBytes of the placeholder.
		"uuid[]":  {arr(schema.Type{Kind: schema.String, Name: schema.UUIDName}), []any{"b68a35a7-17ad-35b3-af2a-ae46edb4545a"}},
		"numeric": {schema.Type{Kind: schema.Bytes, Name: schema.DecimalName}, nil},
	} {
		if got := placeholderFor(c.t); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: placeholder %#v, want %#v", name, got, c.want)
		}
	}
}

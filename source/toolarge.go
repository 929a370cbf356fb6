package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/tributary-cdc/tributary/schema"
)

// tooLarge turns a MESSAGE_TOO_LARGE for rec into an error that names the
// table, the key, the largest column and the sizes, and says how to recover
// (issue 11: the bare producer error left users deleting rows and slots).
// Other errors are returned as they are. It decodes rec with its registered
// schema, once, on the way to stopping the source.
func tooLarge(reg SchemaRegistry, maxRecord int64, rec *kgo.Record, err error) error {
	if !errors.Is(err, kerr.MessageTooLarge) {
		return err
	}
	size := len(rec.Key) + len(rec.Value)
	where := "topic " + rec.Topic
	if cl, ok := reg.(*sr.Client); ok {
		where = describeRecord(cl, rec)
	}
	limit := "log.max_record_bytes"
	if maxRecord > 0 {
		limit = fmt.Sprintf("log.max_record_bytes (%d)", maxRecord)
	}
	return fmt.Errorf("%s: the record is %d bytes (key %d, value %d), above %s or the topic's max.message.bytes; "+
		"raise log.max_record_bytes (on a Kafka cluster also the topic's max.message.bytes) and restart: "+
		"the source resumes from its last acknowledged position: %w",
		where, size, len(rec.Key), len(rec.Value), limit, err)
}

// describeRecord names the record's table, key and largest column, as far as
// decoding it allows.
func describeRecord(cl *sr.Client, rec *kgo.Record) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dec := schema.NewDecoder(schema.SRFetcher{Client: cl})
	out := "topic " + rec.Topic
	if _, key, err := dec.DecodeJSON(ctx, rec.Key); err == nil && key != nil {
		if b, err := json.Marshal(key); err == nil {
			out += ", key " + truncate(string(b), 200)
		}
	}
	_, v, err := dec.DecodeJSON(ctx, rec.Value)
	env, ok := v.(map[string]any)
	if err != nil || !ok {
		return out
	}
	if src, ok := env["source"].(map[string]any); ok {
		ns, _ := src["schema"].(string) // PostgreSQL
		if ns == "" {
			ns, _ = src["db"].(string) // MySQL
		}
		if t, _ := src["table"].(string); t != "" {
			out = fmt.Sprintf("table %s.%s (%s)", ns, t, out)
		}
	}
	row, _ := env["after"].(map[string]any)
	if row == nil {
		row, _ = env["before"].(map[string]any)
	}
	col, n := "", -1
	for name, val := range row {
		if s := valueSize(val); s > n {
			col, n = name, s
		}
	}
	if col != "" {
		out += fmt.Sprintf(", largest column %s (%d bytes)", col, n)
	}
	return out
}

// valueSize is about how many bytes a decoded column value takes.
func valueSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case string:
		return len(x)
	case []byte:
		return len(x)
	}
	b, _ := json.Marshal(v)
	return len(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

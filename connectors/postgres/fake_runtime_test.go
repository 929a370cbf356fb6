package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// fakeRuntime is an in-memory source.Runtime: it keeps emitted records,
// treats every checkpoint as durable at once, registers schemas in a map
// (checking BACKWARD compatibility per subject, like a registry would) and
// serves them to schema.Decoder.
type fakeRuntime struct {
	mu          sync.Mutex
	offset      map[string]any
	records     []source.Record
	checkpoints []map[string]any
	// emittedAt[i] is len(records) when checkpoints[i] was taken.
	emittedAt []int

	schemas  map[int]string
	ids      map[string]int
	subjects map[string][]string // subject -> schema texts in version order
	codecs   int
	flushes  int

	metrics *source.Metrics
	log     *slog.Logger
	// withholdDurable makes checkpoints never durable (the slot must not move).
	withholdDurable bool
	heldDurable     []func()
	// slowEvery and slowFor make every slowEvery-th Emit take slowFor.
	slowEvery int
	slowFor   time.Duration
}

func newFakeRuntime(t testing.TB, offset map[string]any) *fakeRuntime {
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if testing.Verbose() {
		h = slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return &fakeRuntime{
		offset:   offset,
		schemas:  map[int]string{},
		ids:      map[string]int{},
		subjects: map[string][]string{},
		metrics:  source.NewMetrics(nil),
		log:      slog.New(h),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (f *fakeRuntime) Offset() map[string]any { return f.offset }

func (f *fakeRuntime) Codec(ctx context.Context, t *schema.Table, src *schema.SourceBlock) (*schema.Codec, error) {
	c, err := schema.NewCodec(t, src)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codecs++
	keyID := 0
	if ks := c.KeySchema(); ks != "" {
		if keyID, err = f.register(t.Topic+"-key", ks); err != nil {
			return nil, err
		}
	}
	valueID, err := f.register(t.Topic+"-value", c.ValueSchema())
	if err != nil {
		return nil, err
	}
	c.SetIDs(keyID, valueID)
	return c, nil
}

// register assigns an id, refusing a new version that cannot read the
// previous one (BACKWARD).
func (f *fakeRuntime) register(subject, text string) (int, error) {
	versions := f.subjects[subject]
	if n := len(versions); n > 0 && versions[n-1] != text {
		reader, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return 0, fmt.Errorf("subject %s: parse new schema: %w", subject, err)
		}
		writer, err := avro.ParseWithCache(versions[n-1], "", &avro.SchemaCache{})
		if err != nil {
			return 0, fmt.Errorf("subject %s: parse previous schema: %w", subject, err)
		}
		if err := avro.NewSchemaCompatibility().Compatible(reader, writer); err != nil {
			return 0, fmt.Errorf("subject %s: new schema is not BACKWARD compatible: %w", subject, err)
		}
	}
	id, ok := f.ids[text]
	if !ok {
		id = len(f.ids) + 1
		f.ids[text] = id
		f.schemas[id] = text
	}
	if n := len(versions); n == 0 || versions[n-1] != text {
		f.subjects[subject] = append(versions, text)
	}
	return id, nil
}

func (f *fakeRuntime) SchemaByID(ctx context.Context, id int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.schemas[id]
	if !ok {
		return "", fmt.Errorf("no schema %d", id)
	}
	return s, nil
}

func (f *fakeRuntime) Emit(ctx context.Context, r source.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.records = append(f.records, r)
	n := len(f.records)
	every, d := f.slowEvery, f.slowFor
	f.mu.Unlock()
	if every > 0 && n%every == 0 {
		time.Sleep(d) // a slow log: the connector must wait, not buffer
	}
	return nil
}

func (f *fakeRuntime) Checkpoint(ctx context.Context, offset map[string]any, durable func()) error {
	// Store it the way the offsets topic would: as JSON.
	b, err := json.Marshal(offset)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	f.mu.Lock()
	f.checkpoints = append(f.checkpoints, m)
	f.emittedAt = append(f.emittedAt, len(f.records))
	f.mu.Unlock()
	f.mu.Lock()
	hold := f.withholdDurable
	if hold {
		f.heldDurable = append(f.heldDurable, durable)
	}
	f.mu.Unlock()
	if !hold {
		durable()
	}
	return nil
}

// releaseDurable makes the withheld checkpoints durable, in order.
func (f *fakeRuntime) releaseDurable() {
	f.mu.Lock()
	held := f.heldDurable
	f.heldDurable, f.withholdDurable = nil, false
	f.mu.Unlock()
	for _, d := range held {
		d()
	}
}

func (f *fakeRuntime) Flush(ctx context.Context) error {
	f.mu.Lock()
	f.flushes++
	f.mu.Unlock()
	return ctx.Err()
}

func (f *fakeRuntime) Metrics() *source.Metrics { return f.metrics }
func (f *fakeRuntime) Logger() *slog.Logger     { return f.log }

func (f *fakeRuntime) setSlow(every int, d time.Duration) {
	f.mu.Lock()
	f.slowEvery, f.slowFor = every, d
	f.mu.Unlock()
}

// snapshotRecords returns a copy of the records so far.
func (f *fakeRuntime) snapshotRecords() []source.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]source.Record(nil), f.records...)
}

func (f *fakeRuntime) lastCheckpoint() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checkpoints) == 0 {
		return nil
	}
	return f.checkpoints[len(f.checkpoints)-1]
}

// event is a decoded record.
type event struct {
	Topic    string
	Key      map[string]any // nil for a null key
	Value    map[string]any // nil for a tombstone
	KeyID    int
	ValueID  int
	Op       string
	Before   map[string]any
	After    map[string]any
	Source   map[string]any
	RawKey   []byte
	RawValue []byte
}

func (f *fakeRuntime) decodeAll(t testing.TB, recs []source.Record) []event {
	t.Helper()
	dec := schema.NewDecoder(f)
	ctx := context.Background()
	out := make([]event, 0, len(recs))
	for i, r := range recs {
		e := event{Topic: r.Topic, RawKey: r.Key, RawValue: r.Value}
		if r.Key != nil {
			id, v, err := dec.Decode(ctx, r.Key)
			if err != nil {
				t.Fatalf("record %d (%s): decode key: %v", i, r.Topic, err)
			}
			e.KeyID, e.Key = id, v.(map[string]any)
		}
		if r.Value != nil {
			id, v, err := dec.Decode(ctx, r.Value)
			if err != nil {
				t.Fatalf("record %d (%s): decode value: %v", i, r.Topic, err)
			}
			e.ValueID, e.Value = id, v.(map[string]any)
			e.Op, _ = e.Value["op"].(string)
			e.Before, _ = e.Value["before"].(map[string]any)
			e.After, _ = e.Value["after"].(map[string]any)
			e.Source, _ = e.Value["source"].(map[string]any)
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

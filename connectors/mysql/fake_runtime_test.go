package mysql

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

// fakeRuntime is an in-memory source.Runtime for this package's tests:
// records and checkpoints are kept, every checkpoint is durable at once
// (stored as JSON, the way the offsets topic round-trips it), and schemas
// get ids from a map that refuses non-BACKWARD changes per subject.
type fakeRuntime struct {
	mu          sync.Mutex
	offset      map[string]any
	records     []source.Record
	checkpoints []map[string]any
	// checkpointAt[i] is len(records) when checkpoint i was taken.
	checkpointAt []int
	durables     int

	schemas  map[int]string
	ids      map[string]int
	subjects map[string][]string

	metrics *source.Metrics
	log     *slog.Logger
	logBuf  *lockedBuf
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newFakeRuntime(t testing.TB, offset map[string]any) *fakeRuntime {
	buf := &lockedBuf{}
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, testWriter{t})
	}
	return &fakeRuntime{
		offset:   offset,
		schemas:  map[int]string{},
		ids:      map[string]int{},
		subjects: map[string][]string{},
		metrics:  source.NewMetrics(nil),
		log:      slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		logBuf:   buf,
	}
}

func (f *fakeRuntime) Offset() map[string]any { return f.offset }

func (f *fakeRuntime) Codec(_ context.Context, t *schema.Table, src *schema.SourceBlock) (*schema.Codec, error) {
	c, err := schema.NewCodec(t, src)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
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

func (f *fakeRuntime) SchemaByID(_ context.Context, id int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.schemas[id]
	if !ok {
		return "", fmt.Errorf("no schema %d", id)
	}
	return s, nil
}

func (f *fakeRuntime) versions(subject string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subjects[subject])
}

func (f *fakeRuntime) Emit(ctx context.Context, r source.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.records = append(f.records, r)
	f.mu.Unlock()
	return nil
}

func (f *fakeRuntime) Checkpoint(_ context.Context, offset map[string]any, durable func()) error {
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
	f.checkpointAt = append(f.checkpointAt, len(f.records))
	f.mu.Unlock()
	durable()
	f.mu.Lock()
	f.durables++
	f.mu.Unlock()
	return nil
}

func (f *fakeRuntime) Flush(ctx context.Context) error { return ctx.Err() }

func (f *fakeRuntime) Metrics() *source.Metrics { return f.metrics }
func (f *fakeRuntime) Logger() *slog.Logger     { return f.log }

func (f *fakeRuntime) recs() []source.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]source.Record(nil), f.records...)
}

func (f *fakeRuntime) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.records)
}

func (f *fakeRuntime) lastCheckpoint() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checkpoints) == 0 {
		return nil
	}
	return f.checkpoints[len(f.checkpoints)-1]
}

// durableRecords are the records covered by the last checkpoint: what a
// crash right now would have kept.
func (f *fakeRuntime) durableRecords() ([]source.Record, map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checkpoints) == 0 {
		return nil, nil
	}
	n := f.checkpointAt[len(f.checkpointAt)-1]
	return append([]source.Record(nil), f.records[:n]...), f.checkpoints[len(f.checkpoints)-1]
}

// event is a decoded record.
type event struct {
	Topic  string
	Key    map[string]any
	Value  map[string]any
	Op     string
	Before map[string]any
	After  map[string]any
	Source map[string]any
}

func (f *fakeRuntime) decode(t testing.TB, recs []source.Record) []event {
	t.Helper()
	dec := schema.NewDecoder(f)
	ctx := context.Background()
	out := make([]event, 0, len(recs))
	for i, r := range recs {
		e := event{Topic: r.Topic}
		if r.Key != nil {
			_, v, err := dec.Decode(ctx, r.Key)
			if err != nil {
				t.Fatalf("record %d (%s): decode key: %v", i, r.Topic, err)
			}
			e.Key = v.(map[string]any)
		}
		if r.Value != nil {
			_, v, err := dec.Decode(ctx, r.Value)
			if err != nil {
				t.Fatalf("record %d (%s): decode value: %v", i, r.Topic, err)
			}
			e.Value = v.(map[string]any)
			e.Op, _ = e.Value["op"].(string)
			e.Before, _ = e.Value["before"].(map[string]any)
			e.After, _ = e.Value["after"].(map[string]any)
			e.Source, _ = e.Value["source"].(map[string]any)
		}
		out = append(out, e)
	}
	return out
}

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

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/tributary-cdc/tributary/broker"
	"github.com/tributary-cdc/tributary/schema"
)

// SchemaRegistry is the part of a Confluent-compatible registry client the
// runtime needs; *sr.Client satisfies it.
type SchemaRegistry interface {
	CreateSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error)
}

// OffsetStore loads and builds offset records; *offsets.Store satisfies it.
type OffsetStore interface {
	Load(ctx context.Context, connector, server string) (map[string]any, error)
	Record(connector, server string, offset map[string]any) (*kgo.Record, error)
}

// TopicEnsurer creates topics on first use; *broker.Topics satisfies it.
type TopicEnsurer interface {
	Ensure(ctx context.Context, spec broker.TopicSpec) error
}

// Deps are the shared services a source runs on.
type Deps struct {
	Client            *kgo.Client
	Topics            TopicEnsurer
	Registry          SchemaRegistry
	Offsets           OffsetStore
	Metrics           *Metrics
	Logger            *slog.Logger
	Partitions        int32
	ReplicationFactor int16
	// ShutdownTimeout bounds the final flush after the connector returns.
	ShutdownTimeout time.Duration
	// NewTxnClient, when set, turns on exactly-once: the source's events and
	// offsets go through a transactional client with this id (see txnRuntime).
	NewTxnClient func(transactionalID string) (*kgo.Client, error)
	// TxnInterval is how long a transaction stays open at most.
	TxnInterval time.Duration
	// MaxRecordBytes is log.max_record_bytes, for the error that names a
	// record above it.
	MaxRecordBytes int64
	// Requests, when set, routes on-demand snapshot requests to the
	// connector (SnapshotRequester).
	Requests *Requests
	// Progress, when set, receives snapshot progress for /status.
	Progress *ProgressBoard
	// SignalTopic, when set, is read for Debezium signals (signals.go).
	SignalTopic string
}

// Run runs one connector until ctx is done or it fails, then flushes what is
// acknowledged and commits its offset. server is the topic prefix (the
// "server" of the Connect offset key).
func Run(ctx context.Context, name, server string, c Connector, d Deps) error {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.ShutdownTimeout <= 0 {
		d.ShutdownTimeout = 30 * time.Second
	}
	off, err := d.Offsets.Load(ctx, name, server)
	if err != nil {
		return fmt.Errorf("source %s: loading committed offset: %w", name, err)
	}
	if off != nil {
		log.Info("resuming from committed offset", "offset", off)
	}
	rt := newRuntime(name, server, off, d, log)
	if d.Requests != nil {
		ch, unregister := d.Requests.register(name)
		defer unregister()
		rt.requests = ch
	}
	if d.SignalTopic != "" {
		if rt.requests == nil {
			rt.requests = make(chan SnapshotRequest, 16)
		}
		sctx, stop := context.WithCancel(ctx)
		signalsDone := make(chan struct{})
		go func() { defer close(signalsDone); rt.runSignals(sctx, d.SignalTopic) }()
		defer func() { stop(); <-signalsDone }()
	}
	if d.NewTxnClient != nil {
		return runTransactional(ctx, name, c, d, rt)
	}
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		rt.commitLoop()
	}()
	runErr := c.Run(ctx, rt)

	// Whatever the connector did, make acknowledged work durable so a
	// restart resumes as late as possible.
	fctx, cancel := context.WithTimeout(context.Background(), d.ShutdownTimeout)
	flushErr := rt.Flush(fctx)
	cancel()
	rt.stop()
	<-commitDone

	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("source %s: %w", name, runErr)
	}
	if flushErr != nil && !errors.Is(flushErr, context.Canceled) {
		return fmt.Errorf("source %s: final flush: %w", name, flushErr)
	}
	return nil
}

// epoch is the set of records emitted between two checkpoints.
type epoch struct {
	pending int
	closed  bool
	failed  bool
	offset  map[string]any
	durable func()
	// ack is the produce promise of this epoch's records, built once per
	// epoch: a closure per record was one of the few allocations per event.
	ack func(*kgo.Record, error)
}

type runtime struct {
	requests     chan SnapshotRequest
	signalNext   atomicInt64 // next signal topic offset to read, 0: none read
	name, server string
	d            Deps
	log          *slog.Logger
	offset       map[string]any

	codecMu sync.Mutex
	codecs  map[string]*schema.Codec

	mu        sync.Mutex
	cond      *sync.Cond // signalled when an epoch completes, commits, or an error happens
	queue     []*epoch   // closed epochs not yet committed, then the open one last
	err       error
	stopped   bool
	committed int // generation counter bumped by every commit
	counters  map[string]prometheus.Counter
	bytes     prometheus.Counter
	// recSlab hands out kgo.Records carved from one allocation per
	// recSlabSize records (guarded by mu); kgo holds each until its ack.
	recSlab []kgo.Record
	// freeSlabs keeps the kgo.Record slabs of acknowledged batches for the
	// next batches (guarded by mu), by capacity class (64 << class), up to
	// maxFreeRecords records in all. A sync.Pool lost them at every GC
	// cycle, and under a drain the cycles come every few milliseconds: it
	// allocated a slab per batch.
	freeSlabs   [slabClasses][]*[]kgo.Record
	freeRecords int
	// Acknowledged events of ackTopic not yet added to the counters.
	ackTopic  string
	ackEvents int
	ackBytes  int
}

const recSlabSize = 256

const (
	slabClasses = 7 // 64 to 4096 records
	// maxFreeRecords bounds the records kept for reuse: about 16 MiB of
	// kgo.Records (176 bytes each), fewer than max_in_flight_bytes holds
	// in flight when events are small.
	maxFreeRecords = 96 << 10
)

// slabClass is the smallest class holding n records, or -1 beyond the last.
func slabClass(n int) int {
	for c := range slabClasses {
		if n <= 64<<c {
			return c
		}
	}
	return -1
}

// getSlab returns an empty slab for n records. Called with mu held.
func (rt *runtime) getSlab(n int) *[]kgo.Record {
	c := slabClass(n)
	if c < 0 {
		s := make([]kgo.Record, 0, n)
		return &s
	}
	if free := rt.freeSlabs[c]; len(free) > 0 {
		rp := free[len(free)-1]
		free[len(free)-1] = nil
		rt.freeSlabs[c] = free[:len(free)-1]
		rt.freeRecords -= cap(*rp)
		return rp
	}
	s := make([]kgo.Record, 0, 64<<c)
	return &s
}

func (rt *runtime) putSlab(rp *[]kgo.Record) {
	c := slabClass(cap(*rp))
	if c < 0 || cap(*rp) != 64<<c {
		return
	}
	rt.mu.Lock()
	if rt.freeRecords+cap(*rp) <= maxFreeRecords {
		rt.freeSlabs[c] = append(rt.freeSlabs[c], rp)
		rt.freeRecords += cap(*rp)
	}
	rt.mu.Unlock()
}

func newRuntime(name, server string, off map[string]any, d Deps, log *slog.Logger) *runtime {
	rt := &runtime{
		name: name, server: server, d: d, log: log, offset: off,
		codecs:   map[string]*schema.Codec{},
		queue:    []*epoch{{}},
		counters: map[string]prometheus.Counter{},
		bytes:    d.Metrics.BytesProduced.WithLabelValues(name),
	}
	// Present from the start, so an alert on a rising count also sees zero.
	d.Metrics.ProducerErrors.WithLabelValues(name)
	rt.cond = sync.NewCond(&rt.mu)
	return rt
}

var _ Runtime = (*runtime)(nil)

func (rt *runtime) Offset() map[string]any { return rt.offset }
func (rt *runtime) Metrics() *Metrics      { return rt.d.Metrics }
func (rt *runtime) Logger() *slog.Logger   { return rt.log }
func (rt *runtime) open() *epoch           { return rt.queue[len(rt.queue)-1] }
func (rt *runtime) fail(err error) {
	if rt.err == nil {
		rt.err = err
	}
	rt.cond.Broadcast()
}

func (rt *runtime) Codec(ctx context.Context, t *schema.Table, src *schema.SourceBlock) (*schema.Codec, error) {
	c, err := schema.NewCodec(t, src)
	if err != nil {
		return nil, fmt.Errorf("building schema for %s: %w", t.Topic, err)
	}
	cacheKey := t.Topic + "\x00" + c.KeySchema() + "\x00" + c.ValueSchema()
	rt.codecMu.Lock()
	defer rt.codecMu.Unlock()
	if cached, ok := rt.codecs[cacheKey]; ok {
		return cached, nil
	}
	if err := rt.d.Topics.Ensure(ctx, broker.TopicSpec{
		// Kafka refuses null keys on compacted topics, so a table without a
		// key (and without key_columns) gets a delete-policy topic.
		Name: t.Topic, Partitions: rt.d.Partitions, ReplicationFactor: rt.d.ReplicationFactor, Compacted: len(t.Key) > 0,
		Records: true,
	}); err != nil {
		return nil, err
	}
	keyID := 0
	if ks := c.KeySchema(); ks != "" {
		if keyID, err = rt.register(ctx, t.Topic+"-key", ks); err != nil {
			return nil, err
		}
	}
	valueID, err := rt.register(ctx, t.Topic+"-value", c.ValueSchema())
	if err != nil {
		return nil, err
	}
	c.SetIDs(keyID, valueID)
	rt.codecs[cacheKey] = c
	rt.log.Info("schema registered", "topic", t.Topic, "key_id", keyID, "value_id", valueID)
	return c, nil
}

func (rt *runtime) register(ctx context.Context, subject, text string) (int, error) {
	ss, err := rt.d.Registry.CreateSchema(ctx, subject, sr.Schema{Schema: text, Type: sr.TypeAvro})
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
			return 0, fmt.Errorf("schema change is not compatible with subject %s (%s); "+
				"the registry refused it: %w", subject, "BACKWARD", err)
		}
		return 0, fmt.Errorf("registering schema for subject %s: %w", subject, err)
	}
	return ss.ID, nil
}

func (rt *runtime) Emit(ctx context.Context, r Record) error {
	rt.mu.Lock()
	if rt.err != nil {
		err := rt.err
		rt.mu.Unlock()
		return err
	}
	ep := rt.open()
	ep.pending++
	if ep.ack == nil {
		ep.ack = func(rec *kgo.Record, err error) { rt.acked(ep, rec, err) }
	}
	if len(rt.recSlab) == 0 {
		rt.recSlab = make([]kgo.Record, recSlabSize)
	}
	rec := &rt.recSlab[0]
	rt.recSlab = rt.recSlab[1:]
	rt.mu.Unlock()

	rec.Topic, rec.Key, rec.Value = r.Topic, r.Key, r.Value
	// Once emitted, a record belongs to the runtime: a connector cancelling
	// the context of one phase (say, its snapshot workers) must not abort
	// records still buffered. Shutdown aborts them by closing the client.
	rt.d.Client.Produce(context.Background(), rec, ep.ack) // not ctx: see above; Background also avoids an allocation per record
	return nil
}

// BatchEmitter is implemented by the Runtime that Run hands to connectors
// (check with a type assertion). EmitBatch emits rs in order, exactly as
// many Emit calls would, but takes the runtime's lock and reads the clock
// once for the batch: the records get the same log timestamp (Kafka's
// CreateTime). Bulk readers such as snapshots use it. The slice rs may be
// reused once EmitBatch returns.
type BatchEmitter interface {
	EmitBatch(ctx context.Context, rs []Record) error
}

// BatchDoneEmitter is implemented by the same Runtime. EmitBatchDone is
// EmitBatch, and done, if not nil, runs once the log has acknowledged or
// refused every record of rs: from then on nothing refers to their Key and
// Value bytes, which the caller may reuse (a snapshot recycles its record
// buffers this way). If EmitBatchDone returns an error, nothing was emitted
// and done does not run.
type BatchDoneEmitter interface {
	EmitBatchDone(ctx context.Context, rs []Record, done func()) error
}

var (
	_ BatchEmitter     = (*runtime)(nil)
	_ BatchDoneEmitter = (*runtime)(nil)
)

func (rt *runtime) EmitBatch(ctx context.Context, rs []Record) error {
	return rt.EmitBatchDone(ctx, rs, nil)
}

func (rt *runtime) EmitBatchDone(ctx context.Context, rs []Record, done func()) error {
	if len(rs) == 0 {
		if done != nil {
			done()
		}
		return nil
	}
	rt.mu.Lock()
	if rt.err != nil {
		err := rt.err
		rt.mu.Unlock()
		return err
	}
	ep := rt.open()
	ep.pending += len(rs)
	if ep.ack == nil {
		ep.ack = func(rec *kgo.Record, err error) { rt.acked(ep, rec, err) }
	}
	ack := ep.ack
	var recs []kgo.Record
	if done != nil {
		// The batch's kgo.Records come from freeSlabs and go back once
		// all are acknowledged (kgo no longer refers to them): a slab of
		// records per batch was a large allocation the GC had to scan.
		rp := rt.getSlab(len(rs))
		recs = (*rp)[:len(rs)]
		// One closure per batch: acknowledgements arrive on kgo's
		// goroutines, so the count is atomic.
		left := new(atomic.Int64)
		left.Store(int64(len(rs)))
		ack = func(rec *kgo.Record, err error) {
			rt.acked(ep, rec, err)
			if left.Add(-1) == 0 {
				clear(recs)
				rt.putSlab(rp)
				done()
			}
		}
	} else {
		if len(rt.recSlab) < len(rs) {
			rt.recSlab = make([]kgo.Record, max(recSlabSize, len(rs)))
		}
		recs = rt.recSlab[:len(rs):len(rs)]
		rt.recSlab = rt.recSlab[len(rs):]
	}
	rt.mu.Unlock()

	// kgo reads the clock for every record without a timestamp; one read
	// per batch is as exact for records emitted together.
	now := time.Now()
	for i := range rs {
		rec := &recs[i]
		rec.Topic, rec.Key, rec.Value, rec.Timestamp = rs[i].Topic, rs[i].Key, rs[i].Value, now
		rt.d.Client.Produce(context.Background(), rec, ack) // see Emit
	}
	return nil
}

func (rt *runtime) acked(ep *epoch, rec *kgo.Record, err error) {
	if err != nil {
		err = tooLarge(rt.d.Registry, rt.d.MaxRecordBytes, rec, err)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	ep.pending--
	if err != nil {
		ep.failed = true
		rt.d.Metrics.ProducerErrors.WithLabelValues(rt.name).Inc()
		if rt.err == nil {
			rt.log.Error("the log refused a record; the source stops without acknowledging this position", "topic", rec.Topic, "error", err)
		}
		rt.fail(fmt.Errorf("producing to %s: %w", rec.Topic, err))
		return
	}
	// Counted here and added to the Prometheus counters in bulk (their
	// atomic adds were a visible cost per event): every ackFlushEvery
	// events, whenever a topic changes, and whenever the epoch has nothing
	// left in flight, so the counters are exact whenever the log is idle.
	if rec.Topic != rt.ackTopic {
		rt.flushAckCounts()
		rt.ackTopic = rec.Topic
	}
	rt.ackEvents++
	rt.ackBytes += len(rec.Key) + len(rec.Value)
	// The record stays in its slab until the slab is used up: drop its
	// bytes now, or a large value stays alive after the log has it.
	rec.Key, rec.Value = nil, nil
	if rt.ackEvents >= ackFlushEvery || ep.pending == 0 {
		rt.flushAckCounts()
	}
	if ep.pending == 0 && ep.closed {
		rt.cond.Broadcast()
	}
}

const ackFlushEvery = 1024

// flushAckCounts adds the acknowledged events not yet counted to the
// metrics. Called with mu held.
func (rt *runtime) flushAckCounts() {
	if rt.ackEvents == 0 {
		return
	}
	c, ok := rt.counters[rt.ackTopic]
	if !ok {
		c = rt.d.Metrics.EventsProduced.WithLabelValues(rt.name, rt.ackTopic)
		rt.counters[rt.ackTopic] = c
	}
	c.Add(float64(rt.ackEvents))
	rt.bytes.Add(float64(rt.ackBytes))
	rt.ackEvents, rt.ackBytes = 0, 0
}

func (rt *runtime) Checkpoint(_ context.Context, offset map[string]any, durable func()) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.err != nil {
		return rt.err
	}
	ep := rt.open()
	ep.closed, ep.offset, ep.durable = true, rt.withSignal(offset), durable
	rt.queue = append(rt.queue, &epoch{})
	if ep.pending == 0 {
		rt.cond.Broadcast()
	}
	return nil
}

// ready pops the leading run of complete epochs. Called with mu held.
func (rt *runtime) ready() []*epoch {
	n := 0
	for n < len(rt.queue)-1 {
		ep := rt.queue[n]
		if !ep.closed || ep.pending > 0 || ep.failed {
			break
		}
		n++
	}
	if n == 0 {
		return nil
	}
	eps := append([]*epoch(nil), rt.queue[:n]...)
	rt.queue = append(rt.queue[:0:0], rt.queue[n:]...)
	return eps
}

// commitLoop writes the offset of the latest complete checkpoint, then
// runs durable callbacks. Offsets are coalesced: while one write is in
// flight, later checkpoints pile up and are committed by the next one.
func (rt *runtime) commitLoop() {
	for {
		rt.mu.Lock()
		var eps []*epoch
		for {
			if eps = rt.ready(); eps != nil || rt.stopped || rt.err != nil {
				break
			}
			rt.cond.Wait()
		}
		rt.mu.Unlock()
		if eps == nil {
			return
		}
		last := eps[len(eps)-1]
		rec, err := rt.d.Offsets.Record(rt.name, rt.server, last.offset)
		if err == nil {
			err = rt.d.Client.ProduceSync(context.Background(), rec).FirstErr()
		}
		if err != nil {
			rt.mu.Lock()
			rt.fail(fmt.Errorf("committing offset %v: %w", last.offset, err))
			rt.mu.Unlock()
			return
		}
		for _, ep := range eps {
			if ep.durable != nil {
				ep.durable()
			}
		}
		rt.mu.Lock()
		rt.committed++
		rt.cond.Broadcast()
		rt.mu.Unlock()
	}
}

func (rt *runtime) Flush(ctx context.Context) error {
	// Wake waiters when ctx ends; sync.Cond has no context support.
	stop := context.AfterFunc(ctx, func() {
		rt.mu.Lock()
		rt.cond.Broadcast()
		rt.mu.Unlock()
	})
	defer stop()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for {
		if rt.err != nil {
			return rt.err
		}
		if len(rt.queue) == 1 && rt.open().pending == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for %d unacknowledged checkpoints: %w", len(rt.queue)-1, err)
		}
		rt.cond.Wait()
	}
}

func (rt *runtime) stop() {
	rt.mu.Lock()
	rt.stopped = true
	rt.cond.Broadcast()
	rt.mu.Unlock()
}

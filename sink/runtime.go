package sink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Deps are the shared services a sink runs on.
type Deps struct {
	// NewClient builds a Kafka client with the worker's connection settings
	// plus opts (the sink's consumer options). The sink closes it.
	NewClient func(opts ...kgo.Opt) (*kgo.Client, error)
	// Decoder resolves schema ids and decodes Avro payloads.
	Decoder Decoder
	Metrics *Metrics
	Logger  *slog.Logger
	// TopicsChanged, when set, receives when a topic was created by a
	// source of the same worker: the sink looks for new topics at once
	// instead of at its next topic_refresh_interval, so the first rows of a
	// fresh pipeline reach the copy without waiting for it.
	TopicsChanged <-chan struct{}
}

// GroupName is the consumer group whose offsets the sink commits after each
// batch, only so that lag shows in standard Kafka tools. The sink never
// consumes through the group: its positions live in the target database.
func GroupName(sink string) string { return "tributary-sink-" + sink }

// Run consumes the spec's topics and applies them to target until ctx is
// done (it then applies what it has already consumed and returns nil) or
// a failure stops it (returned, naming what and where). The target is
// connected by Run and closed when Run returns.
func Run(ctx context.Context, spec Spec, target Target, deps Deps) error {
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("sink %s: invalid config: %w", spec.Name, err)
	}
	spec = spec.withDefaults()
	if deps.NewClient == nil || deps.Decoder == nil {
		return fmt.Errorf("sink %s: Deps.NewClient and Deps.Decoder are required", spec.Name)
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("sink", spec.Name)
	m := deps.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	r := &runner{
		spec:      spec,
		target:    target,
		deps:      deps,
		log:       log,
		m:         m,
		known:     map[TopicPartition]bool{},
		committed: map[TopicPartition]int64{},
		missing:   map[string]bool{},

		unavailLogged: map[string]bool{},
		skipped:       map[string]bool{},
	}
	if spec.TopicsRegex != "" {
		r.regex = regexp.MustCompile("^(?:" + spec.TopicsRegex + ")$")
	}
	format := spec.TableNameFormat
	if format == "" {
		format = target.DefaultTableNameFormat()
	}
	r.dec = &decoder{
		sink:      spec.Name,
		dec:       deps.Decoder,
		log:       log,
		format:    format,
		split:     true,
		insert:    spec.InsertMode == "insert",
		include:   newFieldFilter(spec.FieldsInclude),
		exclude:   newFieldFilter(spec.FieldsExclude),
		envelopes: map[int]*envelopeInfo{},
		keys:      map[int]*keyInfo{},
		tables:    map[string]*tableState{},
		bindings:  map[bindingKey]*binding{},
	}
	r.dec.quiesce = func() {
		if r.inflight != nil {
			<-r.inflight.done
		}
	}
	r.resetBatch()
	// The apply of a batch runs under its own context: one still applying
	// when ctx ends gets ShutdownTimeout to commit (see shutdown).
	r.jobCtx, r.jobCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer r.jobCancel()
	defer target.Close()
	err := r.run(ctx)
	if err != nil {
		m.Errors.WithLabelValues(spec.Name).Inc()
	}
	return err
}

type runner struct {
	spec   Spec
	target Target
	deps   Deps
	log    *slog.Logger
	m      *Metrics
	regex  *regexp.Regexp
	dec    *decoder
	cl     *kgo.Client
	adm    *kadm.Client

	known     map[TopicPartition]bool
	committed map[TopicPartition]int64 // next offsets stored in the target
	missing   map[string]bool          // listed topics not yet created (logged once)
	skipped   map[string]bool          // non-change topics the regex matches (logged once)
	dlqReady  bool
	// startedBefore is true once the sink stored its first positions.
	startedBefore bool
	// unavailLogged holds the tables whose unknown unchanged-TOAST values
	// were logged (only the goroutine applying batches, one at a time,
	// touches it).
	unavailLogged map[string]bool

	b batch

	// One batch applies in the background while the next is consumed and
	// decoded, so the target's work overlaps the sink's own. A batch is
	// handed over only after the previous one committed: batches commit in
	// log order, and a failed batch stops the sink before anything after it
	// is applied.
	inflight *job
	// woken is set when TopicsChanged fired; pollCancel ends the poll
	// waiting meanwhile, so discovery runs at once.
	woken      atomic.Bool
	pollMu     sync.Mutex
	pollCancel context.CancelFunc

	// spare holds the change slices of the last committed batch, emptied,
	// for the next batches to fill without growing new ones.
	spare     map[*tableState][]Change
	jobCtx    context.Context
	jobCancel context.CancelFunc
}

// batch is what was consumed since the last commit.
type batch struct {
	records int
	first   time.Time
	next    map[TopicPartition]int64
	changes map[*tableState][]Change
	order   []*tableState
	dlq     []*kgo.Record
	// reduced holds each table's changes after reduce, set at hand-over.
	reduced map[*tableState][]Change
	// slab holds the batch's Records, allocated together.
	slab []Record
}

// job is a batch being applied in the background.
type job struct {
	b      *batch
	done   chan struct{}
	start  time.Time
	counts map[Op]int
	err    error
}

func (r *runner) resetBatch() {
	r.b = batch{next: map[TopicPartition]int64{}, changes: map[*tableState][]Change{}}
}

func (r *runner) run(ctx context.Context) error {
	name := r.spec.Name
	if err := r.target.Connect(ctx); err != nil {
		return fmt.Errorf("sink %s: %w", name, err)
	}
	stored, err := r.loadOffsets(ctx)
	if err != nil {
		return fmt.Errorf("sink %s: loading offsets from %s: %w", name, OffsetsTable, err)
	}
	// The marker row says the sink started before: "start: latest" only
	// applies to its very first start.
	marker := TopicPartition{Topic: "", Partition: -1}
	_, r.startedBefore = stored[marker]
	delete(stored, marker)
	r.committed = stored
	if len(stored) > 0 {
		r.log.Info("resuming from offsets stored in the target", "partitions", len(stored))
	}
	cl, err := r.deps.NewClient(
		kgo.FetchMaxBytes(r.spec.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(r.spec.FetchMaxBytes, 8<<20)),
		// A stored offset below the log start means records were deleted
		// before this copy applied them: say so instead of silently
		// resetting (invariant 7).
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers (sources with exactly_once) take offsets too:
		// the sink moves its stored position past them, so its lag and a
		// replay's "reached the head" are exact.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return fmt.Errorf("sink %s: creating Kafka client: %w", name, err)
	}
	r.cl = cl
	r.adm = kadm.NewClient(cl)
	defer cl.Close()
	// Never leave a batch applying behind: the client and the target close
	// when run returns.
	defer r.drain()

	if err := r.discover(ctx, true); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sink %s: %w", name, err)
	}
	if ch := r.deps.TopicsChanged; ch != nil {
		go r.watchTopics(ctx, ch)
	}
	nextRefresh := time.Now().Add(r.spec.TopicRefreshInterval)
	// After a source of this worker created a topic, look again a few
	// times in quick succession until fastUntil: the new topic may take a
	// moment to show in the cluster's metadata.
	var fastUntil time.Time
	for {
		if ctx.Err() != nil {
			return r.shutdown(ctx)
		}
		if r.inflight != nil && r.inflight.finished() {
			if err := r.await(); err != nil {
				return r.stopped(ctx, err)
			}
		}
		if r.woken.Swap(false) {
			nextRefresh = time.Now()
			fastUntil = time.Now().Add(fastRefreshFor)
		}
		wait := time.Until(nextRefresh)
		if r.b.records > 0 {
			wait = min(wait, time.Until(r.b.first.Add(r.spec.FlushInterval)))
		}
		if err := r.poll(ctx, max(wait, time.Millisecond)); err != nil {
			if ctx.Err() != nil {
				return r.shutdown(ctx)
			}
			return err
		}
		if r.b.records >= r.spec.BatchSize || r.b.records > 0 && time.Since(r.b.first) >= r.spec.FlushInterval {
			if err := r.flush(ctx, false); err != nil {
				return r.stopped(ctx, err)
			}
		}
		if !time.Now().Before(nextRefresh) {
			if err := r.discover(ctx, false); err != nil {
				if ctx.Err() != nil {
					return r.shutdown(ctx)
				}
				r.log.Warn("looking for new topics and partitions failed; will retry", "err", err)
			}
			nextRefresh = time.Now().Add(r.spec.TopicRefreshInterval)
			if time.Now().Before(fastUntil) {
				nextRefresh = time.Now().Add(min(fastRefreshEvery, r.spec.TopicRefreshInterval))
			}
		}
	}
}

func isRecordError(err error) bool {
	var re *RecordError
	return errors.As(err, &re)
}

// stopped is what run returns when applying a batch failed: nothing when
// the failure came from stopping (the batch rolled back and is applied again
// on restart), else the error.
func (r *runner) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && !isRecordError(err) {
		r.log.Info("stopped while applying a batch; it was rolled back and will be applied again on restart")
		return nil
	}
	return err
}

// shutdown applies what was consumed, within ShutdownTimeout.
func (r *runner) shutdown(ctx context.Context) error {
	stop := time.AfterFunc(r.spec.ShutdownTimeout, r.jobCancel)
	defer stop.Stop()
	if err := r.await(); err != nil {
		// What was consumed after the failed batch is not applied: it
		// would move the offsets past the rolled-back records.
		return r.stopped(ctx, err)
	}
	if r.b.records == 0 {
		return nil
	}
	if err := r.flush(ctx, true); err != nil {
		if isRecordError(err) {
			return err
		}
		return fmt.Errorf("sink %s: final flush on shutdown: %w", r.spec.Name, err)
	}
	return nil
}

func (r *runner) loadOffsets(ctx context.Context) (map[TopicPartition]int64, error) {
	tx, err := r.target.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	offs, err := tx.LoadOffsets(ctx, r.spec.Name)
	if err != nil {
		return nil, err
	}
	if offs == nil {
		offs = map[TopicPartition]int64{}
	}
	return offs, nil
}

// discover finds the partitions to consume and starts the new ones at their
// stored offset, or where Spec.Start says.
func (r *runner) discover(ctx context.Context, first bool) error {
	var names []string
	if r.regex == nil {
		names = r.spec.Topics
	}
	details, err := listTopicsNow(ctx, r.cl, names)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	add := map[string]map[int32]kgo.Offset{}
	var atEnd []string
	for _, topic := range details.Names() {
		td := details[topic]
		if r.regex != nil {
			if !r.regex.MatchString(topic) {
				continue
			}
			if why := r.spec.skipReason(topic); why != "" {
				if !r.skipped[topic] {
					r.skipped[topic] = true
					r.log.Info("topic matches topics_regex but carries no change events; not consumed", "topic", topic, "why", why)
				}
				continue
			}
		}
		if td.Err != nil {
			if errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				if !r.missing[topic] {
					r.missing[topic] = true
					r.log.Info("topic does not exist yet; it will be consumed from its start once created", "topic", topic)
				}
				continue
			}
			return fmt.Errorf("topic %s: %w", topic, td.Err)
		}
		for _, p := range td.Partitions.Numbers() {
			tp := TopicPartition{topic, p}
			if r.known[tp] {
				continue
			}
			var off kgo.Offset
			if next, ok := r.committed[tp]; ok {
				off = kgo.NewOffset().At(next)
			} else if first && r.spec.Start == "latest" && !r.startedBefore {
				if !slices.Contains(atEnd, topic) {
					atEnd = append(atEnd, topic)
				}
				continue
			} else {
				off = kgo.NewOffset().AtStart()
			}
			if add[topic] == nil {
				add[topic] = map[int32]kgo.Offset{}
			}
			add[topic][p] = off
		}
	}
	if first && !r.startedBefore {
		if err := r.startAtEnd(ctx, atEnd, add); err != nil {
			return err
		}
	}
	n := 0
	for topic, ps := range add {
		for p := range ps {
			r.known[TopicPartition{topic, p}] = true
			n++
		}
	}
	if n > 0 {
		r.log.Info("consuming partitions", "new", n, "total", len(r.known))
		r.cl.AddConsumePartitions(add)
	}
	return nil
}

// listTopicsNow is kadm's ListTopics without its metadata cache: kadm
// answers from metadata up to MetadataMinAge (5 s) old, so a topic created
// just after the last look would stay unseen that long, while a sink woken
// by its worker's source must see it at once. names nil lists every topic
// (internal ones excluded, as kadm does).
func listTopicsNow(ctx context.Context, cl *kgo.Client, names []string) (kadm.TopicDetails, error) {
	req := kmsg.NewPtrMetadataRequest()
	// A listed topic that does not exist yet must not be created here with
	// the broker's defaults: its source creates it, compacted.
	req.AllowAutoTopicCreation = false
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := make(kadm.TopicDetails, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil || names == nil && t.IsInternal {
			continue
		}
		td := kadm.TopicDetail{Topic: *t.Topic, IsInternal: t.IsInternal, Partitions: kadm.PartitionDetails{}, Err: kerr.ErrorForCode(t.ErrorCode)}
		for _, p := range t.Partitions {
			td.Partitions[p.Partition] = kadm.PartitionDetail{Topic: *t.Topic, Partition: p.Partition, Leader: p.Leader, Err: kerr.ErrorForCode(p.ErrorCode)}
		}
		out[*t.Topic] = td
	}
	return out, nil
}

// startAtEnd runs on the sink's very first start. It resolves "start:
// latest" to exact offsets and stores them at once, so a restart continues
// from there instead of skipping what was written while the sink was down,
// and stores the marker row (topic "", partition -1) that says the sink has
// started, so partitions that appear later are read from their start.
func (r *runner) startAtEnd(ctx context.Context, topics []string, add map[string]map[int32]kgo.Offset) error {
	store := map[TopicPartition]int64{{Topic: "", Partition: -1}: 0}
	if len(topics) > 0 {
		ends, err := r.adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return fmt.Errorf("listing end offsets for start: latest: %w", err)
		}
		if err := ends.Error(); err != nil {
			return fmt.Errorf("listing end offsets for start: latest: %w", err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			tp := TopicPartition{o.Topic, o.Partition}
			if r.known[tp] {
				return
			}
			if _, ok := r.committed[tp]; ok {
				return
			}
			store[tp] = o.Offset
			if add[o.Topic] == nil {
				add[o.Topic] = map[int32]kgo.Offset{}
			}
			add[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
		})
	}
	tx, err := r.target.Begin(ctx)
	if err != nil {
		return fmt.Errorf("storing start offsets: %w", err)
	}
	if err := tx.StoreOffsets(ctx, r.spec.Name, store); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return fmt.Errorf("storing start offsets: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("storing start offsets: %w", err)
	}
	for tp, o := range store {
		if tp.Partition >= 0 {
			r.committed[tp] = o
		}
	}
	r.startedBefore = true
	return nil
}

// After a topic was created by a source of the worker, topics are looked
// for every fastRefreshEvery for fastRefreshFor.
const (
	fastRefreshEvery = 200 * time.Millisecond
	fastRefreshFor   = 3 * time.Second
)

// watchTopics turns each receive on ch into an immediate topic discovery:
// it marks the runner woken and ends the poll in progress.
func (r *runner) watchTopics(ctx context.Context, ch <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			r.woken.Store(true)
			r.pollMu.Lock()
			if r.pollCancel != nil {
				r.pollCancel()
			}
			r.pollMu.Unlock()
		}
	}
}

// poll waits up to wait for records and adds them to the batch.
func (r *runner) poll(ctx context.Context, wait time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r.pollMu.Lock()
	r.pollCancel = cancel
	r.pollMu.Unlock()
	defer func() {
		r.pollMu.Lock()
		r.pollCancel = nil
		r.pollMu.Unlock()
	}()
	if r.woken.Load() {
		return nil // discover first
	}
	n := min(r.spec.MaxPollRecords, r.spec.BatchSize-r.b.records)
	if n <= 0 {
		return nil
	}
	fetches := r.cl.PollRecords(pctx, n)
	if fetches.IsClientClosed() {
		return fmt.Errorf("sink %s: Kafka client closed", r.spec.Name)
	}
	for _, fe := range fetches.Errors() {
		switch {
		case errors.Is(fe.Err, context.DeadlineExceeded), errors.Is(fe.Err, context.Canceled):
		case errors.Is(fe.Err, kerr.OffsetOutOfRange):
			next, ok := r.committed[TopicPartition{fe.Topic, fe.Partition}]
			where := "its start"
			if ok {
				where = "offset " + strconv.FormatInt(next, 10)
			}
			return fmt.Errorf("sink %s: topic %s partition %d: %s, where this sink resumes, is no longer in the log (records were deleted by retention before the sink applied them); replay the sink from offset zero: %w",
				r.spec.Name, fe.Topic, fe.Partition, where, fe.Err)
		default:
			r.log.Warn("fetch error; the client retries", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	var addErr error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if addErr != nil || len(p.Records) == 0 {
			return
		}
		n := 0
		for _, kr := range p.Records {
			if addErr = r.add(ctx, kr); addErr != nil {
				break
			}
			n++
		}
		// Counted per partition, not per record: a labelled counter lookup
		// per record showed in profiles.
		r.m.Records.WithLabelValues(r.spec.Name, p.Topic).Add(float64(n))
		if addErr != nil {
			return
		}
		last := p.Records[len(p.Records)-1].Offset + 1
		r.m.Lag.WithLabelValues(r.spec.Name, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(p.HighWatermark-last, 0)))
	})
	return addErr
}

// add decodes one record into the batch.
func (r *runner) add(ctx context.Context, kr *kgo.Record) error {
	if kr.Attrs.IsControl() {
		if r.b.records == 0 {
			r.b.first = time.Now()
		}
		r.b.records++
		r.b.next[TopicPartition{kr.Topic, kr.Partition}] = kr.Offset + 1
		return nil
	}
	if len(r.b.slab) == cap(r.b.slab) {
		r.b.slab = make([]Record, 0, min(r.spec.BatchSize, 1024))
	}
	r.b.slab = append(r.b.slab, Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Key: kr.Key, Value: kr.Value})
	rec := &r.b.slab[len(r.b.slab)-1]
	for _, h := range kr.Headers {
		rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: h.Value})
	}
	if r.b.records == 0 {
		r.b.first = time.Now()
	}
	r.b.records++
	r.b.next[TopicPartition{kr.Topic, kr.Partition}] = kr.Offset + 1
	t, ch, err := r.dec.decode(ctx, rec)
	if err != nil {
		var re *recordErr
		if errors.As(err, &re) {
			return r.reject(&r.b, rec, re.stage, re.err)
		}
		return fmt.Errorf("sink %s: record at %s: %w", r.spec.Name, rec.where(), err)
	}
	if ch == nil {
		return nil
	}
	if _, ok := r.b.changes[t]; !ok {
		r.b.order = append(r.b.order, t)
		if cs, ok := r.spare[t]; ok {
			r.b.changes[t] = cs
			delete(r.spare, t)
		}
	}
	r.b.changes[t] = append(r.b.changes[t], *ch)
	return nil
}

// reject handles a record that cannot be applied: the error that stops the
// sink, or a dead letter of batch b.
func (r *runner) reject(b *batch, rec *Record, stage string, cause error) error {
	rec.keyText()
	if r.spec.ErrorsTolerance != "all" {
		return &RecordError{Sink: r.spec.Name, Record: rec, Stage: stage, Err: cause}
	}
	r.log.Warn("record sent to the dead-letter topic", "dlq", r.spec.DLQTopic, "topic", rec.Topic,
		"partition", rec.Partition, "offset", rec.Offset, "key", rec.keyText(), "stage", stage, "err", cause)
	b.dlq = append(b.dlq, r.deadLetter(rec, stage, cause))
	r.m.DeadLetters.WithLabelValues(r.spec.Name, rec.Topic).Inc()
	return nil
}

// Dead-letter headers, as Kafka Connect writes them with
// errors.deadletterqueue.context.headers.enable=true.
const (
	HeaderErrTopic          = "__connect.errors.topic"
	HeaderErrPartition      = "__connect.errors.partition"
	HeaderErrOffset         = "__connect.errors.offset"
	HeaderErrConnector      = "__connect.errors.connector.name"
	HeaderErrTask           = "__connect.errors.task.id"
	HeaderErrStage          = "__connect.errors.stage"
	HeaderErrClass          = "__connect.errors.class.name"
	HeaderErrExceptionClass = "__connect.errors.exception.class.name"
	HeaderErrExceptionMsg   = "__connect.errors.exception.message"
)

func (r *runner) deadLetter(rec *Record, stage string, cause error) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers)+9)
	for _, h := range rec.Headers {
		hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderErrTopic, rec.Topic)
	add(HeaderErrPartition, strconv.Itoa(int(rec.Partition)))
	add(HeaderErrOffset, strconv.FormatInt(rec.Offset, 10))
	add(HeaderErrConnector, r.spec.Name)
	add(HeaderErrTask, "0")
	add(HeaderErrStage, stage)
	add(HeaderErrClass, fmt.Sprintf("%T", r.target))
	add(HeaderErrExceptionClass, fmt.Sprintf("%T", rootCause(cause)))
	add(HeaderErrExceptionMsg, cause.Error())
	return &kgo.Record{Topic: r.spec.DLQTopic, Key: rec.Key, Value: rec.Value, Headers: hs}
}

// flush hands the batch over to be applied, with its offsets, in one target
// transaction, after the previous batch committed. wait waits for the
// commit.
func (r *runner) flush(ctx context.Context, wait bool) error {
	if err := r.await(); err != nil {
		return err
	}
	if r.b.records == 0 {
		return nil
	}
	// Table DDL and reduce run here, with no batch applying: the decoder
	// changes table specs when a new schema version appears, and the
	// target must not read them meanwhile.
	for _, t := range r.b.order {
		if t.ensured || len(t.spec.Columns) == 0 {
			// No columns: only truncates of a table this run has not seen
			// rows of; the target truncates it if it exists.
			continue
		}
		if err := r.target.EnsureTable(r.jobCtx, t.spec); err != nil {
			return fmt.Errorf("sink %s: creating or evolving table %s: %w", r.spec.Name, t.spec.QualifiedName(), err)
		}
		t.ensured = true
	}
	b := r.b
	b.reduced = make(map[*tableState][]Change, len(b.order))
	for _, t := range b.order {
		b.reduced[t] = reduce(t, b.changes[t])
	}
	r.resetBatch()
	j := &job{b: &b, done: make(chan struct{}), start: time.Now()}
	r.inflight = j
	go func() {
		defer close(j.done)
		j.counts, j.err = r.applyBatch(r.jobCtx, j.b)
	}()
	if wait {
		return r.await()
	}
	return nil
}

func (j *job) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// await waits for the batch being applied, if any, and records its commit.
func (r *runner) await() error {
	j := r.inflight
	if j == nil {
		return nil
	}
	<-j.done
	r.inflight = nil
	if j.err != nil {
		if isRecordError(j.err) {
			return j.err
		}
		return fmt.Errorf("sink %s: %w", r.spec.Name, j.err)
	}
	for tp, o := range j.b.next {
		r.committed[tp] = o
	}
	r.spare = make(map[*tableState][]Change, len(j.b.changes))
	for t, cs := range j.b.changes {
		clear(cs)
		r.spare[t] = cs[:0]
	}
	return nil
}

// drain stops and waits for a batch still applying when run returns.
func (r *runner) drain() {
	if r.inflight != nil {
		if !r.inflight.finished() {
			r.jobCancel()
		}
		<-r.inflight.done
		r.inflight = nil
	}
}

// applyBatch applies one batch and its offsets; it runs in the background
// and touches only b, the target and thread-safe clients.
func (r *runner) applyBatch(ctx context.Context, b *batch) (map[Op]int, error) {
	start := time.Now()
	counts, err := r.apply(ctx, b, false)
	if err != nil && ctx.Err() == nil && r.target.Rejected(err) {
		r.log.Info("the target rejected a change of the batch; applying it change by change to find it", "err", err)
		counts, err = r.apply(ctx, b, true)
	}
	if err != nil {
		return nil, err
	}
	r.m.Batches.WithLabelValues(r.spec.Name).Inc()
	r.m.BatchSeconds.WithLabelValues(r.spec.Name).Observe(time.Since(start).Seconds())
	for op, n := range counts {
		r.m.Changes.WithLabelValues(r.spec.Name, op.String()).Add(float64(n))
	}
	r.commitGroup(ctx, b.next)
	r.log.Debug("batch committed", "records", b.records, "tables", len(b.order), "took", time.Since(start))
	return counts, nil
}

// apply runs one attempt at the batch. isolate applies every change alone,
// under a savepoint, so a rejected one is found, reported or dead-lettered,
// and the rest still commit.
func (r *runner) apply(ctx context.Context, b *batch, isolate bool) (map[Op]int, error) {
	tx, err := r.target.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("beginning transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	counts := map[Op]int{}
	for _, t := range b.order {
		changes := b.changes[t]
		if !isolate {
			red := b.reduced[t]
			if err := r.checkUnavail(ctx, tx, t.spec, red); err != nil {
				return nil, err
			}
			if err := tx.Apply(ctx, t.spec, red); err != nil {
				return nil, fmt.Errorf("applying %d changes to table %s: %w", len(red), t.spec.QualifiedName(), err)
			}
			for _, c := range red {
				counts[c.Op]++
			}
			continue
		}
		for i := range changes {
			c := changes[i : i+1]
			const sp = "tributary_change"
			if err := tx.Savepoint(ctx, sp); err != nil {
				return nil, fmt.Errorf("savepoint: %w", err)
			}
			if err := r.checkUnavail(ctx, tx, t.spec, c); err != nil {
				return nil, err
			}
			if err := tx.Apply(ctx, t.spec, c); err != nil {
				if ctx.Err() != nil || !r.target.Rejected(err) {
					return nil, fmt.Errorf("applying %s to table %s (record at %s): %w", c[0].Op, t.spec.QualifiedName(), c[0].Rec.where(), err)
				}
				if rerr := tx.RollbackTo(ctx, sp); rerr != nil {
					return nil, fmt.Errorf("rolling back to savepoint: %w", rerr)
				}
				if rerr := tx.Release(ctx, sp); rerr != nil {
					return nil, fmt.Errorf("releasing savepoint: %w", rerr)
				}
				cause := fmt.Errorf("table %s rejected the %s: %w", t.spec.QualifiedName(), c[0].Op, err)
				if rerr := r.reject(b, c[0].Rec, "TASK_PUT", cause); rerr != nil {
					return nil, rerr
				}
				continue
			}
			if err := tx.Release(ctx, sp); err != nil {
				return nil, fmt.Errorf("releasing savepoint: %w", err)
			}
			counts[c[0].Op]++
		}
	}
	if err := r.produceDeadLetters(ctx, b); err != nil {
		return nil, err
	}
	if err := tx.StoreOffsets(ctx, r.spec.Name, b.next); err != nil {
		return nil, fmt.Errorf("storing offsets in %s: %w", OffsetsTable, err)
	}
	done = true
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("committing batch: %w", err)
	}
	return counts, nil
}

// checkUnavail finds the upserts of changes (one table's, as Apply gets
// them) that carry a placeholder for a value the source did not send and
// that neither the batch nor the copy's current row can fill: the row is
// not in the copy. Each such value is counted in
// tributary_sink_unavailable_values_total and logged once per table, since
// the copy cannot hold it (the upsert leaves the column out; it never
// writes NULL or the placeholder).
func (r *runner) checkUnavail(ctx context.Context, tx Tx, spec *TableSpec, changes []Change) error {
	var idx []int
	for i := range changes {
		if c := &changes[i]; len(c.Unavail) > 0 && (c.Op == OpUpsert || c.Op == OpInsert) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	var missing []int
	switch mk, ok := tx.(MissingKeysTx); {
	case changes[0].Op == OpTruncate:
		// Emptied first: no current row holds the values.
		missing = idx
	case len(spec.Key) == 0:
		missing = idx
	case !ok:
		missing = idx
		if !r.unavailLogged[spec.QualifiedName()+"\x00?"] {
			r.unavailLogged[spec.QualifiedName()+"\x00?"] = true
			r.log.Warn("the target cannot tell whether it holds the rows of unchanged TOASTed values; each is counted as unknown",
				"table", spec.QualifiedName(), "target", fmt.Sprintf("%T", tx))
		}
	default:
		keys := make([][]any, len(idx))
		for j, i := range idx {
			keys[j] = changes[i].Key
		}
		m, err := mk.MissingKeys(ctx, spec, keys)
		if err != nil {
			return fmt.Errorf("looking up the rows of %d changes with unchanged TOASTed values in table %s: %w", len(keys), spec.QualifiedName(), err)
		}
		for _, j := range m {
			missing = append(missing, idx[j])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	table := spec.QualifiedName()
	cols := map[string]bool{}
	for _, i := range missing {
		for _, col := range changes[i].Unavail {
			r.m.Unavailable.WithLabelValues(r.spec.Name, table, col.Name).Inc()
			cols[col.Name] = true
		}
	}
	if !r.unavailLogged[table] {
		r.unavailLogged[table] = true
		names := make([]string, 0, len(cols))
		for n := range cols {
			names = append(names, n)
		}
		slices.Sort(names)
		first := changes[missing[0]]
		where := ""
		if first.Rec != nil {
			where = first.Rec.where()
		}
		r.log.Warn("the source did not send an unchanged TOASTed value (__debezium_unavailable_value) and the copy does not hold the row either: the copy has no value for it until the column changes at the source (logged once per table; counted in tributary_sink_unavailable_values_total). Set REPLICA IDENTITY FULL on the source table so every value is sent, or start the sink from the earliest offset",
			"table", table, "columns", strings.Join(names, ","), "rows", len(missing), "first", where)
	}
	return nil
}

// produceDeadLetters writes the batch's dead letters and waits for the log
// to acknowledge them: only then may the offsets that skip them commit.
func (r *runner) produceDeadLetters(ctx context.Context, b *batch) error {
	if len(b.dlq) == 0 {
		return nil
	}
	// Dead letters found while decoding come before those the target
	// rejected; the topic is easier to read in log order.
	slices.SortStableFunc(b.dlq, func(a, b *kgo.Record) int {
		return cmp.Or(
			strings.Compare(header(a, HeaderErrTopic), header(b, HeaderErrTopic)),
			cmpInt(header(a, HeaderErrPartition), header(b, HeaderErrPartition)),
			cmpInt(header(a, HeaderErrOffset), header(b, HeaderErrOffset)))
	})
	if !r.dlqReady {
		_, err := r.adm.CreateTopic(ctx, 1, -1, nil, r.spec.DLQTopic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating dead-letter topic %s: %w", r.spec.DLQTopic, err)
		}
		r.dlqReady = true
	}
	if err := r.cl.ProduceSync(ctx, b.dlq...).FirstErr(); err != nil {
		return fmt.Errorf("producing %d records to dead-letter topic %s: %w", len(b.dlq), r.spec.DLQTopic, err)
	}
	b.dlq = b.dlq[:0]
	return nil
}

// commitGroup mirrors the committed positions into the consumer group, for
// lag tools only: a failure is logged, never fatal.
func (r *runner) commitGroup(ctx context.Context, next map[TopicPartition]int64) {
	offs := kadm.Offsets{}
	for tp, o := range next {
		offs.Add(kadm.Offset{Topic: tp.Topic, Partition: tp.Partition, At: o, LeaderEpoch: -1})
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := r.adm.CommitOffsets(cctx, GroupName(r.spec.Name), offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && ctx.Err() == nil {
		r.log.Warn("committing consumer-group offsets (for lag visibility only) failed", "group", GroupName(r.spec.Name), "err", err)
	}
}

func header(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

func cmpInt(a, b string) int {
	x, _ := strconv.ParseInt(a, 10, 64)
	y, _ := strconv.ParseInt(b, 10, 64)
	return cmp.Compare(x, y)
}

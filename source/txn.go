package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnRuntime is the runtime of a source with exactly_once: its events and
// the offset record that covers them are written in one Kafka transaction,
// so a read_committed consumer sees each change once even across kill -9.
//
// A transaction must end exactly at a checkpoint: records emitted after
// the checkpoint whose offset it carries would otherwise be committed
// without their offset and emitted again on restart. So transactions are
// cut inside Checkpoint, on the connector's goroutine, with emitting
// paused; and a shutdown that finds records after the last checkpoint
// aborts the open transaction instead (nothing of it is visible, and the
// restart emits it again from the last committed offset).
//
// An interrupted initial snapshot is still redone from the start, as
// without exactly_once: its op=r records are upserts for every sink.
type txnRuntime struct {
	*runtime // Codec, Offset, Metrics, Logger

	cl    *kgo.Client
	every time.Duration

	// emitting is held shared by Emit and exclusively while a transaction
	// ends, because a transactional producer refuses records between
	// EndTransaction and the next BeginTransaction.
	emitting sync.RWMutex

	mu        sync.Mutex
	err       error
	began     time.Time
	dirty     bool // records emitted after the latest checkpoint
	emitted   bool // records emitted in the open transaction
	offset    map[string]any
	durables  []func()
	counters  map[string]prometheus.Counter
	callbacks chan []func()
	cbDone    chan struct{}
	cbWG      sync.WaitGroup
}

// DefaultTxnInterval is how long a transaction stays open at most (it ends
// at the first checkpoint after it).
const DefaultTxnInterval = 100 * time.Millisecond

func newTxnRuntime(base *runtime, cl *kgo.Client, every time.Duration) (*txnRuntime, error) {
	if every <= 0 {
		every = DefaultTxnInterval
	}
	t := &txnRuntime{
		runtime: base, cl: cl, every: every,
		counters:  map[string]prometheus.Counter{},
		callbacks: make(chan []func(), 64),
		cbDone:    make(chan struct{}),
	}
	if err := cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	t.began = time.Now()
	// Durable callbacks run in checkpoint order on their own goroutine, as
	// the Runtime contract says.
	go func() {
		defer close(t.cbDone)
		for fns := range t.callbacks {
			for _, fn := range fns {
				fn()
			}
			t.cbWG.Done()
		}
	}()
	return t, nil
}

var (
	_ Runtime          = (*txnRuntime)(nil)
	_ BatchEmitter     = (*txnRuntime)(nil)
	_ BatchDoneEmitter = (*txnRuntime)(nil)
)

func (t *txnRuntime) setErr(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func (t *txnRuntime) ack(rec *kgo.Record, err error) {
	if err != nil {
		err = tooLarge(t.d.Registry, t.d.MaxRecordBytes, rec, err)
		t.d.Metrics.ProducerErrors.WithLabelValues(t.name).Inc()
		t.log.Error("the log refused a record; the transaction will be aborted", "topic", rec.Topic, "error", err)
		t.setErr(fmt.Errorf("producing to %s: %w", rec.Topic, err))
		return
	}
	t.mu.Lock()
	c, ok := t.counters[rec.Topic]
	if !ok {
		c = t.d.Metrics.EventsProduced.WithLabelValues(t.name, rec.Topic)
		t.counters[rec.Topic] = c
	}
	t.mu.Unlock()
	c.Inc()
	t.bytes.Add(float64(len(rec.Key) + len(rec.Value)))
}

func (t *txnRuntime) Emit(ctx context.Context, r Record) error {
	return t.EmitBatchDone(ctx, []Record{r}, nil)
}

func (t *txnRuntime) EmitBatch(ctx context.Context, rs []Record) error {
	return t.EmitBatchDone(ctx, rs, nil)
}

func (t *txnRuntime) EmitBatchDone(_ context.Context, rs []Record, done func()) error {
	t.emitting.RLock()
	defer t.emitting.RUnlock()
	t.mu.Lock()
	if t.err != nil {
		err := t.err
		t.mu.Unlock()
		return err
	}
	if len(rs) > 0 {
		t.dirty, t.emitted = true, true
	}
	t.mu.Unlock()
	if len(rs) == 0 {
		if done != nil {
			done()
		}
		return nil
	}
	var left sync.WaitGroup
	left.Add(len(rs))
	now := time.Now()
	for _, r := range rs {
		rec := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: now}
		t.cl.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
			t.ack(rec, err)
			left.Done()
		})
	}
	if done != nil {
		go func() { left.Wait(); done() }()
	}
	return nil
}

func (t *txnRuntime) Checkpoint(ctx context.Context, offset map[string]any, durable func()) error {
	t.mu.Lock()
	if t.err != nil {
		err := t.err
		t.mu.Unlock()
		return err
	}
	t.offset, t.dirty = t.withSignal(offset), false
	if durable != nil {
		t.durables = append(t.durables, durable)
	}
	due := time.Since(t.began) >= t.every
	t.mu.Unlock()
	if !due {
		return nil
	}
	return t.commit(ctx, false)
}

// commit ends the open transaction with the latest checkpoint's offset
// record, unless records were emitted after that checkpoint (by another
// goroutine since Checkpoint returned): then it waits for a later one.
// With final, no new transaction begins.
func (t *txnRuntime) commit(ctx context.Context, final bool) error {
	t.emitting.Lock()
	defer t.emitting.Unlock()
	t.mu.Lock()
	if t.err != nil || t.dirty {
		err, dirty := t.err, t.dirty
		t.mu.Unlock()
		if err == nil && !final {
			return nil
		}
		if abortErr := t.abort(ctx, final); abortErr != nil && err == nil {
			err = abortErr
		}
		if err == nil && dirty {
			err = errors.New("records were emitted after the last checkpoint; the open transaction was aborted and they will be emitted again on restart")
		}
		return err
	}
	offset, durables, emitted := t.offset, t.durables, t.emitted
	t.durables = nil
	t.mu.Unlock()
	if offset == nil && !emitted {
		if final {
			return t.abort(ctx, true)
		}
		return nil
	}
	if offset != nil {
		rec, err := t.d.Offsets.Record(t.name, t.server, offset)
		if err != nil {
			t.setErr(err)
			return errors.Join(err, t.abort(ctx, final))
		}
		t.cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
			if err != nil {
				t.setErr(fmt.Errorf("producing offset record to %s: %w", r.Topic, err))
			}
		})
	}
	if err := t.cl.Flush(ctx); err != nil {
		t.setErr(fmt.Errorf("flushing the transaction: %w", err))
	}
	t.mu.Lock()
	err := t.err
	t.mu.Unlock()
	if err != nil {
		return errors.Join(err, t.abort(ctx, final))
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		err = fmt.Errorf("committing the transaction of offset %v: %w", offset, err)
		t.setErr(err)
		return errors.Join(err, t.abort(ctx, final))
	}
	t.mu.Lock()
	t.offset, t.emitted = nil, false
	t.mu.Unlock()
	if len(durables) > 0 {
		t.cbWG.Add(1)
		t.callbacks <- durables
	}
	t.d.Metrics.CommittedOffset.WithLabelValues(t.name) // present once anything committed
	if final {
		return nil
	}
	if err := t.cl.BeginTransaction(); err != nil {
		err = fmt.Errorf("beginning a transaction: %w", err)
		t.setErr(err)
		return err
	}
	t.mu.Lock()
	t.began = time.Now()
	t.mu.Unlock()
	return nil
}

// abort drops everything produced in the open transaction. Called with
// emitting held.
func (t *txnRuntime) abort(ctx context.Context, final bool) error {
	if err := t.cl.AbortBufferedRecords(ctx); err != nil {
		return fmt.Errorf("aborting buffered records: %w", err)
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("aborting the transaction: %w", err)
	}
	t.mu.Lock()
	t.offset, t.emitted, t.dirty, t.durables = nil, false, false, nil
	failed := t.err != nil
	t.mu.Unlock()
	if !final && !failed {
		if err := t.cl.BeginTransaction(); err != nil {
			return fmt.Errorf("beginning a transaction: %w", err)
		}
	}
	return nil
}

// Flush commits the open transaction at the latest checkpoint and waits
// for its durable callbacks.
func (t *txnRuntime) Flush(ctx context.Context) error {
	if err := t.commit(ctx, false); err != nil {
		return err
	}
	t.mu.Lock()
	dirty := t.dirty
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.cbWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("waiting for durable callbacks: %w", ctx.Err())
	}
	if dirty {
		return errors.New("records emitted after the last checkpoint are not committed yet")
	}
	return nil
}

// finish commits what the last checkpoint covers (or aborts, see commit),
// stops the callback goroutine and closes the transactional client.
func (t *txnRuntime) finish(ctx context.Context) error {
	err := t.commit(ctx, true)
	close(t.callbacks)
	<-t.cbDone
	t.cl.Close()
	return err
}

// TransactionalID is the transactional.id of a source's producer. A new
// owner of the source (after a restart, or in a worker group) fences the
// previous one and aborts its open transaction.
func TransactionalID(source string) string { return "tributary-source-" + source }

func runTransactional(ctx context.Context, name string, c Connector, d Deps, rt *runtime) error {
	cl, err := d.NewTxnClient(TransactionalID(name))
	if err != nil {
		return fmt.Errorf("source %s: transactional client: %w", name, err)
	}
	t, err := newTxnRuntime(rt, cl, d.TxnInterval)
	if err != nil {
		cl.Close()
		return fmt.Errorf("source %s: %w", name, err)
	}
	runErr := c.Run(ctx, t)
	fctx, cancel := context.WithTimeout(context.Background(), d.ShutdownTimeout)
	finErr := t.finish(fctx)
	cancel()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("source %s: %w", name, runErr)
	}
	if finErr != nil && !errors.Is(finErr, context.Canceled) {
		return fmt.Errorf("source %s: final commit: %w", name, finErr)
	}
	return nil
}

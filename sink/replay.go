package sink

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ReplayTarget is a Target that can be rebuilt from offset zero by Replay.
// Connectors implement it in their replay*.go files.
type ReplayTarget interface {
	Target
	// ReplayDeleteOffsets deletes every row of sink in the offsets table,
	// inside tx (a Tx of this target), so the delete commits with the rows.
	ReplayDeleteOffsets(ctx context.Context, tx Tx, sink string) error
	// ReplayShadow returns the target the shadow copy is built in. It is
	// called after Connect of this target; the shadow is connected by Replay.
	ReplayShadow(ctx context.Context) (ShadowTarget, error)
}

// ShadowTarget builds a copy beside the live one and swaps it in.
type ShadowTarget interface {
	Target
	ReplayDeleteOffsets(ctx context.Context, tx Tx, sink string) error
	// ReplayShadowName is where the shadow of a live table (as the runtime
	// names it) is built; SQLite, whose shadow is a whole file, keeps it.
	ReplayShadowName(schema, name string) (string, string)
	// ReplayDropTable drops a shadow table left by an interrupted replay.
	ReplayDropTable(ctx context.Context, schema, name string) error
	// ReplaySwap atomically replaces the live tables by their shadows and
	// the live sink's offsets rows by shadowSink's, then releases the
	// shadow. Readers see the old copy or the new one, never a mix.
	ReplaySwap(ctx context.Context, liveSink, shadowSink string, tables []ShadowTable) error
}

// ShadowTable pairs a live table with its shadow.
type ShadowTable struct {
	Schema, Name             string // live
	ShadowSchema, ShadowName string
}

// ReplayOptions control Replay.
type ReplayOptions struct {
	// InPlace truncates and reloads the live tables instead of building a
	// shadow copy and swapping it in.
	InPlace bool
	// Progress is called about every ProgressEvery while replaying and once
	// at the end (Done set).
	Progress      func(ReplayProgress)
	ProgressEvery time.Duration
}

// ReplayProgress is one progress report.
type ReplayProgress struct {
	Records int64         // records applied (with their offsets)
	Rate    float64       // records per second since the start
	Lag     int64         // records between the applied offsets and the head
	ETA     time.Duration // at Rate; 0 when unknown
	Tables  int
	Done    bool
}

// ReplayShadowSuffix is appended to the sink name for the offsets rows of a
// shadow copy being built.
const ReplayShadowSuffix = "__replay"

// Replay rebuilds the copy of spec from offset zero into target and returns
// once it has caught up with the head of the log (the high watermarks at
// start, then the head again until nothing new arrived). The worker running
// the same sink must be stopped: both would write the same offsets rows.
//
// Shadow mode (default): tables are built beside the live ones with their
// own offsets rows (sink name + "__replay"), then swapped in atomically with
// the offsets. A replay interrupted (even by kill -9) is started again from
// scratch: its offsets rows are deleted and each shadow table is dropped
// before it is first written, so leftovers never leak into the copy; the
// live copy is untouched until the swap.
//
// In-place mode: the sink's offsets rows are deleted in the first
// transaction and every table is truncated in the same transaction as the
// first batch written to it, then reloaded. Until it finishes, readers see
// a partial copy; an interrupted in-place replay must be run again before
// the worker is restarted.
func Replay(ctx context.Context, spec Spec, target Target, deps Deps, opt ReplayOptions) error {
	rt, ok := target.(ReplayTarget)
	if !ok {
		return fmt.Errorf("sink %s: target %T does not support replay", spec.Name, target)
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("sink %s: invalid config: %w", spec.Name, err)
	}
	spec = spec.withDefaults()
	live := spec.Name
	// Replay starts from offset zero whatever the sink's start says.
	spec.Start = "earliest"
	if err := rt.Connect(ctx); err != nil {
		return fmt.Errorf("sink %s: %w", live, err)
	}
	defer rt.Close()

	w := &replayWrap{inPlace: opt.InPlace, seen: map[string]*ShadowTable{}, committed: map[TopicPartition]int64{}}
	if opt.InPlace {
		w.Target, w.del = rt, rt
	} else {
		sh, err := rt.ReplayShadow(ctx)
		if err != nil {
			return fmt.Errorf("sink %s: preparing the shadow copy: %w", live, err)
		}
		w.Target, w.del, w.shadow = sh, sh, sh
		spec.Name = live + ReplayShadowSuffix
		swapped := false
		defer func() {
			if !swapped {
				_ = sh.Close()
			}
		}()
		defer func() { swapped = w.swapped }()
	}
	// Keep the live sink's dead-letter topic and consumer group for lag.
	if spec.DLQTopic == "" {
		spec.DLQTopic = live + ".dlq"
	}

	cl, err := deps.NewClient()
	if err != nil {
		return fmt.Errorf("sink %s: creating Kafka client: %w", live, err)
	}
	adm := kadm.NewClient(cl)
	defer cl.Close()
	heads, err := replayHeads(ctx, adm, spec)
	if err != nil {
		return fmt.Errorf("sink %s: reading the head of the log: %w", live, err)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Run(rctx, spec, w, deps) }()

	every := opt.ProgressEvery
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(min(every, 200*time.Millisecond))
	defer tick.Stop()
	lastReport := time.Now()
	report := func(final bool) {
		if opt.Progress == nil {
			return
		}
		rec, lag, tables := w.stats(heads)
		p := ReplayProgress{Records: rec, Lag: lag, Tables: tables, Done: final}
		if el := time.Since(start).Seconds(); el > 0 {
			p.Rate = float64(rec) / el
		}
		if p.Rate > 0 && lag > 0 {
			p.ETA = time.Duration(float64(lag) / p.Rate * float64(time.Second))
		}
		opt.Progress(p)
	}
	caughtUp := false
	for !caughtUp {
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				err = errors.New("sink stopped before reaching the head of the log")
			}
			return fmt.Errorf("replay of sink %s: %w", live, err)
		case <-tick.C:
		}
		if time.Since(lastReport) >= every {
			report(false)
			lastReport = time.Now()
		}
		if !w.reached(heads) {
			continue
		}
		// Caught up with the head seen at start: look again, and stop
		// only when nothing arrived meanwhile.
		newHeads, err := replayHeads(ctx, adm, spec)
		if err != nil {
			cancel()
			<-done
			return fmt.Errorf("sink %s: reading the head of the log: %w", live, err)
		}
		heads = newHeads
		caughtUp = w.reached(heads)
	}
	cancel()
	if err := <-done; err != nil {
		return fmt.Errorf("replay of sink %s: %w", live, err)
	}
	report(true)
	if opt.InPlace {
		return nil
	}
	tables := w.tables()
	if err := w.shadow.ReplaySwap(ctx, live, spec.Name, tables); err != nil {
		return fmt.Errorf("sink %s: swapping the replayed copy in: %w", live, err)
	}
	w.swapped = true
	return nil
}

// replayHeads returns the end offset of every partition the sink reads that
// holds records.
func replayHeads(ctx context.Context, adm *kadm.Client, spec Spec) (map[TopicPartition]int64, error) {
	var details kadm.TopicDetails
	var err error
	var re *regexp.Regexp
	if spec.TopicsRegex != "" {
		re = regexp.MustCompile("^(?:" + spec.TopicsRegex + ")$")
		details, err = adm.ListTopics(ctx)
	} else {
		details, err = adm.ListTopics(ctx, spec.Topics...)
	}
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var topics []string
	for _, t := range details.Names() {
		td := details[t]
		if re != nil && (!re.MatchString(t) || spec.skipReason(t) != "") {
			continue
		}
		if td.Err != nil {
			if errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("topic %s: %w", t, td.Err)
		}
		topics = append(topics, t)
	}
	out := map[TopicPartition]int64{}
	if len(topics) == 0 {
		return out, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing start offsets: %w", err)
	}
	// The head a read_committed consumer can reach: the last stable offset,
	// which is the end of the log unless a transaction is open.
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Offset >= o.Offset {
			return // empty partition
		}
		out[TopicPartition{o.Topic, o.Partition}] = o.Offset
	})
	return out, nil
}

// replayWrap is the Target Run writes through during a replay: it renames
// tables to their shadows, drops or truncates each table before it is first
// written, deletes the old offsets rows in the first transaction, and
// records what committed.
type replayWrap struct {
	Target
	del interface {
		ReplayDeleteOffsets(context.Context, Tx, string) error
	}
	shadow  ShadowTarget
	inPlace bool
	swapped bool

	mu        sync.Mutex
	seen      map[string]*ShadowTable // by live qualified name
	order     []string
	prepared  map[string]bool // tables truncated (in place) in a committed tx
	cleared   bool            // old offsets rows deleted in a committed tx
	committed map[TopicPartition]int64
	records   int64
}

// The runtime connects and closes its target; Replay owns the real one.
func (w *replayWrap) Connect(ctx context.Context) error {
	if w.shadow != nil {
		return w.shadow.Connect(ctx)
	}
	return nil
}

func (w *replayWrap) Close() error { return nil }

func (w *replayWrap) rename(spec *TableSpec) *TableSpec {
	if w.shadow == nil {
		return spec
	}
	s := *spec
	s.Schema, s.Name = w.shadow.ReplayShadowName(spec.Schema, spec.Name)
	return &s
}

func (w *replayWrap) note(spec *TableSpec) *ShadowTable {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := spec.QualifiedName()
	if st := w.seen[q]; st != nil {
		return st
	}
	st := &ShadowTable{Schema: spec.Schema, Name: spec.Name, ShadowSchema: spec.Schema, ShadowName: spec.Name}
	if w.shadow != nil {
		st.ShadowSchema, st.ShadowName = w.shadow.ReplayShadowName(spec.Schema, spec.Name)
	}
	w.seen[q] = st
	w.order = append(w.order, q)
	return st
}

func (w *replayWrap) EnsureTable(ctx context.Context, spec *TableSpec) error {
	q := spec.QualifiedName()
	w.mu.Lock()
	_, known := w.seen[q]
	w.mu.Unlock()
	if !known && w.shadow != nil {
		sch, name := w.shadow.ReplayShadowName(spec.Schema, spec.Name)
		if err := w.shadow.ReplayDropTable(ctx, sch, name); err != nil {
			return fmt.Errorf("dropping the shadow table %s left by an earlier replay: %w", name, err)
		}
	}
	w.note(spec)
	return w.Target.EnsureTable(ctx, w.rename(spec))
}

func (w *replayWrap) Begin(ctx context.Context) (Tx, error) {
	tx, err := w.Target.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &replayTx{Tx: tx, w: w, truncated: map[string]bool{}, next: map[TopicPartition]int64{}}, nil
}

type replayTx struct {
	Tx
	w         *replayWrap
	truncated map[string]bool
	cleared   bool
	next      map[TopicPartition]int64
	records   int64
}

// LoadOffsets: a replay always starts from offset zero.
func (x *replayTx) LoadOffsets(context.Context, string) (map[TopicPartition]int64, error) {
	return map[TopicPartition]int64{}, nil
}

func (x *replayTx) Apply(ctx context.Context, spec *TableSpec, changes []Change) error {
	q := spec.QualifiedName()
	if x.w.inPlace {
		x.w.note(spec)
	}
	x.w.mu.Lock()
	done := x.w.prepared[q]
	x.w.mu.Unlock()
	if x.w.inPlace && !done && !x.truncated[q] {
		// The first write of this replay to the table empties it, in the
		// same transaction.
		if len(changes) == 0 || changes[0].Op != OpTruncate {
			changes = append([]Change{{Op: OpTruncate}}, changes...)
		}
		x.truncated[q] = true
	}
	for i := range changes {
		if changes[i].Op != OpTruncate {
			x.records++
		}
	}
	return x.Tx.Apply(ctx, x.w.rename(spec), changes)
}

// MissingKeys looks in the table being rebuilt: the shadow, or in place
// nothing until the table is emptied in its first transaction of the
// replay (it will be before these changes apply).
func (x *replayTx) MissingKeys(ctx context.Context, spec *TableSpec, keys [][]any) ([]int, error) {
	q := spec.QualifiedName()
	x.w.mu.Lock()
	done := x.w.prepared[q]
	x.w.mu.Unlock()
	mk, ok := x.Tx.(MissingKeysTx)
	if !ok || x.w.inPlace && !done && !x.truncated[q] {
		all := make([]int, len(keys))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	return mk.MissingKeys(ctx, x.w.rename(spec), keys)
}

func (x *replayTx) StoreOffsets(ctx context.Context, name string, next map[TopicPartition]int64) error {
	x.w.mu.Lock()
	cleared := x.w.cleared
	x.w.mu.Unlock()
	if !cleared && !x.cleared {
		if err := x.w.del.ReplayDeleteOffsets(ctx, x.Tx, name); err != nil {
			return fmt.Errorf("deleting the old offsets rows of %s: %w", name, err)
		}
		x.cleared = true
	}
	for tp, o := range next {
		x.next[tp] = o
	}
	return x.Tx.StoreOffsets(ctx, name, next)
}

func (x *replayTx) Commit(ctx context.Context) error {
	if err := x.Tx.Commit(ctx); err != nil {
		return err
	}
	w := x.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if x.cleared {
		w.cleared = true
	}
	if w.prepared == nil {
		w.prepared = map[string]bool{}
	}
	for q := range x.truncated {
		w.prepared[q] = true
	}
	for tp, o := range x.next {
		if tp.Partition >= 0 {
			w.committed[tp] = o
		}
	}
	w.records += x.records
	return nil
}

// reached reports whether every partition with records is applied up to
// its head.
func (w *replayWrap) reached(heads map[TopicPartition]int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for tp, h := range heads {
		if w.committed[tp] < h {
			return false
		}
	}
	return true
}

func (w *replayWrap) stats(heads map[TopicPartition]int64) (records, lag int64, tables int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for tp, h := range heads {
		lag += max(h-w.committed[tp], 0)
	}
	return w.records, lag, len(w.seen)
}

func (w *replayWrap) tables() []ShadowTable {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]ShadowTable, 0, len(w.order))
	for _, q := range w.order {
		out = append(out, *w.seen[q])
	}
	return out
}

package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-cdc/tributary/faults"
	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// The initial snapshot.
//
// CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT creates the slot and exports
// the snapshot at its consistent point: every transaction committed before
// that point is visible in the snapshot, every later one is streamed from the
// slot, so nothing is lost or doubled between the two. Each worker connection
// imports the snapshot (SET TRANSACTION SNAPSHOT) before the exporting
// connection runs anything else (the export lives only until then), then
// reads whole tables, one at a time: tables with a primary key in key order,
// in chunks of snapshot_chunk_rows with keyset pagination (each chunk a
// COPY (SELECT ... WHERE (pk) > (last) ORDER BY pk LIMIT n) TO STDOUT), other
// tables with one streamed COPY. Each worker packs raw COPY rows into blocks
// for a pool of encoder goroutines (one per CPU), which decode and encode
// them in parallel and hand the batches to the connector goroutine, which
// alone calls Emit. Every stage blocks when the next one is behind, so
// memory stays at a few blocks and batches whatever the table sizes.
//
// Progress is checkpointed every snapProgressEvery (and once before the
// first row): an offset at the consistent point, marked as a snapshot not
// yet complete, listing the tables left and for each the key of the last
// chunk whose rows are all emitted (chunk bounds from the readers, block
// numbers from the emitter, which may see a table's blocks out of order).
// After a crash the plan keeps the slot and the streamer reads the rest of
// the tables incrementally (incremental.go).

// snapProgressEvery is how often the initial snapshot records its progress
// (an offset record each time).
const snapProgressEvery = 200 * time.Millisecond

const (
	snapBatchRecords = 256
	snapBatchBytes   = 1 << 20
)

type snapshotResult struct {
	consistentPoint pglogrepl.LSN
	// replConn is the still-open replication connection when it must stay
	// open (a temporary slot); nil otherwise.
	replConn *pgconn.PgConn
}

// snapTable is one table being snapshotted.
type snapTable struct {
	ct    *catalogTable
	shape *shape
	codec *schema.Codec
	pk    []int // indexes of the primary-key columns, empty for one full COPY
	plan  snapPlan

	rows    atomic.Int64
	started atomic.Int64 // unix nanos, 0 before
	done    atomic.Bool
	// firstOfSnapshot: this table's first row is the first row of the
	// whole snapshot (source.snapshot "first"); set before the readers start.
	firstOfSnapshot bool
	// firstOut is set by the emitting goroutine once the table's first row
	// (or the news that it has none) has been emitted.
	firstOut bool

	gaugeRows  prometheus.Gauge
	gaugeTotal prometheus.Gauge

	// Progress for a resume after a crash (snapshotProgressOffset): the
	// reader records where each full chunk ends, the emitting goroutine
	// which blocks the runtime took.
	boundMu sync.Mutex
	bounds  []chunkBound
	empty   atomic.Bool // read to the end without a row: nothing to emit
	// Emitting goroutine only.
	emitted  map[int64]bool // blocks emitted at or above prefix
	prefix   int64          // every block below was emitted
	after    []string       // paging key of the last chunk wholly emitted
	finished bool           // every row emitted, the held final row too
}

// chunkBound is the end of a full chunk: its last row is in block seq.
type chunkBound struct {
	seq int64
	key []string
}

func (t *snapTable) addBound(seq int64, key []string) {
	t.boundMu.Lock()
	t.bounds = append(t.bounds, chunkBound{seq, key})
	t.boundMu.Unlock()
}

// blockEmitted records that block seq of the table was handed to the runtime.
func (t *snapTable) blockEmitted(seq int64) {
	if t.emitted == nil {
		t.emitted = map[int64]bool{}
	}
	t.emitted[seq] = true
	for t.emitted[t.prefix] {
		delete(t.emitted, t.prefix)
		t.prefix++
	}
	t.boundMu.Lock()
	for len(t.bounds) > 0 && t.bounds[0].seq < t.prefix {
		t.after = t.bounds[0].key
		t.bounds = t.bounds[1:]
	}
	t.boundMu.Unlock()
}

// snapBatch is what workers hand to the emitting goroutine.
type snapBatch struct {
	t    *snapTable
	recs []source.Record
	// recsBuf is where recs came from; the emitter returns it to
	// snapRecsPool once emitted.
	recsBuf *[]source.Record
	// arena holds the bytes of recs; released once the log has
	// acknowledged them all (when the runtime tells, else left to the GC).
	arena *snapArena
	// opens is set on the batch that holds the table's first row, or that
	// says the table has none: the table's other batches wait for it.
	opens *snapTable
	// tableDone is set on the last batch of a table; lastInTable and
	// lastLast are its final row encoded with source.snapshot
	// "last_in_data_collection" (or "first" for a one-row first table) and
	// "last" (nil for an empty table).
	tableDone   *snapTable
	lastInTable *source.Record
	lastLast    *source.Record
	// seq numbers the block the batch was encoded from, in its table.
	seq int64
}

func (c *connector) runSnapshot(ctx context.Context, rt source.Runtime, meta *pgx.Conn, cat pgtypeCatalog) (snapshotResult, error) {
	temporary := c.cfg.Snapshot == SnapshotInitialOnly
	m := rt.Metrics()
	if m != nil && m.SnapshotRunning != nil {
		m.SnapshotRunning.WithLabelValues(c.name).Set(1)
		defer m.SnapshotRunning.WithLabelValues(c.name).Set(0)
	}

	// Codecs first: Runtime.Codec is called from this goroutine only.
	src := schema.PostgresSource()
	tables := make([]*snapTable, 0, len(c.tables))
	for _, ct := range c.tables {
		st, err := c.snapTable(ctx, rt, ct, cat, src)
		if err != nil {
			return snapshotResult{}, err
		}
		tables = append(tables, st)
	}
	sort.SliceStable(tables, func(i, j int) bool { return tables[i].ct.Estimate > tables[j].ct.Estimate })
	if len(tables) > 0 {
		// Tables are read largest first; the first one read opens the
		// snapshot, as the first table in Debezium's order does.
		tables[0].firstOfSnapshot = true
	}

	replConn, err := c.connectReplication(ctx)
	if err != nil {
		return snapshotResult{}, err
	}
	keepRepl := false
	defer func() {
		if !keepRepl && replConn != nil {
			_ = replConn.Close(context.WithoutCancel(ctx))
		}
	}()
	slot, err := pglogrepl.CreateReplicationSlot(ctx, replConn, c.slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary: temporary, SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication,
	})
	if err != nil {
		return snapshotResult{}, fmt.Errorf("postgres: create replication slot %q with exported snapshot on %s: %w", c.slot, c.where(), err)
	}
	cp, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		return snapshotResult{}, fmt.Errorf("postgres: slot %q consistent point %q: %w", c.slot, slot.ConsistentPoint, err)
	}
	c.log.Info("created replication slot with exported snapshot", "slot", c.slot, "consistent_point", cp.String(),
		"snapshot", slot.SnapshotName, "temporary", temporary)

	nw := min(c.cfg.SnapshotParallelism, len(tables))
	conns := make([]*pgx.Conn, 0, nw)
	defer func() {
		for _, wc := range conns {
			_ = wc.Close(context.WithoutCancel(ctx))
		}
	}()
	for i := 0; i < nw; i++ {
		wc, err := c.connectBulk(ctx)
		if err != nil {
			return snapshotResult{}, err
		}
		conns = append(conns, wc)
		sql := "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '" + strings.ReplaceAll(slot.SnapshotName, "'", "''") + "'"
		if _, err := wc.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
			return snapshotResult{}, fmt.Errorf("postgres: import snapshot %q on worker connection %d: %w", slot.SnapshotName, i, err)
		}
	}
	var txid int64
	var xminText string
	if err := conns[0].QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xminText); err != nil {
		return snapshotResult{}, fmt.Errorf("postgres: read snapshot xmin: %w", err)
	}
	txid, _ = strconv.ParseInt(xminText, 10, 64)
	// Every worker has imported the snapshot; a permanent slot no longer
	// needs its creating session. A temporary one lives as long as it.
	if temporary {
		keepRepl = true
	} else {
		_ = replConn.Close(ctx)
		replConn = nil
	}

	var total int64
	for _, t := range tables {
		total += max(t.ct.Estimate, 0)
	}
	c.log.Info("snapshot started", "tables", len(tables), "workers", nw, "estimated_rows", total)
	began := time.Now()

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *snapTable, len(tables))
	for _, t := range tables {
		jobs <- t
	}
	close(jobs)
	// Readers (one per connection) feed raw row blocks to a pool of
	// encoders sized to the CPUs: decoding and Avro encoding cost more than
	// reading COPY, so one table is encoded on several cores.
	ne := max(1, goruntime.GOMAXPROCS(0))
	blocks := make(chan *snapBlock, ne)
	out := make(chan snapBatch, 2*ne)
	var readers, encoders sync.WaitGroup
	var errOnce sync.Once
	var werr error
	fail := func(err error) {
		errOnce.Do(func() { werr = err; cancel() })
	}
	for i := 0; i < nw; i++ {
		w := &snapWorker{conn: conns[i], jobs: blocks, chunk: c.cfg.SnapshotChunkRows}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for t := range jobs {
				if err := w.table(wctx, t); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	for i := 0; i < ne; i++ {
		e := c.newSnapEncoder(out, cp, txid)
		encoders.Add(1)
		go func() {
			defer encoders.Done()
			if err := e.run(wctx, blocks); err != nil {
				fail(err)
				for range blocks {
					// drain so the readers can exit
				}
			}
		}()
	}
	go func() { readers.Wait(); close(blocks) }()
	go func() { encoders.Wait(); close(out) }()

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		c.snapshotProgress(rt, tables, began, stopProgress)
	}()

	em := &snapEmitter{ctx: wctx, rt: rt, fail: fail, firstOut: len(tables) == 0, maxWaiting: 4 * ne}
	// Progress checkpoints: a crash keeps the slot and the chunks already
	// in the log; the next start reads the rest incrementally (plan).
	names := c.tableNames()
	lastProgress := time.Now()
	progressCkpt := func() error {
		snaps := []snapTask{}
		for _, t := range tables {
			if t.finished || t.empty.Load() {
				continue
			}
			snaps = append(snaps, snapTask{Table: t.ct.ID.String(), Kind: snapKindInitial, After: t.after})
		}
		off := pgOffset{LSN: cp, LSNCommit: cp, LSNProc: cp, TxID: txid, TsUsec: time.Now().UnixMicro(),
			Snapshot: true, Tables: names, Snaps: snaps}
		return rt.Checkpoint(wctx, off.toMap(), c.durableCallback(rt, cp))
	}
	// The first one before any row: from now on a crash keeps the slot,
	// whose consistent point the rows already emitted belong to.
	if !temporary {
		if err := progressCkpt(); err != nil {
			return snapshotResult{}, fmt.Errorf("postgres: snapshot: progress checkpoint: %w", err)
		}
		// Durable before the first row reaches the log: a row in the log
		// with no offset naming its slot would be left stale by a restart
		// that takes a new slot.
		if err := rt.Flush(ctx); err != nil {
			return snapshotResult{}, fmt.Errorf("postgres: snapshot: first progress checkpoint: %w", err)
		}
	}
	for b := range out {
		if wctx.Err() != nil {
			continue // drain so the workers can exit
		}
		em.take(b)
		if !temporary && wctx.Err() == nil && time.Since(lastProgress) >= snapProgressEvery {
			lastProgress = time.Now()
			if err := progressCkpt(); err != nil {
				fail(fmt.Errorf("postgres: snapshot: progress checkpoint: %w", err))
			}
		}
	}
	em.flush()
	close(stopProgress)
	<-progressDone
	defer snapChunksDrop()
	if ctx.Err() != nil {
		return snapshotResult{}, ctx.Err()
	}
	if werr != nil {
		if ctx.Err() == nil {
			werr = c.alteredDuringSnapshot(context.WithoutCancel(ctx), tables, werr)
		}
		return snapshotResult{}, werr
	}
	if em.held != nil {
		if err := rt.Emit(ctx, *em.held.lastLast); err != nil {
			return snapshotResult{}, fmt.Errorf("postgres: snapshot: emit: %w", err)
		}
		em.emitted++
	}
	if c.resnapshot {
		// Still inside the exported snapshot: the keys are looked up as of
		// its consistent point.
		if err := c.deleteVanished(ctx, rt, conns[0], tables, cp); err != nil {
			return snapshotResult{}, err
		}
	}
	for _, wc := range conns {
		_, _ = wc.Exec(ctx, "COMMIT")
	}

	off := pgOffset{LSN: cp, LSNCommit: cp, LSNProc: cp, TxID: txid, TsUsec: time.Now().UnixMicro(),
		Snapshot: true, LastSnapshotRecord: true, Tables: names, Snaps: []snapTask{}}
	if err := rt.Checkpoint(ctx, off.toMap(), c.durableCallback(rt, cp)); err != nil {
		return snapshotResult{}, fmt.Errorf("postgres: checkpoint after snapshot: %w", err)
	}
	el := time.Since(began)
	c.log.Info("snapshot completed", "tables", len(tables), "rows", em.emitted, "duration", el.Round(time.Millisecond).String(),
		"rows_per_sec", int64(float64(em.emitted)/max(el.Seconds(), 1e-9)), "consistent_point", cp.String())
	res := snapshotResult{consistentPoint: cp}
	if keepRepl {
		res.replConn = replConn
	}
	return res, nil
}

// snapEmitter is the snapshot's emitting goroutine: it alone calls Emit.
//
// Encoders finish blocks out of order. A table's first row (its own
// one-row block, dispatched first) goes out before the table's other rows,
// and the snapshot's first row before any other, as Debezium orders them: a
// batch that comes too early waits, within a bound that keeps memory as
// configured (beyond it, order gives way). Each table's final row is held
// back until the next table finishes, so that the very last record of the
// snapshot can carry "last".
type snapEmitter struct {
	ctx  context.Context
	rt   source.Runtime
	fail func(error)

	held     *snapBatch // final row of the table that finished last so far
	emitted  int64
	firstOut bool // the snapshot's first row has been emitted

	waiting    []snapBatch
	maxWaiting int
}

// take emits b, or keeps it until the batch it must follow has gone.
func (e *snapEmitter) take(b snapBatch) {
	if !e.ready(&b) && len(e.waiting) < e.maxWaiting {
		e.waiting = append(e.waiting, b)
		return
	}
	e.deliver(b)
	for progress := b.opens != nil; progress && len(e.waiting) > 0; {
		progress = false
		for i := 0; i < len(e.waiting); i++ {
			if wb := e.waiting[i]; e.ready(&wb) {
				e.waiting = append(e.waiting[:i], e.waiting[i+1:]...)
				e.deliver(wb)
				progress = true
				i--
			}
		}
	}
}

// flush emits what still waits (only when a batch it waited for was lost
// to an error).
func (e *snapEmitter) flush() {
	for _, b := range e.waiting {
		if e.ctx.Err() == nil {
			e.deliver(b)
		}
	}
	e.waiting = nil
}

func (e *snapEmitter) ready(b *snapBatch) bool {
	switch {
	case b.t == nil:
		return true
	case b.opens != nil:
		return e.firstOut || b.t.firstOfSnapshot
	}
	return e.firstOut && b.t.firstOut
}

func (e *snapEmitter) emit(r source.Record) bool {
	if err := e.rt.Emit(e.ctx, r); err != nil {
		e.fail(fmt.Errorf("postgres: snapshot: emit: %w", err))
		return false
	}
	e.emitted++
	return true
}

// deliver emits one batch and, when it ends a table, the final row of the
// table that ended before.
func (e *snapEmitter) deliver(b snapBatch) {
	if be, ok := e.rt.(source.BatchDoneEmitter); ok {
		var done func()
		if b.arena != nil {
			done = b.arena.release
		}
		if err := be.EmitBatchDone(e.ctx, b.recs, done); err != nil {
			e.fail(fmt.Errorf("postgres: snapshot: emit: %w", err))
		} else {
			e.emitted += int64(len(b.recs))
		}
	} else {
		for _, r := range b.recs {
			if !e.emit(r) {
				break
			}
		}
	}
	if b.recsBuf != nil {
		clear(b.recs) // drop the references to the records' bytes
		*b.recsBuf = b.recs[:0]
		snapRecsPool.Put(b.recsBuf)
	}
	if b.opens != nil {
		b.opens.firstOut = true
		if b.opens.firstOfSnapshot {
			e.firstOut = true
		}
	}
	// Progress for a resume: a table's final block counts once its held
	// final row is emitted too.
	final := b.tableDone != nil && b.lastInTable != nil
	if b.t != nil && !final && e.ctx.Err() == nil {
		b.t.blockEmitted(b.seq)
	}
	if !final || e.ctx.Err() != nil {
		return
	}
	if e.held != nil && !e.emit(*e.held.lastInTable) {
		return
	}
	if e.held != nil {
		e.held.tableDone.finished = true
	}
	bb := b
	e.held = &bb
}

// snapTable builds the shape and codec of a table from the catalog.
func (c *connector) snapTable(ctx context.Context, rt source.Runtime, ct *catalogTable, cat pgtypeCatalog, src *schema.SourceBlock) (*snapTable, error) {
	cols := make([]colSpec, len(ct.Columns))
	for i, col := range ct.Columns {
		cols[i] = colSpec{Name: col.Name, TypeOID: col.TypeOID, TypMod: col.TypMod, Default: col.Default}
	}
	key := c.cfg.keyColumnsFor(ct.ID.Schema, ct.ID.Name)
	if key == nil {
		key = ct.PK
	}
	sh, err := buildShape(c.cfg.TopicPrefixValue, ct.ID, cols, key, cat)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	c.warnUnknown(sh)
	codec, err := rt.Codec(ctx, &sh.table, src)
	if err != nil {
		return nil, fmt.Errorf("postgres: table %s: schema: %w", ct.ID, err)
	}
	st := &snapTable{ct: ct, shape: sh, codec: codec, plan: newSnapPlan(sh, codec, cat)}
	for _, name := range ct.PK {
		i, _ := ct.column(name)
		st.pk = append(st.pk, i)
	}
	if m := rt.Metrics(); m != nil {
		if m.SnapshotRows != nil {
			st.gaugeRows = m.SnapshotRows.WithLabelValues(c.name, ct.ID.String())
			st.gaugeRows.Set(0)
		}
		if m.SnapshotTotal != nil {
			st.gaugeTotal = m.SnapshotTotal.WithLabelValues(c.name, ct.ID.String())
			st.gaugeTotal.Set(float64(max(ct.Estimate, 0)))
		}
	}
	return st, nil
}

func (c *connector) warnUnknown(sh *shape) {
	for _, col := range sh.unknown {
		c.log.Warn("column has a type tributary does not map; its values are sent as text", "table", sh.id.String(), "column", col)
	}
}

// durableCallback advances the position acknowledged to the server.
func (c *connector) durableCallback(rt source.Runtime, lsn pglogrepl.LSN) func() {
	return func() {
		c.setDurable(lsn)
		if m := rt.Metrics(); m != nil && m.CommittedOffset != nil {
			m.CommittedOffset.WithLabelValues(c.name).Set(float64(lsn))
		}
	}
}

// snapshotProgress logs rows done, estimate, rate and ETA every few seconds
// and keeps the snapshot gauges current.
func (c *connector) snapshotProgress(rt source.Runtime, tables []*snapTable, began time.Time, stop <-chan struct{}) {
	every := c.progressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	update := func(final bool) {
		var done, total int64
		now := time.Now()
		for _, st := range tables {
			rows := st.rows.Load()
			done += rows
			est := max(st.ct.Estimate, rows)
			total += est
			if st.gaugeRows != nil {
				st.gaugeRows.Set(float64(rows))
			}
			if st.gaugeTotal != nil {
				st.gaugeTotal.Set(float64(est))
			}
			startNs := st.started.Load()
			if startNs == 0 {
				c.report(rt, source.TableProgress{Table: st.ct.ID.String(), Kind: snapKindInitial, Estimate: est, ETA: "unknown"})
				continue
			}
			el := now.Sub(time.Unix(0, startNs))
			rate := float64(rows) / max(el.Seconds(), 1e-9)
			finished := st.done.Load()
			c.report(rt, source.TableProgress{Table: st.ct.ID.String(), Kind: snapKindInitial, Rows: rows, Estimate: est,
				RowsPerSec: int64(rate), ETA: eta(est-rows, rate), Done: finished})
			if final || finished {
				continue
			}
			c.log.Info("snapshot progress", "table", st.ct.ID.String(), "rows", rows, "estimate", st.ct.Estimate,
				"rows_per_sec", int64(rate), "eta", eta(est-rows, rate))
		}
		if final {
			return
		}
		el := now.Sub(began)
		rate := float64(done) / max(el.Seconds(), 1e-9)
		c.log.Info("snapshot progress (all tables)", "rows", done, "estimate", total, "percent", percent(done, total),
			"rows_per_sec", int64(rate), "eta", eta(total-done, rate))
	}
	for {
		select {
		case <-stop:
			update(true)
			return
		case <-t.C:
			update(false)
		}
	}
}

// report hands a table's snapshot progress to the runtime for /status.
func (c *connector) report(rt source.Runtime, p source.TableProgress) {
	if r, ok := rt.(source.ProgressReporter); ok {
		r.ReportSnapshot(p)
	}
}

func eta(left int64, rate float64) string {
	if left <= 0 {
		return "0s"
	}
	if rate <= 0 {
		return "unknown"
	}
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second).String()
}

func percent(done, total int64) string {
	if total <= 0 {
		return "unknown"
	}
	return strconv.FormatFloat(100*float64(done)/float64(total), 'f', 1, 64)
}

// snapWorker reads tables on one connection inside the imported snapshot.
// It only splits the COPY stream into rows and packs their raw text into
// blocks; a pool of snapEncoders decodes and encodes the blocks in
// parallel. Each key appears once in a snapshot, so blocks of one table may
// be emitted in any order; only the snapshot's final record ("last") must
// come last, which the emitting goroutine ensures.
type snapWorker struct {
	conn  *pgx.Conn
	jobs  chan<- *snapBlock
	chunk int

	// per table
	ctx     context.Context
	t       *snapTable
	blk     *snapBlock
	pending []byte
	last    []byte // raw text of the last row read, for the next chunk's key
	opened  bool   // the table's first row has been read
	keyF    [][]byte
	nChunk  int
	seq     int64 // the next block's number in the table
	// binary COPY: the table's plan says so; header and trailer of the
	// current COPY seen.
	binary          bool
	header, trailer bool
}

// snapBlock is up to snapBatchRecords raw COPY rows of one table.
type snapBlock struct {
	t    *snapTable
	raw  []byte
	ends []int // end offset in raw of each row
	// first marks the table's first block: one row, the table's first, or
	// none for an empty table. final marks the table's last block: its last
	// row is encoded twice, with source.snapshot "last_in_data_collection"
	// and "last".
	first, final bool
	// binary: the rows are tuples of binary COPY, else lines of text COPY.
	binary bool
	seq    int64 // number in the table, from 0
}

var snapBlockPool = sync.Pool{New: func() any {
	return &snapBlock{raw: make([]byte, 0, 64<<10), ends: make([]int, 0, snapBatchRecords)}
}}

func (b *snapBlock) full() bool {
	return len(b.ends) >= snapBatchRecords || len(b.raw) >= snapBatchBytes
}

func (w *snapWorker) table(ctx context.Context, t *snapTable) error {
	w.t = t
	w.ctx = ctx
	w.blk = nil
	w.opened = false
	w.seq = 0
	t.started.Store(time.Now().UnixNano())
	n := len(t.shape.cols)
	cols := make([]string, n)
	for i, c := range t.shape.cols {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	sel := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.ct.ID.quoted()
	w.binary = t.plan.binary
	to := ") TO STDOUT"
	if w.binary {
		to = ") TO STDOUT (FORMAT binary)"
	}
	if len(t.pk) == 0 {
		if err := w.copy(ctx, "COPY ("+sel+to); err != nil {
			return err
		}
	} else {
		pkCols := make([]string, len(t.pk))
		for i, k := range t.pk {
			pkCols[i] = cols[k]
		}
		order := strings.Join(pkCols, ", ")
		where := ""
		for {
			q := "COPY (" + sel + where + " ORDER BY " + order + " LIMIT " + strconv.Itoa(w.chunk) + to
			w.nChunk = 0
			if err := w.copy(ctx, q); err != nil {
				return err
			}
			if w.nChunk < w.chunk {
				break
			}
			lits, key, err := w.keyLiterals()
			if err != nil {
				return err
			}
			t.addBound(w.blk.seq, key)
			where = " WHERE (" + order + ") > (" + lits + ")"
		}
	}
	t.done.Store(true)
	if w.blk == nil {
		t.empty.Store(true)
		// An empty table: an empty first and final block tells the
		// emitter that its first row will never come.
		w.newBlock()
		w.blk.first = true
	}
	w.blk.final = true
	return w.dispatch()
}

// keyLiterals turns the primary-key fields of the last row read into SQL
// literals cast to their column types. The text comes from COPY, i.e. the
// type's output function, so the input function reads it back exactly.
func (w *snapWorker) keyLiterals() (string, []string, error) {
	var err error
	if w.binary {
		w.keyF, err = copyBinarySplitRow(w.last, w.keyF[:0])
	} else {
		w.keyF, err = copySplitRow(w.last, w.keyF[:0])
	}
	if err != nil {
		return "", nil, fmt.Errorf("postgres: snapshot of table %s: re-read last key: %w", w.t.ct.ID, err)
	}
	if len(w.keyF) != len(w.t.shape.cols) {
		return "", nil, fmt.Errorf("postgres: snapshot of table %s: COPY row has %d fields, want %d", w.t.ct.ID, len(w.keyF), len(w.t.shape.cols))
	}
	var b strings.Builder
	key := make([]string, 0, len(w.t.pk))
	for i, k := range w.t.pk {
		if i > 0 {
			b.WriteString(", ")
		}
		f := w.keyF[k]
		if f == nil {
			return "", nil, fmt.Errorf("postgres: snapshot of table %s: primary-key column %s is null", w.t.ct.ID, w.t.shape.cols[k].Name)
		}
		if w.binary {
			text, err := w.t.plan.binText[k](f)
			if err != nil {
				return "", nil, fmt.Errorf("postgres: snapshot of table %s: primary-key column %s: %w", w.t.ct.ID, w.t.shape.cols[k].Name, err)
			}
			f = []byte(text)
		}
		key = append(key, string(f))
		b.WriteString("E'")
		for _, ch := range f {
			switch ch {
			case '\'':
				b.WriteString("''")
			case '\\':
				b.WriteString(`\\`)
			default:
				b.WriteByte(ch)
			}
		}
		b.WriteString("'::")
		b.WriteString(w.t.ct.Columns[k].TypeName)
	}
	return b.String(), key, nil
}

func (w *snapWorker) copy(ctx context.Context, sql string) error {
	w.pending = w.pending[:0]
	w.header, w.trailer = false, false
	if _, err := w.conn.PgConn().CopyTo(ctx, w, sql); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("postgres: snapshot of table %s: %w", w.t.ct.ID, err)
	}
	if len(w.pending) > 0 {
		return fmt.Errorf("postgres: snapshot of table %s: COPY output ended inside a row", w.t.ct.ID)
	}
	if w.binary && !w.trailer {
		return fmt.Errorf("postgres: snapshot of table %s: binary COPY output ended without its trailer", w.t.ct.ID)
	}
	return nil
}

// Write receives COPY data. PostgreSQL sends one row per CopyData message,
// but rows split across writes are handled too.
func (w *snapWorker) Write(p []byte) (int, error) {
	if w.binary {
		return w.writeBinary(p)
	}
	n := len(p)
	if len(w.pending) > 0 {
		w.pending = append(w.pending, p...)
		p = w.pending
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		if err := w.row(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	if len(p) > 0 {
		w.pending = append(w.pending[:0], p...)
	} else {
		w.pending = w.pending[:0]
	}
	return n, nil
}

// writeBinary is Write for COPY's binary format: a header, then tuples
// (a field count, then each field's length, -1 for NULL, and bytes), then
// a trailer.
func (w *snapWorker) writeBinary(p []byte) (int, error) {
	n := len(p)
	if len(w.pending) > 0 {
		w.pending = append(w.pending, p...)
		p = w.pending
	}
	for len(p) > 0 {
		if !w.header {
			const fixed = len(copyBinarySignature) + 8 // signature, flags, extension length
			if len(p) < fixed {
				break
			}
			if string(p[:len(copyBinarySignature)]) != copyBinarySignature {
				return 0, fmt.Errorf("postgres: snapshot of table %s: binary COPY output lacks its signature", w.t.ct.ID)
			}
			ext := int(binary.BigEndian.Uint32(p[fixed-4:]))
			if len(p) < fixed+ext {
				break
			}
			p = p[fixed+ext:]
			w.header = true
			continue
		}
		if w.trailer {
			return 0, fmt.Errorf("postgres: snapshot of table %s: binary COPY output goes on after its trailer", w.t.ct.ID)
		}
		l := copyBinaryTupleLen(p)
		if l == 0 {
			break
		}
		if l == 2 && int16(binary.BigEndian.Uint16(p)) < 0 {
			w.trailer = true
		} else if err := w.row(p[:l]); err != nil {
			return 0, err
		}
		p = p[l:]
	}
	if len(p) > 0 {
		w.pending = append(w.pending[:0], p...)
	} else {
		w.pending = w.pending[:0]
	}
	return n, nil
}

// row appends one raw row to the current block. A full block is handed to
// the encoders only when the next row arrives, so the table's last block is
// never empty and can be marked final. The table's first row gets a block
// of its own, handed on at once, so that it is emitted before the others.
func (w *snapWorker) row(line []byte) error {
	if len(w.t.pk) > 0 {
		w.last = append(w.last[:0], line...)
	}
	w.nChunk++
	if w.blk != nil && (w.blk.first || w.blk.full()) {
		if err := w.dispatch(); err != nil {
			return err
		}
	}
	if w.blk == nil {
		w.newBlock()
		w.blk.first = !w.opened
		w.opened = true
	}
	w.blk.raw = append(w.blk.raw, line...)
	w.blk.ends = append(w.blk.ends, len(w.blk.raw))
	return nil
}

func (w *snapWorker) newBlock() {
	w.blk = snapBlockPool.Get().(*snapBlock)
	w.blk.t, w.blk.first, w.blk.final, w.blk.binary = w.t, false, false, w.binary
	w.blk.raw, w.blk.ends = w.blk.raw[:0], w.blk.ends[:0]
	w.blk.seq = w.seq
	w.seq++
}

// dispatch hands the current block to the encoders; errors here surface
// in Write, which aborts the COPY.
func (w *snapWorker) dispatch() error {
	b := w.blk
	w.blk = nil
	select {
	case w.jobs <- b:
		return nil
	case <-w.ctx.Done():
		return errSnapshotStopped
	}
}

var errSnapshotStopped = errors.New("snapshot stopped")

// snapEncoder decodes and encodes blocks of any table. Several run at once;
// plans and Codecs keep no state between calls, so they are shared.
type snapEncoder struct {
	out    chan<- snapBatch
	lsn    pglogrepl.LSN
	txid   int64
	seq    string // source.sequence, the same for every snapshot row
	src    []any
	fields [][]byte
	arena  *snapArena // the current block's
	// val is the row's value up to the end of its after image; spans
	// locate each column's bytes in it, for the key.
	val   []byte
	spans [][2]int
	// The envelope after the after image (source, transaction, op,
	// timestamps) is the same for every row of a block but for
	// source.snapshot: encoded once per block for "true", and for the
	// marks of a table's first and last rows in the blocks that hold them.
	tailTrue, tailFirst, tailLastIn, tailLast []byte
	// source.snapshot values, boxed once: storing a string variable in an
	// interface allocates on every row.
	snapTrue, snapFirst, snapFirstIn, snapLastIn, snapLast any

	now func() time.Time // time.Now; tests fix it
	hdr []byte           // scratch for the key header
}

func (c *connector) newSnapEncoder(out chan<- snapBatch, lsn pglogrepl.LSN, txid int64) *snapEncoder {
	return &snapEncoder{out: out, lsn: lsn, txid: txid, src: c.sourceValues(),
		snapTrue: schema.SnapshotTrue, snapFirst: schema.SnapshotFirst, snapFirstIn: schema.SnapshotFirstInDataCollection,
		snapLastIn: schema.SnapshotLastInDataCollection, snapLast: schema.SnapshotLast,
		seq: `[null,"` + strconv.FormatUint(uint64(lsn), 10) + `"]`, now: time.Now}
}

// snapPlan is how the encoders write one table's rows: straight from the
// COPY text into Avro, column by column, with an appender for the common
// types and the column's decoder plus the codec for the others.
//
// A table whose every column type has a binary appender is copied in
// binary format instead (binary is set): cheaper for the server, which
// shares the machine, and length-prefixed fields with no escapes.
type snapPlan struct {
	appenders []pgtypeAppender // nil entries use the decoder
	optional  []bool
	valueIdx  []byte // union index of an optional column's value branch

	binary  bool
	bin     []pgtypeBinAppender
	binText []func([]byte) (string, error) // a binary value as literal text, for the next chunk's key
}

func newSnapPlan(sh *shape, codec *schema.Codec, cat pgtypeCatalog) snapPlan {
	n := len(sh.cols)
	p := snapPlan{appenders: make([]pgtypeAppender, n), optional: make([]bool, n), valueIdx: make([]byte, n),
		bin: make([]pgtypeBinAppender, n), binText: make([]func([]byte) (string, error), n), binary: n > 0}
	for i, c := range sh.cols {
		p.appenders[i] = pgtypeAppenderFor(c.TypeOID, c.TypMod, cat)
		p.optional[i], _, p.valueIdx[i] = codec.ColumnUnion(i)
		p.bin[i], p.binText[i] = pgtypeBinaryFor(c.TypeOID, c.TypMod, cat)
		if p.bin[i] == nil {
			p.binary = false
		}
	}
	return p
}

// run encodes blocks until jobs is closed or ctx ends.
func (e *snapEncoder) run(ctx context.Context, jobs <-chan *snapBlock) error {
	for b := range jobs {
		if ctx.Err() != nil {
			continue // drain so the readers can exit
		}
		batch, err := e.block(b)
		snapBlockPool.Put(b)
		if err != nil {
			return err
		}
		select {
		case e.out <- batch:
		case <-ctx.Done():
		}
	}
	return nil
}

// snapRecsPool recycles the record slices of batches once emitted (Emit
// copies what it keeps).
var snapRecsPool = sync.Pool{New: func() any { s := make([]source.Record, 0, snapBatchRecords); return &s }}

func (e *snapEncoder) block(b *snapBlock) (snapBatch, error) {
	t := b.t
	e.src[schema.PGSrcSchema] = t.ct.ID.Schema
	e.src[schema.PGSrcTable] = t.ct.ID.Name
	e.src[schema.PGSrcTxID] = e.txid
	e.src[schema.PGSrcLSN] = int64(e.lsn)
	e.src[schema.PGSrcXmin] = nil
	e.src[schema.SrcSequence] = e.seq
	// The read time, taken once per block: it is part of the block's
	// constant tail.
	now := e.now()
	tsUs := now.UnixMicro()
	e.src[schema.SrcTsMs] = now.UnixMilli()
	e.src[schema.SrcTsUs] = tsUs
	e.src[schema.SrcTsNs] = now.UnixNano()
	env := schema.Envelope{Op: schema.OpRead, Source: e.src, TsUs: tsUs}
	tail := func(dst []byte, mark any) ([]byte, error) {
		e.src[schema.SrcSnapshot] = mark
		dst, err := t.codec.AppendTail(dst[:0], &env)
		if err != nil {
			return dst, fmt.Errorf("postgres: snapshot of table %s: encode snapshot row: %w", t.ct.ID, err)
		}
		return dst, nil
	}
	var err error
	if e.tailTrue, err = tail(e.tailTrue, e.snapTrue); err != nil {
		return snapBatch{}, err
	}
	// The marks of Debezium's SnapshotMarker: a table's first row is
	// "first_in_data_collection" ("first" for the snapshot's first), its
	// last "last_in_data_collection", which wins over the first mark in a
	// one-row table but for the snapshot's first; the snapshot's last row
	// is "last", which the emitting goroutine picks at the end.
	firstMark, lastInMark := e.snapFirstIn, e.snapLastIn
	if t.firstOfSnapshot {
		firstMark = e.snapFirst
	}
	if b.first && b.final && t.firstOfSnapshot {
		// A one-row first table: "first" wins over
		// "last_in_data_collection". Its row is held back like every
		// table's final row (it may still turn out to be "last"), so it is
		// emitted when the next table ends, not before all others.
		lastInMark = e.snapFirst
	}
	if b.first {
		if e.tailFirst, err = tail(e.tailFirst, firstMark); err != nil {
			return snapBatch{}, err
		}
	}
	if b.final {
		if e.tailLastIn, err = tail(e.tailLastIn, lastInMark); err != nil {
			return snapBatch{}, err
		}
		if e.tailLast, err = tail(e.tailLast, e.snapLast); err != nil {
			return snapBatch{}, err
		}
	}

	recs := snapRecsPool.Get().(*[]source.Record)
	e.arena = snapArenaPool.Get().(*snapArena)
	out := snapBatch{t: t, seq: b.seq, recs: (*recs)[:0], recsBuf: recs, arena: e.arena}
	if b.first {
		out.opens = t
	}
	if b.final {
		out.tableDone = t
	}
	start := 0
	for i, end := range b.ends {
		if err := e.row(t, b.raw[start:end], b.binary); err != nil {
			return out, err
		}
		start = end
		if b.final && i == len(b.ends)-1 {
			// Emitted after other blocks, one by one: they get their own
			// memory rather than the block's recycled arena.
			rt := e.record(t, e.tailLastIn, nil)
			rl := e.record(t, e.tailLast, nil)
			out.lastInTable, out.lastLast = &rt, &rl
			break
		}
		rowTail := e.tailTrue
		if b.first && i == 0 {
			rowTail = e.tailFirst
		}
		out.recs = append(out.recs, e.record(t, rowTail, e.arena))
	}
	t.rows.Add(int64(len(b.ends)))
	return out, nil
}

// row splits one raw row (decoding escapes in place, or a binary tuple)
// and writes its value up to the end of the after image into e.val.
func (e *snapEncoder) row(t *snapTable, line []byte, binary bool) error {
	if binary {
		return e.binaryRow(t, line)
	}
	p := &t.plan
	var err error
	e.fields, err = copySplitRow(line, e.fields[:0])
	if err != nil {
		return fmt.Errorf("postgres: snapshot of table %s: COPY row: %w", t.ct.ID, err)
	}
	if len(e.fields) != len(t.shape.cols) {
		return fmt.Errorf("postgres: snapshot of table %s: COPY row has %d fields, want %d", t.ct.ID, len(e.fields), len(t.shape.cols))
	}
	if len(e.spans) < len(e.fields) {
		e.spans = make([][2]int, len(e.fields))
	}
	v := t.codec.AppendAfterHead(e.val[:0])
	for i, f := range e.fields {
		start := len(v)
		switch {
		case f == nil:
			v, err = t.codec.AppendColumn(v, i, nil)
		case p.appenders[i] != nil:
			if p.optional[i] {
				v = append(v, p.valueIdx[i])
			}
			v, err = p.appenders[i](v, f)
		default:
			var x any
			if x, err = t.shape.decoders[i](f); err == nil {
				v, err = t.codec.AppendColumn(v, i, x)
			}
		}
		if err != nil {
			e.val = v
			return fmt.Errorf("postgres: snapshot of table %s column %s: value %s: %w", t.ct.ID, t.shape.cols[i].Name, clip(f), err)
		}
		e.spans[i] = [2]int{start, len(v)}
	}
	e.val = v
	return nil
}

// binaryRow is row for a tuple of binary COPY.
func (e *snapEncoder) binaryRow(t *snapTable, tuple []byte) error {
	var err error
	e.fields, err = copyBinarySplitRow(tuple, e.fields[:0])
	if err != nil {
		return fmt.Errorf("postgres: snapshot of table %s: COPY row: %w", t.ct.ID, err)
	}
	if len(e.fields) != len(t.shape.cols) {
		return fmt.Errorf("postgres: snapshot of table %s: COPY row has %d fields, want %d", t.ct.ID, len(e.fields), len(t.shape.cols))
	}
	if len(e.spans) < len(e.fields) {
		e.spans = make([][2]int, len(e.fields))
	}
	p := &t.plan
	v := t.codec.AppendAfterHead(e.val[:0])
	for i, f := range e.fields {
		start := len(v)
		if f == nil {
			v, err = t.codec.AppendColumn(v, i, nil)
		} else {
			if p.optional[i] {
				v = append(v, p.valueIdx[i])
			}
			v, err = p.bin[i](v, f)
		}
		if err != nil {
			e.val = v
			return fmt.Errorf("postgres: snapshot of table %s column %s: binary value %x: %w", t.ct.ID, t.shape.cols[i].Name, f[:min(len(f), 40)], err)
		}
		e.spans[i] = [2]int{start, len(v)}
	}
	e.val = v
	return nil
}

// record copies the row in e.val with the given tail, and its key, into
// memory of arena (a fresh allocation when arena is nil).
func (e *snapEncoder) record(t *snapTable, tail []byte, arena *snapArena) source.Record {
	keyCols := t.codec.KeyColumns()
	klen := 0
	if len(keyCols) > 0 {
		e.hdr = t.codec.AppendKeyHeader(e.hdr[:0])
		klen = len(e.hdr)
		for _, k := range keyCols {
			klen += e.spans[k][1] - e.spans[k][0]
		}
	}
	vlen := len(e.val) + len(tail)
	var buf []byte
	if arena != nil {
		buf = arena.alloc(klen + vlen)
	} else {
		buf = make([]byte, klen+vlen)
	}
	rec := source.Record{Topic: t.shape.table.Topic}
	if len(keyCols) > 0 {
		k := t.codec.AppendKeyHeader(buf[:0])
		for _, c := range keyCols {
			k = append(k, e.val[e.spans[c][0]:e.spans[c][1]]...)
		}
		rec.Key = k[:klen:klen]
	}
	v := append(append(buf[klen:klen], e.val...), tail...)
	rec.Value = v[:vlen:vlen]
	return rec
}

// snapArena holds the bytes of one block's records: chunks of
// snapChunkBytes from a pool, carved in order. The block's records are
// emitted together, and once the log has acknowledged them all the chunks
// go back to the pool (source.BatchEmitter's done): no allocation, hence
// no zeroing and far fewer garbage collections, per ~64 KiB of events. The
// chunks in use are bounded by the records in flight.
type snapArena struct {
	chunks []*[]byte
	free   []byte // unused tail of the last chunk
}

const snapChunkBytes = 64 << 10

// snapChunkFree keeps released chunks for the next blocks. Unlike a
// sync.Pool it is not emptied by every garbage collection, which during a
// snapshot comes often enough that most chunks were allocated (and zeroed)
// again. It holds at most snapChunkFreeMax chunks (8 MiB); runSnapshot
// empties it when done (chunks of records still in flight then may come
// back to it, within the same bound).
var (
	snapChunkFree = make(chan *[]byte, snapChunkFreeMax)
	snapArenaPool = sync.Pool{New: func() any { return new(snapArena) }}
)

const snapChunkFreeMax = 128

func snapChunkGet() *[]byte {
	select {
	case c := <-snapChunkFree:
		return c
	default:
		b := make([]byte, snapChunkBytes)
		return &b
	}
}

func snapChunkPut(c *[]byte) {
	select {
	case snapChunkFree <- c:
	default: // full: left to the garbage collector
	}
}

// snapChunksDrop empties the free list, so an idle worker keeps no chunks.
func snapChunksDrop() {
	for {
		select {
		case <-snapChunkFree:
		default:
			return
		}
	}
}

// alloc returns n bytes with exactly n bytes of capacity. A record larger
// than a chunk gets its own allocation, never pooled.
func (a *snapArena) alloc(n int) []byte {
	if n > len(a.free) {
		if n > snapChunkBytes {
			return make([]byte, n)
		}
		c := snapChunkGet()
		a.chunks = append(a.chunks, c)
		a.free = *c
	}
	b := a.free[:n:n]
	a.free = a.free[n:]
	return b
}

// release returns the chunks and the arena to their pools. Nothing may
// refer to the arena's records afterwards.
func (a *snapArena) release() {
	for i, c := range a.chunks {
		snapChunkPut(c)
		a.chunks[i] = nil
	}
	a.chunks, a.free = a.chunks[:0], nil
	snapArenaPool.Put(a)
}

// snapSlabBytes is the size of the blocks snapshot records are carved from.
// A tail shorter than snapSlabMinTail is dropped rather than tried.
const (
	snapSlabBytes   = 64 << 10
	snapSlabMinTail = 512
)

// recordSlab encodes records straight into a shared block and hands out
// exact-capacity slices of it: one allocation per ~64 KiB of events
// instead of one per event. A block stays alive until every record cut
// from it is acknowledged, which the in-flight bound already limits.
type recordSlab struct {
	free []byte // unused tail of the current block
}

func (s *recordSlab) encode(codec *schema.Codec, topic string, keyRow []any, env *schema.Envelope) (source.Record, error) {
	if cap(s.free) < snapSlabMinTail {
		s.free = make([]byte, 0, snapSlabBytes)
	}
	for attempt := 0; ; attempt++ {
		dst := s.free[:0]
		kb, err := codec.AppendKey(dst, keyRow)
		if err != nil {
			return source.Record{}, fmt.Errorf("key: %w", err)
		}
		klen := -1
		if kb != nil {
			klen = len(kb)
			dst = kb
		}
		vb, err := codec.AppendEnvelope(dst[:max(klen, 0)], env)
		if err != nil {
			return source.Record{}, fmt.Errorf("value: %w", err)
		}
		if len(vb) > cap(s.free) || &vb[:1][0] != &s.free[:1][0] {
			// The record outgrew the block's tail (append moved it): start
			// a new block big enough for it and encode again there, so a
			// record never straddles two blocks.
			if attempt > 0 {
				return source.Record{}, fmt.Errorf("encoding is not deterministic in size (%d bytes)", len(vb))
			}
			s.free = make([]byte, 0, max(snapSlabBytes, 2*len(vb)))
			continue
		}
		n := len(vb)
		rec := source.Record{Topic: topic, Value: vb[max(klen, 0):n:n]}
		if klen >= 0 {
			rec.Key = vb[:klen:klen]
		}
		s.free = s.free[n:n:cap(s.free)]
		return rec, nil
	}
}

// encodeRecord encodes key and envelope into the reusable buf, then copies
// them into one exact-size allocation owned by the returned record.
// largeRecordBytes is the size from which a record's buffers are not kept
// for reuse: reusing them saves allocations for ordinary rows, but would keep
// a copy of a rare huge row alive.
const largeRecordBytes = 1 << 20

func encodeRecord(codec *schema.Codec, topic string, buf []byte, keyRow []any, env *schema.Envelope) (source.Record, []byte, error) {
	kb, err := codec.AppendKey(buf[:0], keyRow)
	if err != nil {
		return source.Record{}, buf, fmt.Errorf("key: %w", err)
	}
	klen := -1
	if kb != nil {
		klen = len(kb)
		buf = kb
	}
	vb, err := codec.AppendEnvelope(buf[:max(klen, 0)], env)
	if err != nil {
		return source.Record{}, buf, fmt.Errorf("value: %w", err)
	}
	if len(vb) >= largeRecordBytes {
		// A large record takes the scratch buffer itself rather than a
		// copy of it, and the next record starts a new, small one: one
		// copy of a 100 MB value fewer at the peak, and none kept.
		rec := source.Record{Topic: topic, Value: vb[max(klen, 0):]}
		if klen >= 0 {
			rec.Key = vb[:klen:klen]
		}
		return rec, nil, nil
	}
	out := make([]byte, len(vb))
	copy(out, vb)
	rec := source.Record{Topic: topic, Value: out[max(klen, 0):]}
	if klen >= 0 {
		rec.Key = out[:klen:klen]
	}
	return rec, vb, nil
}

// clip shortens a value for an error message.
func clip(b []byte) string {
	const n = 80
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}

// alteredDuringSnapshot tells a table altered while the snapshot read it
// from a real failure. PostgreSQL rewrites a table for some ALTERs (a
// column's type, a volatile default) in a way MVCC does not hide, so an old
// snapshot then reads rows in the new shape and decoding them with the
// shape read at the start fails. That heals by a restart: the snapshot's
// progress is in the offset, and the rest is read incrementally with the
// table's new shape. Any other failure is returned as it is.
func (c *connector) alteredDuringSnapshot(ctx context.Context, tables []*snapTable, err error) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, cerr := c.connectBulk(ctx)
	if cerr != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, t := range tables {
		rows, qerr := conn.Query(ctx, `SELECT attname, atttypid, atttypmod FROM pg_attribute
			WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, t.ct.ID.quoted())
		if qerr != nil {
			continue
		}
		var now []colSpec
		for rows.Next() {
			var cs colSpec
			if rows.Scan(&cs.Name, &cs.TypeOID, &cs.TypMod) == nil {
				now = append(now, cs)
			}
		}
		rows.Close()
		if rows.Err() != nil || len(now) == 0 {
			continue
		}
		changed := len(now) != len(t.shape.cols)
		for i := 0; !changed && i < len(now); i++ {
			was := t.shape.cols[i]
			changed = now[i].Name != was.Name || now[i].TypeOID != was.TypeOID || now[i].TypMod != was.TypMod
		}
		if changed {
			return &faults.RestartHeals{Err: fmt.Errorf("postgres: table %s was altered while the snapshot read it; a restart resumes the snapshot from its last completed chunk with the new shape: %w", t.ct.ID, err)}
		}
	}
	return err
}

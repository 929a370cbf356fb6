package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Incremental snapshots: DBLog's watermark algorithm, run by the streamer.
//
// A table is read in chunks of snapshot_chunk_rows rows in key order
// (primary key, else key_columns) while the change stream goes on. For each
// chunk the streamer, between two messages of the stream:
//
//  1. writes a low watermark into the WAL, pg_logical_emit_message(false,
//     'tributary-wm', 'L:<id>') (non-transactional: in the WAL at once);
//  2. reads the chunk, SELECT ... WHERE (key) > (last key) ORDER BY key
//     LIMIT n, in a REPEATABLE READ transaction, and keeps it in memory
//     (bounded by snapshot_chunk_rows);
//  3. writes the high watermark 'H:<id>'.
//
// It then goes on reading the stream. Every change of the table that the
// stream delivers between the two watermarks marks its key; at the high
// watermark the chunk's rows whose key was not marked are emitted as op=r
// with source.snapshot "incremental", and the chunk's last key is recorded
// in the offset with the position of the high watermark. A marked row is
// dropped from the chunk: the streamed change, emitted before and at least
// as new as the chunk's copy, wins. Changes after the high watermark are
// emitted after the chunk. So for every key the log ends with its latest
// state, whatever the interleaving (DBLog, Andreakis & Papapanagiotou 2020).
//
// One gap of the plain algorithm is closed: a transaction whose commit
// record is in the WAL before the low watermark can still be invisible to
// the chunk's snapshot (its commit is not yet visible in the proc array).
// Changes of transactions that the chunk's snapshot (pg_current_snapshot())
// does not see also mark their keys when the stream delivers them after the
// chunk was read, even before the low watermark.
//
// The other way round, a transaction the stream already delivered (its
// commit record flushed) may not be visible yet when the chunk's snapshot
// is taken: its backend has not left the proc array. The chunk would then
// hold rows older than changes emitted before it. The streamer remembers
// the ids of the last transactions it emitted; a chunk snapshot that does
// not see one of them is taken again a moment later.
//
// A truncate of the table or a change of its columns inside the window
// discards the chunk, which is read again.
//
// Progress (snapTask) lives in the source offset record, so a restart
// resumes at the chunk after the last completed one; watermarks of an
// earlier process carry another id and are ignored.

// watermarkPrefix is the pg_logical_emit_message prefix of watermarks.
const watermarkPrefix = "tributary-wm"

// Snapshot kinds recorded in a snapTask.
const (
	snapKindInitial  = "initial"   // the rest of an interrupted initial snapshot
	snapKindAdded    = "added"     // a table added to `tables`
	snapKindOnDemand = "on_demand" // asked for with `tributary snapshot`
)

// snapTask is one table snapshot still to do, as kept in the offset.
type snapTask struct {
	Table string // schema.table
	Kind  string
	// After is the text form of the paging key of the last row of the last
	// completed chunk, in paging-column order; nil before the first chunk.
	After []string
	// Where is an optional SQL condition selecting the rows to read.
	Where string
	// Rows counts the rows emitted so far.
	Rows int64
}

func (t snapTask) toMap() map[string]any {
	m := map[string]any{"table": t.Table, "kind": t.Kind, "rows": t.Rows}
	if t.After != nil {
		a := make([]any, len(t.After))
		for i, s := range t.After {
			a[i] = s
		}
		m["after"] = a
	}
	if t.Where != "" {
		m["where"] = t.Where
	}
	return m
}

func parseSnapTask(v any) (snapTask, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return snapTask{}, fmt.Errorf("want an object, got %T", v)
	}
	var t snapTask
	if t.Table, ok = m["table"].(string); !ok || t.Table == "" {
		return snapTask{}, fmt.Errorf("no table name: %v", m)
	}
	t.Kind, _ = m["kind"].(string)
	t.Where, _ = m["where"].(string)
	if r, ok := m["rows"]; ok && r != nil {
		n, err := anyToInt64(r)
		if err != nil {
			return snapTask{}, fmt.Errorf("rows: %w", err)
		}
		t.Rows = n
	}
	if a, ok := m["after"]; ok && a != nil {
		list, ok := a.([]any)
		if !ok {
			return snapTask{}, fmt.Errorf("after: want a list, got %T", a)
		}
		t.After = make([]string, len(list))
		for i, x := range list {
			if t.After[i], ok = x.(string); !ok {
				return snapTask{}, fmt.Errorf("after[%d]: want a string, got %T", i, x)
			}
		}
	}
	return t, nil
}

// tableNames lists the captured tables as offsets record them.
func (c *connector) tableNames() []string {
	out := make([]string, len(c.tables))
	for i, ct := range c.tables {
		out[i] = ct.ID.String()
	}
	return out
}

// keyless reports a table the watermark algorithm cannot read: neither a
// primary key nor key_columns to page and match keys by.
func (c *connector) keyless(ct *catalogTable) bool {
	return len(ct.PK) == 0 && len(c.cfg.keyColumnsFor(ct.ID.Schema, ct.ID.Name)) == 0
}

func keylessError(id tableID) error {
	return fmt.Errorf("postgres: table %s has no primary key and no key_columns, so it cannot be snapshotted incrementally "+
		"(chunks are read in key order and matched with the change stream by key): add a primary key or set key_columns: {%q: [columns]}", id, id.String())
}

// snapTasks reconciles the offset's recorded tables and pending snapshots
// with the configured tables: tables no longer configured are dropped (with
// a log line; their topics are kept), tables configured since are queued
// for an incremental snapshot.
func (c *connector) snapTasks(off pgOffset) ([]snapTask, error) {
	configured := map[string]*catalogTable{}
	for _, ct := range c.tables {
		configured[ct.ID.String()] = ct
	}
	var tasks []snapTask
	queued := map[string]bool{}
	for _, t := range off.Snaps {
		// Requests recorded by `tributary snapshot` name tables as written.
		if p, err := parseTablePattern(t.Table); err == nil && !p.isPattern() {
			t.Table = tableID{p.schema, p.table}.String()
		}
		if configured[t.Table] == nil {
			c.log.Warn("table with a pending snapshot is not in tables; its snapshot is dropped", "table", t.Table, "kind", t.Kind)
			continue
		}
		tasks = append(tasks, t)
		queued[t.Table] = true
	}
	if off.Tables != nil {
		recorded := map[string]bool{}
		for _, t := range off.Tables {
			recorded[t] = true
			if configured[t] == nil {
				c.log.Warn("table removed from tables: it is no longer captured (its topic is kept)", "table", t)
			}
		}
		for _, ct := range c.tables {
			name := ct.ID.String()
			if recorded[name] || queued[name] {
				continue
			}
			if c.cfg.Snapshot == SnapshotNever {
				c.log.Info("table added to tables: only its changes from now on are captured (snapshot: never)", "table", name)
				continue
			}
			c.log.Info("table added to tables: snapshotting it incrementally while streaming", "table", name)
			tasks = append(tasks, snapTask{Table: name, Kind: snapKindAdded})
			queued[name] = true
		}
	}
	for _, t := range tasks {
		if ct := configured[t.Table]; c.keyless(ct) {
			return nil, keylessError(ct.ID)
		}
	}
	return tasks, nil
}

type incPhase int

const (
	incIdle     incPhase = iota // no chunk read: read the next one
	incWaitLow                  // chunk read, low watermark not reached in the stream
	incInWindow                 // between the watermarks
)

// incTable is the table being snapshotted incrementally.
type incTable struct {
	ct    *catalogTable
	sh    *shape
	codec *schema.Codec
	page  []int  // columns of the paging key
	sql   string // chunk query without the lower bound
	sqlAt string // chunk query with the lower bound $1..$n
	began time.Time
	rows0 int64 // rows of the task when this process started it
	logAt time.Time

	gaugeRows, gaugeTotal prometheus.Gauge
}

// incSnap is the state of the incremental snapshots of a streamer.
type incSnap struct {
	tasks []snapTask // tasks[0] runs; replaced, never changed in place (offsets share them)
	cur   *incTable
	run   string // this process's watermark id prefix
	n     uint64 // chunks read by this process
	phase incPhase
	low   string // the current chunk's watermark contents
	high  string
	recs  []source.Record
	last  []string // paging key of the chunk's last row
	full  bool     // the chunk has chunk rows: more may follow
	// redo discards the chunk at the high watermark (truncate, new columns).
	redo    bool
	changed map[string]struct{} // keys (without the schema-id header) changed in the window
	// The chunk's snapshot: transactions it does not see mark keys even
	// before the low watermark.
	xmax uint32
	xip  map[uint32]bool
	buf  []byte
	src  []any
	done bool // every task finished (logged once)
}

func newIncSnap(c *connector, tasks []snapTask) *incSnap {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &incSnap{tasks: tasks, run: hex.EncodeToString(b[:]), changed: map[string]struct{}{}, src: c.sourceValues()}
}

// invisible reports whether transaction xid is not seen by the chunk's
// snapshot (32-bit transaction ids compared modulo 2^32).
func (in *incSnap) invisible(xid uint32) bool {
	return int32(xid-in.xmax) >= 0 || in.xip[xid]
}

// active reports whether incremental snapshot work is pending.
func (s *streamer) incActive() bool { return s.inc != nil && !s.inc.done }

// startChunk reads the next chunk between new watermarks, or finishes.
func (s *streamer) startChunk(ctx context.Context) error {
	in := s.inc
	for in.cur == nil {
		if len(in.tasks) == 0 {
			in.done = true
			if m := s.rt.Metrics(); m != nil && m.SnapshotRunning != nil {
				m.SnapshotRunning.WithLabelValues(s.c.name).Set(0)
			}
			s.c.log.Info("incremental snapshots complete")
			return nil
		}
		t, err := s.loadIncTable(ctx, in.tasks[0])
		if err != nil {
			return err
		}
		in.cur = t
	}
	t, task := in.cur, in.tasks[0]
	in.n++
	id := in.run + ":" + strconv.FormatUint(in.n, 10)
	in.low, in.high = "L:"+id, "H:"+id
	var lowText string
	if err := s.meta.QueryRow(ctx, `SELECT pg_logical_emit_message(false, $1, $2)::text`, watermarkPrefix, in.low).Scan(&lowText); err != nil {
		return s.c.watermarkError(err)
	}
	lowLSN, _ := pglogrepl.ParseLSN(lowText)
	if err := s.readChunk(ctx, t, task, lowLSN); err != nil {
		return err
	}
	if _, err := s.meta.Exec(ctx, `SELECT pg_logical_emit_message(false, $1, $2)`, watermarkPrefix, in.high); err != nil {
		return s.c.watermarkError(err)
	}
	in.phase = incWaitLow
	in.redo = false
	clear(in.changed)
	return nil
}

// watermarkError explains a failed pg_logical_emit_message.
func (c *connector) watermarkError(err error) error {
	return fmt.Errorf("postgres: write a snapshot watermark with pg_logical_emit_message on %s: %w "+
		"(the user needs EXECUTE on pg_logical_emit_message, which the REPLICATION attribute does not give: "+
		"run GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO %s; as a superuser)",
		c.where(), err, pgx.Identifier{c.connCfg.User}.Sanitize())
}

// loadIncTable prepares the table of a task from the current catalog.
func (s *streamer) loadIncTable(ctx context.Context, task snapTask) (*incTable, error) {
	c := s.c
	p, err := parseTablePattern(task.Table)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot of table %q: %w", task.Table, err)
	}
	id := tableID{p.schema, p.table}
	ct, err := loadCatalogTable(ctx, s.meta, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: incremental snapshot: %w", err)
	}
	key := c.cfg.keyColumnsFor(id.Schema, id.Name)
	if key == nil {
		key = ct.PK
	}
	if len(key) == 0 {
		return nil, keylessError(id)
	}
	pageNames := ct.PK
	if len(pageNames) == 0 {
		pageNames = key
	}
	cols := make([]colSpec, len(ct.Columns))
	quoted := make([]string, len(ct.Columns))
	for i, col := range ct.Columns {
		cols[i] = colSpec{Name: col.Name, TypeOID: col.TypeOID, TypMod: col.TypMod}
		quoted[i] = pgx.Identifier{col.Name}.Sanitize()
	}
	sh, err := buildShape(c.cfg.TopicPrefixValue, id, cols, key, s.cat)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	codec, err := s.rt.Codec(ctx, &sh.table, s.srcBlock)
	if err != nil {
		return nil, fmt.Errorf("postgres: table %s: schema: %w", id, err)
	}
	t := &incTable{ct: ct, sh: sh, codec: codec, began: time.Now(), rows0: task.Rows}
	var order, params []string
	for i, name := range pageNames {
		j, ok := ct.column(name)
		if !ok {
			return nil, fmt.Errorf("postgres: incremental snapshot of table %s: key column %q does not exist", id, name)
		}
		t.page = append(t.page, j)
		order = append(order, quoted[j])
		params = append(params, "$"+strconv.Itoa(i+1)+"::"+ct.Columns[j].TypeName)
	}
	if task.After != nil && len(task.After) != len(t.page) {
		return nil, fmt.Errorf("postgres: incremental snapshot of table %s: the recorded last key has %d columns, the key now %d (%s)",
			id, len(task.After), len(t.page), strings.Join(pageNames, ", "))
	}
	sel := "SELECT " + strings.Join(quoted, ", ") + " FROM " + id.quoted()
	ord := strings.Join(order, ", ")
	limit := " ORDER BY " + ord + " LIMIT " + strconv.Itoa(c.cfg.SnapshotChunkRows)
	cond := ""
	if task.Where != "" {
		cond = "(" + task.Where + ")"
	}
	if cond == "" {
		t.sql = sel + limit
		t.sqlAt = sel + " WHERE (" + ord + ") > (" + strings.Join(params, ", ") + ")" + limit
	} else {
		t.sql = sel + " WHERE " + cond + limit
		t.sqlAt = sel + " WHERE (" + ord + ") > (" + strings.Join(params, ", ") + ") AND " + cond + limit
	}
	if m := s.rt.Metrics(); m != nil {
		if m.SnapshotRunning != nil {
			m.SnapshotRunning.WithLabelValues(c.name).Set(1)
		}
		if m.SnapshotRows != nil {
			t.gaugeRows = m.SnapshotRows.WithLabelValues(c.name, id.String())
			t.gaugeRows.Set(float64(task.Rows))
		}
		if m.SnapshotTotal != nil {
			t.gaugeTotal = m.SnapshotTotal.WithLabelValues(c.name, id.String())
			t.gaugeTotal.Set(float64(max(ct.Estimate, task.Rows)))
		}
	}
	c.report(s.rt, source.TableProgress{Table: id.String(), Kind: task.Kind, Rows: task.Rows, Estimate: max(ct.Estimate, task.Rows), ETA: "unknown"})
	c.log.Info("incremental snapshot of table started", "table", id.String(), "kind", task.Kind,
		"resumed_after_key", task.After, "rows_so_far", task.Rows, "estimate", ct.Estimate, "where", task.Where)
	return t, nil
}

// readChunk reads one chunk in its own transaction and encodes its rows.
func (s *streamer) readChunk(ctx context.Context, t *incTable, task snapTask, lowLSN pglogrepl.LSN) error {
	in := s.inc
	id := t.ct.ID
	var tx pgx.Tx
	for attempt := 0; ; attempt++ {
		var err error
		tx, err = s.meta.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return fmt.Errorf("postgres: incremental snapshot of table %s: begin: %w", id, err)
		}
		var snap string
		if err := tx.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&snap); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return fmt.Errorf("postgres: incremental snapshot of table %s: read snapshot: %w", id, err)
		}
		if err := in.setSnapshot(snap); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return fmt.Errorf("postgres: incremental snapshot of table %s: snapshot %q: %w", id, snap, err)
		}
		xid, late := s.emittedInvisible()
		if !late {
			break
		}
		_ = tx.Rollback(context.WithoutCancel(ctx))
		if attempt == 1000 {
			return fmt.Errorf("postgres: incremental snapshot of table %s: transaction %d, already streamed, stays invisible to new snapshots (%s)", id, xid, snap)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	sql, params := t.sql, [][]byte(nil)
	if task.After != nil {
		sql = t.sqlAt
		for _, k := range task.After {
			params = append(params, []byte(k))
		}
	}
	res := tx.Conn().PgConn().ExecParams(ctx, sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("postgres: incremental snapshot of table %s: read chunk (%s): %w", id, sql, res.Err)
	}
	if len(res.FieldDescriptions) != len(t.sh.cols) {
		return fmt.Errorf("postgres: incremental snapshot of table %s: chunk has %d columns, want %d", id, len(res.FieldDescriptions), len(t.sh.cols))
	}
	src := in.src
	src[schema.PGSrcSchema] = id.Schema
	src[schema.PGSrcTable] = id.Name
	src[schema.PGSrcLSN] = int64(lowLSN)
	src[schema.PGSrcTxID] = nil
	src[schema.PGSrcXmin] = nil
	src[schema.SrcSequence] = `[null,"` + strconv.FormatUint(uint64(lowLSN), 10) + `"]`
	src[schema.SrcSnapshot] = "incremental"
	now := time.Now()
	src[schema.SrcTsMs] = now.UnixMilli()
	src[schema.SrcTsUs] = now.UnixMicro()
	src[schema.SrcTsNs] = now.UnixNano()
	row := make([]any, len(t.sh.cols))
	in.recs = in.recs[:0]
	for _, r := range res.Rows {
		for i, f := range r {
			if f == nil {
				row[i] = nil
				continue
			}
			v, err := t.sh.decoders[i](f)
			if err != nil {
				return fmt.Errorf("postgres: incremental snapshot of table %s column %s: value %s: %w", id, t.sh.cols[i].Name, clip(f), err)
			}
			row[i] = v
		}
		env := schema.Envelope{Op: schema.OpRead, After: row, Source: src, TsUs: now.UnixMicro()}
		rec, buf, err := encodeRecord(t.codec, t.sh.table.Topic, in.buf, row, &env)
		in.buf = buf
		if err != nil {
			return fmt.Errorf("postgres: incremental snapshot of table %s: encode row: %w", id, err)
		}
		in.recs = append(in.recs, rec)
	}
	in.full = len(res.Rows) >= s.c.cfg.SnapshotChunkRows
	in.last = nil
	if n := len(res.Rows); n > 0 {
		last := res.Rows[n-1]
		in.last = make([]string, len(t.page))
		for i, j := range t.page {
			if last[j] == nil {
				return fmt.Errorf("postgres: incremental snapshot of table %s: key column %s is null", id, t.sh.cols[j].Name)
			}
			in.last[i] = string(last[j])
		}
	}
	return tx.Commit(ctx)
}

// emittedInvisible reports a transaction already emitted that the chunk's
// snapshot does not see.
func (s *streamer) emittedInvisible() (uint32, bool) {
	in := s.inc
	n := min(s.recentN, recentXids)
	for i := 0; i < n; i++ {
		if x := s.recent[i]; in.invisible(x) {
			return x, true
		}
	}
	return 0, false
}

// setSnapshot reads pg_current_snapshot()'s text, xmin:xmax:xip,...
func (in *incSnap) setSnapshot(text string) error {
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return fmt.Errorf("want xmin:xmax:xip")
	}
	xmax, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return err
	}
	in.xmax = uint32(xmax)
	in.xip = map[uint32]bool{}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return err
			}
			in.xip[uint32(v)] = true
		}
	}
	return nil
}

// watermark handles a watermark message of the stream at lsn.
func (s *streamer) watermark(ctx context.Context, content string, lsn pglogrepl.LSN) error {
	in := s.inc
	if in == nil || in.phase == incIdle {
		return nil
	}
	switch content {
	case in.low:
		in.phase = incInWindow
		return nil
	case in.high:
		return s.finishChunk(ctx, lsn)
	}
	return nil // an earlier process's or chunk's watermark
}

// markChanged notes a key the stream changed while a chunk is pending.
func (s *streamer) markChanged(rel *relState, key []byte) {
	in := s.inc
	if in == nil || in.phase == incIdle || in.cur == nil || rel.shape.id != in.cur.ct.ID || len(key) < 5 {
		return
	}
	if in.phase == incInWindow || in.invisible(s.xid) {
		in.changed[string(key[5:])] = struct{}{}
	}
}

// redoChunk discards the pending chunk of table id, if any.
func (s *streamer) redoChunk(id tableID, why string) {
	in := s.inc
	if in == nil || in.phase == incIdle || in.cur == nil || in.cur.ct.ID != id {
		return
	}
	s.c.log.Info("incremental snapshot: chunk read again", "table", id.String(), "reason", why)
	in.redo = true
}

// finishChunk emits the chunk at its high watermark.
func (s *streamer) finishChunk(ctx context.Context, lsn pglogrepl.LSN) error {
	in := s.inc
	t := in.cur
	in.phase = incIdle
	if in.redo {
		in.recs = in.recs[:0]
		in.cur = nil // the columns may have changed: read the catalog again
		return nil
	}
	emitted := int64(0)
	for _, r := range in.recs {
		if _, ok := in.changed[string(r.Key[5:])]; ok {
			continue
		}
		if err := s.rt.Emit(ctx, r); err != nil {
			return fmt.Errorf("postgres: emit: %w", err)
		}
		emitted++
	}
	clear(in.recs)
	in.recs = in.recs[:0]
	task := in.tasks[0]
	task.Rows += emitted
	if in.last != nil {
		task.After = in.last
	}
	id := t.ct.ID.String()
	if t.gaugeRows != nil {
		t.gaugeRows.Set(float64(task.Rows))
	}
	now := time.Now()
	rate := float64(task.Rows-t.rows0) / max(now.Sub(t.began).Seconds(), 1e-9)
	est := max(t.ct.Estimate, task.Rows)
	if t.gaugeTotal != nil {
		t.gaugeTotal.Set(float64(est))
	}
	prog := source.TableProgress{Table: id, Kind: task.Kind, Rows: task.Rows, Estimate: est, RowsPerSec: int64(rate),
		ETA: eta(est-task.Rows, rate), Done: !in.full}
	if !in.full {
		prog.ETA = "0s"
	}
	s.c.report(s.rt, prog)
	if !in.full {
		in.tasks = append([]snapTask(nil), in.tasks[1:]...)
		in.cur = nil
		s.c.log.Info("incremental snapshot of table completed", "table", id, "kind", task.Kind, "rows", task.Rows,
			"duration", now.Sub(t.began).Round(time.Millisecond).String(), "rows_per_sec", int64(rate))
	} else {
		in.tasks = append([]snapTask{task}, in.tasks[1:]...)
		every := s.c.progressEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		if now.Sub(t.logAt) >= every {
			t.logAt = now
			s.c.log.Info("incremental snapshot progress", "table", id, "rows", task.Rows, "estimate", t.ct.Estimate,
				"percent", percent(task.Rows, est), "rows_per_sec", int64(rate), "eta", eta(est-task.Rows, rate),
				"after_key", task.After, "chunks", in.n)
		}
	}
	if s.inTxn || s.inStream {
		return nil // the transaction's commit checkpoints the new progress
	}
	return s.checkpoint(ctx, s.position(lsn), ckptEvery)
}

// progress is the snapshot state an offset written now carries.
func (s *streamer) progress(off *pgOffset) {
	off.Tables = s.tables
	if s.inc != nil {
		off.Snaps = s.inc.tasks
	}
	if off.Tables != nil && off.Snaps == nil {
		off.Snaps = []snapTask{}
	}
}

// incStatus describes the running incremental snapshot for logs and tests.
func (in *incSnap) String() string {
	if in == nil || len(in.tasks) == 0 {
		return "none"
	}
	return fmt.Sprintf("%s after %v (%d rows)", in.tasks[0].Table, in.tasks[0].After, in.tasks[0].Rows)
}

// startRequests forwards on-demand snapshot requests to the streamer: the
// goroutine queues them and wakes the streamer, which may be waiting for
// the next message, with a read deadline in the past until it took them.
func (s *streamer) startRequests(ctx context.Context) (stop func()) {
	rq, ok := s.rt.(source.SnapshotRequester)
	if !ok || rq.SnapshotRequests() == nil {
		return func() {}
	}
	ch := rq.SnapshotRequests()
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case req := <-ch:
				s.reqMu.Lock()
				s.reqs = append(s.reqs, req)
				s.reqMu.Unlock()
				s.reqFlag.Store(true)
				_ = s.conn.Conn().SetReadDeadline(time.Unix(1, 0))
			case <-t.C:
				if s.reqFlag.Load() {
					_ = s.conn.Conn().SetReadDeadline(time.Unix(1, 0))
				}
			}
		}
	}()
	return func() { close(done); <-exited }
}

// takeRequests records the queued on-demand requests as snapshot tasks.
func (s *streamer) takeRequests(ctx context.Context) error {
	if !s.reqFlag.Swap(false) {
		return nil
	}
	s.reqMu.Lock()
	reqs := s.reqs
	s.reqs = nil
	s.reqMu.Unlock()
	added := false
	for _, req := range reqs {
		if req.Stop {
			n := s.stopTasks(req.Tables)
			s.c.log.Info("snapshot stopped on request", "tables", req.Tables, "tasks_removed", n)
			if req.Reply != nil {
				req.Reply <- nil
			}
			added = added || n > 0
			continue
		}
		tasks, err := s.requestTasks(ctx, req)
		if err != nil {
			s.c.log.Warn("on-demand snapshot refused", "tables", req.Tables, "where", req.Where, "error", err)
		} else {
			s.addTasks(tasks)
			added = true
			for _, t := range tasks {
				s.c.log.Info("on-demand snapshot requested: the table is read again incrementally while streaming", "table", t.Table, "where", t.Where)
			}
		}
		if req.Reply != nil {
			req.Reply <- err
		}
	}
	if !added {
		return nil
	}
	// Recorded in an offset at once, so a crash does not lose the request.
	off := s.position(s.ckptLSN)
	s.progress(&off)
	if err := s.rt.Checkpoint(ctx, off.toMap(), s.c.durableCallback(s.rt, off.LSN)); err != nil {
		return fmt.Errorf("postgres: checkpoint of on-demand snapshot: %w", err)
	}
	return nil
}

// requestTasks checks a request: captured tables with a key, a condition
// the server accepts.
func (s *streamer) requestTasks(ctx context.Context, req source.SnapshotRequest) ([]snapTask, error) {
	var tasks []snapTask
	for _, name := range req.Tables {
		p, err := parseTablePattern(name)
		if err != nil {
			return nil, err
		}
		if p.isPattern() {
			return nil, fmt.Errorf("%q: name one table, not a pattern", name)
		}
		id := tableID{p.schema, p.table}
		ct := s.c.byID[id]
		if ct == nil {
			return nil, fmt.Errorf("table %s is not captured by connector %q (its tables: %s)", id, s.c.name, strings.Join(s.c.tableNames(), ", "))
		}
		if s.c.keyless(ct) {
			return nil, keylessError(id)
		}
		if req.Where != "" {
			if _, err := s.meta.Exec(ctx, "SELECT 1 FROM "+id.quoted()+" WHERE ("+req.Where+") LIMIT 0"); err != nil {
				return nil, fmt.Errorf("where %q on table %s: %w", req.Where, id, err)
			}
		}
		tasks = append(tasks, snapTask{Table: id.String(), Kind: snapKindOnDemand, Where: req.Where})
	}
	return tasks, nil
}

// stopTasks removes the pending snapshots of tables (all when empty).
func (s *streamer) stopTasks(tables []string) int {
	in := s.inc
	if in == nil || len(in.tasks) == 0 {
		return 0
	}
	stop := map[string]bool{}
	for _, name := range tables {
		if p, err := parseTablePattern(name); err == nil {
			stop[tableID{p.schema, p.table}.String()] = true
		}
	}
	var keep []snapTask
	for i, t := range in.tasks {
		if len(stop) > 0 && !stop[t.Table] {
			keep = append(keep, t)
			continue
		}
		if i == 0 && in.cur != nil {
			// The running table: a chunk in flight is discarded.
			if in.phase != incIdle {
				in.redo = true
			} else {
				in.cur = nil
			}
		}
	}
	n := len(in.tasks) - len(keep)
	in.tasks = keep
	return n
}

// addTasks queues snapshot tasks behind the pending ones.
func (s *streamer) addTasks(tasks []snapTask) {
	if s.inc == nil {
		s.inc = newIncSnap(s.c, nil)
	}
	in := s.inc
	in.tasks = append(append([]snapTask(nil), in.tasks...), tasks...)
	in.done = false
}

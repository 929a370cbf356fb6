package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// streamer follows the binlog from a position between two transactions.
type streamer struct {
	c   *Connector
	r   *run
	cat *catalog
	// pos is the end of the last complete transaction: where a reconnect
	// resumes and what a checkpoint records.
	pos position
	// gset is the executed GTID set up to pos; nil when GTIDs are not used.
	gset gomysql.GTIDSet
	file string

	inTxn      bool
	sawBegin   bool
	standalone bool
	txnGTID    string
	txnUUID    uuid.UUID
	txnGNO     int64
	thread     int64
	hasThread  bool
	// commitUs is MySQL's original commit timestamp of the transaction.
	commitUs uint64

	emittedSinceCheckpoint int
	// forceCheckpoint makes the next transaction end a checkpoint (after DDL).
	forceCheckpoint bool
	checkpointed    position
	lastCheckpoint  time.Time
	// tmeChecked is, per table, the last table map compared with the
	// schema history (one per table keeps memory flat).
	tmeChecked map[tableID]*replication.TableMapEvent

	// The hot path reuses these: the codec copies values into the record's
	// bytes, so nothing downstream keeps them.
	srcBuf        []any
	before, after []any
	arena         arena
	enc           rowsEncoder
	raws          rawStore
	// headersOnly makes the syncer skip the rows of rows events: the
	// stream is only scanned for statements.
	headersOnly               bool
	fileBox, gtidBox, nameBox boxed
}

// boxed caches a string stored in an interface, so storing the same string
// again per event costs no allocation.
type boxed struct {
	s string
	v any
}

func (b *boxed) get(s string) any {
	if b.v == nil || b.s != s {
		b.s, b.v = s, s
	}
	return b.v
}

func (c *Connector) newStreamer(r *run, cat *catalog, start position) (*streamer, error) {
	s := &streamer{c: c, r: r, cat: cat, pos: start, file: start.File, checkpointed: start,
		lastCheckpoint: time.Now(), tmeChecked: map[tableID]*replication.TableMapEvent{}}
	if start.GTIDs != "" {
		g, err := parseGTIDSet(r.si.flavor, start.GTIDs)
		if err != nil {
			return nil, fmt.Errorf("offset %s: %w", start, err)
		}
		s.gset = g
	} else if r.si.flavor == flavorMariaDB {
		// MariaDB always has GTIDs: an empty set only means none yet.
		s.gset, _ = parseGTIDSet(flavorMariaDB, "")
	}
	return s, nil
}

func (s *streamer) syncerConfig() replication.BinlogSyncerConfig {
	cfg := replication.BinlogSyncerConfig{
		ServerID:                s.r.replicaID,
		Flavor:                  s.r.si.flavor,
		Host:                    s.c.ep.Host,
		Port:                    s.c.ep.Port,
		User:                    s.c.ep.User,
		Password:                s.c.ep.Password,
		Localhost:               "tributary-" + s.c.name,
		ParseTime:               false,
		TimestampStringLocation: time.UTC,
		UseDecimal:              false,
		RenderJSONAsMySQLText:   true,
		DisableRetrySync:        true,
		Logger:                  libLogger(s.c.log, s.c.ep.Password),
		// Events wait here while the log is slow: keep the buffer small so
		// memory stays bounded.
		EventCacheCount:     128,
		RowsEventDecodeFunc: (&rowsDecoder{raws: &s.raws, headersOnly: s.headersOnly}).decode,
	}
	if hb := s.c.cfg.HeartbeatSeconds; hb > 0 {
		cfg.HeartbeatPeriod = time.Duration(hb) * time.Second
		cfg.ReadTimeout = time.Duration(3*hb) * time.Second
	}
	return cfg
}

// rowsDecoder decodes rows events as go-mysql does, minus its per-row
// signedness lookup: go-mysql rebuilds a map of every column's signedness
// from the table map for each row, the costliest step of parsing a row.
// Integers then arrive as signed values of their binlog width, and
// column.intValue reinterprets them for UNSIGNED columns from the schema
// history, which it does anyway when the server logs no signedness. It runs
// on the syncer's reading goroutine, which owns it.
//
// Rows of tables with only simple column types are not decoded here at
// all: their bytes go to the streamer through raws (see rowsdirect.go).
type rowsDecoder struct {
	orig, bare  *replication.TableMapEvent
	simple      bool
	raws        *rawStore
	headersOnly bool // rows are not read at all (a scan for DDL)
}

func (d *rowsDecoder) decode(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil || d.headersOnly {
		return err
	}
	t := e.Table
	if t == nil {
		return e.DecodeData(pos, data)
	}
	if d.orig != t {
		d.orig, d.bare, d.simple = t, nil, simpleBinlogTypes(t)
		if len(t.SignednessBitmap) > 0 {
			bare := *t
			bare.SignednessBitmap = nil
			d.bare = &bare
		}
	}
	// Updates are decoded here even so: the direct path takes inserts and
	// deletes only.
	if typ := e.Type(); d.simple && d.raws != nil && (typ == replication.EnumRowsEventTypeInsert || typ == replication.EnumRowsEventTypeDelete) {
		d.raws.put(e, rawRows{data: data, pos: pos, bare: d.bare})
		return nil
	}
	if d.bare == nil {
		return e.DecodeData(pos, data)
	}
	// Decode against the copy, then hand the event on with the server's
	// own table map (the streamer checks it against the schema history).
	e.Table = d.bare
	err = e.DecodeData(pos, data)
	e.Table = t
	return err
}

// start opens the binlog dump at s.pos: by GTID set when there is one (it
// survives a failover), else by file and position.
func (s *streamer) start() (*replication.BinlogSyncer, *replication.BinlogStreamer, error) {
	syncer := replication.NewBinlogSyncer(s.syncerConfig())
	var st *replication.BinlogStreamer
	var err error
	if s.gset != nil && !s.gset.IsEmpty() {
		st, err = syncer.StartSyncGTID(s.gset.Clone())
	} else {
		if s.pos.File == "" {
			syncer.Close()
			return nil, nil, fmt.Errorf("resume position %s has neither a GTID set nor a binlog file; refusing to read the binlog from its first file", s.pos)
		}
		st, err = syncer.StartSync(gomysql.Position{Name: s.pos.File, Pos: s.pos.Pos})
	}
	if err != nil {
		syncer.Close()
		return nil, nil, err
	}
	return syncer, st, nil
}

// errFatal marks errors a reconnect cannot fix.
type errFatal struct{ err error }

func (e errFatal) Error() string { return e.err.Error() }
func (e errFatal) Unwrap() error { return e.err }

// run streams until ctx ends or a fatal error. Connection losses are
// retried from the last complete transaction; the partial transaction is
// read again (at least once).
func (s *streamer) run(ctx context.Context) error {
	failures := 0
	for {
		progress, err := s.once(ctx)
		if ctx.Err() != nil {
			return s.finalCheckpoint()
		}
		var fe errFatal
		if errors.As(err, &fe) {
			return fe.err
		}
		if ferr := s.classify(err); ferr != nil {
			return ferr
		}
		if progress {
			failures = 0
		}
		failures++
		if failures > 6 {
			return fmt.Errorf("binlog connection to %s keeps failing (resuming at %s): %w", s.c.ep.addr(), s.pos, err)
		}
		wait := time.Duration(1<<min(failures, 5)) * 250 * time.Millisecond
		s.c.log.Warn("binlog connection lost; reconnecting", "error", err, "resume", s.pos.String(), "in", wait)
		select {
		case <-ctx.Done():
			return s.finalCheckpoint()
		case <-time.After(wait):
		}
		s.resetTxn()
	}
}

func (s *streamer) resetTxn() {
	s.inTxn, s.sawBegin, s.standalone, s.txnGTID, s.hasThread, s.commitUs = false, false, false, "", false, 0
	s.file = s.pos.File
	clear(s.tmeChecked)
}

// classify turns server errors into fatal errors with a clear cause; nil
// means the error is a connection problem worth a reconnect.
func (s *streamer) classify(err error) error {
	if err == nil {
		return nil
	}
	if me, ok := mysqlError(err); ok {
		switch me.Code {
		case 4052: // MariaDB ER_SLAVE_SAME_ID
			return s.duplicateID(err)
		case gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
			msg := strings.ToLower(me.Message)
			if strings.Contains(msg, "same server") || strings.Contains(msg, "server_uuid/server_id") {
				return s.duplicateID(err)
			}
			return &purgedError{pos: s.pos, err: err}
		case gomysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, gomysql.ER_ACCESS_DENIED_ERROR:
			return fmt.Errorf("user %q may not read the binlog: GRANT REPLICATION SLAVE ON *.*: %w", s.c.ep.User, err)
		case 1927, gomysql.ER_QUERY_INTERRUPTED, 1053: // ER_CONNECTION_KILLED (MariaDB), interrupted, shutdown
			return s.killed(err)
		}
		return fmt.Errorf("binlog dump at %s: %w", s.pos, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, replication.ErrNeedSyncAgain) ||
		errors.Is(err, replication.ErrSyncClosed) || isNetErr(err) || strings.Contains(err.Error(), "connection was bad") {
		if dup := s.duplicateReplica(); dup != nil {
			return dup
		}
		return nil
	}
	return fmt.Errorf("binlog at %s: %w", s.pos, err)
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection reset")
}

func (s *streamer) duplicateID(err error) error {
	return fmt.Errorf("another replica with server_id %d is connected to %s, so the server dropped this connector's binlog connection: server_id must be unique among replicas and connectors (set server_id): %w",
		s.r.replicaID, s.c.ep.addr(), err)
}

// killed explains a dump thread the server ended: most often another
// replica registered with the same server_id.
func (s *streamer) killed(err error) error {
	if dup := s.duplicateReplica(); dup != nil {
		return dup
	}
	return nil
}

// duplicateReplica checks whether another replica now holds this
// connector's server_id (the server drops the older connection when a
// replica registers with an id in use).
func (s *streamer) duplicateReplica() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, s.c.ep)
	if err != nil {
		return nil
	}
	defer conn.Close()
	hosts, err := replicaHosts(conn)
	if err != nil {
		return nil
	}
	if host, ok := hosts[s.r.replicaID]; ok {
		return fmt.Errorf("another replica (%s) is connected to %s with server_id %d, so the server dropped this connector's binlog connection: server_id must be unique among replicas and connectors (set server_id)",
			host, s.c.ep.addr(), s.r.replicaID)
	}
	return nil
}

// purgedError means the binlog at the resume position is gone.
type purgedError struct {
	pos position
	err error
}

func (e *purgedError) Error() string {
	return fmt.Sprintf("the binlog at the resume position %s is no longer on the server (purged, or the server's binlog was reset): "+
		"the changes since then are lost for this connector; take a new snapshot (snapshot: when_needed does it automatically): %v", e.pos, e.err)
}
func (e *purgedError) Unwrap() error { return e.err }

// once runs one binlog connection until it fails or ctx ends.
func (s *streamer) once(ctx context.Context) (progress bool, err error) {
	s.raws.reset()
	syncer, st, err := s.start()
	if err != nil {
		return false, err
	}
	defer syncer.Close()
	// While a transaction end is not checkpointed yet, wait for events only
	// until its flush deadline, so a quiet server still gets its last
	// position committed promptly. The deadline context is reused across
	// events to keep the hot path free of timers.
	w := &waiter{base: ctx, ctx: ctx}
	defer w.disarm()
	for {
		if !w.armed() && s.pos != s.checkpointed {
			w.arm(s.lastCheckpoint.Add(checkpointEvery))
		}
		ev, err := st.GetEvent(w.ctx)
		if err != nil {
			if w.armed() && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				w.disarm()
				if !s.inTxn {
					if err := s.checkpoint(ctx); err != nil {
						return progress, errFatal{err}
					}
				}
				continue
			}
			return progress, err
		}
		if err := s.handle(ctx, ev); err != nil {
			return progress, errFatal{err}
		}
		progress = true
		if w.armed() && s.pos == s.checkpointed {
			w.disarm()
		}
	}
}

// waiter is a context with an optional deadline on top of base.
type waiter struct {
	base   context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

func (w *waiter) armed() bool { return w.cancel != nil }

func (w *waiter) arm(t time.Time) { w.ctx, w.cancel = context.WithDeadline(w.base, t) }

func (w *waiter) disarm() {
	if w.cancel != nil {
		w.cancel()
		w.ctx, w.cancel = w.base, nil
	}
}

// Checkpoints are taken at transaction ends, at most every checkpointEvery
// (or every checkpointRecords records): the runtime coalesces offset
// writes anyway, and fewer checkpoints keep a busy binlog cheap.
const (
	checkpointEvery   = 100 * time.Millisecond
	checkpointRecords = 4096
)

func (s *streamer) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
		// The rotate the server sends first when a dump starts (LogPos 0)
		// only names the file; a real one moves to the next file.
		if !s.inTxn && h.LogPos != 0 {
			s.pos.File, s.pos.Pos = s.file, uint32(e.Position)
		}
	case *replication.MariadbGTIDEvent:
		s.begin()
		s.txnGTID = e.GTID.String()
		s.standalone = e.IsStandalone()
		// A MariaDB GTID event opens the group; BEGIN is implied unless
		// the group is a single standalone statement (DDL).
		s.sawBegin = !s.standalone
	case *replication.GTIDEvent:
		s.begin()
		u, err := uuid.FromBytes(e.SID)
		if err == nil && u != uuid.Nil {
			s.txnUUID, s.txnGNO = u, e.GNO
			s.txnGTID = fmt.Sprintf("%s:%d", u, e.GNO)
		}
		s.commitUs = e.OriginalCommitTimestamp
	case *replication.QueryEvent:
		return s.query(ctx, h, e)
	case *replication.XIDEvent:
		return s.commit(ctx, h)
	case *replication.RowsEvent:
		return s.rows(ctx, h, e)
	}
	return nil
}

func (s *streamer) begin() {
	s.inTxn, s.sawBegin, s.standalone, s.txnGTID, s.hasThread, s.commitUs = true, false, false, "", false, 0
	s.txnUUID, s.txnGNO = uuid.Nil, 0
}

func (s *streamer) query(ctx context.Context, h *replication.EventHeader, e *replication.QueryEvent) error {
	q := strings.TrimSpace(string(e.Query))
	head := strings.ToUpper(q)
	if len(head) > 16 {
		head = head[:16]
	}
	s.thread, s.hasThread = int64(e.SlaveProxyID), true
	switch {
	case head == "BEGIN":
		if !s.inTxn {
			s.begin()
			s.thread, s.hasThread = int64(e.SlaveProxyID), true
		}
		s.sawBegin = true
		return nil
	case head == "COMMIT", head == "ROLLBACK", strings.HasPrefix(head, "XA COMMIT"), strings.HasPrefix(head, "XA ROLLBACK"):
		return s.commit(ctx, h)
	case strings.HasPrefix(head, "XA "), strings.HasPrefix(head, "SAVEPOINT"), strings.HasPrefix(head, "ROLLBACK TO"),
		strings.HasPrefix(head, "# "):
		return nil
	}
	if err := s.ddl(ctx, h, e, q); err != nil {
		return err
	}
	if !s.sawBegin || s.standalone {
		return s.commit(ctx, h)
	}
	return nil
}

// gtidsWithCurrent is the executed set including the open transaction.
func (s *streamer) gtidsWithCurrent() string {
	if s.gset == nil {
		return ""
	}
	g := s.gset.Clone()
	s.addCurrent(g)
	return g.String()
}

func (s *streamer) addCurrent(g gomysql.GTIDSet) {
	if s.txnGTID == "" {
		return
	}
	switch set := g.(type) {
	case *gomysql.MariadbGTIDSet:
		if one, err := gomysql.ParseMariadbGTID(s.txnGTID); err == nil {
			_ = set.AddSet(one)
		}
	case *gomysql.MysqlGTIDSet:
		set.AddGTID(s.txnUUID, s.txnGNO)
	}
}

func (s *streamer) ddl(ctx context.Context, h *replication.EventHeader, e *replication.QueryEvent, q string) error {
	before := maps.Clone(s.cat.tables) // apply replaces the shapes it changes
	res, err := s.r.ddl.apply(s.cat, s.r.filter, string(e.Schema), q)
	at := fmt.Sprintf("%s:%d", s.file, h.LogPos-h.EventSize)
	if err != nil {
		return fmt.Errorf("schema change at %s (gtid %s) cannot be followed: %v; statement: %s. "+
			"Tributary cannot decode later rows without knowing the new shape; after fixing the cause take a new snapshot",
			at, orNone(s.txnGTID), err, clip(q, 300))
	}
	if len(res.dml) > 0 {
		return fmt.Errorf("statement-based change of captured table %s at %s (gtid %s): a session wrote it with binlog_format other than ROW, so its rows are not in the binlog and would be lost; statement: %s",
			res.dml[0], at, orNone(s.txnGTID), clip(q, 300))
	}
	if len(res.changes) > 0 || len(res.dbCharset) > 0 {
		after := position{File: s.file, Pos: h.LogPos, GTIDs: s.gtidsWithCurrent(), ServerID: h.ServerID, TsSec: int64(h.Timestamp)}
		rec := &historyRecord{Position: after.offset(), DatabaseName: string(e.Schema), DDL: q,
			TableChanges: res.changes, DatabaseCharsets: res.dbCharset}
		if err := s.r.hist.append(ctx, rec); err != nil {
			return err
		}
		s.forceCheckpoint = true
		for _, ch := range res.changes {
			id := tableID{ch.DB, ch.Name}
			delete(s.r.states, id)
			if s.r.filter.captured(id.DB, id.Table) {
				s.c.log.Info("schema change", "table", id.String(), "change", ch.Type, "at", at, "ddl", clip(q, 200))
				if ch.Type == "ALTER" && ch.Table != nil && before[id] != nil {
					s.addedWithoutDefault(id, before[id], ch.Table)
				}
			}
		}
	}
	for _, id := range res.truncated {
		if !s.r.filter.captured(id.DB, id.Table) {
			continue
		}
		ts, err := s.state(id, h)
		if err != nil {
			return err
		}
		src := s.source(h, id, 0)
		n, err := s.r.em.emit(ctx, ts, schema.OpTruncate, nil, nil, src)
		if err != nil {
			return err
		}
		s.emittedSinceCheckpoint += n
	}
	return nil
}

// addedWithoutDefault asks for a re-read of the table when ALTER TABLE
// added a column whose default the schema does not carry: the server filled
// the existing rows with values no row event holds.
func (s *streamer) addedWithoutDefault(id tableID, old, now *tableDef) {
	for _, d := range now.Columns {
		if !d.HasDefault || old.colIndex(d.Name) >= 0 {
			continue
		}
		c := compileColumn(d, false)
		if _, reason, detail := c.defaultValue(); reason != "" {
			source.RequestResnapshot(s.r.rt, s.c.log, s.c.name, id.String(), d.Name, reason, detail)
		}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// state returns the captured table's encoder at its current shape.
func (s *streamer) state(id tableID, h *replication.EventHeader) (*tableState, error) {
	if ts, ok := s.r.states[id]; ok {
		return ts, nil
	}
	def, ok := s.cat.tables[id]
	if !ok {
		return nil, fmt.Errorf("rows of captured table %s at %s, but the schema history has no shape for it: the history is out of step with the binlog; take a new snapshot", id, s.at(h))
	}
	ts, err := s.r.tableState(id, def)
	if err != nil {
		return nil, err
	}
	s.r.states[id] = ts
	return ts, nil
}

// source fills the streamer's reused source block for an event of table
// id; callers set MySQLSrcRow per row.
func (s *streamer) source(h *replication.EventHeader, id tableID, row int) []any {
	src := s.srcBuf
	if len(src) != len(s.r.em.srcDef.Fields) {
		src = make([]any, len(s.r.em.srcDef.Fields))
		s.srcBuf = src
	}
	clear(src)
	tsMs := int64(h.Timestamp) * 1000
	src[schema.SrcVersion] = Version
	src[schema.SrcConnector] = "mysql"
	src[schema.SrcName] = s.nameBox.get(s.r.em.name)
	src[schema.SrcSnapshot] = "false"
	src[schema.SrcDB] = id.DB
	src[schema.MySQLSrcTable] = id.Table
	if s.commitUs > 0 {
		src[schema.SrcTsMs] = int64(s.commitUs / 1000)
		src[schema.SrcTsUs] = int64(s.commitUs)
		src[schema.SrcTsNs] = int64(s.commitUs) * 1000
	} else {
		src[schema.SrcTsMs] = tsMs
		src[schema.SrcTsUs] = tsMs * 1000
		src[schema.SrcTsNs] = tsMs * 1_000_000
	}
	src[schema.MySQLSrcServerID] = int64(h.ServerID)
	if s.txnGTID != "" {
		src[schema.MySQLSrcGTID] = s.gtidBox.get(s.txnGTID)
	}
	src[schema.MySQLSrcFile] = s.fileBox.get(s.file)
	src[schema.MySQLSrcPos] = int64(h.LogPos - h.EventSize)
	src[schema.MySQLSrcRow] = int32(row)
	if s.hasThread {
		src[schema.MySQLSrcThread] = s.thread
	}
	return src
}

func (s *streamer) rows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent) error {
	raw, isRaw := s.raws.take(e)
	id := tableID{string(e.Table.Schema), string(e.Table.Table)}
	if !s.r.filter.captured(id.DB, id.Table) {
		return nil
	}
	ts, err := s.state(id, h)
	if err != nil {
		return err
	}
	if s.tmeChecked[id] != e.Table {
		if err := checkTableMap(ts, e.Table); err != nil {
			return fmt.Errorf("at %s: %w", s.at(h), err)
		}
		s.tmeChecked[id] = e.Table
	}
	var op schema.Op
	step := 1
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		op = schema.OpCreate
	case replication.EnumRowsEventTypeUpdate:
		op, step = schema.OpUpdate, 2
		if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
			return fmt.Errorf("partial JSON update of %s at %s: set binlog_row_value_options='' (full JSON images are needed)", id, s.at(h))
		}
	case replication.EnumRowsEventTypeDelete:
		op = schema.OpDelete
	default:
		return nil
	}
	// One processing time per rows event: the rows of one event are read
	// together.
	nowUs := time.Now().UnixMicro()
	src := s.source(h, id, 0)
	enc := &s.enc
	if enc.em == nil {
		enc.init(s.r.em, &s.arena)
	}
	if err := enc.begin(ctx, ts, op, src, nowUs); err != nil {
		return err
	}
	if isRaw {
		if op != schema.OpUpdate && directEventType(h.EventType) && !ts.directOff {
			if p := ts.plan(e.Table); p.ok {
				n, handled, err := enc.direct(ctx, e, raw, p)
				s.emittedSinceCheckpoint += n
				if err != nil {
					return fmt.Errorf("at %s: %w", s.at(h), err)
				}
				if handled {
					return enc.flush(ctx)
				}
			}
		}
		if err := decodeLater(e, raw); err != nil {
			return fmt.Errorf("binlog rows event of %s at %s: %w", id, s.at(h), err)
		}
	}
	for _, sk := range e.SkippedColumns {
		if len(sk) > 0 {
			return fmt.Errorf("row event for %s at %s lacks %d of %d columns: the writing session used binlog_row_image other than FULL, so before/after images are incomplete; set binlog_row_image=FULL for every session",
				id, s.at(h), len(sk), len(ts.cols))
		}
	}
	for i := 0; i+step <= len(e.Rows); i += step {
		var before, after []any
		switch op {
		case schema.OpCreate:
			after, err = ts.rowFromBinlogInto(s.after, e.Rows[i])
			s.after = after
		case schema.OpDelete:
			before, err = ts.rowFromBinlogInto(s.before, e.Rows[i])
			s.before = before
		case schema.OpUpdate:
			if before, err = ts.rowFromBinlogInto(s.before, e.Rows[i]); err == nil {
				s.before = before
				after, err = ts.rowFromBinlogInto(s.after, e.Rows[i+1])
				s.after = after
			}
		}
		if err != nil {
			return fmt.Errorf("at %s: %w", s.at(h), err)
		}
		n, err := enc.row(ctx, before, after, i/step)
		if err != nil {
			return err
		}
		s.emittedSinceCheckpoint += n
	}
	return enc.flush(ctx)
}

// at names an event's binlog position in errors.
func (s *streamer) at(h *replication.EventHeader) string {
	return fmt.Sprintf("%s:%d", s.file, h.LogPos-h.EventSize)
}

// commit ends the open transaction: the position moves past it and, when
// events were emitted (or a while passed), a checkpoint is taken.
func (s *streamer) commit(ctx context.Context, h *replication.EventHeader) error {
	if s.gset != nil {
		s.addCurrent(s.gset)
	}
	s.pos = position{File: s.file, Pos: h.LogPos, ServerID: h.ServerID, TsSec: int64(h.Timestamp)}
	if s.gset != nil {
		s.pos.GTIDs = s.gset.String()
	}
	s.inTxn, s.sawBegin, s.standalone, s.txnGTID, s.hasThread, s.commitUs = false, false, false, "", false, 0
	if s.forceCheckpoint || s.emittedSinceCheckpoint >= checkpointRecords || time.Since(s.lastCheckpoint) >= checkpointEvery {
		return s.checkpoint(ctx)
	}
	return nil
}

func (s *streamer) checkpoint(ctx context.Context) error {
	pos := s.pos
	if err := s.r.rt.Checkpoint(ctx, pos.offset(), func() { s.r.durable(pos) }); err != nil {
		return err
	}
	s.checkpointed = pos
	s.emittedSinceCheckpoint = 0
	s.forceCheckpoint = false
	s.lastCheckpoint = time.Now()
	return nil
}

// finalCheckpoint records the last complete transaction before returning
// on shutdown.
func (s *streamer) finalCheckpoint() error {
	if s.pos != s.checkpointed {
		if err := s.checkpoint(context.Background()); err != nil {
			return err
		}
	}
	return context.Canceled
}

// checkTableMap compares the binlog's column count and types with the shape
// the schema history gives, so a history out of step never decodes rows
// into the wrong columns.
func checkTableMap(ts *tableState, tme *replication.TableMapEvent) error {
	if int(tme.ColumnCount) != len(ts.cols) {
		return fmt.Errorf("table %s: the binlog row has %d columns but the schema history knows %d (%s): the history is out of step with the binlog; take a new snapshot",
			ts.id, tme.ColumnCount, len(ts.cols), columnNames(ts.def))
	}
	names := tme.ColumnNameString()
	for i := range ts.cols {
		rt := realType(tme, i)
		if !typeFits(ts.cols[i].kind, rt) {
			return fmt.Errorf("table %s column %d (%s): the binlog has type code %d but the schema history says %s: the history is out of step with the binlog; take a new snapshot",
				ts.id, i+1, ts.cols[i].def.Name, rt, ts.cols[i].def.TypeExpression)
		}
		if len(names) == len(ts.cols) && !strings.EqualFold(names[i], ts.cols[i].def.Name) {
			return fmt.Errorf("table %s column %d: the binlog names it %q but the schema history %q: the history is out of step with the binlog; take a new snapshot",
				ts.id, i+1, names[i], ts.cols[i].def.Name)
		}
	}
	return nil
}

func realType(tme *replication.TableMapEvent, i int) byte {
	t := tme.ColumnType[i]
	if t == gomysql.MYSQL_TYPE_STRING {
		meta := tme.ColumnMeta[i]
		if meta >= 256 {
			b0 := byte(meta >> 8)
			if b0&0x30 != 0x30 {
				return b0 | 0x30
			}
			return b0
		}
	}
	return t
}

func typeFits(k kind, t byte) bool {
	switch k {
	case kTinyInt:
		return t == gomysql.MYSQL_TYPE_TINY
	case kSmallInt:
		return t == gomysql.MYSQL_TYPE_SHORT
	case kMediumInt:
		return t == gomysql.MYSQL_TYPE_INT24
	case kInt:
		return t == gomysql.MYSQL_TYPE_LONG
	case kBigInt:
		return t == gomysql.MYSQL_TYPE_LONGLONG
	case kDecimal:
		return t == gomysql.MYSQL_TYPE_NEWDECIMAL || t == gomysql.MYSQL_TYPE_DECIMAL
	case kFloat:
		return t == gomysql.MYSQL_TYPE_FLOAT
	case kDouble:
		return t == gomysql.MYSQL_TYPE_DOUBLE
	case kBit:
		return t == gomysql.MYSQL_TYPE_BIT
	case kString, kBytes, kInet6, kUUID:
		return t == gomysql.MYSQL_TYPE_VARCHAR || t == gomysql.MYSQL_TYPE_VAR_STRING || t == gomysql.MYSQL_TYPE_STRING ||
			t == gomysql.MYSQL_TYPE_BLOB || t == gomysql.MYSQL_TYPE_TINY_BLOB || t == gomysql.MYSQL_TYPE_MEDIUM_BLOB || t == gomysql.MYSQL_TYPE_LONG_BLOB
	case kDate:
		return t == gomysql.MYSQL_TYPE_DATE || t == gomysql.MYSQL_TYPE_NEWDATE
	case kTime:
		return t == gomysql.MYSQL_TYPE_TIME || t == gomysql.MYSQL_TYPE_TIME2
	case kDateTime:
		return t == gomysql.MYSQL_TYPE_DATETIME || t == gomysql.MYSQL_TYPE_DATETIME2
	case kTimestamp:
		return t == gomysql.MYSQL_TYPE_TIMESTAMP || t == gomysql.MYSQL_TYPE_TIMESTAMP2
	case kYear:
		return t == gomysql.MYSQL_TYPE_YEAR
	case kEnum:
		return t == gomysql.MYSQL_TYPE_ENUM
	case kSet:
		return t == gomysql.MYSQL_TYPE_SET
	case kJSON:
		return t == gomysql.MYSQL_TYPE_JSON || t == gomysql.MYSQL_TYPE_BLOB
	case kGeometry, kPoint:
		return t == gomysql.MYSQL_TYPE_GEOMETRY
	}
	return true
}

package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Streaming.
//
// One goroutine reads the replication connection and does all the work:
// parse, decode, encode, Emit, Checkpoint. A second goroutine only writes
// standby status updates (the durable position) on the same connection,
// which is safe because the reader never writes, and runs the heartbeat and
// lag queries on a connection of its own. Reads use no per-message context
// (pgconn would register a cancel callback per message); cancellation sets a
// read deadline in the past instead, and a near deadline wakes the reader to
// send a coalesced checkpoint when the stream goes quiet.

// ckptEvery coalesces checkpoints: commits closer together than this share
// one Checkpoint (the later subsumes the earlier).
const ckptEvery = 10 * time.Millisecond

// relState is a relation as the latest Relation message described it.
type relState struct {
	captured bool
	shape    *shape
	codec    *schema.Codec
	row      []any
	before   []any
	// schemaV and tableV are the source.schema and source.table values, boxed
	// once so that events do not allocate them.
	schemaV, tableV any
}

type streamer struct {
	// emittedLarge is set by emit when a record of at least
	// largeRecordBytes went out; change then drops the decoded rows, so
	// the table's reused row buffers do not hold a copy of it until its
	// next change.
	emittedLarge bool
	c            *connector
	rt           source.Runtime
	meta         *pgx.Conn
	cat          pgtypeCatalog
	srcBlock     *schema.SourceBlock
	start        pglogrepl.LSN
	skipBelow    pglogrepl.LSN

	conn *pgconn.PgConn
	rels map[uint32]*relState
	// loadDefaults reads a table's column defaults from the catalog
	// (loadColumnDefaults on meta; unit tests replace it).
	loadDefaults func(ctx context.Context, id tableID) (map[string]string, error)
	lastShape    map[tableID]*shape
	lastCodec    map[tableID]*schema.Codec
	spools       *spools

	// transaction in progress
	inTxn      bool
	skip       bool
	xid        uint32
	lastCommit pglogrepl.LSN // end of the last transaction emitted (source.sequence)
	src        []any

	inStream  bool
	streamXid uint32
	// streamOrigin is the replication origin of streamed (in-progress)
	// transactions, whose ORIGIN message comes in their first segment.
	streamOrigin map[uint32]pglogrepl.OriginMessage

	// checkpoints
	ckptLSN     pglogrepl.LSN
	pending     pgOffset
	hasPending  bool
	lastCkpt    time.Time
	deadlineSet bool
	deadline    time.Time

	rc     rowChange
	buf    []byte
	seq    []byte
	warned map[string]bool

	wake chan struct{}

	// inc runs incremental snapshots (incremental.go); nil when none is
	// pending. tables are the captured tables offsets record.
	inc    *incSnap
	tables []string
	// recent holds the ids of the last transactions emitted (a ring), so
	// that a chunk's snapshot can be checked against them.
	recent  [recentXids]uint32
	recentN int

	// on-demand snapshot requests (startRequests)
	reqMu   sync.Mutex
	reqs    []source.SnapshotRequest
	reqFlag atomic.Bool
}

const recentXids = 4096

// noteEmitted records transaction xid as emitted: one store per
// transaction; the ring is only scanned when a chunk is read.
func (s *streamer) noteEmitted(xid uint32) {
	s.recent[s.recentN%recentXids] = xid
	s.recentN++
}

func newStreamer(c *connector, rt source.Runtime, meta *pgx.Conn, cat pgtypeCatalog, start, skipBelow pglogrepl.LSN) *streamer {
	s := &streamer{
		c: c, rt: rt, meta: meta, cat: cat, start: start, skipBelow: skipBelow,
		srcBlock:  schema.PostgresSource(),
		rels:      map[uint32]*relState{},
		lastShape: map[tableID]*shape{},
		lastCodec: map[tableID]*schema.Codec{},
		src:       c.sourceValues(),
		buf:       make([]byte, 0, 4096),
		warned:    map[string]bool{},
		wake:      make(chan struct{}, 1),
		ckptLSN:   start,
	}
	s.loadDefaults = func(ctx context.Context, id tableID) (map[string]string, error) {
		return loadColumnDefaults(ctx, s.meta, id)
	}
	return s
}

func (s *streamer) run(ctx context.Context, replConn *pgconn.PgConn) (err error) {
	c := s.c
	if replConn == nil {
		if replConn, err = c.connectReplication(ctx); err != nil {
			return err
		}
	}
	s.conn = replConn
	defer func() { _ = replConn.Close(context.WithoutCancel(ctx)) }()

	if s.spools, err = newSpools(); err != nil {
		return err
	}
	defer func() { _ = s.spools.close() }()

	args := []string{
		"proto_version '2'",
		"publication_names '" + c.publication + "'",
		"messages 'true'",
		"streaming 'true'",
	}
	if err := pglogrepl.StartReplication(ctx, replConn, c.slot, s.start, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication, PluginArgs: args,
	}); err != nil {
		return fmt.Errorf("postgres: start replication from slot %q at %s on %s: %w", c.slot, s.start, c.where(), err)
	}
	c.log.Info("streaming changes", "slot", c.slot, "publication", c.publication, "from", s.start.String())
	// The start is the committed offset, the slot's confirmed position or a
	// new slot's consistent point: the slot is there already, so reporting
	// it acknowledges nothing new.
	c.setDurable(s.start)

	statusConn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = statusConn.Close(context.WithoutCancel(ctx)) }()
	stopStatus := make(chan struct{})
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		s.statusLoop(ctx, statusConn, stopStatus)
	}()
	defer func() {
		close(stopStatus)
		<-statusDone
	}()

	stopWatch := context.AfterFunc(ctx, func() {
		_ = replConn.Conn().SetReadDeadline(time.Unix(1, 0))
	})
	defer stopWatch()
	stopRequests := s.startRequests(ctx)
	defer stopRequests()

	err = s.loop(ctx)
	if ctx.Err() != nil {
		// Stop cleanly: the last position reached must be checkpointed
		// before Run returns so the runtime can commit it.
		bg := context.WithoutCancel(ctx)
		if ferr := s.flushCheckpoint(bg); ferr != nil {
			return ferr
		}
		// Wait for it to be durable so the final standby status update
		// (sent when the status goroutine stops) acknowledges it.
		fctx, cancel := context.WithTimeout(bg, 30*time.Second)
		defer cancel()
		if ferr := s.rt.Flush(fctx); ferr != nil {
			s.c.log.Warn("flush on shutdown failed; the slot keeps its earlier position (the next start skips what was already emitted)", "error", ferr)
		}
		return ctx.Err()
	}
	return err
}

func (s *streamer) loop(ctx context.Context) error {
	for {
		if s.reqFlag.Load() {
			if err := s.takeRequests(ctx); err != nil {
				return err
			}
			// The wake-up deadline is in the past: put back the one due.
			s.setDeadline(ctx, s.deadline)
		}
		if s.incActive() && s.inc.phase == incIdle {
			if err := s.startChunk(ctx); err != nil {
				return err
			}
		}
		msg, err := s.conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				// The coalescing deadline: the stream went quiet. Or a
				// wake-up for an on-demand snapshot request.
				if err := s.flushCheckpoint(ctx); err != nil {
					return err
				}
				if !s.deadlineSet {
					s.setDeadline(ctx, time.Time{})
				}
				continue
			}
			return fmt.Errorf("postgres: replication stream from slot %q on %s: %w", s.c.slot, s.c.where(), err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				if err := s.keepalive(ctx, m.Data[1:]); err != nil {
					return err
				}
			case pglogrepl.XLogDataByteID:
				if len(m.Data) < 25 {
					return fmt.Errorf("postgres: replication stream: short XLogData message")
				}
				walStart := pglogrepl.LSN(binary.BigEndian.Uint64(m.Data[1:]))
				if len(m.Data) == 25 {
					continue
				}
				if err := s.message(ctx, walStart, m.Data[25:]); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("postgres: replication stream from slot %q: %w", s.c.slot, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone:
			return fmt.Errorf("postgres: server ended the replication stream from slot %q", s.c.slot)
		}
	}
}

func (s *streamer) keepalive(ctx context.Context, b []byte) error {
	if len(b) < 17 {
		return fmt.Errorf("postgres: replication stream: short keepalive message")
	}
	walEnd := pglogrepl.LSN(binary.BigEndian.Uint64(b))
	if b[16] != 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	// Between transactions, every commit before the server's sent position
	// has been received: acknowledging it lets the slot advance over WAL of
	// other tables and databases.
	if !s.inTxn && !s.inStream && walEnd > s.ckptLSN {
		// Keepalives come after nearly every WAL flush of a busy
		// server, so these are coalesced over status_interval.
		return s.checkpoint(ctx, s.position(walEnd), s.c.cfg.StatusInterval)
	}
	return nil
}

// position is an offset at a point between transactions.
func (s *streamer) position(lsn pglogrepl.LSN) pgOffset {
	return pgOffset{LSN: lsn, LSNCommit: lsn, LSNProc: lsn, TxID: int64(s.xid), TsUsec: time.Now().UnixMicro()}
}

// message handles one pgoutput message.
func (s *streamer) message(ctx context.Context, walStart pglogrepl.LSN, data []byte) error {
	typ := data[0]
	if s.inStream {
		switch typ {
		case 'I', 'U', 'D', 'T', 'R':
			_, xid, body, err := splitStreamed(data)
			if err != nil {
				return fmt.Errorf("postgres: streamed transaction %d: %c message: %w", s.streamXid, typ, err)
			}
			sp, err := s.spools.get(s.streamXid, false)
			if err != nil {
				return err
			}
			return sp.append(walStart, xid, typ, body)
		case 'E':
			s.inStream = false
			return nil
		case 'O':
			om, err := parseOrigin(data)
			if err != nil {
				return fmt.Errorf("postgres: streamed transaction %d: %w", s.streamXid, err)
			}
			if s.streamOrigin == nil {
				s.streamOrigin = map[uint32]pglogrepl.OriginMessage{}
			}
			s.streamOrigin[s.streamXid] = om
			return nil
		case 'Y', 'M':
			// A message inside a streamed transaction is transactional:
			// watermarks and heartbeats never are.
			return nil
		}
		return fmt.Errorf("postgres: unexpected %q message inside streamed transaction %d", typ, s.streamXid)
	}
	switch typ {
	case 'B':
		b, err := parseBegin(data)
		if err != nil {
			return fmt.Errorf("postgres: begin message: %w", err)
		}
		s.beginTxn(b.xid, b.commitTime, b.finalLSN)
		return nil
	case 'C':
		cm, err := parseCommit(data)
		if err != nil {
			return fmt.Errorf("postgres: commit message: %w", err)
		}
		return s.commitTxn(ctx, cm.endLSN, cm.commitTime)
	case 'I', 'U', 'D':
		if s.skip {
			return nil
		}
		return s.change(ctx, walStart, data)
	case 'R':
		m, err := pglogrepl.ParseV2(data, false)
		if err != nil {
			return fmt.Errorf("postgres: relation message: %w", err)
		}
		return s.relation(ctx, &m.(*pglogrepl.RelationMessageV2).RelationMessage)
	case 'T':
		if s.skip {
			return nil
		}
		return s.truncate(ctx, walStart, data)
	case 'M':
		return s.logicalMessage(ctx, data)
	case 'O':
		// The transaction was replayed from a replication origin (a
		// logical replication subscriber applied it): Debezium's
		// source.origin and origin_lsn, until the next BEGIN.
		om, err := parseOrigin(data)
		if err != nil {
			return err
		}
		s.setOrigin(om)
		return nil
	case 'Y':
		return nil
	case 'S':
		m, err := pglogrepl.ParseV2(data, false)
		if err != nil {
			return fmt.Errorf("postgres: stream start message: %w", err)
		}
		ss := m.(*pglogrepl.StreamStartMessageV2)
		s.inStream = true
		s.streamXid = ss.Xid
		_, err = s.spools.get(ss.Xid, ss.FirstSegment == 1)
		return err
	case 'c':
		m, err := pglogrepl.ParseV2(data, false)
		if err != nil {
			return fmt.Errorf("postgres: stream commit message: %w", err)
		}
		return s.streamCommit(ctx, m.(*pglogrepl.StreamCommitMessageV2))
	case 'A':
		m, err := pglogrepl.ParseV2(data, false)
		if err != nil {
			return fmt.Errorf("postgres: stream abort message: %w", err)
		}
		sa := m.(*pglogrepl.StreamAbortMessageV2)
		if sa.SubXid == sa.Xid {
			delete(s.streamOrigin, sa.Xid)
			return s.spools.drop(sa.Xid)
		}
		if sp, ok := s.spools.m[sa.Xid]; ok {
			sp.abortSub(sa.SubXid)
		}
		return nil
	}
	return fmt.Errorf("postgres: unknown pgoutput message type %q at %s", typ, walStart)
}

// logicalMessage handles a pg_logical_emit_message message: heartbeats and
// snapshot watermarks.
func (s *streamer) logicalMessage(ctx context.Context, data []byte) error {
	m, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return fmt.Errorf("postgres: logical decoding message: %w", err)
	}
	lm := &m.(*pglogrepl.LogicalDecodingMessageV2).LogicalDecodingMessage
	if lm.Transactional {
		return nil
	}
	switch lm.Prefix {
	case heartbeatPrefix:
		if !s.inTxn && !s.inStream && lm.LSN > s.ckptLSN {
			return s.checkpoint(ctx, s.position(lm.LSN), 0)
		}
	case watermarkPrefix:
		return s.watermark(ctx, string(lm.Content), lm.LSN)
	}
	return nil
}

func (s *streamer) beginTxn(xid uint32, commitTime time.Time, commitLSN pglogrepl.LSN) {
	s.inTxn = true
	s.xid = xid
	// A transaction whose commit record starts below the committed offset
	// was already emitted before a restart; the slot replays it when its
	// confirmed position lagged the offset.
	s.skip = commitLSN < s.skipBelow
	s.src[schema.SrcTsMs] = commitTime.UnixMilli()
	s.src[schema.SrcTsUs] = commitTime.UnixMicro()
	s.src[schema.SrcTsNs] = commitTime.UnixNano()
	s.src[schema.PGSrcTxID] = int64(xid)
	s.src[schema.SrcSnapshot] = "false"
	s.src[schema.PGSrcXmin] = nil
	s.src[schema.PGSrcOrigin] = nil
	s.src[schema.PGSrcOriginLSN] = nil
}

// parseOrigin reads a pgoutput ORIGIN message.
func parseOrigin(data []byte) (pglogrepl.OriginMessage, error) {
	m, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return pglogrepl.OriginMessage{}, fmt.Errorf("postgres: origin message: %w", err)
	}
	om, ok := m.(*pglogrepl.OriginMessage)
	if !ok {
		return pglogrepl.OriginMessage{}, fmt.Errorf("postgres: origin message decoded as %T", m)
	}
	return *om, nil
}

// setOrigin fills source.origin and origin_lsn of the current transaction,
// as Debezium's PostgresStreamingChangeEventSource does on ORIGIN.
func (s *streamer) setOrigin(om pglogrepl.OriginMessage) {
	s.src[schema.PGSrcOrigin] = om.Name
	s.src[schema.PGSrcOriginLSN] = int64(om.CommitLSN)
}

func (s *streamer) commitTxn(ctx context.Context, end pglogrepl.LSN, commitTime time.Time) error {
	s.inTxn = false
	if s.skip {
		s.skip = false
		return nil
	}
	s.lastCommit = end
	s.noteEmitted(s.xid)
	return s.checkpoint(ctx, pgOffset{LSN: end, LSNCommit: end, LSNProc: end, TxID: int64(s.xid), TsUsec: commitTime.UnixMicro()}, ckptEvery)
}

func (s *streamer) streamCommit(ctx context.Context, m *pglogrepl.StreamCommitMessageV2) error {
	sp := s.spools.m[m.Xid]
	s.beginTxn(m.Xid, m.CommitTime, m.CommitLSN)
	if om, ok := s.streamOrigin[m.Xid]; ok {
		s.setOrigin(om)
		delete(s.streamOrigin, m.Xid)
	}
	if sp != nil && !s.skip {
		began := time.Now()
		err := sp.replay(func(walStart pglogrepl.LSN, _ uint32, msg []byte) error {
			switch msg[0] {
			case 'I', 'U', 'D':
				return s.change(ctx, walStart, msg)
			case 'T':
				return s.truncate(ctx, walStart, msg)
			case 'R':
				m, err := pglogrepl.ParseV2(msg, false)
				if err != nil {
					return fmt.Errorf("postgres: relation message: %w", err)
				}
				return s.relation(ctx, &m.(*pglogrepl.RelationMessageV2).RelationMessage)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("postgres: streamed transaction %d: %w", m.Xid, err)
		}
		s.c.log.Info("emitted a large streamed transaction", "xid", m.Xid, "messages", sp.records,
			"spooled_bytes", sp.bytes, "duration", time.Since(began).Round(time.Millisecond).String())
	}
	if err := s.spools.drop(m.Xid); err != nil {
		return err
	}
	return s.commitTxn(ctx, m.TransactionEndLSN, m.CommitTime)
}

// relation applies a Relation message: a new shape of a captured table gets a
// codec from the runtime, which registers the new schema version.
func (s *streamer) relation(ctx context.Context, rm *pglogrepl.RelationMessage) error {
	id := tableID{Schema: rm.Namespace, Name: rm.RelationName}
	if _, ok := s.c.byID[id]; !ok {
		s.rels[rm.RelationID] = &relState{}
		return nil
	}
	cols := make([]colSpec, len(rm.Columns))
	for i, col := range rm.Columns {
		cols[i] = colSpec{Name: col.Name, TypeOID: col.DataType, TypMod: col.TypeModifier}
	}
	if err := s.columnDefaults(ctx, id, cols); err != nil {
		return err
	}
	key, err := s.keyFor(ctx, id, rm)
	if err != nil {
		return err
	}
	sh, err := buildShape(s.c.cfg.TopicPrefixValue, id, cols, key, s.cat)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if s.needsCatalogReload(cols) {
		// A type created after start (an enum, a domain): reload the catalog.
		cat, err := pgtypeLoadCatalog(ctx, s.meta)
		if err != nil {
			return fmt.Errorf("postgres: reload type catalog for table %s: %w", id, err)
		}
		s.cat = cat
		if sh, err = buildShape(s.c.cfg.TopicPrefixValue, id, cols, key, s.cat); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	if prev := s.rels[rm.RelationID]; prev != nil && prev.captured && sameShape(prev.shape, sh) {
		return nil
	}
	prev := s.lastShape[id]
	codec := s.lastCodec[id]
	if !sameShape(prev, sh) {
		codec, err = s.rt.Codec(ctx, &sh.table, s.srcBlock)
		if err != nil {
			if prev != nil {
				return fmt.Errorf("postgres: table %s: schema change (%s) cannot be registered: %w", id, describeChange(prev, sh), err)
			}
			return fmt.Errorf("postgres: table %s: schema: %w", id, err)
		}
		if prev != nil {
			s.c.log.Warn("table schema changed; registered a new schema version", "table", id.String(), "change", describeChange(prev, sh))
			s.addedWithoutDefault(id, prev, sh)
			s.redoChunk(id, "table schema changed")
		}
		s.c.warnUnknown(sh)
		s.lastShape[id] = sh
		s.lastCodec[id] = codec
	}
	s.rels[rm.RelationID] = &relState{
		captured: true, shape: sh, codec: codec,
		row: make([]any, len(cols)), before: make([]any, len(cols)),
		schemaV: id.Schema, tableV: id.Name,
	}
	return nil
}

// columnDefaults fills in the column defaults a Relation message lacks
// from the catalog, read again for every Relation message as Debezium's
// PgOutputMessageDecoder does: PostgreSQL sends one before the next change
// of a table whose definition changed, SET DEFAULT included.
func (s *streamer) columnDefaults(ctx context.Context, id tableID, cols []colSpec) error {
	defs, err := s.loadDefaults(ctx, id)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for i := range cols {
		cols[i].Default = defs[cols[i].Name]
	}
	return nil
}

// addedWithoutDefault asks for a re-read of the table when a column was
// added with a default the schema does not carry: PostgreSQL filled the
// existing rows with values no change event holds (for a volatile default
// it even computed one per row).
func (s *streamer) addedWithoutDefault(id tableID, prev, sh *shape) {
	if sh.noDefault == nil {
		return
	}
	for i, c := range sh.cols {
		g := sh.noDefault[i]
		if g.reason == "" || indexOfCol(prev.cols, c.Name) >= 0 {
			continue
		}
		source.RequestResnapshot(s.rt, s.c.log, s.c.name, id.String(), c.Name, g.reason, g.detail)
		if ct := s.c.byID[id]; ct != nil && !s.c.keyless(ct) {
			// Acted on: the table is read again incrementally while
			// streaming goes on (incremental.go).
			s.addTasks([]snapTask{{Table: id.String(), Kind: snapKindOnDemand}})
			s.c.log.Info("table queued for an incremental re-read", "table", id.String(), "column", c.Name)
		}
		return
	}
}

func (s *streamer) needsCatalogReload(cols []colSpec) bool {
	for _, col := range cols {
		if col.TypeOID < 16384 { // FirstNormalObjectId: built-in types are always known
			continue
		}
		if _, ok := s.cat.TypeInfo(col.TypeOID); !ok {
			return true
		}
	}
	return false
}

// keyFor picks the message key columns: key_columns when configured, else
// the primary key. Under REPLICA IDENTITY DEFAULT the Relation message flags
// exactly the primary-key columns; the catalog gives their key order.
func (s *streamer) keyFor(ctx context.Context, id tableID, rm *pglogrepl.RelationMessage) ([]string, error) {
	if cols := s.c.cfg.keyColumnsFor(id.Schema, id.Name); cols != nil {
		return cols, nil
	}
	var flagged []string
	for _, col := range rm.Columns {
		if col.Flags&1 != 0 {
			flagged = append(flagged, col.Name)
		}
	}
	ct := s.c.byID[id]
	if rm.ReplicaIdentity == 'd' {
		if ct != nil && sameSet(ct.PK, flagged) {
			return ct.PK, nil
		}
		return flagged, nil
	}
	// FULL, NOTHING or an index: the flags do not say which columns are the
	// primary key; the catalog read at start does, unless the key changed
	// since (one of its columns is gone), then read it again.
	if ct != nil && allIn(rm, ct.PK) {
		return ct.PK, nil
	}
	cur, err := loadCatalogTable(ctx, s.meta, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: primary key of table %s: %w", id, err)
	}
	if !allIn(rm, cur.PK) {
		return nil, nil
	}
	return cur.PK, nil
}

func allIn(rm *pglogrepl.RelationMessage, names []string) bool {
	for _, k := range names {
		if indexOfColumn(rm, k) < 0 {
			return false
		}
	}
	return true
}

func indexOfColumn(rm *pglogrepl.RelationMessage, name string) int {
	for i, c := range rm.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

// change handles an Insert, Update or Delete.
func (s *streamer) change(ctx context.Context, walStart pglogrepl.LSN, data []byte) error {
	err := s.changeRow(ctx, walStart, data)
	if s.emittedLarge {
		s.emittedLarge = false
		if rel := s.rels[s.rc.relID]; rel != nil {
			clear(rel.row)
			clear(rel.before)
		}
	}
	return err
}

func (s *streamer) changeRow(ctx context.Context, walStart pglogrepl.LSN, data []byte) error {
	rc := &s.rc
	if _, err := parseChange(data, false, rc); err != nil {
		return fmt.Errorf("postgres: %c message at %s: %w", data[0], walStart, err)
	}
	rel := s.rels[rc.relID]
	if rel == nil {
		return fmt.Errorf("postgres: change at %s for relation oid %d, which no Relation message described", walStart, rc.relID)
	}
	if !rel.captured {
		return nil
	}
	switch rc.op {
	case 'I':
		if err := s.decode(rel, rc.new, rel.row, nil); err != nil {
			return err
		}
		return s.emit(ctx, rel, schema.OpCreate, nil, rel.row, walStart)
	case 'U':
		var before []any
		var fallback []tupleCol
		if rc.oldKind != 0 {
			if err := s.decode(rel, rc.old, rel.before, nil); err != nil {
				return err
			}
			before = rel.before
			if rc.oldKind == 'O' {
				fallback = rc.old // unchanged TOAST values are in the old row
			}
		}
		if err := s.decode(rel, rc.new, rel.row, fallback); err != nil {
			return err
		}
		if before != nil && len(rel.shape.table.Key) > 0 {
			changed, err := s.keyChanged(rel, before, rel.row)
			if err != nil {
				return err
			}
			if changed {
				// Debezium turns a primary-key change into a delete of the
				// old key (with its tombstone) and a create of the new one,
				// so compaction drops the old key.
				if err := s.emit(ctx, rel, schema.OpDelete, before, nil, walStart); err != nil {
					return err
				}
				return s.emit(ctx, rel, schema.OpCreate, nil, rel.row, walStart)
			}
		}
		return s.emit(ctx, rel, schema.OpUpdate, before, rel.row, walStart)
	case 'D':
		if err := s.decode(rel, rc.old, rel.before, nil); err != nil {
			return err
		}
		return s.emit(ctx, rel, schema.OpDelete, rel.before, nil, walStart)
	}
	return nil
}

func (s *streamer) keyChanged(rel *relState, before, after []any) (bool, error) {
	kb, err := rel.codec.AppendKey(s.buf[:0], before)
	if err != nil {
		return false, fmt.Errorf("postgres: table %s: encode old key: %w", rel.shape.id, err)
	}
	n := len(kb)
	kb, err = rel.codec.AppendKey(kb, after)
	if err != nil {
		return false, fmt.Errorf("postgres: table %s: encode new key: %w", rel.shape.id, err)
	}
	s.buf = kb
	return !bytes.Equal(kb[:n], kb[n:]), nil
}

// decode turns tuple columns into the row's Go values.
func (s *streamer) decode(rel *relState, cols []tupleCol, dst []any, fallback []tupleCol) error {
	sh := rel.shape
	if len(cols) != len(sh.cols) {
		return fmt.Errorf("postgres: table %s: change has %d columns, its Relation message %d", sh.id, len(cols), len(sh.cols))
	}
	for i := range cols {
		col := &cols[i]
		switch col.kind {
		case 'n':
			dst[i] = nil
		case 't':
			v, err := sh.decoders[i](col.data)
			if err != nil {
				return fmt.Errorf("postgres: table %s column %s: value %s: %w", sh.id, sh.cols[i].Name, clip(col.data), err)
			}
			dst[i] = v
		case 'u':
			if fallback != nil && fallback[i].kind == 't' {
				v, err := sh.decoders[i](fallback[i].data)
				if err != nil {
					return fmt.Errorf("postgres: table %s column %s: value %s: %w", sh.id, sh.cols[i].Name, clip(fallback[i].data), err)
				}
				dst[i] = v
				continue
			}
			dst[i] = sh.placeholder[i]
			s.warnToast(sh, i)
		default:
			return fmt.Errorf("postgres: table %s column %s: unexpected binary value", sh.id, sh.cols[i].Name)
		}
	}
	return nil
}

func (s *streamer) warnToast(sh *shape, i int) {
	k := sh.id.String() + "\x00" + sh.cols[i].Name
	if s.warned[k] {
		return
	}
	s.warned[k] = true
	if sh.placeholder[i] == nil {
		s.c.log.Warn("unchanged TOASTed value is not in the WAL under REPLICA IDENTITY DEFAULT and its type has no placeholder; sent as null (use REPLICA IDENTITY FULL)",
			"table", sh.id.String(), "column", sh.cols[i].Name)
		return
	}
	s.c.log.Info("unchanged TOASTed value is not in the WAL under REPLICA IDENTITY DEFAULT; sent as "+schema.UnavailableValue+" (use REPLICA IDENTITY FULL to get it)",
		"table", sh.id.String(), "column", sh.cols[i].Name)
}

func (s *streamer) emit(ctx context.Context, rel *relState, op schema.Op, before, after []any, walStart pglogrepl.LSN) error {
	s.src[schema.PGSrcSchema] = rel.schemaV
	s.src[schema.PGSrcTable] = rel.tableV
	s.src[schema.PGSrcLSN] = int64(walStart)
	s.src[schema.SrcSequence] = s.sequence(walStart)
	keyRow := after
	if keyRow == nil {
		keyRow = before
	}
	env := schema.Envelope{Op: op, Before: before, After: after, Source: s.src, TsUs: time.Now().UnixMicro()}
	rec, buf, err := encodeRecord(rel.codec, rel.shape.table.Topic, s.buf, keyRow, &env)
	s.buf = buf
	if err != nil {
		return fmt.Errorf("postgres: table %s: encode %c event at %s: %w", rel.shape.id, op, walStart, err)
	}
	if len(rec.Value) >= largeRecordBytes {
		s.emittedLarge = true
	}
	if err := s.rt.Emit(ctx, rec); err != nil {
		return fmt.Errorf("postgres: emit: %w", err)
	}
	s.markChanged(rel, rec.Key)
	if op == schema.OpDelete && rec.Key != nil {
		if err := s.rt.Emit(ctx, source.Record{Topic: rec.Topic, Key: rec.Key}); err != nil {
			return fmt.Errorf("postgres: emit: %w", err)
		}
	}
	return nil
}

// truncate emits one op=t event with a null key per captured table.
func (s *streamer) truncate(ctx context.Context, walStart pglogrepl.LSN, data []byte) error {
	m, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return fmt.Errorf("postgres: truncate message at %s: %w", walStart, err)
	}
	for _, relID := range m.(*pglogrepl.TruncateMessageV2).RelationIDs {
		rel := s.rels[relID]
		if rel == nil {
			return fmt.Errorf("postgres: truncate at %s of relation oid %d, which no Relation message described", walStart, relID)
		}
		if !rel.captured {
			continue
		}
		s.redoChunk(rel.shape.id, "table truncated")
		s.src[schema.PGSrcSchema] = rel.schemaV
		s.src[schema.PGSrcTable] = rel.tableV
		s.src[schema.PGSrcLSN] = int64(walStart)
		s.src[schema.SrcSequence] = s.sequence(walStart)
		env := schema.Envelope{Op: schema.OpTruncate, Source: s.src, TsUs: time.Now().UnixMicro()}
		vb, err := rel.codec.AppendEnvelope(s.buf[:0], &env)
		if err != nil {
			return fmt.Errorf("postgres: table %s: encode truncate event: %w", rel.shape.id, err)
		}
		s.buf = vb
		val := make([]byte, len(vb))
		copy(val, vb)
		// Compacted topics refuse null keys, so on a keyed table the truncate
		// carries the key record with zero values (README: "Truncate events").
		key, err := rel.codec.AppendKey(nil, make([]any, len(rel.shape.table.Columns)))
		if err != nil {
			return fmt.Errorf("postgres: table %s: encode truncate key: %w", rel.shape.id, err)
		}
		if err := s.rt.Emit(ctx, source.Record{Topic: rel.shape.table.Topic, Key: key, Value: val}); err != nil {
			return fmt.Errorf("postgres: emit: %w", err)
		}
	}
	return nil
}

// sequence is Debezium's source.sequence: a JSON array of the last commit
// LSN and this event's LSN, as strings.
func (s *streamer) sequence(lsn pglogrepl.LSN) string {
	b := append(s.seq[:0], '[')
	if s.lastCommit == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = strconv.AppendUint(b, uint64(s.lastCommit), 10)
		b = append(b, '"')
	}
	b = append(b, ',', '"')
	b = strconv.AppendUint(b, uint64(lsn), 10)
	b = append(b, '"', ']')
	s.seq = b
	return string(b)
}

// checkpoint records a position after which every earlier event was
// emitted. A checkpoint within every of the previous one is held back and
// sent with the next (which subsumes it); a read deadline makes sure it is
// sent when the stream goes quiet. every 0 sends it now.
func (s *streamer) checkpoint(ctx context.Context, off pgOffset, every time.Duration) error {
	if off.LSN <= s.ckptLSN {
		return nil
	}
	s.progress(&off)
	s.pending = off
	s.hasPending = true
	due := s.lastCkpt.Add(every)
	if every <= 0 || !time.Now().Before(due) {
		return s.flushCheckpoint(ctx)
	}
	if !s.deadlineSet || due.Before(s.deadline) {
		s.setDeadline(ctx, due)
	}
	return nil
}

func (s *streamer) flushCheckpoint(ctx context.Context) error {
	if s.deadlineSet {
		s.setDeadline(ctx, time.Time{})
	}
	if !s.hasPending {
		return nil
	}
	off := s.pending
	s.hasPending = false
	if err := s.rt.Checkpoint(ctx, off.toMap(), s.c.durableCallback(s.rt, off.LSN)); err != nil {
		return fmt.Errorf("postgres: checkpoint at %s: %w", off.LSN, err)
	}
	s.ckptLSN = off.LSN
	s.lastCkpt = time.Now()
	return nil
}

// setDeadline sets the read deadline of the replication connection without
// losing a cancellation that set it in the past.
func (s *streamer) setDeadline(ctx context.Context, t time.Time) {
	if s.conn == nil { // unit tests drive the streamer without a connection
		s.deadlineSet, s.deadline = !t.IsZero(), t
		return
	}
	nc := s.conn.Conn()
	_ = nc.SetReadDeadline(t)
	s.deadlineSet, s.deadline = !t.IsZero(), t
	if ctx.Err() != nil {
		_ = nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// statusLoop reports the durable position, runs heartbeats and measures lag.
func (s *streamer) statusLoop(ctx context.Context, conn *pgx.Conn, stop <-chan struct{}) {
	c := s.c
	status := time.NewTicker(c.cfg.StatusInterval)
	defer status.Stop()
	every := c.cfg.HeartbeatInterval
	if every <= 0 {
		every = 10 * time.Second // lag is still measured
	}
	hb := time.NewTicker(every)
	defer hb.Stop()
	lastDurable := c.durable.Load()
	lastAdvance := time.Now()
	hbFailed := false
	send := func() {
		// Sent even when nothing is durable yet (position 0, which the
		// server ignores): it is also the reply that keeps wal_sender_timeout
		// from closing the connection.
		d := c.durable.Load()
		err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(d)})
		if err != nil && ctx.Err() == nil {
			c.log.Debug("send standby status update failed", "error", err)
		}
	}
	// Lag is measured more often than heartbeats are due, so the gauge is
	// there from the start and follows a draining backlog.
	lagT := time.NewTicker(2 * time.Second)
	defer lagT.Stop()
	measureLag := func() {
		if _, lag, err := s.lag(ctx, conn); err == nil {
			if m := s.rt.Metrics(); m != nil && m.LagBytes != nil {
				m.LagBytes.WithLabelValues(c.name).Set(float64(lag))
			}
		}
	}
	measureLag()
	for {
		select {
		case <-stop:
			send()
			return
		case <-s.wake:
			send()
		case <-status.C:
			send()
		case <-lagT.C:
			measureLag()
		case <-hb.C:
			d := c.durable.Load()
			if d != lastDurable {
				lastDurable, lastAdvance = d, time.Now()
			}
			cur, lag, err := s.lag(ctx, conn)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Debug("measure slot lag failed", "error", err)
				}
				continue
			}
			if m := s.rt.Metrics(); m != nil && m.LagBytes != nil {
				m.LagBytes.WithLabelValues(c.name).Set(float64(lag))
			}
			if c.cfg.HeartbeatInterval > 0 && !hbFailed && time.Since(lastAdvance) >= c.cfg.HeartbeatInterval && uint64(cur) > d {
				if _, err := conn.Exec(ctx, `SELECT pg_logical_emit_message(false, $1, '')`, heartbeatPrefix); err != nil {
					if ctx.Err() == nil {
						c.log.Warn("heartbeat with pg_logical_emit_message failed; heartbeats disabled (the slot still advances on keepalives)", "error", err)
						hbFailed = true
					}
				}
				lastAdvance = time.Now()
			}
		}
	}
}

func (s *streamer) lag(ctx context.Context, conn *pgx.Conn) (pglogrepl.LSN, int64, error) {
	var cur, confirmed *string
	err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`,
		s.c.slot).Scan(&cur, &confirmed)
	if err != nil {
		return 0, 0, err
	}
	if cur == nil || confirmed == nil {
		return 0, 0, errors.New("slot has no confirmed position")
	}
	a, err := pglogrepl.ParseLSN(*cur)
	if err != nil {
		return 0, 0, err
	}
	b, err := pglogrepl.ParseLSN(*confirmed)
	if err != nil {
		return 0, 0, err
	}
	if a < b {
		return a, 0, nil
	}
	return a, int64(a - b), nil
}

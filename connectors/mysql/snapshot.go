package mysql

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/tributary-cdc/tributary/faults"
	"github.com/tributary-cdc/tributary/schema"
)

// snapshotConns are connections that all read the same consistent snapshot.
type snapshotConns struct {
	conns []*client.Conn
	pos   position
}

func (s *snapshotConns) close() {
	for _, c := range s.conns {
		_, _ = c.Execute("ROLLBACK")
		c.Close()
	}
	s.conns = nil
}

// startSnapshotTxn starts a consistent-snapshot transaction on conn. On
// MariaDB it also returns the binlog position the snapshot corresponds to
// (binlog_snapshot_file/position of the same session) and its GTID.
func startSnapshotTxn(conn *client.Conn, flavor string) (position, error) {
	for _, q := range []string{
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT",
	} {
		if _, err := conn.Execute(q); err != nil {
			return position{}, fmt.Errorf("%s: %w", q, err)
		}
	}
	if flavor != flavorMariaDB {
		return position{}, nil
	}
	rows, err := query(conn, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return position{}, fmt.Errorf("reading binlog_snapshot_file/position: %w", err)
	}
	var p position
	for _, r := range rows {
		switch strings.ToLower(r[0]) {
		case "binlog_snapshot_file":
			p.File = r[1]
		case "binlog_snapshot_position":
			n, _ := strconv.ParseUint(r[1], 10, 32)
			p.Pos = uint32(n)
		}
	}
	if p.File == "" {
		return position{}, errors.New("the server reports no binlog_snapshot_file: is the binary log on?")
	}
	rows, err = query(conn, "SELECT BINLOG_GTID_POS("+quote(p.File)+", "+strconv.FormatUint(uint64(p.Pos), 10)+")")
	if err != nil {
		return position{}, fmt.Errorf("reading the GTID of %s:%d: %w", p.File, p.Pos, err)
	}
	if len(rows) > 0 {
		p.GTIDs = rows[0][0]
	}
	return p, nil
}

// openSnapshot opens n connections sharing one consistent snapshot and its
// binlog position.
//
// MariaDB: each START TRANSACTION WITH CONSISTENT SNAPSHOT yields its own
// snapshot with its exact binlog position, without a lock. Readers on
// several connections must see the same data, so they start back to back
// and must all report the same position, which proves the same set of
// committed transactions; on a server too busy for that, a brief FLUSH
// TABLES WITH READ LOCK holds commits while they start. Without the RELOAD
// privilege for that lock, the snapshot falls back to one reader: correct,
// only slower.
//
// MySQL: the consistent snapshot does not report a binlog position, so the
// shortest FLUSH TABLES WITH READ LOCK window covers reading the position
// and GTID set and starting every reader's transaction.
func (c *Connector) openSnapshot(ctx context.Context, flavor string, n int) (*snapshotConns, error) {
	sc := &snapshotConns{}
	for i := 0; i < n; i++ {
		conn, err := connect(ctx, c.ep)
		if err != nil {
			sc.close()
			return nil, err
		}
		sc.conns = append(sc.conns, conn)
	}
	if flavor == flavorMariaDB {
		for attempt := 0; attempt < 5; attempt++ {
			ok, err := sc.startAll(flavor)
			if err != nil {
				sc.close()
				return nil, err
			}
			if ok {
				return sc, nil
			}
			sc.rollbackAll()
			time.Sleep(time.Duration(10*(attempt+1)) * time.Millisecond)
		}
		c.log.Info("snapshot readers did not start at the same binlog position on a busy server; holding commits briefly with FLUSH TABLES WITH READ LOCK", "readers", n)
	}
	lock, err := connect(ctx, c.ep)
	if err != nil {
		sc.close()
		return nil, err
	}
	defer lock.Close()
	if _, err := lock.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
		if flavor == flavorMariaDB && n > 1 {
			c.log.Warn("cannot take FLUSH TABLES WITH READ LOCK (needs the RELOAD privilege); reading the tables one at a time on a single snapshot", "error", err)
			for _, extra := range sc.conns[1:] {
				extra.Close()
			}
			sc.conns = sc.conns[:1]
			if _, err := sc.startAll(flavor); err != nil {
				sc.close()
				return nil, err
			}
			return sc, nil
		}
		sc.close()
		return nil, fmt.Errorf("FLUSH TABLES WITH READ LOCK (needed to read a consistent binlog position; grant RELOAD): %w", err)
	}
	locked := time.Now()
	var pos position
	if flavor != flavorMariaDB {
		if pos, err = binlogEnd(lock, flavor); err != nil {
			_, _ = lock.Execute("UNLOCK TABLES")
			sc.close()
			return nil, fmt.Errorf("reading the binlog position under the read lock: %w", err)
		}
	}
	ok, err := sc.startAll(flavor)
	_, uerr := lock.Execute("UNLOCK TABLES")
	c.log.Info("global read lock released", "held", time.Since(locked).Round(time.Microsecond))
	if err == nil && uerr != nil {
		err = fmt.Errorf("UNLOCK TABLES: %w", uerr)
	}
	if err != nil {
		sc.close()
		return nil, err
	}
	if flavor == flavorMariaDB && !ok {
		sc.close()
		return nil, errors.New("snapshot readers report different binlog positions although commits were blocked")
	}
	if flavor != flavorMariaDB {
		sc.pos = pos
	}
	return sc, nil
}

// startAll starts the snapshot on every connection; on MariaDB it reports
// whether they all see the same binlog position.
func (sc *snapshotConns) startAll(flavor string) (bool, error) {
	var first position
	same := true
	for i, conn := range sc.conns {
		p, err := startSnapshotTxn(conn, flavor)
		if err != nil {
			return false, err
		}
		if i == 0 {
			first = p
		} else if p.File != first.File || p.Pos != first.Pos {
			same = false
		}
	}
	if flavor == flavorMariaDB {
		sc.pos = first
	}
	return same, nil
}

func (sc *snapshotConns) rollbackAll() {
	for _, c := range sc.conns {
		_, _ = c.Execute("ROLLBACK")
	}
}

// snapshotMarks hands out Debezium's source.snapshot values.
type snapshotMarks struct {
	firstDone atomic.Bool
	mu        sync.Mutex
	held      map[tableID]heldRow // each table's last row, emitted at the end
}

type heldRow struct {
	ts  *tableState
	row []any
	src []any
}

// next is the mark of a row that is not its table's last (that one is held
// back and marked at the end): the first such row of the snapshot is
// "first", a table's first row "first_in_data_collection", others "true".
func (m *snapshotMarks) next(firstInTable bool) string {
	if !firstInTable {
		return schema.SnapshotTrue
	}
	return schema.SnapshotMarker(m.firstDone.CompareAndSwap(false, true), false, true, false)
}

// takeSnapshot reads every captured table inside one consistent snapshot,
// records the schema baseline at the snapshot's position and returns that
// position, from which streaming continues without gap or overlap. With
// withData false (snapshot: never) only the schema baseline is taken.
func (c *Connector) takeSnapshot(ctx context.Context, r *run, withData bool) (position, *catalog, error) {
	n := c.cfg.SnapshotParallelism
	if !withData || n < 1 {
		n = 1
	}
	conn0, err := connect(ctx, c.ep)
	if err != nil {
		return position{}, nil, err
	}
	defer conn0.Close()

	var sc *snapshotConns
	var cat *catalog
	var info map[tableID]tableInfo
	for attempt := 1; ; attempt++ {
		cat1, _, err := readCatalog(conn0, r.filter, r.ddl, r.si.flavor)
		if err != nil {
			return position{}, nil, err
		}
		if err := checkTablesExist(c.cfg.Tables, cat1); err != nil {
			return position{}, nil, err
		}
		if sc, err = c.openSnapshot(ctx, r.si.flavor, n); err != nil {
			return position{}, nil, err
		}
		cat2, info2, err := readCatalog(conn0, r.filter, r.ddl, r.si.flavor)
		if err != nil {
			sc.close()
			return position{}, nil, err
		}
		// information_schema is not transactional: the shapes read before
		// and after the snapshot started match only if no DDL ran between,
		// and then they are the shapes at the snapshot's position.
		if reflect.DeepEqual(cat1.tables, cat2.tables) {
			cat, info = cat2, info2
			break
		}
		sc.close()
		if attempt == 5 {
			return position{}, nil, errors.New("table definitions kept changing while the snapshot started (DDL running); try again when schema changes are done")
		}
		c.log.Info("DDL ran while the snapshot started; starting it again", "attempt", attempt)
	}
	defer sc.close()
	pos := sc.pos
	pos.TsSec = time.Now().Unix()
	pos.ServerID = r.serverID
	c.log.Info("consistent snapshot opened", "file", pos.File, "pos", pos.Pos, "gtids", pos.GTIDs, "readers", len(sc.conns))

	if err := r.hist.writeBaseline(ctx, cat, pos, baselineDDL(cat)); err != nil {
		return position{}, nil, err
	}
	if !withData {
		return pos, cat, nil
	}

	var states []*tableState
	for _, id := range cat.sortedIDs() {
		if !r.filter.captured(id.DB, id.Table) {
			continue
		}
		ts, err := r.tableState(id, cat.tables[id])
		if err != nil {
			return position{}, nil, err
		}
		if e := info[id].engine; e != "" && !strings.EqualFold(e, "InnoDB") {
			c.log.Warn("table is not InnoDB: its snapshot is not transactional and may not match the binlog position", "table", id.String(), "engine", e)
		}
		states = append(states, ts)
	}
	// The offset says a snapshot is running before its first row reaches
	// the log: a restart then knows the topics may hold its rows.
	mark := pos
	mark.Snapshot = true
	if err := r.rt.Checkpoint(ctx, mark.offset(), func() {}); err != nil {
		return position{}, nil, err
	}
	if err := r.rt.Flush(ctx); err != nil {
		return position{}, nil, fmt.Errorf("recording the snapshot start: %w", err)
	}
	if err := c.readTables(ctx, r, sc, pos, states, info); err != nil {
		return position{}, nil, err
	}
	if r.rt.Offset() != nil {
		// Still inside the consistent snapshot: keys are looked up as of
		// its position (vanished.go).
		if err := c.deleteVanished(ctx, r, sc.conns[0], states, pos); err != nil {
			return position{}, nil, err
		}
	}
	return pos, cat, nil
}

// checkTablesExist fails for a configured name that is not a table, and
// for a pattern that matches nothing.
func checkTablesExist(tables []string, cat *catalog) error {
	var missing []string
	for _, t := range tables {
		p, err := parseTablePattern(t)
		if err != nil {
			return err
		}
		found := false
		for id := range cat.tables {
			if p.matches(id.DB, id.Table) {
				found = true
				break
			}
		}
		if !found {
			if p.isPattern() {
				missing = append(missing, fmt.Sprintf("pattern %q matches no table", t))
			} else {
				missing = append(missing, fmt.Sprintf("table %s does not exist (or is a view, or the user has no privilege on it)", t))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tables: %s", strings.Join(missing, "; "))
	}
	return nil
}

// baselineDDL renders each table as a CREATE TABLE for the history (for
// people reading it; replay uses the structured tableChanges).
func baselineDDL(cat *catalog) map[tableID]string {
	out := map[tableID]string{}
	for id, t := range cat.tables {
		var b strings.Builder
		b.WriteString("CREATE TABLE " + quoteIdent(id.DB) + "." + quoteIdent(id.Table) + " (")
		for i, c := range t.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(c.Name) + " " + c.TypeExpression)
			if c.Charset != "" {
				b.WriteString(" CHARACTER SET " + c.Charset)
			}
			if !c.Optional {
				b.WriteString(" NOT NULL")
			}
		}
		if len(t.PK) > 0 {
			q := make([]string, len(t.PK))
			for i, k := range t.PK {
				q[i] = quoteIdent(k)
			}
			b.WriteString(", PRIMARY KEY (" + strings.Join(q, ", ") + ")")
		}
		b.WriteString(")")
		out[id] = b.String()
	}
	return out
}

// readTables reads the tables on the snapshot's connections, one table per
// reader at a time, and emits op=r events.
func (c *Connector) readTables(ctx context.Context, r *run, sc *snapshotConns, pos position, states []*tableState, info map[tableID]tableInfo) error {
	m := c.metrics(r)
	if m != nil {
		m.SnapshotRunning.WithLabelValues(c.name).Set(1)
		defer m.SnapshotRunning.WithLabelValues(c.name).Set(0)
	}
	var total int64
	for _, ts := range states {
		total += info[ts.id].rowsEst
		if m != nil {
			m.SnapshotTotal.WithLabelValues(c.name, ts.id.String()).Set(float64(info[ts.id].rowsEst))
			m.SnapshotRows.WithLabelValues(c.name, ts.id.String()).Set(0)
		}
	}
	var done atomic.Int64
	start := time.Now()
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				rows := done.Load()
				rate := float64(rows) / time.Since(start).Seconds()
				args := []any{"rows", rows, "rows_per_sec", int64(rate), "estimated_rows", total}
				if rate > 0 && total > rows {
					args = append(args, "eta", (time.Duration(float64(total-rows)/rate) * time.Second).Round(time.Second))
				}
				c.log.Info("snapshot progress", args...)
			}
		}
	}()

	marks := &snapshotMarks{held: map[tableID]heldRow{}}
	work := make(chan *tableState)
	errc := make(chan error, len(sc.conns))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, conn := range sc.conns {
		wg.Add(1)
		go func(conn *client.Conn) {
			defer wg.Done()
			for ts := range work {
				if err := c.readTable(wctx, r, conn, ts, pos, marks, &done); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}(conn)
	}
	func() {
		defer close(work)
		for _, ts := range states {
			select {
			case work <- ts:
			case <-wctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Each table's last row was held back to mark it; the very last one
	// of the snapshot is "last".
	var held []heldRow
	for _, ts := range states {
		if h, ok := marks.held[ts.id]; ok {
			held = append(held, h)
		}
	}
	// A table of one row has only its held row, which is its last: if
	// every table read had one row or none, the first of them opens the
	// snapshot (schema.SnapshotMarker: "first" wins over
	// "last_in_data_collection", "last" over both).
	noFirst := !marks.firstDone.Load()
	for i, h := range held {
		h.src[schema.SrcSnapshot] = schema.SnapshotMarker(noFirst && i == 0, i == len(held)-1, false, true)
		if _, err := r.em.emit(ctx, h.ts, schema.OpRead, nil, h.row, h.src); err != nil {
			return err
		}
	}
	c.log.Info("snapshot read", "tables", len(states), "rows", done.Load(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// readTable reads one table in primary-key chunks (or one streamed scan
// when it has no usable key) and emits op=r events.
func (c *Connector) readTable(ctx context.Context, r *run, conn *client.Conn, ts *tableState, pos position,
	marks *snapshotMarks, done *atomic.Int64) error {
	if err := r.em.prepare(ctx, ts); err != nil {
		return err
	}
	m := c.metrics(r)
	var rowsGauge interface{ Set(float64) }
	if m != nil {
		rowsGauge = m.SnapshotRows.WithLabelValues(c.name, ts.id.String())
	}
	cols := make([]string, len(ts.cols))
	for i, col := range ts.cols {
		cols[i] = quoteIdent(col.def.Name)
	}
	from := " FROM " + quoteIdent(ts.id.DB) + "." + quoteIdent(ts.id.Table)
	sel := "SELECT " + strings.Join(cols, ", ") + from

	// Each row is emitted when the next one arrives, so the last row of
	// the table can be held back for its snapshot mark. Rows are copied
	// into two slots in turn: the pending row's slot stays intact while the
	// next row fills the other one, and its values are encoded straight
	// from the slot (strings share the slot's memory until encoded).
	var slots [2]rawRow
	cur := 0
	pending := -1 // slot of the row not emitted yet
	var count int64
	firstInTable := true
	var goRow []any
	var a arena
	var box snapshotSource
	emitPending := func() error {
		if pending < 0 {
			return nil
		}
		var err error
		if goRow, err = ts.rowFromTextInto(goRow, slots[pending].vals, true); err != nil {
			return err
		}
		src := box.fill(r, ts, pos, marks.next(firstInTable))
		firstInTable = false
		if _, err := r.em.emitWith(ctx, &a, ts, schema.OpRead, nil, goRow, src, time.Now().UnixMicro()); err != nil {
			return err
		}
		pending = -1
		return nil
	}
	onRow := func(row []gomysql.FieldValue) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		slots[cur].set(row)
		if err := emitPending(); err != nil {
			return err
		}
		pending, cur = cur, 1-cur
		count++
		if count%1000 == 0 && rowsGauge != nil {
			rowsGauge.Set(float64(count))
		}
		done.Add(1)
		return nil
	}
	// lastKey is the key of the last row read, for the next chunk's query.
	lastKey := func() []textValue {
		if pending < 0 {
			return nil
		}
		last := make([]textValue, len(ts.keyIdx))
		for i, k := range ts.keyIdx {
			last[i] = slots[pending].vals[k]
		}
		return last
	}

	var result gomysql.Result
	if !ts.chunkOK {
		if err := conn.ExecuteSelectStreaming(sel, &result, onRow, nil); err != nil {
			return snapshotReadError(ts, err)
		}
	} else {
		order := make([]string, len(ts.keyIdx))
		for i, k := range ts.keyIdx {
			order[i] = quoteIdent(ts.cols[k].def.Name)
		}
		orderBy := " ORDER BY " + strings.Join(order, ", ") + " LIMIT " + strconv.Itoa(c.cfg.SnapshotChunkRows)
		q := sel + orderBy
		for {
			before := count
			if err := conn.ExecuteSelectStreaming(q, &result, onRow, nil); err != nil {
				return snapshotReadError(ts, err)
			}
			if count-before < int64(c.cfg.SnapshotChunkRows) {
				break
			}
			where, err := ts.afterKey(lastKey())
			if err != nil {
				return err
			}
			q = sel + " WHERE " + where + orderBy
		}
	}
	if pending >= 0 {
		// The table's last row outlives its slot: its values are copied.
		row, err := ts.rowFromTextInto(nil, slots[pending].vals, false)
		if err != nil {
			return err
		}
		src := slices.Clone(box.fill(r, ts, pos, "true"))
		marks.mu.Lock()
		marks.held[ts.id] = heldRow{ts: ts, row: row, src: src}
		marks.mu.Unlock()
	}
	if rowsGauge != nil {
		rowsGauge.Set(float64(count))
	}
	c.log.Info("snapshot of table done", "table", ts.id.String(), "rows", count)
	return nil
}

func snapshotReadError(ts *tableState, err error) error {
	if errCode(err) == gomysql.ER_TABLE_DEF_CHANGED {
		// A restart heals it: the snapshot is taken again (deletes are sent
		// for keys a redone snapshot no longer finds), with the new shape.
		return &faults.RestartHeals{Err: fmt.Errorf("table %s was altered while the snapshot read it; the connector restarts and takes the snapshot again: %w", ts.id, err)}
	}
	return fmt.Errorf("snapshot of %s: %w", ts.id, err)
}

// rawRow is one snapshot row copied out of the driver's buffer, which the
// driver reuses for the next row.
type rawRow struct {
	vals []textValue
	buf  []byte
}

func (r *rawRow) set(row []gomysql.FieldValue) {
	if cap(r.vals) < len(row) {
		r.vals = make([]textValue, len(row))
	}
	r.vals = r.vals[:len(row)]
	n := 0
	for i := range row {
		if row[i].Type == gomysql.FieldValueTypeString {
			n += len(row[i].AsString())
		}
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, 0, n+n/2)
	}
	r.buf = r.buf[:0]
	for i := range row {
		fv := &row[i]
		switch fv.Type {
		case gomysql.FieldValueTypeNull:
			r.vals[i] = textValue{null: true}
		case gomysql.FieldValueTypeSigned:
			r.vals[i] = textValue{isInt: true, i: fv.AsInt64()}
		case gomysql.FieldValueTypeUnsigned:
			r.vals[i] = textValue{isInt: true, unsigned: true, u: fv.AsUint64()}
		case gomysql.FieldValueTypeFloat:
			r.vals[i] = textValue{isFloat: true, f: fv.AsFloat64()}
		default:
			// Never reallocates: buf was sized for every string above, so
			// earlier values keep pointing into it.
			off := len(r.buf)
			r.buf = append(r.buf, fv.AsString()...)
			r.vals[i] = textValue{b: r.buf[off:len(r.buf):len(r.buf)]}
		}
	}
}

// snapshotSource builds the source block of snapshot rows, reused from row
// to row (the codec copies it into the record).
type snapshotSource struct {
	src     []any
	ms      int64
	tsBoxes [3]any
}

func (b *snapshotSource) fill(r *run, ts *tableState, pos position, mark string) []any {
	if b.src == nil {
		b.src = r.em.sourceBlock(ts.id, "true", 0)
		b.src[schema.MySQLSrcServerID] = int64(r.serverID)
		b.src[schema.MySQLSrcFile] = pos.File
		b.src[schema.MySQLSrcPos] = int64(pos.Pos)
	}
	// A new millisecond needs new boxed times; within one, rows share them.
	if ms := time.Now().UnixMilli(); ms != b.ms || b.tsBoxes[0] == nil {
		b.ms = ms
		b.tsBoxes = [3]any{ms, ms * 1000, ms * 1_000_000}
	}
	b.src[schema.SrcTsMs], b.src[schema.SrcTsUs], b.src[schema.SrcTsNs] = b.tsBoxes[0], b.tsBoxes[1], b.tsBoxes[2]
	b.src[schema.SrcSnapshot] = mark
	return b.src
}

// afterKey renders "key > last" for keyset pagination, expanded for
// composite keys: (a > x) OR (a = x AND b > y) ...
func (ts *tableState) afterKey(last []textValue) (string, error) {
	lits := make([]string, len(last))
	for i, v := range last {
		lit, err := ts.cols[ts.keyIdx[i]].literal(v)
		if err != nil {
			return "", fmt.Errorf("table %s: paging after key column %s: %w", ts.id, ts.cols[ts.keyIdx[i]].def.Name, err)
		}
		lits[i] = lit
	}
	var ors []string
	for i := range last {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, quoteIdent(ts.cols[ts.keyIdx[j]].def.Name)+" = "+lits[j])
		}
		ands = append(ands, quoteIdent(ts.cols[ts.keyIdx[i]].def.Name)+" > "+lits[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return strings.Join(ors, " OR "), nil
}

// literal renders a key value read by the snapshot back into SQL.
func (c *column) literal(v textValue) (string, error) {
	if v.null {
		return "", errors.New("key value is NULL")
	}
	switch c.kind {
	case kTinyInt, kSmallInt, kMediumInt, kInt, kBigInt, kYear:
		if v.isInt && v.unsigned {
			return strconv.FormatUint(v.u, 10), nil
		}
		if v.isInt {
			return strconv.FormatInt(v.i, 10), nil
		}
		if _, err := strconv.ParseFloat(string(v.b), 64); err != nil {
			return "", fmt.Errorf("%q is not a number", v.b)
		}
		return string(v.b), nil
	case kDecimal:
		if _, err := parseDecimal(string(v.b), 0); err != nil {
			return "", err
		}
		return string(v.b), nil
	case kBytes:
		return "X'" + hex.EncodeToString(v.b) + "'", nil
	}
	return quote(string(v.b)), nil
}

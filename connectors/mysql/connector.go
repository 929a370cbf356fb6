// Package mysql is the MySQL and MariaDB source connector (`type: mysql`):
// a consistent snapshot, then the binlog, as Debezium-compatible events,
// with Debezium's MySQL offsets and a schema history that survives restarts.
package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

func init() { source.Register("mysql", driver{}) }

type driver struct{}

func (driver) NewConfig() source.Config { return NewConfig() }

func (driver) Open(name string, cfg source.Config, log *slog.Logger) (source.Connector, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("mysql connector %s: config is %T, want *mysql.Config", name, cfg)
	}
	return Open(name, c, log)
}

// Connector captures one MySQL or MariaDB server.
type Connector struct {
	name string
	cfg  *Config
	log  *slog.Logger
	ep   endpoint
	hist HistoryStore
}

var _ source.Connector = (*Connector)(nil)

// Open validates cfg and builds a connector. The schema history store must
// be set with SetHistory before Run.
func Open(name string, cfg *Config, log *slog.Logger) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ep, err := cfg.endpoint()
	if err != nil {
		return nil, &source.FieldError{Key: "url", Msg: err.Error()}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Connector{name: name, cfg: cfg, log: log.With("connector", name), ep: ep}, nil
}

// SetHistory sets where the schema history lives (a Kafka topic named by
// HistoryTopic in production).
func (c *Connector) SetHistory(h HistoryStore) { c.hist = h }

// HistoryTopic is the schema history topic this connector uses.
func (c *Connector) HistoryTopic() string { return c.cfg.historyTopic() }

// run is the state of one Run.
type run struct {
	c      *Connector
	rt     source.Runtime
	si     *serverInfo
	filter filter
	ddl    *ddlParser
	hist   *history
	em     *emitter
	// replicaID is this connector's server_id as a replica; serverID is the
	// server's own, written in snapshot events' source.server_id.
	replicaID uint32
	serverID  uint32
	states    map[tableID]*tableState
	warned    map[string]bool

	mu         sync.Mutex
	durablePos position
}

func (r *run) tableState(id tableID, def *tableDef) (*tableState, error) {
	ts, err := newTableState(r.c.cfg.TopicPrefixValue, def, r.c.cfg.keyColumnsFor(id.DB, id.Table))
	if err != nil {
		return nil, err
	}
	if u := ts.unknownColumns(); len(u) > 0 && !r.warned[id.String()+"|"+strings.Join(u, ",")] {
		r.warned[id.String()+"|"+strings.Join(u, ",")] = true
		r.c.log.Warn("columns of types without a Debezium mapping are sent as text", "table", id.String(), "columns", strings.Join(u, ", "))
	}
	return ts, nil
}

func (r *run) durable(p position) {
	r.mu.Lock()
	r.durablePos = p
	r.mu.Unlock()
	if m := r.rt.Metrics(); m != nil {
		_, idx, _ := binlogIndex(p.File)
		m.CommittedOffset.WithLabelValues(r.c.name).Set(float64(idx<<32 | int64(p.Pos)))
	}
}

func (c *Connector) metrics(r *run) *source.Metrics { return r.rt.Metrics() }

// Run implements source.Connector.
func (c *Connector) Run(ctx context.Context, rt source.Runtime) error {
	if c.hist == nil {
		return fmt.Errorf("mysql connector %s: no schema history store configured (topic %s)", c.name, c.cfg.historyTopic())
	}
	f, err := newFilter(c.cfg.Tables)
	if err != nil {
		return err
	}
	conn, err := connect(ctx, c.ep)
	if err != nil {
		return err
	}
	defer conn.Close()
	si, err := loadServerInfo(conn)
	if err != nil {
		return err
	}
	warnings, err := checkBinlogSettings(si.flavor, si.vars)
	if err != nil {
		return fmt.Errorf("server %s: %w", c.ep.addr(), err)
	}
	for _, w := range warnings {
		c.log.Warn(w)
	}
	if err := checkPrivileges(conn, c.ep, si.flavor); err != nil {
		return err
	}
	serverID, _ := strconv.ParseUint(si.vars["server_id"], 10, 32)
	r := &run{
		c: c, rt: rt, si: si, filter: f, ddl: newDDLParser(si.vars["character_set_server"]),
		hist:      &history{store: c.hist, server: c.cfg.TopicPrefixValue, flavor: si.flavor},
		em:        &emitter{rt: rt, name: c.cfg.TopicPrefixValue, srcDef: schema.MySQLSource()},
		replicaID: c.cfg.serverID(c.name), serverID: uint32(serverID),
		states: map[tableID]*tableState{}, warned: map[string]bool{},
	}
	if err := c.checkReplicaID(conn, r); err != nil {
		return err
	}
	c.log.Info("connected", "server", c.ep.addr(), "version", si.version, "flavor", si.flavor, "replica_server_id", r.replicaID)

	start, cat, err := c.plan(ctx, conn, r)
	if err != nil || cat == nil {
		return err
	}
	conn.Close()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); c.watchLag(lagCtx, r, start) }()
	defer func() { stopLag(); <-lagDone }()
	for {
		s, err := c.newStreamer(r, cat, start)
		if err != nil {
			return err
		}
		c.log.Info("streaming the binlog", "from", start.String())
		err = s.run(ctx)
		var pe *purgedError
		if errors.As(err, &pe) && c.cfg.Snapshot == SnapshotWhenNeeded && ctx.Err() == nil {
			c.log.Warn("the binlog at the resume position is gone; snapshot: when_needed takes a new snapshot", "position", pe.pos.String(), "error", pe.err)
			if start, cat, err = c.snapshotAndCheckpoint(ctx, r, true); err != nil {
				return err
			}
			r.states = map[tableID]*tableState{}
			continue
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
}

// checkReplicaID refuses a server_id that is the server's own or that a
// live replica uses (registering would disconnect that replica).
func (c *Connector) checkReplicaID(conn *client.Conn, r *run) error {
	if r.replicaID == r.serverID {
		return &source.FieldError{Key: "server_id", Msg: fmt.Sprintf("%d is the server's own server_id; choose another", r.replicaID)}
	}
	hosts, err := replicaHosts(conn)
	if err != nil {
		c.log.Debug("cannot list connected replicas (SHOW SLAVE HOSTS); server_id clashes are detected when they happen", "error", err)
		return nil
	}
	host, ok := hosts[r.replicaID]
	if !ok {
		return nil
	}
	if strings.HasPrefix(host, "tributary-"+c.name+":") {
		// This connector's own earlier connection, not yet reaped.
		return nil
	}
	return fmt.Errorf("server_id %d is already used by another replica connected to %s (%s): server_id must be unique among replicas and connectors (set server_id)",
		r.replicaID, c.ep.addr(), host)
}

// plan decides between a snapshot and resuming, and returns the position
// streaming starts from with the table shapes there. A nil catalog with nil
// error means there is nothing to stream (initial_only).
func (c *Connector) plan(ctx context.Context, conn *client.Conn, r *run) (position, *catalog, error) {
	off := r.rt.Offset()
	var pos position
	if off != nil {
		var err error
		if pos, err = parseOffset(off); err != nil {
			return position{}, nil, fmt.Errorf("committed offset %v cannot be read: %w", off, err)
		}
	}
	if off == nil || pos.Snapshot {
		if off != nil {
			c.log.Warn("the committed offset is from an unfinished snapshot; starting the snapshot over")
		}
		withData := c.cfg.Snapshot != SnapshotNever
		start, cat, err := c.snapshotAndCheckpoint(ctx, r, withData)
		if err != nil {
			return position{}, nil, err
		}
		if c.cfg.Snapshot == SnapshotInitialOnly {
			c.log.Info("snapshot complete; snapshot: initial_only does not stream")
			return start, nil, nil
		}
		return start, cat, nil
	}
	if c.cfg.Snapshot == SnapshotInitialOnly {
		c.log.Info("the snapshot was completed earlier; snapshot: initial_only has nothing more to do", "offset", pos.String())
		return pos, nil, nil
	}
	if err := c.checkResumable(conn, r, pos); err != nil {
		var pe *purgedError
		if errors.As(err, &pe) && c.cfg.Snapshot == SnapshotWhenNeeded {
			c.log.Warn("the binlog at the resume position is gone; snapshot: when_needed takes a new snapshot", "error", err)
			return c.snapshotAndCheckpoint(ctx, r, true)
		}
		return position{}, nil, err
	}
	cat, n, err := r.hist.rebuild(ctx, pos)
	if err == nil {
		c.log.Info("schema history replayed", "records", n, "tables", len(cat.tables), "at", pos.String())
		return pos, cat, nil
	}
	if !errors.Is(err, errHistoryMissing) && !errors.Is(err, errHistoryDamaged) {
		return position{}, nil, fmt.Errorf("reading the schema history (topic %s): %w", c.cfg.historyTopic(), err)
	}
	c.log.Warn("the schema history cannot give the table shapes at the resume position; checking whether the current ones are safe to use",
		"topic", c.cfg.historyTopic(), "problem", err.Error())
	cat, rerr := c.recoverHistory(ctx, r, pos)
	if rerr == nil {
		return pos, cat, nil
	}
	if c.cfg.Snapshot == SnapshotWhenNeeded {
		c.log.Warn("the schema history cannot be recovered; snapshot: when_needed takes a new snapshot", "error", rerr)
		return c.snapshotAndCheckpoint(ctx, r, true)
	}
	return position{}, nil, fmt.Errorf("schema history topic %s: %v; %w", c.cfg.historyTopic(), err, rerr)
}

func (c *Connector) snapshotAndCheckpoint(ctx context.Context, r *run, withData bool) (position, *catalog, error) {
	start, cat, err := c.takeSnapshot(ctx, r, withData)
	if err != nil {
		return position{}, nil, err
	}
	if err := r.rt.Checkpoint(ctx, start.offset(), func() { r.durable(start) }); err != nil {
		return position{}, nil, err
	}
	return start, cat, nil
}

// checkResumable guards the resume position: it must name a position (never
// "the beginning"), its GTID domains or server UUIDs must be known to the
// server, and its binlog must still be there.
func (c *Connector) checkResumable(conn *client.Conn, r *run, pos position) error {
	if pos.GTIDs == "" && pos.File == "" {
		return fmt.Errorf("committed offset %v has neither a GTID set nor a binlog file; refusing to read the binlog from its first file (that would replay old changes); take a new snapshot by deleting the connector's offset", pos.offset())
	}
	sizes, files, err := binlogFiles(conn)
	if err != nil {
		return err
	}
	if pos.GTIDs != "" {
		set, err := parseGTIDSet(r.si.flavor, pos.GTIDs)
		if err != nil {
			return fmt.Errorf("committed offset %s: %w", pos, err)
		}
		if r.si.flavor == flavorMariaDB {
			state, _ := gomysql.ParseMariadbGTIDSet(r.si.vars["gtid_binlog_state"])
			known := map[uint32]uint64{}
			if st, ok := state.(*gomysql.MariadbGTIDSet); ok {
				for d, g := range st.Sets {
					known[d] = g.SequenceNumber
				}
			}
			for d, g := range set.(*gomysql.MariadbGTIDSet).Sets {
				seq, ok := known[d]
				if !ok {
					return fmt.Errorf("committed offset %s names GTID domain %d, which server %s does not know (its binlog state is %q): resuming would read that domain from the first binlog file; take a new snapshot",
						pos, d, c.ep.addr(), r.si.vars["gtid_binlog_state"])
				}
				if g.SequenceNumber > seq {
					return fmt.Errorf("committed offset %s is ahead of server %s in GTID domain %d (server at %d): is this the same server?",
						pos, c.ep.addr(), d, seq)
				}
			}
		} else {
			executed, err := parseGTIDSet(flavorMySQL, r.si.vars["gtid_executed"])
			if err != nil {
				return err
			}
			if !executed.Contain(set) {
				return fmt.Errorf("committed offset %s has transactions server %s never executed (gtid_executed %q): unknown server UUID or a different server; take a new snapshot",
					pos, c.ep.addr(), r.si.vars["gtid_executed"])
			}
			if purged, err := parseGTIDSet(flavorMySQL, r.si.vars["gtid_purged"]); err == nil && !set.Contain(purged) {
				return &purgedError{pos: pos, err: fmt.Errorf("gtid_purged %q is not contained in the offset's GTID set", r.si.vars["gtid_purged"])}
			}
		}
		return nil
	}
	size, ok := sizes[pos.File]
	if !ok {
		return &purgedError{pos: pos, err: fmt.Errorf("binlog file %s is not among the server's files %v", pos.File, files)}
	}
	if uint64(pos.Pos) > size {
		return fmt.Errorf("committed offset %s is beyond the end of %s (%d bytes): is this the same server?", pos, pos.File, size)
	}
	return nil
}

// recoverHistory rebuilds the table shapes at pos from information_schema,
// which is only right when no DDL touched a tracked database since pos: the
// binlog from pos to its current end (read after the shapes) is scanned to
// prove it. The recovered shapes become a new history baseline at pos.
func (c *Connector) recoverHistory(ctx context.Context, r *run, pos position) (*catalog, error) {
	conn, err := connect(ctx, c.ep)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cat, _, err := readCatalog(conn, r.filter, r.ddl, r.si.flavor)
	if err != nil {
		return nil, err
	}
	end, err := binlogEnd(conn, r.si.flavor)
	if err != nil {
		return nil, err
	}
	if err := c.scanForDDL(ctx, r, cat, pos, end); err != nil {
		return nil, err
	}
	if err := r.hist.writeBaseline(ctx, cat, pos, baselineDDL(cat)); err != nil {
		return nil, err
	}
	c.log.Info("schema history rebuilt from information_schema: no DDL on captured databases since the resume position", "at", pos.String(), "checked_until", end.String(), "tables", len(cat.tables))
	return cat, nil
}

// scanForDDL reads the binlog from pos to end and fails on the first
// statement that changes (or may change) a tracked table.
func (c *Connector) scanForDDL(ctx context.Context, r *run, cat *catalog, pos, end position) error {
	if compareFilePos(pos.File, pos.Pos, end.File, end.Pos) >= 0 && pos.File != "" {
		return nil
	}
	s, err := c.newStreamer(r, cat.clone(), pos)
	if err != nil {
		return err
	}
	s.headersOnly = true // only statements matter here
	syncer, st, err := s.start()
	if err != nil {
		return err
	}
	defer syncer.Close()
	file := pos.File
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		ev, err := st.GetEvent(sctx)
		if err != nil {
			if cerr := s.classify(err); cerr != nil {
				return cerr
			}
			return fmt.Errorf("scanning the binlog from %s to %s for DDL: %w", pos, end, err)
		}
		h := ev.Header
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
		case *replication.QueryEvent:
			q := strings.TrimSpace(string(e.Query))
			u := strings.ToUpper(q)
			if u == "BEGIN" || u == "COMMIT" || u == "ROLLBACK" || strings.HasPrefix(u, "XA ") || strings.HasPrefix(u, "SAVEPOINT") {
				break
			}
			if r.ddl.touchesTracked(r.filter, string(e.Schema), q) {
				return fmt.Errorf("the current table shapes cannot stand in for the lost history: DDL ran after the resume position %s (at %s:%d: %s); take a new snapshot (delete the connector's offset, or set snapshot: when_needed)",
					pos, file, h.LogPos-h.EventSize, clip(q, 200))
			}
		}
		if file != "" && h.LogPos > 0 && compareFilePos(file, h.LogPos, end.File, end.Pos) >= 0 {
			return nil
		}
	}
}

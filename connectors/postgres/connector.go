// Package postgres is the PostgreSQL source connector (`type: postgres`): a
// consistent initial snapshot through a replication slot's exported snapshot,
// then logical replication with pgoutput, emitting Debezium-compatible events.
//
// Guarantees and limits, in short (the README has the user-facing version):
//
//   - The slot's confirmed_flush_lsn only moves to positions the runtime
//     reported durable (events acknowledged by the log and the offset record
//     written). After a restart, transactions the slot replays below the
//     committed offset are skipped, so duplicates are limited to the
//     transaction in flight at a crash.
//   - The initial snapshot records its progress in the offset (tables left,
//     key of the last chunk wholly in the log). After a crash the slot is
//     kept and the rest is read incrementally while streaming from the
//     slot's consistent point (incremental.go), so rows deleted meanwhile
//     get their delete events and completed chunks are not read again.
//   - Incremental snapshots (the rest of an interrupted initial snapshot,
//     tables added to `tables`, `tributary snapshot` requests) follow
//     DBLog's watermark algorithm with watermarks written into the WAL by
//     pg_logical_emit_message; their progress is in the offset, so a
//     restart resumes at the next chunk. Events: op=r, source.snapshot
//     "incremental".
//   - A full snapshot taken again over topics that hold rows of an earlier
//     one emits deletes for the keys the table no longer has (vanished.go).
//   - Large transactions are streamed by the server (protocol v2) and spooled
//     to a temporary file until they commit, so memory stays bounded.
//   - Under REPLICA IDENTITY DEFAULT, an unchanged TOASTed value is not in the
//     WAL; it is sent as Debezium's placeholder __debezium_unavailable_value
//     (string and binary columns, and arrays of them). Other kinds that can be
//     TOASTed (numeric) are sent as null with a warning in the log. REPLICA
//     IDENTITY FULL avoids both.
//   - Snapshot events carry source.snapshot "true", and "last" on the last
//     record emitted by the whole snapshot. Tables are read in parallel, so
//     records of different tables interleave; within a table they are in
//     primary-key order.
//   - The slot is kept on a clean stop, so the next start resumes.
package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// Version is the connector version written in source.version.
const Version = "tributary-0.1.0"

// heartbeatPrefix is the pg_logical_emit_message prefix of heartbeats.
const heartbeatPrefix = "tributary_heartbeat"

func init() {
	source.Register("postgres", driver{})
}

type driver struct{}

func (driver) NewConfig() source.Config { return NewConfig() }

func (driver) Open(name string, cfg source.Config, log *slog.Logger) (source.Connector, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("postgres connector %q: config is %T, want *postgres.Config", name, cfg)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("postgres connector %q: %w", name, err)
	}
	if log == nil {
		log = slog.Default()
	}
	connCfg, err := pgx.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres connector %q: url: %s", name, redact(err.Error(), c.URL))
	}
	return &connector{
		name:        name,
		cfg:         c,
		log:         log.With("connector", name),
		slot:        c.slotName(name),
		publication: c.publicationName(name),
		connCfg:     connCfg,
	}, nil
}

type connector struct {
	name        string
	cfg         *Config
	log         *slog.Logger
	slot        string
	publication string
	connCfg     *pgx.ConnConfig

	db     string // current_database()
	tables []*catalogTable
	byID   map[tableID]*catalogTable

	// resnapshot is set when a full snapshot is taken over topics that may
	// hold rows of an earlier one (vanished.go).
	resnapshot bool

	// progressEvery is the snapshot progress log interval (5s when 0).
	progressEvery time.Duration

	// durable is the highest LSN the runtime reported durable; it is what
	// standby status updates acknowledge to the server.
	durable atomic.Uint64
}

func (c *connector) setDurable(lsn pglogrepl.LSN) {
	for {
		cur := c.durable.Load()
		if uint64(lsn) <= cur || c.durable.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

// where names the server and user for errors, never the password.
func (c *connector) where() string {
	return fmt.Sprintf("%s as user %q (database %q)",
		net.JoinHostPort(c.connCfg.Host, strconv.Itoa(int(c.connCfg.Port))), c.connCfg.User, c.connCfg.Database)
}

// connect opens a normal connection, turning failures into errors that name
// host, port and user and never show the password.
func (c *connector) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, c.connCfg.Copy())
	if err != nil {
		return nil, c.connectError(err)
	}
	return conn, nil
}

func (c *connector) connectError(err error) error {
	msg := redact(err.Error(), c.cfg.URL)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("postgres: cannot connect to %s: authentication failed (check the user and password in url): %s", c.where(), msg)
		case "3D000":
			return fmt.Errorf("postgres: cannot connect to %s: database does not exist: %s", c.where(), msg)
		}
	}
	return fmt.Errorf("postgres: cannot connect to %s: %s", c.where(), msg)
}

// connectBulk opens a connection for snapshot reads, with a large read
// buffer: COPY output arrives as one small message per row, and the default
// 8 kB buffer costs a read system call every few dozen rows.
func (c *connector) connectBulk(ctx context.Context) (*pgx.Conn, error) {
	cfg := c.connCfg.Copy()
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, 256<<10), w)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, c.connectError(err)
	}
	return conn, nil
}

// connectReplication opens a logical replication connection (walsender
// speaking the replication protocol, bound to the database).
func (c *connector) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := c.connCfg.Config.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "28000" && strings.Contains(pgErr.Message, "replication") {
			return nil, fmt.Errorf("postgres: replication connection to %s refused: %s (the user needs the REPLICATION attribute and pg_hba.conf must allow its connections)", c.where(), redact(err.Error(), c.cfg.URL))
		}
		return nil, c.connectError(err)
	}
	return conn, nil
}

// Run implements source.Connector.
func (c *connector) Run(ctx context.Context, rt source.Runtime) (err error) {
	defer func() {
		// A stop in the middle of connecting or querying surfaces as that
		// step's error; it is a stop, not a failure.
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			c.log.Debug("error while stopping", "error", err)
			err = ctx.Err()
		}
	}()
	meta, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer meta.Close(context.WithoutCancel(ctx))

	if err := c.checkServer(ctx, meta); err != nil {
		return err
	}
	if err := c.resolveTables(ctx, meta); err != nil {
		return err
	}
	if err := c.ensurePublication(ctx, meta); err != nil {
		return err
	}
	cat, err := pgtypeLoadCatalog(ctx, meta)
	if err != nil {
		return fmt.Errorf("postgres: load type catalog from %s: %w", c.where(), err)
	}

	plan, err := c.plan(ctx, meta, rt)
	if err != nil {
		return err
	}
	if plan.done {
		return nil
	}
	start := plan.start
	var replConn *pgconn.PgConn
	if plan.snapshot {
		// An offset was committed before: the topics may hold rows that
		// the new snapshot no longer has.
		c.resnapshot = rt.Offset() != nil
		res, err := c.runSnapshot(ctx, rt, meta, cat)
		if err != nil {
			return err
		}
		if c.cfg.Snapshot == SnapshotInitialOnly {
			if res.replConn != nil {
				// Closing the session drops the temporary slot.
				_ = res.replConn.Close(context.WithoutCancel(ctx))
			}
			c.log.Info("initial_only: snapshot complete, not streaming; the temporary slot is released", "slot", c.slot)
			return nil
		}
		start = res.consistentPoint
		replConn = res.replConn
	}
	if plan.createSlot {
		lsn, err := c.createSlotNoSnapshot(ctx, meta)
		if err != nil {
			return err
		}
		start = lsn
	}
	st := newStreamer(c, rt, meta, cat, start, plan.skipBelow)
	st.tables = c.tableNames()
	if len(plan.tasks) > 0 {
		st.inc = newIncSnap(c, plan.tasks)
		c.log.Info("incremental snapshots pending; they run while streaming", "tables", len(plan.tasks), "first", st.inc.String())
	}
	return st.run(ctx, replConn)
}

// checkServer verifies what logical replication needs, with errors that say
// how to fix each problem.
func (c *connector) checkServer(ctx context.Context, conn *pgx.Conn) error {
	var versionNum int
	var version, walLevel, user, db string
	var super, repl bool
	err := conn.QueryRow(ctx, `
		SELECT current_setting('server_version_num')::int, current_setting('server_version'),
		       current_setting('wal_level'), current_user, current_database(),
		       r.rolsuper, r.rolreplication
		FROM pg_roles r WHERE r.rolname = current_user`).
		Scan(&versionNum, &version, &walLevel, &user, &db, &super, &repl)
	if err != nil {
		return fmt.Errorf("postgres: check server settings on %s: %w", c.where(), err)
	}
	c.db = db
	if versionNum < 140000 {
		return fmt.Errorf("postgres: %s runs PostgreSQL %s; tributary needs PostgreSQL 14 or newer (pgoutput protocol version 2)", c.where(), version)
	}
	if walLevel != "logical" {
		return fmt.Errorf("postgres: wal_level is %q on %s, but logical replication needs wal_level = logical: "+
			"run ALTER SYSTEM SET wal_level = logical; (or set it in postgresql.conf) and restart PostgreSQL", walLevel, c.where())
	}
	if !super && !repl {
		return fmt.Errorf("postgres: user %q on %s lacks the REPLICATION attribute needed to read a replication slot: "+
			"run ALTER ROLE %s WITH REPLICATION; as a superuser (or connect as a superuser)", user, c.where(), pgx.Identifier{user}.Sanitize())
	}
	return nil
}

// resolveTables expands `tables`, loads each table's catalog description and
// warns about replica identities that limit the events.
func (c *connector) resolveTables(ctx context.Context, conn *pgx.Conn) error {
	existing, err := listTables(ctx, conn)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", c.where(), err)
	}
	ids, err := resolveTables(c.cfg.Tables, existing)
	if err != nil {
		return fmt.Errorf("postgres: database %q on %s: %w", c.db, c.where(), err)
	}
	c.tables = c.tables[:0]
	c.byID = map[tableID]*catalogTable{}
	for _, id := range ids {
		ct, err := loadCatalogTable(ctx, conn, id)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		c.tables = append(c.tables, ct)
		c.byID[id] = ct
	}
	for k, cols := range c.cfg.KeyColumns {
		p, _ := parseTablePattern(k)
		ct, ok := c.byID[tableID{p.schema, p.table}]
		if !ok {
			return fmt.Errorf("postgres: key_columns.%s: table %s.%s is not among the captured tables", k, p.schema, p.table)
		}
		for _, col := range cols {
			if _, ok := ct.column(col); !ok {
				return fmt.Errorf("postgres: key_columns.%s: table %s has no column %q", k, ct.ID, col)
			}
		}
	}
	for _, ct := range c.tables {
		keyed := len(ct.PK) > 0 || len(c.cfg.keyColumnsFor(ct.ID.Schema, ct.ID.Name)) > 0
		switch {
		case ct.ReplicaIdentity == 'n':
			c.log.Warn("table has REPLICA IDENTITY NOTHING: once it is in the publication, UPDATE and DELETE on it fail on the server; set REPLICA IDENTITY FULL or DEFAULT with a primary key", "table", ct.ID.String())
		case len(ct.PK) == 0 && ct.ReplicaIdentity == 'd':
			c.log.Warn("table has no primary key and REPLICA IDENTITY DEFAULT: once it is in the publication, UPDATE and DELETE on it fail on the server; add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL", "table", ct.ID.String())
		case c.cfg.ReplicaIdentityWarn && ct.ReplicaIdentity == 'd' && hasToastable(ct):
			c.log.Info("table has REPLICA IDENTITY DEFAULT: an unchanged large (TOASTed) value in an UPDATE arrives as __debezium_unavailable_value and 'before' holds only the key; ALTER TABLE ... REPLICA IDENTITY FULL sends full rows", "table", ct.ID.String())
		}
		if !keyed && c.cfg.ReplicaIdentityWarn {
			c.log.Warn("table has no primary key and no key_columns: its events get a null key", "table", ct.ID.String())
		}
	}
	return nil
}

// hasToastable reports whether a table has a variable-length column whose
// value can be stored out of line.
func hasToastable(ct *catalogTable) bool {
	for _, col := range ct.Columns {
		switch col.TypeOID {
		case 16, 20, 21, 23, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 2950, 18, 26, 829, 774, 869, 650:
			// fixed-size or always short
		default:
			return true
		}
	}
	return false
}

// ensurePublication creates the publication for the captured tables, or
// alters an existing one whose table list differs.
func (c *connector) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	var list []string
	partitioned := false
	want := map[tableID]bool{}
	for _, ct := range c.tables {
		list = append(list, ct.ID.quoted())
		want[ct.ID] = true
		partitioned = partitioned || ct.Partitioned
	}
	pubName := pgx.Identifier{c.publication}.Sanitize()
	var allTables, ins, upd, del, trunc bool
	err := conn.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`,
		c.publication).Scan(&allTables, &ins, &upd, &del, &trunc)
	if errors.Is(err, pgx.ErrNoRows) {
		sql := "CREATE PUBLICATION " + pubName + " FOR TABLE " + strings.Join(list, ", ")
		if partitioned {
			sql += " WITH (publish_via_partition_root = true)"
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("postgres: create publication %q on %s (the user must own the tables, or create the publication as an owner and set publication: to its name): %w", c.publication, c.where(), err)
		}
		c.log.Info("created publication", "publication", c.publication, "tables", len(list))
		return nil
	}
	if err != nil {
		return fmt.Errorf("postgres: read publication %q on %s: %w", c.publication, c.where(), err)
	}
	if !ins || !upd || !del || !trunc {
		c.log.Warn("publication does not publish every operation; the missing ones never reach the log",
			"publication", c.publication, "insert", ins, "update", upd, "delete", del, "truncate", trunc)
	}
	if allTables {
		c.log.Info("publication is FOR ALL TABLES; changes of tables that are not configured are ignored", "publication", c.publication)
		return nil
	}
	rows, err := conn.Query(ctx, `
		SELECT n.nspname, c.relname
		FROM pg_publication p
		JOIN pg_publication_rel pr ON pr.prpubid = p.oid
		JOIN pg_class c ON c.oid = pr.prrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1`, c.publication)
	if err != nil {
		return fmt.Errorf("postgres: read tables of publication %q on %s: %w", c.publication, c.where(), err)
	}
	have := map[tableID]bool{}
	for rows.Next() {
		var t tableID
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			return fmt.Errorf("postgres: read tables of publication %q: %w", c.publication, err)
		}
		have[t] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read tables of publication %q: %w", c.publication, err)
	}
	same := len(have) == len(want)
	for t := range want {
		same = same && have[t]
	}
	if same {
		return nil
	}
	var added, removed []string
	for t := range want {
		if !have[t] {
			added = append(added, t.String())
		}
	}
	for t := range have {
		if !want[t] {
			removed = append(removed, t.String())
		}
	}
	if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+pubName+" SET TABLE "+strings.Join(list, ", ")); err != nil {
		return fmt.Errorf("postgres: publication %q on %s has another table set and altering it failed (the user must own the publication and the tables): %w", c.publication, c.where(), err)
	}
	c.log.Warn("publication existed with another table set; altered it to the configured tables",
		"publication", c.publication, "added", added, "removed", removed)
	return nil
}

// slotState is a row of pg_replication_slots.
type slotState struct {
	exists    bool
	plugin    string
	database  string
	active    bool
	activePID int32
	confirmed pglogrepl.LSN
	walStatus string
}

func (c *connector) readSlot(ctx context.Context, conn *pgx.Conn) (slotState, error) {
	var s slotState
	var plugin, database, confirmed, walStatus *string
	var pid *int32
	err := conn.QueryRow(ctx, `
		SELECT plugin, database, active, active_pid, confirmed_flush_lsn::text, wal_status
		FROM pg_replication_slots WHERE slot_name = $1`, c.slot).
		Scan(&plugin, &database, &s.active, &pid, &confirmed, &walStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("postgres: read replication slot %q on %s: %w", c.slot, c.where(), err)
	}
	s.exists = true
	if plugin != nil {
		s.plugin = *plugin
	}
	if database != nil {
		s.database = *database
	}
	if pid != nil {
		s.activePID = *pid
	}
	if walStatus != nil {
		s.walStatus = *walStatus
	}
	if confirmed != nil {
		if s.confirmed, err = pglogrepl.ParseLSN(*confirmed); err != nil {
			return s, fmt.Errorf("postgres: slot %q: confirmed_flush_lsn %q: %w", c.slot, *confirmed, err)
		}
	}
	if s.plugin != "pgoutput" || s.database != c.db {
		return s, fmt.Errorf("postgres: replication slot %q on %s exists for plugin %q and database %q, not pgoutput on %q: choose another slot name",
			c.slot, c.where(), s.plugin, s.database, c.db)
	}
	return s, nil
}

// waitSlotInactive waits while another session holds the slot: after a crash
// the server may keep the old walsender until it notices the dead client.
func (c *connector) waitSlotInactive(ctx context.Context, conn *pgx.Conn) (slotState, error) {
	deadline := time.Now().Add(90 * time.Second)
	logged := false
	for {
		s, err := c.readSlot(ctx, conn)
		if err != nil || !s.exists || !s.active {
			return s, err
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("postgres: replication slot %q on %s is in use by server process %d: is another worker running connector %q? (stop it, or SELECT pg_terminate_backend(%d))",
				c.slot, c.where(), s.activePID, c.name, s.activePID)
		}
		if !logged {
			c.log.Info("replication slot is in use by another session; waiting for it to be released", "slot", c.slot, "pid", s.activePID)
			logged = true
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *connector) dropSlot(ctx context.Context, conn *pgx.Conn, why string) error {
	c.log.Warn("dropping replication slot", "slot", c.slot, "reason", why)
	if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, c.slot); err != nil {
		return fmt.Errorf("postgres: drop replication slot %q on %s (%s): %w", c.slot, c.where(), why, err)
	}
	return nil
}

func (c *connector) createSlotNoSnapshot(ctx context.Context, conn *pgx.Conn) (pglogrepl.LSN, error) {
	var lsn string
	if err := conn.QueryRow(ctx, `SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, c.slot).Scan(&lsn); err != nil {
		return 0, fmt.Errorf("postgres: create replication slot %q on %s: %w", c.slot, c.where(), err)
	}
	c.log.Info("created replication slot", "slot", c.slot, "lsn", lsn)
	return pglogrepl.ParseLSN(lsn)
}

// runPlan is what Run does after the checks.
type runPlan struct {
	snapshot   bool          // take an initial snapshot (creates the slot)
	createSlot bool          // create the slot without a snapshot (never)
	start      pglogrepl.LSN // streaming start when no snapshot
	skipBelow  pglogrepl.LSN // skip transactions whose commit starts below
	done       bool          // nothing to do (initial_only already complete)
	// tasks are incremental snapshots to run while streaming: the rest of
	// an interrupted initial snapshot, tables added to `tables`.
	tasks []snapTask
}

// plan decides between snapshot and streaming from the committed offset and
// the slot's state.
func (c *connector) plan(ctx context.Context, conn *pgx.Conn, rt source.Runtime) (runPlan, error) {
	mode := c.cfg.Snapshot
	var off *pgOffset
	if m := rt.Offset(); m != nil {
		o, err := parseOffset(m)
		if err != nil {
			return runPlan{}, fmt.Errorf("postgres: committed offset of connector %q is unreadable: %w", c.name, err)
		}
		off = &o
	}
	slot, err := c.waitSlotInactive(ctx, conn)
	if err != nil {
		return runPlan{}, err
	}
	// An offset tributary wrote during its initial snapshot (it records the
	// tables) is resumable like a completed one: the slot is kept, the
	// chunks already written stay, the rest is read incrementally.
	resumable := off != nil && (!off.snapshotIncomplete() || (off.Tables != nil && mode != SnapshotInitialOnly))
	switch {
	case resumable:
		resume := off.resumeLSN()
		if mode == SnapshotInitialOnly {
			c.log.Info("initial_only: the snapshot completed earlier; nothing to do", "lsn", resume.String())
			return runPlan{done: true}, nil
		}
		problem := ""
		switch {
		case !slot.exists:
			problem = fmt.Sprintf("replication slot %q does not exist", c.slot)
		case slot.walStatus == "lost":
			problem = fmt.Sprintf("replication slot %q is invalid (wal_status lost: the server removed WAL it needed)", c.slot)
		case slot.confirmed > resume:
			problem = fmt.Sprintf("replication slot %q confirmed position %s is ahead of the committed offset %s (were the offsets reset?)", c.slot, slot.confirmed, resume)
		}
		if problem == "" && off.snapshotIncomplete() {
			for _, t := range off.Snaps {
				if ct := c.byIDString(t.Table); ct != nil && c.keyless(ct) {
					problem = fmt.Sprintf("table %s of the interrupted snapshot has no primary key and no key_columns, so its snapshot cannot be resumed by chunks", t.Table)
				}
			}
		}
		if problem == "" {
			tasks, err := c.snapTasks(*off)
			if err != nil {
				return runPlan{}, err
			}
			if off.snapshotIncomplete() {
				c.log.Warn("the initial snapshot was interrupted; keeping the slot and the chunks already written, reading the rest incrementally while streaming",
					"slot", c.slot, "lsn", resume.String(), "tables_left", len(off.Snaps))
			}
			c.log.Info("resuming streaming from the committed offset", "slot", c.slot, "lsn", resume.String(), "slot_confirmed_flush_lsn", slot.confirmed.String())
			return runPlan{start: resume, skipBelow: resume, tasks: tasks}, nil
		}
		if off.snapshotIncomplete() {
			c.log.Warn("the interrupted initial snapshot cannot be resumed; starting it over", "reason", problem)
			if slot.exists {
				if err := c.dropSlot(ctx, conn, problem); err != nil {
					return runPlan{}, err
				}
			}
			return runPlan{snapshot: true}, nil
		}
		if mode != SnapshotWhenNeeded {
			return runPlan{}, fmt.Errorf("postgres: %s on %s, so changes after the committed offset %s cannot be read without a gap. "+
				"Set snapshot: when_needed to take a new snapshot, or reset this connector's offsets", problem, c.where(), resume)
		}
		c.log.Warn("snapshot: when_needed: taking a new snapshot", "reason", problem)
		if slot.exists {
			if err := c.dropSlot(ctx, conn, problem); err != nil {
				return runPlan{}, err
			}
		}
		return runPlan{snapshot: true}, nil
	case mode == SnapshotNever:
		if slot.exists && slot.walStatus != "lost" {
			c.log.Info("snapshot: never: streaming from the slot's confirmed position", "slot", c.slot, "lsn", slot.confirmed.String())
			return runPlan{start: slot.confirmed}, nil
		}
		if slot.exists {
			if err := c.dropSlot(ctx, conn, "wal_status lost"); err != nil {
				return runPlan{}, err
			}
		}
		return runPlan{createSlot: true}, nil
	default:
		if off != nil {
			c.log.Warn("committed offset is from an unfinished snapshot; starting the snapshot over")
		}
		if slot.exists {
			if err := c.dropSlot(ctx, conn, "no completed snapshot in the offsets (an earlier snapshot was interrupted)"); err != nil {
				return runPlan{}, err
			}
		}
		return runPlan{snapshot: true}, nil
	}
}

// byIDString finds a captured table by its schema.table name.
func (c *connector) byIDString(name string) *catalogTable {
	for _, ct := range c.tables {
		if ct.ID.String() == name {
			return ct
		}
	}
	return nil
}

// sourceValues returns a Source slice with the fields common to every event
// of this connector filled in.
func (c *connector) sourceValues() []any {
	n := len(schema.PostgresSource().Fields)
	src := make([]any, n)
	src[schema.SrcVersion] = Version
	src[schema.SrcConnector] = "postgresql"
	// Debezium's source.name is the logical server name, i.e. topic.prefix.
	src[schema.SrcName] = c.cfg.TopicPrefixValue
	src[schema.SrcDB] = c.db
	src[schema.SrcSnapshot] = "false"
	return src
}

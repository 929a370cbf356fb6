package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Flavors as go-mysql names them.
const (
	flavorMySQL   = gomysql.MySQLFlavor
	flavorMariaDB = gomysql.MariaDBFlavor
)

// redactHandler wraps the connector's log handler for go-mysql: it drops the
// syncer's config dump, demotes its chatter to DEBUG and scrubs the password
// from anything it prints.
type redactHandler struct {
	h        slog.Handler
	password string
}

func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return r.h.Enabled(ctx, min(l, slog.LevelDebug)) || (l >= slog.LevelWarn && r.h.Enabled(ctx, l))
}

func (r *redactHandler) scrub(s string) string {
	if r.password != "" {
		s = strings.ReplaceAll(s, r.password, "xxxxx")
	}
	return s
}

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	level := rec.Level
	if level < slog.LevelWarn {
		level = slog.LevelDebug
	}
	out := slog.NewRecord(rec.Time, level, r.scrub(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "config" {
			return true
		}
		out.AddAttrs(slog.String(a.Key, r.scrub(a.Value.String())))
		return true
	})
	if !r.h.Enabled(ctx, out.Level) {
		return nil
	}
	return r.h.Handle(ctx, out)
}

func (r *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &redactHandler{h: r.h.WithAttrs(as), password: r.password}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), password: r.password}
}

func libLogger(log *slog.Logger, password string) *slog.Logger {
	return slog.New(&redactHandler{h: log.Handler(), password: password}).With("component", "go-mysql")
}

// mysqlError returns the server error inside err, if any.
func mysqlError(err error) (*gomysql.MyError, bool) {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		return me, true
	}
	return nil, false
}

func errCode(err error) uint16 {
	if me, ok := mysqlError(err); ok {
		return me.Code
	}
	return 0
}

// connect opens a query connection with the session settings the snapshot
// and checks rely on: UTC for TIMESTAMP text, utf8mb4 text and generous
// network timeouts (a snapshot reader may wait on a slow log).
func connect(ctx context.Context, ep endpoint) (*client.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := client.ConnectWithContext(dctx, ep.addr(), ep.User, ep.Password, "", 15*time.Second,
		func(c *client.Conn) error { return c.SetCollation("utf8mb4_general_ci") })
	if err != nil {
		return nil, describeConnectError(err, ep)
	}
	for _, q := range []string{
		"SET NAMES utf8mb4",
		"SET time_zone = '+00:00'",
		"SET SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600",
		"SET SESSION wait_timeout = 86400",
	} {
		if _, err := conn.Execute(q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("setting up the session on %s (%s): %w", ep.addr(), q, err)
		}
	}
	return conn, nil
}

func describeConnectError(err error, ep endpoint) error {
	if code := errCode(err); code == gomysql.ER_ACCESS_DENIED_ERROR {
		return fmt.Errorf("connecting to %s as %q: access denied: wrong user or password (or the user may not connect from this host): %w",
			ep.addr(), ep.User, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("cannot reach the server at %s: %w", ep.addr(), err)
	}
	return fmt.Errorf("connecting to %s as %q: %w", ep.addr(), ep.User, err)
}

// query runs a statement and returns rows as strings (NULL as "").
func query(conn *client.Conn, q string) ([][]string, error) {
	r, err := conn.Execute(q)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rows := make([][]string, 0, len(r.Values))
	for i := range r.Values {
		row := make([]string, len(r.Values[i]))
		for j := range r.Values[i] {
			fv := r.Values[i][j]
			switch fv.Type {
			case gomysql.FieldValueTypeNull:
			case gomysql.FieldValueTypeString:
				row[j] = string(fv.AsString())
			default:
				row[j] = fv.String()
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// serverInfo is what the connector learns about the server at start.
type serverInfo struct {
	version string
	flavor  string
	vars    map[string]string // lower-case names
}

var checkedVars = []string{
	"log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata", "gtid_mode",
	"enforce_gtid_consistency", "server_id", "gtid_binlog_state", "gtid_binlog_pos", "gtid_executed",
	"gtid_purged", "character_set_server", "version", "version_comment", "lower_case_table_names",
}

func loadServerInfo(conn *client.Conn) (*serverInfo, error) {
	si := &serverInfo{version: conn.GetServerVersion(), vars: map[string]string{}}
	si.flavor = flavorMySQL
	if strings.Contains(strings.ToLower(si.version), "mariadb") {
		si.flavor = flavorMariaDB
	}
	names := make([]string, len(checkedVars))
	for i, v := range checkedVars {
		names[i] = "'" + v + "'"
	}
	rows, err := query(conn, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("+strings.Join(names, ",")+")")
	if err != nil {
		return nil, fmt.Errorf("reading server variables: %w", err)
	}
	for _, r := range rows {
		si.vars[strings.ToLower(r[0])] = r[1]
	}
	return si, nil
}

// checkBinlogSettings is the pure part of the start checks: it returns the
// fatal problem, if any, and warnings.
func checkBinlogSettings(flavor string, vars map[string]string) (warnings []string, err error) {
	get := func(k string) string { return strings.ToUpper(strings.TrimSpace(vars[k])) }
	if v := get("log_bin"); v != "ON" && v != "1" {
		return nil, fmt.Errorf("the binary log is off (log_bin=%s): start the server with log_bin (e.g. log_bin=mysql-bin) and binlog_format=ROW", orNone(vars["log_bin"]))
	}
	if v := get("binlog_format"); v != "ROW" {
		return nil, fmt.Errorf("binlog_format is %s, but change data capture needs ROW: set binlog_format=ROW in the server configuration (SET GLOBAL only affects new sessions)", orNone(vars["binlog_format"]))
	}
	if v := get("binlog_row_image"); v != "FULL" {
		return nil, fmt.Errorf("binlog_row_image is %s, but events need every column before and after a change: set binlog_row_image=FULL", orNone(vars["binlog_row_image"]))
	}
	if v := get("binlog_row_metadata"); v != "FULL" {
		warnings = append(warnings, fmt.Sprintf("binlog_row_metadata is %s; FULL is recommended (column names and signedness in the binlog let tributary cross-check the schema history)", orNone(vars["binlog_row_metadata"])))
	}
	if flavor == flavorMySQL {
		if v := get("gtid_mode"); v != "ON" {
			warnings = append(warnings, fmt.Sprintf("gtid_mode is %s: offsets use binlog file and position only, which do not survive a failover to another server", orNone(vars["gtid_mode"])))
		}
	}
	if v := get("lower_case_table_names"); v != "" && v != "0" {
		warnings = append(warnings, "lower_case_table_names="+v+": table patterns are matched against the names as the server reports them")
	}
	return warnings, nil
}

func orNone(s string) string {
	if s == "" {
		return "(not set)"
	}
	return s
}

// checkPrivileges fails early with a clear message when the user cannot
// read the binlog. REPLICATION CLIENT (MariaDB: BINLOG MONITOR) is tested by
// running SHOW MASTER STATUS; REPLICATION SLAVE is read from the grants
// (roles make that undecidable, and then the binlog dump itself reports it).
func checkPrivileges(conn *client.Conn, ep endpoint, flavor string) error {
	if _, err := binlogEnd(conn, flavor); err != nil {
		if code := errCode(err); code == gomysql.ER_SPECIFIC_ACCESS_DENIED_ERROR || code == gomysql.ER_ACCESS_DENIED_ERROR {
			priv := "REPLICATION CLIENT"
			if flavor == flavorMariaDB {
				priv = "BINLOG MONITOR (or REPLICATION CLIENT)"
			}
			return fmt.Errorf("user %q may not read the binlog position: grant %s and REPLICATION SLAVE ON *.*: %w", ep.User, priv, err)
		}
		return err
	}
	rows, err := query(conn, "SHOW GRANTS")
	if err != nil {
		return nil //nolint:nilerr // the dump reports a missing privilege anyway
	}
	roles := false
	for _, r := range rows {
		g := strings.ToUpper(r[0])
		if !strings.HasPrefix(g, "GRANT ") {
			continue
		}
		on := strings.Index(g, " ON ")
		if on < 0 {
			roles = true // GRANT role TO user
			continue
		}
		privs, target := g[:on], g[on:]
		if !strings.HasPrefix(target, " ON *.*") {
			continue
		}
		if strings.Contains(privs, "ALL PRIVILEGES") || strings.Contains(privs, "REPLICATION SLAVE") || strings.Contains(privs, "REPLICATION REPLICA") {
			return nil
		}
	}
	if roles {
		return nil
	}
	return fmt.Errorf("user %q lacks the REPLICATION SLAVE privilege needed to read the binlog: GRANT REPLICATION SLAVE, %s ON *.* TO the user",
		ep.User, map[bool]string{true: "BINLOG MONITOR", false: "REPLICATION CLIENT"}[flavor == flavorMariaDB])
}

// binlogEnd reads the current end of the binlog and the executed GTID set.
func binlogEnd(conn *client.Conn, flavor string) (position, error) {
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil && flavor == flavorMySQL {
		// MySQL 8.4 renamed it.
		r, err = conn.Execute("SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return position{}, err
	}
	defer r.Close()
	if r.RowNumber() == 0 {
		return position{}, errors.New("SHOW MASTER STATUS returned nothing: the binary log is off")
	}
	// GetString aliases the connection's buffer: copy before the next query.
	file, _ := r.GetStringByName(0, "File")
	file = strings.Clone(file)
	pos, _ := r.GetUintByName(0, "Position")
	p := position{File: file, Pos: uint32(pos)}
	if flavor == flavorMariaDB {
		rows, err := query(conn, "SELECT BINLOG_GTID_POS("+quote(file)+", "+strconv.FormatUint(pos, 10)+")")
		if err != nil {
			return p, fmt.Errorf("reading the GTID position of %s:%d: %w", file, pos, err)
		}
		if len(rows) > 0 {
			p.GTIDs = rows[0][0]
		}
	} else if gs, err := r.GetStringByName(0, "Executed_Gtid_Set"); err == nil {
		p.GTIDs = strings.Clone(strings.ReplaceAll(strings.TrimSpace(gs), "\n", ""))
	}
	return p, nil
}

// binlogFiles lists the binlog files the server still has, with sizes.
func binlogFiles(conn *client.Conn) (map[string]uint64, []string, error) {
	rows, err := query(conn, "SHOW BINARY LOGS")
	if err != nil {
		return nil, nil, fmt.Errorf("listing binlog files: %w", err)
	}
	sizes := map[string]uint64{}
	var order []string
	for _, r := range rows {
		n, _ := strconv.ParseUint(r[1], 10, 64)
		sizes[r[0]] = n
		order = append(order, r[0])
	}
	return sizes, order, nil
}

// quote renders a SQL string literal; the connection uses utf8mb4 and the
// default sql_mode, where backslash escapes apply.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString("\\\\")
		case 0:
			b.WriteString("\\0")
		case '\n':
			b.WriteString("\\n")
		case '\r':
			b.WriteString("\\r")
		case 26:
			b.WriteString("\\Z")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// replicaHosts lists the server ids of connected replicas, if the user may
// see them (SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB).
func replicaHosts(conn *client.Conn) (map[uint32]string, error) {
	rows, err := query(conn, "SHOW SLAVE HOSTS")
	if err != nil {
		rows, err = query(conn, "SHOW REPLICAS")
		if err != nil {
			return nil, err
		}
	}
	out := map[uint32]string{}
	for _, r := range rows {
		if len(r) < 3 {
			continue
		}
		id, err := strconv.ParseUint(r[0], 10, 32)
		if err != nil {
			continue
		}
		out[uint32(id)] = r[1] + ":" + r[2]
	}
	return out, nil
}

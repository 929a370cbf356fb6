// Package faults sorts connector errors into transient ones, which the
// worker heals by restarting the connector from its last durable position,
// and fatal ones, which stop that connector until a person acts.
//
// The rule is conservative: an error is transient only when it says the
// other side went away or is briefly unable to serve (connection lost or
// refused, server starting or shutting down, too many connections,
// deadlock or serialization failure, broker not available). Everything
// else, and in particular authentication, privileges, a missing slot and
// data a target rejects, is fatal: retrying those would hide a problem
// that needs a person behind a log line repeated forever.
package faults

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kerr"
)

// RestartHeals marks an error that its connector knows a restart heals,
// e.g. a table altered while a snapshot read it: the restart resumes from
// the durable progress with the table's new shape. It is retried even on a
// connector's first run.
type RestartHeals struct{ Err error }

func (e *RestartHeals) Error() string { return e.Err.Error() }
func (e *RestartHeals) Unwrap() error { return e.Err }

// Heals reports whether err carries RestartHeals.
func Heals(err error) bool {
	var rh *RestartHeals
	return errors.As(err, &rh)
}

// Transient reports whether err is worth retrying by restarting the
// connector that returned it.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if Heals(err) {
		return true
	}
	if fatalCode(err) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return transientSQLState(pe.Code)
	}
	var me *gomysql.MyError
	if errors.As(err, &me) {
		return transientMySQL(me.Code)
	}
	var de *mysqldrv.MySQLError
	if errors.As(err, &de) {
		return transientMySQL(de.Number)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable || ke == kerr.BrokerNotAvailable || ke == kerr.NotCoordinator || ke == kerr.CoordinatorNotAvailable
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, mysqldrv.ErrInvalidConn) || errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENOSPC} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// Some libraries flatten the cause into text (go-mysql wraps with
	// pingcap/errors, pgconn's replication receive says only
	// "receive message failed: unexpected EOF"): match the few phrases
	// that only a lost or refused connection produces.
	msg := strings.ToLower(err.Error())
	for _, p := range transientPhrases {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

var transientPhrases = []string{
	"unexpected eof",
	"connection reset by peer",
	"broken pipe",
	"connection refused",
	"server closed the connection unexpectedly",
	"the database system is shutting down",
	"the database system is starting up",
	"the database system is in recovery mode",
	"terminating connection due to administrator command",
	"invalid connection",
	"bad connection",
	"use of closed network connection",
	"i/o timeout",
	"no space left on device",
	"broker_not_available",
	"connection lost",
	"lost connection to",
	"server has gone away",
	"sync is closed",
}

// fatalCode catches errors that are fatal even when they arrive over a
// connection that also broke (an auth failure closes the connection).
func fatalCode(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "28"), // invalid authorization
			pe.Code == "42501", // insufficient privilege
			pe.Code == "42704", // undefined object (a missing slot or publication)
			pe.Code == "3D000": // no such database
			return true
		}
	}
	var me *gomysql.MyError
	if errors.As(err, &me) && fatalMySQL(me.Code) {
		return true
	}
	var de *mysqldrv.MySQLError
	if errors.As(err, &de) && fatalMySQL(de.Number) {
		return true
	}
	return false
}

func fatalMySQL(code uint16) bool {
	switch code {
	case 1044, 1045, 1049, 1142, 1227, 1236, 1698: // access, unknown db, privilege, binlog position gone
		return true
	}
	return false
}

// transientSQLState: class 08 connection exceptions, 57P01..57P03
// (shutdown, crash shutdown, cannot connect now), 53300 too many
// connections, 40001 serialization failure, 40P01 deadlock, 55006 object
// in use (a slot still held by the previous, dying walsender).
func transientSQLState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"),
		code == "53300", code == "40001", code == "40P01", code == "55006", code == "53100":
		return true
	}
	return false
}

// transientMySQL: too many connections (1040, 1203), lock wait timeout
// (1205), deadlock (1213), server shutdown (1053), table definition
// changed under a consistent snapshot (1412), lost connection (2006,
// 2013), can't connect (2002, 2003), query interrupted at shutdown (1927).
func transientMySQL(code uint16) bool {
	switch code {
	case 1040, 1203, 1205, 1213, 1053, 1412, 1927, 2002, 2003, 2006, 2013:
		return true
	}
	return false
}

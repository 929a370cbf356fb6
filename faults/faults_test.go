package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestTransient(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("sinks[0] (postgres sink copy): applying batch: %w", err) }
	cases := map[string]struct {
		err  error
		want bool
	}{
		"nil":                     {nil, false},
		"canceled":                {context.Canceled, false},
		"pg unexpected EOF text":  {errors.New("receive message failed: unexpected EOF"), true},
		"io.ErrUnexpectedEOF":     {wrap(io.ErrUnexpectedEOF), true},
		"connection refused":      {wrap(syscall.ECONNREFUSED), true},
		"broken pipe":             {wrap(syscall.EPIPE), true},
		"pg admin shutdown":       {wrap(&pgconn.PgError{Code: "57P01"}), true},
		"pg starting up":          {wrap(&pgconn.PgError{Code: "57P03"}), true},
		"pg too many connections": {wrap(&pgconn.PgError{Code: "53300"}), true},
		"pg deadlock":             {wrap(&pgconn.PgError{Code: "40P01"}), true},
		"pg slot in use":          {wrap(&pgconn.PgError{Code: "55006"}), true},
		"pg bad password":         {wrap(&pgconn.PgError{Code: "28P01"}), false},
		"pg privilege":            {wrap(&pgconn.PgError{Code: "42501"}), false},
		"pg missing slot":         {wrap(&pgconn.PgError{Code: "42704"}), false},
		"pg value too long":       {wrap(&pgconn.PgError{Code: "22001"}), false},
		"pg check violation":      {wrap(&pgconn.PgError{Code: "23514"}), false},
		"mysql gone away":         {wrap(&mysqldrv.MySQLError{Number: 2006}), true},
		"mysql deadlock":          {wrap(&mysqldrv.MySQLError{Number: 1213}), true},
		"mysql access denied":     {wrap(&mysqldrv.MySQLError{Number: 1045}), false},
		"mysql data too long":     {wrap(&mysqldrv.MySQLError{Number: 1406}), false},
		"binlog shutdown":         {wrap(&gomysql.MyError{Code: 1053}), true},
		"binlog purged":           {wrap(&gomysql.MyError{Code: 1236}), false},
		"auth error on lost conn": {fmt.Errorf("%w: %w", &pgconn.PgError{Code: "28P01"}, io.ErrUnexpectedEOF), false},
		"kafka not available":     {wrap(kerr.BrokerNotAvailable), true},
		"kafka leader moved":      {wrap(kerr.NotLeaderForPartition), true},
		"kafka too large":         {wrap(kerr.MessageTooLarge), false},
		"kafka auth":              {wrap(kerr.SaslAuthenticationFailed), false},
		"disk full":               {wrap(syscall.ENOSPC), true},
		"restart heals":           {wrap(&RestartHeals{Err: errors.New("table altered while the snapshot read it")}), true},
		"mysql table def changed": {wrap(&gomysql.MyError{Code: 1412}), true},
		"plain config error":      {errors.New("sources[0].tables: table public.nope does not exist"), false},
	}
	for name, tc := range cases {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", name, tc.err, got, tc.want)
		}
	}
}

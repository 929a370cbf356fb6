package mysql

import (
	"context"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// lagInterval is how often the binlog lag is measured; SHOW BINARY LOGS
// stats every file, so not on every event.
const lagInterval = 5 * time.Second

// lagBytes is the binlog volume between pos and the server's current end,
// from the file sizes SHOW BINARY LOGS reports (order is the server's file
// order). ok is false when pos's file is no longer listed.
func lagBytes(sizes map[string]uint64, order []string, pos position) (lag int64, ok bool) {
	for _, f := range order {
		switch {
		case ok:
			lag += int64(sizes[f])
		case f == pos.File:
			ok = true
			if sz := int64(sizes[f]); sz > int64(pos.Pos) {
				lag += sz - int64(pos.Pos)
			}
		}
	}
	return lag, ok
}

// watchLag exports tributary_source_lag_bytes: the binlog bytes between the
// server's end and the last position the log acknowledged (start until the
// first checkpoint). It uses a connection of its own and never fails the
// connector: a failed measurement is retried at the next tick.
func (c *Connector) watchLag(ctx context.Context, r *run, start position) {
	m := r.rt.Metrics()
	if m == nil || m.LagBytes == nil {
		return
	}
	var conn *client.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	tick := time.NewTicker(lagInterval)
	defer tick.Stop()
	for {
		if conn == nil {
			var err error
			if conn, err = connect(ctx, c.ep); err != nil {
				conn = nil
				if ctx.Err() == nil {
					c.log.Debug("binlog lag: connect failed", "error", err)
				}
			}
		}
		if conn != nil {
			r.mu.Lock()
			pos := r.durablePos
			r.mu.Unlock()
			if pos.File == "" {
				pos = start
			}
			sizes, order, err := binlogFiles(conn)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Debug("binlog lag: SHOW BINARY LOGS failed", "error", err)
				}
				conn.Close()
				conn = nil
			} else if lag, ok := lagBytes(sizes, order, pos); ok {
				m.LagBytes.WithLabelValues(c.name).Set(float64(lag))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

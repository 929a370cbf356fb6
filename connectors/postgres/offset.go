package postgres

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pglogrepl"
)

// Offset field names, as Debezium's PostgresOffsetContext writes them, so a
// user moving off Debezium resumes from its offsets and the other way round.
const (
	offLSN                = "lsn"
	offLSNCommit          = "lsn_commit"
	offLSNProc            = "lsn_proc"
	offTxID               = "txId"
	offTsUsec             = "ts_usec"
	offSnapshot           = "snapshot"
	offLastSnapshotRecord = "last_snapshot_record"
	// tributary's own fields (Debezium ignores unknown offset fields):
	// the tables captured so far, and the snapshots still to do with
	// their progress (see incremental.go).
	offTables        = "tributary_tables"
	offSnapshotTasks = "tributary_snapshot"
)

// pgOffset is the connector's position.
//
// LSN, LSNCommit and LSNProc all hold the end LSN of the last transaction
// whose events are all in the log (or, after a snapshot, the slot's
// consistent point; after a heartbeat or keepalive, that position). This is
// also what Debezium stores in lsn_commit and lsn_proc at a commit: every
// transaction whose commit record starts before it is complete. On resume,
// transactions whose commit LSN is below LSNCommit are skipped, because the
// slot may replay them when its confirmed_flush_lsn lagged the offset.
type pgOffset struct {
	LSN       pglogrepl.LSN
	LSNCommit pglogrepl.LSN
	LSNProc   pglogrepl.LSN
	TxID      int64
	TsUsec    int64
	// Snapshot is true in offsets written during a snapshot (Debezium);
	// LastSnapshotRecord true with it means the snapshot completed.
	Snapshot           bool
	LastSnapshotRecord bool
	// Tables are the tables captured when the offset was written (nil in
	// offsets of older versions and of Debezium: unknown). A configured
	// table missing from it was added since, and is snapshotted
	// incrementally.
	Tables []string
	// Snaps are the table snapshots still to do, the first one running,
	// each with the key of its last completed chunk.
	Snaps []snapTask
}

// snapshotIncomplete reports a Debezium offset written in the middle of a
// snapshot, which tributary never writes but may inherit.
func (o pgOffset) snapshotIncomplete() bool { return o.Snapshot && !o.LastSnapshotRecord }

// resumeLSN is where streaming restarts and below which commits are skipped.
func (o pgOffset) resumeLSN() pglogrepl.LSN {
	if o.LSNCommit != 0 {
		return o.LSNCommit
	}
	if o.LSNProc != 0 {
		return o.LSNProc
	}
	return o.LSN
}

func (o pgOffset) toMap() map[string]any {
	m := map[string]any{
		offLSN:       int64(o.LSN),
		offLSNCommit: int64(o.LSNCommit),
		offLSNProc:   int64(o.LSNProc),
		offTsUsec:    o.TsUsec,
	}
	if o.TxID != 0 {
		m[offTxID] = o.TxID
	}
	if o.Snapshot {
		m[offSnapshot] = true
		m[offLastSnapshotRecord] = o.LastSnapshotRecord
	}
	if o.Tables != nil {
		ts := make([]any, len(o.Tables))
		for i, t := range o.Tables {
			ts[i] = t
		}
		m[offTables] = ts
		snaps := make([]any, len(o.Snaps))
		for i, t := range o.Snaps {
			snaps[i] = t.toMap()
		}
		m[offSnapshotTasks] = snaps
	}
	return m
}

// parseOffset reads an offset map as stored (numbers may come back from JSON
// as float64 or json.Number, LSNs may be Debezium longs or "X/Y" strings).
func parseOffset(m map[string]any) (pgOffset, error) {
	var o pgOffset
	var err error
	lsn := func(key string) pglogrepl.LSN {
		v, ok := m[key]
		if !ok || v == nil || err != nil {
			return 0
		}
		var l pglogrepl.LSN
		l, err = anyToLSN(v)
		if err != nil {
			err = fmt.Errorf("offset field %q: %w", key, err)
		}
		return l
	}
	o.LSN = lsn(offLSN)
	o.LSNCommit = lsn(offLSNCommit)
	o.LSNProc = lsn(offLSNProc)
	if err != nil {
		return pgOffset{}, err
	}
	if v, ok := m[offTxID]; ok && v != nil {
		if o.TxID, err = anyToInt64(v); err != nil {
			return pgOffset{}, fmt.Errorf("offset field %q: %w", offTxID, err)
		}
	}
	if v, ok := m[offTsUsec]; ok && v != nil {
		if o.TsUsec, err = anyToInt64(v); err != nil {
			return pgOffset{}, fmt.Errorf("offset field %q: %w", offTsUsec, err)
		}
	}
	if o.Snapshot, err = anyToBool(m[offSnapshot]); err != nil {
		return pgOffset{}, fmt.Errorf("offset field %q: %w", offSnapshot, err)
	}
	if o.LastSnapshotRecord, err = anyToBool(m[offLastSnapshotRecord]); err != nil {
		return pgOffset{}, fmt.Errorf("offset field %q: %w", offLastSnapshotRecord, err)
	}
	if v, ok := m[offTables]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return pgOffset{}, fmt.Errorf("offset field %q: want a list, got %T", offTables, v)
		}
		o.Tables = make([]string, 0, len(list))
		for _, x := range list {
			s, ok := x.(string)
			if !ok {
				return pgOffset{}, fmt.Errorf("offset field %q: want table names, got %T", offTables, x)
			}
			o.Tables = append(o.Tables, s)
		}
	}
	if v, ok := m[offSnapshotTasks]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return pgOffset{}, fmt.Errorf("offset field %q: want a list, got %T", offSnapshotTasks, v)
		}
		o.Snaps = make([]snapTask, 0, len(list))
		for i, x := range list {
			t, err := parseSnapTask(x)
			if err != nil {
				return pgOffset{}, fmt.Errorf("offset field %q[%d]: %w", offSnapshotTasks, i, err)
			}
			o.Snaps = append(o.Snaps, t)
		}
	}
	if o.LSN == 0 && o.LSNCommit == 0 && o.LSNProc == 0 && !o.snapshotIncomplete() {
		return pgOffset{}, fmt.Errorf("offset has no %q, %q or %q position: %v", offLSN, offLSNCommit, offLSNProc, m)
	}
	return o, nil
}

func anyToLSN(v any) (pglogrepl.LSN, error) {
	if s, ok := v.(string); ok {
		if l, err := pglogrepl.ParseLSN(s); err == nil {
			return l, nil
		}
	}
	n, err := anyToInt64(v)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("negative LSN %d", n)
	}
	return pglogrepl.LSN(n), nil
}

func anyToInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%d overflows int64", x)
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("%v is not an exact integer", x)
		}
		return int64(x), nil
	case json.Number:
		return x.Int64()
	case string:
		return strconv.ParseInt(x, 10, 64)
	default:
		return 0, fmt.Errorf("unexpected %T %v", v, v)
	}
}

func anyToBool(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(x)
	default:
		return false, fmt.Errorf("unexpected %T %v", v, v)
	}
}

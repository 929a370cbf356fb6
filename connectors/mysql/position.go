package mysql

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// position is a point in the binlog between two transactions, in the
// fields of Debezium's MySQL offsets.
type position struct {
	File string
	Pos  uint32
	// GTIDs is the executed GTID set after the last complete transaction:
	// MariaDB "domain-server-seq[,...]" or a MySQL "uuid:1-n[,...]" set.
	GTIDs    string
	ServerID uint32
	TsSec    int64
	// Snapshot marks an offset taken while a snapshot was still running:
	// resuming from it means starting the snapshot over.
	Snapshot bool
}

func (p position) String() string {
	s := fmt.Sprintf("%s:%d", p.File, p.Pos)
	if p.GTIDs != "" {
		s += " gtids=" + p.GTIDs
	}
	return s
}

// offset renders the Debezium MySQL offset: file, pos, row, event, gtids
// (only when known), ts_sec, server_id and, mid-snapshot, snapshot=true.
// Tributary checkpoints only at transaction ends, so event and row are 0.
func (p position) offset() map[string]any {
	m := map[string]any{
		"file":      p.File,
		"pos":       int64(p.Pos),
		"row":       int64(0),
		"event":     int64(0),
		"ts_sec":    p.TsSec,
		"server_id": int64(p.ServerID),
	}
	if p.GTIDs != "" {
		m["gtids"] = p.GTIDs
	}
	if p.Snapshot {
		m["snapshot"] = true
	}
	return m
}

// parseOffset reads a committed offset; values may have come back through
// JSON, so numbers arrive as float64, json.Number, int64 or strings.
func parseOffset(m map[string]any) (position, error) {
	var p position
	var err error
	str := func(k string) (string, error) {
		v, ok := m[k]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("offset field %q is %T, want a string", k, v)
		}
		return s, nil
	}
	num := func(k string) (int64, error) {
		v, ok := m[k]
		if !ok || v == nil {
			return 0, nil
		}
		switch x := v.(type) {
		case int:
			return int64(x), nil
		case int32:
			return int64(x), nil
		case int64:
			return x, nil
		case uint32:
			return int64(x), nil
		case uint64:
			if x > math.MaxInt64 {
				return 0, fmt.Errorf("offset field %q = %d is out of range", k, x)
			}
			return int64(x), nil
		case float64:
			if x != math.Trunc(x) {
				return 0, fmt.Errorf("offset field %q = %v is not an integer", k, x)
			}
			return int64(x), nil
		case json.Number:
			return x.Int64()
		case string:
			return strconv.ParseInt(x, 10, 64)
		}
		return 0, fmt.Errorf("offset field %q is %T, want a number", k, v)
	}
	if p.File, err = str("file"); err != nil {
		return p, err
	}
	pos, err := num("pos")
	if err != nil {
		return p, err
	}
	if pos < 0 || pos > math.MaxUint32 {
		return p, fmt.Errorf("offset field \"pos\" = %d is out of range", pos)
	}
	p.Pos = uint32(pos)
	if p.GTIDs, err = str("gtids"); err != nil {
		return p, err
	}
	p.GTIDs = strings.TrimSpace(p.GTIDs)
	sid, err := num("server_id")
	if err != nil {
		return p, err
	}
	p.ServerID = uint32(sid)
	if p.TsSec, err = num("ts_sec"); err != nil {
		return p, err
	}
	switch v := m["snapshot"].(type) {
	case bool:
		p.Snapshot = v
	case string:
		// Debezium wrote "true"/"last" in some versions; only a finished
		// snapshot ("last", "false") may be streamed from.
		p.Snapshot = v == "true"
	}
	return p, nil
}

// binlogIndex is the numeric suffix of a binlog file name (mysql-bin.000042 -> 42).
func binlogIndex(file string) (base string, idx int64, ok bool) {
	i := strings.LastIndexByte(file, '.')
	if i < 0 {
		return file, 0, false
	}
	n, err := strconv.ParseInt(file[i+1:], 10, 64)
	if err != nil {
		return file, 0, false
	}
	return file[:i], n, true
}

// compareFilePos orders two binlog coordinates of the same server.
func compareFilePos(aFile string, aPos uint32, bFile string, bPos uint32) int {
	if aFile != bFile {
		ab, ai, aok := binlogIndex(aFile)
		bb, bi, bok := binlogIndex(bFile)
		if aok && bok && ab == bb {
			switch {
			case ai < bi:
				return -1
			case ai > bi:
				return 1
			}
		} else if aFile < bFile {
			return -1
		} else {
			return 1
		}
	}
	switch {
	case aPos < bPos:
		return -1
	case aPos > bPos:
		return 1
	}
	return 0
}

// parseGTIDSet parses a set of the given flavor ("mariadb" or "mysql").
func parseGTIDSet(flavor, s string) (gomysql.GTIDSet, error) {
	set, err := gomysql.ParseGTIDSet(flavor, s)
	if err != nil {
		return nil, fmt.Errorf("invalid %s GTID set %q: %v", flavor, s, err)
	}
	return set, nil
}

// atOrBefore reports whether p is not later than q. GTID sets decide when
// both have one (they survive a failover to another server); otherwise the
// binlog coordinates do.
func (p position) atOrBefore(q position, flavor string) bool {
	if p.GTIDs != "" && q.GTIDs != "" {
		ps, err1 := parseGTIDSet(flavor, p.GTIDs)
		qs, err2 := parseGTIDSet(flavor, q.GTIDs)
		if err1 == nil && err2 == nil {
			return qs.Contain(ps)
		}
	}
	if p.File != "" && q.File != "" {
		return compareFilePos(p.File, p.Pos, q.File, q.Pos) <= 0
	}
	return true
}

package postgres

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// The change messages (Insert, Update, Delete) are parsed here rather than
// with pglogrepl.ParseV2, which allocates a struct, a column slice, one
// struct and one copy per column value for every row. These parsers fill
// reused slices that point into the received buffer, so the streaming path
// allocates nothing before decoding the values themselves. The rarer
// messages (Relation, Truncate, Message, Stream*) still go through pglogrepl.

// tupleCol is one column of a pgoutput TupleData: kind is 'n' (null),
// 'u' (unchanged TOAST value, not sent), 't' (text) or 'b' (binary).
type tupleCol struct {
	kind byte
	data []byte
}

// rowChange is a parsed Insert, Update or Delete.
type rowChange struct {
	op      byte // 'I', 'U', 'D'
	relID   uint32
	oldKind byte // 0 (none), 'K' (replica identity key) or 'O' (old row, REPLICA IDENTITY FULL)
	old     []tupleCol
	new     []tupleCol
}

var errShort = fmt.Errorf("message is truncated")

// parseTuple parses a TupleData at src into dst (reused) and returns the
// number of bytes consumed.
func parseTuple(src []byte, dst []tupleCol) ([]tupleCol, int, error) {
	if len(src) < 2 {
		return dst, 0, errShort
	}
	n := int(binary.BigEndian.Uint16(src))
	pos := 2
	dst = dst[:0]
	for i := 0; i < n; i++ {
		if pos >= len(src) {
			return dst, 0, errShort
		}
		kind := src[pos]
		pos++
		switch kind {
		case 'n', 'u':
			dst = append(dst, tupleCol{kind: kind})
		case 't', 'b':
			if pos+4 > len(src) {
				return dst, 0, errShort
			}
			l := int(binary.BigEndian.Uint32(src[pos:]))
			pos += 4
			if l < 0 || pos+l > len(src) {
				return dst, 0, errShort
			}
			dst = append(dst, tupleCol{kind: kind, data: src[pos : pos+l : pos+l]})
			pos += l
		default:
			return dst, 0, fmt.Errorf("column %d: unknown tuple data kind %q", i, kind)
		}
	}
	return dst, pos, nil
}

// parseChange parses an 'I', 'U' or 'D' message (data[0] is the type). In a
// streamed transaction segment the relation id is preceded by the xid of the
// (sub)transaction, which is returned.
func parseChange(data []byte, inStream bool, rc *rowChange) (xid uint32, err error) {
	rc.op = data[0]
	p := data[1:]
	if inStream {
		if len(p) < 4 {
			return 0, errShort
		}
		xid = binary.BigEndian.Uint32(p)
		p = p[4:]
	}
	if len(p) < 5 {
		return 0, errShort
	}
	rc.relID = binary.BigEndian.Uint32(p)
	p = p[4:]
	rc.oldKind = 0
	rc.old = rc.old[:0]
	rc.new = rc.new[:0]
	var n int
	switch rc.op {
	case 'I':
		if p[0] != 'N' {
			return 0, fmt.Errorf("insert: expected new tuple 'N', got %q", p[0])
		}
		rc.new, _, err = parseTuple(p[1:], rc.new)
	case 'U':
		if p[0] == 'K' || p[0] == 'O' {
			rc.oldKind = p[0]
			rc.old, n, err = parseTuple(p[1:], rc.old)
			if err != nil {
				return 0, fmt.Errorf("update old tuple: %w", err)
			}
			p = p[1+n:]
			if len(p) == 0 {
				return 0, errShort
			}
		}
		if p[0] != 'N' {
			return 0, fmt.Errorf("update: expected new tuple 'N', got %q", p[0])
		}
		rc.new, _, err = parseTuple(p[1:], rc.new)
	case 'D':
		if p[0] != 'K' && p[0] != 'O' {
			return 0, fmt.Errorf("delete: expected old tuple 'K' or 'O', got %q", p[0])
		}
		rc.oldKind = p[0]
		rc.old, _, err = parseTuple(p[1:], rc.old)
	default:
		return 0, fmt.Errorf("not a change message: %q", rc.op)
	}
	return xid, err
}

// beginMsg and commitMsg are parsed by hand for the same reason.
type beginMsg struct {
	finalLSN   pglogrepl.LSN // LSN of the commit record
	commitTime time.Time
	xid        uint32
}

func parseBegin(data []byte) (beginMsg, error) {
	if len(data) < 21 {
		return beginMsg{}, errShort
	}
	return beginMsg{
		finalLSN:   pglogrepl.LSN(binary.BigEndian.Uint64(data[1:])),
		commitTime: pgTime(int64(binary.BigEndian.Uint64(data[9:]))),
		xid:        binary.BigEndian.Uint32(data[17:]),
	}, nil
}

type commitMsg struct {
	commitLSN  pglogrepl.LSN // start of the commit record
	endLSN     pglogrepl.LSN // end of the commit record: the position to acknowledge
	commitTime time.Time
}

func parseCommit(data []byte) (commitMsg, error) {
	if len(data) < 26 {
		return commitMsg{}, errShort
	}
	return commitMsg{
		commitLSN:  pglogrepl.LSN(binary.BigEndian.Uint64(data[2:])),
		endLSN:     pglogrepl.LSN(binary.BigEndian.Uint64(data[10:])),
		commitTime: pgTime(int64(binary.BigEndian.Uint64(data[18:]))),
	}, nil
}

// pgEpochMicros is 2000-01-01 in Unix microseconds.
const pgEpochMicros = 946684800 * 1_000_000

func pgTime(microsSince2000 int64) time.Time {
	return time.UnixMicro(microsSince2000 + pgEpochMicros)
}

// splitStreamed splits a streamed-segment message (type byte, xid, body)
// into its type, the (sub)transaction xid and the body that follows the xid,
// so the spool can store it in the non-streamed form without copying twice.
func splitStreamed(data []byte) (typ byte, xid uint32, body []byte, err error) {
	if len(data) < 5 {
		return 0, 0, nil, errShort
	}
	return data[0], binary.BigEndian.Uint32(data[1:]), data[5:], nil
}

package postgres

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/jackc/pglogrepl"
)

// A large transaction that exceeds the server's logical_decoding_work_mem is
// sent in segments (protocol v2 streaming) before it commits, interleaved
// with other transactions, and may still abort. Its changes must reach the
// log only at its StreamCommit, in order, and nothing of it if it aborts. To
// keep memory bounded whatever the transaction size, each streamed
// transaction's messages are appended to a temporary file, replayed at
// StreamCommit and deleted at StreamCommit or StreamAbort. Subtransactions
// rolled back inside it (ROLLBACK TO SAVEPOINT) arrive as a StreamAbort with
// the subtransaction's xid; their changes are skipped at replay.

// spool is the on-disk buffer of one streamed top-level transaction.
type spool struct {
	xid     uint32
	path    string
	f       *os.File
	w       *bufio.Writer
	aborted map[uint32]bool
	records int
	bytes   int64
}

const spoolHeader = 4 + 8 + 4 // message length, WAL position, (sub)transaction xid

func newSpool(dir string, xid uint32) (*spool, error) {
	f, err := os.CreateTemp(dir, fmt.Sprintf("xid-%d-*.spool", xid))
	if err != nil {
		return nil, fmt.Errorf("create spool file for streamed transaction %d in %s: %w", xid, dir, err)
	}
	return &spool{xid: xid, path: f.Name(), f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// append stores one message in its non-streamed form: typ followed by body.
func (s *spool) append(walStart pglogrepl.LSN, xid uint32, typ byte, body []byte) error {
	var h [spoolHeader]byte
	binary.BigEndian.PutUint32(h[0:], uint32(1+len(body)))
	binary.BigEndian.PutUint64(h[4:], uint64(walStart))
	binary.BigEndian.PutUint32(h[12:], xid)
	if _, err := s.w.Write(h[:]); err != nil {
		return s.writeErr(err)
	}
	if err := s.w.WriteByte(typ); err != nil {
		return s.writeErr(err)
	}
	if _, err := s.w.Write(body); err != nil {
		return s.writeErr(err)
	}
	s.records++
	s.bytes += int64(spoolHeader + 1 + len(body))
	return nil
}

func (s *spool) writeErr(err error) error {
	return fmt.Errorf("write spool file %s of streamed transaction %d: %w", s.path, s.xid, err)
}

// abortSub marks a rolled-back subtransaction: its changes are not replayed.
func (s *spool) abortSub(subxid uint32) {
	if s.aborted == nil {
		s.aborted = map[uint32]bool{}
	}
	s.aborted[subxid] = true
}

// replay calls fn for each stored message in order, skipping the changes of
// aborted subtransactions. Relation messages are always replayed: pgoutput
// sends a relation's schema once per streamed transaction, so the one sent in
// a rolled-back subtransaction still describes later changes. msg is only
// valid during the call.
func (s *spool) replay(fn func(walStart pglogrepl.LSN, xid uint32, msg []byte) error) error {
	if err := s.w.Flush(); err != nil {
		return s.writeErr(err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind spool file %s: %w", s.path, err)
	}
	r := bufio.NewReaderSize(s.f, 64<<10)
	var h [spoolHeader]byte
	var buf []byte
	for i := 0; i < s.records; i++ {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return fmt.Errorf("read spool file %s record %d: %w", s.path, i, err)
		}
		n := int(binary.BigEndian.Uint32(h[0:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read spool file %s record %d: %w", s.path, i, err)
		}
		xid := binary.BigEndian.Uint32(h[12:])
		if s.aborted[xid] && buf[0] != 'R' && buf[0] != 'Y' {
			continue
		}
		if err := fn(pglogrepl.LSN(binary.BigEndian.Uint64(h[4:])), xid, buf); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the spool file.
func (s *spool) remove() error {
	cerr := s.f.Close()
	rerr := os.Remove(s.path)
	if rerr != nil && !os.IsNotExist(rerr) {
		return fmt.Errorf("remove spool file %s: %w", s.path, rerr)
	}
	if cerr != nil {
		return fmt.Errorf("close spool file %s: %w", s.path, cerr)
	}
	return nil
}

// spools tracks the streamed transactions in progress.
type spools struct {
	dir string
	m   map[uint32]*spool
}

func newSpools() (*spools, error) {
	dir, err := os.MkdirTemp("", "tributary-pg-spool-*")
	if err != nil {
		return nil, fmt.Errorf("create spool directory for streamed transactions: %w", err)
	}
	return &spools{dir: dir, m: map[uint32]*spool{}}, nil
}

// get returns the spool of xid, creating it for a first segment. A first
// segment for an xid already spooled means the server restarted that
// transaction's stream, so the old content is discarded.
func (ss *spools) get(xid uint32, first bool) (*spool, error) {
	s, ok := ss.m[xid]
	if ok && !first {
		return s, nil
	}
	if ok {
		if err := s.remove(); err != nil {
			return nil, err
		}
	}
	s, err := newSpool(ss.dir, xid)
	if err != nil {
		return nil, err
	}
	ss.m[xid] = s
	return s, nil
}

func (ss *spools) drop(xid uint32) error {
	s, ok := ss.m[xid]
	if !ok {
		return nil
	}
	delete(ss.m, xid)
	return s.remove()
}

// close removes every spool and the directory.
func (ss *spools) close() error {
	for xid, s := range ss.m {
		_ = s.remove()
		delete(ss.m, xid)
	}
	return os.RemoveAll(filepath.Clean(ss.dir))
}

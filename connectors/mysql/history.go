package mysql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tributary-cdc/tributary/source"
	"sync"
	"time"
)

// HistoryStore keeps the schema history: every DDL that changed a tracked
// table, with its binlog position. The binlog carries rows without column
// names or full types, so decoding it after a restart needs the table
// shapes as they were at the resume position; losing this store means a new
// snapshot, unless the connector can prove no DDL happened since.
//
// The production implementation is a one-partition topic (see
// Config.SchemaHistoryTopic); records must never be deleted. Keys are unique
// per distinct record, so a compacted topic keeps them all and only drops
// exact re-writes of the same record.
type HistoryStore = source.HistoryStore

// MemoryHistory is an in-memory HistoryStore for tests and tools.
type MemoryHistory struct {
	mu   sync.Mutex
	recs [][2][]byte
}

// Append implements HistoryStore.
func (m *MemoryHistory) Append(_ context.Context, key, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, [2][]byte{append([]byte(nil), key...), append([]byte(nil), value...)})
	return nil
}

// ReadAll implements HistoryStore.
func (m *MemoryHistory) ReadAll(ctx context.Context, fn func(key, value []byte) error) error {
	m.mu.Lock()
	recs := append([][2][]byte(nil), m.recs...)
	m.mu.Unlock()
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of stored records.
func (m *MemoryHistory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// Truncate keeps only the first n records (tests use it to lose history).
func (m *MemoryHistory) Truncate(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n < len(m.recs) {
		m.recs = m.recs[:n]
	}
}

// Corrupt replaces record i's value (tests use it to damage history).
func (m *MemoryHistory) Corrupt(i int, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i < len(m.recs) {
		m.recs[i][1] = value
	}
}

// historyRecord is one schema-history record. The layout follows Debezium's
// MySQL schema history (source, position, ts_ms, databaseName, ddl,
// tableChanges); reset and databaseCharsets are tributary's additions.
type historyRecord struct {
	Source       map[string]string `json:"source"`
	Position     map[string]any    `json:"position"`
	TsMs         int64             `json:"ts_ms"`
	DatabaseName string            `json:"databaseName,omitempty"`
	DDL          string            `json:"ddl"`
	TableChanges []tableChange     `json:"tableChanges"`
	// Reset starts a new baseline (a snapshot's table list): every shape
	// known before it is forgotten.
	Reset bool `json:"reset,omitempty"`
	// Baseline ties the records of one baseline together; the Reset record
	// also carries BaselineTables, the number of table records that follow,
	// so a baseline cut short by a crash is detected.
	Baseline       string `json:"baseline,omitempty"`
	BaselineTables int    `json:"baselineTables,omitempty"`
	// DatabaseCharsets records database default charsets; "" means dropped.
	DatabaseCharsets map[string]string `json:"databaseCharsets,omitempty"`
}

// history writes and replays records for one connector.
type history struct {
	store  HistoryStore
	server string // topic prefix
	flavor string
}

func (h *history) append(ctx context.Context, rec *historyRecord) error {
	rec.Source = map[string]string{"server": h.server}
	rec.TsMs = time.Now().UnixMilli()
	// The key is the content without the write time, so re-writing the same
	// DDL at the same position after a crash collapses under compaction.
	ts := rec.TsMs
	rec.TsMs = 0
	keyBody, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding schema history record: %w", err)
	}
	rec.TsMs = ts
	value, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding schema history record: %w", err)
	}
	sum := sha256.Sum256(keyBody)
	key := []byte(h.server + "/" + hex.EncodeToString(sum[:16]))
	if err := h.store.Append(ctx, key, value); err != nil {
		return fmt.Errorf("writing the schema history: %w", err)
	}
	return nil
}

// errHistoryMissing means the store holds no baseline usable at the resume
// position; errHistoryDamaged means a record cannot be read.
var (
	errHistoryMissing = errors.New("schema history has no baseline for the resume position")
	errHistoryDamaged = errors.New("schema history is damaged")
)

// rebuild replays the records at or before pos into a catalog.
func (h *history) rebuild(ctx context.Context, pos position) (*catalog, int, error) {
	cat := newCatalog()
	baseline := false
	n := 0
	// The baseline being read and how many of its table records are still due.
	var curBaseline string
	due := 0
	err := h.store.ReadAll(ctx, func(key, value []byte) error {
		n++
		var rec historyRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return fmt.Errorf("%w: record %d (key %q) is not valid JSON: %v", errHistoryDamaged, n, key, err)
		}
		if rec.Source["server"] != "" && rec.Source["server"] != h.server {
			return nil
		}
		rp, err := parseOffset(rec.Position)
		if err != nil {
			return fmt.Errorf("%w: record %d (key %q) has a bad position: %v", errHistoryDamaged, n, key, err)
		}
		if !rp.atOrBefore(pos, h.flavor) {
			return nil
		}
		if rec.Reset {
			if due > 0 {
				return fmt.Errorf("%w: baseline %s lacks %d table records (written by a run that crashed)", errHistoryDamaged, curBaseline, due)
			}
			cat = newCatalog()
			baseline = true
			curBaseline, due = rec.Baseline, rec.BaselineTables
		} else if rec.Baseline != "" {
			if rec.Baseline != curBaseline || due == 0 {
				return fmt.Errorf("%w: record %d belongs to baseline %s, which was not started", errHistoryDamaged, n, rec.Baseline)
			}
			due--
		}
		for db, cs := range rec.DatabaseCharsets {
			if cs == "" {
				delete(cat.dbCharset, db)
			} else {
				cat.dbCharset[db] = cs
			}
		}
		for i, ch := range rec.TableChanges {
			id := tableID{DB: ch.DB, Table: ch.Name}
			switch ch.Type {
			case "CREATE", "ALTER":
				if ch.Table == nil || len(ch.Table.Columns) == 0 {
					return fmt.Errorf("%w: record %d change %d (%s %s) has no columns", errHistoryDamaged, n, i, ch.Type, ch.ID)
				}
				t := ch.Table.clone()
				t.DB, t.Name = id.DB, id.Table
				cat.tables[id] = t
			case "DROP":
				delete(cat.tables, id)
			default:
				return fmt.Errorf("%w: record %d change %d has unknown type %q", errHistoryDamaged, n, i, ch.Type)
			}
		}
		return nil
	})
	if err != nil {
		return nil, n, err
	}
	if due > 0 {
		return nil, n, fmt.Errorf("%w: baseline %s lacks %d table records (written by a run that crashed)", errHistoryDamaged, curBaseline, due)
	}
	if !baseline {
		return nil, n, errHistoryMissing
	}
	return cat, n, nil
}

// writeBaseline records every table of cat at pos as a new baseline.
func (h *history) writeBaseline(ctx context.Context, cat *catalog, pos position, ddl map[tableID]string) error {
	bid := fmt.Sprintf("%d", time.Now().UnixNano())
	rec := &historyRecord{Position: pos.offset(), Reset: true, DDL: "-- baseline", DatabaseCharsets: map[string]string{},
		Baseline: bid, BaselineTables: len(cat.tables)}
	for db, cs := range cat.dbCharset {
		rec.DatabaseCharsets[db] = cs
	}
	if err := h.append(ctx, rec); err != nil {
		return err
	}
	for _, id := range cat.sortedIDs() {
		t := cat.tables[id]
		r := &historyRecord{
			Baseline:     bid,
			Position:     pos.offset(),
			DatabaseName: id.DB,
			DDL:          ddl[id],
			TableChanges: []tableChange{{Type: "CREATE", ID: id.String(), DB: id.DB, Name: id.Table, Table: t}},
		}
		if err := h.append(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

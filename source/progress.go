package source

import (
	"sort"
	"sync"
)

// TableProgress is the progress of one table's snapshot, as /status and
// `tributary status` show it.
type TableProgress struct {
	Table      string `json:"table"`
	Kind       string `json:"kind"` // initial, added, on_demand
	Rows       int64  `json:"rows"`
	Estimate   int64  `json:"estimate"`
	RowsPerSec int64  `json:"rows_per_sec"`
	ETA        string `json:"eta"`
	Done       bool   `json:"done"`
}

// ProgressReporter is implemented by the Runtime that Run hands to
// connectors (check with a type assertion).
type ProgressReporter interface {
	ReportSnapshot(p TableProgress)
}

// ProgressBoard keeps the latest snapshot progress of a worker's sources.
type ProgressBoard struct {
	mu sync.Mutex
	m  map[string]map[string]TableProgress
}

func NewProgressBoard() *ProgressBoard {
	return &ProgressBoard{m: map[string]map[string]TableProgress{}}
}

func (b *ProgressBoard) set(connector string, p TableProgress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.m[connector]
	if t == nil {
		t = map[string]TableProgress{}
		b.m[connector] = t
	}
	t[p.Table] = p
}

// Snapshot returns each connector's tables, sorted by name.
func (b *ProgressBoard) Snapshot() map[string][]TableProgress {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]TableProgress, len(b.m))
	for c, ts := range b.m {
		list := make([]TableProgress, 0, len(ts))
		for _, p := range ts {
			list = append(list, p)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Table < list[j].Table })
		out[c] = list
	}
	return out
}

func (rt *runtime) ReportSnapshot(p TableProgress) {
	if rt.d.Progress != nil {
		rt.d.Progress.set(rt.name, p)
	}
}

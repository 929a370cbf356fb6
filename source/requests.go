package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// SnapshotRequest asks a running source to read tables again, incrementally,
// while it streams (`tributary snapshot`, POST /connectors/{name}/snapshot).
type SnapshotRequest struct {
	// Tables as the connector's `tables` names them ("schema.table", or
	// "table" for the default schema of the database).
	Tables []string
	// Where is an optional SQL condition: only the rows it selects are read.
	Where string
	// Stop cancels the pending snapshots of Tables (of every table when
	// empty) instead (Debezium's stop-snapshot).
	Stop bool
	// Reply receives nil once the connector recorded the request (it is in
	// its next offset), or the reason it refused it.
	Reply chan error
}

// SnapshotRequester is implemented by the Runtime that Run hands to
// connectors (check with a type assertion): requests for this connector
// arrive on the channel.
type SnapshotRequester interface {
	SnapshotRequests() <-chan SnapshotRequest
}

// ErrNotRunning is returned by Requests.Send for a connector that does not
// run in this worker.
var ErrNotRunning = errors.New("connector is not running in this worker")

// Requests routes snapshot requests to the running sources of a worker.
type Requests struct {
	mu    sync.Mutex
	chans map[string]chan SnapshotRequest
}

func NewRequests() *Requests { return &Requests{chans: map[string]chan SnapshotRequest{}} }

// register opens the channel of a running connector.
func (r *Requests) register(name string) (chan SnapshotRequest, func()) {
	ch := make(chan SnapshotRequest, 16)
	r.mu.Lock()
	r.chans[name] = ch
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		if r.chans[name] == ch {
			delete(r.chans, name)
		}
		r.mu.Unlock()
	}
}

// Send queues a request for connector name.
func (r *Requests) Send(ctx context.Context, name string, req SnapshotRequest) error {
	r.mu.Lock()
	ch, ok := r.chans[name]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s: %w", name, ErrNotRunning)
	}
	select {
	case ch <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: request queue full: %w", name, ctx.Err())
	}
}

func (rt *runtime) SnapshotRequests() <-chan SnapshotRequest { return rt.requests }

// OffsetSnapshotTasks is the offset field where sources keep the table
// snapshots still to do (tributary's own; Debezium ignores it).
const OffsetSnapshotTasks = "tributary_snapshot"

// AddSnapshotTasks returns a copy of offset with on-demand snapshots of
// tables queued, for a source that is not running: it takes them at its
// next start.
func AddSnapshotTasks(offset map[string]any, tables []string, where string) map[string]any {
	out := make(map[string]any, len(offset)+1)
	for k, v := range offset {
		out[k] = v
	}
	list, _ := offset[OffsetSnapshotTasks].([]any)
	list = append([]any(nil), list...)
	for _, t := range tables {
		task := map[string]any{"table": t, "kind": "on_demand", "rows": 0}
		if where != "" {
			task["where"] = where
		}
		list = append(list, task)
	}
	out[OffsetSnapshotTasks] = list
	return out
}

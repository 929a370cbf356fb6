package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-cdc/tributary/source"
)

// status tracks what /readyz and /status report. Connectors move through
// starting → running → stopped|failed.
type status struct {
	mu         sync.Mutex
	started    time.Time
	connectors map[string]connectorStatus
	progress   *source.ProgressBoard
}

type connectorStatus struct {
	Kind  string    `json:"kind"` // source or sink
	Type  string    `json:"type"`
	State string    `json:"state"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"`
	// Attempt and NextRetry are set while retrying: the connector failed
	// with a transient error (Error) and restarts at NextRetry.
	Attempt   int        `json:"attempt,omitempty"`
	NextRetry *time.Time `json:"next_retry,omitempty"`
}

func newStatus() *status {
	return &status{started: time.Now(), connectors: map[string]connectorStatus{}}
}

func (s *status) set(name, kind, typ, state string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := connectorStatus{Kind: kind, Type: typ, State: state, Since: time.Now()}
	if err != nil {
		cs.Error = err.Error()
	}
	s.connectors[name] = cs
}

func (s *status) setRetrying(name, kind, typ string, attempt int, err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connectors[name] = connectorStatus{Kind: kind, Type: typ, State: "retrying", Error: err.Error(),
		Since: time.Now(), Attempt: attempt, NextRetry: &at}
}

// ready is true when every connector is running.
func (s *status) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.connectors) == 0 {
		return false
	}
	for _, c := range s.connectors {
		if c.State != "running" {
			return false
		}
	}
	return true
}

func (s *status) snapshot() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make(map[string]connectorStatus, len(s.connectors))
	for k, v := range s.connectors {
		cs[k] = v
	}
	out := map[string]any{"started": s.started, "connectors": cs}
	if s.progress != nil {
		if p := s.progress.Snapshot(); len(p) > 0 {
			out["snapshots"] = p
		}
	}
	return out
}

// snapshotRequest handles POST /connectors/{name}/snapshot with a body
// {"tables": [...], "where": "..."}: the source re-reads the tables
// incrementally while it streams.
func snapshotRequest(w http.ResponseWriter, r *http.Request, reqs *source.Requests) {
	name := r.PathValue("name")
	var body struct {
		Tables []string `json:"tables"`
		Where  string   `json:"where"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		http.Error(w, "snapshot request: body must be {\"tables\": [\"schema.table\", ...], \"where\": \"optional SQL condition\"}: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body.Tables) == 0 {
		http.Error(w, "snapshot request: no tables", http.StatusBadRequest)
		return
	}
	reply := make(chan error, 1)
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := reqs.Send(ctx, name, source.SnapshotRequest{Tables: body.Tables, Where: body.Where, Reply: reply}); err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, source.ErrNotRunning) {
			code = http.StatusNotFound
		}
		http.Error(w, "snapshot request: "+err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	select {
	case err := <-reply:
		if err != nil {
			http.Error(w, "snapshot request refused: "+err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"connector": name, "tables": body.Tables, "status": "recorded"})
	case <-ctx.Done():
		// The connector is busy (say, in its initial snapshot): it takes
		// the request when it streams.
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"connector": name, "tables": body.Tables, "status": "queued"})
	}
}

// serveHTTP exposes /healthz (the process is alive), /readyz (every
// connector is running), /status (JSON) and /metrics (Prometheus).
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, st *status, reqs *source.Requests) (string, <-chan error, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connectors/{name}/snapshot", func(w http.ResponseWriter, r *http.Request) {
		snapshotRequest(w, r, reqs)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Profiles on the same loopback listener: how throughput problems get diagnosed in the field.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !st.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st.snapshot())
	})
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("worker.http %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), errc, nil
}

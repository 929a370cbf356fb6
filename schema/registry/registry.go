package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults, as Confluent Schema Registry has them.
const (
	DefaultTopic         = "_schemas"
	DefaultAddr          = "127.0.0.1:8081"
	DefaultCompatibility = CompatBackward
	defaultTimeout       = 30 * time.Second
)

// Registry is an embedded Confluent-compatible schema registry backed by a
// compacted topic. It is safe for concurrent use.
type Registry struct {
	cl      *kgo.Client
	adm     *kadm.Client
	topic   string
	defLvl  CompatibilityLevel
	log     *slog.Logger
	timeout time.Duration

	// writeMu serializes writers and reads of the topic; it guards next and dirty.
	writeMu sync.Mutex
	next    int64 // offset of the next record to apply
	dirty   bool  // a write failed after it may have reached the log

	// mu guards st; writers take it only to apply records.
	mu sync.RWMutex
	st *state

	closeOnce sync.Once
	closed    chan struct{}
	servers   sync.WaitGroup
}

// Option configures New.
type Option func(*Registry)

// WithTopic sets the topic the registry persists to (default "_schemas").
func WithTopic(topic string) Option { return func(r *Registry) { r.topic = topic } }

// WithDefaultCompatibility sets the level used while no global config record
// exists (default BACKWARD).
func WithDefaultCompatibility(l CompatibilityLevel) Option {
	return func(r *Registry) { r.defLvl = l }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.log = l } }

// WithTimeout bounds reading the topic on start and each write to it
// (default 30s), so a broker that is down gives an error instead of a hang.
func WithTimeout(d time.Duration) Option { return func(r *Registry) { r.timeout = d } }

// New creates the topic if it is missing (compacted, one partition), reads it
// to its high watermark and returns a registry with the state it holds.
//
// cl must be dedicated to the registry: it produces to the topic and
// consumes it directly (AddConsumePartitions), so it must not be a group or
// transactional client, nor consume other topics, and must produce with
// acks=all. The registry never closes cl; close it after Close.
func New(ctx context.Context, cl *kgo.Client, opts ...Option) (*Registry, error) {
	r := &Registry{
		cl:      cl,
		adm:     kadm.NewClient(cl),
		topic:   DefaultTopic,
		defLvl:  DefaultCompatibility,
		log:     slog.Default(),
		timeout: defaultTimeout,
		st:      newState(),
		closed:  make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	if r.topic == "" {
		return nil, errors.New("schema registry: empty topic name")
	}
	if _, err := ParseCompatibilityLevel(string(r.defLvl)); err != nil {
		return nil, fmt.Errorf("schema registry: default compatibility: %w", err)
	}
	r.defLvl, _ = ParseCompatibilityLevel(string(r.defLvl))
	if err := checkClient(cl); err != nil {
		return nil, fmt.Errorf("schema registry on topic %q: %w", r.topic, err)
	}

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := ensureTopic(ctx, r.adm, r.topic, r.log); err != nil {
		return nil, err
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {0: kgo.NewOffset().AtStart()}})
	r.writeMu.Lock()
	err := r.sync(ctx)
	r.writeMu.Unlock()
	if err != nil {
		cl.RemoveConsumePartitions(map[string][]int32{r.topic: {0}})
		return nil, fmt.Errorf("schema registry: load state: %w", err)
	}
	r.mu.RLock()
	r.log.Info("schema registry: state loaded", "topic", r.topic, "records_up_to_offset", r.next,
		"subjects", len(r.st.subjects), "schemas", len(r.st.ids), "max_id", r.st.maxID)
	r.mu.RUnlock()
	return r, nil
}

func checkClient(cl *kgo.Client) error {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return fmt.Errorf("the kafka client is in consumer group %q; give the registry a dedicated client", g)
	}
	if g, _ := cl.OptValue(kgo.ShareGroup).(string); g != "" {
		return fmt.Errorf("the kafka client is in share group %q; give the registry a dedicated client", g)
	}
	if ts, _ := cl.OptValue(kgo.ConsumeTopics).([]string); len(ts) > 0 {
		return fmt.Errorf("the kafka client consumes topics %v; give the registry a dedicated client", ts)
	}
	if ps, _ := cl.OptValue(kgo.ConsumePartitions).(map[string]map[int32]kgo.Offset); len(ps) > 0 {
		return errors.New("the kafka client already consumes partitions; give the registry a dedicated client")
	}
	if v := cl.OptValues(kgo.TransactionalID); len(v) == 2 && v[1] == true {
		return fmt.Errorf("the kafka client is transactional (id %v); give the registry a non-transactional client", v[0])
	}
	if acks, ok := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); ok && acks != kgo.AllISRAcks() {
		return errors.New("the kafka client does not produce with acks=all; a registered id must be durable before it is returned")
	}
	return nil
}

// Close stops the servers started by Serve and the registry's consumption of
// its topic. It does not close the kafka client.
func (r *Registry) Close() {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.servers.Wait()
		r.writeMu.Lock()
		r.cl.RemoveConsumePartitions(map[string][]int32{r.topic: {0}})
		r.writeMu.Unlock()
	})
}

func (r *Registry) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// Serve listens on addr (DefaultAddr when empty; port 0 picks a free port)
// and serves the API until ctx is done or Close is called. It returns the
// bound address once listening.
func (r *Registry) Serve(ctx context.Context, addr string) (string, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	if r.isClosed() {
		return "", errors.New("schema registry: serve on a closed registry")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("schema registry: listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           r.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	bound := ln.Addr().String()
	r.servers.Add(2)
	go func() {
		defer r.servers.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("schema registry: server stopped", "addr", bound, "error", err)
		}
	}()
	go func() {
		defer r.servers.Done()
		select {
		case <-ctx.Done():
		case <-r.closed:
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	}()
	r.log.Info("schema registry: listening", "addr", bound, "topic", r.topic)
	return bound, nil
}

// writeCtx detaches a write from the caller's cancellation (an HTTP client
// going away mid-write must not leave the outcome unknown) but bounds it.
func (r *Registry) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
}

// beginWrite takes writeMu and catches up with the topic. On success the
// caller must call r.writeMu.Unlock.
func (r *Registry) beginWrite(ctx context.Context, op string) *Error {
	if r.isClosed() {
		return &Error{http.StatusServiceUnavailable, CodeStoreError, "The schema registry is closed."}
	}
	r.writeMu.Lock()
	if err := r.sync(ctx); err != nil {
		r.writeMu.Unlock()
		return errStore(op, err)
	}
	return nil
}

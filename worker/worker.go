// Package worker runs a pipeline: it brings up the log (embedded broker or a
// cluster), the schema registry, the HTTP endpoints and every connector, and
// stops them in order.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/tributary-cdc/tributary/broker"
	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/offsets"
	"github.com/tributary-cdc/tributary/schema/registry"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/source"
)

// Services are the log-side dependencies every command shares: a Kafka
// client and a registry URL, embedded or external.
type Services struct {
	Brokers     []string
	RegistryURL string
	Registry    *sr.Client
	clientCfg   broker.ClientConfig
	closers     []func()
	failed      bool
}

// CloseAfterFailure is Close for a run that failed: an embedded log folder
// this run created and never wrote a record to is removed again.
func (s *Services) CloseAfterFailure() {
	s.failed = true
	s.Close()
}

// Close stops what StartServices started, in reverse order.
func (s *Services) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// NewClient returns a Kafka client configured like every tributary client.
func (s *Services) NewClient(extra ...kgo.Opt) (*kgo.Client, error) {
	return broker.NewClient(s.clientCfg, extra...)
}

// StartServices starts the embedded broker and registry when the config
// asks for them, or connects to the configured cluster and registry.
func StartServices(ctx context.Context, p *config.Pipeline, log *slog.Logger) (*Services, error) {
	// Memory is bounded by configuration (invariant 6): buffers are capped by
	// max_in_flight_bytes and fetch sizes, and the soft heap limit keeps the
	// garbage collector from letting the heap grow to twice the live data.
	if lim := p.Worker.MemoryLimit.Int64(); lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(lim)
	}
	s := &Services{}
	ok := false
	defer func() {
		if !ok {
			s.CloseAfterFailure()
		}
	}()
	s.clientCfg = broker.ClientConfig{
		Brokers:          p.Log.Brokers,
		ClientID:         p.Log.ClientID,
		Compression:      p.Log.Compression,
		TLS:              p.Log.TLS != nil,
		MaxBufferedBytes: p.Worker.MaxInFlightBytes.Int64(),
		MaxRecordBytes:   p.Log.MaxRecordBytes.Int64(),
	}
	if p.Log.SASL != nil {
		s.clientCfg.SASL = &broker.SASL{Mechanism: p.Log.SASL.Mechanism, User: p.Log.SASL.User, Password: string(p.Log.SASL.Password)}
	}
	if p.Log.Embedded() {
		emb, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{
			DataDir:            p.Log.DataDir,
			Listen:             p.Log.Listen,
			SyncWrites:         p.Log.SyncWrites,
			CompactionInterval: p.Log.CompactionInterval,
			Partitions:         p.Log.Partitions,
			MaxRecordBytes:     p.Log.MaxRecordBytes.Int64(),
			Logger:             log,
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() {
			if s.failed {
				emb.CloseDiscardingUnused()
			} else {
				emb.Close()
			}
		})
		s.clientCfg.Brokers = []string{emb.Addr()}
		log.Info("embedded log started", "listen", emb.Addr(), "data_dir", p.Log.DataDir, "sync_writes", p.Log.SyncWrites)
	}
	s.Brokers = s.clientCfg.Brokers

	if p.Registry.Embedded() {
		url, stop, err := ServeRegistry(ctx, s, p.Registry.Listen, registry.DefaultTopic, log)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, stop)
		s.RegistryURL = url
	} else {
		s.RegistryURL = p.Registry.URL
	}
	opts := []sr.ClientOpt{sr.URLs(s.RegistryURL), sr.UserAgent("tributary")}
	if p.Registry.BasicAuth != nil {
		opts = append(opts, sr.BasicAuth(p.Registry.BasicAuth.User, string(p.Registry.BasicAuth.Password)))
	}
	if p.Registry.TLS != nil && p.Registry.TLS.InsecureSkipVerify {
		opts = append(opts, sr.HTTPClient(&http.Client{Timeout: 30 * time.Second}))
	}
	src, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("registry client for %s: %w", s.RegistryURL, err)
	}
	s.Registry = src
	ok = true
	return s, nil
}

// ServeRegistry serves a Confluent-compatible registry persisted in topic.
// Only one registry may write a given topic at a time.
func ServeRegistry(ctx context.Context, s *Services, listen, topic string, log *slog.Logger) (string, func(), error) {
	cl, err := s.NewClient()
	if err != nil {
		return "", nil, err
	}
	reg, err := registry.New(ctx, cl, registry.WithTopic(topic), registry.WithLogger(log.With("component", "registry")))
	if err != nil {
		cl.Close()
		return "", nil, fmt.Errorf("embedded registry on topic %s: %w", topic, err)
	}
	bound, err := reg.Serve(ctx, listen)
	if err != nil {
		reg.Close()
		cl.Close()
		return "", nil, fmt.Errorf("embedded registry: registry.listen %s: %w", listen, err)
	}
	log.Info("schema registry serving", "url", "http://"+bound, "topic", topic)
	return "http://" + bound, func() { reg.Close(); cl.Close() }, nil
}

type openedSource struct {
	spec *config.Connector
	cfg  source.Config
	conn source.Connector
}

// Open decodes and opens every source without running it, so config
// errors surface before anything starts.
func openSources(p *config.Pipeline, log *slog.Logger) ([]openedSource, error) {
	var out []openedSource
	var errs []error
	for _, spec := range p.Sources {
		d, ok := source.Lookup(spec.Type)
		if !ok {
			errs = append(errs, spec.Errorf("type", "unknown source type %q (known: %v)", spec.Type, source.Drivers()))
			continue
		}
		cfg := d.NewConfig()
		if err := spec.Decode(cfg); err != nil {
			errs = append(errs, err)
			continue
		}
		conn, err := d.Open(spec.Name, cfg, log.With("source", spec.Name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", spec.Path, spec.Name, err))
			continue
		}
		out = append(out, openedSource{spec: spec, cfg: cfg, conn: conn})
	}
	return out, errors.Join(errs...)
}

// sourceUnits turns sources into units; see sinkUnits for why later runs
// open a new connector.
func sourceUnits(srcs []openedSource, deps source.Deps, log *slog.Logger) []unit {
	var out []unit
	for _, s := range srcs {
		name, typ := s.spec.Name, s.spec.Type
		next := firstThenOpen(s.conn, func() (source.Connector, error) {
			drv, _ := source.Lookup(typ)
			c, err := drv.Open(name, s.cfg, log.With("source", name))
			if err != nil {
				return nil, err
			}
			if hu, ok := c.(source.HistoryUser); ok {
				hu.SetHistory(offsets.NewHistory(deps.Client, hu.HistoryTopic()))
			}
			return c, nil
		})
		out = append(out, unit{name: name, kind: "source", typ: typ, run: func(ctx context.Context) error {
			conn, err := next()
			if err != nil {
				return fmt.Errorf("%s (%s): %w", s.spec.Path, name, err)
			}
			d := deps
			d.Logger = log.With("source", name)
			if sc, ok := s.cfg.(source.SignalTopicConfig); ok {
				d.SignalTopic = sc.SignalTopic()
			}
			return source.Run(ctx, name, s.cfg.TopicPrefix(), conn, d)
		}})
	}
	return out
}

// ConfigError marks errors in the pipeline file, so the CLI exits 2.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Run runs the pipeline until ctx is done or every connector has ended.
// A connector that fails for good stops alone (failed in /status, /readyz
// not ready); Run then returns its error once the others have stopped too.
func Run(ctx context.Context, p *config.Pipeline, log *slog.Logger) (err error) {
	srcs, err := openSources(p, log)
	sinks, sinkErr := openSinks(p, log)
	if err = errors.Join(err, sinkErr); err != nil {
		for _, s := range sinks {
			_ = s.target.Close()
		}
		return &ConfigError{err}
	}
	if len(srcs) == 0 && len(sinks) == 0 {
		return &ConfigError{fmt.Errorf("%s: no sources and no sinks to run", p.File)}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := source.NewMetrics(reg)
	sinkMetrics := sink.NewMetrics(reg)
	st := newStatus()
	st.progress = source.NewProgressBoard()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	requests := source.NewRequests()
	httpAddr, httpErr, err := serveHTTP(runCtx, p.Worker.HTTP, reg, st, requests)
	if err != nil {
		return err
	}
	log.Info("worker http serving", "addr", httpAddr, "endpoints", "/healthz /readyz /status /metrics POST /connectors/{name}/snapshot")

	svc, err := StartServices(runCtx, p, log)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) {
			svc.CloseAfterFailure()
			return
		}
		svc.Close()
	}()

	cl, err := svc.NewClient(kgo.ProducerLinger(p.Worker.FlushInterval))
	if err != nil {
		return err
	}
	defer cl.Close()
	topics := broker.NewTopics(cl).WithMaxRecordBytes(p.Log.MaxRecordBytes.Int64(), !p.Log.Embedded())
	if err := topics.Ensure(runCtx, broker.TopicSpec{
		Name: p.Log.OffsetsTopic, Partitions: 1, ReplicationFactor: int16(p.Log.ReplicationFactor), Compacted: true,
	}); err != nil {
		return fmt.Errorf("log.offsets_topic: %w", err)
	}
	store := offsets.NewStore(cl, p.Log.OffsetsTopic)
	bus := newTopicBus()
	deps := source.Deps{
		Client:            cl,
		Topics:            notifyingTopics{inner: topics, bus: bus},
		Registry:          svc.Registry,
		Offsets:           store,
		Metrics:           metrics,
		Requests:          requests,
		Progress:          st.progress,
		Partitions:        int32(p.Log.Partitions),
		ReplicationFactor: int16(p.Log.ReplicationFactor),
		MaxRecordBytes:    p.Log.MaxRecordBytes.Int64(),
	}
	if p.Worker.ExactlyOnce {
		deps.TxnInterval = p.Worker.TransactionInterval
		deps.NewTxnClient = func(id string) (*kgo.Client, error) {
			return svc.NewClient(kgo.TransactionalID(id), kgo.ProducerLinger(p.Worker.FlushInterval),
				kgo.TransactionTimeout(max(time.Minute, 10*p.Worker.TransactionInterval)))
		}
	}

	for _, s := range srcs {
		hu, ok := s.conn.(source.HistoryUser)
		if !ok {
			continue
		}
		// Schema history must outlive every offset: never compacted, never expired.
		if err := topics.Ensure(runCtx, broker.TopicSpec{
			Name: hu.HistoryTopic(), Partitions: 1, ReplicationFactor: int16(p.Log.ReplicationFactor),
			Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
		}); err != nil {
			return fmt.Errorf("%s: schema history topic: %w", s.spec.Path, err)
		}
		hu.SetHistory(offsets.NewHistory(cl, hu.HistoryTopic()))
	}

	errc := make(chan error, 2)
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_connector_restarts_total",
		Help: "Restarts of a connector after a transient error (lost connection, server restart, broker not available).",
	}, []string{"connector"})
	reg.MustRegister(restarts)
	sup := &supervisor{ctx: runCtx, log: log, st: st, running: map[string]*runningUnit{},
		restart: restartPolicy{initial: p.Worker.RestartBackoff, max: p.Worker.RestartBackoffMax, upBefore: p.Worker.RestartAfterUp, restarts: restarts}}
	internal := internalTopics(p, srcs, sinks)
	for i := range sinks {
		sinks[i].spec.InternalTopics = internal
	}
	units := append(sourceUnits(srcs, deps, log), sinkUnits(sinks, sinkDeps(svc, sinkMetrics), bus, log)...)
	if p.Worker.Group == "" {
		for _, u := range units {
			sup.start(u)
		}
	}
	groupDone := make(chan struct{})
	if p.Worker.Group == "" {
		close(groupDone)
	} else {
		go func() {
			defer close(groupDone)
			if err := runGroup(runCtx, svc, p.Worker.Group, p.Worker.GroupSessionTimeout, int16(p.Log.ReplicationFactor), units, sup, log); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		select {
		case err := <-httpErr:
			if err != nil {
				errc <- fmt.Errorf("worker.http: %w", err)
				cancel()
			}
		case <-runCtx.Done():
		}
	}()
	if p.Worker.Group != "" {
		// In a group a worker that owns nothing still waits for work: it
		// stops only when told to or when something fails.
		<-runCtx.Done()
		<-groupDone
	}
	sup.wg.Wait()
	// Every connector has ended (initial_only snapshots end by themselves):
	// stop the HTTP watcher before closing the channel it may send on.
	cancel()
	<-httpDone
	close(errc)
	errs := sup.failures()
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("worker stopped cleanly")
	}
	return errors.Join(errs...)
}

package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/sink"
)

type openedSink struct {
	entry  *config.Connector
	spec   sink.Spec
	cfg    sink.Config
	target sink.Target
}

// openSinks decodes and opens every `sinks:` entry without connecting, so
// config errors surface (all of them, with their lines) before anything
// starts. One entry holds both the runtime's keys and the target's own.
func openSinks(p *config.Pipeline, log *slog.Logger) ([]openedSink, error) {
	var out []openedSink
	var errs []error
	for _, c := range p.Sinks {
		d, ok := sink.Lookup(c.Type)
		if !ok {
			errs = append(errs, c.Errorf("type", "unknown sink type %q (known: %v)", c.Type, sink.Drivers()))
			continue
		}
		spec := sink.DefaultSpec()
		cfg := d.NewConfig()
		if err := c.Decode(&spec, cfg); err != nil {
			errs = append(errs, err)
			continue
		}
		// The entry's name is authoritative: it keys the offsets rows.
		spec.Name = c.Name
		target, err := d.Open(c.Name, cfg, log.With("sink", c.Name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", c.Path, c.Name, err))
			continue
		}
		out = append(out, openedSink{entry: c, spec: spec, cfg: cfg, target: target})
	}
	if len(errs) > 0 {
		for _, s := range out {
			_ = s.target.Close()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// sinkDeps builds what every sink of a worker shares: the worker's Kafka
// settings, a decoder reading the worker's registry, and metrics on its
// registry.
func sinkDeps(svc *Services, m *sink.Metrics) sink.Deps {
	return sink.Deps{
		NewClient: svc.NewClient,
		Decoder:   schema.NewDecoder(schema.SRFetcher{Client: svc.Registry}),
		Metrics:   m,
	}
}

// sinkUnits turns sinks into units. The first run uses the target opened
// (and validated) at start; later runs, after a worker group moved the sink
// away and back, open a new one because sink.Run closes its target.
//
// bus, when set, wakes each running sink when a source of the worker
// created a topic.
func sinkUnits(sinks []openedSink, deps sink.Deps, bus *topicBus, log *slog.Logger) []unit {
	var out []unit
	for _, s := range sinks {
		name, typ := s.entry.Name, s.entry.Type
		next := firstThenOpen(s.target, func() (sink.Target, error) {
			d, _ := sink.Lookup(typ)
			return d.Open(name, s.cfg, log.With("sink", name))
		})
		out = append(out, unit{name: name, kind: "sink", typ: typ, run: func(ctx context.Context) error {
			target, err := next()
			if err != nil {
				return fmt.Errorf("%s (%s sink %s): %w", s.entry.Path, typ, name, err)
			}
			d := deps
			d.Logger = log.With("sink", name)
			if bus != nil {
				ch, unsubscribe := bus.subscribe()
				defer unsubscribe()
				d.TopicsChanged = ch
			}
			if err := sink.Run(ctx, s.spec, target, d); err != nil {
				return fmt.Errorf("%s (%s sink %s): %w", s.entry.Path, typ, name, err)
			}
			return nil
		}})
	}
	return out
}

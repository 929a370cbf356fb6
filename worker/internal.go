package worker

import (
	"log/slog"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/schema/registry"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/source"
)

// internalTopics names the topics of pipeline p that never carry change
// events, with why, so that no sink's topics_regex picks them up: the
// offsets topic, each source's schema history topic, the names Debezium
// gives schema change, transaction and signal topics under each source's
// prefix, each sink's dead-letter topic, the registry's and the worker
// group's topics.
func internalTopics(p *config.Pipeline, srcs []openedSource, sinks []openedSink) map[string]string {
	m := map[string]string{
		p.Log.OffsetsTopic:    "source offsets topic (log.offsets_topic)",
		registry.DefaultTopic: "schema registry topic",
	}
	if p.Worker.Group != "" {
		m[groupTopic(p.Worker.Group)] = "worker group topic (worker.group)"
	}
	for _, s := range srcs {
		// Names Debezium gives its non-change topics under a topic prefix
		// (schema changes, transaction metadata, signals), in case a
		// Debezium connector shares the prefix: tributary writes none.
		if prefix := s.cfg.TopicPrefix(); prefix != "" {
			m[prefix] = "schema change topic name of prefix " + prefix + " (Debezium's <topic.prefix>)"
			m[prefix+".transaction"] = "transaction metadata topic name of prefix " + prefix + " (Debezium's <topic.prefix>.transaction)"
			m[prefix+"-signal"] = "signal topic name of prefix " + prefix + " (Debezium's <topic.prefix>-signal)"
		}
		if hu, ok := s.conn.(source.HistoryUser); ok {
			m[hu.HistoryTopic()] = "schema history topic of source " + s.spec.Name + " (JSON)"
		}
	}
	for _, s := range sinks {
		dlq := s.spec.DLQTopic
		if dlq == "" {
			dlq = s.spec.Name + sink.DLQSuffix
		}
		m[dlq] = "dead-letter topic of sink " + s.spec.Name
	}
	return m
}

// InternalTopics is internalTopics for the commands that run one sink of
// the pipeline alone (replay, backfill): it opens, without connecting, the
// pipeline's sources and sinks. Entries that do not open are left out;
// the command reports their config errors itself where they matter.
func InternalTopics(p *config.Pipeline, log *slog.Logger) map[string]string {
	srcs, _ := openSources(p, log)
	sinks, _ := openSinks(p, log)
	defer func() {
		for _, s := range sinks {
			_ = s.target.Close()
		}
	}()
	return internalTopics(p, srcs, sinks)
}

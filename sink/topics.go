package sink

import "strings"

// Names of topics that never carry change events, whatever pipeline wrote
// them: a topics_regex never selects them (see Spec.skipReason).
const (
	// DefaultOffsetsTopic is log.offsets_topic's default.
	DefaultOffsetsTopic = "tributary-offsets"
	// HistorySuffix ends a MySQL/MariaDB source's schema history topic,
	// <topic_prefix>.schema-history by default.
	HistorySuffix = ".schema-history"
	// DLQSuffix ends a sink's default dead-letter topic, <sink>.dlq.
	DLQSuffix = ".dlq"
)

// kafkaConnectTopics are Kafka Connect's default internal topics, present
// where Debezium runs beside tributary.
var kafkaConnectTopics = map[string]bool{"connect-offsets": true, "connect-configs": true, "connect-status": true}

// skipReason says why a topic that topics_regex matches is not consumed:
// it is one of the pipeline's own topics that never carry change events
// (schema history, source offsets, dead letters, the registry's and the
// group's topics). "" means the topic is consumed. Explicitly listed topics
// are never skipped.
func (s Spec) skipReason(topic string) string {
	if why, ok := s.InternalTopics[topic]; ok {
		return why
	}
	switch {
	case topic == s.DLQTopic:
		return "the sink's own dead-letter topic"
	case strings.HasPrefix(topic, "_"):
		return "internal topic (a name starting with _: _schemas, __consumer_offsets, _tributary-*)"
	case topic == DefaultOffsetsTopic:
		return "source offsets topic (log.offsets_topic default)"
	case strings.HasSuffix(topic, HistorySuffix):
		return "schema history topic of a MySQL/MariaDB source (<topic_prefix>" + HistorySuffix + ", JSON)"
	case strings.HasSuffix(topic, DLQSuffix):
		return "dead-letter topic of a sink (<sink>" + DLQSuffix + ")"
	case kafkaConnectTopics[topic]:
		return "Kafka Connect internal topic"
	}
	return ""
}

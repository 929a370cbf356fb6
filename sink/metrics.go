package sink

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-worker sink metrics, labelled by sink name. Create them
// once per registry and share them between sinks.
type Metrics struct {
	Records      *prometheus.CounterVec   // sink, topic: records consumed (tombstones included)
	Changes      *prometheus.CounterVec   // sink, op: changes applied after per-key reduction
	Batches      *prometheus.CounterVec   // sink: transactions committed
	BatchSeconds *prometheus.HistogramVec // sink: time to apply and commit one batch
	DeadLetters  *prometheus.CounterVec   // sink, topic: records sent to the dead-letter topic
	Lag          *prometheus.GaugeVec     // sink, topic, partition: high watermark minus next offset
	Errors       *prometheus.CounterVec   // sink: failures that stopped the sink
	// Unavailable counts values the source did not send (unchanged TOAST
	// placeholders) for rows the copy did not hold either: the copy has no
	// value for them.
	Unavailable *prometheus.CounterVec // sink, table, column
}

// NewMetrics creates the collectors and registers them on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_sink_records_total", Help: "Records consumed by the sink, tombstones included.",
		}, []string{"sink", "topic"}),
		Changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_sink_changes_applied_total", Help: "Row changes applied to the target after per-key reduction.",
		}, []string{"sink", "op"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_sink_batches_total", Help: "Batches committed to the target together with their offsets.",
		}, []string{"sink"}),
		BatchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tributary_sink_batch_seconds", Help: "Time to apply and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"sink"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_sink_dead_letters_total", Help: "Records sent to the dead-letter topic.",
		}, []string{"sink", "topic"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_sink_lag_records", Help: "Records in the log not yet applied by the sink.",
		}, []string{"sink", "topic", "partition"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_sink_errors_total", Help: "Errors that stopped the sink.",
		}, []string{"sink"}),
		Unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_sink_unavailable_values_total",
			Help: "Values the source did not send (unchanged TOASTed values, __debezium_unavailable_value) for rows the copy did not hold: the copy has no value for them.",
		}, []string{"sink", "table", "column"}),
	}
	if reg != nil {
		reg.MustRegister(m.Records, m.Changes, m.Batches, m.BatchSeconds, m.DeadLetters, m.Lag, m.Errors, m.Unavailable)
	}
	return m
}

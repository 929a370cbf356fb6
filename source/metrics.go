package source

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-worker source metrics, labelled by connector name.
// Connectors update snapshot and lag figures; the runtime updates the rest.
type Metrics struct {
	EventsProduced  *prometheus.CounterVec // connector, topic
	BytesProduced   *prometheus.CounterVec // connector
	ProducerErrors  *prometheus.CounterVec // connector
	SnapshotRows    *prometheus.GaugeVec   // connector, table: rows read so far
	SnapshotTotal   *prometheus.GaugeVec   // connector, table: estimated total rows
	SnapshotRunning *prometheus.GaugeVec   // connector: 1 while a snapshot runs
	LagBytes        *prometheus.GaugeVec   // connector: e.g. pg_current_wal_lsn - confirmed_flush_lsn
	CommittedOffset *prometheus.GaugeVec   // connector: last durable position as a number (LSN, binlog pos)
	// ResnapshotRequests counts tables whose rows changed in a way no change
	// event carries (e.g. a column added with a non-constant default) and
	// that need reading again: connector, table, reason.
	ResnapshotRequests *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		EventsProduced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_source_events_produced_total", Help: "Change events acknowledged by the log.",
		}, []string{"connector", "topic"}),
		BytesProduced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_source_bytes_produced_total", Help: "Key plus value bytes acknowledged by the log.",
		}, []string{"connector"}),
		ProducerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_source_producer_errors_total", Help: "Records the log refused or failed to acknowledge.",
		}, []string{"connector"}),
		SnapshotRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_snapshot_rows", Help: "Rows read by the running or last snapshot.",
		}, []string{"connector", "table"}),
		SnapshotTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_snapshot_rows_estimate", Help: "Estimated rows of each table being snapshotted.",
		}, []string{"connector", "table"}),
		SnapshotRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_snapshot_running", Help: "1 while a snapshot is running.",
		}, []string{"connector"}),
		LagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_source_lag_bytes", Help: "Bytes of change log (WAL, binlog) not yet acknowledged.",
		}, []string{"connector"}),
		CommittedOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_source_committed_position", Help: "Last durable source position (LSN or binlog position).",
		}, []string{"connector"}),
		ResnapshotRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_source_resnapshot_requests_total",
			Help: "Tables whose existing rows changed without change events (a column added with a non-constant default) and need reading again.",
		}, []string{"connector", "table", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.EventsProduced, m.BytesProduced, m.ProducerErrors, m.SnapshotRows,
			m.SnapshotTotal, m.SnapshotRunning, m.LagBytes, m.CommittedOffset, m.ResnapshotRequests)
	}
	return m
}

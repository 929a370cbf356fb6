package source

import "log/slog"

// RequestResnapshot is called by a connector when the rows of a table
// changed at the source in a way no change event carries, so that the log
// (and every copy rebuilt from it) no longer holds them as the source does:
// a column added with a non-constant default (PostgreSQL and MariaDB fill
// existing rows with values computed by the server), or with a default the
// schema cannot carry. The table needs its rows read again.
//
// For now it logs a warning naming the table, column and reason and counts
// the request in tributary_source_resnapshot_requests_total; the
// incremental re-snapshot that will act on it is wired in here.
//
// reason is a short fixed phrase (it labels the metric), e.g.
// ReasonNonConstantDefault; detail says more for the log (the expression).
func RequestResnapshot(rt Runtime, log *slog.Logger, connector, table, column, reason, detail string) {
	if log == nil {
		log = rt.Logger()
	}
	log.Warn(reason+"; existing rows need a re-read of the table",
		"connector", connector, "table", table, "column", column, "detail", detail)
	if m := rt.Metrics(); m != nil && m.ResnapshotRequests != nil {
		m.ResnapshotRequests.WithLabelValues(connector, table, reason).Inc()
	}
}

// Reasons for RequestResnapshot.
const (
	ReasonNonConstantDefault = "non-constant default"
	ReasonDefaultNotCarried  = "default not carried in the schema"
)

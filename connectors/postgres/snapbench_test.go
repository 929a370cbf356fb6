package postgres

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/source"
)

// BenchmarkSnapshotVsCopy snapshots a 500k-row table (~200-byte rows) into a
// discarding runtime and compares with a bare COPY of the same table. It
// needs the test PostgreSQL: go test -run X -bench SnapshotVsCopy -benchtime 1x.
func BenchmarkSnapshotVsCopy(b *testing.B) {
	const rows = 500000
	d := newTestDB(b)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text, n int, created timestamptz, amount numeric(12,2), flag bool)`)
	d.exec(`INSERT INTO items SELECT g, repeat('n', 120), g % 1000, now(), g / 100.0, g % 2 = 0 FROM generate_series(1, $1) g`, rows)
	d.exec(`ANALYZE items`)
	cfg := d.config("items")
	rt := &discardRuntime{fakeRuntime: newFakeRuntime(b, nil)}
	conn, err := driver{}.Open("bench_"+d.name, cfg, rt.log)
	if err != nil {
		b.Fatal(err)
	}
	c := conn.(*connector)
	ctx := b.Context()
	meta, err := c.connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer meta.Close(ctx)
	if err := c.checkServer(ctx, meta); err != nil {
		b.Fatal(err)
	}
	if err := c.resolveTables(ctx, meta); err != nil {
		b.Fatal(err)
	}
	if err := c.ensurePublication(ctx, meta); err != nil {
		b.Fatal(err)
	}
	cat, err := pgtypeLoadCatalog(ctx, meta)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var snap, cp time.Duration
	for i := 0; i < b.N; i++ {
		_, _ = meta.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, c.slot)
		rt.n = 0
		began := time.Now()
		if _, err := c.runSnapshot(ctx, rt, meta, cat); err != nil {
			b.Fatal(err)
		}
		snap += time.Since(began)
		if rt.n != rows {
			b.Fatalf("snapshot emitted %d rows", rt.n)
		}
		began = time.Now()
		var sink countWriter
		if _, err := meta.PgConn().CopyTo(ctx, &sink, "COPY items TO STDOUT"); err != nil {
			b.Fatal(err)
		}
		cp += time.Since(began)
	}
	b.ReportMetric(float64(rows*b.N)/snap.Seconds(), "snapshot_rows/s")
	b.ReportMetric(float64(rows*b.N)/cp.Seconds(), "copy_rows/s")
	b.ReportMetric(cp.Seconds()/snap.Seconds(), "ratio")
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// countingRuntime counts emitted records and signals when n are in.
type countingRuntime struct {
	*fakeRuntime
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countingRuntime) Emit(ctx context.Context, r source.Record) error {
	if c.n.Add(1) == c.want {
		close(c.done)
	}
	return nil
}

// BenchmarkStreamDrainVsRecvlogical drains a slot backlog of 200k inserts in
// 1000-row transactions and compares with pg_recvlogical draining a twin
// slot to /dev/null. It needs the test PostgreSQL and TRIBUTARY_PG_BIN.
func BenchmarkStreamDrainVsRecvlogical(b *testing.B) {
	const rows = 200000
	d := newTestDB(b)
	d.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text, n int, created timestamptz, amount numeric(12,2), flag bool)`)
	cfg := d.config("items")
	cfg.Snapshot = SnapshotNever
	name := "drain_" + d.name
	// First run creates the publication and the slot.
	crt := &countingRuntime{fakeRuntime: newFakeRuntime(b, nil), want: -1, done: make(chan struct{})}
	conn, err := driver{}.Open(name, cfg, crt.log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- conn.Run(ctx, crt) }()
	slot := defaultObjectName(name)
	waitFor(b, 30*time.Second, "slot", func() bool {
		var n int
		_ = d.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, slot).Scan(&n)
		return n == 1
	})
	cancel()
	<-errc
	d.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot+"_twin")
	for i := 0; i < rows; i += 1000 {
		d.exec(`INSERT INTO items SELECT g, repeat('n', 120), g % 1000, now(), g / 100.0, g % 2 = 0 FROM generate_series($1::bigint, $1::bigint + 999) g`, i+1)
	}
	var end string
	_ = d.conn.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&end)
	b.ResetTimer()

	crt = &countingRuntime{fakeRuntime: newFakeRuntime(b, nil), want: rows, done: make(chan struct{})}
	conn, _ = driver{}.Open(name, cfg, crt.log)
	ctx, cancel = context.WithCancel(context.Background())
	began := time.Now()
	go func() { errc <- conn.Run(ctx, crt) }()
	select {
	case <-crt.done:
	case err := <-errc:
		b.Fatalf("connector stopped: %v", err)
	case <-time.After(5 * time.Minute):
		b.Fatal("drain timed out")
	}
	ours := time.Since(began)
	cancel()
	<-errc

	bin := os.Getenv("TRIBUTARY_PG_BIN")
	u, _ := url.Parse(d.url)
	pw, _ := u.User.Password()
	cmd := exec.Command(filepath.Join(bin, "pg_recvlogical"), "-d", d.name, "-h", u.Hostname(), "-p", u.Port(), "-U", u.User.Username(),
		"-S", slot+"_twin", "--start", "-o", "proto_version=2", "-o", "publication_names="+cfg.publicationName(name),
		"-E", end, "-f", "/dev/null", "--no-loop")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pw)
	began = time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("pg_recvlogical: %v: %s", err, out)
	}
	theirs := time.Since(began)
	b.ReportMetric(rows/ours.Seconds(), "tributary_events/s")
	b.ReportMetric(rows/theirs.Seconds(), "recvlogical_events/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
}

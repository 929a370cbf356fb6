package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

const (
	mRecords = "tributary_sink_records_total"
	mApplied = "tributary_sink_changes_applied_total"
)

// applied is one sink's run over the whole source topic.
type applied struct {
	rate    float64       // rows/s from the first consumed record to the last commit
	elapsed time.Duration // that span
	wall    time.Duration // process start to the last commit
	rss     int64         // peak RSS of the worker
	cfg     string        // pipeline file
}

// applySink runs a sink-only pipeline (entry is its `sinks:` item) on the
// source log until every record is applied, by the sink's own metrics.
func (b *bench) applySink(ctx context.Context, name, entry string) (*applied, error) {
	n := b.src.rows
	l := freeListeners()
	if b.o.batchSize > 0 {
		entry += fmt.Sprintf("    batch_size: %d\n", b.o.batchSize)
	}
	yaml := l.header(b.src.dataDir) + "sinks:\n" + entry
	p, cfg, err := b.runPipeline(ctx, filepath.Join(b.work, name), yaml, l.http)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	deadline := time.Now().Add(b.o.applyTimout)
	var t0, end time.Time
	var c0 float64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for end.IsZero() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if p.exited() {
			return nil, fmt.Errorf("tributary exited early (%v); log tail:\n%s", p.waitErr, p.tail())
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not all %d records applied after %s; log tail:\n%s", n, b.o.applyTimout, p.tail())
		}
		m, err := metricSums(ctx, p.metrics, mRecords, mApplied)
		if err != nil {
			continue // not listening yet
		}
		now := time.Now()
		if t0.IsZero() && m[mRecords] > 0 {
			t0, c0 = now, m[mApplied]
			if b.o.pprofDir != "" {
				go b.cpuProfile(ctx, strings.TrimSuffix(p.metrics, "/metrics"), name)
			}
		}
		if m[mApplied] >= float64(n) {
			end = now
		}
	}
	if c0 >= float64(n) {
		return nil, fmt.Errorf("all %d rows were applied before the first metrics poll; raise -rows", n)
	}
	a := &applied{elapsed: end.Sub(t0), wall: end.Sub(p.started), cfg: cfg}
	a.rate = (float64(n) - c0) / a.elapsed.Seconds()
	if a.rss, err = p.stop(); err != nil {
		return nil, fmt.Errorf("peak RSS: %w", err)
	}
	if p.waitErr != nil && !isSignal(p.waitErr) {
		return nil, fmt.Errorf("tributary exited with %v after SIGTERM; log tail:\n%s", p.waitErr, p.tail())
	}
	b.logf("%s: %d rows applied at %.0f rows/s (%s from first consumed record, %s since process start), peak RSS %s",
		name, n, a.rate, a.elapsed.Round(time.Millisecond), a.wall.Round(time.Millisecond), mb(a.rss))
	b.notes = append(b.notes, fmt.Sprintf("%s: %d rows in %s (process start to last commit %s), worker CPU %s in its whole life, worker peak RSS %s",
		name, n, a.elapsed.Round(time.Millisecond), a.wall.Round(time.Millisecond), p.cpu().Round(100*time.Millisecond), mb(a.rss)))
	return a, nil
}

// cpuProfile saves a CPU profile and a 1s execution trace (which shows
// what the goroutines wait for: go tool trace -pprof=net) of the worker
// serving base into the -pprof folder; a failure is only logged.
func (b *bench) cpuProfile(ctx context.Context, base, name string) {
	fetch := func(url, path string) error {
		if err := os.MkdirAll(b.o.pprofDir, 0o755); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Timeout: time.Duration(b.o.pprofSeconds+10) * time.Second}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		b.logf("%s: %s written", name, path)
		return nil
	}
	go func() {
		if err := fetch(base+"/debug/pprof/trace?seconds=1", filepath.Join(b.o.pprofDir, name+".trace")); err != nil {
			b.logf("%s: trace: %v", name, err)
		}
	}()
	if err := fetch(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, b.o.pprofSeconds), filepath.Join(b.o.pprofDir, name+".pprof")); err != nil {
		b.logf("%s: CPU profile: %v", name, err)
	}
}

func isSignal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "signal: terminated")
}

// checkCount compares a copy's row count and stored next offset with the
// source topic.
func (b *bench) checkCount(name string, count, next int64) error {
	if count != int64(b.src.rows) || next != int64(b.src.rows) {
		return fmt.Errorf("%s: copy has %d rows and next offset %d, want %d and %d", name, count, next, b.src.rows, b.src.rows)
	}
	return nil
}

// --- PostgreSQL ---

func (b *bench) applyPostgres(ctx context.Context) error {
	db := "bench_sinkpg_" + b.runID
	u, err := b.createDB(ctx, db)
	if err != nil {
		return err
	}
	a, err := b.applySink(ctx, "postgres-sink", fmt.Sprintf(`  - name: bench-pg
    type: postgres
    url: %s
    topics: [%s]
`, u, b.src.topic))
	if err != nil {
		return err
	}
	b.pgCopy, b.pgCfg = u, a.cfg
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Errorf("connect %s: %w", db, err)
	}
	defer c.Close(ctx)
	var count, next int64
	if err := c.QueryRow(ctx, "SELECT (SELECT count(*) FROM public.items), (SELECT max(next_offset) FROM public.tributary_offsets WHERE sink_name = 'bench-pg' AND kafka_partition >= 0)").Scan(&count, &next); err != nil {
		return fmt.Errorf("check copy: %w", err)
	}
	if err := b.checkCount("postgres sink", count, next); err != nil {
		return err
	}

	// Baseline: COPY FROM of the same rows into an empty table shaped like
	// the copy (same types, same primary key).
	if _, err := c.Exec(ctx, "CREATE TABLE public.bare (LIKE public.items INCLUDING ALL)"); err != nil {
		return fmt.Errorf("create baseline table: %w", err)
	}
	f, err := os.Open(b.src.pgFile)
	if err != nil {
		return err
	}
	defer f.Close()
	t := time.Now()
	tag, err := c.PgConn().CopyFrom(ctx, f, "COPY public.bare ("+srcColumns+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("baseline COPY FROM: %w", err)
	}
	el := time.Since(t)
	if tag.RowsAffected() != int64(b.src.rows) {
		return fmt.Errorf("baseline COPY FROM loaded %d rows, want %d", tag.RowsAffected(), b.src.rows)
	}
	base := rate(b.src.rows, el)
	b.logf("postgres baseline: COPY FROM %d rows in %s (%.0f rows/s)", b.src.rows, el.Round(time.Millisecond), base)
	b.ratioRow(fmt.Sprintf("PostgreSQL sink, %d upserts", b.src.rows), "COPY FROM", a.rate, base, 0.5)
	return nil
}

// --- SQLite ---

func openSQLite(path string, readOnly bool) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if readOnly {
		dsn = "file:" + path + "?mode=ro&_pragma=busy_timeout(5000)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func (b *bench) applySQLite(ctx context.Context) error {
	path := filepath.Join(b.work, "sqlite-sink", "copy.db")
	a, err := b.applySink(ctx, "sqlite-sink", fmt.Sprintf(`  - name: bench-sqlite
    type: sqlite
    path: %s
    topics: [%s]
`, path, b.src.topic))
	if err != nil {
		return err
	}
	_ = a
	cp, err := openSQLite(path, false)
	if err != nil {
		return err
	}
	defer cp.Close()
	var count, next int64
	if err := cp.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM public_items), (SELECT max(next_offset) FROM tributary_offsets WHERE sink_name = 'bench-sqlite' AND kafka_partition >= 0)").Scan(&count, &next); err != nil {
		return fmt.Errorf("check copy: %w", err)
	}
	if err := b.checkCount("sqlite sink", count, next); err != nil {
		return err
	}
	var ddl string
	if err := cp.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'public_items'").Scan(&ddl); err != nil {
		return fmt.Errorf("read copy's DDL: %w", err)
	}
	cp.Close()

	// Baseline: the same rows, in the values the sink stores, into a fresh
	// file with the copy's DDL and the sink's pragmas, by multi-row INSERTs
	// in one transaction.
	rows, err := b.src.flatRows()
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i][3] = strings.Replace(rows[i][3], " ", "T", 1) + "Z" // the sink's timestamptz text
	}
	bare, err := openSQLite(filepath.Join(b.work, "sqlite-sink", "bare.db"), false)
	if err != nil {
		return err
	}
	defer bare.Close()
	if _, err := bare.ExecContext(ctx, strings.Replace(ddl, "public_items", "bare", 1)); err != nil {
		return fmt.Errorf("create baseline table from %q: %w", ddl, err)
	}
	t := time.Now()
	if err := multiRowInsert(ctx, bare, "INSERT INTO bare ("+srcColumns+") VALUES ", rows, 200); err != nil {
		return fmt.Errorf("baseline insert: %w", err)
	}
	el := time.Since(t)
	base := rate(len(rows), el)
	b.logf("sqlite baseline: multi-row INSERT of %d rows in one transaction in %s (%.0f rows/s)", len(rows), el.Round(time.Millisecond), base)
	b.ratioRow(fmt.Sprintf("SQLite sink, %d upserts", b.src.rows), "multi-row INSERT, 1 tx", a.rate, base, 0.5)
	return nil
}

// multiRowInsert inserts rows with statements of per rows each, prepared
// once, in one transaction.
func multiRowInsert(ctx context.Context, db *sql.DB, prefix string, rows [][5]string, per int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	stmtFor := func(k int) (*sql.Stmt, error) {
		var sb strings.Builder
		sb.WriteString(prefix)
		for i := range k {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?)")
		}
		return tx.PrepareContext(ctx, sb.String())
	}
	full, err := stmtFor(per)
	if err != nil {
		return err
	}
	args := make([]any, 0, per*5)
	for lo := 0; lo < len(rows); lo += per {
		chunk := rows[lo:min(lo+per, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r[0], r[1], r[2], r[3], r[4])
		}
		st := full
		if len(chunk) < per {
			if st, err = stmtFor(len(chunk)); err != nil {
				return err
			}
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("rows %d-%d: %w", lo+1, lo+len(chunk), err)
		}
	}
	return tx.Commit()
}

// --- MariaDB ---

func (b *bench) applyMySQL(ctx context.Context) error {
	cfg, err := gomysql.ParseDSN(b.myURL)
	if err != nil {
		return fmt.Errorf("TRIBUTARY_TEST_MYSQL_URL: %w", err)
	}
	dbName := "bench_sink_" + b.runID
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		return fmt.Errorf("create database %s: %w", dbName, err)
	}
	b.cleanup = append(b.cleanup, func() {
		if b.o.keep {
			return
		}
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + dbName); err != nil {
			b.logf("drop database %s: %v", dbName, err)
		}
	})
	cfg.DBName = dbName
	a, err := b.applySink(ctx, "mysql-sink", fmt.Sprintf(`  - name: bench-mysql
    type: mysql
    dsn: '%s'
    topics: [%s]
    table_name_format: '%s.$${source.table}' # $$: not an environment reference
`, cfg.FormatDSN(), b.src.topic, dbName))
	if err != nil {
		return err
	}
	// The baseline loads a local file and needs the UTC session the sink
	// uses, so DATETIME values mean the same.
	cfg.AllowAllFiles = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var count, next int64
	if err := db.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM items), (SELECT max(next_offset) FROM tributary_offsets WHERE sink_name = 'bench-mysql' AND kafka_partition >= 0)").Scan(&count, &next); err != nil {
		return fmt.Errorf("check copy: %w", err)
	}
	if err := b.checkCount("mysql sink", count, next); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE bare LIKE items"); err != nil {
		return fmt.Errorf("create baseline table: %w", err)
	}
	var localInfile int
	if err := db.QueryRowContext(ctx, "SELECT @@local_infile").Scan(&localInfile); err != nil {
		return fmt.Errorf("read @@local_infile: %w", err)
	}
	var el time.Duration
	var baseName string
	if localInfile == 1 {
		baseName = "LOAD DATA LOCAL INFILE"
		t := time.Now()
		res, err := db.ExecContext(ctx, "LOAD DATA LOCAL INFILE '"+b.src.flatFile+"' INTO TABLE bare ("+srcColumns+")")
		if err != nil {
			return fmt.Errorf("baseline LOAD DATA: %w", err)
		}
		el = time.Since(t)
		if n, _ := res.RowsAffected(); n != int64(b.src.rows) {
			return fmt.Errorf("baseline LOAD DATA loaded %d rows, want %d", n, b.src.rows)
		}
	} else {
		// The server refuses LOAD DATA LOCAL: the next strongest baseline.
		baseName = "multi-row INSERT, 1 tx (local_infile is off)"
		rows, err := b.src.flatRows()
		if err != nil {
			return err
		}
		t := time.Now()
		if err := multiRowInsert(ctx, db, "INSERT INTO bare ("+srcColumns+") VALUES ", rows, 1000); err != nil {
			return fmt.Errorf("baseline insert: %w", err)
		}
		el = time.Since(t)
	}
	base := rate(b.src.rows, el)
	b.logf("mysql baseline: %s of %d rows in %s (%.0f rows/s)", baseName, b.src.rows, el.Round(time.Millisecond), base)
	b.ratioRow(fmt.Sprintf("MariaDB sink, %d upserts", b.src.rows), baseName, a.rate, base, 0.4)
	return nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// sourceLog is the topic every sink applies: a PostgreSQL table snapshotted
// into an embedded log by the real pipeline, plus the same rows exported for
// the baselines.
type sourceLog struct {
	url     string // the source database
	dataDir string // embedded log folder (with the _schemas topic)
	topic   string
	rows    int
	// pgFile holds the rows in PostgreSQL's COPY text form.
	pgFile string
	// flatFile holds them tab-separated with the timestamp as UTC
	// 'YYYY-MM-DD HH:MM:SS.ffffff' and the decimal as text: LOAD DATA's
	// default format, and the values the SQLite and MariaDB baselines insert.
	flatFile string
}

const (
	srcTable   = "items"
	srcColumns = "id, name, amount, at, payload"
	// srcDDL mixes the common kinds: integer key, short text, exact decimal,
	// timestamptz and about 150 bytes of text that does not compress away.
	srcDDL = "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2) NOT NULL, at timestamptz NOT NULL, payload text NOT NULL)"
	srcGen = "INSERT INTO items SELECT g, 'name-' || g, (g % 10000000) / 100.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1.25 second', " +
		"substr(md5(g::text) || md5((g+1)::text) || md5((g+2)::text) || md5((g+3)::text) || md5((g+4)::text), 1, 150) FROM generate_series($1::bigint, $2::bigint) g"
)

// prepareSource fills a source table and snapshots it into an embedded log
// with `snapshot: initial_only` (the process exits when the snapshot is in
// the log).
func (b *bench) prepareSource(ctx context.Context) error {
	db := "bench_sinksrc_" + b.runID
	u, err := b.createDB(ctx, db)
	if err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Errorf("connect %s: %w", db, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, srcDDL); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	n := b.o.rows
	b.logf("source: generating %d rows in %s", n, db)
	t := time.Now()
	const chunk = 500_000
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		if _, err := c.Exec(ctx, srcGen, lo, hi); err != nil {
			return fmt.Errorf("insert rows %d-%d: %w", lo, hi, err)
		}
	}
	if _, err := c.Exec(ctx, "VACUUM ANALYZE items"); err != nil {
		return fmt.Errorf("vacuum analyze: %w", err)
	}
	s := &sourceLog{
		url:      u,
		dataDir:  filepath.Join(b.work, "source", "log"),
		topic:    "benchsink" + b.runID + ".public." + srcTable,
		rows:     n,
		pgFile:   filepath.Join(b.work, "rows.pg.tsv"),
		flatFile: filepath.Join(b.work, "rows.flat.tsv"),
	}
	for _, e := range []struct{ file, query string }{
		{s.pgFile, "COPY (SELECT " + srcColumns + " FROM items ORDER BY id) TO STDOUT"},
		{s.flatFile, "COPY (SELECT id, name, amount, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), payload FROM items ORDER BY id) TO STDOUT"},
	} {
		f, err := os.Create(e.file)
		if err != nil {
			return err
		}
		if _, err := c.PgConn().CopyTo(ctx, f, e.query); err != nil {
			f.Close()
			return fmt.Errorf("export %s: %w", e.file, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	b.logf("source: table and exports ready in %s", time.Since(t).Round(time.Second))

	l := freeListeners()
	yaml := l.header(s.dataDir) + fmt.Sprintf(`sources:
  - name: benchsrc
    type: postgres
    url: %s
    tables: [public.%s]
    topic_prefix: benchsink%s
    slot: bench_sink_%s
    snapshot: initial_only
`, u, srcTable, b.runID, b.runID)
	t = time.Now()
	p, _, err := b.runPipeline(ctx, filepath.Join(b.work, "source"), yaml, l.http)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Minute):
		_, _ = p.stop()
		return fmt.Errorf("snapshot into the log not done after 20 min; log tail:\n%s", p.tail())
	}
	if p.waitErr != nil {
		return fmt.Errorf("tributary initial_only exited with %v; log tail:\n%s", p.waitErr, p.tail())
	}
	b.logf("source: %d rows snapshotted into topic %s in %s", n, s.topic, time.Since(t).Round(time.Millisecond))
	b.src = s
	return nil
}

// flatRows reads the flat export into memory (fields are slices of one
// buffer), so the SQLite and MariaDB baselines time only the inserts.
func (s *sourceLog) flatRows() ([][5]string, error) {
	data, err := os.ReadFile(s.flatFile)
	if err != nil {
		return nil, err
	}
	out := make([][5]string, 0, s.rows)
	text := string(data)
	for len(text) > 0 {
		nl := strings.IndexByte(text, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("%s: line %d has no newline", s.flatFile, len(out)+1)
		}
		line := text[:nl]
		text = text[nl+1:]
		var r [5]string
		for i := range 4 {
			tab := strings.IndexByte(line, '\t')
			if tab < 0 {
				return nil, fmt.Errorf("%s: line %d has %d fields, want 5", s.flatFile, len(out)+1, i+1)
			}
			r[i], line = line[:tab], line[tab+1:]
		}
		r[4] = line
		out = append(out, r)
	}
	if len(out) != s.rows {
		return nil, fmt.Errorf("%s: %d rows, want %d", s.flatFile, len(out), s.rows)
	}
	return out, nil
}

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/connectors/mysql"
	"github.com/tributary-cdc/tributary/connectors/postgres"
	"github.com/tributary-cdc/tributary/connectors/sqlite"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/source"
	"github.com/tributary-cdc/tributary/verify"
)

func newVerifyCmd() *cobra.Command {
	var file string
	var wait time.Duration
	var maxDiffs, bucketRows int
	cmd := &cobra.Command{
		Use:   "verify -f FILE SINK",
		Short: "Compare each source table with its copy in sink SINK",
		Long: `Compare every table the pipeline's PostgreSQL and MySQL sources capture (as
their own table discovery finds them: a partitioned table once, under its
topic) whose topic sink SINK consumes with its copy: row counts, then
checksums of hash ranges of
the primary key, then the rows of the ranges that differ, printing each key
that is missing in the copy, extra in the copy, or different (with the
differing columns).

Values are normalised before they are compared, so copies in another engine
compare fairly: numbers as canonical decimals, timestamps as UTC
microseconds, booleans as 1/0, bytes as hex, JSON re-encoded with sorted
keys, char(n) without its trailing spaces, text as is. A copy's column is
found under the source's spelling of its name or its Avro field name.
Memory stays bounded: each pass streams the table.

verify reads the source and the copy at slightly different times: run it
when the copy has caught up (writes paused), or give --wait to compare
again until the copy converges; the last pass prints its full report.

Exit codes: 0 every copy equals its source, 1 a difference (or a failure),
2 bad config or arguments.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPipeline(file)
			if err != nil {
				return err
			}
			log := newLogger(p.Worker, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			plan, err := planVerify(ctx, p, args[0], log)
			if err != nil {
				var ue *exitError
				if errors.As(err, &ue) {
					return err
				}
				return runtimeErr(err)
			}
			defer plan.close()
			opt := verify.Options{MaxDiffs: maxDiffs, BucketRows: bucketRows, Progress: func(pr verify.Progress) {
				pct := ""
				if pr.Total > 0 {
					pct = fmt.Sprintf(" (%d%%)", pr.Rows*100/pr.Total)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s pass, %s: %d rows read%s\n", pr.Table, pr.Pass, pr.Side, pr.Rows, pct)
			}}
			return verifyUntil(ctx, wait, time.Now, func(ctx context.Context) (*verifyPass, error) {
				return plan.compare(ctx, opt)
			}, cmd.OutOrStdout(), args[0])
		},
	}
	addFileFlag(cmd, &file)
	cmd.Flags().DurationVar(&wait, "wait", 0, "compare again (every second) until the copy equals the source or this long has passed")
	cmd.Flags().IntVar(&maxDiffs, "max-diffs", 100, "most differing keys printed per table")
	cmd.Flags().IntVar(&bucketRows, "range-rows", 10000, "rows per checksum range")
	return cmd
}

type verifyPair struct {
	label    string
	src, dst verify.Side
	exclude  map[string]bool
	key      []string // key_columns of a source table without primary key
}

type verifyPlan struct {
	pairs []verifyPair
	dbs   []*sql.DB
}

func (vp *verifyPlan) close() {
	for _, db := range vp.dbs {
		_ = db.Close()
	}
}

// verifyPass is the outcome of comparing every pair once.
type verifyPass struct {
	items []verifyItem
}

type verifyItem struct {
	label string
	r     *verify.Result
}

func (vp *verifyPass) equal() bool {
	for _, it := range vp.items {
		if !it.r.Equal() {
			return false
		}
	}
	return true
}

// compare compares every pair once.
func (vp *verifyPlan) compare(ctx context.Context, opt verify.Options) (*verifyPass, error) {
	pass := &verifyPass{}
	for _, p := range vp.pairs {
		o := opt
		o.Exclude = p.exclude
		o.Key = p.key
		r, err := verify.Compare(ctx, p.src, p.dst, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.label, err)
		}
		pass.items = append(pass.items, verifyItem{p.label, r})
	}
	return pass, nil
}

// verifyUntil compares until the copy equals the source or wait has passed
// since the start (then, every second). The last pass always prints its
// full report, whether it ended in time or not: the decision to stop is
// taken after a pass, with the clock read then, so a pass that starts
// before the deadline and ends after it is the final one and reports.
func verifyUntil(ctx context.Context, wait time.Duration, now func() time.Time,
	compare func(context.Context) (*verifyPass, error), out io.Writer, sinkName string) error {
	deadline := now().Add(wait)
	for {
		pass, err := compare(ctx)
		if err != nil {
			return runtimeErr(err)
		}
		if pass.equal() {
			pass.report(out)
			return nil
		}
		if !now().Before(deadline) {
			pass.report(out)
			return runtimeErr(fmt.Errorf("sink %s: the copy differs from the source", sinkName))
		}
		select {
		case <-ctx.Done():
			return runtimeErr(ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// report prints every table's result, its problems and differing keys.
func (vp *verifyPass) report(out io.Writer) {
	bad := 0
	for _, it := range vp.items {
		r := it.r
		state := "equal"
		if !r.Equal() {
			state = "DIFFERENT"
			bad++
		}
		fmt.Fprintf(out, "%s: %s: source %d rows, copy %d rows; %d missing, %d extra, %d different (%d of %d ranges differ)\n",
			it.label, state, r.SourceRows, r.CopyRows, r.Missing, r.Extra, r.Diff, r.DiffBuckets, r.Buckets)
		for _, pr := range r.Problems {
			fmt.Fprintf(out, "  problem: %s\n", pr)
		}
		for _, d := range r.Diffs {
			fmt.Fprintf(out, "  %s key %s", d.Kind, d.Key)
			if len(d.Columns) > 0 {
				fmt.Fprintf(out, ": %s", strings.Join(d.Columns, "; "))
			}
			fmt.Fprintln(out)
		}
		if n := r.Missing + r.Extra + r.Diff; n > int64(len(r.Diffs)) {
			fmt.Fprintf(out, "  ... and %d more\n", n-int64(len(r.Diffs)))
		}
	}
	fmt.Fprintf(out, "%d tables compared, %d equal, %d different\n", len(vp.items), len(vp.items)-bad, bad)
}

// planVerify finds the source tables whose topics the sink consumes and
// opens the source databases and the copy.
func planVerify(ctx context.Context, p *config.Pipeline, name string, log *slog.Logger) (*verifyPlan, error) {
	spec, target, cfg, err := openSinkConfig(p, name, log)
	if err != nil {
		return nil, usageErr(err)
	}
	format := spec.TableNameFormat
	if format == "" {
		format = target.DefaultTableNameFormat()
	}
	_ = target.Close()
	vp := &verifyPlan{}
	ok := false
	defer func() {
		if !ok {
			vp.close()
		}
	}()
	var dst verify.Side
	switch c := cfg.(type) {
	case *sqlite.Config:
		if _, err := os.Stat(c.Path); err != nil {
			return nil, fmt.Errorf("sink %s: copy %s: %w", name, c.Path, err)
		}
		dst.Dialect = verify.SQLite
		dst.DB, err = verify.OpenSQLite(c.Path)
	case *postgres.SinkConfig:
		dst.Dialect = verify.Postgres
		dst.DB, err = verify.OpenPostgres(c.URL)
	case *mysql.SinkConfig:
		dst.Dialect = verify.MySQL
		dst.DB, err = verify.OpenMySQL(c.DSN)
	default:
		return nil, usageErr(fmt.Errorf("sink %s: verify does not know sink config %T", name, cfg))
	}
	if err != nil {
		return nil, fmt.Errorf("sink %s: opening the copy: %w", name, err)
	}
	vp.dbs = append(vp.dbs, dst.DB)

	var re *regexp.Regexp
	if spec.TopicsRegex != "" {
		re = regexp.MustCompile("^(?:" + spec.TopicsRegex + ")$")
	}
	consumes := func(topic string) bool {
		if re != nil {
			return re.MatchString(topic) && !strings.HasPrefix(topic, "_")
		}
		for _, t := range spec.Topics {
			if t == topic {
				return true
			}
		}
		return false
	}
	for _, sc := range p.Sources {
		d, found := source.Lookup(sc.Type)
		if !found {
			return nil, usageErr(sc.Errorf("type", "unknown source type %q", sc.Type))
		}
		scfg := d.NewConfig()
		if err := sc.Decode(scfg); err != nil {
			return nil, usageErr(err)
		}
		var src verify.Side
		var tables []source.CapturedTable
		var dbName string
		switch c := scfg.(type) {
		case *postgres.Config:
			src.Dialect = verify.Postgres
			if src.DB, err = verify.OpenPostgres(c.URL); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", sc.Path, sc.Name, err)
			}
			if pc, err := pgx.ParseConfig(c.URL); err == nil {
				dbName = pc.Database
			}
			tables, err = postgres.CapturedTables(ctx, c)
		case *mysql.Config:
			src.Dialect = verify.MySQL
			dsn, derr := mysql.VerifyDSN(c)
			if derr != nil {
				return nil, usageErr(fmt.Errorf("%s (%s): %w", sc.Path, sc.Name, derr))
			}
			if src.DB, err = verify.OpenMySQL(dsn); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", sc.Path, sc.Name, err)
			}
			tables, err = mysql.CapturedTables(ctx, c)
		default:
			continue
		}
		if src.DB != nil {
			vp.dbs = append(vp.dbs, src.DB)
		}
		if err != nil {
			return nil, fmt.Errorf("%s (%s): listing the captured tables: %w", sc.Path, sc.Name, err)
		}
		for _, t := range tables {
			if !consumes(t.Topic) {
				continue
			}
			db := dbName
			if src.Dialect == verify.MySQL {
				db = t.Schema
			}
			copyName := strings.NewReplacer("${topic}", t.Topic, "${source.db}", db, "${source.schema}", t.Schema, "${source.table}", t.Table).Replace(format)
			s, dt := src, dst
			s.Schema, s.Table = t.Schema, t.Table
			if sch, tbl, dotted := strings.Cut(copyName, "."); dotted {
				dt.Schema, dt.Table = sch, tbl
			} else {
				dt.Table = copyName
			}
			vp.pairs = append(vp.pairs, verifyPair{
				label:   fmt.Sprintf("%s -> %s", s, dt),
				src:     s,
				dst:     dt,
				exclude: verifyExcludes(spec, t.Topic),
				key:     t.KeyColumns,
			})
		}
	}
	if len(vp.pairs) == 0 {
		return nil, usageErr(fmt.Errorf("sink %s: no PostgreSQL or MySQL source table of %s goes to a topic this sink consumes", name, p.File))
	}
	ok = true
	return vp, nil
}

// verifyExcludes lists the columns fields.exclude leaves out of the copy.
// (fields.include is not applied: verify then reports the missing columns.)
func verifyExcludes(spec sink.Spec, topic string) map[string]bool {
	out := map[string]bool{}
	for _, e := range spec.FieldsExclude {
		if t, col, ok := strings.Cut(e, ":"); ok {
			if t == topic {
				out[col] = true
			}
			continue
		}
		out[e] = true
	}
	return out
}

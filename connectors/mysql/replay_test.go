package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-cdc/tributary/connectors/mysql"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/sink/sinktest"
)

var errCrash = errors.New("simulated crash")

// replayItems writes rows id 1..n named name to table, with the sink's
// offsets, in one transaction of target.
func replayItems(t *testing.T, target sink.Target, table, sinkName, name string, n int, next int64) {
	t.Helper()
	ctx := context.Background()
	id := &sink.ColumnSpec{Name: "id", Type: sink.ColumnType{Kind: sink.KindInt64}, Key: true}
	spec := &sink.TableSpec{Name: table, Columns: []*sink.ColumnSpec{id, {Name: "name", Type: sink.ColumnType{Kind: sink.KindString}}},
		Key: []*sink.ColumnSpec{id}}
	if err := target.EnsureTable(ctx, spec); err != nil {
		t.Fatal(err)
	}
	cs := &sink.ColSet{Columns: spec.Columns}
	var changes []sink.Change
	for i := 1; i <= n; i++ {
		changes = append(changes, sink.Change{Op: sink.OpUpsert, Key: []any{int64(i)}, Cols: cs, Row: []any{int64(i), name}})
	}
	tx, err := target.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(ctx, spec, changes); err != nil {
		t.Fatal(err)
	}
	if err := tx.StoreOffsets(ctx, sinkName, map[sink.TopicPartition]int64{{Topic: "topic", Partition: 0}: next, {Topic: "", Partition: -1}: 0}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// replayState is the live copy as a reader sees it: its rows and the
// offsets the sink resumes from after opening the target again.
func replayState(t *testing.T, dsn string, db *sql.DB) (rows string, offsets map[sink.TopicPartition]int64) {
	t.Helper()
	ctx := context.Background()
	target := mysql.NewSinkTarget("s1", mysql.SinkConfig{DSN: dsn}, sinktest.Logger())
	if err := target.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	tx, err := target.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	offsets, err = tx.LoadOffsets(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	var ids, names []string
	r, err := db.Query("SELECT id, name FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var id, name string
		if err := r.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		ids, names = append(ids, id), append(names, name)
	}
	return strings.Join(ids, ",") + " " + strings.Join(names, ","), offsets
}

// TestReplaySwapCrash stops a shadow replay's swap at each step, as a crash
// (kill -9) there would, then opens the target again as the next worker
// or replay does: the live copy is the old one with its old offsets, or
// the new one with its new offsets, never a mix; and a reader querying the
// live table during the swap sees the old rows or the new ones, never an
// error or a half-built table.
func TestReplaySwapCrash(t *testing.T) {
	oldState := "1,2,3 old,old,old"
	newState := "1,2,3,4,5 new,new,new,new,new"
	oldOffsets := map[sink.TopicPartition]int64{{Topic: "topic", Partition: 0}: 3, {Topic: "", Partition: -1}: 0}
	newOffsets := map[sink.TopicPartition]int64{{Topic: "topic", Partition: 0}: 9, {Topic: "", Partition: -1}: 0}
	for _, c := range []struct {
		crashAt   string // "" for no crash
		swap      bool   // the swap runs
		wantState string
		want      map[sink.TopicPartition]int64
	}{
		{"before the swap", false, oldState, oldOffsets},
		{"renamed", true, newState, newOffsets},
		{"merged", true, newState, newOffsets},
		{"", true, newState, newOffsets},
	} {
		name := c.crashAt
		if name == "" {
			name = "no crash"
		}
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			ctx := context.Background()
			dsn, dbName, db := sinkTestDB(t)
			live := mysql.NewSinkTarget("s1", mysql.SinkConfig{DSN: dsn}, sinktest.Logger())
			live.SetReplayStep(func(_ context.Context, step string) error {
				if step == c.crashAt {
					return errCrash
				}
				return nil
			})
			if err := live.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			defer live.Close()
			replayItems(t, live, "items", "s1", "old", 3, 3)
			shadow, err := live.ReplayShadow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, shadowName := shadow.ReplayShadowName("", "items")
			replayItems(t, shadow, shadowName, "s1"+sink.ReplayShadowSuffix, "new", 5, 9)

			// A reader on its own connection during the swap.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var seen sync.Map
			var readErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var n int
					if err := db.QueryRow("SELECT COUNT(*) FROM items").Scan(&n); err != nil {
						readErr = err
						return
					}
					seen.Store(n, true)
				}
			}()
			if c.swap {
				err = shadow.ReplaySwap(ctx, "s1", "s1"+sink.ReplayShadowSuffix, []sink.ShadowTable{{Name: "items", ShadowName: shadowName}})
				if c.crashAt == "" && err != nil {
					t.Fatalf("swap: %v", err)
				}
				if c.crashAt != "" && !errors.Is(err, errCrash) {
					t.Fatalf("swap stopped at %q with %v, want the simulated crash", c.crashAt, err)
				}
			}
			close(stop)
			wg.Wait()
			if readErr != nil {
				t.Errorf("a reader during the swap got: %v", readErr)
			}
			var counts []int
			seen.Range(func(k, _ any) bool { counts = append(counts, k.(int)); return true })
			sort.Ints(counts)
			for _, n := range counts {
				if n != 3 && n != 5 {
					t.Errorf("a reader during the swap saw %d rows (counts seen: %v), want 3 or 5", n, counts)
				}
			}

			// Open again, twice: the second opening must change nothing.
			for i := range 2 {
				state, offsets := replayState(t, dsn, db)
				if state != c.wantState {
					t.Errorf("opening %d: live copy %q, want %q", i+1, state, c.wantState)
				}
				if !reflect.DeepEqual(offsets, c.want) {
					t.Errorf("opening %d: offsets %v, want %v", i+1, offsets, c.want)
				}
			}
			var left []string
			r, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name NOT IN ('items', ?)", dbName, sink.OffsetsTable)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for r.Next() {
				var n string
				if err := r.Scan(&n); err != nil {
					t.Fatal(err)
				}
				left = append(left, n)
			}
			if c.swap && c.crashAt != "renamed" && c.crashAt != "merged" && len(left) > 0 {
				t.Errorf("tables left after a complete swap: %v", left)
			}
			for _, n := range left {
				if strings.Contains(n, "__swap_") {
					t.Errorf("swap offsets table %s left after opening the target", n)
				}
			}
			var stray int
			if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE sink_name <> 's1'", sink.OffsetsTable)).Scan(&stray); err != nil {
				t.Fatal(err)
			}
			if stray != 0 {
				t.Errorf("%d offsets rows of other sink names (the shadow's?) in %s", stray, sink.OffsetsTable)
			}
		})
	}
}

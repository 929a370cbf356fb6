package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func subjectVersions(t *testing.T, registryURL, subject string) []int {
	t.Helper()
	resp, err := http.Get(registryURL + "/subjects/" + subject + "/versions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vs []int
	if resp.StatusCode == http.StatusOK {
		_ = json.NewDecoder(resp.Body).Decode(&vs)
	}
	return vs
}

// TestPGSchemaChange: ADD COLUMN, DROP COLUMN and a type change while
// streaming each register a new schema version, and events follow them.
func TestPGSchemaChange(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, "CREATE TABLE items (id int PRIMARY KEY, a text, b int)")
			pgExec(t, c, "INSERT INTO items VALUES (1, 'one', 1)")
			prefix := uniq("ddl")
			slot := uniq("slot")
			w := startWorker(t, le, pgPipeline(t, le, db, prefix, slot, []string{"items"}, ""))
			topic := prefix + ".public.items"
			r := newReader(t, le, topic)
			r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 1 })

			pgExec(t, c, "ALTER TABLE items ADD COLUMN c text")
			pgExec(t, c, "INSERT INTO items VALUES (2, 'two', 2, 'added')")
			pgExec(t, c, "ALTER TABLE items DROP COLUMN a")
			pgExec(t, c, "INSERT INTO items VALUES (3, 3, 'dropped-a')")
			pgExec(t, c, "ALTER TABLE items ALTER COLUMN b TYPE bigint")
			pgExec(t, c, "INSERT INTO items VALUES (4, 5000000000, 'bigint')")
			// A constant default is the new field's default; a volatile
			// one is none, and the source asks for the table's rows to be
			// read again (PostgreSQL filled them with values no event has).
			pgExec(t, c, "ALTER TABLE items ADD COLUMN points int NOT NULL DEFAULT 7")
			pgExec(t, c, "INSERT INTO items (id, b) VALUES (5, 5)")
			pgExec(t, c, "ALTER TABLE items ADD COLUMN token float8 DEFAULT random()")
			pgExec(t, c, "INSERT INTO items (id, b) VALUES (6, 6)")

			evs := r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 6 })
			byID := map[int64]map[string]any{}
			for _, e := range evs {
				if a := e.after(); a != nil {
					byID[num(a["id"])] = a
				}
			}
			if got := byID[2]["c"]; got != "added" {
				t.Fatalf("after ADD COLUMN: c = %v in %v", got, byID[2])
			}
			if _, has := byID[3]["a"]; has && byID[3]["a"] != nil {
				t.Fatalf("after DROP COLUMN a still carries a value: %v", byID[3])
			}
			if got := num(byID[4]["b"]); got != 5000000000 {
				t.Fatalf("after type change: b = %v", byID[4]["b"])
			}
			if got := num(byID[5]["points"]); got != 7 {
				t.Fatalf("after ADD COLUMN points DEFAULT 7: points = %v", byID[5]["points"])
			}
			vs := subjectVersions(t, le.registryURL, topic+"-value")
			if len(vs) < 6 {
				t.Fatalf("value subject has versions %v, want 6 (initial + 5 changes)", vs)
			}
			fieldDefault := func(version int, name string) (any, bool) {
				t.Helper()
				resp, err := http.Get(fmt.Sprintf("%s/subjects/%s-value/versions/%d/schema", le.registryURL, topic, version))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var env struct {
					Fields []struct {
						Type json.RawMessage
					}
				}
				if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
					t.Fatal(err)
				}
				var before []json.RawMessage
				var value struct{ Fields []map[string]any }
				if err := json.Unmarshal(env.Fields[0].Type, &before); err != nil || json.Unmarshal(before[1], &value) != nil {
					t.Fatalf("version %d: no before record", version)
				}
				for _, f := range value.Fields {
					if f["name"] == name {
						d, has := f["default"]
						return d, has
					}
				}
				t.Fatalf("version %d has no field %s", version, name)
				return nil, false
			}
			if d, _ := fieldDefault(vs[len(vs)-2], "points"); d != float64(7) {
				t.Errorf("points: default %v, want 7", d)
			}
			if d, _ := fieldDefault(vs[len(vs)-1], "token"); d != nil {
				t.Errorf("token: default %v, want none (random() is not a constant)", d)
			}
			// The re-read is done: an incremental snapshot of the table
			// brings every row's token, which no change event carried.
			tokens := map[int64]float64{}
			rows, err := c.Query(context.Background(), "SELECT id, token FROM items")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				var tok float64
				if err := rows.Scan(&id, &tok); err != nil {
					t.Fatal(err)
				}
				tokens[id] = tok
			}
			rows.Close()
			r.pollUntil(t, time.Minute, func(evs []event) bool {
				latest := map[int64]map[string]any{}
				for _, e := range evs {
					if a := e.after(); a != nil {
						latest[num(a["id"])] = a
					}
				}
				for id, tok := range tokens {
					if got, _ := latest[id]["token"].(float64); got != tok {
						return false
					}
				}
				return true
			})
			w.stop(t)
			out := w.output()
			if !strings.Contains(out, "table=public.items kind=on_demand rows=6") {
				t.Errorf("want the incremental re-read of items (6 rows); worker output:\n%s", out)
			}
			if !strings.Contains(out, "non-constant default; existing rows need a re-read of the table") ||
				!strings.Contains(out, "column=token") || strings.Contains(out, "column=points") {
				t.Errorf("want one re-read warning, for column token; worker output:\n%s", out)
			}
		})
	}
}

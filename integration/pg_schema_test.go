package integration

import (
	"encoding/json"
	"net/http"
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

			evs := r.pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 4 })
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
			vs := subjectVersions(t, le.registryURL, topic+"-value")
			if len(vs) < 4 {
				t.Fatalf("value subject has versions %v, want 4 (initial + 3 changes)", vs)
			}
			w.stop(t)
		})
	}
}

package postgres

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
)

func TestOffsetRoundTripThroughJSON(t *testing.T) {
	cases := []pgOffset{
		{LSN: 0x1A2B3C4D5E, LSNCommit: 0x1A2B3C4D5E, LSNProc: 0x1A2B3C4D5E, TxID: 1234, TsUsec: 1700000000123456},
		{LSN: 42, LSNCommit: 42, LSNProc: 42, TxID: 7, TsUsec: 1, Snapshot: true, LastSnapshotRecord: true},
		// Snapshot progress: tables captured and snapshots still to do.
		{LSN: 42, LSNCommit: 42, LSNProc: 42, TsUsec: 1, Snapshot: true, Tables: []string{"public.a", "s.b"},
			Snaps: []snapTask{{Table: "s.b", Kind: snapKindInitial, After: []string{"17", "it's"}, Rows: 20000},
				{Table: "public.a", Kind: snapKindAdded, Where: "id > 5"}}},
		{LSN: 43, LSNCommit: 43, LSNProc: 43, TsUsec: 1, Tables: []string{"public.a"}, Snaps: []snapTask{}},
	}
	for _, o := range cases {
		b, err := json.Marshal(o.toMap())
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		got, err := parseOffset(m)
		if err != nil {
			t.Fatalf("parse %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Fatalf("round trip of %s: got %+v, want %+v", b, got, o)
		}
		if got.resumeLSN() != o.LSNCommit {
			t.Fatalf("resume %s, want %s", got.resumeLSN(), o.LSNCommit)
		}
	}
}

func TestOffsetFieldNamesAreDebeziums(t *testing.T) {
	m := pgOffset{LSN: 1, LSNCommit: 2, LSNProc: 3, TxID: 4, TsUsec: 5, Snapshot: true, LastSnapshotRecord: true}.toMap()
	for _, k := range []string{"lsn", "lsn_commit", "lsn_proc", "txId", "ts_usec", "snapshot", "last_snapshot_record"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %q in %v", k, m)
		}
	}
	if _, ok := (pgOffset{LSN: 1}).toMap()["snapshot"]; ok {
		t.Error("streaming offset carries snapshot")
	}
}

func TestParseDebeziumOffsets(t *testing.T) {
	// As Debezium's PostgresOffsetContext stores them.
	o, err := parseOffset(map[string]any{"lsn_proc": float64(24023128), "lsn_commit": float64(24023128), "lsn": float64(24023128),
		"txId": float64(555), "ts_usec": float64(1482918357011699)})
	if err != nil {
		t.Fatal(err)
	}
	if o.resumeLSN() != 24023128 || o.TxID != 555 || o.snapshotIncomplete() {
		t.Fatalf("%+v", o)
	}
	// Old Debezium offsets: only lsn.
	o, err = parseOffset(map[string]any{"lsn": json.Number("100"), "txId": json.Number("5")})
	if err != nil || o.resumeLSN() != 100 {
		t.Fatalf("%+v %v", o, err)
	}
	// In the middle of a Debezium snapshot.
	o, err = parseOffset(map[string]any{"lsn": float64(7), "snapshot": true, "last_snapshot_record": false})
	if err != nil || !o.snapshotIncomplete() {
		t.Fatalf("%+v %v", o, err)
	}
	// LSN written as text.
	o, err = parseOffset(map[string]any{"lsn": "16/B374D848"})
	want, _ := pglogrepl.ParseLSN("16/B374D848")
	if err != nil || o.LSN != want {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range []map[string]any{
		{"txId": float64(1)},
		{"lsn": "nope"},
		{"lsn": float64(-5)},
		{"lsn": 1.5},
		{"lsn": float64(1), "snapshot": "maybe"},
	} {
		if _, err := parseOffset(bad); err == nil {
			t.Errorf("accepted %v", bad)
		} else if !strings.Contains(err.Error(), "offset") {
			t.Errorf("error does not say offset: %v", err)
		}
	}
}

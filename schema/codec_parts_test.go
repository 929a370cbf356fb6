package schema

import (
	"bytes"
	"errors"
	"testing"
)

// TestPartsMatchAppendEnvelope builds events part by part and checks the
// bytes against AppendKey and AppendEnvelope, for a full row, a row of
// nils, and a table without a key.
func TestPartsMatchAppendEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table *Table
		src   *SourceBlock
		srcV  []any
		rows  [][]any
	}{
		{"all kinds", allKindsTable(), PostgresSource(), pgSource(int64(99)), [][]any{fullRow(), make([]any, len(fullRow()))}},
		{"no key", func() *Table { t := mysqlUsersTable(); t.Key = nil; return t }(), MySQLSource(),
			[]any{"3.1.2.Final", "mysql", "dbserver1", int64(1766231231000), "true", "demo", nil, nil, nil,
				"users", int64(1), nil, "mysql-bin.000003", int64(7758), int32(0), int64(10), nil},
			[][]any{{int32(20), "CDC-Test", nil, "2025-12-20T11:43:41Z"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCodec(tc.table, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			c.SetIDs(31, 32)
			if c.NumColumns() != len(tc.table.Columns) {
				t.Fatalf("NumColumns %d, want %d", c.NumColumns(), len(tc.table.Columns))
			}
			for _, op := range []Op{OpRead, OpCreate} {
				for ri, row := range tc.rows {
					e := &Envelope{Op: op, After: row, Source: tc.srcV, TsUs: 1700000000987654}
					wantV, err := c.AppendEnvelope(nil, e)
					if err != nil {
						t.Fatal(err)
					}
					wantK, err := c.AppendKey(nil, row)
					if err != nil {
						t.Fatal(err)
					}
					v := c.AppendAfterHead([]byte("pre"))
					spans := make([][2]int, len(row))
					for i, x := range row {
						start := len(v)
						if v, err = c.AppendColumn(v, i, x); err != nil {
							t.Fatal(err)
						}
						spans[i] = [2]int{start, len(v)}
						opt, nullIdx, valIdx := c.ColumnUnion(i)
						if opt != tc.table.Columns[i].Optional {
							t.Errorf("column %d: ColumnUnion optional %v", i, opt)
						}
						if opt && x == nil && (len(v)-start != 1 || v[start] != nullIdx) {
							t.Errorf("column %d: null written as % x, ColumnUnion says %d", i, v[start:], nullIdx)
						}
						if opt && x != nil && v[start] != valIdx {
							t.Errorf("column %d: value starts with %d, ColumnUnion says %d", i, v[start], valIdx)
						}
					}
					if v, err = c.AppendTail(v, e); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(v[3:], wantV) || string(v[:3]) != "pre" {
						t.Errorf("op %c row %d: value parts\n% x\nwant\n% x", op, ri, v[3:], wantV)
					}
					k := c.AppendKeyHeader(nil)
					for _, ki := range c.KeyColumns() {
						k = append(k, v[spans[ki][0]:spans[ki][1]]...)
					}
					if wantK == nil {
						if len(k) != 0 {
							t.Errorf("row %d: key parts % x for a table without key", ri, k)
						}
					} else if !bytes.Equal(k, wantK) {
						t.Errorf("row %d: key parts\n% x\nwant\n% x", ri, k, wantK)
					}
				}
			}
		})
	}
}

func TestPartsErrors(t *testing.T) {
	c, err := NewCodec(allKindsTable(), PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	dst := []byte("x")
	out, err := c.AppendColumn(dst, 0, "not an int64")
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Column != "id" || ve.Part != "after" || ve.Topic != "rt.public.all_kinds" || string(out) != "x" {
		t.Errorf("AppendColumn wrong type: %v (%+v), dst %q", err, ve, out)
	}
	if _, err := c.AppendColumn(dst, 99, int64(1)); err == nil {
		t.Error("AppendColumn out of range: no error")
	}
	out, err = c.AppendTail(dst, &Envelope{Op: OpRead, Source: []any{"short"}})
	if err == nil || string(out) != "x" {
		t.Errorf("AppendTail short source: %v, dst %q", err, out)
	}
	if _, err := c.AppendTail(dst, &Envelope{Op: 'z', Source: pgSource(nil)}); err == nil {
		t.Error("AppendTail unknown op: no error")
	}
	if got := AppendLong(nil, -3); !bytes.Equal(got, []byte{5}) {
		t.Errorf("AppendLong(-3) = % x", got)
	}
}

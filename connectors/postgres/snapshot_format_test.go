package postgres

import (
	"bytes"
	"context"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-cdc/tributary/schema"
	"github.com/tributary-cdc/tributary/source"
)

// TestSnapshotBinaryMatchesText reads one table through binary COPY and
// through text COPY, in chunks of 7 rows (keyset pagination on a bigint and
// uuid key read back from binary), and checks both give the same records
// byte for byte: every type with a binary appender, NULLs, NaN, infinities,
// -0, empty and escaped text, non-ASCII, a domain.
func TestSnapshotBinaryMatchesText(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE DOMAIN posint AS int`)
	d.exec(`CREATE TABLE fmt (id bigint, u uuid, b bool, s smallint, i int, o oid, r real, f double precision,
		t text, v varchar(20), c char(5), n name, j json, jb jsonb, dom_i posint, PRIMARY KEY (id, u))`)
	d.exec(`INSERT INTO fmt SELECT g, md5(g::text)::uuid, g % 2 = 0, (g % 32767)::smallint, g * 1000, g, g / 3.0, g / 7.0,
		repeat('x', g % 50), 'v' || g, 'c' || (g % 10), 'n' || g, ('{"g": ' || g || '}')::json, ('{"g": ' || g || ', "a": [1, 2]}')::jsonb, g
		FROM generate_series(1, 60) g`)
	d.exec(`INSERT INTO fmt VALUES
		(-9223372036854775808, '00000000-0000-0000-0000-000000000000', NULL, -32768, -2147483648, 4294967295, 'NaN', 'Infinity',
		 E'tab\there\\back\nnew\r', '', '', '', '[]', '{}', NULL),
		(9223372036854775807, 'ffffffff-ffff-ffff-ffff-ffffffffffff', true, 32767, 2147483647, 0, '-Infinity', '-0',
		 'héllo ✓ €', 'ünï', 'é', 'ñ', '"s"', '"s\\u00e9"', -1),
		(0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', false, 0, 0, 1, 3.4028235e38, 2.2250738585072014e-308,
		 NULL, NULL, NULL, NULL, NULL, NULL, 0)`)
	ctx := context.Background()
	rt := newFakeRuntime(t, nil)
	conn, err := driver{}.Open("fmt_"+d.name, d.config("public.fmt"), rt.log)
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*connector)
	meta, err := c.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close(ctx)
	if err := c.resolveTables(ctx, meta); err != nil {
		t.Fatal(err)
	}
	cat, err := pgtypeLoadCatalog(ctx, meta)
	if err != nil {
		t.Fatal(err)
	}
	read := func(binary bool) map[string][]byte {
		st, err := c.snapTable(ctx, rt, c.tables[0], cat, schema.PostgresSource())
		if err != nil {
			t.Fatal(err)
		}
		if !st.plan.binary {
			t.Fatal("table fmt is not read in binary")
		}
		st.plan.binary = binary
		wc, err := pgx.Connect(ctx, d.url)
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close(ctx)
		jobs := make(chan *snapBlock, 4)
		w := &snapWorker{conn: wc, jobs: jobs, chunk: 7}
		e := c.newSnapEncoder(nil, 100, 7)
		e.now = func() time.Time { return time.UnixMicro(1700000000123456) }
		got := map[string][]byte{}
		var recs []source.Record
		done := make(chan error, 1)
		go func() {
			for b := range jobs {
				if b.binary != binary {
					done <- errBlockFormat
					for range jobs {
					}
					return
				}
				batch, err := e.block(b)
				if err != nil {
					done <- err
					for range jobs {
					}
					return
				}
				recs = append(recs, batch.recs...)
				if batch.lastInTable != nil {
					recs = append(recs, *batch.lastInTable, *batch.lastLast)
				}
			}
			done <- nil
		}()
		if err := w.table(ctx, st); err != nil {
			t.Fatalf("binary=%v: %v", binary, err)
		}
		close(jobs)
		if err := <-done; err != nil {
			t.Fatalf("binary=%v: %v", binary, err)
		}
		for i, r := range recs {
			k := string(r.Key)
			if i == len(recs)-1 {
				k += " last"
			}
			if _, dup := got[k]; dup {
				t.Fatalf("binary=%v: key % x read twice", binary, r.Key)
			}
			got[k] = r.Value
		}
		return got
	}
	bin, text := read(true), read(false)
	if len(bin) != 64 || len(text) != 64 { // 63 rows, the last one twice
		t.Fatalf("binary gave %d records, text %d, want 64", len(bin), len(text))
	}
	keys := make([]string, 0, len(text))
	for k := range text {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !bytes.Equal(bin[k], text[k]) {
			t.Errorf("key % x: binary value\n% x\ntext value\n% x", k, bin[k], text[k])
		}
	}
}

var errBlockFormat = errorString("block in the other COPY format")

type errorString string

func (e errorString) Error() string { return string(e) }

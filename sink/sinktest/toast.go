package sinktest

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tributary-cdc/tributary/sink"
)

// Unavailable is Debezium's placeholder for a value the source did not send
// (an unchanged TOASTed column under REPLICA IDENTITY DEFAULT).
const Unavailable = "__debezium_unavailable_value"

// confToast: placeholders (__debezium_unavailable_value in a text column,
// its bytes in a bytea column, a one-element array in an array column) are
// merged with the earlier value by column NAME, across schema versions whose
// columns differ in number and order: from an earlier change of the same
// key in the batch, else from the copy's current row. A row the copy does
// not hold gets no value for the column (never NULL written over a value,
// never the placeholder) and is counted in
// tributary_sink_unavailable_values_total. The same holds after a replay,
// in a shadow copy and in place.
func confToast(t *testing.T, h Harness) {
	c := newConf(t, h)
	v1 := []Col{
		{Name: "id", Type: Int32("INT4")},
		{Name: "n", Type: Int32("INT4"), Optional: true},
		{Name: "body", Type: String("TEXT"), Optional: true},
		{Name: "pic", Type: Bytes("BYTEA"), Optional: true},
		{Name: "tags", Type: Array(String("TEXT")), Optional: true},
	}
	// v2: a column added (ALTER TABLE ... ADD COLUMN), and the fields in
	// another order, so neither count nor position can match them.
	v2 := []Col{
		{Name: "id", Type: Int32("INT4")},
		{Name: "points", Type: Int32("INT4"), Optional: true},
		{Name: "tags", Type: Array(String("TEXT")), Optional: true},
		{Name: "n", Type: Int32("INT4"), Optional: true},
		{Name: "pic", Type: Bytes("BYTEA"), Optional: true},
		{Name: "body", Type: String("TEXT"), Optional: true},
	}
	tb, e1 := c.table("film", v1, "id")
	_, e2 := c.table("film", v2, "id")
	c.createTopic(tb.Topic, 1)
	full := func(id, n int, body string) map[string]any {
		return map[string]any{"id": id, "n": n, "body": body, "pic": []byte("pic-" + body), "tags": []any{"t-" + body, "x"}}
	}
	// An UPDATE of n under REPLICA IDENTITY DEFAULT after the ADD COLUMN:
	// every TOASTed column unchanged.
	untouched := func(id, n int) map[string]any {
		return map[string]any{"id": id, "n": n, "points": 7, "body": Unavailable, "pic": []byte(Unavailable), "tags": []any{Unavailable}}
	}
	// The same with only the large text out of line (pic and tags small
	// enough to be sent): the event has as many columns as the one before
	// the ADD COLUMN.
	bodyOnly := func(id, n int, was string) map[string]any {
		m := full(id, n, was)
		m["points"], m["body"] = 7, Unavailable
		return m
	}
	c.produce(
		c.ev(e1, "r", nil, full(1, 1, "B1")),
		c.ev(e1, "r", nil, full(2, 1, "B2")),
		c.ev(e1, "r", nil, full(3, 1, "B3")),
		// Case 1: ADD COLUMN, then an update of another column.
		c.ev(e2, "u", nil, bodyOnly(1, 2, "B1")),
		// Case 2, one source transaction: the large column changes, ADD
		// COLUMN, then another column of the same row changes.
		c.ev(e1, "u", nil, full(2, 1, "B2new")),
		c.ev(e2, "u", nil, bodyOnly(2, 3, "B2new")),
		c.ev(e1, "r", nil, full(5, 1, "B5")),
		c.ev(e2, "u", nil, untouched(5, 6)),
	)
	reg := prometheus.NewRegistry()
	deps := c.deps()
	deps.Metrics = sink.NewMetrics(reg)
	name := c.name("toast")
	spec := c.spec(name, tb.Topic)
	r := &run{done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- sink.Run(ctx, spec, h.NewTarget(t), deps) }()
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 8})

	// A later batch: the values are only in the copy's rows. Key 4 was
	// never seen (a sink started at the latest offset): unknown.
	c.produce(c.ev(e2, "u", nil, untouched(3, 5)), c.ev(e2, "u", nil, untouched(4, 9)))
	c.waitOffsets(r, name, map[string]int64{tb.Topic + "/0": 10})
	want := []string{
		"1|2|7|B1|pic-B1|t-B1",
		"2|3|7|B2new|pic-B2new|t-B2new",
		"3|5|7|B3|pic-B3|t-B3",
		"4|9|7|NULL|NULL|NULL",
		"5|6|7|B5|pic-B5|t-B5",
	}
	c.eq("live copy", toastRows(c), want)
	c.stop(r)
	if got := counterSum(t, reg, "tributary_sink_unavailable_values_total"); got != 3 {
		t.Fatalf("tributary_sink_unavailable_values_total = %v, want 3 (key 4: body, pic, tags)", got)
	}

	for _, inPlace := range []bool{false, true} {
		if rel, ok := h.(Releaser); ok {
			rel.CloseConns()
		}
		reg := prometheus.NewRegistry()
		deps.Metrics = sink.NewMetrics(reg)
		if err := sink.Replay(context.Background(), spec, h.NewTarget(t), deps, sink.ReplayOptions{InPlace: inPlace}); err != nil {
			t.Fatalf("replay (in place %v): %v", inPlace, err)
		}
		c.eq("copy after replay", toastRows(c), want)
		if got := counterSum(t, reg, "tributary_sink_unavailable_values_total"); got != 3 {
			t.Fatalf("replay (in place %v): tributary_sink_unavailable_values_total = %v, want 3", inPlace, got)
		}
	}
}

// Releaser is a Harness that holds connections a replay's swap must not
// find open (SQLite renames the file).
type Releaser interface{ CloseConns() }

// toastRows renders the film copy as id|n|points|body|pic|first tag.
func toastRows(c *conf) []string {
	c.t.Helper()
	rows := c.rows("film", "id", "n", "points", "body", "pic", "tags")
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		f := strings.Split(r, "|")
		if len(f) != 6 {
			c.t.Fatalf("row %q", r)
		}
		if strings.HasPrefix(f[4], `\x`) { // PostgreSQL bytea as text
			b, err := hex.DecodeString(f[4][2:])
			if err != nil {
				c.t.Fatal(err)
			}
			f[4] = string(b)
		}
		if f[5] != "NULL" {
			// text[] {t-B1,x}, JSON ["t-B1", "x"]: the first element.
			s := strings.Trim(f[5], `{}[]`)
			first, _, _ := strings.Cut(s, ",")
			f[5] = strings.Trim(strings.TrimSpace(first), `"`)
		}
		if strings.Contains(r, Unavailable) {
			c.t.Errorf("the copy holds the placeholder: %q", r)
		}
		out = append(out, strings.Join(f, "|"))
	}
	return out
}

func counterSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += counterValue(m)
		}
	}
	return sum
}

func counterValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return 0
}

package postgres

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"orders", "orders", true},
		{"orders", "orders2", false},
		{"order*", "orders", true},
		{"order*", "order", true},
		{"*", "", true},
		{"*", "anything", true},
		{"o?ders", "orders", true},
		{"o?ders", "oders", false},
		{"*_log", "audit_log", true},
		{"*_log", "audit_logs", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"??", "ab", true},
		{"??", "abc", false},
		{"é*", "étable", true},
		{"[a]", "a", false}, // brackets are literal, not a class
		{"[a]", "[a]", true},
	}
	for _, c := range cases {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestParseTablePattern(t *testing.T) {
	p, err := parseTablePattern("orders")
	if err != nil || p.schema != "public" || p.table != "orders" || p.isPattern() {
		t.Fatalf("orders: %+v %v", p, err)
	}
	p, err = parseTablePattern("sales.*")
	if err != nil || p.schema != "sales" || p.table != "*" || !p.isPattern() {
		t.Fatalf("sales.*: %+v %v", p, err)
	}
	for _, bad := range []string{"", "a.b.c", ".x", "x."} {
		if _, err := parseTablePattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestResolveTables(t *testing.T) {
	existing := []tableID{
		{"public", "orders"}, {"public", "order_lines"}, {"public", "customers"},
		{"sales", "invoices"}, {"sales", "credits"}, {"audit", "log"},
	}
	got, err := resolveTables([]string{"order*", "sales.*", "public.orders", "customers"}, existing)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.String())
	}
	want := "public.customers,public.order_lines,public.orders,sales.credits,sales.invoices"
	if strings.Join(names, ",") != want {
		t.Fatalf("got %v, want %s", names, want)
	}

	_, err = resolveTables([]string{"orders", "public.missing"}, existing)
	if err == nil || !strings.Contains(err.Error(), "tables[1]") || !strings.Contains(err.Error(), "public.missing does not exist") {
		t.Fatalf("missing table: %v", err)
	}
	_, err = resolveTables([]string{"nosuch_*"}, existing)
	if err == nil || !strings.Contains(err.Error(), `pattern "nosuch_*" matches no table`) {
		t.Fatalf("empty pattern: %v", err)
	}
	// A table in another schema is not found by its bare name.
	_, err = resolveTables([]string{"log"}, existing)
	if err == nil || !strings.Contains(err.Error(), "public.log does not exist") {
		t.Fatalf("bare name in other schema: %v", err)
	}
}

func TestQuotedTableID(t *testing.T) {
	if got := (tableID{"Weird Schema", `ta"ble`}).quoted(); got != `"Weird Schema"."ta""ble"` {
		t.Fatalf("quoted: %s", got)
	}
}

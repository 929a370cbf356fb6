package schema

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

func TestDecodeTombstoneAndBadInput(t *testing.T) {
	c, err := NewCodec(mysqlUsersTable(), MySQLSource())
	if err != nil {
		t.Fatal(err)
	}
	c.SetIDs(1, 2)
	f := &mapFetcher{schemas: map[int]string{1: c.KeySchema(), 2: c.ValueSchema(), 3: `{"type":"record","name":"x","fields":[{"name":"a","type":"nope"}]}`}}
	d := NewDecoder(f)
	ctx := context.Background()
	for _, data := range [][]byte{nil, {}} {
		id, v, err := d.Decode(ctx, data)
		if id != 0 || v != nil || err != nil {
			t.Errorf("tombstone %v: got %d %v %v", data, id, v, err)
		}
	}
	key, err := c.AppendKey(nil, []any{int32(5), nil, nil, nil})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"bad magic", append([]byte{1}, key[1:]...), "bad magic byte 0x01, want 0x00"},
		{"short", []byte{0, 0, 1}, "short message: 3 bytes"},
		{"trailing", append(append([]byte{}, key...), 7), "trailing bytes"},
		{"truncated", []byte{0, 0, 0, 0, 1}, "decode with schema id 1"},
		{"unknown id", []byte{0, 0, 0, 0, 99, 2}, "fetch schema id 99: no schema 99"},
		{"bad schema", []byte{0, 0, 0, 0, 3, 2}, "parse schema id 3"},
	}
	for _, tc := range cases {
		_, _, err := d.Decode(ctx, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	if id, v, err := d.Decode(ctx, key); err != nil || id != 1 || !reflect.DeepEqual(v, map[string]any{"id": 5}) {
		t.Errorf("key: %d %v %v", id, v, err)
	}
}

// Two versions of one record name under two ids must each decode with their
// own definition (hamba's global cache would let the newer one win).
func TestDecoderSchemaPerID(t *testing.T) {
	t1 := mysqlUsersTable()
	c1, err := NewCodec(t1, MySQLSource())
	if err != nil {
		t.Fatal(err)
	}
	t2 := mysqlUsersTable()
	t2.Columns = append([]Column{}, t2.Columns...)
	t2.Columns = append(t2.Columns, Column{Name: "email", Type: Type{Kind: String}, Optional: true})
	c2, err := NewCodec(t2, MySQLSource())
	if err != nil {
		t.Fatal(err)
	}
	c1.SetIDs(0, 10)
	c2.SetIDs(0, 20)
	src := []any{"v", "mysql", "s", int64(1), "true", "demo", nil, nil, nil, "users", int64(1), nil, "f", int64(4), int32(0), nil, nil}
	m2, err := c2.AppendEnvelope(nil, &Envelope{Op: OpCreate, After: []any{int32(1), "n", nil, nil, "a@b"}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	m1, err := c1.AppendEnvelope(nil, &Envelope{Op: OpCreate, After: []any{int32(2), "m", int32(3), nil}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	f := &mapFetcher{schemas: map[int]string{10: c1.ValueSchema(), 20: c2.ValueSchema()}}
	d := NewDecoder(f)
	for range 2 {
		for _, m := range [][]byte{m2, m1} {
			if _, _, err := d.Decode(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, v1, _ := d.Decode(context.Background(), m1)
	_, v2, _ := d.Decode(context.Background(), m2)
	a1 := v1.(map[string]any)["after"].(map[string]any)
	a2 := v2.(map[string]any)["after"].(map[string]any)
	if _, ok := a1["email"]; ok || a1["age"] != 3 {
		t.Errorf("v1 after %v", a1)
	}
	if a2["email"] != "a@b" {
		t.Errorf("v2 after %v", a2)
	}
	if f.calls != 2 {
		t.Errorf("%d fetches, want 2", f.calls)
	}
	s, err := d.Schema(context.Background(), 20)
	if err != nil || s.(*avro.RecordSchema).FullName() != "dbserver1.demo.users.Envelope" {
		t.Errorf("Schema(20) = %v, %v", s, err)
	}
}

func TestDecodeLargeValue(t *testing.T) {
	// Above hamba's default 1 MiB MaxByteSliceSize.
	big := strings.Repeat("x", 3<<20)
	c, err := NewCodec(mysqlUsersTable(), MySQLSource())
	if err != nil {
		t.Fatal(err)
	}
	src := []any{"v", "mysql", "s", int64(1), nil, "demo", nil, nil, nil, nil, int64(1), nil, "f", int64(4), int32(0), nil, nil}
	m, err := c.AppendEnvelope(nil, &Envelope{Op: OpCreate, After: []any{int32(1), big, nil, nil}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	_, v, err := NewDecoder(&mapFetcher{schemas: map[int]string{0: c.ValueSchema()}}).Decode(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(map[string]any)["after"].(map[string]any)["name"]; got != big {
		t.Errorf("large value not decoded intact (len %d)", len(got.(string)))
	}
}

func logicalTable() *Table {
	return &Table{
		Topic: "lt.public.t",
		Columns: []Column{
			{Name: "price", Type: DecimalType(10, 2)},
			{Name: "whole", Type: DecimalType(5, 0), Optional: true},
			{Name: "blob", Type: Type{Kind: Bytes}},
			{Name: "d", Type: Type{Kind: Int32, Name: ConnectDateName}},
			{Name: "tm", Type: Type{Kind: Int32, Name: ConnectTimeName}},
			{Name: "ts", Type: Type{Kind: Int64, Name: ConnectTimestampName}, Optional: true},
			{Name: "micro", Type: Type{Kind: Int64, Name: MicroTimestampName}},
			{Name: "nan", Type: Type{Kind: Float64}},
			{Name: "inf", Type: Type{Kind: Float32}},
			{Name: "list", Type: Type{Kind: Array, Items: ptr(DecimalType(4, 1))}},
		},
	}
}

func TestDecodeJSONAndToJSON(t *testing.T) {
	c, err := NewCodec(logicalTable(), PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	row := []any{dec("-1234.5", 2), dec("42", 0), []byte("hi\x00"), int32(19000), int32(3723004), int64(1700000000123),
		int64(1700000000123456), math.NaN(), float32(math.Inf(-1)), []any{dec("0.1", 1), dec("-2", 1)}}
	msg, err := c.AppendEnvelope(nil, &Envelope{Op: OpRead, After: row, Source: pgSource(nil), TsUs: 5})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(&mapFetcher{schemas: map[int]string{0: c.ValueSchema()}})

	_, jv, err := d.DecodeJSON(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	after := jv.(map[string]any)["after"].(map[string]any)
	want := map[string]any{
		"price": "-1234.50", "whole": "42", "blob": "aGkA", "d": 19000, "tm": 3723004, "ts": int64(1700000000123),
		"micro": int64(1700000000123456), "nan": "NaN", "inf": "-Infinity", "list": []any{"0.1", "-2.0"},
	}
	diff(t, "DecodeJSON", after, want)
	if _, err := json.Marshal(jv); err != nil {
		t.Errorf("DecodeJSON output not JSON-encodable: %v", err)
	}

	_, v, err := d.Decode(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	raw := v.(map[string]any)["after"].(map[string]any)
	if r, ok := raw["price"].(*big.Rat); !ok || r.RatString() != "-2469/2" {
		t.Errorf("price %#v", raw["price"])
	}
	if d, ok := raw["d"].(time.Time); !ok || !d.Equal(time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date %#v", raw["d"])
	}
	if tm, ok := raw["tm"].(time.Duration); !ok || tm != time.Hour+2*time.Minute+3*time.Second+4*time.Millisecond {
		t.Errorf("time %#v", raw["tm"])
	}
	if ts, ok := raw["ts"].(time.Time); !ok || ts.UnixMilli() != 1700000000123 {
		t.Errorf("timestamp %#v", raw["ts"])
	}
	tj := ToJSON(v).(map[string]any)["after"].(map[string]any)
	// ToJSON cannot know a date is carried as days; DecodeJSON above can.
	want["d"] = int64(19000 * 86400000)
	want["tm"] = int64(3723004)
	diff(t, "ToJSON", tj, map[string]any{
		"price": "-1234.5", "whole": "42", "blob": "aGkA", "d": want["d"], "tm": want["tm"], "ts": int64(1700000000123),
		"micro": int64(1700000000123456), "nan": "NaN", "inf": "-Infinity", "list": []any{"0.1", "-2"},
	})
	if _, err := json.Marshal(ToJSON(v)); err != nil {
		t.Errorf("ToJSON output not JSON-encodable: %v", err)
	}
}

func TestDecimalString(t *testing.T) {
	for _, tc := range []struct {
		n     int64
		scale int
		want  string
	}{{12345, 2, "123.45"}, {-5, 3, "-0.005"}, {0, 2, "0.00"}, {7, 0, "7"}, {-100, 2, "-1.00"}, {12, -2, "1200"}} {
		if got := decimalString(big.NewInt(tc.n), tc.scale); got != tc.want {
			t.Errorf("decimalString(%d, %d) = %s, want %s", tc.n, tc.scale, got, tc.want)
		}
	}
	if got := ratString(big.NewRat(1, 3)); got != "0.33333333333333333333" {
		t.Errorf("ratString(1/3) = %s", got)
	}
	if got := ratString(big.NewRat(-1, 8)); got != "-0.125" {
		t.Errorf("ratString(-1/8) = %s", got)
	}
}

func TestSRFetcher(t *testing.T) {
	c, err := NewCodec(mysqlUsersTable(), MySQLSource())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body any
		switch r.URL.Path {
		case "/schemas/ids/7":
			body = map[string]any{"schema": c.ValueSchema()}
		case "/schemas/ids/8":
			body = map[string]any{"schema": `{"type":"string"}`, "references": []any{map[string]any{"name": "x", "subject": "x", "version": 1}}}
		case "/schemas/ids/9":
			body = map[string]any{"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}
		default:
			w.WriteHeader(http.StatusNotFound)
			body = map[string]any{"error_code": 40403, "message": "Schema not found"}
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_ = json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	f := SRFetcher{Client: cl}
	ctx := context.Background()
	if s, err := f.SchemaByID(ctx, 7); err != nil || s != c.ValueSchema() {
		t.Errorf("id 7: %v", err)
	}
	for id, want := range map[int]string{8: "uses 1 schema references", 9: "is PROTOBUF, not Avro", 10: "registry schema id 10"} {
		if _, err := f.SchemaByID(ctx, id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("id %d: err %v, want %q", id, err, want)
		}
	}
	c.SetIDs(0, 7)
	msg, err := c.AppendEnvelope(nil, &Envelope{Op: OpTruncate,
		Source: []any{"v", "mysql", "s", int64(1), nil, "demo", nil, nil, nil, nil, int64(1), nil, "f", int64(4), int32(0), nil, nil}})
	if err != nil {
		t.Fatal(err)
	}
	if id, v, err := NewDecoder(f).Decode(ctx, msg); err != nil || id != 7 || v.(map[string]any)["op"] != "t" {
		t.Errorf("decode through SRFetcher: %d %v %v", id, v, err)
	}
}

// TestAvroMapsAndArraysConcurrently exercises hamba/avro's map and array
// codecs (reflect2 map iteration, which broke with Go 1.24's maps) and this
// package's decoder from several goroutines; run it under -race.
func TestAvroMapsAndArraysConcurrently(t *testing.T) {
	const schemaText = `{"type":"record","name":"M","namespace":"race.t","fields":[
		{"name":"attrs","type":{"type":"map","values":{"type":"array","items":"long"}}},
		{"name":"tags","type":["null",{"type":"map","values":"string"}],"default":null},
		{"name":"rows","type":{"type":"array","items":{"type":"record","name":"R","fields":[{"name":"k","type":"string"},{"name":"v","type":["null","double"],"default":null}]}}}]}`
	type rec struct {
		K string   `avro:"k"`
		V *float64 `avro:"v"`
	}
	type typed struct {
		Attrs map[string][]int64 `avro:"attrs"`
		Tags  *map[string]string `avro:"tags"`
		Rows  []rec              `avro:"rows"`
	}
	s := mustParse(t, schemaText)
	d := NewDecoder(&mapFetcher{schemas: map[int]string{4: schemaText}})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				f := float64(i)
				in := typed{
					Attrs: map[string][]int64{"a": {int64(g), int64(i)}, "b": {}, fmt.Sprint("k", i%7): {-1}},
					Tags:  &map[string]string{"x": "y", "g": fmt.Sprint(g)},
					Rows:  []rec{{K: "r", V: &f}, {K: "s"}},
				}
				b, err := avro.Marshal(s, in)
				if err != nil {
					errs <- err
					return
				}
				var out typed
				if err := avro.Unmarshal(s, b, &out); err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(out.Attrs["a"], in.Attrs["a"]) || out.Tags == nil || (*out.Tags)["g"] != (*in.Tags)["g"] || len(out.Rows) != 2 || *out.Rows[0].V != f {
					errs <- fmt.Errorf("typed round trip: %+v != %+v", out, in)
					return
				}
				var generic any
				if err := avro.Unmarshal(s, b, &generic); err != nil {
					errs <- err
					return
				}
				if len(generic.(map[string]any)["attrs"].(map[string]any)) != len(in.Attrs) {
					errs <- fmt.Errorf("generic attrs %v", generic)
					return
				}
				_, mine, err := d.Decode(context.Background(), append([]byte{0, 0, 0, 0, 4}, b...))
				if err != nil {
					errs <- err
					return
				}
				m := mine.(map[string]any)
				if !reflect.DeepEqual(m["attrs"].(map[string]any)["a"], []any{int64(g), int64(i)}) ||
					m["tags"].(map[string]any)["g"] != fmt.Sprint(g) ||
					m["rows"].([]any)[0].(map[string]any)["v"] != f || m["rows"].([]any)[1].(map[string]any)["v"] != nil {
					errs <- fmt.Errorf("Decoder: %v", m)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/schema"
)

// The reverse direction: real Debezium events into tributary's sinks.
// tributary's sinks read Confluent-framed Avro, and no Avro converter that
// speaks the Confluent registry API is on Maven Central (Confluent's
// AvroConverter is not; Apicurio's AvroConverter 2.6.13.Final talks
// Apicurio's own REST API and fails on tributary's registry with HTTP 404), so
// Debezium runs with the JsonConverter and the test re-encodes each of its
// records as Confluent's AvroData would (avroFromConnect below): Debezium's
// own schemas, names, parameters and values, in the Avro a Debezium with the
// AvroConverter writes.

// avroFromConnect returns the Avro schema AvroData derives from a Connect
// schema (connect.* properties, optional as a union with null first, or
// after the type when the field has a default). defined holds the record
// names already written: a second use is a reference.
func avroFromConnect(n *cnode, defined map[string]bool) any {
	var base any
	props := map[string]any{}
	switch n.Type {
	case "int8", "int16":
		base = "int"
		props["connect.type"] = n.Type
	case "int32":
		base = "int"
	case "int64":
		base = "long"
	case "float32":
		base = "float"
	case "float64":
		base = "double"
	case "boolean", "string", "bytes":
		base = n.Type
	case "array":
		base = "array"
		props["items"] = avroOptional(n.Items, defined)
	case "struct":
		if defined[n.Name] {
			return n.Name
		}
		defined[n.Name] = true
		var fields []any
		for _, f := range n.Fields {
			fd := map[string]any{"name": f.Name, "type": avroOptional(f.Schema, defined)}
			switch {
			case f.Schema.HasDefault:
				fd["default"] = avroDefault(f.Schema)
			case f.Schema.Optional:
				fd["default"] = nil
			}
			fields = append(fields, fd)
		}
		space, name := "", n.Name
		if i := strings.LastIndex(n.Name, "."); i >= 0 {
			space, name = n.Name[:i], n.Name[i+1:]
		}
		rec := map[string]any{"type": "record", "name": name, "fields": fields, "connect.name": n.Name}
		if space != "" {
			rec["namespace"] = space
		}
		if n.Version != 0 {
			rec["connect.version"] = n.Version
		}
		if n.Doc != "" {
			rec["connect.doc"] = n.Doc
		}
		return rec
	}
	if n.Name == "org.apache.kafka.connect.data.Decimal" {
		props["logicalType"] = "decimal"
		props["scale"], _ = strconv.Atoi(n.Params["scale"])
		props["precision"] = 64
		if p, ok := n.Params["connect.decimal.precision"]; ok {
			props["precision"], _ = strconv.Atoi(p)
		}
	}
	if n.Name != "" {
		props["connect.name"] = n.Name
	}
	if n.Version != 0 {
		props["connect.version"] = n.Version
	}
	if n.Doc != "" {
		props["connect.doc"] = n.Doc
	}
	if len(n.Params) > 0 {
		props["connect.parameters"] = n.Params
	}
	if n.HasDefault {
		props["connect.default"] = n.Default
	}
	if len(props) == 0 {
		return base
	}
	props["type"] = base
	return props
}

func avroOptional(n *cnode, defined map[string]bool) any {
	t := avroFromConnect(n, defined)
	switch {
	case !n.Optional:
		return t
	case n.HasDefault:
		return []any{t, "null"}
	}
	return []any{"null", t}
}

func avroDefault(n *cnode) any {
	v := avroValue(n, n.Default, false)
	if b, ok := v.([]byte); ok { // Avro JSON default of bytes: code points 0-255
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	return v
}

// avroValue turns a JsonConverter value of schema n into hamba/avro's
// generic form; inUnion wraps records (hamba names a union's record branch).
func avroValue(n *cnode, v any, inUnion bool) any {
	if v == nil {
		return nil
	}
	switch n.Type {
	case "int8", "int16", "int32":
		i, _ := v.(json.Number).Int64()
		return int(i)
	case "int64":
		i, _ := v.(json.Number).Int64()
		return i
	case "float32", "float64":
		var f float64
		switch x := v.(type) {
		case json.Number:
			f, _ = x.Float64()
		case string:
			f = map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}[x]
		}
		if n.Type == "float32" {
			return float32(f)
		}
		return f
	case "bytes":
		b, _ := base64.StdEncoding.DecodeString(v.(string))
		if n.Name == "org.apache.kafka.connect.data.Decimal" {
			scale, _ := strconv.Atoi(n.Params["scale"])
			return new(big.Rat).SetFrac(schema.UnscaledFromBytes(b), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
		}
		return b
	case "array":
		a := v.([]any)
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = avroValue(n.Items, e, n.Items.Optional)
		}
		return out
	case "struct":
		m := v.(map[string]any)
		out := map[string]any{}
		for _, f := range n.Fields {
			src := f.Name
			if f.Orig != "" {
				src = f.Orig
			}
			out[f.Name] = avroValue(f.Schema, m[src], f.Schema.Optional)
		}
		if inUnion {
			return map[string]any{n.Name: out}
		}
		return out
	}
	return v
}

// bridgeDebeziumEvents writes Debezium's JSON events of topics (in order,
// tombstones included) to <topic with dzPrefix replaced by newPrefix> as
// Confluent-framed Avro registered in le's registry.
func bridgeDebeziumEvents(t *testing.T, le *logEnv, evs []jsonEvent, dzPrefix, newPrefix string, topics ...string) {
	t.Helper()
	p := newDBZProducer(t, le)
	registered := map[string]string{}
	for _, topic := range topics {
		out := newPrefix + strings.TrimPrefix(topic, dzPrefix)
		var recs []*kgo.Record
		for _, e := range evs {
			if e.Topic != topic {
				continue
			}
			ks := fromConnectJSON(e.KeySchema)
			reg := func(subject string, n *cnode) {
				text, _ := json.Marshal(avroFromConnect(n, map[string]bool{}))
				if registered[subject] != string(text) {
					p.register(subject, string(text))
					registered[subject] = string(text)
				}
			}
			reg(out+"-key", ks)
			r := &kgo.Record{Key: p.encode(out+"-key", avroValue(ks, e.Key, false))}
			if e.Value != nil {
				vs := fromConnectJSON(e.ValueSchema)
				reg(out+"-value", vs)
				r.Value = p.encode(out+"-value", avroValue(vs, e.Value, false))
			}
			recs = append(recs, r)
		}
		if len(recs) == 0 {
			t.Fatalf("no Debezium events on %s to bridge", topic)
		}
		p.send(out, recs...)
	}
}

// debeziumIntoSink points a tributary PostgreSQL sink at Debezium's events
// of tables in ns (PostgreSQL schema or MariaDB database), bridged to Avro,
// and verifies the copy against the source that sourceYAML(prefix)
// declares (it is not run: verify only reads its tables).
func debeziumIntoSink(t *testing.T, le *logEnv, ns string, dzEvs []jsonEvent, dzPrefix string, tables []string, sourceYAML func(prefix string) string) {
	t.Helper()
	bridged := uniq("dbzavro")
	var dzTopics, topics []string
	for _, tb := range tables {
		dzTopics = append(dzTopics, dzPrefix+"."+ns+"."+tb)
		topics = append(topics, bridged+"."+ns+"."+tb)
	}
	bridgeDebeziumEvents(t, le, dzEvs, dzPrefix, bridged, dzTopics...)
	copyDB := pgDB(t)
	sinkName := uniq("dbzcopy")
	sinkYAML := fmt.Sprintf(`sinks:
  - name: %s
    type: postgres
    url: %s
    topics: [%s]
`, sinkName, copyDB, strings.Join(topics, ", "))
	// A worker of its own, next to the test's source worker: its own HTTP port.
	sle := *le
	sle.httpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sle.yaml = strings.Replace(le.yaml, le.httpAddr, sle.httpAddr, 1)
	startWorker(t, &sle, writeFile(t, t.TempDir(), "pipeline.yaml", sle.yaml+sinkYAML))
	verifyCfg := writeFile(t, t.TempDir(), "verify.yaml", sle.yaml+"sources:\n"+sourceYAML(bridged)+sinkYAML)
	code, out := runCLI(t, 4*time.Minute, "verify", "-f", verifyCfg, sinkName, "--wait", "90s")
	if want := fmt.Sprintf("%d tables compared, %d equal, 0 different", len(tables), len(tables)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("verify of the copy of Debezium's events exited %d, want 0 and %q:\n%s", code, want, out)
	}
}

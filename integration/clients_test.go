package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// TestIndependentClients: tools that are not tributary read its events.
//   - kcat (Debian's build) fetches the raw records; each value is in the
//     Confluent wire format, its schema id resolves in the registry over
//     plain HTTP, and the bytes decode with that schema.
//   - `tributary tail` prints the same events as JSON lines.
//
// Debian's kcat is built without libserdes, so `kcat -s value=avro` is not
// available here; decoding is done with the schema fetched by id instead.
func TestIndependentClients(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, "CREATE TABLE people (id int PRIMARY KEY, name text, score numeric(6,2))")
			pgExec(t, c, "INSERT INTO people VALUES (1,'ada',1.5),(2,'grace',2.25),(3,'edsger',3.00)")
			prefix := uniq("kcat")
			cfgPath := pgPipeline(t, le, db, prefix, uniq("slot"), []string{"people"}, "")
			w := startWorker(t, le, cfgPath)
			topic := prefix + ".public.people"
			newReader(t, le, topic).pollUntil(t, time.Minute, func(evs []event) bool { return len(evs) >= 3 })

			kcat := env(t, "TRIBUTARY_KCAT")
			names := map[string]bool{}
			for off := 0; off < 3; off++ {
				cmd := exec.Command(kcat, "-C", "-b", le.brokers, "-t", topic, "-p", "0", "-o", fmt.Sprint(off), "-c", "1", "-e", "-q", "-f", "%s")
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				if err := cmd.Run(); err != nil {
					t.Fatalf("kcat: %v: %s", err, errb.String())
				}
				val := out.Bytes()
				if len(val) < 6 || val[0] != 0 {
					t.Fatalf("kcat value at offset %d is not Confluent-framed: % x", off, val[:min(len(val), 8)])
				}
				id := binary.BigEndian.Uint32(val[1:5])
				resp, err := http.Get(fmt.Sprintf("%s/schemas/ids/%d", le.registryURL, id))
				if err != nil {
					t.Fatal(err)
				}
				var body struct {
					Schema string `json:"schema"`
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err := json.Unmarshal(raw, &body); err != nil || body.Schema == "" {
					t.Fatalf("registry has no schema %d: %s", id, raw)
				}
				sch, err := avro.ParseWithCache(body.Schema, "", &avro.SchemaCache{})
				if err != nil {
					t.Fatalf("schema %d does not parse: %v", id, err)
				}
				var v map[string]any
				if err := avro.Unmarshal(sch, val[5:], &v); err != nil {
					t.Fatalf("offset %d does not decode with schema %d: %v", off, id, err)
				}
				after := unwrapUnion(v["after"])
				if after == nil {
					t.Fatalf("offset %d: no after in %v", off, v)
				}
				// hamba decodes an optional field as a union map {"string": "ada"}.
				switch n := after["name"].(type) {
				case string:
					names[n] = true
				case map[string]any:
					names[fmt.Sprint(n["string"])] = true
				}
			}
			for _, n := range []string{"ada", "grace", "edsger"} {
				if !names[n] {
					t.Fatalf("kcat + registry did not yield %q; got %v", n, names)
				}
			}

			// tributary tail, from the config file.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, tribBin(t), "tail", topic, "--from-beginning", "--key", "-n", "3", "-f", cfgPath)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tributary tail: %v\n%s", err, out)
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			lines := 0
			for sc.Scan() {
				var rec struct {
					Topic string         `json:"topic"`
					Key   map[string]any `json:"key"`
					Value map[string]any `json:"value"`
				}
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("tail line is not JSON: %s", sc.Text())
				}
				if rec.Topic != topic || rec.Value["op"] != "r" || rec.Key["id"] == nil {
					t.Fatalf("unexpected tail line: %s", sc.Text())
				}
				if !strings.Contains(sc.Text(), `"after"`) {
					t.Fatalf("tail line lacks after: %s", sc.Text())
				}
				lines++
			}
			if lines != 3 {
				t.Fatalf("tail printed %d lines, want 3:\n%s", lines, out)
			}
			w.stop(t)
		})
	}
}

// unwrapUnion undoes hamba's generic union form {"<type name>": value}.
func unwrapUnion(v any) map[string]any {
	m, _ := v.(map[string]any)
	if len(m) == 1 {
		for _, inner := range m {
			if im, ok := inner.(map[string]any); ok {
				return im
			}
		}
	}
	return m
}

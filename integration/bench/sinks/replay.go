package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// hasReplay says whether the binary has the replay command.
func (b *bench) hasReplay(ctx context.Context) bool {
	out, err := exec.CommandContext(ctx, b.bin, "replay", "--help").CombinedOutput()
	return err == nil && !strings.Contains(string(out), "unknown command")
}

// replay rebuilds the PostgreSQL copy of the apply part from offset zero
// with `tributary replay -f FILE SINK` and reads its wall time and peak RSS.
func (b *bench) replay(ctx context.Context) error {
	measure := fmt.Sprintf("replay, %d-row topic into PostgreSQL", b.src.rows)
	if !b.hasReplay(ctx) {
		b.add(row{measure: measure, mode: "embedded", figure: "not measured", baseline: "-", ratio: "-", target: "RSS < 150 MB", verdict: "-"})
		b.notes = append(b.notes, "replay: `tributary replay` is not in this build, so it was not measured")
		return nil
	}
	if b.pgCfg == "" {
		return fmt.Errorf("needs the PostgreSQL copy of the postgres part (run with -only postgres,replay)")
	}
	dir := filepath.Dir(b.pgCfg)
	p, err := b.start(ctx, dir, "127.0.0.1:0", "replay", "-f", b.pgCfg, "bench-pg")
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(b.o.applyTimout):
		_, _ = p.stop()
		return fmt.Errorf("replay not done after %s; log tail:\n%s", b.o.applyTimout, p.tail())
	}
	el := time.Since(p.started)
	if p.waitErr != nil {
		return fmt.Errorf("tributary replay exited with %v; log tail:\n%s", p.waitErr, p.tail())
	}
	rss := p.maxRSS()
	if err := b.countPG(ctx, b.pgCopy); err != nil {
		return err
	}
	b.logf("replay: %d rows in %s (%.0f rows/s incl. start-up), peak RSS %s", b.src.rows, el.Round(time.Millisecond), rate(b.src.rows, el), mb(rss))
	b.add(row{measure: measure, mode: "embedded", figure: fmt.Sprintf("%s (%.0f rows/s)", el.Round(100*time.Millisecond), rate(b.src.rows, el)),
		baseline: "-", ratio: "-", target: "-", verdict: "-"})
	b.add(row{measure: "peak RSS (replay)", mode: "embedded", figure: mb(rss), baseline: "-", ratio: "-", target: "< 150 MB", verdict: verdict(rss < 150<<20)})
	b.notes = append(b.notes, fmt.Sprintf("replay: CPU %s;", p.cpu().Round(100*time.Millisecond))+" whole process (log start-up, shadow build, swap, exit) of `tributary replay -f FILE bench-pg` over the copy of the postgres part; peak RSS is VmHWM sampled every 50 ms until the exit; in embedded mode it includes the in-process broker")
	return b.replayKafka(ctx)
}

// replayKafka measures the same replay in cluster mode: the topic is
// snapshotted into Apache Kafka, so the broker's memory is not in the
// worker's RSS and the figure is the replay's own.
func (b *bench) replayKafka(ctx context.Context) error {
	measure := fmt.Sprintf("replay, %d-row topic into PostgreSQL", b.src.rows)
	brokers := os.Getenv("TRIBUTARY_TEST_KAFKA_BROKERS")
	if b.o.skipKafka || brokers == "" {
		b.add(row{measure: measure, mode: "kafka", figure: "not measured", baseline: "-", ratio: "-", target: "RSS < 150 MB", verdict: "-"})
		b.notes = append(b.notes, "replay (kafka): skipped (-skip-kafka or TRIBUTARY_TEST_KAFKA_BROKERS unset)")
		return nil
	}
	dir := filepath.Join(b.work, "replay-kafka")
	schemasTopic := "_schemas_bench" + b.runID
	topic := "benchsinkk" + b.runID + ".public." + srcTable
	b.cleanup = append(b.cleanup, func() { b.deleteKafka(brokers, []string{topic, schemasTopic}, "tributary-sink-bench-pgk") })

	// Its own schemas topic, so ids do not mix with parallel test runs.
	regAddr := freeListeners().log
	reg, err := b.start(ctx, dir, "", "registry", "--brokers", brokers, "--listen", regAddr, "--topic", schemasTopic)
	if err != nil {
		return err
	}
	defer reg.stop()
	regURL := "http://" + regAddr
	if err := waitHTTP(ctx, regURL+"/subjects", reg, time.Minute); err != nil {
		return err
	}
	httpAddr := freeListeners().http
	header := fmt.Sprintf("log:\n  brokers: [%s]\nregistry:\n  url: %s\nworker:\n  http: %s\n", brokers, regURL, httpAddr)

	t := time.Now()
	p, _, err := b.runPipeline(ctx, filepath.Join(dir, "source"), header+fmt.Sprintf(`sources:
  - name: benchsrck
    type: postgres
    url: %s
    tables: [public.%s]
    topic_prefix: benchsinkk%s
    slot: bench_sinkk_%s
    snapshot: initial_only
`, b.src.url, srcTable, b.runID, b.runID), httpAddr)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(b.o.applyTimout):
		_, _ = p.stop()
		return fmt.Errorf("snapshot into Kafka not done after %s; log tail:\n%s", b.o.applyTimout, p.tail())
	}
	if p.waitErr != nil {
		return fmt.Errorf("tributary initial_only into Kafka exited with %v; log tail:\n%s", p.waitErr, p.tail())
	}
	b.logf("replay (kafka): %d rows snapshotted into Kafka topic %s in %s", b.src.rows, topic, time.Since(t).Round(time.Millisecond))

	copyURL, err := b.createDB(ctx, "bench_sinkpgk_"+b.runID)
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "sink.yaml")
	if err := os.WriteFile(cfg, []byte(header+fmt.Sprintf(`sinks:
  - name: bench-pgk
    type: postgres
    url: %s
    topics: [%s]
`, copyURL, topic)), 0o644); err != nil {
		return err
	}
	rp, err := b.start(ctx, dir, "", "replay", "-f", cfg, "bench-pgk")
	if err != nil {
		return err
	}
	select {
	case <-rp.done:
	case <-time.After(b.o.applyTimout):
		_, _ = rp.stop()
		return fmt.Errorf("replay from Kafka not done after %s; log tail:\n%s", b.o.applyTimout, rp.tail())
	}
	el := time.Since(rp.started)
	if rp.waitErr != nil {
		return fmt.Errorf("tributary replay from Kafka exited with %v; log tail:\n%s", rp.waitErr, rp.tail())
	}
	rss := rp.maxRSS()
	if err := b.countPG(ctx, copyURL); err != nil {
		return err
	}
	b.logf("replay (kafka): %d rows in %s (%.0f rows/s incl. start-up), peak RSS %s", b.src.rows, el.Round(time.Millisecond), rate(b.src.rows, el), mb(rss))
	b.add(row{measure: measure, mode: "kafka", figure: fmt.Sprintf("%s (%.0f rows/s)", el.Round(100*time.Millisecond), rate(b.src.rows, el)),
		baseline: "-", ratio: "-", target: "-", verdict: "-"})
	b.add(row{measure: "peak RSS (replay)", mode: "kafka", figure: mb(rss), baseline: "-", ratio: "-", target: "< 150 MB", verdict: verdict(rss < 150<<20)})
	b.notes = append(b.notes, fmt.Sprintf("replay (kafka): CPU %s; the same replay from Apache Kafka into a fresh PostgreSQL database, so the broker's memory is outside the process", rp.cpu().Round(100*time.Millisecond)))
	return nil
}

func (b *bench) countPG(ctx context.Context, u string) error {
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Errorf("connect copy: %w", err)
	}
	defer c.Close(ctx)
	var count int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM public.items").Scan(&count); err != nil {
		return fmt.Errorf("count replayed copy: %w", err)
	}
	if count != int64(b.src.rows) {
		return fmt.Errorf("replayed copy has %d rows, want %d", count, b.src.rows)
	}
	return nil
}

func waitHTTP(ctx context.Context, u string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := httpc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v); log tail:\n%s", p.cmd.Args[1], p.waitErr, p.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after %s; log tail:\n%s", u, timeout, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deleteKafka removes the bench's topics and the sink's lag group.
func (b *bench) deleteKafka(brokers string, topics []string, group string) {
	if b.o.keep {
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopics(ctx, topics...); err != nil {
		b.logf("delete Kafka topics %v: %v", topics, err)
	}
	_, _ = adm.DeleteGroups(ctx, group)
}

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	c, err := pgx.Connect(ctx, b.pgCopy)
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
	b.logf("replay: %d rows in %s (%.0f rows/s incl. start-up), peak RSS %s", b.src.rows, el.Round(time.Millisecond), rate(b.src.rows, el), mb(rss))
	b.add(row{measure: measure, mode: "embedded", figure: fmt.Sprintf("%s (%.0f rows/s)", el.Round(100*time.Millisecond), rate(b.src.rows, el)),
		baseline: "-", ratio: "-", target: "-", verdict: "-"})
	b.add(row{measure: "peak RSS (replay)", mode: "embedded", figure: mb(rss), baseline: "-", ratio: "-", target: "< 150 MB", verdict: verdict(rss < 150<<20)})
	b.notes = append(b.notes, fmt.Sprintf("replay: CPU %s;", p.cpu().Round(100*time.Millisecond))+" whole process (log start-up, shadow build, swap, exit) of `tributary replay -f FILE bench-pg` over the copy of the postgres part; peak RSS from the exited process's rusage (its last VmHWM)")
	return nil
}

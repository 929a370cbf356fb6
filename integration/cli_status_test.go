package integration

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runTrib runs the binary to completion: combined output and exit code.
func runTrib(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(tribBin(t), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("tributary %v: %v", args, err)
	return "", -1
}

// TestStatusAndOffsetsCommands: `tributary status` reports the running
// worker's connectors, `tributary offsets` the source's committed LSN and the
// sink's per-partition positions with zero lag once it caught up; both fail
// clearly when the worker is gone or a connector name is wrong.
func TestStatusAndOffsetsCommands(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			le := newLogEnv(t, m)
			db := pgDB(t)
			c := pgConn(t, db)
			pgExec(t, c, "CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL)")
			pgExec(t, c, "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 500) g")
			prefix, slot := uniq("cli"), uniq("cli")
			topic := prefix + ".public.items"
			sinkName := uniq("clicopy")
			copyPath := filepath.Join(t.TempDir(), "copy.db")
			cfg := pgPipeline(t, le, db, prefix, slot, []string{"items"}, sqliteSinkYAML(sinkName, copyPath, topic, 100))
			w := startWorker(t, le, cfg)

			// status: both connectors running.
			var out string
			var code int
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				out, code = runTrib(t, "status", "-f", cfg)
				if code == 0 && strings.Count(out, "running") == 2 {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if code != 0 || !regexp.MustCompile(slot+`\s+source\s+postgres\s+running`).MatchString(out) ||
				!regexp.MustCompile(sinkName+`\s+sink\s+sqlite\s+running`).MatchString(out) {
				t.Fatalf("status (exit %d) does not show both connectors running:\n%s", code, out)
			}

			// offsets: the source's LSN and the sink caught up with the head,
			// first after the snapshot, then after 100 streamed updates.
			lagZero := regexp.MustCompile(regexp.QuoteMeta(topic) + `\s+0\s+(\d+)\s+(\d+)\s+0\b`)
			waitNext := func(want string) {
				deadline := time.Now().Add(90 * time.Second)
				for time.Now().Before(deadline) {
					out, code = runTrib(t, "offsets", "-f", cfg)
					if mm := lagZero.FindStringSubmatch(out); code == 0 && mm != nil && mm[1] == want && strings.Contains(out, `"lsn"`) {
						return
					}
					time.Sleep(500 * time.Millisecond)
				}
			}
			waitNext("500")
			pgExec(t, c, "UPDATE items SET v = v || '!' WHERE id <= 100")
			waitNext("600")
			if code != 0 {
				t.Fatalf("offsets exit %d:\n%s", code, out)
			}
			wantKey := fmt.Sprintf(`key ["%s",{"server":"%s"}]`, slot, prefix)
			if !strings.Contains(out, wantKey) || !strings.Contains(out, `"lsn"`) {
				t.Fatalf("offsets does not show the source's committed LSN under %s:\n%s", wantKey, out)
			}
			mm := lagZero.FindStringSubmatch(out)
			if mm == nil || mm[1] != mm[2] || mm[1] == "0" {
				t.Fatalf("offsets does not show the sink caught up (next = head > 0, lag 0) on %s:\n%s", topic, out)
			}
			// 500 snapshot rows + 100 updates, and nothing else in the topic.
			if mm[1] != "600" {
				t.Fatalf("sink next offset %s, want 600 (500 snapshot rows and 100 updates):\n%s", mm[1], out)
			}

			// Bad input: an unknown connector name.
			out, code = runTrib(t, "offsets", "-f", cfg, "nosuch")
			if code != 2 || !strings.Contains(out, `no source or sink named "nosuch"`) || !strings.Contains(out, slot) {
				t.Fatalf("offsets of an unknown connector: exit %d, output:\n%s", code, out)
			}

			w.stop(t)
			// The worker is gone: status says so and fails.
			out, code = runTrib(t, "status", "-f", cfg)
			if code != 1 || !strings.Contains(out, "no worker answers at http://"+le.httpAddr) {
				t.Fatalf("status without a worker: exit %d, output:\n%s", code, out)
			}
		})
	}
}

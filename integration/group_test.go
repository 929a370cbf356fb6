package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// groupStatus reads a worker's /status: connector name -> state.
func groupStatus(addr string) (map[string]string, error) {
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Connectors map[string]struct {
			State string `json:"state"`
		} `json:"connectors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for n, c := range body.Connectors {
		out[n] = c.State
	}
	return out, nil
}

// owners waits until every connector runs on exactly one of the live
// workers and returns connector -> index of the worker running it.
// With spread, every live worker must also run at least one connector.
func owners(t *testing.T, addrs []string, live []bool, names []string, spread bool, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		own := map[string]int{}
		count := map[string]int{}
		ok := true
		var desc []string
		for i, a := range addrs {
			if !live[i] {
				continue
			}
			st, err := groupStatus(a)
			if err != nil {
				ok = false
				desc = append(desc, fmt.Sprintf("worker %d: %v", i, err))
				continue
			}
			desc = append(desc, fmt.Sprintf("worker %d: %v", i, st))
			for n, s := range st {
				if s == "failed" {
					t.Fatalf("connector %s failed on worker %d: %v", n, i, st)
				}
				if s == "running" {
					own[n] = i
					count[n]++
				}
			}
		}
		for _, n := range names {
			if count[n] != 1 {
				ok = false
			}
		}
		if spread {
			busy := map[int]bool{}
			for _, w := range own {
				busy[w] = true
			}
			for i := range addrs {
				if live[i] && !busy[i] {
					ok = false
				}
			}
		}
		last = strings.Join(desc, "; ")
		if ok {
			return own
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("connectors not each running on exactly one worker within %v: %s", within, last)
	return nil
}

// TestWorkerGroupSharesAndFailsOver: two workers with the same worker.group
// on Apache Kafka split two PostgreSQL sources and a SQLite sink between
// them, each connector on exactly one worker. kill -9 of the worker running
// the first source moves its connectors to the survivor, and no change is
// lost. A worker whose file declares other connectors cannot join.
func TestWorkerGroupSharesAndFailsOver(t *testing.T) {
	le := newLogEnv(t, mode{"kafka", false})
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, "CREATE TABLE a (id bigint PRIMARY KEY, v text NOT NULL)")
	pgExec(t, c, "CREATE TABLE b (id bigint PRIMARY KEY, v text NOT NULL)")
	group := uniq("g")
	prefix := uniq("grp")
	slotA, slotB := uniq("ga"), uniq("gb")
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	sources := fmt.Sprintf(`sources:
  - name: %[1]s
    type: postgres
    url: %[3]s
    tables: [public.a]
    topic_prefix: %[4]s
    slot: %[1]s
    publication: %[1]s_pub
  - name: %[2]s
    type: postgres
    url: %[3]s
    tables: [public.b]
    topic_prefix: %[4]s
    slot: %[2]s
    publication: %[2]s_pub
`, slotA, slotB, db, prefix)
	sinkName := uniq("gcopy")
	sinks := sqliteSinkYAML(sinkName, copyPath, prefix+".public.a", 500)
	names := []string{slotA, slotB, sinkName}

	dir := t.TempDir()
	var addrs []string
	var cfgs []string
	for i := range 2 {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		addrs = append(addrs, addr)
		y := fmt.Sprintf("log:\n  brokers: [%s]\nregistry:\n  url: %s\nworker:\n  name: w%d\n  http: %s\n  flush_interval: 20ms\n  group: %s\n  group_session_timeout: 6s\n",
			le.brokers, le.registryURL, i, addr, group) + sources + sinks
		cfgs = append(cfgs, writeFile(t, dir, fmt.Sprintf("w%d.yaml", i), y))
	}

	var nextA, nextB atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range []struct {
		table string
		next  *atomic.Int64
	}{{"a", &nextA}, {"b", &nextB}} {
		wg.Go(func() {
			wc, err := pgx.Connect(context.Background(), db)
			if err != nil {
				t.Errorf("writer %s: %v", w.table, err)
				return
			}
			defer wc.Close(context.Background())
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := w.next.Load() + 1
				if _, err := wc.Exec(context.Background(), "INSERT INTO "+w.table+" VALUES ($1, $2)", id, fmt.Sprintf("%s%d", w.table, id)); err != nil {
					t.Errorf("writer %s: %v", w.table, err)
					return
				}
				w.next.Store(id)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	procs := []*proc{
		startProc(t, "worker0", tribBin(t), "run", "-f", cfgs[0]),
		startProc(t, "worker1", tribBin(t), "run", "-f", cfgs[1]),
	}
	for i, p := range procs {
		waitHTTP(t, "http://"+addrs[i]+"/healthz", 60*time.Second, p)
	}
	live := []bool{true, true}
	own := owners(t, addrs, live, names, true, 90*time.Second)

	// A worker whose file declares other connectors must not join the group.
	odd := fmt.Sprintf("log:\n  brokers: [%s]\nregistry:\n  url: %s\nworker:\n  http: 127.0.0.1:%d\n  group: %s\n",
		le.brokers, le.registryURL, freePort(t), group) + sources
	op := startProc(t, "odd-worker", tribBin(t), "run", "-f", writeFile(t, dir, "odd.yaml", odd))
	if code := op.exitCode(t, 60*time.Second); code == 0 {
		t.Fatalf("a worker with a different connector list joined the group; output:\n%s", op.output())
	}
	if out := op.output(); !strings.Contains(out, "must run the same connectors") || !strings.Contains(out, group) {
		t.Fatalf("the refused worker's error does not explain why:\n%s", out)
	}

	time.Sleep(time.Second)
	victim := own[slotA]
	procs[victim].kill(t)
	live[victim] = false
	survivor := 1 - victim
	own = owners(t, addrs, live, names, false, 90*time.Second)
	for n, w := range own {
		if w != survivor {
			t.Fatalf("connector %s on worker %d after worker %d died", n, w, victim)
		}
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	totalA, totalB := nextA.Load(), nextB.Load()
	if totalA < 100 || totalB < 100 {
		t.Fatalf("writers too slow to test anything: a=%d b=%d", totalA, totalB)
	}

	r := newReader(t, le, prefix+".public.a", prefix+".public.b")
	r.pollUntil(t, 2*time.Minute, func(evs []event) bool {
		seen := map[string]map[int64]bool{"a": {}, "b": {}}
		for _, e := range evs {
			if e.Value == nil {
				continue
			}
			tbl := e.Topic[strings.LastIndex(e.Topic, ".")+1:]
			if a := e.after(); a != nil {
				seen[tbl][num(a["id"])] = true
			}
		}
		return int64(len(seen["a"])) == totalA && int64(len(seen["b"])) == totalB
	})

	// The sink moved too, and its copy converges on table a.
	cdb, err := sql.Open("sqlite", "file:"+copyPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	deadline := time.Now().Add(2 * time.Minute)
	var n int64
	for time.Now().Before(deadline) {
		if err := cdb.QueryRow("SELECT count(*) FROM public_a").Scan(&n); err == nil && n == totalA {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n != totalA {
		t.Fatalf("SQLite copy has %d rows of a, source has %d", n, totalA)
	}
	procs[survivor].stop(t)
}

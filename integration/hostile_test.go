package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEmbeddedBrokerSurvivesHostileFrames is issue 11's crash: a 10-byte
// request with api_key=999 sent to the embedded broker's port panicked the
// worker, and a frame announcing 4 GiB made it allocate 4 GiB. Each frame is
// sent to the real binary's port; the broker must close that connection, and
// the worker must keep streaming.
func TestEmbeddedBrokerSurvivesHostileFrames(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, accountsDDL)
	prefix, slot := uniq("hostile"), uniq("slot")
	w := startWorker(t, le, pgPipeline(t, le, db, prefix, slot, []string{"public.accounts"}, ""))

	frames := map[string][]byte{
		"api_key=999, 10 bytes":    {0, 0, 0, 6, 0x03, 0xe7, 0, 0, 0, 1},
		"api_key=999, full header": {0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff},
		"4 GiB announced":          {0xff, 0xff, 0xff, 0xfe},
		"negative size":            {0x80, 0, 0, 0},
	}
	for name, f := range frames {
		conn, err := net.DialTimeout("tcp", le.brokers, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: dialing the embedded broker: %v", name, err)
		}
		if _, err := conn.Write(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The broker closes the connection at once: no body is awaited.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 16))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: broker did not close the connection (read err %v)", name, err)
		}
		conn.Close()
		time.Sleep(200 * time.Millisecond)
		if w.exited() {
			t.Fatalf("%s crashed the worker: %v\n%s", name, w.err, tail([]byte(w.output()), 4096))
		}
	}

	// The worker still serves: a row inserted now reaches the log.
	pgExec(t, c, "INSERT INTO accounts(name, balance) VALUES ('after', 1.50)")
	r := newReader(t, le, prefix+".public.accounts")
	r.pollUntil(t, 60*time.Second, func(evs []event) bool {
		for _, e := range evs {
			if a := e.after(); a != nil && a["name"] == "after" {
				return true
			}
		}
		return false
	})
	if w.exited() {
		t.Fatalf("worker exited: %v", w.err)
	}
	// The broker logged why it closed each connection.
	out := w.output()
	for _, want := range []string{"unknown API key 999", "4294967294 bytes announced", "2147483648 bytes announced"} {
		if !strings.Contains(out, want) {
			t.Fatalf("worker log lacks %q:\n%s", want, tail([]byte(out), 4096))
		}
	}
	w.stop(t)
}

// A worker that cannot connect to its source exits 1 and leaves no empty log
// folder behind (issue 11); a folder that existed before, and a file beside
// the log, are kept; a log that holds records is kept after a failure.
func TestFailedStartLeavesNoLogFolder(t *testing.T) {
	db := pgDB(t)
	wrongPass := strings.Replace(db, "postgres:postgres@", "postgres:wrong@", 1)
	base := t.TempDir()
	pipeline := func(dataDir string) string {
		return writeFile(t, base, "pipeline.yaml", fmt.Sprintf(`log:
  data_dir: %s
  listen: 127.0.0.1:%d
registry:
  listen: 127.0.0.1:%d
worker:
  http: 127.0.0.1:%d
sources:
  - name: s
    type: postgres
    url: %s
    tables: [public.t]
    topic_prefix: p
`, dataDir, freePort(t), freePort(t), freePort(t), wrongPass))
	}
	fresh := filepath.Join(base, "a", "b", "log")
	if err := os.WriteFile(filepath.Join(base, "keep.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	runExpectFailure(t, 1, []string{"password"}, "run", "-f", pipeline(fresh))
	if _, err := os.Stat(filepath.Join(base, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed run left %s behind (stat: %v)", filepath.Join(base, "a"), err)
	}
	if _, err := os.Stat(filepath.Join(base, "keep.txt")); err != nil {
		t.Fatalf("a file beside the log was removed: %v", err)
	}

	// A folder the user made beforehand stays, with its content.
	existing := filepath.Join(base, "mine")
	if err := os.MkdirAll(existing, 0o700); err != nil {
		t.Fatal(err)
	}
	runExpectFailure(t, 1, []string{"password"}, "run", "-f", pipeline(existing))
	if _, err := os.Stat(filepath.Join(existing, "kfake")); err != nil {
		t.Fatalf("a pre-existing data_dir lost its content: %v", err)
	}
}

// The log's files and the SQLite copy with its -wal and -shm files hold
// production rows: they are created 0600 and their folders 0700 (issue 11
// found 0644 everywhere).
func TestDataFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, whatever the test runner has
	defer syscall.Umask(old)
	le := newLogEnv(t, mode{"embedded", true})
	// The log folder does not exist yet, so tributary creates it.
	le.yaml = strings.Replace(le.yaml, "data_dir: "+le.dataDir, "data_dir: "+filepath.Join(le.dataDir, "new", "log"), 1)
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, accountsDDL)
	pgExec(t, c, "INSERT INTO accounts(name, balance) VALUES ('a', 1)")
	prefix, slot := uniq("perm"), uniq("slot")
	copyPath := filepath.Join(t.TempDir(), "copies", "copy.db")
	w := startWorker(t, le, pgPipeline(t, le, db, prefix, slot, []string{"public.accounts"},
		sqliteSinkYAML("lite", copyPath, prefix+".public.accounts", 10)))

	deadline := time.Now().Add(60 * time.Second)
	for {
		fi, err := os.Stat(copyPath + "-wal")
		if err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) || w.exited() {
			t.Fatalf("the SQLite copy was not written (%v)\n%s", err, tail([]byte(w.output()), 4096))
		}
		time.Sleep(100 * time.Millisecond)
	}
	check := func(path string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s is %#o, want %#o", path, got, want)
		}
	}
	check(filepath.Dir(copyPath), 0o700)
	for _, f := range []string{copyPath, copyPath + "-wal", copyPath + "-shm"} {
		check(f, 0o600)
	}
	files := 0
	root := filepath.Join(le.dataDir, "new")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			check(path, 0o700)
		} else {
			check(path, 0o600)
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d files under %s: the log was not written there", files, root)
	}
	w.stop(t)
}

// TestDiskFullResumes: log.data_dir on a 20 MiB tmpfs that fills up while
// the source streams. The worker names the full folder and the free space,
// keeps running, and once space is freed carries on with nothing lost
// (issue 11: it died with UNKNOWN_SERVER_ERROR and no cause).
func TestDiskFullResumes(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=20m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("this test mounts a tmpfs and needs root: mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			_ = exec.Command("umount", "-l", mnt).Run()
			t.Logf("umount %s: %v: %s", mnt, err, out)
		}
	})
	le := newLogEnv(t, mode{"embedded", true})
	dataDir := filepath.Join(mnt, "log")
	le.yaml = strings.Replace(le.yaml, "data_dir: "+le.dataDir, "data_dir: "+dataDir, 1)
	le.dataDir = dataDir
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, accountsDDL)
	prefix, slot := uniq("full"), uniq("slot")
	w := startWorker(t, le, pgPipeline(t, le, db, prefix, slot, []string{"public.accounts"}, ""))
	topic := prefix + ".public.accounts"
	r := newReader(t, le, topic)
	ids := func(evs []event) map[int64]bool {
		seen := map[int64]bool{}
		for _, e := range evs {
			if id, ok := e.Key["id"].(int64); ok {
				seen[id] = true
			}
		}
		return seen
	}
	insert := func(from, to int) {
		pgExec(t, c, fmt.Sprintf("INSERT INTO accounts(id, name, balance) SELECT g, repeat('x', 200), g FROM generate_series(%d, %d) g", from, to))
	}
	insert(1, 100)
	r.pollUntil(t, 60*time.Second, func(evs []event) bool { return len(ids(evs)) >= 100 })

	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", mnt, err)
			}
			break
		}
	}
	for small := chunk[:4096]; ; {
		if _, err := f.Write(small); err != nil {
			break
		}
	}
	f.Close()

	insert(101, 2000)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(w.output(), "no space left on the device of log folder "+filepath.Join(dataDir, "kfake")) {
		if time.Now().After(deadline) || w.exited() {
			t.Fatalf("no log line names the full folder (exited %v):\n%s", w.exited(), tail([]byte(w.output()), 4096))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(w.output(), " bytes free)") {
		t.Fatalf("the disk-full line does not give the free space:\n%s", tail([]byte(w.output()), 4096))
	}
	for _, l := range strings.Split(w.output(), "\n") {
		if strings.Contains(l, "no space left on the device") {
			t.Logf("worker: %s", l)
			break
		}
	}
	time.Sleep(3 * time.Second)
	if w.exited() {
		t.Fatalf("worker exited on a full disk: %v\n%s", w.err, tail([]byte(w.output()), 4096))
	}

	// Space is freed: the worker resumes by itself, nothing lost.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	insert(2001, 2100)
	evs := r.pollUntil(t, 3*time.Minute, func(evs []event) bool { return len(ids(evs)) >= 2100 })
	seen := ids(evs)
	for id := int64(1); id <= 2100; id++ {
		if !seen[id] {
			t.Fatalf("id %d missing from the log after the disk was freed", id)
		}
	}
	if w.exited() {
		t.Fatalf("worker exited: %v", w.err)
	}
	w.stop(t)
}

// TestMaxRecordBytes: a row above log.max_record_bytes stops the source with
// an error naming table, key, column and size; raising the limit and
// restarting is enough to get it into the log and a SQLite copy (issue 11:
// every restart failed the same, and no setting raised the limit).
func TestMaxRecordBytes(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, "CREATE TABLE big (id int PRIMARY KEY, payload text, note text)")
	pgExec(t, c, "INSERT INTO big VALUES (1, 'small', 'n')")
	prefix, slot := uniq("big"), uniq("slot")
	topic := prefix + ".public.big"
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	sinks := sqliteSinkYAML("lite", copyPath, topic, 10)
	cfg := pgPipeline(t, le, db, prefix, slot, []string{"public.big"}, sinks)
	w := startWorker(t, le, cfg)
	r := newReader(t, le, topic)
	r.pollUntil(t, 60*time.Second, func(evs []event) bool { return len(evs) >= 1 })

	const size = 3 << 20
	pgExec(t, c, fmt.Sprintf("INSERT INTO big VALUES (2, repeat('x', %d), 'n')", size))
	// The source fails alone (its sink goes on); the error names the row.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(w.output(), "connector failed") {
		if time.Now().After(deadline) || w.exited() {
			t.Fatalf("the source did not fail on a record above the limit:\n%s", tail([]byte(w.output()), 4096))
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if code := w.exitCode(t, 60*time.Second); code != 1 {
		t.Fatalf("worker with a failed source exited %d at SIGTERM, want 1", code)
	}
	out := w.output()
	for _, want := range []string{"table public.big", `key {"id":2}`, fmt.Sprintf("largest column payload (%d bytes)", size),
		"above log.max_record_bytes (1048576)", "raise log.max_record_bytes"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the error lacks %q:\n%s", want, tail([]byte(out), 4096))
		}
	}

	// Raised limit, plain restart: the row gets through to the log and the copy.
	raised := strings.Replace(le.yaml, "log:\n", "log:\n  max_record_bytes: 8MiB\n", 1)
	cfg = pgPipeline(t, &logEnv{yaml: raised}, db, prefix, slot, []string{"public.big"}, sinks)
	w = startWorker(t, le, cfg)
	r.pollUntil(t, 60*time.Second, func(evs []event) bool {
		for _, e := range evs {
			if a := e.after(); a != nil && len(fmt.Sprint(a["payload"])) == size {
				return true
			}
		}
		return false
	})
	cdb := openSQLite(t, copyPath)
	deadline = time.Now().Add(60 * time.Second)
	for {
		var n int
		err := cdb.QueryRow("SELECT length(payload) FROM public_big WHERE id = 2").Scan(&n)
		if err == nil && n == size {
			break
		}
		if time.Now().After(deadline) || w.exited() {
			t.Fatalf("the large row is not in the SQLite copy (%d bytes, %v)\n%s", n, err, tail([]byte(w.output()), 4096))
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.stop(t)
}

// TestMaxRecordBytesCheckedOnCluster: on Kafka, a topic whose
// max.message.bytes is below log.max_record_bytes is refused before the
// first record, naming the topic and the fix.
func TestMaxRecordBytesCheckedOnCluster(t *testing.T) {
	le := newLogEnv(t, mode{"kafka", false})
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, "CREATE TABLE big (id int PRIMARY KEY, payload text)")
	pgExec(t, c, "INSERT INTO big VALUES (1, 'a')")
	prefix, slot := uniq("bigk"), uniq("slot")
	topic := prefix + ".public.big"
	cl, err := kgo.NewClient(kgo.SeedBrokers(le.brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mmb := "1048588"
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &mmb}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	raised := strings.Replace(le.yaml, "log:\n", "log:\n  max_record_bytes: 8MiB\n", 1)
	cfg := pgPipeline(t, &logEnv{yaml: raised}, db, prefix, slot, []string{"public.big"}, "")
	runExpectFailure(t, 1, []string{"topic " + topic + " has max.message.bytes=1048588, below log.max_record_bytes (8388608)", "--add-config max.message.bytes=8388608"}, "run", "-f", cfg)
}

// TestLargeValueNotRetained: once a 64 MiB value is in the log, the worker
// does not keep copies of it (the PostgreSQL source's reused row and encode
// buffers and the runtime's record slab each held one: 400 MB live after a
// 100 MB row). What stays is pgx's read buffer, one copy. The peak is logged.
func TestLargeValueNotRetained(t *testing.T) {
	le := newLogEnv(t, mode{"embedded", true})
	le.yaml = strings.Replace(le.yaml, "log:\n", "log:\n  max_record_bytes: 128MiB\n", 1)
	db := pgDB(t)
	c := pgConn(t, db)
	pgExec(t, c, "CREATE TABLE big (id int PRIMARY KEY, payload text)")
	pgExec(t, c, "INSERT INTO big VALUES (1, 'a')")
	prefix, slot := uniq("keep"), uniq("slot")
	w := startWorker(t, le, pgPipeline(t, le, db, prefix, slot, []string{"public.big"}, ""))
	r := newReader(t, le, prefix+".public.big")
	r.pollUntil(t, 60*time.Second, func(evs []event) bool { return len(evs) >= 1 })

	const size = 64 << 20
	pgExec(t, c, fmt.Sprintf("INSERT INTO big VALUES (2, repeat('x', %d))", size))
	r.pollUntil(t, 60*time.Second, func(evs []event) bool {
		for _, e := range evs {
			if a := e.after(); a != nil && len(fmt.Sprint(a["payload"])) == size {
				return true
			}
		}
		return false
	})
	// The heap profile endpoint runs a GC first; then read what is live.
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + le.httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		t.Fatalf("no %s in /metrics", name)
		return 0
	}
	var live float64
	for range 3 { // sync.Pool victims survive one GC
		resp, err := http.Get("http://" + le.httpAddr + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		live = metric("go_memstats_heap_alloc_bytes")
	}
	hwm, _, err := readProcMem(w.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("64 MiB value: worker VmHWM %d MiB, live heap after GC %.0f MiB", hwm>>10, live/(1<<20))
	if live > 1.6*size {
		t.Fatalf("live heap %.0f MiB after the 64 MiB value is in the log: copies of it are kept", live/(1<<20))
	}
	w.stop(t)
}

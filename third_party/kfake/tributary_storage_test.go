package kfake

// tributary patch tests: a segment write that fails (a full disk) answers
// KAFKA_STORAGE_ERROR with the cause, producers retry, and nothing is lost or
// duplicated once writes succeed again.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fullFS is the real file system, except that writes to segment files fail
// with ENOSPC while full is set.
type fullFS struct {
	osFS
	full     atomic.Bool
	failures atomic.Int64
}

type fullFile struct {
	file
	fs   *fullFS
	name string
}

func (f *fullFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	fl, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullFile{fl, f, name}, nil
}

func (f *fullFile) Write(p []byte) (int, error) {
	if f.fs.full.Load() && strings.HasSuffix(f.name, ".dat") {
		f.fs.failures.Add(1)
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return f.file.Write(p)
}

type captureLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *captureLogger) Logf(level LogLevel, msg string, args ...any) {
	if level == LogLevelError {
		l.mu.Lock()
		l.lines = append(l.lines, fmt.Sprintf(msg, args...))
		l.mu.Unlock()
	}
}

func (l *captureLogger) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestTributaryDiskFullRetriedWithoutLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	ffs := &fullFS{}
	logs := &captureLogger{}
	c, err := NewCluster(NumBrokers(1), DataDir(dir), withFS(ffs), SyncWrites(), WithLogger(logs), SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordRetries(1<<30),
		kgo.ProducerLinger(0), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const before, during = 20, 50
	for i := range before {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ffs.full.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, during)
	for i := before; i < before+during; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				errs <- err
			}
			wg.Done()
		})
	}
	// Writes fail for a while: the producer keeps retrying, nothing is
	// acknowledged and nothing fails.
	// A retry that is answered as a duplicate of the failed batch
	// (its sequence taken) is never written: then only one write fails.
	for wait := time.Now().Add(30 * time.Second); ffs.failures.Load() < 2; {
		if time.Now().After(wait) {
			t.Fatalf("%d segment writes attempted while the disk was full: the failed batch was not retried", ffs.failures.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-errs:
		t.Fatalf("a record failed while the disk was full instead of being retried: %v", err)
	default:
	}
	out := logs.text()
	if !strings.Contains(out, "no space left on the device of log folder "+dir) || !strings.Contains(out, " bytes free)") {
		t.Fatalf("the error log does not name the full folder and the free space:\n%s", out)
	}
	ffs.full.Store(false)
	freed := time.Now()
	wg.Wait()
	t.Logf("acknowledged %v after writes succeed again", time.Since(freed))
	close(errs)
	for err := range errs {
		t.Fatalf("record failed: %v", err)
	}

	// Every record once, in order.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < before+during && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	t.Logf("consumed %v after writes succeed again", time.Since(freed))
	if len(got) != before+during {
		t.Fatalf("%d records in the log, want %d", len(got), before+during)
	}
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %s: lost, duplicated or reordered (%v)", i, v, got)
		}
	}
}

package mysql

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// testURL is the MariaDB started by integration/services/up.sh.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TRIBUTARY_TEST_MYSQL_URL")
	if u == "" {
		t.Fatal("TRIBUTARY_TEST_MYSQL_URL is not set: run `make test` (it starts MariaDB and exports it), or source /tmp/tributary-services/env.sh")
	}
	return u
}

// testDB is a database of its own on the test server, dropped at the end.
type testDB struct {
	t    testing.TB
	url  string
	ep   endpoint
	conn *client.Conn
	name string
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	u := testURL(t)
	cfg := &Config{URL: u}
	ep, err := cfg.endpoint()
	if err != nil {
		t.Fatalf("TRIBUTARY_TEST_MYSQL_URL: %v", err)
	}
	conn, err := connect(context.Background(), ep)
	if err != nil {
		t.Fatalf("connecting to the test server: %v", err)
	}
	d := &testDB{t: t, url: u, ep: ep, conn: conn, name: fmt.Sprintf("tribmy_%d_%d", os.Getpid(), rand.IntN(1_000_000))}
	d.exec("CREATE DATABASE " + d.name + " CHARACTER SET utf8mb4")
	t.Cleanup(func() {
		_, _ = d.conn.Execute("DROP DATABASE IF EXISTS " + d.name)
		d.conn.Close()
	})
	if _, err := conn.Execute("USE " + d.name); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *testDB) exec(stmts ...string) {
	d.t.Helper()
	for _, s := range stmts {
		if _, err := d.conn.Execute(s); err != nil {
			d.t.Fatalf("%s: %v", s, err)
		}
	}
}

// other opens another connection to the test database.
func (d *testDB) other() *client.Conn {
	d.t.Helper()
	c, err := connect(context.Background(), d.ep)
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := c.Execute("USE " + d.name); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

func (d *testDB) config(tables ...string) *Config {
	cfg := NewConfig()
	cfg.URL = d.url
	for _, t := range tables {
		cfg.Tables = append(cfg.Tables, d.name+"."+t)
	}
	cfg.TopicPrefixValue = "tp"
	return cfg
}

// running is a connector running in the background.
type running struct {
	t      testing.TB
	c      *Connector
	rt     *fakeRuntime
	cancel context.CancelFunc
	done   chan error
}

func (d *testDB) start(cfg *Config, hist HistoryStore, offset map[string]any) *running {
	d.t.Helper()
	rt := newFakeRuntime(d.t, offset)
	c, err := Open("c-"+d.name, cfg, rt.log)
	if err != nil {
		d.t.Fatalf("Open: %v", err)
	}
	c.SetHistory(hist)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: d.t, c: c, rt: rt, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx, rt) }()
	d.t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// stop cancels the connector and returns what Run returned (nil for a
// clean shutdown).
func (r *running) stop() error {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-time.After(30 * time.Second):
		r.t.Fatal("connector did not stop within 30s")
		return nil
	}
}

// wait returns Run's error when it ends by itself.
func (r *running) wait(timeout time.Duration) error {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(timeout):
		r.t.Fatalf("connector still running after %s; log:\n%s", timeout, r.rt.logBuf.String())
		return nil
	}
}

// runToError runs a connector that must fail and returns the error.
func (d *testDB) runToError(cfg *Config, hist HistoryStore, offset map[string]any) error {
	d.t.Helper()
	r := d.start(cfg, hist, offset)
	err := r.wait(60 * time.Second)
	if err == nil {
		d.t.Fatalf("connector ended without error; log:\n%s", r.rt.logBuf.String())
	}
	return err
}

func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error mentioning %q, got nil", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not mention %q:\n%v", p, err)
		}
	}
	t.Logf("error (as expected): %v", err)
}

package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

func TestCheckBinlogSettings(t *testing.T) {
	good := map[string]string{"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL", "gtid_mode": "ON"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		flavor string
		vars   map[string]string
		err    string
		warn   string
	}{
		{flavorMariaDB, good, "", ""},
		{flavorMySQL, good, "", ""},
		{flavorMariaDB, with("log_bin", "OFF"), "binary log is off (log_bin=OFF)", ""},
		{flavorMySQL, with("log_bin", "0"), "binary log is off", ""},
		{flavorMariaDB, with("binlog_format", "STATEMENT"), "binlog_format is STATEMENT, but change data capture needs ROW", ""},
		{flavorMariaDB, with("binlog_format", "MIXED"), "binlog_format is MIXED", ""},
		{flavorMariaDB, with("binlog_row_image", "MINIMAL"), "binlog_row_image is MINIMAL", ""},
		{flavorMySQL, with("binlog_row_image", "NOBLOB"), "binlog_row_image is NOBLOB", ""},
		{flavorMariaDB, with("binlog_row_metadata", "MINIMAL"), "", "binlog_row_metadata is MINIMAL"},
		{flavorMySQL, with("gtid_mode", "OFF"), "", "gtid_mode is OFF"},
		{flavorMariaDB, with("gtid_mode", "OFF"), "", ""}, // MariaDB has no gtid_mode
	}
	for _, c := range cases {
		warns, err := checkBinlogSettings(c.flavor, c.vars)
		if c.err == "" && err != nil {
			t.Errorf("%s %v: unexpected error %v", c.flavor, c.vars, err)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s %v: error %v, want %q", c.flavor, c.vars, err, c.err)
		}
		joined := strings.Join(warns, "\n")
		if c.warn == "" && c.err == "" && joined != "" {
			t.Errorf("%s %v: unexpected warnings %q", c.flavor, c.vars, joined)
		}
		if c.warn != "" && !strings.Contains(joined, c.warn) {
			t.Errorf("%s %v: warnings %q, want %q", c.flavor, c.vars, joined, c.warn)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)")
	cfg := d.config("t")
	cfg.URL = fmt.Sprintf("mysql://%s:not-the-password@%s", d.ep.User, d.ep.addr())
	err := d.runToError(cfg, &MemoryHistory{}, nil)
	wantErr(t, err, "access denied", "wrong user or password", d.ep.addr())
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("the password leaked into the error: %v", err)
	}
}

func TestMissingTable(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)")
	err := d.runToError(d.config("t", "nope", "zz_*"), &MemoryHistory{}, nil)
	wantErr(t, err, "table "+d.name+".nope does not exist", `pattern "`+d.name+`.zz_*" matches no table`)
}

// TestUserWithoutReplicationPrivileges uses a user that may read the table
// but not the binlog.
func TestUserWithoutReplicationPrivileges(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)")
	user := "norepl_" + d.name[len(d.name)-6:]
	d.exec("CREATE USER '"+user+"'@'%' IDENTIFIED BY 'pw-norepl-123'",
		"GRANT SELECT ON "+d.name+".* TO '"+user+"'@'%'")
	t.Cleanup(func() { _, _ = d.conn.Execute("DROP USER IF EXISTS '" + user + "'@'%'") })
	cfg := d.config("t")
	cfg.URL = fmt.Sprintf("mysql://%s:pw-norepl-123@%s", user, d.ep.addr())
	err := d.runToError(cfg, &MemoryHistory{}, nil)
	wantErr(t, err, user, "REPLICATION SLAVE")

	// With REPLICATION CLIENT / BINLOG MONITOR but not REPLICATION SLAVE.
	d.exec("GRANT BINLOG MONITOR ON *.* TO '" + user + "'@'%'")
	err = d.runToError(cfg, &MemoryHistory{}, nil)
	wantErr(t, err, "lacks the REPLICATION SLAVE privilege")
}

// TestDuplicateServerID runs a second replica with the connector's
// server_id: a second connector is refused at start, and a foreign replica
// that takes the id over makes the running connector stop with a clear
// error.
func TestDuplicateServerID(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)")
	cfg := d.config("t")
	cfg.ServerID = 4000000000 + uint32(time.Now().UnixNano()%1000000)
	r := d.start(cfg, &MemoryHistory{}, nil)
	waitFor(t, 30*time.Second, "streaming", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	time.Sleep(200 * time.Millisecond) // the dump registers right after

	// Another connector (another name) with the same server_id.
	rt2 := newFakeRuntime(t, nil)
	c2, err := Open("other-connector", cfg, rt2.log)
	if err != nil {
		t.Fatal(err)
	}
	c2.SetHistory(&MemoryHistory{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c2.Run(ctx, rt2)
	wantErr(t, err, fmt.Sprintf("server_id %d is already used by another replica", cfg.ServerID), "tributary-c-"+d.name)

	// A replica that does not check takes the id: the server drops the
	// connector's connection.
	end, err := binlogEnd(d.conn, flavorMariaDB)
	if err != nil {
		t.Fatal(err)
	}
	sy := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{ServerID: cfg.ServerID, Flavor: flavorMariaDB,
		Host: d.ep.Host, Port: d.ep.Port, User: d.ep.User, Password: d.ep.Password, Logger: rt2.log})
	defer sy.Close()
	if _, err := sy.StartSync(gomysql.Position{Name: end.File, Pos: end.Pos}); err != nil {
		t.Fatal(err)
	}
	err = r.wait(30 * time.Second)
	wantErr(t, err, "another replica with server_id", "must be unique")
}

// TestRowImageAndFormatGuards: a session writing with binlog_row_image
// MINIMAL or binlog_format STATEMENT must stop the connector, not lose data.
func TestRowImageAndFormatGuards(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"SET SESSION binlog_row_image = 'MINIMAL'", "binlog_row_image other than FULL"},
		{"SET SESSION binlog_format = 'STATEMENT'", "statement-based change of captured table"},
	} {
		t.Run(c.set, func(t *testing.T) {
			d := newTestDB(t)
			d.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT, w INT)", "INSERT INTO t VALUES (1, 1, 1)")
			r := d.start(d.config("t"), &MemoryHistory{}, nil)
			waitFor(t, 30*time.Second, "streaming", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
			o := d.other()
			for _, q := range []string{c.set, "UPDATE t SET v = 2 WHERE id = 1"} {
				if _, err := o.Execute(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			err := r.wait(30 * time.Second)
			wantErr(t, err, c.want, "mariadb-bin")
		})
	}
}

// TestServerRowImageMinimal flips the server's global binlog_row_image for
// a moment: start-up must refuse it. (Other tests on this server do not
// read the binlog, and the value is restored at once.)
func TestServerRowImageMinimal(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)")
	rows, err := query(d.conn, "SELECT @@GLOBAL.binlog_row_image")
	if err != nil {
		t.Fatal(err)
	}
	orig := rows[0][0]
	d.exec("SET GLOBAL binlog_row_image = 'MINIMAL'")
	defer d.exec("SET GLOBAL binlog_row_image = '" + orig + "'")
	c, err := Open("c-"+d.name, d.config("t"), newFakeRuntime(t, nil).log)
	if err != nil {
		t.Fatal(err)
	}
	c.SetHistory(&MemoryHistory{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx, newFakeRuntime(t, nil))
	d.exec("SET GLOBAL binlog_row_image = '" + orig + "'")
	wantErr(t, err, "binlog_row_image is MINIMAL", "set binlog_row_image=FULL")
}

func TestResumeGuards(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	cfg := d.config("t")
	hist := &MemoryHistory{}
	r := d.start(cfg, hist, nil)
	waitFor(t, 30*time.Second, "streaming", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	good := r.rt.lastCheckpoint()
	file, pos := good["file"], good["pos"]

	// An empty GTID set and no file: never "from the start".
	err := d.runToError(cfg, hist, map[string]any{"gtids": ""})
	wantErr(t, err, "neither a GTID set nor a binlog file", "refusing to read the binlog from its first file")

	// A GTID domain the server never had.
	err = d.runToError(cfg, hist, map[string]any{"gtids": "77-1-5", "file": file, "pos": pos})
	wantErr(t, err, "names GTID domain 77", "does not know", "77-1-5")

	// A position the server has not reached: another server's offset.
	err = d.runToError(cfg, hist, map[string]any{"gtids": "0-1-999999999", "file": file, "pos": pos})
	wantErr(t, err, "ahead of server", "0-1-999999999")

	// A binlog file that does not exist (and no GTIDs).
	err = d.runToError(cfg, hist, map[string]any{"file": "mariadb-bin.999999", "pos": 4})
	wantErr(t, err, "no longer on the server", "mariadb-bin.999999", "when_needed")
}

// TestPurgedBinlog purges the binlog a committed offset points into: the
// connector stops with a clear error, and with snapshot: when_needed takes
// a new snapshot and carries on.
func TestPurgedBinlog(t *testing.T) {
	d := newTestDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 1)")
	cfg := d.config("t")
	hist := &MemoryHistory{}
	r := d.start(cfg, hist, nil)
	waitFor(t, 30*time.Second, "streaming", func() bool { return strings.Contains(r.rt.logBuf.String(), "streaming the binlog") })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	off := r.rt.lastCheckpoint()
	d.exec("INSERT INTO t VALUES (2, 2)", "FLUSH BINARY LOGS")
	end, err := binlogEnd(d.conn, flavorMariaDB)
	if err != nil {
		t.Fatal(err)
	}
	d.exec("INSERT INTO t VALUES (3, 3)", "PURGE BINARY LOGS TO '"+end.File+"'")

	err = d.runToError(cfg, hist, off)
	wantErr(t, err, "no longer on the server", "purged", "snapshot: when_needed")

	// The same offset without GTIDs is caught before streaming.
	fileOnly := map[string]any{"file": off["file"], "pos": off["pos"]}
	err = d.runToError(cfg, hist, fileOnly)
	wantErr(t, err, "is not among the server's files")

	cfg.Snapshot = SnapshotWhenNeeded
	r2 := d.start(cfg, hist, off)
	waitFor(t, 30*time.Second, "new snapshot", func() bool { return r2.rt.count() >= 3 })
	d.exec("UPDATE t SET v = 30 WHERE id = 3")
	waitFor(t, 30*time.Second, "streamed update", func() bool { return r2.rt.count() >= 4 })
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range r2.rt.decode(t, r2.rt.recs()) {
		got = append(got, fmt.Sprintf("%s %v %v", e.Op, e.After["id"], e.After["v"]))
	}
	if want := "r 1 1|r 2 2|r 3 3|u 3 30"; strings.Join(got, "|") != want {
		t.Errorf("events %q, want %q", strings.Join(got, "|"), want)
	}
	if !strings.Contains(r2.rt.logBuf.String(), "when_needed takes a new snapshot") {
		t.Error("no log line about the new snapshot")
	}
}

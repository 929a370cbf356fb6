// Package broker owns the two ways tributary reaches a Kafka-protocol log:
// the embedded kfake broker (one machine, zero setup) and a real cluster.
// Both are used through the same franz-go client code (NewClient).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sys/unix"
)

// EmbeddedConfig configures the in-process broker.
type EmbeddedConfig struct {
	// DataDir persists the log. tributary holds an exclusive lock on it.
	DataDir string
	// Listen is a host:port; the host must be a loopback address unless
	// AllowNonLoopback is set, because kfake has no authentication.
	Listen           string
	AllowNonLoopback bool
	// SyncWrites fsyncs every produced batch before it is acknowledged, so an
	// acknowledged record survives a power loss, not only a process crash.
	SyncWrites bool
	// CompactionInterval replaces kfake's one-hour default cleaner backoff.
	CompactionInterval time.Duration
	// Partitions is the default partition count of auto-created topics.
	Partitions int
	// MaxRecordBytes is log.max_record_bytes: the broker's message.max.bytes
	// and request limit allow records of that size (0: the defaults).
	MaxRecordBytes int64
	Logger         *slog.Logger
}

// Embedded is a running in-process broker.
type Embedded struct {
	cluster *kfake.Cluster
	lock    *os.File
	addr    string
	dataDir string
	// created are the folders StartEmbedded made, deepest first, so
	// CloseDiscardingUnused can take them away again.
	created []string
}

// ErrDataDirLocked is returned when another process holds the data folder.
var ErrDataDirLocked = errors.New("log data folder is in use by another tributary process")

// StartEmbedded locks cfg.DataDir and starts kfake on it.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded broker: log.data_dir is empty")
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: log.listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: log.listen %q: bad port", cfg.Listen)
	}
	if !cfg.AllowNonLoopback && !isLoopback(host) {
		return nil, fmt.Errorf("embedded broker: log.listen %q is not a loopback address; the embedded broker has no authentication", cfg.Listen)
	}
	created := missingDirs(cfg.DataDir)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded broker: creating log.data_dir: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	interval := cfg.CompactionInterval
	if interval <= 0 {
		interval = time.Minute
	}
	parts := cfg.Partitions
	if parts <= 0 {
		parts = 1
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(filepath.Join(cfg.DataDir, "kfake")),
		kfake.DefaultNumPartitions(parts),
		kfake.WithLogger(kfakeLogger{logger.With("component", "embedded-broker")}),
		// kfake's default cleaner backoff is one hour; a compacted topic would
		// otherwise keep every version of every row that long.
		kfake.BrokerConfigs(map[string]string{
			"log.cleaner.backoff.ms": strconv.FormatInt(interval.Milliseconds(), 10),
			// log.max_record_bytes: a batch holds at most one record
			// of that size (the producer's batch limit is the same).
			"message.max.bytes": strconv.FormatInt(max(kafkaDefaultMaxMessageBytes, maxRecord(cfg.MaxRecordBytes)), 10),
		}),
		kfake.MaxRequestBytes(int32(RequestBytesFor(maxRecord(cfg.MaxRecordBytes)))),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		unlockDir(lock)
		return nil, fmt.Errorf("embedded broker: starting on %s with data in %s: %w", cfg.Listen, cfg.DataDir, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		unlockDir(lock)
		return nil, errors.New("embedded broker: no listener")
	}
	return &Embedded{cluster: c, lock: lock, addr: addrs[0], dataDir: cfg.DataDir, created: created}, nil
}

// Addr is the host:port the broker listens on.
func (e *Embedded) Addr() string { return e.addr }

// Compact runs compaction now (tests and shutdown use it).
func (e *Embedded) Compact() { e.cluster.Compact() }

// Close stops the broker (kfake syncs its files on shutdown) and releases the lock.
func (e *Embedded) Close() {
	e.cluster.Close()
	unlockDir(e.lock)
}

// CloseDiscardingUnused closes like Close, then removes the folders that
// StartEmbedded created if the log holds no record: a worker that failed
// before its pipeline wrote anything (a source it could not connect to)
// leaves no empty log folder behind. A folder that existed before, or that
// holds anything else (a SQLite copy beside the log), is kept.
func (e *Embedded) CloseDiscardingUnused() {
	e.cluster.Close()
	defer unlockDir(e.lock)
	if len(e.created) == 0 || holdsRecords(filepath.Join(e.dataDir, "kfake")) {
		return
	}
	// data_dir itself was created by this process and holds only the
	// lock and kfake's metadata; the folders above it go only if empty.
	if err := os.RemoveAll(e.dataDir); err != nil {
		return
	}
	for _, d := range e.created[1:] {
		if os.Remove(d) != nil {
			return
		}
	}
}

// missingDirs lists dir and those of its parents that do not exist yet,
// deepest first.
func missingDirs(dir string) []string {
	var out []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			return out
		}
		out = append(out, d)
		if filepath.Dir(d) == d {
			return out
		}
	}
}

// holdsRecords reports whether kfake's folder has a non-empty segment file
// (<base>.dat), or whether that cannot be told (then the folder is kept).
func holdsRecords(dir string) bool {
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".dat") {
			if fi, err := d.Info(); err != nil || fi.Size() > 0 {
				found = true
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found || err != nil
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: opening lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (held by pid %s); stop the other worker or use another log.data_dir",
				ErrDataDirLocked, dir, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("embedded broker: locking %s: %w", path, err)
	}
	// The pid is only informational: the flock itself is released by the
	// kernel when the process dies, so kill -9 never leaves a stale lock.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func unlockDir(f *os.File) {
	if f == nil {
		return
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		k.l.Error(fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		k.l.Warn(fmt.Sprintf(msg, args...))
	case kfake.LogLevelInfo:
		// kfake logs every request at info; that is noise for users. A
		// compaction pass (third_party/kfake) is housekeeping worth seeing.
		if strings.HasPrefix(msg, "compacted ") {
			k.l.Info(fmt.Sprintf(msg, args...))
		}
	default:
		// debug: every request.
	}
}

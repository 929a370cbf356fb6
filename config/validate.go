package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/tributary-cdc/tributary/source"
)

// Validate methods here return *source.FieldError values (through fieldErr)
// with keys relative to their section; the decoder turns them into
// positioned errors.

var (
	topicName  = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	workerName = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
)

// MaxRecordBytesLimit is the largest log.max_record_bytes: the decoder of
// sinks and tail accepts values up to 256 MiB.
const MaxRecordBytesLimit = 256 << 20

func (l *Log) Validate() error {
	var errs []error
	for i, b := range l.Brokers {
		if err := checkHostPort(b, false); err != nil {
			errs = append(errs, fieldErr(fmt.Sprintf("brokers[%d]", i), "%v", err))
		}
	}
	if l.Embedded() {
		if l.DataDir == "" {
			errs = append(errs, fieldErr("data_dir", "must not be empty in embedded mode"))
		}
		if err := checkHostPort(l.Listen, true); err != nil {
			errs = append(errs, fieldErr("listen", "%v", err))
		} else if !isLoopback(l.Listen) {
			errs = append(errs, fieldErr("listen", "%q is not a loopback address; the embedded broker has no authentication", l.Listen))
		}
		if l.TLS != nil {
			errs = append(errs, fieldErr("tls", "applies to log.brokers only; the embedded broker serves plain loopback connections"))
		}
		if l.SASL != nil {
			errs = append(errs, fieldErr("sasl", "applies to log.brokers only; the embedded broker has no authentication"))
		}
	}
	if l.Partitions < 1 {
		errs = append(errs, fieldErr("partitions", "must be at least 1, got %d", l.Partitions))
	}
	if l.ReplicationFactor != -1 && (l.ReplicationFactor < 1 || l.ReplicationFactor > 32767) {
		errs = append(errs, fieldErr("replication_factor", "must be -1 (broker default) or between 1 and 32767, got %d", l.ReplicationFactor))
	}
	if l.MaxRecordBytes < 1<<10 || l.MaxRecordBytes > MaxRecordBytesLimit {
		// 256 MiB: what sinks and tail decode (schema.decodeMaxBytes).
		errs = append(errs, fieldErr("max_record_bytes", "must be between 1KiB and 256MiB, got %d", l.MaxRecordBytes.Int64()))
	}
	if l.CompactionInterval <= 0 {
		errs = append(errs, fieldErr("compaction_interval", "must be positive, got %s", l.CompactionInterval))
	}
	if !topicName.MatchString(l.OffsetsTopic) {
		errs = append(errs, fieldErr("offsets_topic", "%q is not a valid topic name ([a-zA-Z0-9._-], at most 249 characters)", l.OffsetsTopic))
	}
	return errors.Join(errs...)
}

func (r *Registry) Validate() error {
	var errs []error
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			errs = append(errs, fieldErr("url", "invalid URL %q", Redact(r.URL)))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fieldErr("url", "%q must start with http:// or https://", Redact(r.URL)))
		case u.Host == "":
			errs = append(errs, fieldErr("url", "%q has no host", Redact(r.URL)))
		}
	} else {
		if err := checkHostPort(r.Listen, true); err != nil {
			errs = append(errs, fieldErr("listen", "%v", err))
		} else if !isLoopback(r.Listen) {
			errs = append(errs, fieldErr("listen", "%q is not a loopback address; the embedded registry has no authentication", r.Listen))
		}
		if r.BasicAuth != nil {
			errs = append(errs, fieldErr("basic_auth", "applies to registry.url only; the embedded registry has no authentication"))
		}
	}
	return errors.Join(errs...)
}

func (w *Worker) Validate() error {
	var errs []error
	if !workerName.MatchString(w.Name) {
		errs = append(errs, fieldErr("name", "%q must match [a-zA-Z0-9_.-]+", w.Name))
	}
	if err := checkHostPort(w.HTTP, true); err != nil {
		errs = append(errs, fieldErr("http", "%v", err))
	}
	if w.MaxInFlightBytes < 64<<10 {
		errs = append(errs, fieldErr("max_in_flight_bytes", "must be at least 64KiB, got %s", w.MaxInFlightBytes))
	}
	if w.FlushInterval <= 0 {
		errs = append(errs, fieldErr("flush_interval", "must be positive, got %s", w.FlushInterval))
	}
	if w.Group != "" && !workerName.MatchString(w.Group) {
		errs = append(errs, fieldErr("group", "%q must match [a-zA-Z0-9_.-]+", w.Group))
	}
	if w.TransactionInterval <= 0 {
		errs = append(errs, fieldErr("transaction_interval", "must be positive, got %s", w.TransactionInterval))
	}
	if w.GroupSessionTimeout < time.Second {
		errs = append(errs, fieldErr("group_session_timeout", "must be at least 1s, got %s", w.GroupSessionTimeout))
	}
	return errors.Join(errs...)
}

// SlogLevel is log_level as a slog.Level.
func (w *Worker) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(w.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

func (t *TLS) Validate() error {
	var errs []error
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fieldErr("cert_file", "cert_file and key_file must be set together"))
	}
	for _, f := range []struct{ key, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fieldErr(f.key, "%v", err))
		}
	}
	return errors.Join(errs...)
}

// Config builds the crypto/tls configuration (TLS 1.2 at least).
func (t *TLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificate found", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func fieldErr(key, format string, args ...any) error {
	return &source.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

func checkHostPort(addr string, allowEmptyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" && !allowEmptyHost {
		return fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

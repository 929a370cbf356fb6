package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Duration is a time.Duration written as "100ms", "5s", "1m30s".
// Plain time.Duration fields decode the same way; this type exists for
// configs that also want to marshal the value back as text.
type Duration time.Duration

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a Go duration string; a bare number is refused because
// its unit would be a guess.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil && s != "0" {
			return 0, fmt.Errorf("duration %q needs a unit, e.g. %sms or %ss", s, s, s)
		}
		return 0, fmt.Errorf("invalid duration %q: want e.g. 100ms, 5s, 1m30s", s)
	}
	return v, nil
}

// ByteSize is a number of bytes written as an integer or with a unit:
// "64MiB", "512KiB", "1GiB" (powers of 1024) or "10MB", "1GB" (powers of 1000).
type ByteSize int64

// Int64 returns the number of bytes.
func (s ByteSize) Int64() int64 { return int64(s) }

func (s ByteSize) String() string {
	if s < 0 {
		return strconv.FormatInt(int64(s), 10)
	}
	return strings.ReplaceAll(humanize.IBytes(uint64(s)), " ", "")
}

func (s *ByteSize) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	if n, err := strconv.ParseInt(str, 10, 64); err == nil {
		*s = ByteSize(n)
		return nil
	}
	n, err := humanize.ParseBytes(str)
	if err != nil {
		return fmt.Errorf("invalid byte size %q: want e.g. 65536, 512KiB, 64MiB, 1GiB", str)
	}
	if n > 1<<62 {
		return fmt.Errorf("byte size %q is too large", str)
	}
	*s = ByteSize(n)
	return nil
}

func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Secret is a string that never prints: fmt, slog and encoders show
// "xxxxx" instead of the value. Use string(s) where the value is needed.
type Secret string

const redacted = "xxxxx"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

func (s Secret) GoString() string              { return strconv.Quote(s.String()) }
func (s Secret) LogValue() slog.Value          { return slog.StringValue(s.String()) }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(s.String()), nil }
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, s.String()) }

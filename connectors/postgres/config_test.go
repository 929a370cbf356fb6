package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/source"
)

func validConfig() *Config {
	c := NewConfig()
	c.URL = "postgres://app:s3cret@db.example:5432/shop?sslmode=disable"
	c.Tables = []string{"public.orders", "sales.*"}
	c.TopicPrefixValue = "shop"
	return c
}

func TestConfigDefaultsMatchTags(t *testing.T) {
	c := NewConfig()
	if c.Snapshot != SnapshotInitial || c.SnapshotChunkRows != 20000 || c.SnapshotParallelism != 2 ||
		c.HeartbeatInterval != 10*time.Second || c.StatusInterval != time.Second || !c.ReplicaIdentityWarn {
		t.Fatalf("defaults: %+v", c)
	}
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	d, ok := source.Lookup("postgres")
	if !ok {
		t.Fatal("driver postgres is not registered")
	}
	if _, ok := d.NewConfig().(*Config); !ok {
		t.Fatalf("NewConfig returns %T", d.NewConfig())
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		key    string
		msg    string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "url", "required"},
		{"bad url", func(c *Config) { c.URL = "postgres://app:s3cret@db:notaport/x" }, "url", "not a valid"},
		{"no tables", func(c *Config) { c.Tables = nil }, "tables", "at least one"},
		{"bad table", func(c *Config) { c.Tables = []string{"a.b.c"} }, "tables[0]", "schema.table"},
		{"empty table", func(c *Config) { c.Tables = []string{"ok", " "} }, "tables[1]", "empty"},
		{"no prefix", func(c *Config) { c.TopicPrefixValue = "" }, "topic_prefix", "required"},
		{"bad prefix", func(c *Config) { c.TopicPrefixValue = "a b" }, "topic_prefix", "letters"},
		{"bad slot", func(c *Config) { c.Slot = "My-Slot" }, "slot", "not a valid replication slot name"},
		{"bad publication", func(c *Config) { c.Publication = "x;drop" }, "publication", "not a valid publication"},
		{"bad snapshot", func(c *Config) { c.Snapshot = "always" }, "snapshot", "not one of"},
		{"chunk", func(c *Config) { c.SnapshotChunkRows = 0 }, "snapshot_chunk_rows", "at least 1"},
		{"parallelism", func(c *Config) { c.SnapshotParallelism = 0 }, "snapshot_parallelism", "between 1 and 64"},
		{"key pattern", func(c *Config) { c.KeyColumns = map[string][]string{"public.*": {"id"}} }, "key_columns.public.*", "not a pattern"},
		{"key empty", func(c *Config) { c.KeyColumns = map[string][]string{"events": nil} }, "key_columns.events", "at least one column"},
		{"key dup", func(c *Config) { c.KeyColumns = map[string][]string{"events": {"a", "a"}} }, "key_columns.events", "twice"},
		{"heartbeat", func(c *Config) { c.HeartbeatInterval = -time.Second }, "heartbeat_interval", "negative"},
		{"status", func(c *Config) { c.StatusInterval = 0 }, "status_interval", "positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			var fe *source.FieldError
			found := false
			for _, e := range unjoin(err) {
				if errors.As(e, &fe) && fe.Key == tc.key && strings.Contains(fe.Msg, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want a FieldError for %q containing %q, got: %v", tc.key, tc.msg, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestDefaultObjectNames(t *testing.T) {
	c := validConfig()
	if got := c.slotName("Orders-Source.1"); got != "tributary_orders_source_1" {
		t.Fatalf("slot default: %q", got)
	}
	if got := c.publicationName("x"); got != "tributary_x" {
		t.Fatalf("publication default: %q", got)
	}
	long := c.slotName(strings.Repeat("a", 100))
	if len(long) != 63 || !identRe.MatchString(long) {
		t.Fatalf("long name %q (%d) is not a valid slot name", long, len(long))
	}
	c.Slot, c.Publication = "myslot", "mypub"
	if c.slotName("x") != "myslot" || c.publicationName("x") != "mypub" {
		t.Fatal("explicit names not used")
	}
}

func TestKeyColumnsFor(t *testing.T) {
	c := validConfig()
	c.KeyColumns = map[string][]string{"events": {"a", "b"}, "audit.log": {"ts"}}
	if got := c.keyColumnsFor("public", "events"); strings.Join(got, ",") != "a,b" {
		t.Fatalf("public.events: %v", got)
	}
	if got := c.keyColumnsFor("audit", "log"); strings.Join(got, ",") != "ts" {
		t.Fatalf("audit.log: %v", got)
	}
	if got := c.keyColumnsFor("public", "log"); got != nil {
		t.Fatalf("public.log: %v", got)
	}
}

func TestRedact(t *testing.T) {
	url := "postgres://app:pa%40ss@db:5432/x"
	msg := redact("failed for postgres://app:pa%40ss@db:5432/x with pa@ss", url)
	if strings.Contains(msg, "pa@ss") || strings.Contains(msg, "pa%40ss") {
		t.Fatalf("not redacted: %s", msg)
	}
}

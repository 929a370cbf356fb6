package mysql

import (
	"strings"
	"testing"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/source"
)

// TestConfigFromYAML decodes a pipeline entry through the config package,
// the way `tributary run` does, and checks defaults and positioned errors.
func TestConfigFromYAML(t *testing.T) {
	p, err := config.Parse("pipeline.yaml", []byte(`sources:
  - name: shop-cdc
    type: mysql
    url: mysql://cdc:pw@db:3306
    tables: [shop.orders, "shop.line_*"]
    topic_prefix: shop
    server_id: 5401
    key_columns:
      shop.audit: [ts, seq]
`))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := source.Lookup("mysql")
	if !ok {
		t.Fatal("driver mysql not registered")
	}
	cfg := d.NewConfig()
	if err := p.Sources[0].Decode(cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.(*Config)
	if c.ServerID != 5401 || c.Snapshot != SnapshotInitial || c.SnapshotChunkRows != 10000 || c.SnapshotParallelism != 1 ||
		len(c.Tables) != 2 || c.KeyColumns["shop.audit"][1] != "seq" || c.TopicPrefix() != "shop" || c.historyTopic() != "shop.schema-history" {
		t.Errorf("decoded %+v", c)
	}
	if _, err := d.Open("shop-cdc", cfg, nil); err != nil {
		t.Errorf("Open: %v", err)
	}

	p, err = config.Parse("pipeline.yaml", []byte(`sources:
  - name: bad
    type: mysql
    url: mysql://cdc:pw@db:3306
    tables: [orders]
    topic_prefix: shop
`))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Sources[0].Decode(d.NewConfig())
	if err == nil || !strings.Contains(err.Error(), "pipeline.yaml:") || !strings.Contains(err.Error(), "tables[0]") || !strings.Contains(err.Error(), "database.table") {
		t.Errorf("errors should name file, line and keys: %v", err)
	}
}

package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-cdc/tributary/source"
)

// CapturedTables lists the tables a connector with config c captures, with
// the connector's own table discovery: partitioned roots, never their
// partitions (the publication uses publish_via_partition_root, so a
// partition's changes go to its root's topic).
func CapturedTables(ctx context.Context, c *Config) ([]source.CapturedTable, error) {
	cc, err := pgx.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %s", redact(err.Error(), c.URL))
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s:%d as %q: %s", cc.Host, cc.Port, cc.User, redact(err.Error(), c.URL))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	existing, err := listTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	ids, err := resolveTables(c.Tables, existing)
	if err != nil {
		return nil, err
	}
	out := make([]source.CapturedTable, 0, len(ids))
	for _, id := range ids {
		out = append(out, source.CapturedTable{
			Schema:     id.Schema,
			Table:      id.Name,
			Topic:      source.TopicName(c.TopicPrefixValue, id.Schema, id.Name),
			KeyColumns: c.keyColumnsFor(id.Schema, id.Name),
		})
	}
	return out, nil
}

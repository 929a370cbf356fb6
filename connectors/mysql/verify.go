package mysql

import (
	"context"
	"fmt"
	"net"
	"strconv"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/tributary-cdc/tributary/source"
)

// VerifyDSN is the go-sql-driver DSN of the source server c reads, for
// tools that query it (tributary verify).
func VerifyDSN(c *Config) (string, error) {
	e, err := c.endpoint()
	if err != nil {
		return "", fmt.Errorf("url %w", err)
	}
	mc := gomysql.NewConfig()
	mc.User, mc.Passwd = e.User, e.Password
	mc.Net, mc.Addr = "tcp", net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
	return mc.FormatDSN(), nil
}

// CapturedTables lists the tables a connector with config c captures, with
// the connector's own discovery (the snapshot's catalog read and table
// filter) and topic naming.
func CapturedTables(ctx context.Context, c *Config) ([]source.CapturedTable, error) {
	ep, err := c.endpoint()
	if err != nil {
		return nil, fmt.Errorf("url %w", err)
	}
	f, err := newFilter(c.Tables)
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	conn, err := connect(ctx, ep)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	si, err := loadServerInfo(conn)
	if err != nil {
		return nil, err
	}
	cat, _, err := readCatalog(conn, f, newDDLParser(si.vars["character_set_server"]), si.flavor)
	if err != nil {
		return nil, err
	}
	if err := checkTablesExist(c.Tables, cat); err != nil {
		return nil, err
	}
	var out []source.CapturedTable
	for _, id := range cat.sortedIDs() {
		if !f.captured(id.DB, id.Table) {
			continue
		}
		out = append(out, source.CapturedTable{
			Schema:     id.DB,
			Table:      id.Table,
			Topic:      topicName(c.TopicPrefixValue, id),
			KeyColumns: c.keyColumnsFor(id.DB, id.Table),
		})
	}
	return out, nil
}

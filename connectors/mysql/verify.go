package mysql

import (
	"fmt"
	"net"
	"strconv"

	gomysql "github.com/go-sql-driver/mysql"
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

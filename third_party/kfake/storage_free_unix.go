//go:build linux || darwin || freebsd

package kfake

import (
	"fmt"
	"syscall"
)

// freeSpace is the space an unprivileged writer still has in dir's file
// system, e.g. "0 bytes" or "12288 bytes".
func freeSpace(dir string) string {
	var st syscall.Statfs_t
	for d := dir; ; {
		if err := syscall.Statfs(d, &st); err == nil {
			return fmt.Sprintf("%d bytes", uint64(st.Bavail)*uint64(st.Bsize))
		}
		parent := parentDir(d)
		if parent == d {
			return "unknown bytes"
		}
		d = parent
	}
}

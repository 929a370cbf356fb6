package kfake

// This file is a tributary patch (see PATCHES.md). Upstream answered a produce
// whose batch could not be written with UNKNOWN_SERVER_ERROR, which clients
// treat as fatal and which says nothing of the cause. A full disk stopped the
// producer for good with "The server experienced an unexpected error".

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// storageLogEvery bounds how often a storage failure is logged at error
// level: producers retry it every few hundred milliseconds.
const storageLogEvery = 30 * time.Second

// storageError is the answer to a produce whose batch for pd could not be
// written: KAFKA_STORAGE_ERROR, as Kafka answers a log directory failure. It
// is retriable, so producers retry the batch until the write succeeds (a
// full disk resumes by itself once space is freed, with nothing lost). The
// message and the error log line name the folder, the cause and, for a full
// disk, the bytes still free.
func (c *Cluster) storageError(pd *partData) (int16, string) {
	dir := partDir(c.storageDir, pd.t, pd.p)
	cause := c.lastWriteErr
	if cause == nil {
		cause = errors.New("unknown write failure")
	}
	var msg string
	if errors.Is(cause, syscall.ENOSPC) {
		msg = fmt.Sprintf("no space left on the device of log folder %s (%s free): producing to %s-%d waits until space is freed", c.storageDir, freeSpace(dir), pd.t, pd.p)
	} else {
		msg = fmt.Sprintf("cannot write to log folder %s: %v: producing to %s-%d is retried", c.storageDir, cause, pd.t, pd.p)
	}
	if now := time.Now(); now.Sub(c.lastStorageLog) >= storageLogEvery {
		c.lastStorageLog = now
		c.cfg.logger.Logf(LogLevelError, "%s (%v)", msg, cause)
	}
	return kerr.KafkaStorageError.Code, msg
}

// parentDir is filepath.Dir, named for freeSpace's walk up to a folder that
// exists (a partition's folder may not yet).
func parentDir(d string) string { return filepath.Dir(d) }

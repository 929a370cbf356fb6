package kfake

// Log compaction with bounded memory and a crash-safe segment swap.
//
// This file is a tributary patch (see PATCHES.md). Upstream's compact held
// every surviving batch of a partition in memory and keyed its dedupe map by
// the full record key, so one pass over a 600 MiB topic of distinct keys
// peaked at about 700 MiB; and it deleted the old segment files before the
// new ones were written, so a kill -9 in that window lost the partition.
//
// The cleaner here follows Kafka's LogCleaner:
//   - the dedupe map holds a 128-bit hash and an offset per record (24 bytes),
//     within log.cleaner.dedupe.buffer.size; a pass that fills the map cleans
//     the log only up to the offset the map covers, and the next pass goes on
//     from there (the first dirty offset);
//   - batches are streamed one at a time from the old segment and written to
//     a new "<base>.dat.cleaned" file only for segments that lose something;
//   - the swap is recorded in a manifest before any old file is touched, and
//     a restart finishes (or discards) it.
//
// Records of open transactions (at or past the last stable offset) are never
// cleaned and never supersede older records: the transaction may still abort.

import (
	"bufio"
	"cmp"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// defCleanerDedupeBytes bounds the dedupe map of one pass when the
	// broker config log.cleaner.dedupe.buffer.size is unset. Kafka's default
	// is 128 MiB spread over its cleaner threads; kfake runs inside other
	// processes, so it asks for less.
	defCleanerDedupeBytes = 16 << 20
	cleanerEntryBytes     = 24

	compactManifestName = "compact.swap"
	cleanedSuffix       = ".cleaned"
)

type cleanerEntry struct {
	h   [2]uint64
	off int64
}

// offsetMap is Kafka's SkimpyOffsetMap in spirit: key hash to the latest
// offset, in a flat slice that is sorted once the pass has read its range.
// Two independent 64-bit hashes make a collision (which would drop an older
// record of a different key) about as likely as one in Kafka's MD5 map.
type offsetMap struct {
	seeds   [2]maphash.Seed
	entries []cleanerEntry
}

func newOffsetMap() *offsetMap {
	return &offsetMap{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

func (m *offsetMap) hash(k []byte) [2]uint64 {
	return [2]uint64{maphash.Bytes(m.seeds[0], k), maphash.Bytes(m.seeds[1], k)}
}

func cmpHash(a, b [2]uint64) int {
	if c := cmp.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return cmp.Compare(a[1], b[1])
}

// seal sorts the entries and keeps the highest offset of each hash.
func (m *offsetMap) seal() {
	slices.SortFunc(m.entries, func(a, b cleanerEntry) int {
		if c := cmpHash(a.h, b.h); c != 0 {
			return c
		}
		return cmp.Compare(a.off, b.off)
	})
	out := m.entries[:0]
	for i, e := range m.entries {
		if i+1 < len(m.entries) && m.entries[i+1].h == e.h {
			continue
		}
		out = append(out, e)
	}
	m.entries = out
}

func (m *offsetMap) latest(k []byte) (int64, bool) {
	h := m.hash(k)
	i, found := slices.BinarySearchFunc(m.entries, h, func(e cleanerEntry, h [2]uint64) int { return cmpHash(e.h, h) })
	if !found {
		return 0, false
	}
	return m.entries[i].off, true
}

func (c *Cluster) cleanerMaxEntries() int {
	n := int64(defCleanerDedupeBytes)
	if v, ok := c.bcfgs["log.cleaner.dedupe.buffer.size"]; ok && v != nil {
		if b, err := strconv.ParseInt(*v, 10, 64); err == nil && b > 0 {
			n = b
		}
	}
	return max(int(n/cleanerEntryBytes), 1024)
}

// compactFull runs passes until the partition has no dirty range left.
func (c *Cluster) compactFull(pd *partData, topic string) {
	for c.compact(pd, topic) {
	}
}

// compactIfDirty runs one pass when the dirty part of the log (records the
// cleaner has not deduplicated yet) is at least the topic's
// min.cleanable.dirty.ratio of it (Kafka's default 0.5): a pass reads the
// whole log, so it is not worth running for a few new records.
func (c *Cluster) compactIfDirty(pd *partData, topic string) {
	ratio := 0.5
	if tcfg, ok := c.data.tcfgs[topic]; ok {
		if v, ok := tcfg["min.cleanable.dirty.ratio"]; ok && v != nil {
			if r, err := strconv.ParseFloat(*v, 64); err == nil {
				ratio = r
			}
		}
	}
	var dirty, total int64
	pd.eachBatchMeta(func(_, _ int, bm *batchMeta) bool {
		total += int64(bm.nbytes)
		if bm.firstOffset >= pd.cleanerDirty {
			dirty += int64(bm.nbytes)
		}
		return true
	})
	// A pass that stopped because its map was full goes on at the next tick
	// whatever the ratio, so a large backlog is cleaned through.
	if !pd.cleanerMore && (total == 0 || float64(dirty) < ratio*float64(total)) {
		return
	}
	pd.cleanerMore = c.compact(pd, topic)
}

// segRewrite is the new file for one old segment that lost records.
type segRewrite struct {
	oldBase int64
	sf, xf  file
	sw, xw  *bufio.Writer
	info    segmentInfo
	started bool
}

func (w *segRewrite) write(raw []byte, m batchMeta) error {
	m.segPos = w.info.size
	m.nbytes = int32(len(raw))
	if !w.started {
		w.info.base = m.firstOffset
		w.started = true
	}
	if _, err := w.sw.Write(raw); err != nil {
		return err
	}
	idx := encodeIndexEntry(m.epoch, m.maxEarlierTimestamp, m.inTx)
	if _, err := w.xw.Write(idx[:]); err != nil {
		return err
	}
	first := len(w.info.index) == 0
	w.info.index = append(w.info.index, m)
	w.info.updateEpochRange(m.epoch)
	w.info.updateMaxBatch(m, first)
	w.info.size += int64(len(raw))
	return nil
}

func (w *segRewrite) finish() error {
	if err := w.sw.Flush(); err != nil {
		return err
	}
	if err := w.xw.Flush(); err != nil {
		return err
	}
	if err := w.sf.Sync(); err != nil {
		return err
	}
	if err := w.xf.Sync(); err != nil {
		return err
	}
	w.info.lastModified = time.Now().UnixMilli()
	return nil
}

func (w *segRewrite) close() {
	w.sf.Close()
	w.xf.Close()
}

type compactSwap struct {
	Pairs []compactPair `json:"pairs"`
}

// compactPair replaces segment Old by the cleaned file written under Old's
// name; New is the new base offset, or -1 when nothing survived.
type compactPair struct {
	Old int64 `json:"old"`
	New int64 `json:"new"`
}

// compact runs one cleaning pass over pd and reports whether a dirty range
// is left for another pass. Must be called from Cluster.run().
func (c *Cluster) compact(pd *partData, topic string) (more bool) {
	if !pd.hasNBatches(2) { // the last batch is never cleaned
		return false
	}
	deleteRetentionMs := int64(86400000)
	if tcfg, ok := c.data.tcfgs[topic]; ok {
		if v, ok := tcfg["delete.retention.ms"]; ok && v != nil {
			if n, err := strconv.ParseInt(*v, 10, 64); err == nil {
				deleteRetentionMs = n
			}
		}
	}
	now := time.Now().UnixMilli()
	cleanableEnd := pd.totalBatches() - 1
	maxEntries := c.cleanerMaxEntries()

	// Pass 1: hash the keys of the dirty range, up to the map's capacity,
	// the last batch, or the first batch of an open transaction.
	m := newOffsetMap()
	// Size the map once from the index (records, not distinct keys), so
	// appending never doubles it past the budget.
	want := 0
	pd.eachBatchMeta(func(_, _ int, bm *batchMeta) bool {
		if bm.firstOffset+int64(bm.lastOffsetDelta)+1 > pd.cleanerDirty {
			want += int(bm.numRecords)
		}
		return want < maxEntries
	})
	m.entries = make([]cleanerEntry, 0, min(want, maxEntries))
	dirtyEnd := int64(-1)
	cleanEnd := int64(-1) // where the cleanable log ends: more is left if dirtyEnd < cleanEnd
	n := 0
	ok := true
	pd.eachBatchMeta(func(si, _ int, bm *batchMeta) bool {
		if n >= cleanableEnd || bm.firstOffset >= pd.lastStableOffset {
			if dirtyEnd < 0 {
				dirtyEnd = bm.firstOffset
			}
			cleanEnd = bm.firstOffset
			return false
		}
		n++
		if bm.firstOffset+int64(bm.lastOffsetDelta)+1 <= pd.cleanerDirty || dirtyEnd >= 0 {
			return true // already clean, or past this pass's range
		}
		if len(m.entries) > 0 && len(m.entries)+int(bm.numRecords) > maxEntries {
			dirtyEnd = bm.firstOffset
			return true // keep walking only to find cleanEnd
		}
		batch, err := c.readBatchFull(pd, si, bm)
		if err != nil {
			c.cfg.logger.Logf(LogLevelWarn, "compact %s-%d: read batch at offset %d: %v", pd.t, pd.p, bm.firstOffset, err)
			ok = false
			return false
		}
		if batch.Attributes&0x0020 != 0 || pd.isBatchAborted(batch) {
			return true
		}
		// A decode error leaves keys out of the map, which only keeps
		// more records: safe.
		_ = forEachBatchRecord(batch.RecordBatch, func(rec kmsg.Record) bool {
			if rec.Key != nil {
				m.entries = append(m.entries, cleanerEntry{h: m.hash(rec.Key), off: batch.FirstOffset + int64(rec.OffsetDelta)})
			}
			return true
		})
		return true
	})
	if !ok || dirtyEnd <= pd.cleanerDirty {
		return false
	}
	if len(m.entries) == 0 {
		pd.cleanerDirty = dirtyEnd
		return dirtyEnd < cleanEnd
	}
	m.seal()

	// Pass 2: stream every segment that holds batches below dirtyEnd; write
	// a cleaned file only for a segment that loses something.
	pdir := partDir(c.storageDir, pd.t, pd.p)
	var rewrites []*segRewrite
	abort := func(err error) bool {
		c.cfg.logger.Logf(LogLevelWarn, "compact %s-%d: %v; the log is left as it was", pd.t, pd.p, err)
		for _, w := range rewrites {
			w.close()
			c.fs.Remove(filepath.Join(pdir, segmentFileName(w.oldBase)+cleanedSuffix))
			c.fs.Remove(filepath.Join(pdir, indexFileName(w.oldBase)+cleanedSuffix))
		}
		return false
	}
	rewriteOf := make(map[int]*segRewrite)
	n = 0
	for si := range pd.segments {
		seg := &pd.segments[si]
		if len(seg.index) == 0 || seg.index[0].firstOffset >= dirtyEnd {
			n += len(seg.index)
			continue
		}
		var w *segRewrite
		for mi := range seg.index {
			bm := seg.index[mi]
			ordinal := n
			n++
			unchanged := ordinal >= cleanableEnd || bm.firstOffset >= dirtyEnd
			var survivors []kmsg.Record
			var batch *partBatch
			if !unchanged {
				var err error
				batch, err = c.readBatchFull(pd, si, &bm)
				if err != nil {
					return abort(err)
				}
				switch {
				case batch.Attributes&0x0020 != 0:
					unchanged = true // control batches are kept
				case pd.isBatchAborted(batch):
					// dropped whole
				default:
					all := true
					err := forEachBatchRecord(batch.RecordBatch, func(rec kmsg.Record) bool {
						keep := rec.Key != nil
						if keep {
							off := batch.FirstOffset + int64(rec.OffsetDelta)
							if latest, found := m.latest(rec.Key); found && latest > off {
								keep = false
							} else if rec.Value == nil && now-(batch.FirstTimestamp+int64(rec.TimestampDelta)) >= deleteRetentionMs {
								keep = false
							}
						}
						if keep {
							survivors = append(survivors, rec)
						} else {
							all = false
						}
						return true
					})
					if err != nil {
						unchanged = true // never drop what could not be read
					} else if all {
						unchanged = true
					}
				}
			}
			if unchanged && w == nil {
				continue
			}
			if w == nil {
				var err error
				if w, err = c.openRewrite(pdir, seg.base); err != nil {
					return abort(err)
				}
				rewrites = append(rewrites, w)
				rewriteOf[si] = w
				// Copy the batches before this one as they are.
				for pi := 0; pi < mi; pi++ {
					pm := seg.index[pi]
					raw, err := c.readBatchRaw(pd, si, &pm)
					if err != nil {
						return abort(err)
					}
					if err := w.write(raw, pm); err != nil {
						return abort(err)
					}
				}
			}
			switch {
			case unchanged:
				raw, err := c.readBatchRaw(pd, si, &bm)
				if err != nil {
					return abort(err)
				}
				if err := w.write(raw, bm); err != nil {
					return abort(err)
				}
			case len(survivors) > 0:
				nb := rebuildBatch(batch, survivors)
				nb.inTx = bm.inTx
				bp := encodeBatch(nb)
				meta := nb.meta(0)
				err := w.write(*bp, meta)
				*bp = (*bp)[:0]
				batchPool.Put(bp)
				if err != nil {
					return abort(err)
				}
			}
		}
	}
	if len(rewrites) == 0 {
		pd.cleanerDirty = dirtyEnd
		return dirtyEnd < cleanEnd
	}
	for _, w := range rewrites {
		if err := w.finish(); err != nil {
			return abort(err)
		}
	}
	for _, w := range rewrites {
		w.close()
	}

	// Swap: the manifest makes the set of renames and removals atomic across
	// a crash (loadPartition finishes it); before it exists, a restart only
	// discards the cleaned files.
	var swap compactSwap
	for _, w := range rewrites {
		nb := int64(-1)
		if w.started {
			nb = w.info.base
		}
		swap.Pairs = append(swap.Pairs, compactPair{Old: w.oldBase, New: nb})
	}
	pd.closeAllFiles(false)
	c.compactStage("cleaned")
	if err := writeJSONFile(c.fs, filepath.Join(pdir, compactManifestName), swap); err != nil {
		return abort(err)
	}
	syncDir(c.fs, pdir)
	c.compactStage("manifest")
	if err := applyCompactSwap(c.fs, pdir, swap, func() { c.compactStage("pair") }); err != nil {
		// The manifest stays: the next start finishes the swap.
		c.cfg.logger.Logf(LogLevelError, "compact %s-%d: finishing the segment swap: %v", pd.t, pd.p, err)
	} else {
		syncDir(c.fs, pdir)
		c.fs.Remove(filepath.Join(pdir, compactManifestName))
	}
	c.compactStage("swapped")
	// A clean-shutdown snapshot no longer describes these segments.
	c.fs.Remove(filepath.Join(pdir, "snapshot.json"))

	before, from := pd.nbytes, pd.cleanerDirty
	defer func() {
		c.cfg.logger.Logf(LogLevelInfo, "compacted %s-%d: offsets %d to %d deduplicated (%d keys), %d segments rewritten, %d to %d bytes",
			pd.t, pd.p, from, dirtyEnd, len(m.entries), len(rewrites), before, pd.nbytes)
	}()
	segs := pd.segments[:0:0]
	for si := range pd.segments {
		w, ok := rewriteOf[si]
		switch {
		case !ok:
			segs = append(segs, pd.segments[si])
		case w.started:
			segs = append(segs, w.info)
		}
	}
	pd.segments = segs
	pd.nbytes = 0
	pd.eachBatchMeta(func(_, _ int, bm *batchMeta) bool {
		pd.nbytes += int64(bm.nbytes)
		return true
	})
	if pd.hasBatches() && pd.segments[0].index[0].firstOffset > pd.logStartOffset {
		pd.logStartOffset = pd.segments[0].index[0].firstOffset
	}
	pd.rebuildMaxTimestampMeta()
	pd.trimAbortedTxns()
	pd.cleanerDirty = dirtyEnd
	return dirtyEnd < cleanEnd
}

func (c *Cluster) openRewrite(pdir string, oldBase int64) (*segRewrite, error) {
	sf, err := c.fs.OpenFile(filepath.Join(pdir, segmentFileName(oldBase)+cleanedSuffix), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, filePerm)
	if err != nil {
		return nil, err
	}
	xf, err := c.fs.OpenFile(filepath.Join(pdir, indexFileName(oldBase)+cleanedSuffix), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, filePerm)
	if err != nil {
		sf.Close()
		return nil, err
	}
	return &segRewrite{
		oldBase: oldBase,
		sf:      sf,
		xf:      xf,
		sw:      bufio.NewWriterSize(sf, 1<<20),
		xw:      bufio.NewWriterSize(xf, 64<<10),
	}, nil
}

// applyCompactSwap moves each cleaned file over its new name and removes the
// old segment. Every step is idempotent, so a restart can run it again.
func applyCompactSwap(fsys fs, pdir string, swap compactSwap, afterPair func()) error {
	for _, p := range swap.Pairs {
		for _, name := range []func(int64) string{segmentFileName, indexFileName} {
			cleaned := filepath.Join(pdir, name(p.Old)+cleanedSuffix)
			if p.New >= 0 {
				if _, err := fsys.Stat(cleaned); err == nil {
					if err := fsys.Rename(cleaned, filepath.Join(pdir, name(p.New))); err != nil {
						return err
					}
				}
			} else if err := fsys.Remove(cleaned); err != nil && !os.IsNotExist(err) {
				return err
			}
			if p.New != p.Old {
				if err := fsys.Remove(filepath.Join(pdir, name(p.Old))); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
		}
		if afterPair != nil {
			afterPair()
		}
	}
	return nil
}

func (c *Cluster) compactStage(stage string) {
	if c.cfg.compactHook != nil {
		c.cfg.compactHook(stage)
	}
}

// recoverCompaction finishes a swap a crash interrupted, and discards cleaned
// files whose swap never started. Called before a partition's segments load.
func (c *Cluster) recoverCompaction(fsys fs, pdir string) error {
	var swap compactSwap
	found, err := readJSONFile(fsys, filepath.Join(pdir, compactManifestName), &swap)
	if err != nil {
		return err
	}
	if found {
		if err := applyCompactSwap(fsys, pdir, swap, nil); err != nil {
			return err
		}
		syncDir(fsys, pdir)
		fsys.Remove(filepath.Join(pdir, compactManifestName))
		fsys.Remove(filepath.Join(pdir, "snapshot.json"))
	}
	entries, err := fsys.ReadDir(pdir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) {
			fsys.Remove(filepath.Join(pdir, e.Name()))
		}
	}
	return nil
}

// syncDir makes renames and removals in dir durable on a real filesystem.
func syncDir(fsys fs, dir string) {
	if _, ok := fsys.(osFS); !ok {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

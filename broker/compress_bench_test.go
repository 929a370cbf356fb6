package broker

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
)

// snapshotLikeBatch builds ~1 MiB of record-batch body shaped like the
// snapshot bench's events: a bigint key and a Debezium envelope with a
// 200-character hex payload and a constant source block.
func snapshotLikeBatch() []byte {
	var b []byte
	av := func(v int64) { b = appendVarint(b, v) }
	str := func(s string) { av(int64(len(s))); b = append(b, s...) }
	for id := int64(1); len(b) < 1<<20; id++ {
		var p []byte
		for i := 0; len(p) < 200; i++ {
			s := md5.Sum([]byte(strconv.FormatInt(id+int64(i), 10)))
			p = hex.AppendEncode(p, s[:])
		}
		rec := []byte{0, 0, 0, 0, 2} // header of the key
		rec = appendVarint(rec, id)
		var v []byte
		v = append(v, 0, 0, 0, 0, 3, 0, 2)
		v = appendVarint(v, id)
		v = appendVarint(v, 200)
		v = append(v, p[:200]...)
		for _, s := range []string{"3.1.0.Final", "postgresql", "bench", "", "true", "bench_snap_12345", "[null,\"23456789\"]", "public", "t"} {
			v = appendVarint(v, int64(len(s)))
			v = append(v, s...)
		}
		v = appendVarint(v, 1764120000123)
		v = append(v, 2)
		v = appendVarint(v, 1234)
		v = append(v, 2)
		v = appendVarint(v, 23456789)
		v = append(v, 0, 0, 2, 'r', 2)
		v = appendVarint(v, 1764120000123)
		v = append(v, 2)
		v = appendVarint(v, 1764120000123456)
		b = append(b, 0)
		av(0)
		av(id)
		str(string(rec))
		str(string(v))
		av(0)
	}
	return b
}

func appendVarint(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

func BenchmarkCompressSnapshotBatch(b *testing.B) {
	src := snapshotLikeBatch()
	for _, name := range []string{"zstd", "lz4", "snappy"} {
		b.Run(name, func(b *testing.B) {
			codecs, err := compression(name)
			if err != nil {
				b.Fatal(err)
			}
			c, err := kgo.DefaultCompressor(codecs...)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			var n int
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				buf.Reset()
				out, _ := c.Compress(&buf, src)
				n = len(out)
			}
			b.ReportMetric(float64(n)/float64(len(src)), "ratio")
		})
	}
}

func BenchmarkZstdVariants(b *testing.B) {
	src := snapshotLikeBatch()
	for name, opts := range map[string][]zstd.EOption{
		"fastest":           {zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(64 << 10), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true)},
		"fastest-noentropy": {zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(64 << 10), zstd.WithEncoderConcurrency(1), zstd.WithNoEntropyCompression(true)},
		"fastest-1m":        {zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1 << 20), zstd.WithEncoderConcurrency(1)},
		"fastest-nocrc":     {zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(64 << 10), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false)},
	} {
		b.Run(name, func(b *testing.B) {
			enc, _ := zstd.NewWriter(nil, opts...)
			var dst []byte
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				dst = enc.EncodeAll(src, dst[:0])
			}
			b.ReportMetric(float64(len(dst))/float64(len(src)), "ratio")
		})
	}
	b.Run("s2-better-snappycompat", func(b *testing.B) {
		var dst []byte
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			dst = s2.EncodeSnappyBetter(dst[:0], src)
		}
		b.ReportMetric(float64(len(dst))/float64(len(src)), "ratio")
	})
}

package schema

import (
	"bytes"
	"sync"
	"testing"
)

// TestCodecConcurrentUse encodes the all-kinds row (and a type error) from
// several goroutines on one Codec; every result must equal the sequential
// encoding. Run with -race to check the Codec keeps no state between calls.
func TestCodecConcurrentUse(t *testing.T) {
	c, err := NewCodec(allKindsTable(), PostgresSource())
	if err != nil {
		t.Fatal(err)
	}
	c.SetIDs(11, 12)
	row := fullRow()
	e := &Envelope{Op: OpRead, After: row, Source: pgSource(int64(99)), TsUs: 1700000000987654}
	wantK, err := c.AppendKey(nil, row)
	if err != nil {
		t.Fatal(err)
	}
	wantV, err := c.AppendEnvelope(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]any(nil), row...)
	bad[0] = "not an int" // column 0 is the int64 key column
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := 0; i < 300; i++ {
				k, err := c.AppendKey(buf[:0], row)
				if err != nil || !bytes.Equal(k, wantK) {
					errs <- "key differs from the sequential encoding"
					return
				}
				v, err := c.AppendEnvelope(k[len(k):], e)
				if err != nil || !bytes.Equal(v, wantV) {
					errs <- "envelope differs from the sequential encoding"
					return
				}
				if _, err := c.AppendKey(nil, bad); err == nil {
					errs <- "a wrong Go type was accepted"
					return
				}
				buf = v
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

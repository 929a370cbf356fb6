package sink

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// refDecimalText is unscaledText through big numbers only.
func refDecimalText(b []byte, scale int) string {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	s := n.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

func TestSmallDecimalTextMatchesBig(t *testing.T) {
	vals := []int64{0, 1, -1, 5, -5, 99, -99, 100, -100, 12345, -12345, math.MaxInt64, math.MinInt64, math.MinInt32}
	for range 2000 {
		vals = append(vals, rand.Int64()>>rand.IntN(63), -(rand.Int64() >> rand.IntN(63)))
	}
	for _, v := range vals {
		full := new(big.Int).SetInt64(v)
		// Minimal two's complement bytes, as Connect writes them.
		var b []byte
		for n := 1; n <= 8; n++ {
			lo := new(big.Int).Lsh(big.NewInt(-1), uint(8*n-1))
			hi := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)), big.NewInt(1))
			if full.Cmp(lo) >= 0 && full.Cmp(hi) <= 0 {
				u := uint64(v)
				for i := n - 1; i >= 0; i-- {
					b = append(b, byte(u>>(8*i)))
				}
				break
			}
		}
		for _, scale := range []int{1, 2, 3, 9, 20, 25} {
			if got, want := unscaledText(b, scale), refDecimalText(b, scale); got != want {
				t.Fatalf("unscaledText(%x, %d) = %q, want %q", b, scale, got, want)
			}
		}
	}
}

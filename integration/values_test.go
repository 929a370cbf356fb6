package integration

import (
	"fmt"
	"math/big"
)

// num converts a decoded Avro number to int64.
func num(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	}
	panic(fmt.Sprintf("not a number: %T %v", v, v))
}

// decimalString renders a Connect Decimal decoded by hamba/avro as *big.Rat
// (logicalType decimal) with the given scale.
func decimalString(v any, scale int) string {
	switch d := v.(type) {
	case *big.Rat:
		return d.FloatString(scale)
	case []byte:
		i := new(big.Int).SetBytes(d)
		if len(d) > 0 && d[0]&0x80 != 0 {
			i.Sub(i, new(big.Int).Lsh(big.NewInt(1), uint(len(d)*8)))
		}
		return new(big.Rat).SetFrac(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).FloatString(scale)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

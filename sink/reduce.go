package sink

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// reduce turns the changes of one table, in log order, into an equivalent
// list in which each key appears at most once and a truncate can only come
// first, so targets can group statements freely (see Tx.Apply).
//
//   - The last change of a key wins.
//   - A truncate discards every change before it.
//   - An upsert or insert lacking columns an earlier upsert or insert of
//     the same key in the batch wrote takes their values from it, matched
//     by column NAME: the columns the source did not send (unchanged TOAST
//     placeholders) and the columns its schema version does not have. The
//     result is what applying both changes in turn would leave, whatever
//     the number of columns or the schema versions of the two (an ADD
//     COLUMN between them gives the later one more columns, not fewer).
//   - A delete followed by an insert (insert.mode: insert, or a primary-key
//     change moving back) becomes an upsert, since the delete is dropped.
func reduce(t *tableState, changes []Change) []Change {
	out := make([]Change, 0, len(changes))
	// Single integer keys, the common case, skip building a string key.
	var idx map[string]int
	var idxInt map[int64]int
	var kb strings.Builder
	for _, c := range changes {
		switch {
		case c.Op == OpTruncate:
			out = append(out[:0], c)
			clear(idx)
			clear(idxInt)
			continue
		case c.Key == nil:
			// A keyless table only gets inserts: nothing to merge.
			out = append(out, c)
			continue
		}
		var i int
		var seen bool
		if n, ok := c.Key[0].(int64); ok && len(c.Key) == 1 {
			if idxInt == nil {
				idxInt = make(map[int64]int, len(changes))
			}
			if i, seen = idxInt[n]; !seen {
				idxInt[n] = len(out)
			}
		} else {
			if idx == nil {
				idx = make(map[string]int, len(changes))
			}
			kb.Reset()
			writeKey(&kb, c.Key)
			k := kb.String()
			if i, seen = idx[k]; !seen {
				idx[k] = len(out)
			}
		}
		if !seen {
			out = append(out, c)
			continue
		}
		prev := out[i]
		switch {
		case c.Op == OpInsert && prev.Op == OpDelete:
			c.Op = OpUpsert
		case c.Op != OpDelete && (prev.Op == OpUpsert || prev.Op == OpInsert) && c.Cols != prev.Cols:
			c = mergeMissing(t, c, prev)
		}
		out[i] = c
	}
	return out
}

// mergeMissing completes c with the values prev has for columns c lacks,
// matched by name. c.Unavail keeps the placeholders neither change has a
// value for: those of c that prev lacks too, and those of prev that c lacks.
func mergeMissing(t *tableState, c, prev Change) Change {
	have := make(map[string]bool, len(c.Cols.Columns))
	for _, col := range c.Cols.Columns {
		have[col.Name] = true
	}
	var unavail []*ColumnSpec
	if len(c.Unavail) > 0 || len(prev.Unavail) > 0 {
		inPrev := make(map[string]bool, len(prev.Cols.Columns))
		for _, col := range prev.Cols.Columns {
			inPrev[col.Name] = true
		}
		for _, u := range c.Unavail {
			if !inPrev[u.Name] {
				unavail = append(unavail, u)
			}
		}
		for _, u := range prev.Unavail {
			if !have[u.Name] && !containsName(unavail, u.Name) {
				unavail = append(unavail, u)
			}
		}
	}
	c.Unavail = unavail
	var cols []*ColumnSpec
	var row []any
	for i, col := range prev.Cols.Columns {
		if have[col.Name] {
			continue
		}
		if cols == nil {
			n := len(c.Cols.Columns) + len(prev.Cols.Columns) - i
			cols = append(make([]*ColumnSpec, 0, n), c.Cols.Columns...)
			row = append(make([]any, 0, n), c.Row...)
		}
		cols = append(cols, col)
		row = append(row, prev.Row[i])
	}
	if cols != nil {
		c.Cols = t.intern(cols)
		c.Row = row
	}
	return c
}

func containsName(cols []*ColumnSpec, name string) bool {
	for _, c := range cols {
		if c.Name == name {
			return true
		}
	}
	return false
}

// writeKey writes a type-tagged, unambiguous form of a key.
func writeKey(b *strings.Builder, key []any) {
	for _, v := range key {
		switch x := v.(type) {
		case int64:
			b.WriteByte('i')
			b.WriteString(strconv.FormatInt(x, 10))
		case string:
			b.WriteByte('s')
			b.WriteString(strconv.Itoa(len(x)))
			b.WriteByte(':')
			b.WriteString(x)
		case []byte:
			b.WriteByte('b')
			b.WriteString(strconv.Itoa(len(x)))
			b.WriteByte(':')
			b.Write(x)
		case bool:
			b.WriteByte('t')
			b.WriteString(strconv.FormatBool(x))
		case float64:
			b.WriteByte('f')
			b.WriteString(strconv.FormatUint(math.Float64bits(x), 16))
		case float32:
			b.WriteByte('g')
			b.WriteString(strconv.FormatUint(uint64(math.Float32bits(x)), 16))
		case time.Time:
			b.WriteByte('T')
			b.WriteString(strconv.FormatInt(x.UnixNano(), 10))
		case time.Duration:
			b.WriteByte('D')
			b.WriteString(strconv.FormatInt(int64(x), 10))
		case nil:
			b.WriteByte('n')
		default:
			s := fmt.Sprintf("%T:%v", v, v)
			b.WriteByte('x')
			b.WriteString(strconv.Itoa(len(s)))
			b.WriteByte(':')
			b.WriteString(s)
		}
		b.WriteByte(0)
	}
}

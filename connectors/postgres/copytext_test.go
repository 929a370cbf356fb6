package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// copyRefSplitRow is a deliberately plain re-statement of PostgreSQL's COPY
// text rules (CopyReadAttributesText), used as the oracle for the fuzz test.
func copyRefSplitRow(line []byte) ([][]byte, error) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	hexval := func(c byte) (int, bool) {
		switch {
		case '0' <= c && c <= '9':
			return int(c - '0'), true
		case 'a' <= c && c <= 'f':
			return int(c-'a') + 10, true
		case 'A' <= c && c <= 'F':
			return int(c-'A') + 10, true
		}
		return 0, false
	}
	var out [][]byte
	cur := []byte{}
	rawStart := 0
	i := 0
	for {
		if i == len(line) || line[i] == '\t' {
			if string(line[rawStart:i]) == `\N` {
				out = append(out, nil)
			} else {
				out = append(out, cur)
			}
			if i == len(line) {
				return out, nil
			}
			i++
			rawStart = i
			cur = []byte{}
			continue
		}
		c := line[i]
		i++
		if c != '\\' {
			cur = append(cur, c)
			continue
		}
		if i == len(line) {
			return nil, errors.New("lone backslash")
		}
		c = line[i]
		i++
		switch {
		case c == 'b':
			cur = append(cur, '\b')
		case c == 'f':
			cur = append(cur, '\f')
		case c == 'n':
			cur = append(cur, '\n')
		case c == 'r':
			cur = append(cur, '\r')
		case c == 't':
			cur = append(cur, '\t')
		case c == 'v':
			cur = append(cur, '\v')
		case '0' <= c && c <= '7':
			v := int(c - '0')
			for k := 0; k < 2 && i < len(line) && '0' <= line[i] && line[i] <= '7'; k++ {
				v = v*8 + int(line[i]-'0')
				i++
			}
			cur = append(cur, byte(v&0xff))
		case c == 'x':
			v, ok := 0, false
			if i < len(line) {
				v, ok = hexval(line[i])
			}
			if !ok {
				cur = append(cur, 'x')
				break
			}
			i++
			if i < len(line) {
				if l, ok := hexval(line[i]); ok {
					v = v*16 + l
					i++
				}
			}
			cur = append(cur, byte(v))
		default:
			cur = append(cur, c)
		}
	}
}

func copyTestSame(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func copyTestShow(f [][]byte) string {
	var b bytes.Buffer
	for i, x := range f {
		if i > 0 {
			b.WriteString(" | ")
		}
		if x == nil {
			b.WriteString("NULL")
		} else {
			fmt.Fprintf(&b, "%q", x)
		}
	}
	return b.String()
}

func TestCopySplitRow(t *testing.T) {
	n := []byte(nil)
	s := func(x string) []byte { return []byte(x) }
	cases := []struct {
		name string
		line string
		want [][]byte
		err  bool
	}{
		{"plain", "a\tb\tc\n", [][]byte{s("a"), s("b"), s("c")}, false},
		{"no newline", "a\tb", [][]byte{s("a"), s("b")}, false},
		{"empty line is one empty field", "\n", [][]byte{s("")}, false},
		{"empty fields", "a\t\t\n", [][]byte{s("a"), s(""), s("")}, false},
		{"nulls", "\\N\t1\t\\N\n", [][]byte{n, s("1"), n}, false},
		{"escaped backslash N is text", "\\\\N\n", [][]byte{s(`\N`)}, false},
		{"N inside text", "x\\Ny\tN", [][]byte{s("xNy"), s("N")}, false},
		{"control escapes", "\\b\\f\\n\\r\\t\\v", [][]byte{s("\b\f\n\r\t\v")}, false},
		{"octal", "\\101\\7\\0012\\777", [][]byte{{'A', 7, 1, '2', 0xff}}, false},
		{"hex", "\\x41\\x4g\\xzz\\x", [][]byte{s("A\x04gxzzx")}, false},
		{"other escaped byte", "\\q\\\\\\\"", [][]byte{s(`q\"`)}, false},
		{"escaped real tab is data", "a\\\tb\tc", [][]byte{s("a\tb"), s("c")}, false},
		{"utf8 passes through", "h\u00e9llo\tw\u00f6rld", [][]byte{s("h\u00e9llo"), s("w\u00f6rld")}, false},
		{"text with tab and newline from PostgreSQL", "1\th\u00e9llo\\tworld\\\\back\\nline\t\\N\n",
			[][]byte{s("1"), s("h\u00e9llo\tworld\\back\nline"), n}, false},
		{"array with quotes", "{\"a b\",\"x\\\\\\\\y\"}", [][]byte{s(`{"a b","x\\y"}`)}, false},
		{"trailing lone backslash", "abc\\", nil, true},
		{"lone backslash before newline", "abc\\\n", nil, true},
	}
	var dst [][]byte
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line := []byte(tc.line)
			got, err := copySplitRow(line, dst)
			if tc.err {
				if err == nil {
					t.Fatalf("want error, got %s", copyTestShow(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !copyTestSame(got, tc.want) {
				t.Fatalf("got  %s\nwant %s", copyTestShow(got), copyTestShow(tc.want))
			}
			dst = got
		})
	}
}

func TestCopySplitRowReusesDst(t *testing.T) {
	dst := make([][]byte, 0, 8)
	line := []byte("a\tb\n")
	got, err := copySplitRow(line, dst)
	if err != nil {
		t.Fatal(err)
	}
	if &got[:1][0] != &dst[:1][0] {
		t.Fatal("dst backing array was not reused")
	}
	// Fields alias line, and appending to one must not clobber the next.
	got[0] = append(got[0], 'X')
	if string(got[1]) != "b" {
		t.Fatalf("appending to field 0 changed field 1 to %q", got[1])
	}
	if n := testing.AllocsPerRun(100, func() {
		l := []byte("1\tabc\\tdef\t\\N\t2024-01-02\n")
		_, _ = copySplitRow(l, dst)
	}); n > 1 { // the []byte literal itself
		t.Fatalf("%v allocations per row", n)
	}
}

func FuzzCopySplitRow(f *testing.F) {
	for _, seed := range []string{
		"", "\n", "a\tb\tc\n", "\\N\t\\N", "\\\\N", "\\101\\7\\0012\\777", "\\x41\\x4g\\x",
		"a\\\tb", "abc\\", "\\b\\f\\n\\r\\t\\v\\q", "h\u00e9llo\\tw\\\\x\n", "\t\t\\N\t",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want, werr := copyRefSplitRow(append([]byte(nil), line...))
		got, gerr := copySplitRow(append([]byte(nil), line...), nil)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("line %q: error mismatch: reference %v, copySplitRow %v", line, werr, gerr)
		}
		if werr == nil && !copyTestSame(got, want) {
			t.Fatalf("line %q:\n got  %s\n want %s", line, copyTestShow(got), copyTestShow(want))
		}
	})
}

func BenchmarkCopySplitRow(b *testing.B) {
	row := []byte("123456\tsome text value of moderate length\t2024-01-02 03:04:05.123456+00\t\\N\t{1,2,3}\t3.14159\tescaped\\ttab\n")
	line := make([]byte, len(row))
	var dst [][]byte
	b.SetBytes(int64(len(row)))
	for i := 0; i < b.N; i++ {
		copy(line, row)
		var err error
		if dst, err = copySplitRow(line, dst); err != nil {
			b.Fatal(err)
		}
	}
}

package postgres

import (
	"bytes"
	"errors"
)

// copySplitRow splits one row of `COPY ... TO STDOUT` text format into its
// fields, reusing dst. A single trailing '\n' is ignored. Fields are
// separated by tabs; backslash escapes (\\ \t \n \r \b \f \v, octal \d, \dd,
// \ddd and hex \xh, \xhh; any other escaped byte stands for itself, as in
// PostgreSQL's COPY FROM) are decoded in place, so the returned fields alias
// line and line is modified. A field that is exactly \N is NULL and comes
// back as nil; every other field is non-nil, including empty strings.
func copySplitRow(line []byte, dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	if line == nil {
		line = []byte{} // an empty row is one empty (non-NULL) field
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if bytes.IndexByte(line, '\\') < 0 {
		// No escapes, hence no NULLs: only split.
		for {
			tab := bytes.IndexByte(line, '\t')
			if tab < 0 {
				return append(dst, line[:len(line):len(line)]), nil
			}
			dst = append(dst, line[:tab:tab])
			line = line[tab+1:]
		}
	}
	// Decoding never makes a field longer, so each field is rewritten in
	// place from its own raw start: w (write) never passes i (read).
	start, w, i := 0, 0, 0
	for {
		// Copy the run of plain bytes up to the next tab or backslash.
		j := i
		for j < len(line) && line[j] != '\t' && line[j] != '\\' {
			j++
		}
		if w != i {
			copy(line[w:], line[i:j])
		}
		w += j - i
		i = j
		if i == len(line) || line[i] == '\t' {
			// Raw `\N` is NULL. It was decoded to "N" already; the only two
			// raw bytes that decode to "N" are `\N` (\x needs three or more).
			if i-start == 2 && w-start == 1 && line[start] == 'N' {
				dst = append(dst, nil)
			} else {
				dst = append(dst, line[start:w:w])
			}
			if i == len(line) {
				return dst, nil
			}
			i++
			start, w = i, i
			continue
		}
		// line[i] is a backslash.
		i++
		if i == len(line) {
			return nil, errors.New("COPY text row ends with a lone backslash")
		}
		c := line[i]
		i++
		switch c {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'v':
			c = '\v'
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := c - '0'
			for k := 0; k < 2 && i < len(line) && line[i] >= '0' && line[i] <= '7'; k++ {
				v = v<<3 | (line[i] - '0')
				i++
			}
			c = v
		case 'x':
			if i < len(line) {
				if h, ok := pgtypeHexVal(line[i]); ok {
					i++
					if i < len(line) {
						if l, ok := pgtypeHexVal(line[i]); ok {
							h = h<<4 | l
							i++
						}
					}
					c = h
				}
			}
		}
		line[w] = c
		w++
	}
}

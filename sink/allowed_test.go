package sink

import (
	"reflect"
	"testing"
)

func TestSplitAllowed(t *testing.T) {
	cases := map[string][]string{
		"a,b,c":          {"a", "b", "c"},
		`a,b'q,c\,d`:     {"a", "b'q", "c,d"},
		`x\,y`:           {"x,y"},
		"":               {""},
		`a\b,c`:          {`a\b`, "c"},
		`\,lead,trail\,`: {",lead", "trail,"},
	}
	for in, want := range cases {
		if got := SplitAllowed(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitAllowed(%q) = %q, want %q", in, got, want)
		}
	}
	if got := mergeAllowed(`a,c\,d`, `c\,d,e\,f`); got != `a,c\,d,e\,f` {
		t.Errorf("mergeAllowed = %q", got)
	}
}

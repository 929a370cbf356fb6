package postgres

import "testing"

func TestETA(t *testing.T) {
	cases := []struct {
		left int64
		rate float64
		want string
	}{
		{0, 10, "0s"},
		{100, 0, "unknown"},
		{1500, 10, "2m30s"},
		{36000, 10, "1h0m0s"},
	}
	for _, c := range cases {
		if got := eta(c.left, c.rate); got != c.want {
			t.Errorf("eta(%d, %v) = %s, want %s", c.left, c.rate, got, c.want)
		}
	}
	if percent(50, 200) != "25.0" || percent(1, 0) != "unknown" {
		t.Error("percent")
	}
}

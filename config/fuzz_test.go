package config_test

import (
	"testing"

	"github.com/tributary-cdc/tributary/config"
)

// FuzzParse checks that no input makes Parse or Decode panic: a bad config
// must always end in an error naming where it is.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		minimal,
		"log:\n  brokers: [a:1, b:2]\n",
		"x-a: &a {type: fake, url: u}\nsources:\n  - <<: *a\n    name: n\n",
		"sources:\n  - name: a\n    type: fake\n    snapshot: {mode: never}\n",
		"worker: {name: ${X:-y}, max_in_flight_bytes: 1MiB}\n",
		"a: *undefined\n",
		"- [\n",
		"log: !!binary aGVsbG8=\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := config.Parse("fuzz.yaml", []byte(src))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, c := range p.Sources {
			_ = c.Decode(&fakeConfig{})
		}
	})
}

package main

import (
	"path/filepath"
	"testing"
)

// TestExampleConfigsValidate runs `tributary validate` on every example in
// configs/, so an example can never drift from what the binary accepts.
// Examples take secrets and hosts from ${VAR:-default}, so they validate
// without a particular environment.
func TestExampleConfigsValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.yml"))
	files = append(files, more...)
	t.Logf("validating %d example configs", len(files))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if r := run(t, "validate", "-f", f); r.code != 0 {
				t.Errorf("validate %s: exit %d\n%s", f, r.code, r.stderr)
			}
		})
	}
}

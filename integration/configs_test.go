package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigsValidate: every example pipeline in configs/ passes `tributary validate`.
func TestConfigsValidate(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example pipelines found in configs/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(tribBin(t), "validate", "-f", f).CombinedOutput()
			if err != nil {
				t.Fatalf("tributary validate -f %s: %v\n%s", f, err, out)
			}
			if !strings.Contains(string(out), "OK") {
				t.Fatalf("validate output lacks OK: %s", out)
			}
		})
	}
}

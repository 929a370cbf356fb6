package integration

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeConfigReference: the README's configuration reference is the
// output of `tributary config docs`, so it cannot drift from the structs.
func TestReadmeConfigReference(t *testing.T) {
	out, err := exec.Command(tribBin(t), "config", "docs").Output()
	if err != nil {
		t.Fatal(err)
	}
	docs := regexp.MustCompile(`(?m)^#{1,2} `).ReplaceAllString(string(out), "### ")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), docs) {
		t.Fatal("README.md's configuration reference differs from `tributary config docs`; regenerate it")
	}
}

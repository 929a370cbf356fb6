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

// TestLicenceFiles: the repository's licence is Apache-2.0, and the patched
// kfake's BSD-3-Clause notice stays beside it, named in NOTICE.
func TestLicenceFiles(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if l := read("../LICENSE"); !strings.Contains(l, "Apache License") || !strings.Contains(l, "Version 2.0, January 2004") ||
		!strings.Contains(l, "END OF TERMS AND CONDITIONS") {
		t.Fatal("LICENSE is not the Apache License 2.0 text")
	}
	if k := read("../third_party/kfake/LICENSE"); !strings.Contains(k, "Travis Bischel") || !strings.Contains(k, "Redistribution and use in source and binary forms") {
		t.Fatal("third_party/kfake/LICENSE lost kfake's BSD notice")
	}
	if n := read("../NOTICE"); !strings.Contains(n, "third_party/kfake/LICENSE") || !strings.Contains(n, "BSD 3-Clause") {
		t.Fatal("NOTICE does not name the patched kfake and its licence")
	}
}

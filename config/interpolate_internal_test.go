package config

import "testing"

func TestConnectorPlaceholdersAreKept(t *testing.T) {
	got, err := interpolate("copy_${source.schema}_${source.table}", "")
	if err != nil {
		t.Fatal(err)
	}
	if got != "copy_${source.schema}_${source.table}" {
		t.Fatalf("got %q", got)
	}
	if _, err := interpolate("${NOT_SET_ANYWHERE_X}", ""); err == nil {
		t.Fatal("a missing environment variable must still be an error")
	}
}

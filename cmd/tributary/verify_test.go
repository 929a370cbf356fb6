package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tributary-cdc/tributary/verify"
)

func differingPass() *verifyPass {
	return &verifyPass{items: []verifyItem{{label: "public.t -> public.t", r: &verify.Result{
		SourceRows: 3, CopyRows: 3, Diff: 1, Buckets: 1, DiffBuckets: 1,
		Diffs: []verify.Diff{{Key: "7", Kind: "different", Columns: []string{`name: source "a", copy "b"`}}},
	}}}}
}

// A pass that starts before the --wait deadline and ends after it is the
// last one, and it prints its full report (it used to print nothing).
func TestVerifyWaitLastPassReports(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	passes := 0
	var out bytes.Buffer
	err := verifyUntil(context.Background(), 5*time.Second, func() time.Time { return clock },
		func(context.Context) (*verifyPass, error) {
			passes++
			// Started before the deadline, ends after it.
			clock = clock.Add(4 * time.Second)
			return differingPass(), nil
		}, &out, "copy")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "the copy differs from the source") {
		t.Fatalf("error %v, want exit 1 saying the copy differs", err)
	}
	if passes != 2 {
		t.Errorf("%d passes, want 2 (the second starts at 4s, before the 5s deadline)", passes)
	}
	for _, want := range []string{
		"public.t -> public.t: DIFFERENT: source 3 rows, copy 3 rows; 0 missing, 0 extra, 1 different (1 of 1 ranges differ)",
		`  different key 7: name: source "a", copy "b"`,
		"1 tables compared, 0 equal, 1 different",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "tables compared"); n != 1 {
		t.Errorf("%d reports printed, want only the last pass's:\n%s", n, out.String())
	}
}

// Passes before the deadline that differ print nothing; the pass that
// finds the copy equal prints its report and verify succeeds.
func TestVerifyWaitConverges(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	passes := 0
	var out bytes.Buffer
	err := verifyUntil(context.Background(), time.Minute, func() time.Time { return clock },
		func(context.Context) (*verifyPass, error) {
			passes++
			clock = clock.Add(time.Second)
			if passes == 1 {
				return differingPass(), nil
			}
			return &verifyPass{items: []verifyItem{{label: "public.t -> public.t", r: &verify.Result{SourceRows: 3, CopyRows: 3, Buckets: 1}}}}, nil
		}, &out, "copy")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "DIFFERENT") || !strings.Contains(out.String(), "1 tables compared, 1 equal, 0 different") {
		t.Errorf("report:\n%s", out.String())
	}
}

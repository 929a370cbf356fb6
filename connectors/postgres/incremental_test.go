package postgres

import (
	"reflect"
	"testing"
)

func TestStopTasks(t *testing.T) {
	tasks := func(names ...string) []snapTask {
		var out []snapTask
		for _, n := range names {
			out = append(out, snapTask{Table: n, Kind: snapKindOnDemand})
		}
		return out
	}
	names := func(ts []snapTask) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Table)
		}
		return out
	}
	s := &streamer{c: &connector{cfg: NewConfig()}}
	s.inc = newIncSnap(s.c, tasks("public.a", "s.b", "public.c"))
	s.inc.cur = &incTable{}
	s.inc.phase = incInWindow

	// "c" names public.c; the running table keeps running.
	if n := s.stopTasks([]string{"c"}); n != 1 || !reflect.DeepEqual(names(s.inc.tasks), []string{"public.a", "s.b"}) || s.inc.redo {
		t.Fatalf("stop c: removed %d, left %v, redo %v", n, names(s.inc.tasks), s.inc.redo)
	}
	// Stopping the running table discards its chunk in flight.
	if n := s.stopTasks([]string{"public.a"}); n != 1 || !reflect.DeepEqual(names(s.inc.tasks), []string{"s.b"}) || !s.inc.redo {
		t.Fatalf("stop a: removed %d, left %v, redo %v", n, names(s.inc.tasks), s.inc.redo)
	}
	// No tables: every snapshot stops.
	s.inc.tasks = tasks("x.y", "public.z")
	if n := s.stopTasks(nil); n != 2 || len(s.inc.tasks) != 0 {
		t.Fatalf("stop all: removed %d, left %v", n, names(s.inc.tasks))
	}
}

func TestSnapshotInvisible(t *testing.T) {
	in := &incSnap{}
	if err := in.setSnapshot("100:105:101,103"); err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint32]bool{99: false, 100: false, 101: true, 102: false, 103: true, 104: false, 105: true, 200: true} {
		if got := in.invisible(xid); got != want {
			t.Errorf("xid %d invisible %v, want %v", xid, got, want)
		}
	}
	// 64-bit ids past the 32-bit epoch compare modulo 2^32.
	if err := in.setSnapshot("4294967390:4294967400:"); err != nil {
		t.Fatal(err)
	}
	if in.invisible(100) || !in.invisible(104) {
		t.Errorf("epoch-wrapped snapshot: %d, %v", in.xmax, in.xip)
	}
}

// A chunk snapshot that does not see a transaction the stream already
// emitted is refused (taken again).
func TestEmittedInvisible(t *testing.T) {
	s := &streamer{c: &connector{cfg: NewConfig()}}
	s.inc = newIncSnap(s.c, nil)
	for _, x := range []uint32{100, 101, 102} {
		s.noteEmitted(x)
	}
	for snap, want := range map[string]bool{"100:103:": false, "100:103:101": true, "100:102:": true, "99:110:105,106": false} {
		if err := s.inc.setSnapshot(snap); err != nil {
			t.Fatal(err)
		}
		if _, late := s.emittedInvisible(); late != want {
			t.Errorf("snapshot %s: late %v, want %v", snap, late, want)
		}
	}
	// The ring forgets the oldest ids.
	for i := 0; i < recentXids; i++ {
		s.noteEmitted(uint32(1000 + i))
	}
	_ = s.inc.setSnapshot("100:99999:101")
	if x, late := s.emittedInvisible(); late {
		t.Errorf("id %d still remembered after %d newer ones", x, recentXids)
	}
}

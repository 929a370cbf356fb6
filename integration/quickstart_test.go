package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestQuickstart runs the README's first command the way a newcomer does
// (for a few seconds instead of until Ctrl-C) and checks it ends with the
// SQLite copy verified equal to the demo database.
func TestQuickstart(t *testing.T) {
	env(t, "TRIBUTARY_TEST_PG_URL") // the services must be up, as under `make test`
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The demo keeps its slot for the user's next run; a test run must not
	// leave it holding WAL on the machine.
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), os.Getenv("TRIBUTARY_TEST_PG_URL"))
		if err != nil {
			t.Logf("dropping the demo slot: %v", err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'demo' AND NOT active"); err != nil {
			t.Logf("dropping the demo slot: %v", err)
		}
	})
	cmd := exec.CommandContext(ctx, "bash", "integration/quickstart.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "QUICKSTART_SECONDS=8", "TRIBUTARY_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, tail(out, 6000))
	}
	for _, want := range []string{"snapshot completed", "2 tables compared, 2 equal, 0 different"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("quickstart output lacks %q:\n%s", want, tail(out, 6000))
		}
	}
}

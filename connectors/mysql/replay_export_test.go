package mysql

import "context"

// SetReplayStep lets the external tests stop a replay's swap at a step, as
// a crash would.
func (t *SinkTarget) SetReplayStep(f func(ctx context.Context, step string) error) { t.replayStep = f }

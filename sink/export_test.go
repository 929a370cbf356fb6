package sink

import "context"

// DecodedChange is a Change as a test compares it.
type DecodedChange struct {
	Table string
	Op    Op
	Cols  []string
	Row   []any
	Key   []any
}

// DecodeBothWays decodes one record with the compiled envelope plan and
// with the generic Decoder path, each with fresh decoder state.
func DecodeBothWays(ctx context.Context, dec Decoder, format, topic string, key, value []byte) (fast, generic *DecodedChange, fastErr, genericErr error, compiled bool) {
	run := func(useFast bool) (*DecodedChange, error, bool) {
		d := &decoder{sink: "t", dec: dec, format: format, split: true,
			include: newFieldFilter(nil), exclude: newFieldFilter(nil),
			envelopes: map[int]*envelopeInfo{}, keys: map[int]*keyInfo{},
			tables: map[string]*tableState{}, bindings: map[bindingKey]*binding{}}
		had := false
		if id, err := frameID(value); err == nil {
			if env, err := d.envelope(ctx, topic, id); err == nil {
				had = env.fast != nil
				if !useFast {
					env.fast = nil
				}
			}
		}
		t, ch, err := d.decode(ctx, &Record{Topic: topic, Key: key, Value: value})
		if err != nil || ch == nil {
			return nil, err, had
		}
		out := &DecodedChange{Table: t.spec.QualifiedName(), Op: ch.Op, Row: ch.Row, Key: ch.Key}
		if ch.Cols != nil {
			for _, c := range ch.Cols.Columns {
				out.Cols = append(out.Cols, c.Name)
			}
		}
		return out, err, had
	}
	fast, fastErr, compiled = run(true)
	generic, genericErr, _ = run(false)
	return
}

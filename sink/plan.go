package sink

import "fmt"

// Plan sorts the changes of one Tx.Apply call into the statements a SQL
// target runs: whether the table is truncated first, the keys to delete,
// and the upserts and inserts grouped by operation and column set (in
// first-seen order), so each group is one run of multi-row statements.
//
// Apply's contract lets a target reorder like this: a key appears at most
// once per call and a truncate, if any, comes first.
//
// A target keeps one Plan and reuses it for every Apply: the slices keep
// their capacity, so sorting a batch allocates nothing once the plan has
// grown to the size of the batches. What Sort returns is valid until the
// next Sort.
type Plan struct {
	// Truncate is set when the table is emptied before the other changes.
	Truncate bool
	// Deletes are the keys of the deletes.
	Deletes [][]any
	// Writes are the upserts and inserts by shape.
	Writes []WriteGroup

	group   []int32       // group of each change, -1 for none
	rows    []int         // backing array of the Writes' Rows
	byShape map[shape]int // used once there are many shapes
}

// WriteGroup is the upserts or inserts of one Apply call that write the
// same columns.
type WriteGroup struct {
	Op   Op
	Cols *ColSet
	// Rows are indexes of the changes, in order.
	Rows []int
	n    int // rows counted by the first pass
}

type shape struct {
	op   Op
	cols *ColSet
}

// planScanShapes is how many shapes are looked up by a scan before a map
// takes over; a table has one shape per schema version it saw, so batches
// rarely have more than one or two.
const planScanShapes = 8

// Sort fills the plan from changes.
func (p *Plan) Sort(changes []Change) {
	p.Truncate = false
	p.Deletes = p.Deletes[:0]
	p.Writes = p.Writes[:0]
	if p.byShape != nil {
		clear(p.byShape)
	}
	group := p.group[:0]
	last := -1
	for i := range changes {
		c := &changes[i]
		switch c.Op {
		case OpUpsert, OpInsert:
		case OpDelete:
			p.Deletes = append(p.Deletes, c.Key)
			group = append(group, -1)
			continue
		case OpTruncate:
			p.Truncate = true
			fallthrough
		default:
			group = append(group, -1)
			continue
		}
		g := last
		if g < 0 || p.Writes[g].Op != c.Op || p.Writes[g].Cols != c.Cols {
			g = p.find(c.Op, c.Cols)
			last = g
		}
		p.Writes[g].n++
		group = append(group, int32(g))
	}
	p.group = group
	if len(p.Writes) == 0 {
		return
	}
	n := 0
	for i := range p.Writes {
		n += p.Writes[i].n
	}
	if cap(p.rows) < n {
		p.rows = make([]int, n)
	}
	rows := p.rows[:n]
	at := 0
	for i := range p.Writes {
		k := p.Writes[i].n
		p.Writes[i].Rows = rows[at : at : at+k]
		at += k
	}
	for i, g := range group {
		if g >= 0 {
			p.Writes[g].Rows = append(p.Writes[g].Rows, i)
		}
	}
}

// find returns the group of a shape, adding it when new.
func (p *Plan) find(op Op, cols *ColSet) int {
	if len(p.Writes) <= planScanShapes {
		for g := range p.Writes {
			if p.Writes[g].Op == op && p.Writes[g].Cols == cols {
				return g
			}
		}
		if len(p.Writes) == planScanShapes {
			if p.byShape == nil {
				p.byShape = map[shape]int{}
			}
			for g := range p.Writes {
				p.byShape[shape{p.Writes[g].Op, p.Writes[g].Cols}] = g
			}
		}
	} else if g, ok := p.byShape[shape{op, cols}]; ok {
		return g
	}
	g := len(p.Writes)
	p.Writes = append(p.Writes, WriteGroup{Op: op, Cols: cols})
	if p.byShape != nil {
		p.byShape[shape{op, cols}] = g
	}
	return g
}

// MissingTable is the error of applying the plan to a table that does not
// exist; nil when the plan only truncates, which is then a no-op (see
// Tx.Apply).
func (p *Plan) MissingTable(t *TableSpec) error {
	if len(p.Deletes) == 0 && len(p.Writes) == 0 {
		return nil
	}
	return fmt.Errorf("table %s does not exist", t.QualifiedName())
}

// Run applies the plan in its order: the truncate, then the deletes, then
// each group of writes. Reordering the changes so is what Tx.Apply's
// contract allows (each key at most once, a truncate first).
func (p *Plan) Run(truncate func() error, deletes func(keys [][]any) error, write func(g *WriteGroup) error) error {
	if p.Truncate {
		if err := truncate(); err != nil {
			return fmt.Errorf("truncating: %w", err)
		}
	}
	if len(p.Deletes) > 0 {
		if err := deletes(p.Deletes); err != nil {
			return err
		}
	}
	for i := range p.Writes {
		if err := write(&p.Writes[i]); err != nil {
			return err
		}
	}
	return nil
}

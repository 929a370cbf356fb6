package sink

import (
	"context"
	"strconv"
	"strings"
)

// OffsetsSQL spells the statements on a SQL target's OffsetsTable (or a
// table of the same shape). The targets differ only in a few words: the
// column types, how parameters are written and how an upsert is written.
type OffsetsSQL struct {
	// Table is the table's name, quoted and qualified as the target needs.
	Table string
	// TextType and TimeType are the types of the text columns and of
	// updated_at; TableOptions ends the CREATE TABLE (e.g. ENGINE=InnoDB).
	TextType, TimeType, TableOptions string
	// Numbered parameters ($1, $2, ...: PostgreSQL) instead of ?.
	Numbered bool
	// OnDuplicateKey upserts MySQL's way instead of ON CONFLICT.
	OnDuplicateKey bool
}

// CreateTable creates the table when missing.
func (o *OffsetsSQL) CreateTable() string {
	return `CREATE TABLE IF NOT EXISTS ` + o.Table + ` (
	sink_name ` + o.TextType + ` NOT NULL,
	topic ` + o.TextType + ` NOT NULL,
	kafka_partition INTEGER NOT NULL,
	next_offset BIGINT NOT NULL,
	updated_at ` + o.TimeType + ` NOT NULL,
	PRIMARY KEY (sink_name, topic, kafka_partition))` + o.TableOptions
}

func (o *OffsetsSQL) param(n int) string {
	if o.Numbered {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// Select reads (topic, kafka_partition, next_offset) of the sink given as
// the one parameter; ScanOffsets reads its rows.
func (o *OffsetsSQL) Select() string {
	return "SELECT topic, kafka_partition, next_offset FROM " + o.Table + " WHERE sink_name = " + o.param(1)
}

// Delete deletes every row of the sink given as the one parameter.
func (o *OffsetsSQL) Delete() string {
	return "DELETE FROM " + o.Table + " WHERE sink_name = " + o.param(1)
}

// Rename moves the rows of the sink given as the second parameter to the
// sink given as the first.
func (o *OffsetsSQL) Rename() string {
	return "UPDATE " + o.Table + " SET sink_name = " + o.param(1) + " WHERE sink_name = " + o.param(2)
}

// offsetsPerStatement keeps a store under every target's parameter limit
// (5 a row; SQLite allows 32766, PostgreSQL 65535).
const offsetsPerStatement = 1000

// Store upserts the next offsets of sinkName through exec, in as few
// statements as the parameter limits allow. now is the updated_at value as
// the target's driver takes it.
func (o *OffsetsSQL) Store(ctx context.Context, exec func(ctx context.Context, query string, args ...any) error,
	sinkName string, next map[TopicPartition]int64, now any) error {
	if len(next) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 5*min(len(next), offsetsPerStatement))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		if o.OnDuplicateKey {
			b.WriteString(" ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), updated_at = VALUES(updated_at)")
		} else {
			b.WriteString(" ON CONFLICT (sink_name, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at")
		}
		err := exec(ctx, b.String(), args...)
		b.Reset()
		args = args[:0]
		return err
	}
	for tp, off := range next {
		if len(args) == 0 {
			b.WriteString("INSERT INTO " + o.Table + " (sink_name, topic, kafka_partition, next_offset, updated_at) VALUES ")
		} else {
			b.WriteString(", ")
		}
		n := len(args)
		b.WriteString("(" + o.param(n+1) + ", " + o.param(n+2) + ", " + o.param(n+3) + ", " + o.param(n+4) + ", " + o.param(n+5) + ")")
		args = append(args, sinkName, tp.Topic, tp.Partition, off, now)
		if len(args) >= 5*offsetsPerStatement {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// OffsetRows is the part of *sql.Rows and pgx.Rows ScanOffsets needs.
type OffsetRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanOffsets reads the rows of Select; the caller closes them.
func ScanOffsets(rows OffsetRows) (map[TopicPartition]int64, error) {
	out := map[TopicPartition]int64{}
	for rows.Next() {
		var tp TopicPartition
		var next int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &next); err != nil {
			return nil, err
		}
		out[tp] = next
	}
	return out, rows.Err()
}

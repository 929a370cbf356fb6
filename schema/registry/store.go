package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Confluent key types (io.confluent.kafka.schemaregistry.storage.SchemaRegistryKeyType).
const (
	keyTypeSchema        = "SCHEMA"
	keyTypeConfig        = "CONFIG"
	keyTypeNoop          = "NOOP"
	keyTypeDeleteSubject = "DELETE_SUBJECT"
)

// Keys are written with Confluent's field order (keytype, subject, version,
// magic) and magic bytes, because compaction compares key bytes: a key we
// write must be byte-equal to the one Confluent writes for the same thing.
type schemaKey struct {
	KeyType string `json:"keytype"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
	Magic   int    `json:"magic"`
}

type configKey struct {
	KeyType string  `json:"keytype"`
	Subject *string `json:"subject"` // null: the global config
	Magic   int     `json:"magic"`
}

type deleteSubjectKey struct {
	KeyType string `json:"keytype"`
	Subject string `json:"subject"`
	Magic   int    `json:"magic"`
}

// anyKey decodes every key type; unknown fields are ignored, as Confluent does.
type anyKey struct {
	KeyType string  `json:"keytype"`
	Subject *string `json:"subject"`
	Version *int    `json:"version"`
}

type schemaValue struct {
	Subject    string          `json:"subject"`
	Version    int             `json:"version"`
	ID         int             `json:"id"`
	SchemaType string          `json:"schemaType,omitempty"` // omitted for AVRO, as Confluent does
	References json.RawMessage `json:"references,omitempty"`
	Schema     string          `json:"schema"`
	Deleted    bool            `json:"deleted"`
}

type configValue struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

type deleteSubjectValue struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// marshal writes JSON the way Jackson does for these records: no HTML
// escaping (so '<' or '&' in a subject stays byte-equal) and no trailing newline.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only plain structs of strings and ints are encoded here.
		panic(fmt.Sprintf("registry: encode %T: %v", v, err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func schemaRecord(sv *schemaVersion) *kgo.Record {
	return &kgo.Record{
		Key: marshal(schemaKey{KeyType: keyTypeSchema, Subject: sv.subject, Version: sv.version, Magic: 1}),
		Value: marshal(schemaValue{
			Subject: sv.subject, Version: sv.version, ID: sv.id, SchemaType: sv.schemaType,
			References: sv.references, Schema: sv.text, Deleted: sv.deleted,
		}),
	}
}

func schemaTombstone(subject string, version int) *kgo.Record {
	return &kgo.Record{Key: marshal(schemaKey{KeyType: keyTypeSchema, Subject: subject, Version: version, Magic: 1})}
}

// configRecord sets (level != "") or clears the global (subject nil) or a
// subject's compatibility level.
func configRecord(subject *string, level CompatibilityLevel) *kgo.Record {
	rec := &kgo.Record{Key: marshal(configKey{KeyType: keyTypeConfig, Subject: subject, Magic: 0})}
	if level != "" {
		rec.Value = marshal(configValue{CompatibilityLevel: string(level)})
	}
	return rec
}

func deleteSubjectRecord(subject string, upTo int) *kgo.Record {
	return &kgo.Record{
		Key:   marshal(deleteSubjectKey{KeyType: keyTypeDeleteSubject, Subject: subject, Magic: 0}),
		Value: marshal(deleteSubjectValue{Subject: subject, Version: upTo}),
	}
}

// applyRecord folds one record of the topic into the state. Records it cannot
// decode are logged with their offset and skipped, as Confluent does, so one
// foreign record does not make the registry unusable.
func (r *Registry) applyRecord(key, value []byte, offset int64) {
	var k anyKey
	if err := json.Unmarshal(key, &k); err != nil {
		r.log.Warn("schema registry: skipping record with an undecodable key", "topic", r.topic, "offset", offset, "error", err)
		return
	}
	tomb := len(value) == 0
	r.mu.Lock()
	defer r.mu.Unlock()
	switch k.KeyType {
	case keyTypeSchema:
		if k.Subject == nil || k.Version == nil {
			r.log.Warn("schema registry: skipping SCHEMA record without subject or version", "topic", r.topic, "offset", offset)
			return
		}
		if tomb {
			r.st.applySchema(*k.Subject, *k.Version, nil)
			return
		}
		var v schemaValue
		if err := json.Unmarshal(value, &v); err != nil {
			r.log.Warn("schema registry: skipping SCHEMA record with an undecodable value", "topic", r.topic, "offset", offset, "subject", *k.Subject, "error", err)
			return
		}
		if v.SchemaType == schemaTypeAvro {
			v.SchemaType = ""
		}
		r.st.applySchema(*k.Subject, *k.Version, &v)
	case keyTypeConfig:
		level := CompatibilityLevel("")
		if !tomb {
			var v configValue
			if err := json.Unmarshal(value, &v); err != nil {
				r.log.Warn("schema registry: skipping CONFIG record with an undecodable value", "topic", r.topic, "offset", offset, "error", err)
				return
			}
			if v.CompatibilityLevel == "" {
				// Confluent writes configs carrying only other settings
				// (compatibilityGroup, metadata); they leave the level as is.
				return
			}
			l, err := ParseCompatibilityLevel(v.CompatibilityLevel)
			if err != nil {
				r.log.Warn("schema registry: skipping CONFIG record with an unknown level", "topic", r.topic, "offset", offset, "level", v.CompatibilityLevel)
				return
			}
			level = l
		}
		r.st.applyConfig(k.Subject, level)
	case keyTypeDeleteSubject:
		if tomb || k.Subject == nil {
			return
		}
		var v deleteSubjectValue
		if err := json.Unmarshal(value, &v); err != nil {
			r.log.Warn("schema registry: skipping DELETE_SUBJECT record with an undecodable value", "topic", r.topic, "offset", offset, "error", err)
			return
		}
		r.st.applyDeleteSubject(*k.Subject, v.Version)
	case keyTypeNoop:
		// Confluent writes NOOPs to find the end of the topic; we use the high watermark.
	default:
		// MODE, CLEAR_SUBJECT, CONTEXT, ...: not used by the embedded registry.
		r.log.Debug("schema registry: ignoring record", "topic", r.topic, "offset", offset, "keytype", k.KeyType)
	}
}

// ensureTopic creates the topic compacted with one partition (one partition
// keeps a total order, which the registry's replay relies on) and rejects an
// existing topic with more partitions.
func ensureTopic(ctx context.Context, adm *kadm.Client, topic string, log *slog.Logger) error {
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	switch {
	case err == nil && resp.Err == nil:
		log.Info("schema registry: created topic", "topic", topic, "partitions", 1, "cleanup.policy", "compact")
	case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
	case err != nil:
		return fmt.Errorf("create schema registry topic %q: %w", topic, err)
	default:
		return fmt.Errorf("create schema registry topic %q: %w", topic, resp.Err)
	}

	// A just-created topic may be unknown to the broker answering metadata
	// for a moment (Kafka propagates it asynchronously): retry briefly.
	var details kadm.TopicDetails
	var d kadm.TopicDetail
	var ok bool
	for attempt := 0; ; attempt++ {
		details, err = adm.ListTopics(ctx, topic)
		if err == nil {
			d, ok = details[topic]
			if ok && d.Err == nil {
				break
			}
			if ok {
				err = d.Err
			} else {
				err = kerr.UnknownTopicOrPartition
			}
		}
		if attempt >= 50 || !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("describe schema registry topic %q: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("describe schema registry topic %q: %w", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if n := len(d.Partitions); n != 1 {
		return fmt.Errorf("schema registry topic %q has %d partitions; it must have exactly 1 so that its records keep one order", topic, n)
	}

	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		if rc, err := cfgs.On(topic, nil); err == nil && rc.Err == nil {
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" && c.Value != nil && *c.Value != "compact" {
					log.Warn("schema registry: topic is not compacted; old records are kept forever or may be deleted by retention, which would lose schemas",
						"topic", topic, "cleanup.policy", *c.Value)
				}
			}
		}
	}
	return nil
}

// endOffset is the topic's high watermark: every record below it is
// acknowledged and readable.
func (r *Registry) endOffset(ctx context.Context) (int64, error) {
	ends, err := r.adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		return 0, fmt.Errorf("list end offset of schema registry topic %q: %w", r.topic, err)
	}
	o, ok := ends.Lookup(r.topic, 0)
	if !ok {
		return 0, fmt.Errorf("list end offset of schema registry topic %q: partition 0 missing from the answer", r.topic)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("list end offset of schema registry topic %q partition 0: %w", r.topic, o.Err)
	}
	return o.Offset, nil
}

// catchUp reads and applies records until every offset below target is
// applied. The caller holds writeMu.
func (r *Registry) catchUp(ctx context.Context, target int64) error {
	for r.next < target {
		fetches := r.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read schema registry topic %q: reached offset %d of %d: %w", r.topic, r.next, target, err)
		}
		if fetches.IsClientClosed() {
			return fmt.Errorf("read schema registry topic %q: kafka client closed at offset %d of %d", r.topic, r.next, target)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("read schema registry topic %q partition %d at offset %d: %w", t, p, r.next, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			if rec.Topic != r.topic || rec.Partition != 0 || rec.Offset < r.next {
				return
			}
			r.applyRecord(rec.Key, rec.Value, rec.Offset)
			r.next = rec.Offset + 1
		})
	}
	return nil
}

// produce writes records in order with acks=all and applies each one once
// acknowledged. The caller holds writeMu.
func (r *Registry) produce(ctx context.Context, recs ...*kgo.Record) error {
	for _, rec := range recs {
		rec.Topic = r.topic
		rec.Partition = 0
	}
	results := r.cl.ProduceSync(ctx, recs...)
	for _, res := range results {
		if res.Err != nil {
			// The record may still have landed: re-read the topic before
			// the next write rather than trust the state.
			r.dirty = true
			return fmt.Errorf("write to schema registry topic %q: %w", r.topic, res.Err)
		}
	}
	for _, res := range results {
		rec := res.Record
		switch {
		case rec.Offset == r.next:
			r.applyRecord(rec.Key, rec.Value, rec.Offset)
			r.next = rec.Offset + 1
		case rec.Offset > r.next:
			// Someone else appended in between: read it all, ours included.
			r.log.Warn("schema registry: another writer appended to the topic; the registry assumes a single writer",
				"topic", r.topic, "expected_offset", r.next, "got_offset", rec.Offset)
			if err := r.catchUp(ctx, rec.Offset+1); err != nil {
				r.dirty = true
				return err
			}
		}
	}
	return nil
}

// sync brings the state up to the topic's end before a write. The caller holds writeMu.
func (r *Registry) sync(ctx context.Context) error {
	end, err := r.endOffset(ctx)
	if err != nil {
		return err
	}
	if err := r.catchUp(ctx, end); err != nil {
		return err
	}
	r.dirty = false
	return nil
}

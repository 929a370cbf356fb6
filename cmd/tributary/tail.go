package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/tributary-cdc/tributary/broker"
	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/schema"
)

const (
	defaultBrokers  = "127.0.0.1:9092"
	defaultRegistry = "http://127.0.0.1:8081"
)

type tailOptions struct {
	file          string
	brokers       []string
	registry      string
	fromBeginning bool
	max           int
	key           bool
}

func newTailCmd() *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print a topic's events as JSON lines, decoded through the schema registry",
		Long: `Print the records of TOPIC, one JSON object per line:

  {"topic":…,"partition":…,"offset":…,"timestamp":<ms>,"key":…,"value":…}

Avro values in the Confluent wire format are decoded with the schema their id
names in the registry; a tombstone's value is null; other values (such as the
JSON of the offsets topic) are shown as JSON, text, or base64.

The log and registry are taken from the pipeline config (-f), or from
--brokers and --registry, and default to the embedded ones on
127.0.0.1:9092 and http://127.0.0.1:8081.`,
		Args: func(cmd *cobra.Command, args []string) error {
			return usageErr(cobra.ExactArgs(1)(cmd, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.max < 0 {
				return usageErr(fmt.Errorf("-n must not be negative"))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return tail(ctx, args[0], o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "pipeline config whose log and registry to read")
	f.StringSliceVar(&o.brokers, "brokers", nil, "Kafka bootstrap brokers, host:port,... (default "+defaultBrokers+")")
	f.StringVar(&o.registry, "registry", "", "schema registry URL (default "+defaultRegistry+")")
	f.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the oldest retained record instead of waiting for new ones")
	f.IntVarP(&o.max, "max-messages", "n", 0, "exit after this many records (0: until interrupted)")
	f.BoolVar(&o.key, "key", false, "include the decoded record key")
	cmd.MarkFlagsMutuallyExclusive("file", "brokers")
	cmd.MarkFlagsMutuallyExclusive("file", "registry")
	return cmd
}

// endpoints resolves where the log and registry are, with their clients'
// settings.
func (o tailOptions) endpoints() (broker.ClientConfig, []kgo.Opt, []sr.ClientOpt, error) {
	kc := broker.ClientConfig{ClientID: "tributary-tail", Brokers: o.brokers}
	var kopts []kgo.Opt
	registry := o.registry
	var sropts []sr.ClientOpt
	if o.file != "" {
		p, err := config.Load(o.file)
		if err != nil {
			return kc, nil, nil, usageErr(err)
		}
		kc.Brokers = p.Log.Brokers
		if p.Log.Embedded() {
			kc.Brokers = []string{p.Log.Listen}
		}
		if s := p.Log.SASL; s != nil {
			kc.SASL = &broker.SASL{Mechanism: s.Mechanism, User: s.User, Password: string(s.Password)}
		}
		if p.Log.TLS != nil {
			tc, err := p.Log.TLS.Config()
			if err != nil {
				return kc, nil, nil, usageErr(fmt.Errorf("%s: log.tls: %w", o.file, err))
			}
			kopts = append(kopts, kgo.DialTLSConfig(tc))
		}
		registry = p.Registry.URL
		if p.Registry.Embedded() {
			registry = "http://" + p.Registry.Listen
		}
		if a := p.Registry.BasicAuth; a != nil {
			sropts = append(sropts, sr.BasicAuth(a.User, string(a.Password)))
		}
		if p.Registry.TLS != nil {
			tc, err := p.Registry.TLS.Config()
			if err != nil {
				return kc, nil, nil, usageErr(fmt.Errorf("%s: registry.tls: %w", o.file, err))
			}
			sropts = append(sropts, sr.DialTLSConfig(tc))
		}
	}
	if len(kc.Brokers) == 0 {
		kc.Brokers = []string{defaultBrokers}
	}
	if registry == "" {
		registry = defaultRegistry
	}
	sropts = append(sropts, sr.URLs(registry), sr.UserAgent("tributary-tail"))
	return kc, kopts, sropts, nil
}

func tail(ctx context.Context, topic string, o tailOptions, out io.Writer) error {
	kc, kopts, sropts, err := o.endpoints()
	if err != nil {
		return err
	}
	start := kgo.NewOffset().AtEnd()
	if o.fromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	// Read committed: events of an aborted exactly_once transaction never
	// happened.
	kopts = append(kopts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	cl, err := broker.NewClient(kc, kopts...)
	if err != nil {
		return runtimeErr(err)
	}
	defer cl.Close()
	if err := checkTopic(ctx, cl, topic, kc.Brokers); err != nil {
		return runtimeErr(err)
	}
	src, err := sr.NewClient(sropts...)
	if err != nil {
		return usageErr(fmt.Errorf("schema registry: %w", err))
	}
	dec := schema.NewDecoder(schema.SRFetcher{Client: src})

	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	printed := 0
	for o.max == 0 || printed < o.max {
		want := -1
		if o.max > 0 {
			want = o.max - printed
		}
		fetches := cl.PollRecords(ctx, want)
		if ctx.Err() != nil {
			return nil // interrupted: a normal way to stop tailing
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = errors.Join(ferr, fmt.Errorf("fetching %s partition %d: %w", t, p, err))
			}
		})
		if ferr != nil {
			return runtimeErr(ferr)
		}
		for _, r := range fetches.Records() {
			if err := enc.Encode(recordLine(ctx, dec, r, o.key)); err != nil {
				return runtimeErr(fmt.Errorf("writing output: %w", err))
			}
			printed++
		}
	}
	return nil
}

// checkTopic fails fast, naming the known topics, rather than letting the
// consumer wait forever for a topic that was mistyped.
func checkTopic(ctx context.Context, cl *kgo.Client, topic string, brokers []string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("cannot reach the log at %s (is `tributary run` or the Kafka cluster up?): %w", strings.Join(brokers, ","), err)
	}
	if all.Has(topic) {
		return nil
	}
	// Internal topics such as _schemas are listed only when asked for.
	if d, err := adm.ListTopicsWithInternal(ctx, topic); err == nil && d.Has(topic) && d[topic].Err == nil {
		return nil
	}
	names := all.Names()
	if len(names) == 0 {
		return fmt.Errorf("topic %q does not exist; the log at %s has no topics yet", topic, strings.Join(brokers, ","))
	}
	return fmt.Errorf("topic %q does not exist; topics: %s", topic, strings.Join(names, ", "))
}

// tailLine is one output line; the field order is the documented one.
type tailLine struct {
	Topic      string           `json:"topic"`
	Partition  int32            `json:"partition"`
	Offset     int64            `json:"offset"`
	Timestamp  int64            `json:"timestamp"`
	Key        *json.RawMessage `json:"key,omitempty"`
	KeyError   string           `json:"key_error,omitempty"`
	Value      json.RawMessage  `json:"value"`
	ValueError string           `json:"value_error,omitempty"`
}

type decoder interface {
	DecodeJSON(ctx context.Context, data []byte) (int, any, error)
}

func recordLine(ctx context.Context, dec decoder, r *kgo.Record, withKey bool) tailLine {
	l := tailLine{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli()}
	var errMsg string
	l.Value, errMsg = decodeData(ctx, dec, r.Value)
	l.ValueError = errMsg
	if withKey {
		k, errMsg := decodeData(ctx, dec, r.Key)
		l.Key, l.KeyError = &k, errMsg
	}
	return l
}

// decodeData renders a key or value as JSON. Confluent-framed Avro is
// decoded through the registry; anything else is shown as what it looks
// like (JSON, text, or base64 bytes), so every topic can be tailed. A decode
// failure is reported in the line, never dropped.
func decodeData(ctx context.Context, dec decoder, data []byte) (json.RawMessage, string) {
	if data == nil {
		return json.RawMessage("null"), ""
	}
	if len(data) >= 5 && data[0] == 0 {
		_, v, err := dec.DecodeJSON(ctx, data)
		if err == nil {
			if b, err := marshal(v); err == nil {
				return b, ""
			} else {
				return raw(data), fmt.Sprintf("encoding decoded value as JSON: %v", err)
			}
		}
		return raw(data), err.Error()
	}
	if json.Valid(data) {
		var buf bytes.Buffer
		if json.Compact(&buf, data) == nil {
			return buf.Bytes(), ""
		}
	}
	return raw(data), ""
}

func raw(data []byte) json.RawMessage {
	if utf8.Valid(data) {
		b, _ := marshal(string(data))
		return b
	}
	b, _ := marshal(data) // []byte marshals as base64
	return b
}

func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

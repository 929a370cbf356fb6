package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// unit is one connector (a source or a sink) as the worker runs it. run
// opens a fresh connector each time, because a connector that a group moved
// away and back must not reuse state (connections, caches) of its last run.
type unit struct {
	name, kind, typ string
	run             func(ctx context.Context) error
}

// firstThenOpen hands out first on its first call and a connector from open
// on every later one: the connector opened (and validated) at start serves
// the first run, and a unit that a group moved away and back opens a new one
// because the previous run closed it.
func firstThenOpen[T any](first T, open func() (T, error)) func() (T, error) {
	var mu sync.Mutex
	used := false
	return func() (T, error) {
		mu.Lock()
		defer mu.Unlock()
		if !used {
			used = true
			return first, nil
		}
		return open()
	}
}

// supervisor starts and stops units, reports their state, and turns the
// first failure into the worker's failure.
type supervisor struct {
	ctx    context.Context
	log    *slog.Logger
	st     *status
	errc   chan<- error
	cancel context.CancelFunc

	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]*runningUnit
}

type runningUnit struct {
	stop context.CancelFunc
	done chan struct{}
}

func (s *supervisor) start(u unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.running[u.name]; ok || s.ctx.Err() != nil {
		return
	}
	ctx, stop := context.WithCancel(s.ctx)
	ru := &runningUnit{stop: stop, done: make(chan struct{})}
	s.running[u.name] = ru
	s.st.set(u.name, u.kind, u.typ, "running", nil)
	s.wg.Go(func() {
		defer close(ru.done)
		defer stop()
		err := u.run(ctx)
		switch {
		case err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil):
			s.st.set(u.name, u.kind, u.typ, "failed", err)
			s.errc <- err
			s.cancel()
		case s.ctx.Err() == nil && ctx.Err() != nil:
			// Stopped because the group moved it, not because the worker stops.
			s.st.set(u.name, u.kind, u.typ, "standby", nil)
		default:
			s.st.set(u.name, u.kind, u.typ, "stopped", nil)
		}
		s.mu.Lock()
		if s.running[u.name] == ru {
			delete(s.running, u.name)
		}
		s.mu.Unlock()
	})
}

// stop stops a unit and waits until it has flushed and committed, so the
// next owner starts from everything this one made durable.
func (s *supervisor) stop(name string) {
	s.mu.Lock()
	ru := s.running[name]
	s.mu.Unlock()
	if ru == nil {
		return
	}
	ru.stop()
	<-ru.done
}

// groupTopic holds no data: its partitions stand for the connectors of the
// group, one each, and Kafka's group protocol hands them out to the
// workers. Partition 0 also keeps the list of connectors the group was
// started with, so a worker with a different file cannot join and run a
// connector under another connector's partition.
func groupTopic(group string) string { return "_tributary-group-" + group }

// GroupID is the consumer group of a worker group.
func GroupID(group string) string { return "tributary-worker-" + group }

type groupClaim struct {
	Connectors []string `json:"connectors"`
}

// runGroup runs the units this worker is assigned in the worker group until
// ctx is done. Units are mapped to partitions in the order of their sorted
// names, the same on every worker because the claim in partition 0 checks
// that every worker declares the same connectors.
func runGroup(ctx context.Context, svc *Services, group string, session time.Duration, replication int16,
	units []unit, sup *supervisor, log *slog.Logger) error {
	slices.SortFunc(units, func(a, b unit) int { return strings.Compare(a.name, b.name) })
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.name
		sup.st.set(u.name, u.kind, u.typ, "waiting", nil)
	}
	topic := groupTopic(group)
	if err := claimGroup(ctx, svc, group, topic, names, replication, log); err != nil {
		return err
	}

	byPartition := func(ps map[string][]int32, fn func(u unit)) {
		for _, p := range ps[topic] {
			if int(p) >= len(units) {
				continue // a partition left over from a larger connector list
			}
			fn(units[p])
		}
	}
	stopAll := func(ps map[string][]int32) {
		var wg sync.WaitGroup
		byPartition(ps, func(u unit) { wg.Go(func() { sup.stop(u.name) }) })
		wg.Wait()
	}
	cl, err := svc.NewClient(
		kgo.ConsumerGroup(GroupID(group)),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(max(session/5, 500*time.Millisecond)),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			byPartition(ps, func(u unit) {
				log.Info("worker group: connector assigned to this worker", "group", group, "connector", u.name)
				sup.start(u)
			})
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			byPartition(ps, func(u unit) {
				log.Info("worker group: connector moves to another worker; stopping it here", "group", group, "connector", u.name)
			})
			stopAll(ps)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			byPartition(ps, func(u unit) {
				log.Warn("worker group: membership lost; stopping connector", "group", group, "connector", u.name)
			})
			stopAll(ps)
		}),
	)
	if err != nil {
		return fmt.Errorf("worker.group %s: %w", group, err)
	}
	// Close leaves the group (revoking, so stopping, what this worker runs)
	// only after the connectors have stopped themselves on ctx.
	defer func() {
		sup.wg.Wait()
		cl.Close()
	}()
	log.Info("worker group: joining", "group", group, "consumer_group", GroupID(group), "connectors", len(units))
	for ctx.Err() == nil {
		// The topic holds no records; polling keeps the member's callbacks
		// running and surfaces group errors.
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) {
				continue
			}
			log.Warn("worker group: polling", "group", group, "err", fe.Err)
		}
	}
	return nil
}

// claimGroup makes sure the group's topic exists with a partition for each
// connector and records which connectors the group runs. A worker whose
// file declares other connectors may only re-claim the group when no worker
// is a member of it; otherwise two workers could run one connector.
func claimGroup(ctx context.Context, svc *Services, group, topic string, names []string, replication int16, log *slog.Logger) error {
	cl, err := svc.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	sum := sha256.Sum256([]byte(strings.Join(names, "\x00")))
	fingerprint := hex.EncodeToString(sum[:8])

	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("worker.group %s: list topic %s: %w", group, topic, err)
	}
	td, exists := details[topic]
	if !exists || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		_, err := adm.CreateTopic(ctx, int32(len(names)), replication, map[string]*string{"cleanup.policy": ptr("delete"), "retention.ms": ptr("-1")}, topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("worker.group %s: create topic %s: %w", group, topic, err)
		}
	} else if td.Err != nil {
		return fmt.Errorf("worker.group %s: topic %s: %w", group, topic, td.Err)
	}

	prev, err := readClaim(ctx, cl, adm, topic)
	if err != nil {
		return fmt.Errorf("worker.group %s: read the group's connector list from %s: %w", group, topic, err)
	}
	if prev != nil && slices.Equal(prev.Connectors, names) {
		return nil
	}
	if prev != nil {
		groups, err := adm.DescribeGroups(ctx, GroupID(group))
		if err != nil {
			return fmt.Errorf("worker.group %s: describe consumer group %s: %w", group, GroupID(group), err)
		}
		if g, ok := groups[GroupID(group)]; ok && len(g.Members) > 0 {
			return fmt.Errorf("worker.group %s runs connectors [%s] on %d worker(s), but this file declares [%s]: all workers of a group must run the same connectors; stop every worker of the group, then start them with the new file (or use another worker.group)",
				group, strings.Join(prev.Connectors, ", "), len(g.Members), strings.Join(names, ", "))
		}
		log.Info("worker group: no worker is running; taking the new connector list", "group", group, "was", prev.Connectors, "now", names)
	}
	// Grow the topic when connectors were added; partitions beyond the list
	// stay unused.
	td2, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("worker.group %s: list topic %s: %w", group, topic, err)
	}
	if have := len(td2[topic].Partitions); have < len(names) {
		resp, err := adm.UpdatePartitions(ctx, len(names), topic)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("worker.group %s: grow topic %s to %d partitions: %w", group, topic, len(names), err)
		}
	}
	v, _ := json.Marshal(groupClaim{Connectors: names})
	rec := &kgo.Record{Topic: topic, Partition: 0, Key: []byte("connectors:" + fingerprint), Value: v}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("worker.group %s: record the connector list in %s: %w", group, topic, err)
	}
	return nil
}

// readClaim returns the last connector list recorded in partition 0, or nil.
func readClaim(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string) (*groupClaim, error) {
	// A topic just created may take a moment to show in metadata.
	var end kadm.ListedOffset
	for attempt := 0; ; attempt++ {
		ends, err := adm.ListEndOffsets(ctx, topic)
		var ok bool
		if err == nil {
			end, ok = ends.Lookup(topic, 0)
			switch {
			case !ok:
				err = fmt.Errorf("partition 0 not found")
			case end.Err != nil:
				err = end.Err
			}
		}
		if err == nil {
			break
		}
		if attempt == 50 || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
	if end.Offset == 0 {
		return nil, nil
	}
	rd, err := kgo.NewClient(append(cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(end.Offset - 1)}}),
	)...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return nil, err
		}
		var claim *groupClaim
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			var c groupClaim
			if err := json.Unmarshal(r.Value, &c); err != nil {
				bad = fmt.Errorf("record at offset %d is not a connector list: %w", r.Offset, err)
				return
			}
			claim = &c
		})
		if bad != nil {
			return nil, bad
		}
		if claim != nil {
			return claim, nil
		}
	}
}

func ptr[T any](v T) *T { return &v }

package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-cdc/tributary/faults"
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

// supervisor starts and stops units, restarts those that fail with a
// transient error, and reports their state. A unit that fails for good
// stops alone: the others keep running (Kafka Connect's task isolation).
type supervisor struct {
	ctx     context.Context
	log     *slog.Logger
	st      *status
	restart restartPolicy

	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]*runningUnit
	errs    []error
}

type runningUnit struct {
	stop context.CancelFunc
	done chan struct{}
}

// restartPolicy is the capped exponential backoff with jitter between
// restarts of a connector that failed with a transient error.
type restartPolicy struct {
	initial, max time.Duration
	// upBefore: an attempt that lasted this long proves the connector can
	// run, so its transient failures are outages worth waiting out. A
	// connector that has never lasted this long fails at once, because a
	// wrong host or port at start is a configuration problem that
	// retrying would only hide.
	upBefore time.Duration
	restarts *prometheus.CounterVec
}

func (p restartPolicy) delay(attempt int) time.Duration {
	d := p.initial
	for i := 1; i < attempt && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	// Full jitter on the upper half, so workers restarted by one outage do
	// not all come back in the same instant.
	return d/2 + rand.N(d/2+1)
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
		err := s.runWithRestarts(ctx, u)
		switch {
		case err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil):
			s.st.set(u.name, u.kind, u.typ, "failed", err)
			s.log.Error("connector failed; the worker's other connectors go on", "connector", u.name, "kind", u.kind, "err", err)
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
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

// runWithRestarts runs u until it ends cleanly, fails for good, or ctx
// ends; each run starts from the unit's last durable position, which is
// what makes a restart lose nothing.
func (s *supervisor) runWithRestarts(ctx context.Context, u unit) error {
	attempt := 0
	provenUp := false
	for {
		began := time.Now()
		err := u.run(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		lasted := time.Since(began)
		if lasted >= s.restart.upBefore {
			provenUp = true
			attempt = 0 // a long healthy run starts the backoff afresh
		}
		if !faults.Transient(err) || !(provenUp || faults.Heals(err)) {
			return err
		}
		attempt++
		d := s.restart.delay(attempt)
		s.log.Warn("connector failed with a transient error; restarting it from its last durable position",
			"connector", u.name, "attempt", attempt, "in", d.Round(time.Millisecond), "err", oneLine(err))
		if s.restart.restarts != nil {
			s.restart.restarts.WithLabelValues(u.name).Inc()
		}
		s.st.setRetrying(u.name, u.kind, u.typ, attempt, err, time.Now().Add(d))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		s.st.set(u.name, u.kind, u.typ, "running", nil)
	}
}

// oneLine keeps a retry log line to one line: some drivers put stack
// traces or server messages with newlines into their errors.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// failures are the errors of units that failed for good.
func (s *supervisor) failures() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
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

package worker

import (
	"context"
	"sync"

	"github.com/tributary-cdc/tributary/broker"
	"github.com/tributary-cdc/tributary/source"
)

// topicBus tells the worker's sinks that one of its sources created a
// topic, so they pick it up at once rather than at their next
// topic_refresh_interval. Sources and sinks do not know each other: the
// worker wraps the sources' topic creation and hands each sink a channel.
type topicBus struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func newTopicBus() *topicBus { return &topicBus{subs: map[chan struct{}]struct{}{}} }

// notify wakes every subscriber. Wake-ups coalesce: a subscriber that has
// not yet taken the last one loses nothing, since it lists every topic.
func (b *topicBus) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// subscribe returns a channel that receives after each notify, and the
// function that ends the subscription.
func (b *topicBus) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

// notifyingTopics is the sources' TopicEnsurer: it creates topics through
// the inner one and then wakes the sinks.
type notifyingTopics struct {
	inner source.TopicEnsurer
	bus   *topicBus
}

func (t notifyingTopics) Ensure(ctx context.Context, spec broker.TopicSpec) error {
	if err := t.inner.Ensure(ctx, spec); err != nil {
		return err
	}
	t.bus.notify()
	return nil
}

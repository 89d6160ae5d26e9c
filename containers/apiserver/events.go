package apiserver

import (
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

// Events fans what happens to pods and images out to the Events streams.
// A subscriber that does not keep up loses events rather than slowing the
// runtime down.
type Events struct {
	mu   sync.Mutex
	subs map[chan *kurmav1.Event]struct{}
	now  func() time.Time
}

// NewEvents returns an empty event bus.
func NewEvents() *Events {
	return &Events{subs: map[chan *kurmav1.Event]struct{}{}, now: time.Now}
}

// Publish sends an event to every subscriber.
func (e *Events) Publish(kind, id, name, action, message string) {
	ev := &kurmav1.Event{Time: timestamppb.New(e.now()), Kind: kind, Id: id, Name: name, Action: action, Message: message}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber
		}
	}
}

// Subscribe returns a channel of events from now on, and the function that
// ends the subscription.
func (e *Events) Subscribe() (<-chan *kurmav1.Event, func()) {
	ch := make(chan *kurmav1.Event, 256)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
	}
}
